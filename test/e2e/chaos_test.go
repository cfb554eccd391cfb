package e2e

// The robustness suite: fault scenarios under the linearizability-checked
// workload. `make chaos` runs every scenario (-chaos); the README's test
// command runs one scenario per kind of fault.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

var chaosAll = flag.Bool("chaos", false, "run every chaos scenario (make chaos), not only the representative subset")

// chaosLoad is the workload every scenario runs: 8 clients, 200 ops/s on
// 16 keys.
var chaosLoad = workloadOptions{clients: 8, rate: 200, keys: 16}

// chaosResult is one scenario's line in the summary.
type chaosResult struct {
	name    string
	passed  bool
	heal    time.Duration
	figures string
}

var (
	chaosMu      sync.Mutex
	chaosResults []chaosResult
)

func recordChaos(t *testing.T, name string, heal time.Duration, rep workloadReport) {
	t.Helper()
	line := fmt.Sprintf("healed in %s; %s", heal.Round(100*time.Millisecond), rep)
	t.Logf("chaos %s: %s", name, line)
	chaosMu.Lock()
	defer chaosMu.Unlock()
	chaosResults = append(chaosResults, chaosResult{name: name, passed: !t.Failed(), heal: heal, figures: rep.String()})
}

func TestChaos(t *testing.T) {
	scenarios := []struct {
		name   string
		subset bool
		run    func(*testing.T)
	}{
		{"kill -9 a follower's etcd, then the leader's", true, chaosKill},
		{"a slow member (SIGSTOP 20s, then SIGCONT): no membership churn", true, chaosSlowMember},
		{"a member's volume and pod lost", false, chaosVolumeLost},
		{"scale 1-3-5-3 under load", false, chaosScale},
		{"NOSPACE reached under load, recovered by the operator", false, chaosNoSpace},
		{"a learner stopped before its promotion: retried, not removed", false, chaosSlowLearner},
		{"a backup during a scale-up, restored; the operator killed in each", false, chaosBackupDuringChurn},
		{"an etcd rolling upgrade (previous patch release to the pinned one) under load", false, chaosEtcdUpgrade},
		{"quorum lost under Wait: nothing removed, nothing lost", false, chaosQuorumLossWait},
		{"quorum lost for good under ForceNewCluster: loses what it reports", true, chaosQuorumLossForce},
		{"quorum lost for good under RestoreFromBackup: loses what it reports", false, chaosQuorumLossRestore},
		{"a ControlPlane replica killed, then upgraded, with clients through the hosted API", false, chaosControlPlane},
		{"the leading manager killed at each step of a scale 3-5-3", false, chaosOperatorKilled},
		{"a learner that cannot start, removed after startTimeout", false, chaosLearnerCannotStart},
	}
	t.Run("side by side", func(t *testing.T) {
		for _, sc := range scenarios {
			if !sc.subset && !*chaosAll {
				continue
			}
			t.Run(sc.name, func(t *testing.T) {
				t.Parallel()
				sc.run(t)
			})
		}
	})
	// Scenarios that stop or cut a node run alone.
	if *chaosAll {
		t.Run("a follower's node cut off until it must catch up by snapshot", chaosBlackhole)
		t.Run("a whole zone lost and back", chaosZoneLost)
		// Freezing the leading manager stalls every cluster's repairs.
		t.Run("the leading manager frozen mid-change until its lease is lost", chaosLeaseLost)
	}
	chaosMu.Lock()
	defer chaosMu.Unlock()
	sort.Slice(chaosResults, func(i, j int) bool { return chaosResults[i].name < chaosResults[j].name })
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-70s %-6s %-9s %s\n", "scenario", "result", "healed", "workload")
	for _, r := range chaosResults {
		verdict := "PASS"
		if !r.passed {
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "%-70s %-6s %-9s %s\n", r.name, verdict, r.heal.Round(100*time.Millisecond), r.figures)
	}
	t.Log(b.String())
}

// chaosCluster is a healthy 3-member cluster under the workload.
func chaosCluster(t *testing.T, prefix string, mutate ...func(*quorumv1alpha1.EtcdCluster)) (string, *quorumv1alpha1.EtcdCluster, *workload) {
	t.Helper()
	ns := newNamespace(t, prefix)
	newEtcdCluster(t, ns, "main", 3, mutate...)
	c := waitHealthy(t, ns, "main", 3, 4*time.Minute)
	w := startWorkload(t, ns, "main", chaosLoad)
	time.Sleep(10 * time.Second) // a history before the fault
	return ns, c, w
}

func memberIDs(c *quorumv1alpha1.EtcdCluster) map[string]string {
	out := map[string]string{}
	for _, m := range c.Status.Members {
		out[m.Name] = m.ID
	}
	return out
}

// chaosKill (scenario 1): SIGKILL a follower's etcd, then the leader's;
// the kubelet restarts each from its volume, the membership stays.
func chaosKill(t *testing.T) {
	ns, c, w := chaosCluster(t, "chaos-kill")
	before := memberIDs(c)
	start := time.Now()
	for _, leader := range []bool{false, true} {
		c = getCluster(t, ns, "main")
		victim := ""
		for _, m := range c.Status.Members {
			if (m.Name == c.Status.Leader) == leader {
				victim = m.Name
				break
			}
		}
		if err := local.KillContainer(context.Background(), kube, ns, victim, "etcd"); err != nil {
			t.Fatalf("kill -9 %s: %v", victim, err)
		}
		t.Logf("killed etcd of %s (leader %v)", victim, leader)
		time.Sleep(3 * time.Second)
		waitHealthy(t, ns, "main", 3, 4*time.Minute)
		time.Sleep(10 * time.Second)
	}
	heal := time.Since(start) - 20*time.Second
	if after := memberIDs(getCluster(t, ns, "main")); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("members %v after restarts, want %v: a killed process is not a lost member", after, before)
	}
	recordChaos(t, "kill -9 follower then leader", heal, w.stop(t, ns, "main"))
}

// chaosSlowMember (scenario 11): a follower stopped for 20 s, then
// continued: nobody is replaced, no change is even recorded.
func chaosSlowMember(t *testing.T) {
	ns, c, w := chaosCluster(t, "chaos-slow")
	before := memberIDs(c)
	victim := ""
	for _, m := range c.Status.Members {
		if m.Name != c.Status.Leader {
			victim = m.Name
			break
		}
	}
	ctx := context.Background()
	if err := local.SignalContainer(ctx, kube, ns, victim, "etcd", "SIGSTOP"); err != nil {
		t.Fatalf("SIGSTOP %s: %v", victim, err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = local.SignalContainer(context.Background(), kube, ns, victim, "etcd", "SIGCONT")
		}
	})
	start := time.Now()
	for time.Since(start) < 20*time.Second {
		if p := getCluster(t, ns, "main").Status.PendingChange; p != nil {
			t.Errorf("a change was recorded for a member stopped %s: %+v", time.Since(start).Round(time.Second), p)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := local.SignalContainer(ctx, kube, ns, victim, "etcd", "SIGCONT"); err != nil {
		t.Fatalf("SIGCONT %s: %v", victim, err)
	}
	resumed = true
	cont := time.Now()
	waitHealthy(t, ns, "main", 3, 3*time.Minute)
	heal := time.Since(cont)
	time.Sleep(5 * time.Second)
	c = getCluster(t, ns, "main")
	if after := memberIDs(c); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("members %v after a slow member, want %v", after, before)
	}
	recordChaos(t, "slow member (SIGSTOP 20s)", heal, w.stop(t, ns, "main"))
}

// chaosVolumeLost (scenario 3): a follower's pod and volume deleted: a new
// member replaces it in its zone.
func chaosVolumeLost(t *testing.T) {
	ns, c, w := chaosCluster(t, "chaos-volume")
	var victim quorumv1alpha1.MemberStatus
	for _, m := range c.Status.Members {
		if m.Name != c.Status.Leader {
			victim = m
			break
		}
	}
	ctx := context.Background()
	start := time.Now()
	_ = kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, resources.PVCName(victim.Name), metav1.DeleteOptions{})
	_ = kube.CoreV1().Pods(ns).Delete(ctx, victim.Name, metav1.DeleteOptions{})
	eventually(t, "a new member in "+victim.Zone, 4*time.Minute, func() (bool, string) {
		c = getCluster(t, ns, "main")
		for _, m := range c.Status.Members {
			if m.ID == victim.ID {
				return false, "the old member is still listed"
			}
		}
		return zonesOf(c)[victim.Zone] == 1, fmt.Sprintf("zones %v", zonesOf(c))
	})
	waitHealthy(t, ns, "main", 3, 4*time.Minute)
	recordChaos(t, "member volume and pod lost", time.Since(start), w.stop(t, ns, "main"))
}

// chaosScale (scenario 8): 1 to 3 to 5 to 3 members under load.
func chaosScale(t *testing.T) {
	ns := newNamespace(t, "chaos-scale")
	newEtcdCluster(t, ns, "main", 1)
	waitHealthy(t, ns, "main", 1, 3*time.Minute)
	w := startWorkload(t, ns, "main", chaosLoad)
	start := time.Now()
	for _, n := range []int32{3, 5, 3} {
		scale(t, ns, "main", n)
		waitHealthy(t, ns, "main", int(n), 6*time.Minute)
	}
	recordChaos(t, "scale 1-3-5-3", time.Since(start), w.stop(t, ns, "main"))
}

// chaosNoSpace (scenario 10): a 64Mi quota filled by overwriting one key
// while the workload runs; the operator compacts, defragments, disarms.
func chaosNoSpace(t *testing.T) {
	quota := resource.MustParse("64Mi")
	ns, _, w := chaosCluster(t, "chaos-nospace", func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Maintenance.QuotaBackendBytes = &quota })
	fillUntilNoSpace(t, ns, "/big", false)
	heal := waitWritesAccepted(t, ns)
	time.Sleep(5 * time.Second)
	recordChaos(t, "NOSPACE under load", heal, w.stop(t, ns, "main"))
}

// chaosBlackhole (scenario 2): a follower's node cut off while the leader
// moves on by more than etcd keeps in its log, so that the follower can
// only catch up from a snapshot; it is not replaced (unhealthyAfter 10m).
func chaosBlackhole(t *testing.T) {
	ns, c, w := chaosCluster(t, "chaos-blackhole", func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.FailurePolicy.UnhealthyAfter = &metav1.Duration{Duration: 10 * time.Minute}
	})
	before := memberIDs(c)
	var victim quorumv1alpha1.MemberStatus
	for _, m := range c.Status.Members {
		if m.Name != c.Status.Leader {
			victim = m
			break
		}
	}
	pod, err := kube.CoreV1().Pods(ns).Get(context.Background(), victim.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node := pod.Spec.NodeName
	cl := etcdClient(t, ns, "main")
	defer func() { _ = cl.Close() }()
	index := func() uint64 {
		var best uint64
		for _, m := range getCluster(t, ns, "main").Status.Members {
			if m.Name == victim.Name {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			st, err := cl.Status(ctx, m.ClientURL)
			cancel()
			if err == nil && st.RaftIndex > best {
				best = st.RaftIndex
			}
		}
		return best
	}
	startIndex := index()
	if err := local.CutNode(node); err != nil {
		t.Fatal(err)
	}
	healed := false
	t.Cleanup(func() {
		if !healed {
			_ = local.HealNode(node)
		}
	})
	// etcd snapshots every 10000 entries and then keeps the last 5000 in
	// its log: 25000 entries on, the follower's next entry is gone whatever
	// the leader's snapshot index was at the cut. Bounded: 8 min.
	cutAt := time.Now()
	for time.Since(cutAt) < 8*time.Minute && index() < startIndex+25000 {
		time.Sleep(2 * time.Second)
	}
	t.Logf("%s cut for %s, the log moved %d entries", node, time.Since(cutAt).Round(time.Second), index()-startIndex)
	if err := local.HealNode(node); err != nil {
		t.Fatal(err)
	}
	healed = true
	start := time.Now()
	waitHealthy(t, ns, "main", 3, 5*time.Minute)
	heal := time.Since(start)
	if after := memberIDs(getCluster(t, ns, "main")); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("members %v after the cut, want %v", after, before)
	}
	if n := snapshotsReceived(t, ns, victim.Name); n == 0 {
		t.Errorf("%s caught up without a snapshot: the cut was not long enough to test that", victim.Name)
	} else {
		t.Logf("%s received %d snapshot(s)", victim.Name, n)
	}
	recordChaos(t, "node cut, caught up by snapshot", heal, w.stop(t, ns, "main"))
}

// snapshotsReceived reads etcd_network_snapshot_receive_success from a
// member's metrics port.
func snapshotsReceived(t *testing.T, ns, member string) int {
	t.Helper()
	pod, err := kube.CoreV1().Pods(ns).Get(context.Background(), member, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(fmt.Sprintf("http://%s:%d/metrics", pod.Status.PodIP, resources.MetricsPort))
	if err != nil {
		t.Fatalf("metrics of %s: %v", member, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "etcd_network_snapshot_receive_success") {
			f := strings.Fields(line)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				n += int(v)
			}
		}
	}
	return n
}

// chaosZoneLost (scenario 4): zone-b's node stopped: its member is
// replaced in another zone; the node back, the spread is restored.
func chaosZoneLost(t *testing.T) {
	ns, _, w := chaosCluster(t, "chaos-zone")
	if err := local.StopNode("node-b"); err != nil {
		t.Fatal(err)
	}
	started := false
	t.Cleanup(func() {
		if !started {
			_ = local.StartNode("node-b")
		}
	})
	start := time.Now()
	eventually(t, "3 healthy members without zone-b", 5*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		healthy := 0
		for _, m := range c.Status.Members {
			if m.Healthy && m.Zone != "zone-b" {
				healthy++
			}
		}
		return healthy == 3 && c.Status.PendingChange == nil, fmt.Sprintf("zones %v; %s", zonesOf(c), conditionSummary(c))
	})
	replaced := time.Since(start)
	if err := local.StartNode("node-b"); err != nil {
		t.Fatal(err)
	}
	started = true
	eventually(t, "one member per zone again", 6*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		z := zonesOf(c)
		return z["zone-a"] == 1 && z["zone-b"] == 1 && z["zone-c"] == 1 && c.Status.PendingChange == nil, fmt.Sprintf("zones %v", z)
	})
	waitHealthy(t, ns, "main", 3, 4*time.Minute)
	t.Logf("zone-b lost: replaced in %s; spread restored %s after", replaced.Round(time.Second), (time.Since(start) - replaced).Round(time.Second))
	recordChaos(t, "zone lost and back", replaced, w.stop(t, ns, "main"))
}
