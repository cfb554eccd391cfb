package etcdcluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/backupjob"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/resources"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func cluster(replicas int32, mutate ...func(*quorumv1alpha1.EtcdCluster)) *quorumv1alpha1.EtcdCluster {
	c := &quorumv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "main", Namespace: "ns"},
		Spec: quorumv1alpha1.EtcdClusterSpec{
			Replicas:      ptr.To(replicas),
			Version:       "3.6.16",
			Zones:         quorumv1alpha1.Zones{"a", "b", "c"},
			FailurePolicy: quorumv1alpha1.FailurePolicy{UnhealthyAfter: &metav1.Duration{Duration: time.Minute}},
		},
		// Quorum has been healthy, and the operator has seen it, for a day:
		// the member clocks run.
		Status: quorumv1alpha1.EtcdClusterStatus{ClusterID: "c1", Conditions: []metav1.Condition{
			{Type: quorumv1alpha1.ConditionQuorumLost, Status: metav1.ConditionFalse, Reason: "QuorumHealthy", LastTransitionTime: metav1.NewTime(now.Add(-24 * time.Hour))},
		}},
	}
	for _, m := range mutate {
		m(c)
	}
	return c
}

// member is a healthy voter with a running pod and a volume in zone.
func member(name, zone string, id uint64, opts ...func(*memberState)) *memberState {
	m := &memberState{
		Name: name, Zone: zone, InEtcd: true, ID: id,
		Pod:       &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{resources.LabelVoter: "true"}}, Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"}},
		PVC:       &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name + "-data"}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}},
		NodeReady: true, NodeName: "node-" + zone,
		Status:  &etcd.Status{MemberID: id, Leader: 1, RaftIndex: 100 + id},
		Healthy: true, Version: "3.6.16", PodVersion: "3.6.16",
		Created: now.Add(-time.Duration(10-id) * time.Hour),
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

func leader(m *memberState)    { m.Leader = true }
func learner(m *memberState)   { m.Learner = true; m.Pod.Labels[resources.LabelVoter] = "false" }
func noPod(m *memberState)     { m.Pod = nil; m.Status = nil; m.Healthy = false }
func noPVC(m *memberState)     { m.PVC = nil }
func notInEtcd(m *memberState) { m.InEtcd = false; m.ID = 0 }
func unhealthy(m *memberState) { m.Healthy = false; m.Status = nil; m.Failure = etcd.NoAnswer }
func nodeDown(m *memberState)  { m.NodeReady = false; unhealthy(m) }
func atVersion(v string) func(*memberState) {
	return func(m *memberState) { m.PodVersion, m.Version = v, v }
}

func scopeOf(c *quorumv1alpha1.EtcdCluster, members ...*memberState) *scope {
	s := &scope{cluster: c, now: now, members: map[string]*memberState{}, listed: true, linearizable: true, alarmsKnown: true, clusterID: 0xc1,
		readyZones: map[string]bool{"a": true, "b": true, "c": true}}
	for _, m := range members {
		s.members[m.Name] = m
	}
	return s
}

func pending(t quorumv1alpha1.ChangeType, member, zone, reason string) func(*quorumv1alpha1.EtcdCluster) {
	return func(c *quorumv1alpha1.EtcdCluster) {
		c.Status.PendingChange = &quorumv1alpha1.MembershipChange{Type: t, Member: member, Zone: zone, Reason: reason, StartedAt: metav1.NewTime(now.Add(-10 * time.Second))}
	}
}

func unhealthyInStatus(name string, since time.Time) func(*quorumv1alpha1.EtcdCluster) {
	return func(c *quorumv1alpha1.EtcdCluster) {
		c.Status.Members = append(c.Status.Members, quorumv1alpha1.MemberStatus{Name: name, Healthy: false, Since: &metav1.Time{Time: since}})
	}
}

// allOf gives the same options to all three members of three().
func allOf(opts ...func(*memberState)) map[string][]func(*memberState) {
	return map[string][]func(*memberState){"m-a": opts, "m-b": opts, "m-c": opts}
}

func three(opts ...map[string][]func(*memberState)) []*memberState {
	o := map[string][]func(*memberState){}
	if len(opts) > 0 {
		o = opts[0]
	}
	return []*memberState{
		member("m-a", "a", 1, append([]func(*memberState){leader}, o["m-a"]...)...),
		member("m-b", "b", 2, o["m-b"]...),
		member("m-c", "c", 3, o["m-c"]...),
	}
}

func TestDecide(t *testing.T) {
	type want struct {
		kind   actionKind
		member string
		zone   string
		reason string
		says   string
	}
	for _, tc := range []struct {
		name string
		s    *scope
		want want
	}{
		{"a new cluster bootstraps in the first zone",
			func() *scope {
				s := scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) { c.Status.ClusterID = "" }))
				s.listed = false
				return s
			}(),
			want{kind: actBootstrap, zone: "a", reason: "Bootstrap"}},
		{"a new cluster with no Ready zone waits",
			func() *scope {
				s := scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) { c.Status.ClusterID = "" }))
				s.listed, s.readyZones = false, map[string]bool{}
				return s
			}(),
			want{kind: actWait, reason: "NoReadyZone"}},
		{"a recorded bootstrap starts its member",
			func() *scope {
				s := scopeOf(cluster(3, pending(quorumv1alpha1.ChangeAddMember, "m-a", "a", "Bootstrap")))
				s.listed = false
				return s
			}(),
			want{kind: actStartMember, member: "m-a", zone: "a"}},
		{"one voter of three: a learner in the next empty zone",
			scopeOf(cluster(3), member("m-a", "a", 1, leader)),
			want{kind: actAddLearner, zone: "b", reason: "ScaleUp"}},
		{"two voters of three: the learner goes to the last zone",
			scopeOf(cluster(3), member("m-a", "a", 1, leader), member("m-b", "b", 2)),
			want{kind: actAddLearner, zone: "c", reason: "ScaleUp"}},
		{"three to five: the fourth voter goes to the first zone",
			scopeOf(cluster(5), three()...),
			want{kind: actAddLearner, zone: "a", reason: "ScaleUp"}},
		{"a recorded add not yet in etcd is added (restart after recording)",
			scopeOf(cluster(3, pending(quorumv1alpha1.ChangeAddMember, "m-b", "b", "ScaleUp")), member("m-a", "a", 1, leader)),
			want{kind: actAddLearner, member: "m-b", zone: "b"}},
		{"a learner without a pod gets one (restart after MemberAdd)",
			scopeOf(cluster(3, pending(quorumv1alpha1.ChangeAddMember, "m-b", "b", "ScaleUp")), member("m-a", "a", 1, leader), member("m-b", "b", 2, noPod, noPVC, func(m *memberState) { m.Learner = true })),
			want{kind: actStartMember, member: "m-b", zone: "b"}},
		{"a learner with its pod is promoted (restart before promote)",
			scopeOf(cluster(3, pending(quorumv1alpha1.ChangeAddMember, "m-b", "b", "ScaleUp")), member("m-a", "a", 1, leader), member("m-b", "b", 2, learner)),
			want{kind: actPromote, member: "m-b"}},
		{"a promoted member finishes the add",
			scopeOf(cluster(3, pending(quorumv1alpha1.ChangeAddMember, "m-b", "b", "ScaleUp")), member("m-a", "a", 1, leader), member("m-b", "b", 2)),
			want{kind: actFinishAdd, member: "m-b"}},
		{"never a second learner: a stray learner is removed first",
			scopeOf(cluster(5), append(three(), member("m-x", "a", 4, learner))...),
			want{kind: actRemoveMember, member: "m-x", reason: "StrayLearner"}},
		{"five to three: from the zone with the most members, oldest first",
			scopeOf(cluster(3), append(three(), member("m-a2", "a", 4), member("m-b2", "b", 5))...),
			want{kind: actMoveLeader, member: "m-a", says: "moving leadership from m-a"}},
		{"five to three: a follower goes without a leadership move",
			scopeOf(cluster(3), member("m-a", "a", 1), member("m-b", "b", 2, leader), member("m-c", "c", 3), member("m-a2", "a", 4), member("m-b2", "b", 5)),
			want{kind: actRemoveMember, member: "m-a", reason: "ScaleDown"}},
		{"scale-down removes the unhealthy member of the fullest zone first",
			scopeOf(cluster(3), member("m-a", "a", 1, leader), member("m-b", "b", 2), member("m-c", "c", 3), member("m-a2", "a", 4), member("m-b2", "b", 5, unhealthy)),
			want{kind: actRemoveMember, member: "m-b2", reason: "ScaleDown"}},
		{"a recorded removal of the leader moves leadership first",
			scopeOf(cluster(3, pending(quorumv1alpha1.ChangeRemoveMember, "m-a", "a", "ScaleDown")), append(three(), member("m-a2", "a", 4))...),
			want{kind: actMoveLeader, member: "m-a"}},
		{"a recorded removal of a follower removes it",
			scopeOf(cluster(3, pending(quorumv1alpha1.ChangeRemoveMember, "m-b", "b", "ScaleDown")), append(three(), member("m-a2", "a", 4))...),
			want{kind: actRemoveMember, member: "m-b"}},
		{"a recorded removal gone from etcd cleans up (restart after MemberRemove)",
			scopeOf(cluster(3, pending(quorumv1alpha1.ChangeRemoveMember, "m-x", "b", "ScaleDown")), append(three(), member("m-x", "b", 9, notInEtcd))...),
			want{kind: actCleanupMember, member: "m-x"}},
		{"a deleted pod with its volume intact is recreated, no membership change",
			scopeOf(cluster(3), three(map[string][]func(*memberState){"m-b": {noPod}})...),
			want{kind: actRecreatePod, member: "m-b", zone: "b"}},
		{"a deleted pod and volume: the member is replaced",
			scopeOf(cluster(3), three(map[string][]func(*memberState){"m-b": {noPod, noPVC}})...),
			want{kind: actRemoveMember, member: "m-b", reason: "Replace", says: "its pod and its data are gone"}},
		{"a member on a NotReady node for less than unhealthyAfter is kept",
			scopeOf(cluster(3, unhealthyInStatus("m-b", now.Add(-30*time.Second))), three(map[string][]func(*memberState){"m-b": {nodeDown}})...),
			want{kind: actNone}},
		{"a member on a NotReady node for longer than unhealthyAfter is replaced",
			scopeOf(cluster(3, unhealthyInStatus("m-b", now.Add(-2*time.Minute))), three(map[string][]func(*memberState){"m-b": {nodeDown}})...),
			want{kind: actRemoveMember, member: "m-b", reason: "Replace", says: "its node node-b has been NotReady for more than 1m0s"}},
		{"with autoReplace off a failed member is only reported",
			scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.FailurePolicy.AutoReplace = ptr.To(false) }, unhealthyInStatus("m-b", now.Add(-2*time.Minute))), three(map[string][]func(*memberState){"m-b": {nodeDown}})...),
			want{kind: actWait, reason: "AutoReplaceOff"}},
		{"unhealthy for less than unhealthyAfter: not failed yet",
			scopeOf(cluster(3, unhealthyInStatus("m-b", now.Add(-30*time.Second))), three(map[string][]func(*memberState){"m-b": {unhealthy}})...),
			want{kind: actNone}},
		{"unhealthy for longer than unhealthyAfter: replaced",
			scopeOf(cluster(3, unhealthyInStatus("m-b", now.Add(-2*time.Minute))), three(map[string][]func(*memberState){"m-b": {unhealthy}})...),
			want{kind: actRemoveMember, member: "m-b", reason: "Replace", says: "not been healthy for more than 1m0s"}},
		{"failed members are repaired zone by zone: zone a first",
			scopeOf(cluster(5, unhealthyInStatus("m-a", now.Add(-2*time.Minute)), unhealthyInStatus("m-c", now.Add(-2*time.Minute))), member("m-a", "a", 1, nodeDown), member("m-b", "b", 2, leader), member("m-c", "c", 3, nodeDown), member("m-a2", "a", 4), member("m-b2", "b", 5)),
			want{kind: actRemoveMember, member: "m-a", reason: "Replace"}},
		{"two of three lost, just now: quorum only suspected lost, nothing removed",
			scopeOf(cluster(3), three(map[string][]func(*memberState){"m-b": {nodeDown}, "m-c": {nodeDown}, "m-a": {unhealthy}})...),
			want{kind: actWait, reason: "NoQuorum", says: "0 of 3 voters are healthy, quorum needs 2"}},
		{"two of three lost for longer than unhealthyAfter with Wait: quorum lost, nothing removed",
			scopeOf(cluster(3, quorumSuspectedSince(now.Add(-2*time.Minute))), three(map[string][]func(*memberState){"m-b": {nodeDown}, "m-c": {nodeDown}, "m-a": {unhealthy}})...),
			want{kind: actWait, reason: "QuorumLost", says: "0 of 3 voters are healthy, quorum needs 2"}},
		{"two of three lost with ForceNewCluster, not for long yet: wait",
			scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) {
				c.Spec.QuorumLossPolicy = quorumv1alpha1.QuorumLossForceNewCluster
			}, quorumSuspectedSince(now.Add(-10*time.Second))),
				member("m-a", "a", 1, unhealthy), member("m-b", "b", 2, unhealthy), member("m-c", "c", 3, nodeDown)),
			want{kind: actWait, reason: "NoQuorum"}},
		{"two voters in the middle of a replacement, one gone, the other without a leader: quorum suspected lost",
			scopeOf(cluster(3), member("m-a", "a", 1, noLeader(100)), member("m-b", "b", 2, noPod, noPVC), member("m-c", "c", 3, learner, noLeader(50))),
			want{kind: actWait, reason: "NoQuorum"}},
		{"the same for longer than unhealthyAfter with RestoreFromBackup: rebuilt",
			withBackups(scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) {
				c.Spec.QuorumLossPolicy = quorumv1alpha1.QuorumLossRestoreFromBackup
			}, quorumSuspectedSince(now.Add(-2*time.Minute))),
				member("m-a", "a", 1, noLeader(100)), member("m-b", "b", 2, noPod, noPVC), member("m-c", "c", 3, learner, noLeader(50)))),
			want{kind: actResetForRestore, reason: "QuorumLoss"}},
		{"two of three lost with RestoreFromBackup: rebuild from the newest snapshot of the cluster's backups",
			withBackups(scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) {
				c.Spec.QuorumLossPolicy = quorumv1alpha1.QuorumLossRestoreFromBackup
			}, quorumLostSince(now.Add(-2*time.Minute))),
				member("m-a", "a", 1, unhealthy), member("m-b", "b", 2, nodeDown), member("m-c", "c", 3, nodeDown))),
			want{kind: actResetForRestore, member: "main-20261121T110000Z.db", zone: "nightly", reason: "QuorumLoss"}},
		{"quorum lost in the middle of a replacement: the recovery supersedes it",
			withBackups(scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) {
				c.Spec.QuorumLossPolicy = quorumv1alpha1.QuorumLossRestoreFromBackup
			},
				quorumLostSince(now.Add(-2*time.Minute)), pending(quorumv1alpha1.ChangeRemoveMember, "m-b", "b", "Replace")),
				member("m-a", "a", 1, unhealthy), member("m-b", "b", 2, noPod, noPVC), member("m-c", "c", 3, noPod, noPVC))),
			want{kind: actResetForRestore, reason: "QuorumLoss"}},
		{"quorum lost in the middle of a replacement with Wait: the change waits for quorum",
			func() *scope {
				s := scopeOf(cluster(3, quorumLostSince(now.Add(-2*time.Minute)), pending(quorumv1alpha1.ChangeRemoveMember, "m-b", "b", "Replace")),
					member("m-a", "a", 1, unhealthy), member("m-b", "b", 2, noPod, noPVC), member("m-c", "c", 3, noPod, noPVC))
				s.linearizable = false // no leader to read through
				return s
			}(),
			want{kind: actWait, reason: "MembershipUnconfirmed"}},
		{"RestoreFromBackup with no snapshot: wait and say so",
			scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) {
				c.Spec.QuorumLossPolicy = quorumv1alpha1.QuorumLossRestoreFromBackup
			}, quorumLostSince(now.Add(-2*time.Minute))),
				member("m-a", "a", 1, unhealthy), member("m-b", "b", 2, nodeDown), member("m-c", "c", 3, nodeDown)),
			want{kind: actWait, reason: "NoSnapshot"}},
		{"a restore: the snapshot is verified before anything is made",
			restoring(nil, &backupjob.Result{}, false),
			want{kind: actVerifySnapshot}},
		{"a restore: verification under way",
			restoring(&corev1.Pod{}, nil, false),
			want{kind: actWait, reason: "VerifyingSnapshot"}},
		{"a restore: a snapshot that fails verification is refused, nothing made",
			restoring(&corev1.Pod{}, &backupjob.Result{Reason: "VerificationFailed", Message: "sha256 mismatch"}, false),
			want{kind: actWait, reason: "VerificationFailed", says: "nothing was created: sha256 mismatch"}},
		{"a restore: a verified snapshot is recorded",
			restoring(&corev1.Pod{}, &backupjob.Result{OK: true}, false),
			want{kind: actRecordVerified}},
		{"a restore: once recorded, the first member restores it",
			restoring(nil, nil, true),
			want{kind: actBootstrap, zone: "a", reason: "Restore"}},
		{"a restore from a missing backup waits",
			func() *scope { s := restoring(nil, nil, false); s.restore.backup = nil; return s }(),
			want{kind: actWait, reason: "BackupNotFound"}},
		{"two of three lost with ForceNewCluster: restart from the survivor with the most history",
			scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) {
				c.Spec.QuorumLossPolicy = quorumv1alpha1.QuorumLossForceNewCluster
			}, quorumLostSince(now.Add(-2*time.Minute))),
				member("m-a", "a", 1, noLeader(500)), member("m-b", "b", 2, noLeader(700)),
				member("m-c", "c", 3, nodeDown), member("m-d", "a", 4, nodeDown), member("m-e", "b", 5, nodeDown)),
			want{kind: actForceNewCluster, member: "m-b", reason: "QuorumLoss"}},
		{"no member answers: wait",
			func() *scope {
				s := scopeOf(cluster(3), three(map[string][]func(*memberState){"m-a": {notInEtcd}, "m-b": {notInEtcd}, "m-c": {notInEtcd}})...)
				s.listed = false
				return s
			}(),
			want{kind: actWait, reason: "EtcdUnreachable"}},
		{"a member's pod deleted during quorum loss is still recreated (not destructive)",
			func() *scope {
				s := scopeOf(cluster(3), three(map[string][]func(*memberState){"m-a": {noPod}, "m-b": {unhealthy}, "m-c": {unhealthy}})...)
				return s
			}(),
			want{kind: actRecreatePod, member: "m-a"}},
		{"objects of a member etcd does not know are deleted",
			scopeOf(cluster(3), append(three(), member("m-x", "b", 9, notInEtcd))...),
			want{kind: actDeleteOrphan, member: "m-x"}},
		{"a voter's pod not labelled as a voter is labelled",
			scopeOf(cluster(3), three(map[string][]func(*memberState){"m-c": {func(m *memberState) { m.Pod.Labels[resources.LabelVoter] = "false" }}})...),
			want{kind: actLabelVoter, member: "m-c"}},
		{"a lost zone is back: a learner there restores the spread",
			scopeOf(cluster(3), member("m-a", "a", 1, leader), member("m-a2", "a", 2), member("m-c", "c", 3)),
			want{kind: actAddLearner, zone: "b", reason: "Rebalance"}},
		{"a lost zone still down: nothing to restore",
			func() *scope {
				s := scopeOf(cluster(3), member("m-a", "a", 1, leader), member("m-a2", "a", 2), member("m-c", "c", 3))
				s.readyZones = map[string]bool{"a": true, "c": true}
				return s
			}(),
			want{kind: actNone}},
		{"healthy and as asked: nothing to do",
			scopeOf(cluster(3), three()...),
			want{kind: actNone}},
		{"an upgrade two minor versions ahead is refused",
			scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Version = "3.8.0" }), three()...),
			want{kind: actWait, reason: "UpgradeRefused", says: "2 minor versions ahead of the running 3.6.16"}},
		{"a downgrade is refused",
			scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Version = "3.5.21" }), three()...),
			want{kind: actWait, reason: "UpgradeRefused", says: "downgrades"}},
		{"an upgrade starts with a preflight of the image",
			scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Version = "3.7.0" }), three()...),
			want{kind: actPreflight}},
		{"an upgrade waits while a member is unhealthy",
			scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Version = "3.7.0" }, unhealthyInStatus("m-b", now)), three(map[string][]func(*memberState){"m-b": {unhealthy}})...),
			want{kind: actWait, reason: "UpgradeWaiting"}},
		{"an image that cannot be pulled refuses the upgrade, no member touched",
			withPreflight(scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Version = "3.6.99" }), three()...), "3.6.99",
				corev1.ContainerStatus{Image: "registry.k8s.io/etcd:3.6.99-0", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "not found"}}}, corev1.PodPending),
			want{kind: actWait, reason: "VersionUnavailable", says: "version 3.6.99 cannot run, no member was touched"}},
		{"after a good preflight, followers roll first, in zone order",
			withPreflight(scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Version = "3.7.0" }), three()...), "3.7.0", corev1.ContainerStatus{}, corev1.PodSucceeded),
			want{kind: actRestartMember, member: "m-b", reason: "Upgrade"}},
		{"the leader rolls last, after leadership moves off it",
			withPreflight(scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Version = "3.7.0" }),
				member("m-a", "a", 1, leader), member("m-b", "b", 2, atVersion("3.7.0")), member("m-c", "c", 3, atVersion("3.7.0"))), "3.7.0", corev1.ContainerStatus{}, corev1.PodSucceeded),
			want{kind: actMoveLeader, member: "m-a"}},
		{"a patch upgrade rolls too",
			withPreflight(scopeOf(cluster(3, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Version = "3.6.17" }), three()...), "3.6.17", corev1.ContainerStatus{}, corev1.PodSucceeded),
			want{kind: actRestartMember, member: "m-b"}},
		{"an upgrade done: the preflight pod goes",
			withPreflight(scopeOf(cluster(3), three()...), "3.6.16", corev1.ContainerStatus{}, corev1.PodSucceeded),
			want{kind: actDeletePreflight}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(tc.s)
			if got.kind != tc.want.kind {
				t.Fatalf("decide = %s (%s: %s), want %s", got.kind, got.reason, got.message, tc.want.kind)
			}
			if tc.want.member != "" && got.member != tc.want.member {
				t.Errorf("member = %q, want %q", got.member, tc.want.member)
			}
			if tc.want.zone != "" && got.zone != tc.want.zone {
				t.Errorf("zone = %q, want %q", got.zone, tc.want.zone)
			}
			if tc.want.reason != "" && got.reason != tc.want.reason {
				t.Errorf("reason = %q, want %q (%s)", got.reason, tc.want.reason, got.message)
			}
			if tc.want.says != "" && !strings.Contains(got.message, tc.want.says) {
				t.Errorf("message %q does not say %q", got.message, tc.want.says)
			}
		})
	}
}

func withPreflight(s *scope, v string, st corev1.ContainerStatus, phase corev1.PodPhase) *scope {
	s.preflight = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "main-preflight", Labels: map[string]string{resources.LabelPreflight: v}},
		Status:     corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{st}},
	}
	return s
}

// TestQuorumGuard: no action leaves fewer healthy voters than the quorum
// of the membership it produces.
func TestQuorumGuard(t *testing.T) {
	// Five voters, two failed and one more unhealthy-but-not-failed: removing
	// a failed one leaves 2 healthy of 4, below the quorum of 3.
	s := scopeOf(cluster(5, unhealthyInStatus("m-c", now)),
		member("m-a", "a", 1, nodeDown), member("m-b", "b", 2, leader), member("m-c", "c", 3, unhealthy),
		member("m-a2", "a", 4, nodeDown), member("m-b2", "b", 5))
	got := decide(s)
	if got.kind == actRemoveMember {
		t.Fatalf("decide removed %s with only 2 healthy voters of 5", got.member)
	}
	if got.kind != actWait || got.reason != "NoQuorum" {
		t.Fatalf("decide = %s %s: %s; want a wait for quorum", got.kind, got.reason, got.message)
	}

	// Three voters with one unhealthy: scaling down to 1 would remove a
	// healthy member while one is unhealthy if the unhealthy one were not
	// chosen; the unhealthy one goes.
	s = scopeOf(cluster(1, unhealthyInStatus("m-c", now)), three(map[string][]func(*memberState){"m-c": {unhealthy}})...)
	got = decide(s)
	if got.kind != actRemoveMember || got.member != "m-c" {
		t.Fatalf("decide = %s %s; want the unhealthy m-c removed", got.kind, got.member)
	}

	// Three voters, one unhealthy (not failed yet), scale 3 to 1: after
	// the unhealthy one goes, removing a healthy one from 2 would leave 1 of
	// 1: allowed. But from 3 with 2 unhealthy, nothing may go.
	s = scopeOf(cluster(1, unhealthyInStatus("m-b", now), unhealthyInStatus("m-c", now)),
		three(map[string][]func(*memberState){"m-b": {unhealthy}, "m-c": {unhealthy}})...)
	if got = decide(s); got.kind == actRemoveMember || got.kind == actMoveLeader {
		t.Fatalf("decide = %s %s with quorum lost", got.kind, got.member)
	}
}

func TestFailureReason(t *testing.T) {
	c := cluster(3)
	for _, tc := range []struct {
		name  string
		m     *memberState
		since time.Time
		want  string
	}{
		{"healthy", member("x", "a", 1), now, ""},
		{"pod and volume gone", member("x", "a", 1, noPod, noPVC), now, "its pod and its data are gone"},
		{"volume gone", member("x", "a", 1, noPVC), now, "its volume is gone"},
		{"volume lost", member("x", "a", 1, func(m *memberState) { m.PVC.Status.Phase = corev1.ClaimLost }), now, "its volume is lost"},
		{"pod failed, volume kept: started again, not failed", member("x", "a", 1, func(m *memberState) { m.Pod.Status.Phase = corev1.PodFailed; unhealthy(m) }), now.Add(-time.Hour), ""},
		{"node NotReady 30s", member("x", "a", 1, nodeDown), now.Add(-30 * time.Second), ""},
		{"node NotReady 61s", member("x", "a", 1, nodeDown), now.Add(-61 * time.Second), "its node node-a has been NotReady for more than 1m0s"},
		{"healthy in etcd on a NotReady node", member("x", "a", 1, func(m *memberState) { m.NodeReady = false }), now.Add(-time.Hour), ""},
		{"clock not running", member("x", "a", 1, unhealthy), time.Time{}, ""},
		{"pod gone, volume kept", member("x", "a", 1, noPod), now, ""},
		{"unhealthy 30s", member("x", "a", 1, unhealthy), now.Add(-30 * time.Second), ""},
		{"unhealthy 61s", member("x", "a", 1, unhealthy), now.Add(-61 * time.Second), "it has not been healthy for more than 1m0s (it does not answer)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := failureReason(c, tc.m, tc.since, now); got != tc.want {
				t.Fatalf("failureReason = %q, want %q", got, tc.want)
			}
		})
	}
}

func quorumLostSince(t time.Time) func(*quorumv1alpha1.EtcdCluster) {
	return quorumCondition(metav1.ConditionTrue, "QuorumLost", t)
}

// quorumSuspectedSince: the evidence of a loss started at t.
func quorumSuspectedSince(t time.Time) func(*quorumv1alpha1.EtcdCluster) {
	return quorumCondition(metav1.ConditionUnknown, reasonQuorumLossSuspected, t)
}

func quorumCondition(status metav1.ConditionStatus, reason string, t time.Time) func(*quorumv1alpha1.EtcdCluster) {
	return func(c *quorumv1alpha1.EtcdCluster) {
		meta.RemoveStatusCondition(&c.Status.Conditions, quorumv1alpha1.ConditionQuorumLost)
		c.Status.Conditions = append(c.Status.Conditions, metav1.Condition{Type: quorumv1alpha1.ConditionQuorumLost, Status: status, Reason: reason, LastTransitionTime: metav1.NewTime(t)})
	}
}

// noLeader: the member answers, with raft index i, but knows no leader.
func noLeader(i uint64) func(*memberState) {
	return func(m *memberState) { m.Healthy = false; m.Status.Leader = 0; m.Status.RaftIndex = i }
}

func backupWith(name, cluster string, hours ...int) quorumv1alpha1.EtcdBackup {
	b := quorumv1alpha1.EtcdBackup{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: quorumv1alpha1.EtcdBackupSpec{EtcdClusterRef: &quorumv1alpha1.LocalObjectReference{Name: cluster}}}
	for _, h := range hours {
		t := time.Date(2026, 11, 21, h, 0, 0, 0, time.UTC)
		b.Status.Snapshots = append(b.Status.Snapshots, quorumv1alpha1.Snapshot{Name: fmt.Sprintf("%s-%s.db", cluster, t.Format("20060102T150405Z")), TakenAt: metav1.NewTime(t)})
	}
	return b
}

func withBackups(s *scope) *scope {
	s.backups = []quorumv1alpha1.EtcdBackup{backupWith("hourly", "main", 9, 10), backupWith("nightly", "main", 11, 3), backupWith("other", "other", 12)}
	return s
}

// restoring is a new cluster to be built from snapshot "snap" of backup
// "nightly", with the verify pod and its result as given.
func restoring(verify *corev1.Pod, result *backupjob.Result, verified bool) *scope {
	c := cluster(3, func(c *quorumv1alpha1.EtcdCluster) {
		c.Status.ClusterID = ""
		c.Spec.Bootstrap = &quorumv1alpha1.EtcdBootstrap{Restore: &quorumv1alpha1.EtcdRestore{BackupRef: quorumv1alpha1.LocalObjectReference{Name: "nightly"}}}
		if verified {
			c.Status.Restore = &quorumv1alpha1.RestoreStatus{Backup: "nightly", Snapshot: "snap", Verified: true}
		}
	})
	s := scopeOf(c)
	s.listed = false
	b := backupWith("nightly", "old", 5)
	s.restore = &restoreObservation{backup: &b, snapshot: &b.Status.Snapshots[0], verifyPod: verify}
	if result != nil && (result.OK || result.Reason != "") {
		s.restore.result = result
	}
	return s
}

func TestStackedBackupsRestoreTheirEtcdCluster(t *testing.T) {
	viaControlPlane := backupWith("cp-hourly", "ignored", 14)
	viaControlPlane.Spec.EtcdClusterRef = nil
	viaControlPlane.Spec.ControlPlaneRef = &quorumv1alpha1.LocalObjectReference{Name: "tenant"}
	backups := []quorumv1alpha1.EtcdBackup{backupWith("hourly", "tenant-etcd", 9), viaControlPlane, backupWith("other", "other", 16)}
	b, sn := newestSnapshotOf(backups, "tenant-etcd")
	if b == nil || b.Name != "cp-hourly" || sn.TakenAt.Hour() != 14 {
		t.Fatalf("newest snapshot of a stacked EtcdCluster = %v %v, want the ControlPlane backup's", b, sn)
	}
}

// TestEvenVoterCountQuorum: two voters (a replacement between its remove
// and its promote) with one gone: quorum is suspected lost, never reported
// healthy; with the old rule (a majority down) it read as healthy.
func TestEvenVoterCountQuorum(t *testing.T) {
	s := scopeOf(cluster(3), member("m-a", "a", 1, noLeader(100)), member("m-b", "b", 2, noPod, noPVC), member("m-c", "c", 3, learner, noLeader(50)))
	if h := assess(s); h.quorum != quorumSuspect {
		t.Fatalf("quorum %s with 1 of 2 voters up, want %s", h.quorum, quorumSuspect)
	}
	st := computeStatus(s.cluster, s, decide(s), now)
	if c := meta.FindStatusCondition(st.Conditions, quorumv1alpha1.ConditionQuorumLost); c == nil || c.Status != metav1.ConditionUnknown || c.Reason != reasonQuorumLossSuspected {
		t.Fatalf("QuorumLost %+v, want Unknown %s", c, reasonQuorumLossSuspected)
	}
	// Four voters, two down: no quorum either.
	s = scopeOf(cluster(5), member("m-a", "a", 1, noLeader(100)), member("m-b", "b", 2, noLeader(100)), member("m-c", "c", 3, nodeDown), member("m-d", "a", 4, nodeDown))
	if h := assess(s); h.quorum != quorumSuspect {
		t.Fatalf("quorum %s with 2 of 4 voters up, want %s", h.quorum, quorumSuspect)
	}
}

// TestTroubled: a cluster is looked at every stepInterval while a member
// turned unhealthy lately (or not yet recorded as such), and every
// healthInterval once the fault is older than twice unhealthyAfter (its
// times are recorded by then) or nothing is wrong.
func TestTroubled(t *testing.T) {
	u := map[string][]func(*memberState){"m-c": {unhealthy}}
	for _, tc := range []struct {
		name string
		s    *scope
		want bool
	}{
		{"healthy", scopeOf(cluster(3), three()...), false},
		{"unhealthy, not yet in status", scopeOf(cluster(3), three(u)...), true},
		{"unhealthy for 30s", scopeOf(cluster(3, unhealthyInStatus("m-c", now.Add(-30*time.Second))), three(u)...), true},
		{"unhealthy for an hour", scopeOf(cluster(3, unhealthyInStatus("m-c", now.Add(-time.Hour))), three(u)...), false},
	} {
		if got := tc.s.troubled(); got != tc.want {
			t.Errorf("%s: troubled = %v, want %v", tc.name, got, tc.want)
		}
	}
}
