package main

import (
	"context"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/join"
	"quorum.dev/quorum/internal/resources"
)

// joinCommand makes a bootstrap token in a ControlPlane's hosted cluster
// and prints the `kubeadm join` command that uses it, as `kubeadm token
// create --print-join-command` does on a kubeadm cluster: the token
// authenticates a new node until it expires (--ttl, 24h by default), and
// the CA hashes let the node check the cluster-info it discovers. It waits
// (--wait, 1m by default) until kube-controller-manager has signed
// cluster-info for the token, so the command works at once. --server is
// how this machine reaches the hosted API when the endpoint's name
// resolves only inside the management cluster.
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
	ttl, wait := o.ttl, o.wait
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	if wait < 0 {
		wait = time.Minute
	}
	cmd, err := join.NewToken(ctx, secret.Data[resources.KubeconfigKey], o.server, ttl, wait)
	if err != nil {
		return fmt.Errorf("ControlPlane %s: %w", name, err)
	}
	_, err = fmt.Fprintln(out, cmd.String())
	return err
}
