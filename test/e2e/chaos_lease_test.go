package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/hack/local-cluster/cluster"
)

// chaosLeaseLost (scenario 5, the leader election part): the leading
// manager's process is frozen (SIGSTOP, as a long GC pause or a starved
// node would) in the middle of a membership change, once while a learner
// is added (after MemberAdd) and once while a member is removed, until the other replica
// takes the lease over and carries on; then it runs again with what it
// was doing in flight, learns it lost the lease and steps down. The
// changes finish once each: no duplicate member, no learner left, nothing
// orphaned, and the workload sees a linearizable history.
func chaosLeaseLost(t *testing.T) {
	ns, _, w := chaosCluster(t, "chaos-lease")
	start := time.Now()
	scale(t, ns, "main", 5)
	freezeLeaderDuring(t, ns, "main", quorumv1alpha1.ChangeAddMember)
	waitHealthy(t, ns, "main", 5, 6*time.Minute)
	assertMembership(t, ns, "main", 5)
	scale(t, ns, "main", 3)
	freezeLeaderDuring(t, ns, "main", quorumv1alpha1.ChangeRemoveMember)
	waitHealthy(t, ns, "main", 3, 6*time.Minute)
	assertMembership(t, ns, "main", 3)
	recordChaos(t, "leader lease lost mid-change (manager frozen), twice", time.Since(start), w.stop(t, ns, "main"))
}

// freezeLeaderDuring waits until the cluster records a change of the
// given type with its member's ID (for an add: etcd assigned it), freezes the
// leading manager until another holds the lease (and at least 25 s, past
// the 15 s lease), then lets it run again.
func freezeLeaderDuring(t *testing.T, ns, name string, change quorumv1alpha1.ChangeType) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "a recorded "+string(change)+" with its member's ID", 4*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, name)
		p := c.Status.PendingChange
		return p != nil && p.Type == change && p.ID != "", stepOf(c)
	})
	lease, err := kube.CoordinationV1().Leases(cluster.QuorumNamespace).Get(ctx, cluster.QuorumLease, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil {
		t.Fatalf("no lease holder: %v", err)
	}
	holder := *lease.Spec.HolderIdentity
	pod := strings.SplitN(holder, "_", 2)[0]
	step := stepOf(getCluster(t, ns, name))
	if err := local.SignalContainer(ctx, kube, cluster.QuorumNamespace, pod, "manager", "SIGSTOP"); err != nil {
		t.Fatalf("freezing the leading manager %s: %v", pod, err)
	}
	frozen := time.Now()
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = local.SignalContainer(context.Background(), kube, cluster.QuorumNamespace, pod, "manager", "SIGCONT")
		}
	}
	defer thaw()
	var next string
	eventually(t, "another manager holding the lease", time.Minute, func() (bool, string) {
		l, err := kube.CoordinationV1().Leases(cluster.QuorumNamespace).Get(ctx, cluster.QuorumLease, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return false, "no holder"
		}
		next = *l.Spec.HolderIdentity
		return next != holder && cluster.LeaseHeld(l), "held by " + next
	})
	took := time.Since(frozen)
	if d := 25*time.Second - took; d > 0 {
		time.Sleep(d)
	}
	thaw()
	t.Logf("froze the leading manager %s at %s for %s; %s took the lease over after %s", pod, step, time.Since(frozen).Round(100*time.Millisecond), next, took.Round(100*time.Millisecond))
}
