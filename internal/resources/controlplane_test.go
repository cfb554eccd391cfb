package resources

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

func containerNamed(cs []corev1.Container, name string) corev1.Container {
	i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		return corev1.Container{}
	}
	return cs[i]
}

// TestHardenedComponents: every component runs with profiling off and the
// TLS floor; the apiserver encrypts Secrets with the mounted
// configuration (the mount and the volume go with the flag), and admission
// plugins a user enables come on top of NodeRestriction.
func TestHardenedComponents(t *testing.T) {
	cp := &quorumv1alpha1.ControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: "ns"}, Spec: quorumv1alpha1.ControlPlaneSpec{Version: "v1.36.3"}}
	cp.Spec.APIServer.ExtraArgs = map[string]string{"enable-admission-plugins": "AlwaysPullImages"}
	containers, volumes := Replica{ControlPlane: cp, Version: "v1.36.3"}.Containers()
	for _, name := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		args := containerNamed(containers, name).Args
		for _, want := range []string{"--profiling=false", "--tls-min-version=VersionTLS12", "--tls-cipher-suites=" + TLSCipherSuites} {
			if !slices.Contains(args, want) {
				t.Errorf("%s runs without %s: %v", name, want, args)
			}
		}
	}
	api := containerNamed(containers, "kube-apiserver")
	if !slices.Contains(api.Args, "--encryption-provider-config=/etc/kubernetes/encryption/"+EncryptionConfigKey) {
		t.Errorf("the apiserver does not encrypt at rest: %v", api.Args)
	}
	if !slices.ContainsFunc(api.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "encryption" && m.ReadOnly }) ||
		!slices.ContainsFunc(volumes, func(v corev1.Volume) bool {
			return v.Name == "encryption" && v.Secret != nil && v.Secret.SecretName == EncryptionSecretName("tenant")
		}) {
		t.Errorf("the encryption Secret is not mounted read-only: mounts %v", api.VolumeMounts)
	}
	if !slices.Contains(api.Args, "--enable-admission-plugins=NodeRestriction,AlwaysPullImages") {
		t.Errorf("a user's admission plugins replaced NodeRestriction: %v", api.Args)
	}
	if names := ReplicaSecretNames(cp); names[len(names)-1] != EncryptionSecretName("tenant") {
		t.Errorf("the encryption Secret is not among the Secrets whose change rolls the replicas: %v", names)
	}
}

// TestEncryptionConfig: Secrets are written with the first key, every key
// reads, and Secrets stored before encryption still read (identity last).
func TestEncryptionConfig(t *testing.T) {
	a, err := NewEncryptionKey("key-a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewEncryptionKey("key-b")
	if len(a.Secret) != 32 || string(a.Secret) == string(b.Secret) {
		t.Fatalf("keys must be 32 random bytes")
	}
	cfg := string(EncryptionConfig([]EncryptionKey{a, b}))
	ia, ib, id := strings.Index(cfg, "name: key-a"), strings.Index(cfg, "name: key-b"), strings.Index(cfg, "identity: {}")
	if !strings.Contains(cfg, "kind: EncryptionConfiguration") || !strings.Contains(cfg, "resources: [secrets]") || ia < 0 || ib < ia || id < ib {
		t.Fatalf("configuration:\n%s", cfg)
	}
}

// TestAuditFlags: Stdout logs to "-"; Volume to a file on an emptyDir,
// rotated; both mount the policy ConfigMap read-only.
func TestAuditFlags(t *testing.T) {
	cp := &quorumv1alpha1.ControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: "ns"}, Spec: quorumv1alpha1.ControlPlaneSpec{Version: "v1.36.3"}}
	cp.Spec.APIServer.Audit = &quorumv1alpha1.APIServerAudit{PolicyConfigMapRef: quorumv1alpha1.LocalObjectReference{Name: "policy"}, Output: quorumv1alpha1.AuditStdout}
	containers, volumes := Replica{ControlPlane: cp, Version: "v1.36.3"}.Containers()
	api := containerNamed(containers, "kube-apiserver")
	if !slices.Contains(api.Args, "--audit-log-path=-") || !slices.Contains(api.Args, "--audit-policy-file=/etc/kubernetes/audit/policy.yaml") ||
		slices.ContainsFunc(api.Args, func(a string) bool { return strings.HasPrefix(a, "--audit-log-maxage") }) {
		t.Errorf("Stdout audit args %v", api.Args)
	}
	if !slices.ContainsFunc(volumes, func(v corev1.Volume) bool { return v.ConfigMap != nil && v.ConfigMap.Name == "policy" }) ||
		!slices.ContainsFunc(api.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "audit-policy" && m.ReadOnly }) {
		t.Errorf("the policy is not mounted: %v", volumes)
	}
	cp.Spec.APIServer.Audit.Output = quorumv1alpha1.AuditVolume
	cp.Spec.APIServer.Audit.MaxAge = ptr.To[int32](3)
	containers, volumes = Replica{ControlPlane: cp, Version: "v1.36.3"}.Containers()
	api = containerNamed(containers, "kube-apiserver")
	for _, want := range []string{"--audit-log-path=/var/log/kubernetes/audit/audit.log", "--audit-log-maxage=3", "--audit-log-maxsize=100", "--audit-log-maxbackup=10"} {
		if !slices.Contains(api.Args, want) {
			t.Errorf("Volume audit args %v lack %s", api.Args, want)
		}
	}
	if !slices.ContainsFunc(volumes, func(v corev1.Volume) bool { return v.Name == "audit-log" && v.EmptyDir != nil }) {
		t.Errorf("no audit-log volume: %v", volumes)
	}
	if got := ReplicaConfigMapNames(cp); !slices.Equal(got, []string{"policy"}) {
		t.Errorf("ReplicaConfigMapNames = %v", got)
	}
}

// TestParseEncryptionConfig: what EncryptionConfig writes reads back, keys
// in order.
func TestParseEncryptionConfig(t *testing.T) {
	a, _ := NewEncryptionKey("key-a")
	b, _ := NewEncryptionKey("key-b")
	keys, err := ParseEncryptionConfig(EncryptionConfig([]EncryptionKey{a, b}))
	if err != nil || len(keys) != 2 || keys[0].Name != "key-a" || string(keys[1].Secret) != string(b.Secret) {
		t.Fatalf("read back %v, %v", keys, err)
	}
	if _, err := ParseEncryptionConfig([]byte("kind: EncryptionConfiguration\n")); err == nil {
		t.Fatal("a configuration without a key was read")
	}
}
