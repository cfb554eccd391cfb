package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

// joinCommand makes a bootstrap token in a ControlPlane's hosted cluster
// and prints the `kubeadm join` command that uses it, as `kubeadm token
// create --print-join-command` does on a kubeadm cluster: the token
// authenticates a new node until it expires (--ttl, 24h by default), and
// the CA hashes let the node check the cluster-info it discovers. It waits
// (--wait, 1m by default) until kube-controller-manager has signed
// cluster-info for the token, so the command works at once.
func joinCommand(ctx context.Context, c client.Client, ns, name string, o options, out io.Writer) error {
	cp := &quorumv1alpha1.ControlPlane{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cp); err != nil {
		return err
	}
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: ns, Name: resources.KubeconfigSecretName(name, resources.KubeconfigAdmin)}
	if err := c.Get(ctx, key, secret); err != nil {
		return fmt.Errorf("the admin kubeconfig of ControlPlane %s: %w", name, err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(secret.Data[resources.KubeconfigKey])
	if err != nil {
		return fmt.Errorf("the admin kubeconfig of ControlPlane %s: %w", name, err)
	}
	endpoint, err := url.Parse(cfg.Host)
	if err != nil {
		return err
	}
	if o.server != "" {
		// The endpoint's name may resolve only inside the management
		// cluster; --server is how this machine reaches the same API.
		cfg.Host = o.server
	}
	cfg.Timeout = 20 * time.Second
	hosted, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	hashes, err := resources.CACertHashes(cfg.CAData)
	if err != nil {
		return fmt.Errorf("the admin kubeconfig's CA: %w", err)
	}
	ttl := o.ttl
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	id, tokenSecret := randomToken(6), randomToken(16)
	token := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: "bootstrap-token-" + id},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			"token-id":                       id,
			"token-secret":                   tokenSecret,
			"expiration":                     time.Now().Add(ttl).UTC().Format(time.RFC3339),
			"usage-bootstrap-authentication": "true",
			"usage-bootstrap-signing":        "true",
			"auth-extra-groups":              resources.NodeBootstrapGroup,
			"description":                    "made by kubectl quorum join-command",
		},
	}
	if _, err := hosted.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, token, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("making a bootstrap token in ControlPlane %s's cluster through %s: %w", name, cfg.Host, err)
	}
	err = waitFor(ctx, o, time.Minute, io.Discard, func() (bool, string, error) {
		info, err := hosted.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, resources.ClusterInfoConfigMap, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "no cluster-info yet", nil
		}
		if err != nil {
			return false, "", err
		}
		_, signed := info.Data["jws-kubeconfig-"+id]
		return signed, "", nil
	})
	if err != nil {
		return fmt.Errorf("kube-controller-manager has not signed cluster-info for the new token: %w", err)
	}
	args := []string{"kubeadm", "join", endpoint.Host, "--token", id + "." + tokenSecret}
	for _, h := range hashes {
		args = append(args, "--discovery-token-ca-cert-hash", h)
	}
	_, err = fmt.Fprintln(out, strings.Join(args, " "))
	return err
}

// randomToken is n characters of [a-z0-9], the alphabet of kubeadm's
// tokens.
func randomToken(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[randomIndex(len(alphabet))]
	}
	return string(b)
}

// randomIndex is a uniform random number below n (n <= 256), from
// crypto/rand, rejecting the bytes that would bias it.
func randomIndex(n int) int {
	limit := 256 - 256%n
	var b [1]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err)
		}
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}
