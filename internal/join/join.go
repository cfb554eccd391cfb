// Package join makes what a node needs to join a hosted control plane the
// kubeadm way: a bootstrap token in the hosted cluster and the `kubeadm
// join` command that uses it. `kubectl quorum join-command` and the local
// cluster's join-node both use it.
package join

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"quorum.dev/quorum/internal/resources"
)

// Command is a `kubeadm join` command line for a worker node.
type Command struct {
	// Endpoint is the API server's host:port, as the admin kubeconfig (and
	// cluster-info) name it.
	Endpoint string
	// Token is the bootstrap token, id.secret.
	Token string
	// CAHashes pin the cluster CAs the node trusts (one per CA in the
	// bundle during a CA rotation).
	CAHashes []string
}

// Args are the arguments after `kubeadm join`.
func (c Command) Args() []string {
	args := []string{c.Endpoint, "--token", c.Token}
	for _, h := range c.CAHashes {
		args = append(args, "--discovery-token-ca-cert-hash", h)
	}
	return args
}

// String is the command a node runs.
func (c Command) String() string {
	return "kubeadm join " + strings.Join(c.Args(), " ")
}

// TokenID is the public part of the token.
func (c Command) TokenID() string {
	id, _, _ := strings.Cut(c.Token, ".")
	return id
}

// NewToken makes a bootstrap token in the hosted cluster of an admin
// kubeconfig, reached at server ("" for the kubeconfig's own), valid for
// ttl, and waits up to wait until kube-controller-manager's
// bootstrapsigner has signed cluster-info for it, so the command works at
// once. The token is a Secret bootstrap-token-<id> in kube-system, in
// kubeadm's node group.
func NewToken(ctx context.Context, adminKubeconfig []byte, server string, ttl, wait time.Duration) (Command, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(adminKubeconfig)
	if err != nil {
		return Command{}, fmt.Errorf("the admin kubeconfig: %w", err)
	}
	endpoint, err := url.Parse(cfg.Host)
	if err != nil {
		return Command{}, err
	}
	if server != "" {
		cfg.Host = server
	}
	cfg.Timeout = 20 * time.Second
	hosted, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return Command{}, err
	}
	hashes, err := resources.CACertHashes(cfg.CAData)
	if err != nil {
		return Command{}, fmt.Errorf("the admin kubeconfig's CA: %w", err)
	}
	id, secret := RandomToken(6), RandomToken(16)
	token := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: "bootstrap-token-" + id},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			"token-id":                       id,
			"token-secret":                   secret,
			"expiration":                     time.Now().Add(ttl).UTC().Format(time.RFC3339),
			"usage-bootstrap-authentication": "true",
			"usage-bootstrap-signing":        "true",
			"auth-extra-groups":              resources.NodeBootstrapGroup,
			"description":                    "made by Quorum (kubectl quorum join-command)",
		},
	}
	if _, err := hosted.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, token, metav1.CreateOptions{}); err != nil {
		return Command{}, fmt.Errorf("making a bootstrap token through %s: %w", cfg.Host, err)
	}
	cmd := Command{Endpoint: endpoint.Host, Token: id + "." + secret, CAHashes: hashes}
	deadline := time.Now().Add(wait)
	for {
		info, err := hosted.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, resources.ClusterInfoConfigMap, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return cmd, err
		}
		if _, signed := info.Data["jws-kubeconfig-"+id]; err == nil && signed {
			return cmd, nil
		}
		if time.Now().After(deadline) {
			return cmd, fmt.Errorf("kube-controller-manager has not signed cluster-info for token %s within %s (is a replica's controller-manager running?)", id, wait)
		}
		select {
		case <-ctx.Done():
			return cmd, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// RandomToken is n characters of [a-z0-9], the alphabet of kubeadm's
// tokens, from crypto/rand.
func RandomToken(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	// 252 is the largest multiple of 36 below 256: bytes above it are
	// dropped so that every character is equally likely.
	out := make([]byte, 0, n)
	var b [1]byte
	for len(out) < n {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err)
		}
		if b[0] < 252 {
			out = append(out, alphabet[int(b[0])%len(alphabet)])
		}
	}
	return string(out)
}
