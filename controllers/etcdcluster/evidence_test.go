package etcdcluster

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
)

// destructive are the actions that remove a member, delete its objects or
// rebuild the cluster, and the leadership move that precedes a removal.
var destructive = map[actionKind]bool{
	actRemoveMember: true, actCleanupMember: true, actDeleteOrphan: true, actForceNewCluster: true,
	actResetForRestore: true, actAbandonAdd: true, actMoveLeader: true,
}

func withPolicy(p quorumv1alpha1.QuorumLossPolicy) func(*quorumv1alpha1.EtcdCluster) {
	return func(c *quorumv1alpha1.EtcdCluster) { c.Spec.QuorumLossPolicy = p }
}

// healthyInStatus: the last status saw all three members healthy, 3 of 3
// ready.
func healthyInStatus(c *quorumv1alpha1.EtcdCluster) {
	c.Status.Replicas, c.Status.ReadyReplicas = 3, 3
	for _, n := range []string{"m-a", "m-b", "m-c"} {
		c.Status.Members = append(c.Status.Members, quorumv1alpha1.MemberStatus{Name: n, Healthy: true, Role: quorumv1alpha1.RoleFollower, Since: &metav1.Time{Time: now.Add(-time.Hour)}})
	}
}

func rejected(m *memberState) { m.Healthy, m.Status, m.Failure = false, nil, etcd.Rejected }
func serving(m *memberState)  { m.PodServing = true }

// TestNothingDestroyedOnOperatorTrouble: the faults that made the operator
// wipe, split or shrink healthy clusters. Each is a pure decision on one
// observation; none may be destructive, and the status must say what is
// true: the operator's trouble is not etcd's.
func TestNothingDestroyedOnOperatorTrouble(t *testing.T) {
	type cond struct {
		status metav1.ConditionStatus
		reason string
	}
	for _, tc := range []struct {
		name string
		s    *scope
		// ready is the readyReplicas the status must report; conds the
		// conditions it must carry.
		ready int32
		conds map[string]cond
	}{
		{"NOSPACE raised on every member, RestoreFromBackup: an alarm, not a loss of quorum",
			func() *scope {
				s := withBackups(scopeOf(cluster(3, withPolicy(quorumv1alpha1.QuorumLossRestoreFromBackup), healthyInStatus), three()...))
				s.alarms = []etcd.Alarm{{MemberID: 1, Type: "NOSPACE"}, {MemberID: 2, Type: "NOSPACE"}, {MemberID: 3, Type: "NOSPACE"}}
				return s
			}(), 3,
			map[string]cond{
				quorumv1alpha1.ConditionQuorumLost:      {metav1.ConditionFalse, "QuorumHealthy"},
				quorumv1alpha1.ConditionAlarmActive:     {metav1.ConditionTrue, "NoSpaceRecovery"},
				quorumv1alpha1.ConditionAvailable:       {metav1.ConditionTrue, "QuorumHealthy"},
				quorumv1alpha1.ConditionDegraded:        {metav1.ConditionFalse, "AllMembersHealthy"},
				quorumv1alpha1.ConditionEtcdUnreachable: {metav1.ConditionFalse, "Reachable"},
			}},
		{"the operator's client certificate refused, a loss recorded long ago, RestoreFromBackup",
			func() *scope {
				s := withBackups(scopeOf(cluster(3, withPolicy(quorumv1alpha1.QuorumLossRestoreFromBackup), healthyInStatus, quorumLostSince(now.Add(-time.Hour))),
					three(map[string][]func(*memberState){"m-a": {rejected}, "m-b": {rejected}, "m-c": {rejected}})...))
				s.access = access{reason: "ClientCredentialsRejected", message: "members refuse the operator's client certificate"}
				s.linearizable, s.alarmsKnown = false, false
				return s
			}(), 3,
			map[string]cond{
				quorumv1alpha1.ConditionEtcdUnreachable: {metav1.ConditionTrue, "ClientCredentialsRejected"},
				quorumv1alpha1.ConditionQuorumLost:      {metav1.ConditionUnknown, "EtcdUnreachable"},
				quorumv1alpha1.ConditionAvailable:       {metav1.ConditionUnknown, "EtcdUnreachable"},
			}},
		{"the client Secret unusable, no member list, ForceNewCluster",
			func() *scope {
				s := scopeOf(cluster(3, withPolicy(quorumv1alpha1.QuorumLossForceNewCluster), healthyInStatus, quorumSuspectedSince(now.Add(-time.Hour))),
					three(map[string][]func(*memberState){"m-a": {unhealthy}, "m-b": {unhealthy}, "m-c": {unhealthy}})...)
				s.access = access{reason: "ClientCredentialsInvalid", message: "the client certificate expired"}
				s.listed, s.linearizable, s.alarmsKnown = false, false, false
				return s
			}(), 3,
			map[string]cond{
				quorumv1alpha1.ConditionEtcdUnreachable: {metav1.ConditionTrue, "ClientCredentialsInvalid"},
				quorumv1alpha1.ConditionQuorumLost:      {metav1.ConditionUnknown, "EtcdUnreachable"},
			}},
		{"the operator's network cut (a NetworkPolicy) while kubelets see members serving, ForceNewCluster",
			func() *scope {
				s := scopeOf(cluster(3, withPolicy(quorumv1alpha1.QuorumLossForceNewCluster), healthyInStatus, quorumSuspectedSince(now.Add(-time.Hour))),
					three(map[string][]func(*memberState){"m-a": {unhealthy, serving}, "m-b": {unhealthy, serving}, "m-c": {unhealthy, serving}})...)
				s.access = access{reason: "OperatorNetwork", message: "member m-a passes its kubelet's readiness probe but does not answer the operator"}
				s.listed, s.linearizable, s.alarmsKnown = false, false, false
				return s
			}(), 3,
			map[string]cond{
				quorumv1alpha1.ConditionEtcdUnreachable: {metav1.ConditionTrue, "OperatorNetwork"},
				quorumv1alpha1.ConditionQuorumLost:      {metav1.ConditionUnknown, "EtcdUnreachable"},
				quorumv1alpha1.ConditionAvailable:       {metav1.ConditionUnknown, "EtcdUnreachable"},
			}},
		{"one zone's node stopped: one member of three does not answer, RestoreFromBackup",
			withBackups(scopeOf(cluster(3, withPolicy(quorumv1alpha1.QuorumLossRestoreFromBackup), unhealthyInStatus("m-c", now.Add(-20*time.Second))),
				three(map[string][]func(*memberState){"m-c": {nodeDown}})...)), 2,
			map[string]cond{
				quorumv1alpha1.ConditionQuorumLost:   {metav1.ConditionFalse, "QuorumHealthy"},
				quorumv1alpha1.ConditionAvailable:    {metav1.ConditionTrue, "QuorumHealthy"},
				quorumv1alpha1.ConditionQuorumAtRisk: {metav1.ConditionTrue, "OneFailureFromQuorumLoss"},
				quorumv1alpha1.ConditionDegraded:     {metav1.ConditionTrue, "MembersUnhealthy"},
			}},
		{"two zones stopped 20 s ago, ForceNewCluster: only suspected, for unhealthyAfter",
			scopeOf(cluster(3, withPolicy(quorumv1alpha1.QuorumLossForceNewCluster), quorumSuspectedSince(now.Add(-20*time.Second))),
				member("m-a", "a", 1, noLeader(500)), member("m-b", "b", 2, nodeDown), member("m-c", "c", 3, nodeDown)), 0,
			map[string]cond{
				quorumv1alpha1.ConditionQuorumLost: {metav1.ConditionUnknown, reasonQuorumLossSuspected},
				quorumv1alpha1.ConditionAvailable:  {metav1.ConditionFalse, "QuorumLost"},
			}},
		{"two zones stopped, but a kubelet reports a voter serving: quorum not lost",
			scopeOf(cluster(3, withPolicy(quorumv1alpha1.QuorumLossForceNewCluster), quorumSuspectedSince(now.Add(-time.Hour))),
				member("m-a", "a", 1, noLeader(500), serving), member("m-b", "b", 2, nodeDown), member("m-c", "c", 3, nodeDown)), 0,
			map[string]cond{
				quorumv1alpha1.ConditionQuorumLost: {metav1.ConditionFalse, "QuorumHealthy"},
			}},
		{"a member's own (serializable) list omits a live voter: its pod and volume are kept",
			func() *scope {
				s := scopeOf(cluster(3), append(three(), member("m-x", "b", 9, notInEtcd))...)
				s.linearizable = false
				return s
			}(), 3, nil},
		{"the victim is healthy in etcd: replacing it (volume gone) while another is unhealthy would lose quorum",
			scopeOf(cluster(3, unhealthyInStatus("m-c", now.Add(-20*time.Second))),
				three(map[string][]func(*memberState){"m-b": {noPVC}, "m-c": {unhealthy}})...), 2, nil},
		{"quorum just came back: time a member was down during the loss does not count",
			scopeOf(cluster(3, unhealthyInStatus("m-c", now.Add(-5*time.Minute)), quorumCondition(metav1.ConditionFalse, "QuorumHealthy", now.Add(-10*time.Second))),
				three(map[string][]func(*memberState){"m-c": {nodeDown}})...), 2, nil},
		{"the operator saw etcd again only now: the clock starts now",
			scopeOf(cluster(3, unhealthyInStatus("m-c", now.Add(-5*time.Minute)), quorumCondition(metav1.ConditionUnknown, "EtcdUnreachable", now.Add(-time.Hour))),
				three(map[string][]func(*memberState){"m-c": {unhealthy}})...), 2, nil},
		{"a recorded removal whose quorum projection no longer holds is not carried out",
			scopeOf(cluster(3, pending(quorumv1alpha1.ChangeRemoveMember, "m-b", "b", "Replace"), unhealthyInStatus("m-c", now.Add(-20*time.Second))),
				three(map[string][]func(*memberState){"m-c": {unhealthy}})...), 2, nil},
		{"a recorded removal waits for a membership read through the leader",
			func() *scope {
				s := scopeOf(cluster(3, pending(quorumv1alpha1.ChangeRemoveMember, "m-b", "b", "Replace")), three()...)
				s.linearizable = false
				return s
			}(), 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.s)
			if destructive[a.kind] {
				t.Fatalf("decide = %s %s (%s): destructive on this evidence", a.kind, a.member, a.message)
			}
			st := computeStatus(tc.s.cluster, tc.s, a, now)
			if st.ReadyReplicas != tc.ready {
				t.Errorf("readyReplicas = %d, want %d", st.ReadyReplicas, tc.ready)
			}
			for typ, want := range tc.conds {
				got := meta.FindStatusCondition(st.Conditions, typ)
				if got == nil || got.Status != want.status || got.Reason != want.reason {
					t.Errorf("%s = %+v, want %s %s", typ, got, want.status, want.reason)
				}
			}
			if tc.s.access.ok() {
				return
			}
			for _, m := range st.Members {
				if !m.Healthy {
					t.Errorf("member %s reported unhealthy while the operator could not see it", m.Name)
				}
			}
		})
	}
}

// TestAlarmsByMember: status.alarms names the members that raised them.
func TestAlarmsByMember(t *testing.T) {
	s := scopeOf(cluster(3), three()...)
	s.alarms = []etcd.Alarm{{MemberID: 2, Type: "NOSPACE"}, {MemberID: 1, Type: "CORRUPT"}}
	st := computeStatus(s.cluster, s, action{kind: actNone}, now)
	want := []quorumv1alpha1.AlarmStatus{{Member: "m-a", Alarm: "CORRUPT"}, {Member: "m-b", Alarm: "NOSPACE"}}
	if len(st.Alarms) != 2 || st.Alarms[0] != want[0] || st.Alarms[1] != want[1] {
		t.Fatalf("alarms = %v, want %v", st.Alarms, want)
	}
	s.alarms = nil
	s.cluster.Status = st
	if st = computeStatus(s.cluster, s, action{kind: actNone}, now); len(st.Alarms) != 0 || !meta.IsStatusConditionFalse(st.Conditions, quorumv1alpha1.ConditionAlarmActive) {
		t.Fatalf("disarmed alarms still reported: %v", st.Alarms)
	}
}

// TestQuorumLossNeedsEvidenceForUnhealthyAfter follows the status through
// passes: the evidence of a loss starts a clock (whatever QuorumLost said
// before), the loss is counted only once it held for unhealthyAfter, and
// only then does the policy act.
func TestQuorumLossNeedsEvidenceForUnhealthyAfter(t *testing.T) {
	c := cluster(3, withPolicy(quorumv1alpha1.QuorumLossForceNewCluster),
		quorumCondition(metav1.ConditionUnknown, "EtcdUnreachable", now.Add(-time.Hour)))
	pass := func(at time.Time) action {
		s := scopeOf(c, member("m-a", "a", 1, noLeader(500)), member("m-b", "b", 2, nodeDown), member("m-c", "c", 3, nodeDown))
		s.now = at
		a := decide(s)
		c.Status = computeStatus(c, s, a, at)
		return a
	}
	if a := pass(now); a.kind == actForceNewCluster {
		t.Fatal("ForceNewCluster at the first sight of a loss")
	}
	cond := meta.FindStatusCondition(c.Status.Conditions, quorumv1alpha1.ConditionQuorumLost)
	if cond.Reason != reasonQuorumLossSuspected || !cond.LastTransitionTime.Time.Equal(now) {
		t.Fatalf("QuorumLost = %s since %s; want %s since now", cond.Reason, cond.LastTransitionTime, reasonQuorumLossSuspected)
	}
	if a := pass(now.Add(59 * time.Second)); a.kind == actForceNewCluster {
		t.Fatal("ForceNewCluster before unhealthyAfter")
	}
	if a := pass(now.Add(61 * time.Second)); a.kind != actForceNewCluster || a.member != "m-a" {
		t.Fatalf("after unhealthyAfter: %s %s, want ForceNewCluster from m-a", a.kind, a.member)
	}
	if !meta.IsStatusConditionTrue(c.Status.Conditions, quorumv1alpha1.ConditionQuorumLost) {
		t.Fatal("QuorumLost not True once counted")
	}
}

// TestBoundedWaits: a learner that never comes up and a restarted member
// that never gets healthy do not block repairs for ever; a version that
// failed is not run again by a recreated pod.
func TestBoundedWaits(t *testing.T) {
	started := func(ago time.Duration, t quorumv1alpha1.ChangeType, member, from, to string) func(*quorumv1alpha1.EtcdCluster) {
		return func(c *quorumv1alpha1.EtcdCluster) {
			c.Status.PendingChange = &quorumv1alpha1.MembershipChange{Type: t, Member: member, Zone: "b", Reason: "Upgrade",
				Version: to, FromVersion: from, StartedAt: metav1.NewTime(now.Add(-ago))}
		}
	}
	stuck := func(m *memberState) { learner(m); m.Status = nil; m.Healthy = false }
	for _, tc := range []struct {
		name    string
		s       *scope
		kind    actionKind
		version string
	}{
		{"a learner within startTimeout is waited for",
			scopeOf(cluster(3, started(4*time.Minute, quorumv1alpha1.ChangeAddMember, "m-x", "", "")), append(three(), member("m-x", "b", 9, stuck))...),
			actPromote, ""},
		{"a learner past startTimeout is removed",
			scopeOf(cluster(3, started(6*time.Minute, quorumv1alpha1.ChangeAddMember, "m-x", "", "")), append(three(), member("m-x", "b", 9, stuck))...),
			actAbandonAdd, ""},
		{"a member restarted at a new version, unhealthy past startTimeout, is rolled back",
			scopeOf(cluster(3, started(6*time.Minute, quorumv1alpha1.ChangeRestartMember, "m-b", "3.6.16", "3.7.0")),
				three(map[string][]func(*memberState){"m-b": {unhealthy, atVersion("3.7.0")}})...),
			actRollback, "3.6.16"},
		{"a member restarted at its own version, unhealthy past startTimeout, is left to the failure policy",
			scopeOf(cluster(3, started(6*time.Minute, quorumv1alpha1.ChangeRestartMember, "m-b", "3.6.16", "3.6.16")),
				three(map[string][]func(*memberState){"m-b": {unhealthy}})...),
			actCancelChange, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.s)
			if a.kind != tc.kind || a.version != tc.version {
				t.Fatalf("decide = %s %q (%s), want %s %q", a.kind, a.version, a.message, tc.kind, tc.version)
			}
		})
	}

	// A rolled-back upgrade is not retried for the same spec.
	c := cluster(3, func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.Version = "3.7.0"
		c.Status.FailedUpgrade = &quorumv1alpha1.FailedUpgrade{Version: "3.7.0", Member: "m-b", Generation: c.Generation, Message: "m-b did not become healthy"}
	})
	if a := decide(scopeOf(c, three()...)); a.kind != actWait || a.reason != "UpgradeFailed" {
		t.Fatalf("after a rollback: %s %s, want a wait (UpgradeFailed)", a.kind, a.reason)
	}

	// A refused downgrade: a recreated pod runs the version the cluster
	// runs, never the refused one.
	c = cluster(3, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Version = "3.5.21" })
	s := scopeOf(c, three(map[string][]func(*memberState){"m-b": {noPod}})...)
	if a := decide(s); a.kind != actRecreatePod {
		t.Fatalf("decide = %s, want RecreatePod", a.kind)
	}
	if v := knownVersion(s); v != "3.6.16" {
		t.Fatalf("a recreated pod would run %s, want 3.6.16 (the refused 3.5.21 never reaches a pod)", v)
	}
}

// TestAddGivesWayToRepair: a recorded add that etcd has not made (it
// refuses while a voter is down) never blocks the repair of that voter,
// and is dropped after startTimeout whatever the cause.
func TestAddGivesWayToRepair(t *testing.T) {
	add := func(ago time.Duration) func(*quorumv1alpha1.EtcdCluster) {
		return func(c *quorumv1alpha1.EtcdCluster) {
			c.Status.PendingChange = &quorumv1alpha1.MembershipChange{Type: quorumv1alpha1.ChangeAddMember, Member: "m-x", Zone: "a", Reason: "ScaleUp", StartedAt: metav1.NewTime(now.Add(-ago))}
		}
	}
	if a := decide(scopeOf(cluster(5, add(5*time.Second)), three(map[string][]func(*memberState){"m-c": {noPod, noPVC}})...)); a.kind != actCancelChange || a.reason != "RepairFirst" {
		t.Fatalf("an unmade add with a failed voter: %s %s, want CancelChange RepairFirst", a.kind, a.reason)
	}
	if a := decide(scopeOf(cluster(5, add(6*time.Minute)), three()...)); a.kind != actCancelChange || a.reason != "MemberStartTimedOut" {
		t.Fatalf("an unmade add past startTimeout: %s %s, want CancelChange MemberStartTimedOut", a.kind, a.reason)
	}
	if a := decide(scopeOf(cluster(5, add(5*time.Second)), three()...)); a.kind != actAddLearner {
		t.Fatalf("an unmade add, all healthy: %s, want AddLearner", a.kind)
	}
	s := scopeOf(cluster(5, add(5*time.Second)), three(map[string][]func(*memberState){"m-c": {noPod, noPVC}})...)
	s.linearizable = false
	if a := decide(s); a.kind != actWait || a.reason != "MembershipUnconfirmed" {
		t.Fatalf("an unmade add on a member's own list: %s %s, want a wait", a.kind, a.reason)
	}
}
