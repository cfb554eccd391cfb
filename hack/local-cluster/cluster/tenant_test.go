package cluster

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// TestTenantIndexesClaimedSideBySide: joins run side by side (e2e cases);
// each node gets its own index (its address, link and pod range), and a
// tenth is refused.
func TestTenantIndexesClaimedSideBySide(t *testing.T) {
	c := &Cluster{State: t.TempDir()}
	errs := make(chan error, maxTenantNodes+1)
	for i := 0; i <= maxTenantNodes; i++ {
		go func() {
			_, err := c.claimTenantIndex(fmt.Sprintf("worker-%d", i), &tenantRecord{ControlPlane: "ns/cp"})
			errs <- err
		}()
	}
	refused := 0
	for i := 0; i <= maxTenantNodes; i++ {
		if err := <-errs; err != nil {
			if !strings.Contains(err.Error(), "at most") {
				t.Fatal(err)
			}
			refused++
		}
	}
	nodes, err := c.TenantNodes()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]string{}
	for name, n := range nodes {
		if other, ok := seen[n.index]; ok {
			t.Fatalf("%s and %s both got index %d", name, other, n.index)
		}
		seen[n.index] = name
	}
	if refused != 1 || len(nodes) != maxTenantNodes {
		t.Fatalf("%d refused, %d nodes; want 1 and %d", refused, len(nodes), maxTenantNodes)
	}
	if _, err := c.claimTenantIndex("worker-0", &tenantRecord{}); err == nil || !strings.Contains(err.Error(), "exists") && !strings.Contains(err.Error(), "at most") {
		t.Fatalf("a second claim of one name: %v", err)
	}
}

// TestSuperviseRestartsAndStops: a daemon with restart runs its command
// again after it exits, saying so, and SIGTERM stops the command and the
// loop.
func TestSuperviseRestartsAndStops(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "runs")
	var out bytes.Buffer
	// The command counts its runs, exits at once the first time and runs
	// on the second.
	cmd := exec.Command("sh", "-c", supervise, "kubelet-x", "sh", "-c",
		`echo run >> "$1"; [ "$(wc -l < "$1")" -ge 2 ] && exec sleep 61.5; exit 3`, "sh", count)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, _ := os.ReadFile(count)
		if strings.Count(string(data), "run") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the command ran %d times in 15s, want 2; output %q", strings.Count(string(data), "run"), out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the second run is sleeping
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the loop ended with %v on SIGTERM, want status 0", err)
		}
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the loop did not stop on SIGTERM")
	}
	if got := out.String(); !strings.Contains(got, "local-cluster: kubelet-x exited with status 3; restarting it in 5s") {
		t.Errorf("output %q does not say the exit", got)
	}
	if out, err := exec.Command("pgrep", "-fx", "sleep 61.5").CombinedOutput(); err == nil {
		t.Errorf("the command outlived the loop: %s", out)
	}
}
