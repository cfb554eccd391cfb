package pki

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
)

// Fingerprint identifies a certificate: the first 16 hex digits of the
// SHA-256 of its DER encoding.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:8])
}

// ParseBundle reads every certificate of a PEM bundle.
func ParseBundle(bundle []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, cert)
	}
	if len(out) == 0 {
		return nil, errors.New("pki: no PEM certificate in the bundle")
	}
	return out, nil
}

// BundleFingerprints are the fingerprints of a bundle's certificates, in
// order; nil when it cannot be read.
func BundleFingerprints(bundle []byte) []string {
	certs, err := ParseBundle(bundle)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(certs))
	for _, c := range certs {
		out = append(out, Fingerprint(c))
	}
	return out
}

// Bundle joins PEM certificates into one trust bundle.
func Bundle(certs ...[]byte) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		b.Write(bytes.TrimSpace(c))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// IssuedBy says whether ca signed cert.
func IssuedBy(cert, ca *x509.Certificate) bool {
	return cert != nil && ca != nil && cert.CheckSignatureFrom(ca) == nil
}

// IssuerIn is the fingerprint of the certificate of cas that signed cert;
// "" when none did.
func IssuerIn(cert *x509.Certificate, cas ...*x509.Certificate) string {
	for _, ca := range cas {
		if IssuedBy(cert, ca) {
			return Fingerprint(ca)
		}
	}
	return ""
}
