package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKubeadmFlags: the kubelet flags kubeadm writes for systemd are
// passed on, but for those the tool sets itself for the node's paths.
func TestKubeadmFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeadm-flags.env")
	env := `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///x.sock --hostname-override=worker-1 --register-with-taints=a=b:NoSchedule --node-labels=x=y"` + "\n"
	if err := os.WriteFile(path, []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := kubeadmFlags(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "--register-with-taints=a=b:NoSchedule --node-labels=x=y" {
		t.Fatalf("flags %q", got)
	}
}

// TestTenantNodeNames: tenant nodes get their own namespace, link, cgroup
// root and state folder, apart from the management nodes'.
func TestTenantNodeNames(t *testing.T) {
	n := tenantNode("worker-1", 3)
	c := &Cluster{State: "/state"}
	if n.IP != "10.250.0.23" || n.PodCIDR != "10.251.23.0/24" || n.Netns() != "quorum-t-worker-1" || n.hostVeth() != "q-t23" ||
		n.cgroupRoot() != "/quorum-t-worker-1" || c.nodeDir(n, "x") != "/state/tenant-nodes/worker-1/x" {
		t.Fatalf("tenant node %+v: netns %s, veth %s, cgroup %s, dir %s", n, n.Netns(), n.hostVeth(), n.cgroupRoot(), c.nodeDir(n, "x"))
	}
	for _, m := range Nodes {
		if m.IP == n.IP || m.PodCIDR == n.PodCIDR {
			t.Fatalf("tenant node %s overlaps %s", n.Name, m.Name)
		}
	}
	for _, bad := range []string{"Worker", "-a", "a_b", strings.Repeat("a", 41)} {
		if nodeNameShape.MatchString(bad) {
			t.Errorf("node name %q accepted", bad)
		}
	}
}
