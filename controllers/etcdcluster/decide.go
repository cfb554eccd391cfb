package etcdcluster

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/placement"
	"quorum.dev/quorum/internal/resources"
	"quorum.dev/quorum/internal/version"
)

// actionKind is the one change a reconcile makes.
type actionKind string

const (
	actNone            actionKind = "None"
	actBootstrap       actionKind = "Bootstrap"       // record and start the first member
	actRecreatePod     actionKind = "RecreatePod"     // a member's pod is gone, its data is not
	actAddLearner      actionKind = "AddLearner"      // record, then MemberAddAsLearner
	actStartMember     actionKind = "StartMember"     // volume, certificates and pod of a recorded member
	actPromote         actionKind = "Promote"         // learner to voter
	actFinishAdd       actionKind = "FinishAdd"       // the added member votes: label it, clear the record
	actMoveLeader      actionKind = "MoveLeader"      // leadership off a member about to go
	actRemoveMember    actionKind = "RemoveMember"    // record, then MemberRemove
	actCleanupMember   actionKind = "CleanupMember"   // pod, volume and certificates of a removed member
	actDeleteOrphan    actionKind = "DeleteOrphan"    // objects of a member etcd does not know
	actRestartMember   actionKind = "RestartMember"   // record, then a new pod at the new version
	actForceNewCluster actionKind = "ForceNewCluster" // quorum-loss recovery from the best survivor
	actLabelVoter      actionKind = "LabelVoter"      // a voter's pod is not labelled as one
	actPreflight       actionKind = "Preflight"       // check a new version's image before an upgrade
	actDeletePreflight actionKind = "DeletePreflight" // the upgrade is done
	actVerifySnapshot  actionKind = "VerifySnapshot"  // fetch and verify the snapshot to restore
	actRecordVerified  actionKind = "RecordVerified"  // the snapshot verified: record it
	actResetForRestore actionKind = "ResetForRestore" // quorum lost: delete every member, to restore

	actWait actionKind = "Wait" // nothing safe to do: conditions say why
)

// action is what decide chose, with everything the step needs.
type action struct {
	kind   actionKind
	member string
	zone   string
	reason string
	// transferee is the member leadership moves to.
	transferee string
	// version is the version a restarted member runs.
	version string
	// message explains the action or the wait, for events and conditions.
	message string
}

// health is the pure summary of the cluster's members.
type health struct {
	voters        int
	healthyVoters int
	learners      int
	// failed are members the failure policy counts as failed, with why.
	failed map[string]string
	// unhealthy are voters etcd does not report healthy (failed or not yet).
	unhealthy []string
}

func (h health) quorumLost() bool { return h.voters > 0 && h.healthyVoters < etcd.Quorum(h.voters) }

// failureReason says why a voter is failed, or "" when it is not: its pod
// and data gone, its volume lost, its pod failed, its node NotReady, or etcd
// reporting it unhealthy for longer than unhealthyAfter.
func failureReason(c *quorumv1alpha1.EtcdCluster, m *memberState, unhealthySince time.Time, now time.Time) string {
	emptyDir := c.Spec.Storage.EmptyDir != nil
	switch {
	case m.Pod == nil && (emptyDir || m.PVC == nil):
		return "its pod and its data are gone"
	case !emptyDir && m.PVC == nil:
		return "its volume is gone"
	case m.PVC != nil && m.PVC.Status.Phase == corev1.ClaimLost:
		return "its volume is lost"
	case m.PVC != nil && m.PVC.DeletionTimestamp != nil:
		return "its volume is being deleted"
	case m.Pod != nil && m.Pod.Status.Phase == corev1.PodFailed:
		return "its pod failed"
	case !m.NodeReady:
		return fmt.Sprintf("its node %s is NotReady", m.NodeName)
	case m.Pod == nil:
		// Pod gone, data kept on a Ready node: the pod is recreated, the
		// member is not replaced.
		return ""
	}
	if !m.Healthy && !unhealthySince.IsZero() {
		after := unhealthyAfter(c)
		if now.Sub(unhealthySince) >= after {
			return fmt.Sprintf("etcd has reported it unhealthy for more than %s", after)
		}
	}
	return ""
}

func unhealthyAfter(c *quorumv1alpha1.EtcdCluster) time.Duration {
	if d := c.Spec.FailurePolicy.UnhealthyAfter; d != nil && d.Duration > 0 {
		return d.Duration
	}
	return time.Minute
}

func autoReplace(c *quorumv1alpha1.EtcdCluster) bool {
	return c.Spec.FailurePolicy.AutoReplace == nil || *c.Spec.FailurePolicy.AutoReplace
}

func desiredReplicas(c *quorumv1alpha1.EtcdCluster) int {
	if c.Spec.Replicas == nil {
		return 3
	}
	return int(*c.Spec.Replicas)
}

// unhealthySince is when a member was last seen turning unhealthy, from
// the status the previous pass wrote; zero when it was healthy then.
func unhealthySince(c *quorumv1alpha1.EtcdCluster, name string, now time.Time) time.Time {
	for _, ms := range c.Status.Members {
		if ms.Name == name {
			if ms.Healthy || ms.Since == nil {
				return now
			}
			return ms.Since.Time
		}
	}
	return now
}

// assess computes the health summary of a scope.
func assess(s *scope) health {
	h := health{failed: map[string]string{}}
	for _, m := range s.sortedMembers() {
		if m.Learner && m.InEtcd {
			h.learners++
		}
		if !m.Voter() {
			continue
		}
		h.voters++
		if m.Healthy {
			h.healthyVoters++
		} else {
			h.unhealthy = append(h.unhealthy, m.Name)
		}
		if reason := failureReason(s.cluster, m, unhealthySince(s.cluster, m.Name, s.now), s.now); reason != "" {
			h.failed[m.Name] = reason
		}
	}
	return h
}

// decide picks the one change this pass makes. It is a pure function of
// the scope: the steps carry the change out, the next pass observes it. The
// decisions are tried in priority order; the first that has something to
// do (or a reason to wait) wins.
func decide(s *scope) action {
	h := assess(s)
	for _, d := range []func(*scope, health) (action, bool){
		decideRecovery,     // quorum lost long enough: the quorumLossPolicy
		decidePending,      // a recorded change is finished or undone first
		decideBootstrap,    // a new cluster: its first member, or a restore
		decideRecreatePod,  // a member whose pod is gone comes back from its volume
		decideReachable,    // nothing below without etcd's answer and quorum
		decideStrayLearner, // a learner no recorded change explains
		decideOrphan,       // objects of a member etcd does not know
		decideRepair,       // failed members, one at a time, zone by zone
		decideVoterLabels,  // voters' pods counted by the disruption budget
		decideScale,        // toward spec.replicas, one member at a time
		decideUpgrade,      // toward spec.version, one member at a time
		decideRebalance,    // the spread restored once a lost zone is back
	} {
		if a, ok := d(s, h); ok {
			return a
		}
	}
	return action{kind: actNone}
}

// decideRecovery: a quorum-loss policy supersedes any change in flight:
// the change cannot finish without quorum, and the recovery replaces the
// members it was about.
func decideRecovery(s *scope, h health) (action, bool) {
	if p := s.cluster.Status.PendingChange; p != nil && (p.Type == quorumv1alpha1.ChangeForceNewCluster || p.Type == quorumv1alpha1.ChangeRestoreFromBackup) {
		return action{}, false
	}
	return quorumLossRecovery(s, h)
}

// decidePending finishes (or undoes) the recorded change before anything
// else.
func decidePending(s *scope, _ health) (action, bool) {
	if p := s.cluster.Status.PendingChange; p != nil {
		return continuePending(s, p), true
	}
	return action{}, false
}

// decideBootstrap starts a new cluster: its first member, or a snapshot
// restored.
func decideBootstrap(s *scope, _ health) (action, bool) {
	c := s.cluster
	if c.Status.ClusterID != "" || s.listed || anyMemberObjects(s) {
		return action{}, false
	}
	if restoreWanted(c) {
		return decideRestore(s), true
	}
	zone, ok := placement.ZoneForNewMember(c.Spec.Zones, s.readyZones, nil, "")
	if !ok {
		return action{kind: actWait, reason: "NoReadyZone", message: fmt.Sprintf("no Ready node in any of the zones %s", strings.Join(c.Spec.Zones, ", "))}, true
	}
	return action{kind: actBootstrap, zone: zone, reason: "Bootstrap", message: "bootstrapping the first member"}, true
}

// decideRecreatePod: a member whose pod is gone while its data is safe on a
// Ready node comes back as itself: no membership change, quorum untouched.
func decideRecreatePod(s *scope, _ health) (action, bool) {
	for _, m := range s.sortedMembers() {
		if m.InEtcd && m.Pod == nil && m.PVC != nil && m.NodeReady && s.cluster.Spec.Storage.EmptyDir == nil &&
			m.PVC.Status.Phase != corev1.ClaimLost && m.PVC.DeletionTimestamp == nil {
			return action{kind: actRecreatePod, member: m.Name, zone: m.Zone, message: fmt.Sprintf("recreating the pod of member %s from its volume", m.Name)}, true
		}
	}
	return action{}, false
}

// decideReachable waits while etcd does not answer or has no quorum:
// nothing below can be done safely then.
func decideReachable(s *scope, h health) (action, bool) {
	c := s.cluster
	if !s.listed {
		return action{kind: actWait, reason: "EtcdUnreachable", message: unreachableMessage(s)}, true
	}
	if !h.quorumLost() {
		return action{}, false
	}
	if c.Spec.QuorumLossPolicy == quorumv1alpha1.QuorumLossRestoreFromBackup {
		if _, sn := newestSnapshotOf(s.backups, c.Name); sn == nil {
			return action{kind: actWait, reason: "NoSnapshot", message: quorumLostMessage(s, h) + "; no EtcdBackup of this cluster holds a snapshot to restore"}, true
		}
	}
	return action{kind: actWait, reason: "QuorumLost", message: quorumLostMessage(s, h)}, true
}

// decideStrayLearner: a learner nobody recorded (an older operator, or a
// hand-made one) is removed, never left beside a second one.
func decideStrayLearner(s *scope, _ health) (action, bool) {
	for _, m := range s.sortedMembers() {
		if m.Learner && m.InEtcd {
			return action{kind: actRemoveMember, member: m.Name, zone: m.Zone, reason: "StrayLearner",
				message: fmt.Sprintf("removing learner %s that no recorded change explains", m.Name)}, true
		}
	}
	return action{}, false
}

// decideOrphan: objects of a member etcd does not know (left by an
// interrupted removal) are deleted.
func decideOrphan(s *scope, _ health) (action, bool) {
	for _, m := range s.sortedMembers() {
		if !m.InEtcd && (m.Pod != nil || m.PVC != nil) {
			return action{kind: actDeleteOrphan, member: m.Name, message: fmt.Sprintf("deleting the pod and volume of %s, which is not a member", m.Name)}, true
		}
	}
	return action{}, false
}

// decideRepair replaces failed members one at a time, zone by zone:
// removed first (the quorum of the smaller membership must still hold),
// then a learner is added in the same zone.
func decideRepair(s *scope, h health) (action, bool) {
	c := s.cluster
	if len(h.failed) == 0 {
		return action{}, false
	}
	if !autoReplace(c) {
		return action{kind: actWait, reason: "AutoReplaceOff", message: "failed members are not replaced: failurePolicy.autoReplace is false"}, true
	}
	var failed []placement.Member
	for _, m := range s.voters() {
		if _, ok := h.failed[m.Name]; ok {
			failed = append(failed, placement.Member{Name: m.Name, Zone: m.Zone, Created: m.Created})
		}
	}
	next, _ := placement.NextToRepair(c.Spec.Zones, failed)
	if h.healthyVoters < etcd.Quorum(h.voters-1) {
		return action{kind: actWait, reason: "QuorumAtRisk", message: fmt.Sprintf(
			"member %s is failed (%s) but removing it would leave %d healthy voters, fewer than the quorum of %d of the remaining %d",
			next.Name, h.failed[next.Name], h.healthyVoters, etcd.Quorum(h.voters-1), h.voters-1)}, true
	}
	return action{kind: actRemoveMember, member: next.Name, zone: next.Zone, reason: "Replace",
		message: fmt.Sprintf("replacing member %s: %s", next.Name, h.failed[next.Name])}, true
}

// decideVoterLabels labels voters' pods so the PodDisruptionBudget counts
// them.
func decideVoterLabels(s *scope, _ health) (action, bool) {
	for _, m := range s.voters() {
		if m.Pod != nil && m.Pod.Labels[resources.LabelVoter] != "true" {
			return action{kind: actLabelVoter, member: m.Name}, true
		}
	}
	return action{}, false
}

// decideScale adds a learner or removes a voter toward spec.replicas.
func decideScale(s *scope, h health) (action, bool) {
	c := s.cluster
	want := desiredReplicas(c)
	switch {
	case h.voters < want:
		if h.healthyVoters != h.voters {
			return action{kind: actWait, reason: "MembersUnhealthy", message: fmt.Sprintf("scaling up waits for unhealthy members: %s", strings.Join(h.unhealthy, ", "))}, true
		}
		zone, ok := placement.ZoneForNewMember(c.Spec.Zones, s.readyZones, placementMembers(s.voters()), "")
		if !ok {
			return action{kind: actWait, reason: "NoReadyZone", message: "no Ready zone to add a member to"}, true
		}
		return action{kind: actAddLearner, zone: zone, reason: "ScaleUp", message: fmt.Sprintf("scaling up from %d to %d voters: adding a learner in zone %s", h.voters, want, zoneName(zone))}, true
	case h.voters > want:
		victim, _ := placement.MemberToRemove(c.Spec.Zones, placementMembers(s.voters()))
		healthyAfter := h.healthyVoters
		if s.members[victim.Name].Healthy {
			healthyAfter--
		}
		if healthyAfter < etcd.Quorum(h.voters-1) {
			return action{kind: actWait, reason: "QuorumAtRisk", message: fmt.Sprintf(
				"removing %s would leave %d healthy voters, fewer than the quorum of %d", victim.Name, healthyAfter, etcd.Quorum(h.voters-1))}, true
		}
		if s.members[victim.Name].Leader {
			if to := transferee(s, victim.Name); to != nil {
				return action{kind: actMoveLeader, member: victim.Name, transferee: to.Name, message: fmt.Sprintf("moving leadership from %s to %s before removing it", victim.Name, to.Name)}, true
			}
			return action{kind: actWait, reason: "NoTransferee", message: fmt.Sprintf("no healthy voter to move leadership from %s to", victim.Name)}, true
		}
		return action{kind: actRemoveMember, member: victim.Name, zone: victim.Zone, reason: "ScaleDown",
			message: fmt.Sprintf("scaling down from %d to %d voters: removing %s from zone %s", h.voters, want, victim.Name, zoneName(victim.Zone))}, true
	}
	return action{}, false
}

// decideRebalance restores the spread one member at a time once a lost zone
// is back: a learner in the short zone, then the scale-down removes one
// from the fullest.
func decideRebalance(s *scope, h health) (action, bool) {
	if h.healthyVoters != h.voters {
		return action{}, false
	}
	c := s.cluster
	if zone, ok := placement.ZoneToRestore(c.Spec.Zones, s.readyZones, placementMembers(s.voters())); ok {
		return action{kind: actAddLearner, zone: zone, reason: "Rebalance", message: fmt.Sprintf("restoring the spread: adding a learner in zone %s", zone)}, true
	}
	return action{}, false
}

// quorumLossRecovery is the action of quorumLossPolicy once quorum has been
// lost for longer than unhealthyAfter (a loss may be a zone rebooting).
// It returns false when the policy is Wait or has nothing to act with.
func quorumLossRecovery(s *scope, h health) (action, bool) {
	c := s.cluster
	if !h.quorumLost() || c.Status.ClusterID == "" {
		return action{}, false
	}
	lostFor, _ := quorumLostFor(s)
	if lostFor < unhealthyAfter(c) {
		return action{}, false
	}
	switch c.Spec.QuorumLossPolicy {
	case quorumv1alpha1.QuorumLossForceNewCluster:
		if survivor := bestSurvivor(s); survivor != nil {
			return action{kind: actForceNewCluster, member: survivor.Name, zone: survivor.Zone, reason: "QuorumLoss",
				message: fmt.Sprintf("quorum lost; restarting from %s, the survivor with the highest raft index (%d)", survivor.Name, survivor.Status.RaftIndex)}, true
		}
	case quorumv1alpha1.QuorumLossRestoreFromBackup:
		if b, sn := newestSnapshotOf(s.backups, c.Name); sn != nil {
			return action{kind: actResetForRestore, member: sn.Name, zone: b.Name, reason: "QuorumLoss",
				message: fmt.Sprintf("quorum lost for %s; rebuilding from snapshot %s of EtcdBackup %s", lostFor.Round(time.Second), sn.Name, b.Name)}, true
		}
	}
	return action{}, false
}

// continuePending finishes the recorded change, step by step.
func continuePending(s *scope, p *quorumv1alpha1.MembershipChange) action {
	m := s.members[p.Member]
	switch p.Type {
	case quorumv1alpha1.ChangeAddMember:
		if (p.Reason == "Bootstrap" || p.Reason == "Restore") && !s.listed {
			if m == nil || m.Pod == nil {
				return action{kind: actStartMember, member: p.Member, zone: p.Zone, reason: p.Reason}
			}
			return action{kind: actWait, reason: "Bootstrapping", message: fmt.Sprintf("waiting for the first member %s to start", p.Member)}
		}
		if !s.listed {
			return action{kind: actWait, reason: "EtcdUnreachable", message: unreachableMessage(s)}
		}
		if m == nil || !m.InEtcd {
			if p.Reason == "Bootstrap" || p.Reason == "Restore" {
				return action{kind: actWait, reason: "Bootstrapping", message: fmt.Sprintf("waiting for the first member %s to start", p.Member)}
			}
			return action{kind: actAddLearner, member: p.Member, zone: p.Zone, reason: p.Reason, message: fmt.Sprintf("adding %s as a learner in zone %s", p.Member, zoneName(p.Zone))}
		}
		if m.Pod == nil || (m.PVC == nil && s.cluster.Spec.Storage.EmptyDir == nil) {
			return action{kind: actStartMember, member: p.Member, zone: p.Zone, reason: p.Reason}
		}
		if m.Learner {
			return action{kind: actPromote, member: p.Member, message: fmt.Sprintf("promoting learner %s", p.Member)}
		}
		return action{kind: actFinishAdd, member: p.Member, zone: p.Zone, reason: p.Reason}
	case quorumv1alpha1.ChangeRemoveMember:
		if !s.listed {
			return action{kind: actWait, reason: "EtcdUnreachable", message: unreachableMessage(s)}
		}
		if m != nil && m.InEtcd {
			if m.Leader {
				if to := transferee(s, m.Name); to != nil {
					return action{kind: actMoveLeader, member: m.Name, transferee: to.Name, message: fmt.Sprintf("moving leadership from %s to %s before removing it", m.Name, to.Name)}
				}
			}
			return action{kind: actRemoveMember, member: p.Member, zone: p.Zone, reason: p.Reason}
		}
		return action{kind: actCleanupMember, member: p.Member, zone: p.Zone, reason: p.Reason}
	case quorumv1alpha1.ChangeRestartMember:
		return action{kind: actRestartMember, member: p.Member, zone: p.Zone, reason: p.Reason, version: s.cluster.Spec.Version}
	case quorumv1alpha1.ChangeForceNewCluster:
		return action{kind: actForceNewCluster, member: p.Member, zone: p.Zone, reason: p.Reason}
	case quorumv1alpha1.ChangeRestoreFromBackup:
		return action{kind: actResetForRestore, reason: p.Reason}
	}
	return action{kind: actWait, reason: "UnknownChange", message: fmt.Sprintf("unknown recorded change %q", p.Type)}
}

func anyMemberObjects(s *scope) bool {
	for _, m := range s.members {
		if m.Pod != nil || m.PVC != nil {
			return true
		}
	}
	return false
}

// bestSurvivor is the reachable member with the highest raft index: it has
// the most of the cluster's committed history.
func bestSurvivor(s *scope) *memberState {
	var best *memberState
	for _, m := range s.sortedMembers() {
		if !m.InEtcd || m.Status == nil || m.Learner {
			continue
		}
		if best == nil || m.Status.RaftIndex > best.Status.RaftIndex {
			best = m
		}
	}
	return best
}

// transferee is the healthy voter with the highest raft index, other than
// from: the best place for leadership to go.
func transferee(s *scope, from string) *memberState {
	var best *memberState
	for _, m := range s.voters() {
		if m.Name == from || !m.Healthy || m.Status == nil {
			continue
		}
		if best == nil || m.Status.RaftIndex > best.Status.RaftIndex {
			best = m
		}
	}
	return best
}

func placementMembers(ms []*memberState) []placement.Member {
	return placement.Of(ms, func(m *memberState) placement.Member {
		return placement.Member{Name: m.Name, Zone: m.Zone, Healthy: m.Healthy, Created: m.Created}
	})
}

func zoneName(z string) string {
	if z == "" {
		return "(any)"
	}
	return z
}

func unreachableMessage(s *scope) string {
	if s.listErr != nil {
		return "no member answers: " + s.listErr.Error()
	}
	return "no member has a running pod"
}

// quorumLostMessage lists what was lost.
func quorumLostMessage(s *scope, h health) string {
	var lost []string
	for _, m := range s.voters() {
		if !m.Healthy {
			reason := assessReason(s, m)
			lost = append(lost, fmt.Sprintf("%s (%s)", m.Name, reason))
		}
	}
	sort.Strings(lost)
	return fmt.Sprintf("%d of %d voters are healthy, quorum needs %d; lost: %s", h.healthyVoters, h.voters, etcd.Quorum(h.voters), strings.Join(lost, ", "))
}

func assessReason(s *scope, m *memberState) string {
	if r := failureReason(s.cluster, m, time.Time{}, s.now); r != "" {
		return r
	}
	if m.Pod != nil && m.Pod.Status.PodIP == "" {
		return "its pod is not running"
	}
	return "etcd does not answer"
}

// decideRestore is the bootstrap of a cluster built from a snapshot.
func decideRestore(s *scope) action {
	c, o := s.cluster, s.restore
	if restoreVerified(c) {
		zone, ok := placement.ZoneForNewMember(c.Spec.Zones, s.readyZones, nil, "")
		if o != nil && o.zone != "" {
			zone, ok = o.zone, s.readyZones[o.zone]
		}
		if !ok {
			return action{kind: actWait, reason: "NoReadyZone", message: "no Ready zone for the restored member"}
		}
		return action{kind: actBootstrap, zone: zone, reason: "Restore", message: fmt.Sprintf("restoring snapshot %s", c.Status.Restore.Snapshot)}
	}
	switch {
	case o == nil || o.backup == nil:
		return action{kind: actWait, reason: "BackupNotFound", message: "the EtcdBackup to restore from does not exist"}
	case o.snapshot == nil:
		return action{kind: actWait, reason: "SnapshotNotFound", message: fmt.Sprintf("EtcdBackup %s lists no such verified snapshot", o.backup.Name)}
	case o.result != nil && o.result.OK:
		return action{kind: actRecordVerified, message: fmt.Sprintf("snapshot %s verified", o.snapshot.Name)}
	case o.result != nil:
		reason := o.result.Reason
		if reason == "" {
			reason = "VerificationFailed"
		}
		return action{kind: actWait, reason: reason, message: fmt.Sprintf("snapshot %s was refused, nothing was created: %s", o.snapshot.Name, o.result.Message)}
	case o.verifyPod == nil:
		return action{kind: actVerifySnapshot, message: fmt.Sprintf("fetching and verifying snapshot %s", o.snapshot.Name)}
	}
	return action{kind: actWait, reason: "VerifyingSnapshot", message: fmt.Sprintf("fetching and verifying snapshot %s", o.snapshot.Name)}
}

// quorumLostFor is how long the stored QuorumLost condition has been true.
func quorumLostFor(s *scope) (time.Duration, time.Time) {
	cond := meta.FindStatusCondition(s.cluster.Status.Conditions, quorumv1alpha1.ConditionQuorumLost)
	if cond == nil || cond.Status != metav1.ConditionTrue {
		return 0, time.Time{}
	}
	return s.now.Sub(cond.LastTransitionTime.Time), cond.LastTransitionTime.Time
}

// newestSnapshotOf finds the newest snapshot of the cluster among the
// backups that name it.
func newestSnapshotOf(backups []quorumv1alpha1.EtcdBackup, cluster string) (*quorumv1alpha1.EtcdBackup, *quorumv1alpha1.Snapshot) {
	var bestB *quorumv1alpha1.EtcdBackup
	var best *quorumv1alpha1.Snapshot
	for i := range backups {
		b := &backups[i]
		if resources.BackedUpCluster(b) != cluster {
			continue
		}
		for j := range b.Status.Snapshots {
			sn := &b.Status.Snapshots[j]
			if best == nil || sn.TakenAt.After(best.TakenAt.Time) {
				bestB, best = b, sn
			}
		}
	}
	return bestB, best
}

// decideUpgrade rolls members to spec.version one at a time, zone by zone,
// followers first and the leader last, only while every member is healthy
// and after a preflight pod proved the new image runs.
func decideUpgrade(s *scope, h health) (action, bool) {
	target := s.cluster.Spec.Version
	var stale []*memberState
	var running []string
	for _, m := range s.voters() {
		if m.PodVersion != target {
			stale = append(stale, m)
		}
		running = append(running, m.PodVersion)
	}
	if len(stale) == 0 {
		if s.preflight != nil {
			return action{kind: actDeletePreflight}, true
		}
		return action{}, false
	}
	if err := version.EtcdStep(version.Lowest(running...), target); err != nil {
		return action{kind: actWait, reason: "UpgradeRefused", message: err.Error()}, true
	}
	if h.healthyVoters != h.voters {
		return action{kind: actWait, reason: "UpgradeWaiting", message: fmt.Sprintf("the upgrade to %s waits until every member is healthy", target)}, true
	}
	if s.preflight == nil || s.preflight.Labels[resources.LabelPreflight] != target {
		return action{kind: actPreflight, version: target, message: fmt.Sprintf("checking that the image of etcd %s runs before touching any member", target)}, true
	}
	if msg, failed := preflightFailure(s.preflight); failed {
		return action{kind: actWait, reason: "VersionUnavailable", message: fmt.Sprintf("version %s cannot run, no member was touched: %s", target, msg)}, true
	}
	if s.preflight.Status.Phase != corev1.PodSucceeded {
		return action{kind: actWait, reason: "Preflight", message: fmt.Sprintf("checking that the image of etcd %s runs", target)}, true
	}
	zoneRank := map[string]int{}
	for i, z := range s.cluster.Spec.Zones {
		zoneRank[z] = i
	}
	sort.SliceStable(stale, func(i, j int) bool {
		a, b := stale[i], stale[j]
		if a.Leader != b.Leader {
			return !a.Leader
		}
		if zoneRank[a.Zone] != zoneRank[b.Zone] {
			return zoneRank[a.Zone] < zoneRank[b.Zone]
		}
		return a.Name < b.Name
	})
	next := stale[0]
	if next.Leader {
		if to := transferee(s, next.Name); to != nil {
			return action{kind: actMoveLeader, member: next.Name, transferee: to.Name, message: fmt.Sprintf("moving leadership from %s to %s before upgrading it", next.Name, to.Name)}, true
		}
	}
	return action{kind: actRestartMember, member: next.Name, zone: next.Zone, version: target, reason: "Upgrade",
		message: fmt.Sprintf("upgrading %s from %s to %s", next.Name, next.PodVersion, target)}, true
}

// preflightFailure says whether the preflight pod proved the version cannot
// run: its image cannot be pulled, or etcd --version failed.
func preflightFailure(p *corev1.Pod) (string, bool) {
	for _, st := range p.Status.ContainerStatuses {
		if w := st.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "CreateContainerError":
				return fmt.Sprintf("image %s: %s: %s", st.Image, w.Reason, w.Message), true
			}
		}
		if t := st.State.Terminated; t != nil && t.ExitCode != 0 {
			return fmt.Sprintf("etcd --version in image %s exited %d", st.Image, t.ExitCode), true
		}
	}
	if p.Status.Phase == corev1.PodFailed {
		return "the preflight pod failed: " + ptr.Deref(&p.Status.Message, ""), true
	}
	return "", false
}
