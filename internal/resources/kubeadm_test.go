package resources

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/pki"
)

// TestCACertHashes: one kubeadm discovery hash per CA of a bundle (both
// during a CA rotation), each the SHA-256 of the public key as PKIX DER,
// here marshalled again from the parsed key rather than taken raw.
func TestCACertHashes(t *testing.T) {
	var bundle []byte
	var want []string
	for _, name := range []string{"old", "new"} {
		ca, err := pki.NewCA(name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(ca.Cert.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(der)
		want = append(want, "sha256:"+hex.EncodeToString(sum[:]))
		bundle = append(bundle, ca.CertPEM...)
		bundle = append(bundle, "-----BEGIN COMMENT-----\nAA==\n-----END COMMENT-----\n"...)
	}
	got, err := CACertHashes(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("hashes %v, want %v", got, want)
	}
	if _, err := CACertHashes([]byte("not PEM")); err == nil {
		t.Fatal("a bundle with no certificate gave hashes")
	}
}

// TestKubeadmConfigs: the ClusterConfiguration names the version, the
// endpoint, the Service range and the etcd the apiservers use (kubeadm's
// validation wants https endpoints with all three files, or local etcd);
// the kubelet's DNS is the tenth address of the Service range.
func TestKubeadmConfigs(t *testing.T) {
	cp := &quorumv1alpha1.ControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: "ns"}, Spec: quorumv1alpha1.ControlPlaneSpec{Version: "v1.36.3"}}
	cp.Spec.Etcd.ClusterRef = &quorumv1alpha1.LocalObjectReference{Name: "main"}
	cp.Spec.APIServer.ExtraArgs = map[string]string{"service-cluster-ip-range": "10.100.0.0/16"}
	out, err := KubeadmClusterConfiguration(cp)
	if err != nil {
		t.Fatal(err)
	}
	var cc struct {
		KubernetesVersion    string `json:"kubernetesVersion"`
		ControlPlaneEndpoint string `json:"controlPlaneEndpoint"`
		Networking           struct {
			ServiceSubnet string `json:"serviceSubnet"`
		} `json:"networking"`
		Etcd struct {
			Local    *struct{} `json:"local"`
			External *struct {
				Endpoints []string `json:"endpoints"`
			} `json:"external"`
		} `json:"etcd"`
	}
	if err := yaml.Unmarshal([]byte(out), &cc); err != nil {
		t.Fatal(err)
	}
	if cc.KubernetesVersion != "v1.36.3" || cc.ControlPlaneEndpoint != "tenant-apiserver.ns.svc:6443" || cc.Networking.ServiceSubnet != "10.100.0.0/16" {
		t.Errorf("ClusterConfiguration:\n%s", out)
	}
	if e := cc.Etcd.External; e == nil || cc.Etcd.Local != nil || len(e.Endpoints) != 1 || e.Endpoints[0] != "https://main-client.ns.svc:2379" {
		t.Errorf("etcd on an EtcdCluster:\n%s", out)
	}
	cp.Spec.Etcd = quorumv1alpha1.ControlPlaneEtcd{Stacked: &quorumv1alpha1.StackedEtcd{}}
	out, err = KubeadmClusterConfiguration(cp)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "local:") || strings.Contains(out, "external:") {
		t.Errorf("stacked etcd is kubeadm's local etcd:\n%s", out)
	}

	kubelet, err := KubeletConfiguration(cp)
	if err != nil {
		t.Fatal(err)
	}
	var kc struct {
		ClusterDNS []string `json:"clusterDNS"`
	}
	if err := yaml.Unmarshal([]byte(kubelet), &kc); err != nil {
		t.Fatal(err)
	}
	if len(kc.ClusterDNS) != 1 || kc.ClusterDNS[0] != "10.100.0.10" {
		t.Errorf("kubelet clusterDNS %v, want [10.100.0.10]", kc.ClusterDNS)
	}
}

// TestAddons: CoreDNS at kubeadm's version for the minor, its Service at
// the cluster DNS address, kube-proxy at the Kubernetes version reaching
// the endpoint; nothing asked, nothing made.
func TestAddons(t *testing.T) {
	for k8s, want := range map[string]string{"v1.35.4": "v1.13.1", "v1.36.3": "v1.14.2", "v1.40.0": "v1.14.2", "v1.30.1": "v1.12.0", "bad": "v1.12.0"} {
		if got := CoreDNSVersion(k8s); got != want {
			t.Errorf("CoreDNSVersion(%s) = %s, want %s", k8s, got, want)
		}
	}
	cp := &quorumv1alpha1.ControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: "t"}}
	cp.Spec.Endpoint.Port = 6443
	if a, err := Addons(cp, "v1.36.3"); err != nil || len(a) != 0 {
		t.Fatalf("no add-on asked: %v %v", a, err)
	}
	cp.Spec.APIServer.ExtraArgs = map[string]string{"service-cluster-ip-range": "10.100.0.0/16"}
	cp.Spec.Addons = quorumv1alpha1.ControlPlaneAddons{CoreDNS: &quorumv1alpha1.CoreDNSAddon{Replicas: ptr.To[int32](3)}, KubeProxy: &quorumv1alpha1.KubeProxyAddon{Mode: "nftables", MasqueradeAll: true, ConntrackMaxPerCore: ptr.To[int32](0)}}
	addons, err := Addons(cp, "v1.35.4")
	if err != nil || len(addons) != 2 {
		t.Fatalf("addons %v %v", addons, err)
	}
	var dns, proxy bool
	for _, a := range addons {
		for _, o := range a.Objects {
			switch o := o.(type) {
			case *corev1.Service:
				dns = o.Spec.ClusterIP == "10.100.0.10"
			case *appsv1.Deployment:
				if o.Spec.Template.Spec.Containers[0].Image != "registry.k8s.io/coredns/coredns:v1.13.1" || *o.Spec.Replicas != 3 {
					t.Errorf("CoreDNS Deployment: %s x%d", o.Spec.Template.Spec.Containers[0].Image, *o.Spec.Replicas)
				}
			case *appsv1.DaemonSet:
				proxy = o.Spec.Template.Spec.Containers[0].Image == "registry.k8s.io/kube-proxy:v1.35.4" && o.Spec.Template.Spec.HostNetwork
			case *corev1.ConfigMap:
				if o.Name == KubeProxyName && (!strings.Contains(o.Data["kubeconfig.conf"], "server: "+EndpointURL(cp)) || !strings.Contains(o.Data["config.conf"], "mode: nftables") ||
					!strings.Contains(o.Data["config.conf"], "nftables:\n  masqueradeAll: true") || !strings.Contains(o.Data["config.conf"], "conntrack:\n  maxPerCore: 0\n  min: 0")) {
					t.Errorf("kube-proxy ConfigMap: %v", o.Data)
				}
			}
			if m, ok := o.(metav1.Object); !ok || m.GetLabels()[LabelAddon] != a.Name || m.GetLabels()[LabelManagedBy] != ManagedBy {
				t.Errorf("%T of %s is not labelled as Quorum's add-on", o, a.Name)
			}
		}
	}
	if !dns || !proxy {
		t.Errorf("kube-dns at .10: %v; kube-proxy DaemonSet at v1.35.4 on the host network: %v", dns, proxy)
	}
}
