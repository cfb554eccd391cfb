package etcdcluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/reconciler"
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

// caKeys are the cluster's CA as certificates are issued from it: the CA
// that issues leaves, and the trust bundle every holder verifies with.
type caKeys struct {
	issuer *pki.KeyPair
	trust  []byte
}

// ensureCA returns the cluster's CA, creating its Secret on first use. A
// new Secret records the rotate-ca annotation the cluster was made with as
// answered: only a new value rotates.
func (r *Reconciler) ensureCA(ctx context.Context, c *quorumv1alpha1.EtcdCluster) (*caKeys, error) {
	secret := &corev1.Secret{}
	err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: resources.CASecretName(c.Name)}, secret)
	if err == nil {
		ca, err := pki.CAFromSecret(secret)
		if err != nil {
			return nil, err
		}
		return &caKeys{issuer: ca, trust: resources.CATrust(secret.Data)}, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	ca, secret, err := pki.NewCASecret(
		metav1.ObjectMeta{Name: resources.CASecretName(c.Name), Namespace: c.Namespace, Labels: resources.ClusterLabels(c.Name),
			Annotations: map[string]string{reconciler.AnnotationCARotationTrigger: c.Annotations[reconciler.AnnotationRotateCA]}},
		caCommonName(c, r.Clock()), caValidity)
	if err != nil {
		return nil, err
	}
	if err := r.CreateOwned(ctx, c, secret); err != nil {
		return nil, err
	}
	return &caKeys{issuer: ca, trust: ca.CertPEM}, nil
}

// caCommonName names a CA of c made at now: each CA of a cluster has its
// own name, so the old and the new are told apart in a bundle.
func caCommonName(c *quorumv1alpha1.EtcdCluster, now time.Time) string {
	return fmt.Sprintf("etcd-ca %s/%s %s", c.Namespace, c.Name, now.UTC().Format("20060102T150405Z"))
}

// ensureClientSecret makes the client certificate the operator (and the
// control planes and backups that use this cluster) authenticate with, and
// keeps it current in place: reissued inside its renewal window or when
// another CA issues leaves, its ca.crt following the trust bundle. Clients
// read the Secret again (the operator on every pass).
func (r *Reconciler) ensureClientSecret(ctx context.Context, c *quorumv1alpha1.EtcdCluster, ca *caKeys) error {
	key := client.ObjectKey{Namespace: c.Namespace, Name: resources.ClientSecretName(c.Name)}
	existing := &corev1.Secret{}
	err := r.Get(ctx, key, existing)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	now := r.Clock()
	if err == nil && foreignLeaf(existing.Data[corev1.TLSCertKey], ca) {
		// Not a certificate of this cluster's CAs: someone put it there.
		// It is left for a person; EtcdUnreachable says the members refuse it.
		return nil
	}
	var data map[string][]byte
	var why string
	switch {
	case err == nil && !leafDue(c, existing.Data[corev1.TLSCertKey], ca, now) && bytes.Equal(existing.Data[resources.KeyCA], ca.trust):
		return nil
	case err == nil && !leafDue(c, existing.Data[corev1.TLSCertKey], ca, now):
		// Only the trust bundle moved: the certificate stays.
		data = map[string][]byte{corev1.TLSCertKey: existing.Data[corev1.TLSCertKey], corev1.TLSPrivateKeyKey: existing.Data[corev1.TLSPrivateKeyKey], resources.KeyCA: ca.trust}
		why = fmt.Sprintf("the client certificate in %s now trusts %s", key.Name, trustSummary(ca.trust))
	default:
		kp, err2 := ca.issuer.Issue(pki.CertRequest{CommonName: "quorum-client", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: certValidity(c), Now: now})
		if err2 != nil {
			return err2
		}
		data = map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM, resources.KeyCA: ca.trust}
		why = fmt.Sprintf("reissued the client certificate in %s, valid until %s", key.Name, kp.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
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
	r.Event(c, corev1.EventTypeNormal, "CertificateRenewed", why)
	return nil
}

// trustSummary names the CAs of a trust bundle.
func trustSummary(trust []byte) string {
	certs, err := pki.ParseBundle(trust)
	if err != nil {
		return "an unreadable bundle"
	}
	var names []string
	for _, c := range certs {
		names = append(names, c.Subject.CommonName)
	}
	return strings.Join(names, " and ")
}

// foreignLeaf says whether certPEM is a readable certificate that none of
// the cluster's CAs (the issuing one, those of the trust bundle) issued.
func foreignLeaf(certPEM []byte, ca *caKeys) bool {
	cert, err := pki.ParseCertificate(certPEM)
	if err != nil {
		return false
	}
	cas, _ := pki.ParseBundle(ca.trust)
	return pki.IssuerIn(cert, append(cas, ca.issuer.Cert)...) == ""
}

// leafDue says whether the certificate in certPEM must be reissued: it
// cannot be read, another CA issued it (a rotation moved on), or it
// expires within renewBefore and a new one would outlive it (a certificate
// cannot outlive its CA: then the CA must be rotated, and
// CertificatesExpiring says so).
func leafDue(c *quorumv1alpha1.EtcdCluster, certPEM []byte, ca *caKeys, now time.Time) bool {
	cert, err := pki.ParseCertificate(certPEM)
	if err != nil || !pki.IssuedBy(cert, ca.issuer.Cert) {
		return true
	}
	return pki.RenewalDue(cert.NotAfter, ca.issuer.Cert.NotAfter, now, renewBefore(c))
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
	data, err := r.memberCertificates(c, ca, member)
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

// renewMemberSecret brings a member's Secret up to date: its certificates
// reissued (inside their renewal window, or when another CA issues), or
// only its trust bundle replaced. The member runs them once its pod is
// restarted (a separate, recorded step).
func (r *Reconciler) renewMemberSecret(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	secret := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: resources.MemberSecretName(a.member)}, secret); err != nil {
		return err
	}
	ca, err := r.ensureCA(ctx, c)
	if err != nil {
		return err
	}
	now := r.Clock()
	if !leafDue(c, secret.Data[resources.KeyPeerCert], ca, now) && !leafDue(c, secret.Data[resources.KeyServerCert], ca, now) {
		secret.Data[resources.KeyCA] = ca.trust
	} else {
		data, err := r.memberCertificates(c, ca, a.member)
		if err != nil {
			return err
		}
		secret.Data = data
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[annotationIssuedAt] = issuedAnnotations(now)[annotationIssuedAt]
	if err := r.Update(ctx, secret); err != nil {
		return err
	}
	r.Event(c, corev1.EventTypeNormal, "CertificateRenewed", a.message)
	return nil
}

// memberCertificates issues a member's peer and server certificates, with
// the trust bundle.
func (r *Reconciler) memberCertificates(c *quorumv1alpha1.EtcdCluster, ca *caKeys, member string) (map[string][]byte, error) {
	host := resources.MemberHost(member, c.Name, c.Namespace)
	names := []string{host, host + ".cluster.local", member}
	peer, err := ca.issuer.Issue(pki.CertRequest{
		CommonName: member, DNSNames: names,
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		Validity: certValidity(c), Now: r.Clock(),
	})
	if err != nil {
		return nil, err
	}
	client := resources.ClientServiceName(c.Name)
	server, err := ca.issuer.Issue(pki.CertRequest{
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
		resources.KeyCA: ca.trust,
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
