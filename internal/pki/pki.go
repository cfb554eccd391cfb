// Package pki makes the certificate authorities, certificates and
// kubeconfigs Quorum hands to etcd members and control-plane components.
//
// Keys are ECDSA P-256: every component Quorum runs (etcd, kube-apiserver,
// kubelet, clients) accepts them, and they are cheap to generate, which
// matters when a reconcile issues a certificate for every new member.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// KeyPair is a certificate and its private key, parsed and PEM-encoded.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// CertRequest describes a certificate to issue.
type CertRequest struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	// Usages are the extended key usages: x509.ExtKeyUsageServerAuth,
	// x509.ExtKeyUsageClientAuth or both (peer certificates).
	Usages   []x509.ExtKeyUsage
	Validity time.Duration
	// Now is the issue time; zero is the wall clock. Controllers pass
	// their own clock, so a test that moves it issues coherent dates.
	Now time.Time
}

// clockSkew backdates every certificate, so a node whose clock is slightly
// behind does not reject a certificate issued a moment ago.
const clockSkew = 5 * time.Minute

// NewCA makes a self-signed certificate authority.
func NewCA(commonName string, validity time.Duration) (*KeyPair, error) {
	key, serial, err := newKeyAndSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return newKeyPair(der, key)
}

// Issue signs a new certificate for req with the CA.
func (ca *KeyPair) Issue(req CertRequest) (*KeyPair, error) {
	if !ca.Cert.IsCA {
		return nil, errors.New("pki: issuing certificate is not a CA")
	}
	if len(req.Usages) == 0 {
		return nil, errors.New("pki: a certificate needs at least one extended key usage")
	}
	key, serial, err := newKeyAndSerial()
	if err != nil {
		return nil, err
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	notAfter := now.Add(req.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		// A certificate outliving its CA would fail verification anyway.
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.CommonName, Organization: req.Organization},
		DNSNames:     req.DNSNames,
		IPAddresses:  req.IPs,
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  req.Usages,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	return newKeyPair(der, key)
}

// ParseKeyPair reads a PEM certificate and PEM private key.
func ParseKeyPair(certPEM, keyPEM []byte) (*KeyPair, error) {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("pki: no PEM block in the private key")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if ec, ecErr := x509.ParseECPrivateKey(block.Bytes); ecErr == nil {
			parsed = ec
		} else {
			return nil, fmt.Errorf("pki: parsing the private key: %w", err)
		}
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, errors.New("pki: the private key cannot sign")
	}
	return &KeyPair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// ParseCertificate reads the first certificate of a PEM bundle.
func ParseCertificate(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("pki: no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// NewServiceAccountKey makes the key pair kube-apiserver signs and verifies
// service-account tokens with, PEM-encoded (private PKCS#8, public PKIX).
func NewServiceAccountKey() (privatePEM, publicPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), nil
}

func newKeyPair(der []byte, key *ecdsa.PrivateKey) (*KeyPair, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &KeyPair{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// newKeyAndSerial makes the key and random serial of a new certificate.
func newKeyAndSerial() (*ecdsa.PrivateKey, *big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	return key, serial, nil
}

// ClientTLSConfig is a TLS client config authenticating with a certificate
// and its key, trusting only the CA bundle caPEM.
func ClientTLSConfig(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("no usable client certificate and key: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no CA certificate (ca.crt)")
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Default lifetimes of what Quorum issues: CAs for ten years, leaf
// certificates for one (renewed well before they expire).
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultLeafValidity = 365 * 24 * time.Hour
)

// CheckClient says whether a client certificate can be used at now: it
// parses with its key, is within its validity, and chains to a CA of the
// bundle caPEM for client authentication. A failure is the holder's own
// problem, whatever the servers it talks to are doing.
func CheckClient(certPEM, keyPEM, caPEM []byte, now time.Time) error {
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("no usable client certificate and key: %w", err)
	}
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("no CA certificate (ca.crt)")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("the client certificate %q (valid %s to %s) does not verify: %w",
			cert.Subject.CommonName, cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// RenewalDue says whether a certificate expiring at notAfter is reissued
// at now: inside renewBefore of its expiry, and only when a new one from
// the CA (which expires at caNotAfter) would outlive it. A certificate
// cannot outlive its CA, so one already ending with it is not reissued on
// every pass: the CA must be rotated.
func RenewalDue(notAfter, caNotAfter, now time.Time, renewBefore time.Duration) bool {
	return notAfter.Sub(now) < renewBefore && caNotAfter.After(notAfter)
}
