package etcdcluster

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/resources"
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

// TestNoSpaceRecoveryNeedsEvidence: history is compacted only on a
// membership and alarms read through the leader, with the operator's
// access working.
func TestNoSpaceRecoveryNeedsEvidence(t *testing.T) {
	s := noSpace(cluster(3), 2<<30, 2<<30, 900)
	s.linearizable = false
	if a := decide(s); a.kind == actCompact || a.kind == actDefrag || a.kind == actDisarm {
		t.Fatalf("on a member's own view: %s", a.kind)
	}
	s = noSpace(cluster(3), 2<<30, 2<<30, 900)
	s.alarmsKnown = false
	if a := decide(s); a.kind == actCompact || a.kind == actDefrag || a.kind == actDisarm {
		t.Fatalf("with the alarms unread: %s", a.kind)
	}
	s = noSpace(cluster(3), 2<<30, 2<<30, 900)
	s.access = access{reason: "ClientCredentialsRejected", message: "refused"}
	if a := decide(s); a.kind != actWait || a.reason != "EtcdUnreachable" {
		t.Fatalf("with the operator's credentials refused: %s %s, want a wait", a.kind, a.reason)
	}
}

// TestMaintenanceFlags: the settings reach the member's command line, and
// their hash marks the pod so a change restarts it.
func TestMaintenanceFlags(t *testing.T) {
	c := cluster(3, func(c *quorumv1alpha1.EtcdCluster) {
		q := resource.MustParse("64Mi")
		c.Spec.Maintenance = quorumv1alpha1.EtcdMaintenance{QuotaBackendBytes: &q, AutoCompaction: &quorumv1alpha1.AutoCompaction{Mode: "periodic", Retention: "5m"}}
	})
	pod := resources.MemberPod{Cluster: c, Member: "m-a", Zone: "a", Version: "3.6.16"}.Pod()
	args := strings.Join(pod.Spec.Containers[0].Args, " ")
	for _, want := range []string{"--quota-backend-bytes=67108864", "--auto-compaction-mode=periodic", "--auto-compaction-retention=5m"} {
		if !strings.Contains(args, want) {
			t.Errorf("member args lack %s: %s", want, args)
		}
	}
	if h := pod.Annotations[resources.AnnotationMaintenance]; h == "" || h != resources.MaintenanceHash(c) {
		t.Fatalf("pod maintenance hash %q, want %q", h, resources.MaintenanceHash(c))
	}
	if h := resources.MaintenanceHash(cluster(3)); h != "" {
		t.Fatalf("no settings hash to %q, want an empty hash (the value of pods made before settings existed)", h)
	}
}
