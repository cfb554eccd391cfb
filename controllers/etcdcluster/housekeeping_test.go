package etcdcluster

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
)

// noSpace: NOSPACE raised on m-a of a healthy 3-member cluster whose
// databases are size bytes with inUse in use, at revision rev.
func noSpace(c *quorumv1alpha1.EtcdCluster, size, inUse, rev int64, opts ...map[string][]func(*memberState)) *scope {
	s := scopeOf(c, three(opts...)...)
	for _, m := range s.members {
		if m.Status != nil {
			m.Status.DBSize, m.Status.DBSizeInUse, m.Status.Revision = size, inUse, rev
		}
	}
	s.alarms = []etcd.Alarm{{MemberID: 1, Type: "NOSPACE"}}
	return s
}

func compactedAt(rev int64, defragmented ...string) func(*quorumv1alpha1.EtcdCluster) {
	return func(c *quorumv1alpha1.EtcdCluster) {
		c.Status.LastCompaction = &quorumv1alpha1.CompactionStatus{Revision: rev, Time: metav1.NewTime(now), Defragmented: defragmented}
	}
}

// TestNoSpaceRecovery: compact, defragment followers then the leader, and
// disarm only once space is back; live data is said, never disarmed.
func TestNoSpaceRecovery(t *testing.T) {
	const gi = int64(1) << 30
	for _, tc := range []struct {
		name   string
		s      *scope
		kind   actionKind
		member string
		reason string
	}{
		{"first the history is compacted to the current revision", noSpace(cluster(3), 2*gi, 2*gi, 900), actCompact, "", "NoSpaceRecovery"},
		{"then a follower with free pages is defragmented", noSpace(cluster(3, compactedAt(900)), 2*gi, gi/10, 900), actDefrag, "m-b", "NoSpaceRecovery"},
		{"a member whose figures show no free pages is still defragmented once", noSpace(cluster(3, compactedAt(900, "m-b")), 2*gi, 2*gi, 900), actDefrag, "m-c", "NoSpaceRecovery"},
		{"space back under 80% of the quota: disarmed", noSpace(cluster(3, compactedAt(900, "m-a", "m-b", "m-c")), gi/10, gi/10, 900), actDisarm, "", "NoSpaceRecovery"},
		{"live data over 80% of the quota: said, not disarmed", noSpace(cluster(3, compactedAt(900, "m-a", "m-b", "m-c")), 1900<<20, 1900<<20, 900), actWait, "", "NoSpaceLiveData"},
		{"a member unhealthy: recovery waits", noSpace(cluster(3, unhealthyInStatus("m-c", now)), 2*gi, 2*gi, 900, map[string][]func(*memberState){"m-c": {unhealthy}}), actWait, "", "NoSpaceRecoveryWaiting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.s)
			if a.kind != tc.kind || (tc.member != "" && a.member != tc.member) || a.reason != tc.reason {
				t.Fatalf("decide = %s %s %s (%s), want %s %s %s", a.kind, a.member, a.reason, a.message, tc.kind, tc.member, tc.reason)
			}
		})
	}

	// The leader's turn: leadership moves first.
	s := noSpace(cluster(3, compactedAt(900, "m-b", "m-c")), 2*gi, gi/10, 900)
	for _, name := range []string{"m-b", "m-c"} {
		s.members[name].Status.DBSize = gi / 10
	}
	if a := decide(s); a.kind != actMoveLeader || a.member != "m-a" {
		t.Fatalf("defragmenting the leader: %s %s, want MoveLeader m-a first", a.kind, a.member)
	}

	// Raising the quota restarts members onto it before anything else.
	c := cluster(3, compactedAt(900, "m-a", "m-b", "m-c"), func(c *quorumv1alpha1.EtcdCluster) {
		q := resourceQuantity("4Gi")
		c.Spec.Maintenance.QuotaBackendBytes = &q
	})
	if a := decide(noSpace(c, 1900<<20, 1900<<20, 900)); a.kind != actRestartMember || a.reason != reasonSettings {
		t.Fatalf("after the quota was raised: %s %s, want a restart onto the new settings", a.kind, a.reason)
	}
}

func resourceQuantity(s string) resource.Quantity { return resource.MustParse(s) }
