package etcdcluster

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/reconciler"
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

// defragScope: a healthy 3-member cluster (m-a leads) created a day before
// now, with the given defrag policy; every database is size bytes with
// inUse in use.
func defragScope(p quorumv1alpha1.DefragPolicy, size, inUse int64, mutate ...func(*quorumv1alpha1.EtcdCluster)) *scope {
	c := cluster(3, append([]func(*quorumv1alpha1.EtcdCluster){func(c *quorumv1alpha1.EtcdCluster) {
		c.CreationTimestamp = metav1.NewTime(now.Add(-24 * time.Hour))
		c.Spec.Maintenance.Defrag = &p
	}}, mutate...)...)
	s := scopeOf(c, three()...)
	for _, m := range s.members {
		m.Status.DBSize, m.Status.DBSizeInUse = size, inUse
	}
	return s
}

func scheduledRun(at time.Time, done ...string) func(*quorumv1alpha1.EtcdCluster) {
	return func(c *quorumv1alpha1.EtcdCluster) {
		t := metav1.NewTime(at)
		c.Status.ScheduledDefrag = &quorumv1alpha1.ScheduledDefragStatus{LastScheduleTime: &t, Defragmented: done}
	}
}

// TestDefragDecisions: a due schedule defragments every member once,
// followers first and the leader last after leadership moved; a
// fragmented member is defragmented past both thresholds only; nothing
// while a member is unhealthy.
func TestDefragDecisions(t *testing.T) {
	const mi = int64(1) << 20
	daily := quorumv1alpha1.DefragPolicy{Schedule: "0 3 * * *"}
	dueAt := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	threshold := quorumv1alpha1.DefragPolicy{WhenFragmentedAbove: "45%"}
	for _, tc := range []struct {
		name   string
		s      *scope
		kind   actionKind
		member string
		reason string
	}{
		{"a due schedule starts with a follower in the first zone", defragScope(daily, 100*mi, 90*mi), actDefrag, "m-b", reasonScheduledDefrag},
		{"then the next follower", defragScope(daily, 100*mi, 90*mi, scheduledRun(dueAt, "m-b")), actDefrag, "m-c", reasonScheduledDefrag},
		{"the leader last, leadership moved first", defragScope(daily, 100*mi, 90*mi, scheduledRun(dueAt, "m-b", "m-c")), actMoveLeader, "m-a", reasonScheduledDefrag},
		{"every member done: nothing until the next due time", defragScope(daily, 100*mi, 90*mi, scheduledRun(dueAt, "m-b", "m-c", "m-a")), actNone, "", ""},
		{"a run made yesterday and nothing due since", defragScope(daily, 100*mi, 90*mi, func(c *quorumv1alpha1.EtcdCluster) { c.CreationTimestamp = metav1.NewTime(now.Add(-5 * time.Hour)) }), actNone, "", ""},
		{"a time zone moves the due time", defragScope(quorumv1alpha1.DefragPolicy{Schedule: "0 3 * * *", TimeZone: ptr.To("America/New_York")}, 100*mi, 90*mi,
			func(c *quorumv1alpha1.EtcdCluster) { c.CreationTimestamp = metav1.NewTime(now.Add(-5 * time.Hour)) }), actDefrag, "m-b", reasonScheduledDefrag},
		{"an unknown time zone is said", defragScope(quorumv1alpha1.DefragPolicy{Schedule: "0 3 * * *", TimeZone: ptr.To("Mars/Olympus")}, 100*mi, 90*mi), actWait, "", "DefragScheduleInvalid"},
		{"past both thresholds: defragmented", defragScope(threshold, 100*mi, 40*mi), actDefrag, "m-b", reasonFragmented},
		{"under the percentage: left alone", defragScope(threshold, 100*mi, 60*mi), actNone, "", ""},
		{"under minReclaimable (16Mi by default): left alone", defragScope(threshold, 20*mi, 5*mi), actNone, "", ""},
		{"a smaller minReclaimable lets a small database go", defragScope(quorumv1alpha1.DefragPolicy{WhenFragmentedAbove: "45%", MinReclaimable: ptr.To(resource.MustParse("8Mi"))}, 20*mi, 5*mi), actDefrag, "m-b", reasonFragmented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.s)
			if a.kind != tc.kind || (tc.member != "" && a.member != tc.member) || a.reason != tc.reason {
				t.Fatalf("decide = %s %s %s (%s), want %s %s %s", a.kind, a.member, a.reason, a.message, tc.kind, tc.member, tc.reason)
			}
			want := dueAt
			if p := tc.s.cluster.Spec.Maintenance.Defrag; p.TimeZone != nil {
				want = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC) // 03:00 in New York
			}
			if a.kind == actDefrag && tc.reason == reasonScheduledDefrag && !a.scheduledAt.Equal(want) {
				t.Fatalf("the defragmentation belongs to the run due %v, want %v", a.scheduledAt, want)
			}
		})
	}

	// Only the leader fragmented: it goes too, after leadership moved.
	s := defragScope(threshold, 100*mi, 90*mi)
	s.members["m-a"].Status.DBSizeInUse = 10 * mi
	if a := decide(s); a.kind != actMoveLeader || a.member != "m-a" || a.reason != reasonFragmented {
		t.Fatalf("the fragmented leader: %s %s %s, want MoveLeader m-a first", a.kind, a.member, a.reason)
	}

	// A member unhealthy: nothing is defragmented, neither scheduled nor
	// past the threshold.
	for _, p := range []quorumv1alpha1.DefragPolicy{daily, threshold} {
		s := defragScope(p, 100*mi, 10*mi, unhealthyInStatus("m-c", now))
		s.members["m-c"].Healthy, s.members["m-c"].Failure = false, etcd.NoAnswer
		if a := decide(s); a.kind == actDefrag || a.kind == actMoveLeader {
			t.Fatalf("with m-c unhealthy (%+v): %s %s", p, a.kind, a.member)
		}
	}

	// Membership changed during a run: a run with every current voter done
	// is over, and the next due time counts from it.
	s = defragScope(daily, 100*mi, 90*mi, scheduledRun(dueAt, "m-b", "m-c", "m-a", "m-gone"))
	if a := decide(s); a.kind != actNone {
		t.Fatalf("a finished run: %s %s", a.kind, a.member)
	}
	s.now = dueAt.Add(24*time.Hour + time.Minute)
	if a := decide(s); a.kind != actDefrag || !a.scheduledAt.Equal(dueAt.Add(24*time.Hour)) {
		t.Fatalf("the next day: %s at %v, want a defragmentation of the run due %v", a.kind, a.scheduledAt, dueAt.Add(24*time.Hour))
	}
}

// TestDefragKeepsReady: scheduled or threshold housekeeping on a healthy
// cluster that is as asked leaves Ready True; Progressing says what is done.
func TestDefragKeepsReady(t *testing.T) {
	s := defragScope(quorumv1alpha1.DefragPolicy{Schedule: "0 3 * * *"}, 100<<20, 90<<20)
	c := s.cluster
	c.Generation = 1
	c.Status.Replicas, c.Status.Version = 3, "3.6.16"
	a := decide(s)
	if a.kind != actDefrag {
		t.Fatalf("decide = %s, want a scheduled defragmentation", a.kind)
	}
	st := computeStatus(c, s, a, now)
	if cond := meta.FindStatusCondition(st.Conditions, quorumv1alpha1.ConditionReady); cond == nil || cond.Status != metav1.ConditionTrue {
		t.Fatalf("Ready during a scheduled defragmentation: %+v", cond)
	}
	if cond := meta.FindStatusCondition(st.Conditions, quorumv1alpha1.ConditionProgressing); cond == nil || cond.Reason != reasonScheduledDefrag {
		t.Fatalf("Progressing during a scheduled defragmentation: %+v", cond)
	}
	if st.ScheduledDefrag == nil || st.ScheduledDefrag.NextScheduleTime == nil || !st.ScheduledDefrag.NextScheduleTime.Time.Equal(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)) {
		t.Fatalf("status.scheduledDefrag = %+v, want the next run at 03:00 tomorrow", st.ScheduledDefrag)
	}
}

// TestRequestedDefrag: the quorum.dev/defrag annotation defragments every
// voter once per value, followers first and the leader last after
// leadership moved, with no defragmentation policy in the spec; nothing
// while a member is unhealthy.
func TestRequestedDefrag(t *testing.T) {
	asked := func(trigger string, completed bool, done ...string) func(*quorumv1alpha1.EtcdCluster) {
		return func(c *quorumv1alpha1.EtcdCluster) {
			c.Annotations = map[string]string{reconciler.AnnotationDefrag: "2"}
			if trigger != "" {
				c.Status.RequestedDefrag = &quorumv1alpha1.RequestedDefragStatus{Trigger: trigger, Defragmented: done}
				if completed {
					c.Status.RequestedDefrag.CompletionTime = &metav1.Time{Time: now}
				}
			}
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*quorumv1alpha1.EtcdCluster)
		kind   actionKind
		member string
	}{
		{"a new value starts with a follower", asked("", false), actDefrag, "m-b"},
		{"then the next follower", asked("2", false, "m-b"), actDefrag, "m-c"},
		{"the leader last, leadership moved first", asked("2", false, "m-b", "m-c"), actMoveLeader, "m-a"},
		{"every member done for this value: nothing", asked("2", true, "m-b", "m-c", "m-a"), actNone, ""},
		{"a run for an earlier value does not count", asked("1", true, "m-b", "m-c", "m-a"), actDefrag, "m-b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cluster(3, tc.mutate)
			c.Spec.Maintenance.Defrag = nil
			a := decide(scopeOf(c, three()...))
			if a.kind != tc.kind || a.member != tc.member || (tc.kind != actNone && a.reason != reasonRequestedDefrag) || (tc.kind == actDefrag && a.trigger != "2") {
				t.Fatalf("decide = %s %s %s %q (%s), want %s %s", a.kind, a.member, a.reason, a.trigger, a.message, tc.kind, tc.member)
			}
		})
	}
	c := cluster(3, asked("", false), unhealthyInStatus("m-c", now))
	s := scopeOf(c, three(map[string][]func(*memberState){"m-c": {nodeDown}})...)
	if a := decide(s); a.kind == actDefrag || a.kind == actMoveLeader {
		t.Fatalf("with m-c unhealthy: %s %s", a.kind, a.member)
	}
}
