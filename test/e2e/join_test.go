package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/hack/local-cluster/cluster"
	"quorum.dev/quorum/internal/resources"
)

// joinCommandShape is what `kubectl quorum join-command` prints.
var joinCommandShape = regexp.MustCompile(`^kubeadm join (\S+:\d+) --token ([a-z0-9]{6})\.([a-z0-9]{16})( --discovery-token-ca-cert-hash sha256:[0-9a-f]{64})+$`)

// assertJoinPath (issue 16): the way a node joins, short of a kubelet.
// `kubectl quorum join-command` makes a bootstrap token and prints the
// kubeadm join command; the real kubeadm's join preflight runs it, which
// discovers the cluster through the signed cluster-info (checking the CA
// hash) and reads kubeadm-config with the token; then the token does the
// kubelet's TLS bootstrap: it reads kubelet-config, asks for a node client
// certificate, kube-controller-manager approves and signs it, and that
// certificate authenticates as the node.
func assertJoinPath(t *testing.T, cp *quorumv1alpha1.ControlPlane) {
	t.Helper()
	ctx := context.Background()
	svc, err := kube.CoreV1().Services(cp.Namespace).Get(ctx, resources.EndpointServiceName(cp.Name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	server := fmt.Sprintf("https://%s:%d", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
	start := time.Now()
	out := strings.TrimSpace(quorumPlugin(t, cp.Namespace)("join-command", cp.Name, "--server", server, "--ttl", "1h"))
	m := joinCommandShape.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("join-command printed %q, want %s", out, joinCommandShape)
	}
	t.Logf("join-command: a signed token in %s", time.Since(start).Round(100*time.Millisecond))
	endpoint, tokenID, token := m[1], m[2], m[2]+"."+m[3]
	adminKubeconfig := secretData(t, cp.Namespace, resources.KubeconfigSecretName(cp.Name, resources.KubeconfigAdmin))
	admin, err := clientsetFrom(cp, adminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.CoreV1().Secrets(metav1.NamespaceSystem).Delete(context.Background(), "bootstrap-token-"+tokenID, metav1.DeleteOptions{})
	})

	// The endpoint's name (in cluster-info too) resolves inside the
	// management cluster; kubeadm runs here in its own mount namespace
	// whose /etc/hosts maps it to the Service address.
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"+svc.Spec.ClusterIP+" "+host+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-m", "sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, hosts,
		filepath.Join(local.Bin, "kubeadm"), "join", "phase", "preflight"}, strings.Fields(out)[2:]...)
	args = append(args, "--ignore-preflight-errors=all", "--node-name", "e2e-join", "-v=1")
	kubeadm := exec.Command("unshare", args...)
	kout, err := kubeadm.CombinedOutput()
	if err != nil {
		t.Fatalf("kubeadm join phase preflight: %v\n%s", err, kout)
	}
	for _, want := range []string{"Cluster info signature and contents are valid and TLS certificate validates against pinned roots", "[preflight] Reading configuration from the \"kubeadm-config\" ConfigMap"} {
		if !strings.Contains(string(kout), want) {
			t.Fatalf("kubeadm join phase preflight did not say %q:\n%s", want, kout)
		}
	}
	// kubeadm only warns about fields it does not know or values it
	// cannot take in the configurations it reads: those warnings fail here.
	for _, bad := range []string{"strict decoding error", "unknown field", "duplicate field"} {
		if strings.Contains(string(kout), bad) {
			t.Fatalf("kubeadm warned about the cluster's configuration (%q):\n%s", bad, kout)
		}
	}

	// The kubelet's TLS bootstrap, with the token.
	cfg, err := clientcmd.RESTConfigFromKubeConfig(adminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tokenCfg := &rest.Config{Host: server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: cfg.CAData}, Timeout: 10 * time.Second}
	asToken, err := kubernetes.NewForConfig(tokenCfg)
	if err != nil {
		t.Fatal(err)
	}
	who, err := asToken.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the bootstrap token: %v", err)
	}
	if who.Status.UserInfo.Username != "system:bootstrap:"+tokenID || !slices.Contains(who.Status.UserInfo.Groups, resources.NodeBootstrapGroup) {
		t.Fatalf("the bootstrap token authenticates as %+v", who.Status.UserInfo)
	}
	if _, err := asToken.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, resources.KubeletConfigMap, metav1.GetOptions{}); err != nil {
		t.Fatalf("the bootstrap token cannot read kubelet-config: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	node := "e2e-join-" + tokenID
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := asToken.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "node-csr-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the bootstrap token cannot ask for a node certificate: %v", err)
	}
	t.Cleanup(func() {
		_ = admin.CertificatesV1().CertificateSigningRequests().Delete(context.Background(), csr.Name, metav1.DeleteOptions{})
	})
	var issued []byte
	eventually(t, "the node's certificate request approved and signed", 2*time.Minute, func() (bool, string) {
		got, err := asToken.CertificatesV1().CertificateSigningRequests().Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		issued = got.Status.Certificate
		return len(issued) > 0, fmt.Sprintf("conditions %+v", got.Status.Conditions)
	})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	nodeCfg := &rest.Config{Host: server, Timeout: 10 * time.Second, TLSClientConfig: rest.TLSClientConfig{
		CAData: cfg.CAData, CertData: issued, KeyData: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})}}
	asNode, err := kubernetes.NewForConfig(nodeCfg)
	if err != nil {
		t.Fatal(err)
	}
	who, err = asNode.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the issued node certificate: %v", err)
	}
	if who.Status.UserInfo.Username != "system:node:"+node || !slices.Contains(who.Status.UserInfo.Groups, "system:nodes") {
		t.Fatalf("the issued node certificate authenticates as %+v", who.Status.UserInfo)
	}
	t.Logf("join path: kubeadm discovery and preflight passed, the token's node certificate issued; %s from join-command", time.Since(start).Round(100*time.Millisecond))
}

// secretData is a management-cluster Secret's kubeconfig.
func secretData(t *testing.T, ns, name string) []byte {
	t.Helper()
	s, err := kube.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Data[resources.KubeconfigKey]
}

// assertNodeJoins (issue 16 a): a tenant node of the local cluster joins
// the hosted cluster with the real kubeadm join (local-cluster
// join-node), is Ready there, runs a Deployment's pod, and the hosted
// API serves that pod's logs and an exec into it (the apiservers reach the
// node's kubelet with their kubelet client, bound to
// system:kubelet-api-admin).
func assertNodeJoins(t *testing.T, cp *quorumv1alpha1.ControlPlane, kubeconfig string) {
	t.Helper()
	ctx := context.Background()
	node := "worker-" + cp.Namespace[strings.LastIndex(cp.Namespace, "-")+1:]
	took, err := local.JoinNode(ctx, node, cp.Namespace+"/"+cp.Name)
	t.Cleanup(func() {
		if err := local.RemoveNode(context.Background(), node); err != nil {
			t.Errorf("remove-node %s: %v", node, err)
		}
	})
	if err != nil {
		t.Fatalf("join-node %s: %v", node, err)
	}
	t.Logf("tenant node %s Ready %s after join-node", node, took.Round(100*time.Millisecond))

	hostedKubectl(t, kubeconfig, "create", "namespace", "e2e-workload")
	hostedKubectl(t, kubeconfig, "-n", "e2e-workload", "create", "deployment", "hello", "--image", cluster.BusyboxImage, "--",
		"sh", "-c", "echo hello from the tenant node; exec sleep 3600")
	hostedKubectl(t, kubeconfig, "-n", "e2e-workload", "patch", "deployment", "hello", "--type", "merge", "-p",
		`{"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/hostname":"`+node+`"}}}}}`)
	hosted := hostedClientset(t, kubeconfig)
	var pod string
	eventually(t, "the Deployment's pod Running on "+node, 3*time.Minute, func() (bool, string) {
		pods, err := hosted.CoreV1().Pods("e2e-workload").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
		if err != nil {
			return false, err.Error()
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName == node && p.Status.Phase == "Running" && p.DeletionTimestamp == nil {
				pod = p.Name
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d pods: %v", len(pods.Items), podPhases(pods.Items))
	})
	eventually(t, "the pod's logs through the hosted API", time.Minute, func() (bool, string) {
		out, err := exec.Command(local.Kubectl(), "--kubeconfig", kubeconfig, "--request-timeout=20s", "-n", "e2e-workload", "logs", pod).CombinedOutput()
		return err == nil && strings.Contains(string(out), "hello from the tenant node"), string(out)
	})
	if out := hostedKubectl(t, kubeconfig, "-n", "e2e-workload", "exec", pod, "--", "sh", "-c", "echo exec on $(hostname)"); !strings.Contains(out, "exec on "+pod) {
		t.Fatalf("kubectl exec through the hosted API: %q", out)
	}
	t.Logf("a Deployment's pod ran on %s; logs and exec through the hosted endpoint work", node)

	// (issue 16 a) The add-ons run on the node: kube-proxy makes the
	// hosted Service addresses, CoreDNS answers a Service's name at the
	// cluster DNS address the pod's resolv.conf names.
	waitAddonsReady(t, cp, 2, 1, 3*time.Minute)
	hostedKubectl(t, kubeconfig, "-n", "e2e-workload", "create", "service", "clusterip", "hello", "--tcp", "80:80")
	svcIP := hostedKubectl(t, kubeconfig, "-n", "e2e-workload", "get", "service", "hello", "-o", "jsonpath={.spec.clusterIP}")
	// Names only: nothing answers outside the cluster here, so a name
	// busybox also tries as is would wait on CoreDNS's forwarder.
	for _, name := range []string{"hello", "hello.e2e-workload.svc.cluster.local", "kubernetes.default.svc.cluster.local"} {
		want := svcIP
		if strings.HasPrefix(name, "kubernetes.") {
			want = hostedKubectl(t, kubeconfig, "-n", "default", "get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}")
		}
		eventually(t, name+" resolved through the hosted CoreDNS", 2*time.Minute, func() (bool, string) {
			// busybox's nslookup fails when any search domain has no
			// answer; the answer for the right one is what counts.
			out, _ := exec.Command(local.Kubectl(), "--kubeconfig", kubeconfig, "--request-timeout=20s", "-n", "e2e-workload", "exec", pod, "--",
				"nslookup", name).CombinedOutput()
			return strings.Contains(string(out), "Address: "+want+"\n"), string(out)
		})
	}
	t.Logf("from a pod on %s, Service names resolve through the hosted CoreDNS (hello is %s)", node, svcIP)
}

// assertAddons waits for the add-ons of a control plane whose apiservers
// run version to be at the versions that fit it, in the hosted cluster and
// in status.
func assertAddons(t *testing.T, ns, name, kubeconfig, version string) {
	t.Helper()
	dns := resources.CoreDNSVersion(version)
	eventually(t, "CoreDNS "+dns+" and kube-proxy "+version+" installed", 2*time.Minute, func() (bool, string) {
		st := getControlPlane(t, ns, name).Status.Addons
		if len(st) != 2 || st[0].Name != resources.AddonCoreDNS || st[0].Version != dns || st[1].Version != version {
			return false, fmt.Sprintf("status.addons %+v", st)
		}
		images := hostedKubectlOut(kubeconfig, "-n", "kube-system", "get", "deployment/coredns", "daemonset/kube-proxy",
			"-o", "jsonpath={.items[*].spec.template.spec.containers[0].image}")
		return images == resources.CoreDNSImage(dns)+" "+resources.KubeProxyImage(version), images
	})
}

func podPhases(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name+"@"+p.Spec.NodeName+"="+string(p.Status.Phase))
	}
	return out
}
