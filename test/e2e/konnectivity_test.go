package e2e

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/hack/local-cluster/cluster"
	"quorum.dev/quorum/internal/resources"
)

// (issue 16) The konnectivity add-on: the hosted apiservers reach kubelets
// they cannot reach directly through the agents on the nodes.

// waitAddonsReady waits for the n add-ons in status.addons to be ready,
// the DaemonSets' (kube-proxy, konnectivity) on each of the nodes.
func waitAddonsReady(t *testing.T, cp *quorumv1alpha1.ControlPlane, n, nodes int, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	eventually(t, fmt.Sprintf("%d add-ons ready on %d nodes", n, nodes), timeout, func() (bool, string) {
		st := getControlPlane(t, cp.Namespace, cp.Name).Status.Addons
		ready := len(st) == n
		for _, a := range st {
			ready = ready && a.Desired > 0 && a.Ready == a.Desired
			if a.Name == resources.AddonKubeProxy || a.Name == resources.AddonKonnectivity {
				ready = ready && a.Desired == int32(nodes)
			}
		}
		return ready, fmt.Sprintf("status.addons %+v", st)
	})
	t.Logf("%d add-ons ready on %d nodes %s after the last join", n, nodes, time.Since(start).Round(100*time.Millisecond))
}

// isolateKubelets makes the tenant nodes' kubelets refuse every
// connection but their own node's, as nodes behind a firewall would, and
// checks from this machine (which reached them before) that they do.
func isolateKubelets(t *testing.T, nodes ...string) {
	t.Helper()
	tenants, err := local.TenantNodes()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range nodes {
		addr := net.JoinHostPort(tenants[name].IP, "10250")
		if conn, err := net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
			t.Fatalf("the kubelet of %s is not reachable before it is isolated: %v", name, err)
		} else {
			_ = conn.Close()
		}
		undo, err := local.IsolateKubelet(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := undo(); err != nil {
				t.Errorf("undo the isolation of %s: %v", name, err)
			}
		})
		if conn, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
			_ = conn.Close()
			t.Fatalf("the kubelet of %s still answers %s after its isolation", name, addr)
		}
	}
	t.Logf("the kubelets of %s refuse connections from outside their node", strings.Join(nodes, ", "))
}

// assertTunnel runs a pod on node, whose kubelet is isolated, and reads
// its logs and runs a command in it through the hosted endpoint: the
// apiservers can only have reached it through konnectivity.
func assertTunnel(t *testing.T, cp *quorumv1alpha1.ControlPlane, kubeconfig, node string) {
	t.Helper()
	ctx := context.Background()
	ns := "e2e-konnectivity"
	hostedKubectl(t, kubeconfig, "create", "namespace", ns)
	hostedKubectl(t, kubeconfig, "-n", ns, "run", "tunnel", "--image", cluster.BusyboxImage, "--restart", "Never",
		"--overrides", `{"spec":{"nodeName":"`+node+`"}}`, "--", "sh", "-c", "echo hello through the tunnel; exec sleep 3600")
	hosted := hostedClientset(t, kubeconfig)
	eventually(t, "the pod Running on "+node, 3*time.Minute, func() (bool, string) {
		p, err := hosted.CoreV1().Pods(ns).Get(ctx, "tunnel", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == "Running", string(p.Status.Phase)
	})
	start := time.Now()
	eventually(t, "the pod's logs through konnectivity", 2*time.Minute, func() (bool, string) {
		out, err := exec.Command(local.Kubectl(), "--kubeconfig", kubeconfig, "--request-timeout=20s", "-n", ns, "logs", "tunnel").CombinedOutput()
		return err == nil && strings.Contains(string(out), "hello through the tunnel"), string(out)
	})
	if out := hostedKubectl(t, kubeconfig, "-n", ns, "exec", "tunnel", "--", "sh", "-c", "echo exec on $(hostname)"); !strings.Contains(out, "exec on tunnel") {
		t.Fatalf("kubectl exec through konnectivity: %q", out)
	}
	st := getControlPlane(t, cp.Namespace, cp.Name).Status.Addons
	for _, a := range st {
		if a.Name == resources.AddonKonnectivity {
			t.Logf("logs (%s after the pod ran) and exec reached the isolated kubelet of %s through konnectivity %s (%d of %d agents ready)",
				time.Since(start).Round(100*time.Millisecond), node, a.Version, a.Ready, a.Desired)
		}
	}
	hostedKubectl(t, kubeconfig, "delete", "namespace", ns, "--wait=false")
}
