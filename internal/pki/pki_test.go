package pki

import (
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

func TestIssue(t *testing.T) {
	ca, err := NewCA("test-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatal("the CA cannot sign certificates")
	}
	kp, err := ca.Issue(CertRequest{
		CommonName: "member-1", Organization: []string{"etcd"},
		DNSNames: []string{"member-1.main-peer.ns.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")},
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		Validity: 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := kp.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "member-1.main-peer.ns.svc", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("the certificate does not verify for %v: %v", usage, err)
		}
	}
	if _, err := kp.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example"}); err == nil {
		t.Fatal("the certificate verifies for a name it does not carry")
	}
	if kp.Cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Fatal("the certificate outlives its CA")
	}
	if kp.Cert.IsCA {
		t.Fatal("a leaf certificate is a CA")
	}
	back, err := ParseKeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil || back.Cert.Subject.CommonName != "member-1" {
		t.Fatalf("ParseKeyPair = %v, %v", back, err)
	}
	if _, err := ca.Issue(CertRequest{CommonName: "no-usage", Validity: time.Hour}); err == nil {
		t.Fatal("a certificate without usages was issued")
	}
	if _, err := kp.Issue(CertRequest{CommonName: "x", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Fatal("a leaf certificate issued another")
	}
}

func TestKubeconfig(t *testing.T) {
	ca, _ := NewCA("ca", time.Hour)
	admin, _ := ca.Issue(CertRequest{CommonName: "admin", Organization: []string{"system:masters"}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: time.Hour})
	data, err := Kubeconfig("tenant-a", "https://api.tenant-a.example.com:6443", ca.CertPEM, "admin", admin)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if cfg.CurrentContext != "tenant-a" || ctx == nil || ctx.AuthInfo != "admin" {
		t.Fatalf("context %q: %+v", cfg.CurrentContext, ctx)
	}
	if c := cfg.Clusters["tenant-a"]; c == nil || c.Server != "https://api.tenant-a.example.com:6443" || !strings.Contains(string(c.CertificateAuthorityData), "BEGIN CERTIFICATE") {
		t.Fatalf("cluster entry %+v", c)
	}
	if u := cfg.AuthInfos["admin"]; u == nil || len(u.ClientCertificateData) == 0 || len(u.ClientKeyData) == 0 {
		t.Fatal("the user has no client certificate")
	}
}

// TestBundles: a bundle of two CAs reads back in order, and a leaf is
// told apart by the CA that issued it.
func TestBundles(t *testing.T) {
	old, err := NewCA("old", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	next, err := NewCA("new", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b := Bundle(old.CertPEM, next.CertPEM)
	fps := BundleFingerprints(b)
	if len(fps) != 2 || fps[0] != Fingerprint(old.Cert) || fps[1] != Fingerprint(next.Cert) || fps[0] == fps[1] {
		t.Fatalf("fingerprints %v of a bundle of two CAs", fps)
	}
	leaf, err := next.Issue(CertRequest{CommonName: "x", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if IssuedBy(leaf.Cert, old.Cert) || !IssuedBy(leaf.Cert, next.Cert) {
		t.Fatal("a leaf of the new CA is not told apart from the old")
	}
	if got := IssuerIn(leaf.Cert, old.Cert, next.Cert); got != Fingerprint(next.Cert) {
		t.Fatalf("issuer %s, want the new CA's %s", got, Fingerprint(next.Cert))
	}
	if BundleFingerprints([]byte("junk")) != nil {
		t.Fatal("junk read as a bundle")
	}
}
