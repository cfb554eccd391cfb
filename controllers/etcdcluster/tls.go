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

const caValidity = 10 * 365 * 24 * time.Hour

// annotationIssuedAt on a certificate Secret is when the operator last
// issued it: a member whose pod is older runs the certificate before, and
// is restarted onto the new one.
const annotationIssuedAt = "quorum.dev/issued-at"

// certValidity is how long member and client certificates are issued for.
func certValidity(c *quorumv1alpha1.EtcdCluster) time.Duration {
	if d := c.Spec.TLS.CertificateValidity; d != nil && d.Duration > 0 {
		return d.Duration
	}
	return pki.DefaultLeafValidity
}

// renewBefore is how long before it expires a certificate is reissued.
func renewBefore(c *quorumv1alpha1.EtcdCluster) time.Duration {
	if d := c.Spec.TLS.CertificateRenewBefore; d != nil && d.Duration > 0 {
		return d.Duration
	}
	return 720 * time.Hour
}

// issuedAnnotations marks a certificate Secret with its issue time.
func issuedAnnotations(now time.Time) map[string]string {
	return map[string]string{annotationIssuedAt: now.UTC().Format(time.RFC3339)}
}

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
// control planes and backups that use this cluster) authenticate with, and
// reissues it in place once it is inside its renewal window: clients read
// the Secret again (the operator on every pass).
func (r *Reconciler) ensureClientSecret(ctx context.Context, c *quorumv1alpha1.EtcdCluster, ca *pki.KeyPair) error {
	key := client.ObjectKey{Namespace: c.Namespace, Name: resources.ClientSecretName(c.Name)}
	existing := &corev1.Secret{}
	err := r.Get(ctx, key, existing)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	now := r.Clock()
	if err == nil && !renewalDue(c, existing.Data[corev1.TLSCertKey], ca, now) {
		return nil
	}
	kp, err2 := ca.Issue(pki.CertRequest{CommonName: "quorum-client", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: certValidity(c), Now: now})
	if err2 != nil {
		return err2
	}
	data := map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM, resources.KeyCA: ca.CertPEM}
	if err != nil {
		return r.CreateOwned(ctx, c, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: c.Namespace, Labels: resources.ClusterLabels(c.Name), Annotations: issuedAnnotations(now)},
			Type:       corev1.SecretTypeTLS,
			Data:       data,
		})
	}
	existing.Data = data
	if existing.Annotations == nil {
		existing.Annotations = map[string]string{}
	}
	existing.Annotations[annotationIssuedAt] = issuedAnnotations(now)[annotationIssuedAt]
	if err := r.Update(ctx, existing); err != nil {
		return err
	}
	r.Event(c, corev1.EventTypeNormal, "CertificateRenewed", fmt.Sprintf("reissued the client certificate in %s, valid until %s", key.Name, kp.Cert.NotAfter.UTC().Format(time.RFC3339)))
	return nil
}

// renewalDue says whether the certificate in certPEM must be reissued: it
// cannot be read, or it expires within renewBefore and a new one from ca
// would outlive it (a certificate cannot outlive its CA: then the CA must
// be rotated, and CertificatesExpiring says so).
func renewalDue(c *quorumv1alpha1.EtcdCluster, certPEM []byte, ca *pki.KeyPair, now time.Time) bool {
	cert, err := pki.ParseCertificate(certPEM)
	if err != nil {
		return true
	}
	return pki.RenewalDue(cert.NotAfter, ca.Cert.NotAfter, now, renewBefore(c))
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
	data, err := r.memberCertificates(ctx, c, member)
	if err != nil {
		return err
	}
	labels := resources.ClusterLabels(c.Name)
	labels[resources.LabelMember] = member
	return r.CreateOwned(ctx, c, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: c.Namespace, Labels: labels, Annotations: issuedAnnotations(r.Clock())},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	})
}

// renewMemberSecret reissues a member's certificates in its Secret; the
// member runs them once its pod is restarted (a separate, recorded step).
func (r *Reconciler) renewMemberSecret(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	secret := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: resources.MemberSecretName(a.member)}, secret); err != nil {
		return err
	}
	data, err := r.memberCertificates(ctx, c, a.member)
	if err != nil {
		return err
	}
	secret.Data = data
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[annotationIssuedAt] = issuedAnnotations(r.Clock())[annotationIssuedAt]
	if err := r.Update(ctx, secret); err != nil {
		return err
	}
	r.Event(c, corev1.EventTypeNormal, "CertificateRenewed", a.message)
	return nil
}

// memberCertificates issues a member's peer and server certificates.
func (r *Reconciler) memberCertificates(ctx context.Context, c *quorumv1alpha1.EtcdCluster, member string) (map[string][]byte, error) {
	ca, err := r.ensureCA(ctx, c)
	if err != nil {
		return nil, err
	}
	host := resources.MemberHost(member, c.Name, c.Namespace)
	names := []string{host, host + ".cluster.local", member}
	peer, err := ca.Issue(pki.CertRequest{
		CommonName: member, DNSNames: names,
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		Validity: certValidity(c), Now: r.Clock(),
	})
	if err != nil {
		return nil, err
	}
	client := resources.ClientServiceName(c.Name)
	server, err := ca.Issue(pki.CertRequest{
		CommonName: member,
		DNSNames: append(names, client, client+"."+c.Namespace, client+"."+c.Namespace+".svc",
			client+"."+c.Namespace+".svc.cluster.local", "localhost"),
		IPs:      []net.IP{net.ParseIP("127.0.0.1")},
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		Validity: certValidity(c), Now: r.Clock(),
	})
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		resources.KeyPeerCert: peer.CertPEM, resources.KeyPeerKey: peer.KeyPEM,
		resources.KeyServerCert: server.CertPEM, resources.KeyServerKey: server.KeyPEM,
		resources.KeyCA: ca.CertPEM,
	}, nil
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
