package etcdcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/resources"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 365 * 24 * time.Hour
)

// ensureCA returns the cluster's CA, creating its Secret on first use.
func (r *Reconciler) ensureCA(ctx context.Context, c *quorumv1alpha1.EtcdCluster) (*pki.KeyPair, error) {
	secret := &corev1.Secret{}
	err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: resources.CASecretName(c.Name)}, secret)
	if err == nil {
		return pki.CAFromSecret(secret)
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	ca, secret, err := pki.NewCASecret(
		metav1.ObjectMeta{Name: resources.CASecretName(c.Name), Namespace: c.Namespace, Labels: resources.ClusterLabels(c.Name)},
		fmt.Sprintf("etcd-ca %s/%s", c.Namespace, c.Name), caValidity)
	if err != nil {
		return nil, err
	}
	if err := r.CreateOwned(ctx, c, secret); err != nil {
		return nil, err
	}
	return ca, nil
}

// ensureClientSecret makes the client certificate the operator (and the
// control planes and backups that use this cluster) authenticate with.
func (r *Reconciler) ensureClientSecret(ctx context.Context, c *quorumv1alpha1.EtcdCluster, ca *pki.KeyPair) error {
	key := client.ObjectKey{Namespace: c.Namespace, Name: resources.ClientSecretName(c.Name)}
	if err := r.Get(ctx, key, &corev1.Secret{}); err == nil || !apierrors.IsNotFound(err) {
		return err
	}
	kp, err := ca.Issue(pki.CertRequest{CommonName: "quorum-client", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: certValidity})
	if err != nil {
		return err
	}
	return r.CreateOwned(ctx, c, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: c.Namespace, Labels: resources.ClusterLabels(c.Name)},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM, resources.KeyCA: ca.CertPEM},
	})
}

// ensureMemberSecret issues a member's own peer and server certificates,
// valid for its DNS names only: etcd checks a peer's certificate against
// the address it connects from by resolving those names.
func (r *Reconciler) ensureMemberSecret(ctx context.Context, c *quorumv1alpha1.EtcdCluster, member string) error {
	if !resources.AutoTLS(c) {
		return nil
	}
	key := client.ObjectKey{Namespace: c.Namespace, Name: resources.MemberSecretName(member)}
	if err := r.Get(ctx, key, &corev1.Secret{}); err == nil || !apierrors.IsNotFound(err) {
		return err
	}
	ca, err := r.ensureCA(ctx, c)
	if err != nil {
		return err
	}
	host := resources.MemberHost(member, c.Name, c.Namespace)
	names := []string{host, host + ".cluster.local", member}
	peer, err := ca.Issue(pki.CertRequest{
		CommonName: member, DNSNames: names,
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		Validity: certValidity,
	})
	if err != nil {
		return err
	}
	client := resources.ClientServiceName(c.Name)
	server, err := ca.Issue(pki.CertRequest{
		CommonName: member,
		DNSNames: append(names, client, client+"."+c.Namespace, client+"."+c.Namespace+".svc",
			client+"."+c.Namespace+".svc.cluster.local", "localhost"),
		IPs:      []net.IP{net.ParseIP("127.0.0.1")},
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		Validity: certValidity,
	})
	if err != nil {
		return err
	}
	labels := resources.ClusterLabels(c.Name)
	labels[resources.LabelMember] = member
	return r.CreateOwned(ctx, c, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: c.Namespace, Labels: labels},
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			resources.KeyPeerCert: peer.CertPEM, resources.KeyPeerKey: peer.KeyPEM,
			resources.KeyServerCert: server.CertPEM, resources.KeyServerKey: server.KeyPEM,
			resources.KeyCA: ca.CertPEM,
		},
	})
}

// clientTLS is the operator's TLS config toward the cluster's members,
// checked first: a certificate that cannot work is the operator's trouble,
// reported as such, never mistaken for members that do not answer.
func (r *Reconciler) clientTLS(ctx context.Context, c *quorumv1alpha1.EtcdCluster, now time.Time) (*tls.Config, error) {
	name := resources.ClientSecretOf(c)
	secret := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, secret); err != nil {
		return nil, fmt.Errorf("reading the client certificate Secret %s: %w", name, err)
	}
	if err := pki.CheckClient(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey], secret.Data[resources.KeyCA], now); err != nil {
		return nil, fmt.Errorf("the Secret %s: %w", name, err)
	}
	cfg, err := pki.ClientTLSConfig(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey], secret.Data[resources.KeyCA])
	if err != nil {
		return nil, fmt.Errorf("the Secret %s: %w", name, err)
	}
	return cfg, nil
}
