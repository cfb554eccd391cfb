package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/pki"
)

// What `kubeadm join` reads from a cluster, by the names kubeadm gives
// them (k8s.io/kubernetes/cmd/kubeadm/app/constants).
const (
	// ClusterInfoConfigMap, in kube-public, holds a kubeconfig with the
	// endpoint and the CA and nothing secret; kube-controller-manager's
	// bootstrapsigner adds a JWS signature per bootstrap token, which is
	// how a joining node checks it (token discovery).
	ClusterInfoConfigMap = "cluster-info"
	ClusterInfoKey       = "kubeconfig"
	// KubeadmConfigMap and KubeletConfigMap, in kube-system.
	KubeadmConfigMap        = "kubeadm-config"
	KubeadmClusterConfigKey = "ClusterConfiguration"
	KubeletConfigMap        = "kubelet-config"
	KubeletConfigKey        = "kubelet"
	// NodeBootstrapGroup is the group kubeadm puts its bootstrap tokens in
	// (auth-extra-groups) and binds to node bootstrapping.
	NodeBootstrapGroup = "system:bootstrappers:kubeadm:default-node-token"
	// ClusterDomain is the hosted cluster's DNS domain.
	ClusterDomain = "cluster.local"
	// kubeadm's paths on a node.
	nodePKIDir = "/etc/kubernetes/pki"
)

// ClusterInfo is the kubeconfig of kube-public/cluster-info: the server
// and CA bundle of a control plane's admin kubeconfig, no user.
func ClusterInfo(adminKubeconfig []byte) ([]byte, error) {
	cfg, err := clientcmd.Load(adminKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading the admin kubeconfig: %w", err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster] == nil {
		return nil, fmt.Errorf("the admin kubeconfig names no cluster")
	}
	cl := cfg.Clusters[ctx.Cluster]
	out := clientcmdapi.NewConfig()
	out.Clusters[""] = &clientcmdapi.Cluster{Server: cl.Server, CertificateAuthorityData: cl.CertificateAuthorityData}
	return clientcmd.Write(*out)
}

// CACertHashes are kubeadm's --discovery-token-ca-cert-hash values for a
// PEM bundle: "sha256:" and the hex SHA-256 of each certificate's
// SubjectPublicKeyInfo.
func CACertHashes(bundle []byte) ([]string, error) {
	certs, err := pki.ParseBundle(bundle)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, cert := range certs {
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		out = append(out, "sha256:"+hex.EncodeToString(sum[:]))
	}
	return out, nil
}

// ClusterDNSIP is the hosted cluster's DNS Service address: the tenth of
// the Service range, as kubeadm picks it.
func ClusterDNSIP(cidr string) (net.IP, error) { return serviceRangeIP(cidr, 10) }

// EtcdServers is the apiservers' --etcd-servers for a control plane on an
// EtcdCluster or an external etcd; "" for stacked etcd, where each
// apiserver talks to its own member.
func EtcdServers(cp *quorumv1alpha1.ControlPlane) string {
	switch e := cp.Spec.Etcd; {
	case e.ClusterRef != nil:
		return fmt.Sprintf("https://%s.%s.svc:%d", ClientServiceName(e.ClusterRef.Name), cp.Namespace, ClientPort)
	case e.External != nil:
		return strings.Join(e.External.Endpoints, ",")
	}
	return ""
}

// KubeadmClusterConfiguration is kube-system/kubeadm-config's
// ClusterConfiguration: what kubeadm join reads of the cluster it joins.
// Stacked etcd is what kubeadm calls local.
func KubeadmClusterConfiguration(cp *quorumv1alpha1.ControlPlane) (string, error) {
	etcdServers := EtcdServers(cp)
	u, err := url.Parse(EndpointURL(cp))
	if err != nil {
		return "", err
	}
	etcd := map[string]any{"local": map[string]any{"dataDir": "/var/lib/etcd"}}
	if etcdServers != "" {
		etcd = map[string]any{"external": map[string]any{
			"endpoints": strings.Split(etcdServers, ","),
			"caFile":    nodePKIDir + "/etcd/ca.crt",
			"certFile":  nodePKIDir + "/apiserver-etcd-client.crt",
			"keyFile":   nodePKIDir + "/apiserver-etcd-client.key",
		}}
	}
	out, err := yaml.Marshal(map[string]any{
		"apiVersion":           "kubeadm.k8s.io/v1beta4",
		"kind":                 "ClusterConfiguration",
		"clusterName":          cp.Name,
		"kubernetesVersion":    cp.Spec.Version,
		"controlPlaneEndpoint": u.Host,
		"certificatesDir":      nodePKIDir,
		"imageRepository":      "registry.k8s.io",
		"networking":           map[string]any{"dnsDomain": ClusterDomain, "serviceSubnet": ServiceCIDR(cp)},
		"etcd":                 etcd,
	})
	return string(out), err
}

// KubeletConfiguration is kube-system/kubelet-config's: the kubelet
// configuration kubeadm join writes on every node, with the hosted
// cluster's DNS and the kubelet API authenticated by the cluster CA and
// authorized by the hosted API (so only the apiservers' kubelet client,
// bound to system:kubelet-api-admin, gets logs and exec).
func KubeletConfiguration(cp *quorumv1alpha1.ControlPlane) (string, error) {
	dns, err := ClusterDNSIP(ServiceCIDR(cp))
	if err != nil {
		return "", err
	}
	out, err := yaml.Marshal(map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1",
		"kind":       "KubeletConfiguration",
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true, "cacheTTL": "0s"},
			"x509":      map[string]any{"clientCAFile": nodePKIDir + "/ca.crt"},
		},
		"authorization":      map[string]any{"mode": "Webhook", "webhook": map[string]any{"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"}},
		"cgroupDriver":       "systemd",
		"clusterDNS":         []string{dns.String()},
		"clusterDomain":      ClusterDomain,
		"rotateCertificates": true,
		"staticPodPath":      "/etc/kubernetes/manifests",
		"tlsMinVersion":      TLSMinVersion,
	})
	return string(out), err
}
