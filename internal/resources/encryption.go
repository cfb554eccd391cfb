package resources

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// Encryption at rest of a hosted cluster: the apiservers encrypt Secrets
// with secretbox before they reach etcd (and every snapshot of it). The
// EncryptionConfiguration lives in its own Secret, never regenerated once
// made, because losing the key loses every Secret of the hosted cluster.

// EncryptionConfigKey is the key of the EncryptionConfiguration in the
// encryption Secret.
const EncryptionConfigKey = "encryption-config.yaml"

// encryptionDir is where apiservers mount the encryption Secret.
const encryptionDir = "/etc/kubernetes/encryption"

// EncryptionSecretName is the Secret holding a control plane's
// EncryptionConfiguration and keys.
func EncryptionSecretName(cp string) string { return cp + "-encryption" }

// EncryptionKey is one secretbox key: a name and 32 random bytes.
type EncryptionKey struct {
	Name   string
	Secret []byte
}

// NewEncryptionKey makes a secretbox key.
func NewEncryptionKey(name string) (EncryptionKey, error) {
	k := EncryptionKey{Name: name, Secret: make([]byte, 32)}
	_, err := rand.Read(k.Secret)
	return k, err
}

// EncryptionConfig renders the apiserver's EncryptionConfiguration: Secrets
// written with the first key, read with any of them, and read as plain
// text when they were stored before encryption was on (identity last).
func EncryptionConfig(keys []EncryptionKey) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - secretbox:\n      keys:\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "      - name: %s\n        secret: %s\n", k.Name, base64.StdEncoding.EncodeToString(k.Secret))
	}
	b.WriteString("  - identity: {}\n")
	return []byte(b.String())
}

// ParseEncryptionConfig reads the secretbox keys of an
// EncryptionConfiguration EncryptionConfig rendered, in order.
func ParseEncryptionConfig(data []byte) ([]EncryptionKey, error) {
	var cfg struct {
		Resources []struct {
			Providers []struct {
				Secretbox *struct {
					Keys []struct {
						Name   string `json:"name"`
						Secret string `json:"secret"`
					} `json:"keys"`
				} `json:"secretbox"`
			} `json:"providers"`
		} `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return nil, err
	}
	var keys []EncryptionKey
	for _, r := range cfg.Resources {
		for _, p := range r.Providers {
			if p.Secretbox == nil {
				continue
			}
			for _, k := range p.Secretbox.Keys {
				secret, err := base64.StdEncoding.DecodeString(k.Secret)
				if err != nil || len(secret) != 32 {
					return nil, fmt.Errorf("secretbox key %s is not 32 bytes of base64", k.Name)
				}
				keys = append(keys, EncryptionKey{Name: k.Name, Secret: secret})
			}
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no secretbox key in the encryption configuration")
	}
	return keys, nil
}
