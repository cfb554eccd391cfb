package pki

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NewCASecret makes a certificate authority and the kubernetes.io/tls
// Secret that holds it (tls.crt, tls.key).
func NewCASecret(object metav1.ObjectMeta, commonName string, validity time.Duration) (*KeyPair, *corev1.Secret, error) {
	ca, err := NewCA(commonName, validity)
	if err != nil {
		return nil, nil, err
	}
	return ca, &corev1.Secret{
		ObjectMeta: object,
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: ca.CertPEM, corev1.TLSPrivateKeyKey: ca.KeyPEM},
	}, nil
}

// CAFromSecret reads the CA a Secret made by NewCASecret holds.
func CAFromSecret(s *corev1.Secret) (*KeyPair, error) {
	return ParseKeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
}
