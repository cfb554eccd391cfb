package etcdcluster

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/placement"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
	"quorum.dev/quorum/internal/schedule"
	"quorum.dev/quorum/internal/version"
)

// actionKind is the one change a reconcile makes.
type actionKind string

const (
	actNone            actionKind = "None"
	actBootstrap       actionKind = "Bootstrap"        // record and start the first member
	actRecreatePod     actionKind = "RecreatePod"      // a member's pod is gone, its data is not
	actAddLearner      actionKind = "AddLearner"       // record, then MemberAddAsLearner
	actStartMember     actionKind = "StartMember"      // volume, certificates and pod of a recorded member
	actPromote         actionKind = "Promote"          // learner to voter
	actFinishAdd       actionKind = "FinishAdd"        // the added member votes: label it, clear the record
	actMoveLeader      actionKind = "MoveLeader"       // leadership off a member about to go
	actRemoveMember    actionKind = "RemoveMember"     // record, then MemberRemove
	actCleanupMember   actionKind = "CleanupMember"    // pod, volume and certificates of a removed member
	actDeleteOrphan    actionKind = "DeleteOrphan"     // objects of a member etcd does not know
	actRestartMember   actionKind = "RestartMember"    // record, then a new pod at the new version
	actForceNewCluster actionKind = "ForceNewCluster"  // quorum-loss recovery from the best survivor
	actLabelVoter      actionKind = "LabelVoter"       // a voter's pod is not labelled as one
	actPreflight       actionKind = "Preflight"        // check a new version's image before an upgrade
	actDeletePreflight actionKind = "DeletePreflight"  // the upgrade is done
	actVerifySnapshot  actionKind = "VerifySnapshot"   // fetch and verify the snapshot to restore
	actRecordVerified  actionKind = "RecordVerified"   // the snapshot verified: record it
	actResetForRestore actionKind = "ResetForRestore"  // quorum lost: delete every member, to restore
	actDeleteFailedPod actionKind = "DeleteFailedPod"  // a member's pod failed: delete it to start it again
	actAbandonAdd      actionKind = "AbandonAdd"       // a learner not promoted in time: remove it and its objects
	actRollback        actionKind = "Rollback"         // a restarted member not healthy in time: back to its version
	actCancelChange    actionKind = "CancelChange"     // a recorded change that must not go on: drop it
	actRenewCert       actionKind = "RenewCertificate" // reissue a member's certificates in its Secret
	actResizeVolume    actionKind = "ResizeVolume"     // ask a member's volume for spec.storage.size
	actCompact         actionKind = "Compact"          // NOSPACE: discard the key history
	actDefrag          actionKind = "Defragment"       // give a member's free pages back (NOSPACE, schedule, threshold)
	actDisarm          actionKind = "DisarmAlarm"      // NOSPACE: space is back, writes may resume

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
	// version is the version a restarted member runs; fromVersion the one
	// it ran before (its rollback).
	version, fromVersion string
	// revision is the revision a compaction goes to.
	revision int64
	// scheduledAt is the due time of the scheduled defragmentation a
	// defragmentation belongs to.
	scheduledAt time.Time
	// trigger is the quorum.dev/defrag value a requested defragmentation
	// answers.
	trigger string
	// message explains the action or the wait, for events and conditions.
	message string
}

// health is the pure summary of the cluster's members, and of the
// evidence about its quorum.
type health struct {
	voters        int
	healthyVoters int
	learners      int
	// failed are members the failure policy counts as failed, with why.
	failed map[string]string
	// unhealthy are voters not known healthy (failed or not yet).
	unhealthy []string
	// down are voters that do not answer at the network level, or have no
	// running pod; a voter that refused the operator's credentials is not
	// down, only unseen.
	down []string
	// leaderKnown is true when a reachable member reports a leader;
	// serving when a voter's kubelet reports it passing /readyz.
	leaderKnown bool
	serving     bool
	// quorum is what the evidence says of quorum: quorumOK, quorumUnjudged
	// (the operator cannot see etcd), quorumSuspect (lost, for less than
	// unhealthyAfter) or quorumLost.
	quorum quorumState
	// since is when the member clocks start: the moment the operator last
	// regained a clear view of a cluster with quorum. Time before it does
	// not count toward replacing a member.
	since time.Time
}

// quorumState is what the evidence says of a cluster's quorum.
type quorumState string

const (
	quorumOK          quorumState = "OK"
	quorumUnjudged    quorumState = "Unjudged"
	quorumSuspect     quorumState = "Suspect"
	quorumCountedLost quorumState = "Lost"
)

// quorumLost says whether quorum is counted lost: a majority of voters
// failed at the network level, no reachable member knows a leader, no
// kubelet reports a voter serving, with the operator's credentials
// working, for unhealthyAfter.
func (h health) quorumLost() bool { return h.quorum == quorumCountedLost }

// canServe says whether enough voters are healthy to make progress.
func (h health) canServe() bool { return h.voters > 0 && h.healthyVoters >= etcd.Quorum(h.voters) }

// change is a membership change, for projecting the quorum it leaves.
type change struct {
	// remove is a voter (or learner) to remove; restart a voter to restart
	// (down for a while, still a voter); promote a learner to make a voter.
	remove, restart, promote string
}

// projection is the voters a change leaves, and how many of them are
// healthy: the one quorum check every membership change, restart and
// housekeeping step goes through (Cluster API's targetEtcdClusterHealthy).
type projection struct {
	voters, healthy int
}

func (p projection) quorum() int { return etcd.Quorum(p.voters) }

// safe says whether the membership after the change keeps quorum with
// only the members known healthy now.
func (p projection) safe() bool { return p.voters > 0 && p.healthy >= p.quorum() }

// project is the membership ch leaves.
func project(s *scope, ch change) projection {
	var p projection
	for _, m := range s.sortedMembers() {
		if !m.InEtcd {
			continue
		}
		voter := !m.Learner || m.Name == ch.promote
		if !voter || m.Name == ch.remove {
			continue
		}
		p.voters++
		if m.Healthy && m.Name != ch.restart {
			p.healthy++
		}
	}
	return p
}

// failureReason says why a voter is failed, or "" when it is not. Its data
// gone, its volume lost or being deleted fail it at once: that is
// Kubernetes' record, not the operator's view. Being down, unhealthy or on
// a NotReady node fails it only after unhealthyAfter counted from since,
// and never while it is healthy in etcd.
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
	case emptyDir && m.Pod != nil && m.Pod.Status.Phase == corev1.PodFailed:
		return "its pod failed and its data went with it"
	case m.Healthy:
		return ""
	case m.Pod == nil || m.Pod.Status.Phase == corev1.PodFailed:
		// Pod gone or failed, data kept: the pod is made again, the member
		// is not replaced.
		return ""
	}
	if unhealthySince.IsZero() {
		return ""
	}
	after := unhealthyAfter(c)
	if now.Sub(unhealthySince) < after {
		return ""
	}
	if !m.NodeReady {
		return fmt.Sprintf("its node %s has been NotReady for more than %s", m.NodeName, after)
	}
	return fmt.Sprintf("it has not been healthy for more than %s (%s)", after, memberTrouble(m))
}

// memberTrouble says what the operator saw of an unhealthy member.
func memberTrouble(m *memberState) string {
	switch {
	case m.Status != nil:
		return "it answers but knows no leader"
	case m.Failure == etcd.Rejected:
		return "it refuses the operator's credentials"
	case m.Pod != nil && m.Pod.Status.PodIP == "":
		return "its pod is not running"
	}
	return "it does not answer"
}

func unhealthyAfter(c *quorumv1alpha1.EtcdCluster) time.Duration {
	return c.Spec.FailurePolicy.UnhealthyAfterOrDefault()
}

// startTimeout bounds a learner's promotion and a restarted member's
// return to health.
func startTimeout(c *quorumv1alpha1.EtcdCluster) time.Duration {
	return c.Spec.FailurePolicy.StartTimeoutOrDefault()
}

func autoReplace(c *quorumv1alpha1.EtcdCluster) bool { return c.Spec.FailurePolicy.Replaces() }

func desiredReplicas(c *quorumv1alpha1.EtcdCluster) int { return c.Spec.DesiredReplicas() }

// unhealthySince is when a member was last seen turning unhealthy, from
// the status the previous pass wrote, but never before since: time in
// which the operator could not see a cluster with quorum does not count.
// Zero when its clock does not run.
func unhealthySince(c *quorumv1alpha1.EtcdCluster, name string, since, now time.Time) time.Time {
	if since.IsZero() {
		return time.Time{}
	}
	start := now
	for _, ms := range c.Status.Members {
		if ms.Name == name && !ms.Healthy && ms.Since != nil {
			start = ms.Since.Time
		}
	}
	if start.Before(since) {
		start = since
	}
	return start
}

// clockSince is when the member clocks start, for a cluster whose quorum
// is good now: when QuorumLost last became False, which it does when quorum
// comes back and when the operator sees etcd again; now when that happens
// in this pass.
func clockSince(c *quorumv1alpha1.EtcdCluster, now time.Time) time.Time {
	cond := meta.FindStatusCondition(c.Status.Conditions, quorumv1alpha1.ConditionQuorumLost)
	if cond == nil || cond.Status != metav1.ConditionFalse {
		return now
	}
	return cond.LastTransitionTime.Time
}

// judgeQuorum is what the evidence says of quorum. Only etcd's own facts
// count: too few voters answering at the network level to make a quorum, no reachable
// member knowing a leader, and no kubelet reporting a voter serving, seen
// by an operator whose credentials work. That evidence must then hold for
// unhealthyAfter, measured from when the stored QuorumLost condition
// turned Unknown with reason QuorumLossSuspected.
func judgeQuorum(s *scope, h health) quorumState {
	c := s.cluster
	if !s.access.ok() {
		return quorumUnjudged
	}
	// Fewer voters up than a quorum: with an even count in the middle of a
	// replacement (two voters while one is removed and the next not yet
	// promoted) one voter down is already a loss.
	lostNow := c.Status.ClusterID != "" && h.voters > 0 && h.voters-len(h.down) < etcd.Quorum(h.voters) && !h.leaderKnown && !h.serving
	if !lostNow {
		return quorumOK
	}
	cond := meta.FindStatusCondition(c.Status.Conditions, quorumv1alpha1.ConditionQuorumLost)
	switch {
	case cond != nil && cond.Status == metav1.ConditionTrue:
		return quorumCountedLost
	case cond != nil && cond.Status == metav1.ConditionUnknown && cond.Reason == reasonQuorumLossSuspected &&
		s.now.Sub(cond.LastTransitionTime.Time) >= unhealthyAfter(c):
		return quorumCountedLost
	}
	return quorumSuspect
}

// reasonQuorumLossSuspected is the reason of QuorumLost=Unknown while the
// evidence of a loss is younger than unhealthyAfter; its transition time is
// when the evidence started.
const reasonQuorumLossSuspected = "QuorumLossSuspected"

// assess computes the health summary of a scope.
func assess(s *scope) health {
	h := health{failed: map[string]string{}}
	for _, m := range s.sortedMembers() {
		if m.Learner && m.InEtcd {
			h.learners++
		}
		if m.Status != nil && m.Status.Leader != 0 {
			h.leaderKnown = true
		}
		if !m.Voter() {
			continue
		}
		h.voters++
		h.serving = h.serving || m.PodServing
		if m.Healthy {
			h.healthyVoters++
		} else {
			h.unhealthy = append(h.unhealthy, m.Name)
		}
		if m.Status == nil && m.Failure != etcd.Rejected {
			h.down = append(h.down, m.Name)
		}
	}
	h.quorum = judgeQuorum(s, h)
	if h.quorum == quorumOK {
		h.since = clockSince(s.cluster, s.now)
	}
	for _, m := range s.voters() {
		if reason := failureReason(s.cluster, m, unhealthySince(s.cluster, m.Name, h.since, s.now), s.now); reason != "" {
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
		decideRecovery,     // quorum counted lost: the quorumLossPolicy
		decidePending,      // a recorded change is finished or undone first
		decideBootstrap,    // a new cluster: its first member, or a restore
		decideRecreatePod,  // a member whose pod is gone or failed comes back from its volume
		decideReachable,    // nothing below without a clear view of a cluster with quorum
		decideStrayLearner, // a learner no recorded change explains
		decideOrphan,       // objects of a member etcd does not list
		decideRepair,       // failed members, one at a time, zone by zone
		decideVoterLabels,  // voters' pods counted by the disruption budget
		decideSettings,     // members restarted onto new maintenance settings, one at a time
		decideNoSpace,      // NOSPACE: compact, defragment, disarm once space is back
		decideCertificates, // renewed before they expire, members restarted onto them one at a time
		decideCARotation,   // a new CA trusted, issuing, then alone, each phase once every holder moved
		decideScale,        // toward spec.replicas, one member at a time
		decideUpgrade,      // toward spec.version, one member at a time
		decideRebalance,    // the spread restored once a lost zone is back
		decideVolumes,      // volumes grown to spec.storage.size where the StorageClass allows
		decideDefrag,       // defragmentation on a schedule or past a fragmentation threshold
	} {
		if a, ok := d(s, h); ok {
			return a
		}
	}
	return action{kind: actNone}
}

// decideRecovery: once quorum is counted lost, the quorumLossPolicy
// supersedes any change in flight: the change cannot finish without
// quorum, and the recovery replaces the members it was about.
func decideRecovery(s *scope, h health) (action, bool) {
	if p := s.cluster.Status.PendingChange; p != nil && (p.Type == quorumv1alpha1.ChangeForceNewCluster || p.Type == quorumv1alpha1.ChangeRestoreFromBackup) {
		return action{}, false
	}
	return quorumLossRecovery(s, h)
}

// decidePending finishes (or undoes) the recorded change before anything
// else.
func decidePending(s *scope, h health) (action, bool) {
	if p := s.cluster.Status.PendingChange; p != nil {
		return continuePending(s, h, p), true
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

// decideRecreatePod: a member whose pod is gone (or failed, and is deleted
// first) while its data is safe on a Ready node comes back as itself: no
// membership change, quorum untouched, so this needs no quorum.
func decideRecreatePod(s *scope, _ health) (action, bool) {
	if s.cluster.Spec.Storage.EmptyDir != nil {
		return action{}, false
	}
	for _, m := range s.sortedMembers() {
		if !m.InEtcd || m.PVC == nil || !m.NodeReady || m.PVC.Status.Phase == corev1.ClaimLost || m.PVC.DeletionTimestamp != nil {
			continue
		}
		switch {
		case m.Pod == nil:
			return action{kind: actRecreatePod, member: m.Name, zone: m.Zone, message: fmt.Sprintf("recreating the pod of member %s from its volume", m.Name)}, true
		case m.Pod.Status.Phase == corev1.PodFailed && m.Pod.DeletionTimestamp == nil:
			return action{kind: actDeleteFailedPod, member: m.Name, zone: m.Zone, message: fmt.Sprintf("deleting the failed pod of member %s, to start it again from its volume", m.Name)}, true
		}
	}
	return action{}, false
}

// decideReachable waits while the operator cannot see etcd, or etcd has no
// quorum: nothing below can be done safely then.
func decideReachable(s *scope, h health) (action, bool) {
	c := s.cluster
	switch {
	case !s.access.ok():
		return action{kind: actWait, reason: "EtcdUnreachable", message: s.access.message}, true
	case !s.listed:
		return action{kind: actWait, reason: "EtcdUnreachable", message: unreachableMessage(s)}, true
	case h.canServe():
		return action{}, false
	case !h.quorumLost():
		return action{kind: actWait, reason: "NoQuorum", message: quorumLostMessage(s, h)}, true
	case c.Spec.QuorumLossPolicy == quorumv1alpha1.QuorumLossRestoreFromBackup:
		if _, sn := newestSnapshotOf(s.backups, c.Name); sn == nil {
			return action{kind: actWait, reason: "NoSnapshot", message: quorumLostMessage(s, h) + "; no EtcdBackup of this cluster holds a snapshot to restore"}, true
		}
	}
	return action{kind: actWait, reason: "QuorumLost", message: quorumLostMessage(s, h)}, true
}

// decideStrayLearner: a learner nobody recorded (an older operator, or a
// hand-made one) is removed, never left beside a second one. Only a
// membership read through the leader is trusted to say it is there.
func decideStrayLearner(s *scope, _ health) (action, bool) {
	for _, m := range s.sortedMembers() {
		if m.Learner && m.InEtcd {
			if !s.linearizable {
				return action{kind: actWait, reason: "MembershipUnconfirmed", message: fmt.Sprintf("learner %s is not removed until the membership is read through the leader", m.Name)}, true
			}
			return action{kind: actRemoveMember, member: m.Name, zone: m.Zone, reason: "StrayLearner",
				message: fmt.Sprintf("removing learner %s that no recorded change explains", m.Name)}, true
		}
	}
	return action{}, false
}

// decideOrphan: objects of a member etcd does not list (left by an
// interrupted removal) are deleted, only when the list was read through
// the leader: a lagging member's own list can omit a live voter.
func decideOrphan(s *scope, _ health) (action, bool) {
	for _, m := range s.sortedMembers() {
		if !m.InEtcd && (m.Pod != nil || m.PVC != nil) {
			if !s.linearizable {
				return action{kind: actWait, reason: "MembershipUnconfirmed", message: fmt.Sprintf("the pod and volume of %s, which a member's own list does not show, are kept until the membership is read through the leader", m.Name)}, true
			}
			return action{kind: actDeleteOrphan, member: m.Name, message: fmt.Sprintf("deleting the pod and volume of %s, which is not a member", m.Name)}, true
		}
	}
	return action{}, false
}

// removal is the step that removes a voter (or learner) when the quorum
// projection allows it: leadership moved off it first, the membership read
// through the leader. why says what the removal is for.
func removal(s *scope, m *memberState, reason, why string) action {
	p := project(s, change{remove: m.Name})
	switch {
	case !s.linearizable:
		return action{kind: actWait, reason: "MembershipUnconfirmed", message: fmt.Sprintf("%s waits until the membership is read through the leader", why)}
	case !p.safe():
		return action{kind: actWait, reason: "QuorumAtRisk", message: fmt.Sprintf(
			"%s would leave %d healthy voters, fewer than the quorum of %d of the remaining %d", why, p.healthy, p.quorum(), p.voters)}
	case m.Leader:
		if to := transferee(s, m.Name); to != nil {
			return action{kind: actMoveLeader, member: m.Name, transferee: to.Name, message: fmt.Sprintf("moving leadership from %s to %s before removing it", m.Name, to.Name)}
		}
		return action{kind: actWait, reason: "NoTransferee", message: fmt.Sprintf("no healthy voter to move leadership from %s to", m.Name)}
	}
	return action{kind: actRemoveMember, member: m.Name, zone: m.Zone, reason: reason, message: why}
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
	return removal(s, s.members[next.Name], "Replace", fmt.Sprintf("replacing member %s: %s", next.Name, h.failed[next.Name])), true
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

// settled says whether a restart or housekeeping step may start: every
// voter healthy, no learner, the membership read through the leader.
func settled(s *scope, h health) bool {
	return h.healthyVoters == h.voters && h.learners == 0 && s.linearizable
}

// reasonSettings is the reason of restarts onto new maintenance settings.
const reasonSettings = "MaintenanceSettings"

// decideSettings restarts members whose pods run other maintenance
// settings than the spec's, one at a time, the leader last, only while
// every member is healthy.
func decideSettings(s *scope, h health) (action, bool) {
	want := resources.MaintenanceHash(s.cluster)
	var stale []*memberState
	for _, m := range restartOrder(s, s.voters()) {
		if m.Pod != nil && m.Pod.DeletionTimestamp == nil && m.Pod.Annotations[resources.AnnotationMaintenance] != want {
			stale = append(stale, m)
		}
	}
	if len(stale) == 0 {
		return action{}, false
	}
	if !settled(s, h) {
		return action{kind: actWait, reason: "SettingsWaiting", message: fmt.Sprintf("restarting %s onto the new maintenance settings waits until every member is healthy", stale[0].Name)}, true
	}
	return restart(s, stale[0], stale[0].PodVersion, reasonSettings, "onto the new maintenance settings"), true
}

// defaultQuota is etcd's own --quota-backend-bytes default.
const defaultQuota = 2 << 30

func quotaBytes(c *quorumv1alpha1.EtcdCluster) int64 {
	if q := c.Spec.Maintenance.QuotaBackendBytes; q != nil {
		return q.Value()
	}
	return defaultQuota
}

// reclaimable is how much a defragmentation would give back on m.
func reclaimable(m *memberState) int64 {
	if m.Status == nil {
		return 0
	}
	return m.Status.DBSize - m.Status.DBSizeInUse
}

// decideNoSpace recovers from a NOSPACE alarm, one step a pass and only
// while every member is healthy: the key history is compacted to the
// current revision, each member with free pages is defragmented
// (followers first, the leader last after leadership moved), and the alarm
// is disarmed once every database is back under 80% of the quota. Space
// held by live data is said, never disarmed into a new alarm.
func decideNoSpace(s *scope, h health) (action, bool) {
	c := s.cluster
	if !s.alarmsKnown || !hasAlarm(s, "NOSPACE") {
		return action{}, false
	}
	if !settled(s, h) {
		return action{kind: actWait, reason: "NoSpaceRecoveryWaiting", message: "recovering from NOSPACE waits until every member is healthy"}, true
	}
	var revision, largest int64
	var biggest string
	for _, m := range s.voters() {
		if m.Status == nil {
			continue
		}
		revision = max(revision, m.Status.Revision)
		if m.Status.DBSize > largest {
			largest, biggest = m.Status.DBSize, m.Name
		}
	}
	lc := c.Status.LastCompaction
	if revision > 0 && (lc == nil || lc.Revision < revision) {
		return action{kind: actCompact, revision: revision, reason: "NoSpaceRecovery", message: fmt.Sprintf("NOSPACE: compacting the key history to revision %d", revision)}, true
	}
	for _, m := range restartOrder(s, s.voters()) {
		// Each member once since the compaction: its freed pages do not
		// show in its figures until it writes again.
		if r := reclaimable(m); (lc != nil && !slices.Contains(lc.Defragmented, m.Name)) || r >= max(m.Status.DBSize/10, 1<<20) {
			return defragStep(s, m, action{reason: "NoSpaceRecovery", message: fmt.Sprintf(
				"NOSPACE: defragmenting %s (%d bytes, %d reported free)", m.Name, m.Status.DBSize, r)}), true
		}
	}
	quota := quotaBytes(c)
	if largest < quota*8/10 {
		return action{kind: actDisarm, reason: "NoSpaceRecovery", message: fmt.Sprintf(
			"NOSPACE: every database is under 80%% of quotaBackendBytes (%d of %d bytes at the most): disarming the alarm", largest, quota)}, true
	}
	return action{kind: actWait, reason: "NoSpaceLiveData", message: fmt.Sprintf(
		"the database of %s holds %d bytes after compaction and defragmentation, over 80%% of quotaBackendBytes (%d): the space is live data; delete data or raise spec.maintenance.quotaBackendBytes",
		biggest, largest, quota)}, true
}

// defragStep defragments m (a carries the reason and message), or first
// moves leadership off it: the leader is defragmented last, as a follower.
func defragStep(s *scope, m *memberState, a action) action {
	if m.Leader {
		if to := transferee(s, m.Name); to != nil {
			return action{kind: actMoveLeader, member: m.Name, transferee: to.Name, reason: a.reason,
				message: fmt.Sprintf("moving leadership from %s to %s before defragmenting it", m.Name, to.Name)}
		}
	}
	a.kind, a.member = actDefrag, m.Name
	return a
}

// Reasons of the defragmentations spec.maintenance.defrag and the
// quorum.dev/defrag annotation ask for.
const (
	reasonScheduledDefrag = "ScheduledDefrag"
	reasonFragmented      = "Fragmented"
	reasonRequestedDefrag = "RequestedDefrag"
)

// defaultMinReclaimable is the least a threshold defragmentation gives
// back when spec.maintenance.defrag.minReclaimable is not set.
const defaultMinReclaimable = 16 << 20

// decideDefrag defragments members as the quorum.dev/defrag annotation
// and spec.maintenance.defrag ask, one member a pass, followers first and
// the leader last after leadership moved, only while every member is
// healthy: every voter once for a new annotation value and for a
// scheduled run that is due, and any voter whose free pages pass
// whenFragmentedAbove and minReclaimable.
func decideDefrag(s *scope, h health) (action, bool) {
	c := s.cluster
	p := c.Spec.Maintenance.Defrag
	todo, a := requestedDefragNext(s)
	if todo == nil && p == nil {
		return action{}, false
	}
	if todo != nil {
		if !settled(s, h) {
			return action{kind: actWait, reason: "DefragWaiting", message: fmt.Sprintf("defragmenting %s waits until every member is healthy", todo.Name)}, true
		}
		return defragStep(s, todo, a), true
	}
	due, err := scheduledDefragDue(s)
	if err != nil {
		return action{kind: actWait, reason: "DefragScheduleInvalid", message: "spec.maintenance.defrag: " + err.Error()}, true
	}
	if !due.IsZero() {
		done := scheduledDefragDone(c, due)
		for _, m := range restartOrder(s, s.voters()) {
			if !slices.Contains(done, m.Name) {
				todo = m
				a = action{reason: reasonScheduledDefrag, scheduledAt: due, message: fmt.Sprintf(
					"scheduled defragmentation of %s: defragmenting %s (%d bytes, %d reported free)", due.UTC().Format(time.RFC3339), m.Name, dbSize(m), reclaimable(m))}
				break
			}
		}
	}
	if todo == nil && p.WhenFragmentedAbove != "" {
		pct, _ := strconv.Atoi(strings.TrimSuffix(p.WhenFragmentedAbove, "%"))
		least := int64(defaultMinReclaimable)
		if p.MinReclaimable != nil {
			least = p.MinReclaimable.Value()
		}
		for _, m := range restartOrder(s, s.voters()) {
			if r := reclaimable(m); m.Status != nil && r >= least && r*100 > int64(pct)*m.Status.DBSize {
				todo = m
				a = action{reason: reasonFragmented, message: fmt.Sprintf(
					"defragmenting %s: %d of its %d bytes are free pages, over %s", m.Name, r, m.Status.DBSize, p.WhenFragmentedAbove)}
				break
			}
		}
	}
	if todo == nil {
		return action{}, false
	}
	if !settled(s, h) {
		return action{kind: actWait, reason: "DefragWaiting", message: fmt.Sprintf("defragmenting %s waits until every member is healthy", todo.Name)}, true
	}
	return defragStep(s, todo, a), true
}

// requestedDefragNext is the next voter the quorum.dev/defrag annotation
// asks to defragment, with its action; nil once every voter was done for
// the annotation's current value.
func requestedDefragNext(s *scope) (*memberState, action) {
	c := s.cluster
	trigger := c.Annotations[reconciler.AnnotationDefrag]
	if trigger == "" {
		return nil, action{}
	}
	var done []string
	if st := c.Status.RequestedDefrag; st != nil && st.Trigger == trigger {
		if st.CompletionTime != nil {
			return nil, action{}
		}
		done = st.Defragmented
	}
	for _, m := range restartOrder(s, s.voters()) {
		if !slices.Contains(done, m.Name) {
			return m, action{reason: reasonRequestedDefrag, trigger: trigger, message: fmt.Sprintf(
				"defragmentation asked by %s=%q: defragmenting %s (%d bytes, %d reported free)", reconciler.AnnotationDefrag, trigger, m.Name, dbSize(m), reclaimable(m))}
		}
	}
	return nil, action{}
}

// scheduledDefragDue is the due time of the scheduled defragmentation to
// work on now: the run under way, or the one the schedule says is due
// (CronJob's rules, counted from the last run or the cluster's creation).
// Zero when none.
func scheduledDefragDue(s *scope) (time.Time, error) {
	c := s.cluster
	p := c.Spec.Maintenance.Defrag
	if p == nil || p.Schedule == "" {
		return time.Time{}, nil
	}
	st := c.Status.ScheduledDefrag
	if st != nil && st.LastScheduleTime != nil && st.CompletionTime == nil && !scheduledDefragComplete(s, st.Defragmented) {
		return st.LastScheduleTime.Time, nil
	}
	sched, loc, err := schedule.Parse(p.Schedule, ptr.Deref(p.TimeZone, ""))
	if err != nil {
		return time.Time{}, err
	}
	last := c.CreationTimestamp.Time
	if st != nil && st.LastScheduleTime != nil {
		last = st.LastScheduleTime.Time
	}
	if d := schedule.Decide(sched, loc, last, s.now, 0); d.Run {
		return d.ScheduledAt, nil
	}
	return time.Time{}, nil
}

// scheduledDefragDone are the members already defragmented in the run due
// at due.
func scheduledDefragDone(c *quorumv1alpha1.EtcdCluster, due time.Time) []string {
	if st := c.Status.ScheduledDefrag; st != nil && st.LastScheduleTime != nil && st.LastScheduleTime.Time.Equal(due) {
		return st.Defragmented
	}
	return nil
}

// scheduledDefragComplete says whether every voter is among done.
func scheduledDefragComplete(s *scope, done []string) bool {
	for _, m := range s.voters() {
		if !slices.Contains(done, m.Name) {
			return false
		}
	}
	return true
}

func dbSize(m *memberState) int64 {
	if m.Status == nil {
		return 0
	}
	return m.Status.DBSize
}

func hasAlarm(s *scope, alarm string) bool {
	for _, a := range s.alarms {
		if a.Type == alarm {
			return true
		}
	}
	return false
}

// reasonCertificateRenewal is the reason of certificate renewals and of
// the restarts that put members onto their new certificates.
const reasonCertificateRenewal = "CertificateRenewal"

// reasonRotatingCA is the reason of every step of a CA rotation.
const reasonRotatingCA = "RotatingCA"

// certificateRestart says whether a restart with reason puts a member onto
// new certificates.
func certificateRestart(reason string) bool {
	return reason == reasonCertificateRenewal || reason == reasonRotatingCA
}

// certDue says why a member's (or the client's) certificate Secret must
// be rewritten, "" when it need not: unreadable; issued by a CA that no
// longer issues (a rotation moved on); trusting another bundle than the
// CA Secret's; or inside its renewal window while a new one from the CA
// would outlive it.
func certDue(c *quorumv1alpha1.EtcdCluster, ci certInfo, o *certObservation, now time.Time) string {
	if !ci.ok {
		return "unreadable"
	}
	for _, l := range ci.leaves {
		if !pki.IssuedBy(l, o.ca) {
			return "issued from the new CA"
		}
	}
	if !bytes.Equal(ci.trust, o.trust) {
		return "trusting " + trustSummary(o.trust)
	}
	if pki.RenewalDue(ci.notAfter, o.ca.NotAfter, now, renewBefore(c)) {
		return "expiring " + ci.notAfter.UTC().Format(time.RFC3339)
	}
	return ""
}

// decideCertificates keeps every member's certificates out of their
// renewal window: the Secrets of the members due are reissued first (the
// running members are not touched), then each member whose pod predates
// its certificates is restarted onto them, one at a time, followers in
// zone order and the leader last, only while every member is healthy.
func decideCertificates(s *scope, h health) (action, bool) {
	o := s.certs
	if o == nil {
		return action{}, false
	}
	c := s.cluster
	var due, stale []*memberState
	for _, m := range restartOrder(s, s.voters()) {
		ci, ok := o.members[m.Name]
		switch {
		case !ok:
		case certDue(c, ci, o, s.now) != "":
			due = append(due, m)
		case m.Pod != nil && m.Pod.DeletionTimestamp == nil && runsOldCertificates(m, ci):
			stale = append(stale, m)
		}
	}
	if len(due) == 0 && len(stale) == 0 {
		return action{}, false
	}
	reason := reasonCertificateRenewal
	if o.rotation.Phase != "" {
		reason = reasonRotatingCA
	}
	if !settled(s, h) {
		var names []string
		for _, m := range append(due, stale...) {
			names = append(names, m.Name)
		}
		return action{kind: actWait, reason: "CertificateRenewalWaiting", message: fmt.Sprintf(
			"renewing the certificates of %s waits until every member is healthy", strings.Join(names, ", "))}, true
	}
	if len(due) > 0 {
		m := due[0]
		return action{kind: actRenewCert, member: m.Name, reason: reason, message: fmt.Sprintf(
			"the certificates of %s (%s) rewritten; it restarts onto them next", m.Name, certDue(c, o.members[m.Name], o, s.now))}, true
	}
	next := stale[0]
	return restart(s, next, next.PodVersion, reason, "onto its renewed certificates"), true
}

// restart is the step that restarts voter m at version, for reason: the
// quorum projection must allow it, and leadership moves off it first.
// why completes "restarting <member> ...".
func restart(s *scope, m *memberState, version, reason, why string) action {
	if p := project(s, change{restart: m.Name}); !p.safe() {
		return action{kind: actWait, reason: "QuorumAtRisk", message: fmt.Sprintf(
			"restarting %s %s would leave %d healthy voters, fewer than the quorum of %d", m.Name, why, p.healthy, p.quorum())}
	}
	if m.Leader {
		if to := transferee(s, m.Name); to != nil {
			return action{kind: actMoveLeader, member: m.Name, transferee: to.Name, message: fmt.Sprintf("moving leadership from %s to %s before restarting it %s", m.Name, to.Name, why)}
		}
	}
	return action{kind: actRestartMember, member: m.Name, zone: m.Zone, version: version, fromVersion: m.PodVersion, reason: reason,
		message: fmt.Sprintf("restarting %s %s", m.Name, why)}
}

// restartOrder sorts members to restart: followers first, in zone order,
// the leader last.
func restartOrder(s *scope, ms []*memberState) []*memberState {
	zoneRank := map[string]int{}
	for i, z := range s.cluster.Spec.Zones {
		zoneRank[z] = i
	}
	out := append([]*memberState(nil), ms...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Leader != b.Leader {
			return !a.Leader
		}
		if zoneRank[a.Zone] != zoneRank[b.Zone] {
			return zoneRank[a.Zone] < zoneRank[b.Zone]
		}
		return a.Name < b.Name
	})
	return out
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
		return removal(s, s.members[victim.Name], "ScaleDown",
			fmt.Sprintf("scaling down from %d to %d voters: removing %s from zone %s", h.voters, want, victim.Name, zoneName(victim.Zone))), true
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

// decideVolumes grows members' volumes to spec.storage.size, one at a
// time; a volume whose StorageClass cannot expand is reported (the spec
// asks for what cannot be done), never ignored.
func decideVolumes(s *scope, _ health) (action, bool) {
	c := s.cluster
	if c.Spec.Storage.EmptyDir != nil || c.Spec.Storage.Size == nil {
		return action{}, false
	}
	want := *c.Spec.Storage.Size
	var stuck []string
	for _, m := range s.voters() {
		if m.PVC == nil || m.PVC.DeletionTimestamp != nil {
			continue
		}
		have := m.PVC.Spec.Resources.Requests[corev1.ResourceStorage]
		if have.Cmp(want) >= 0 {
			continue
		}
		if m.Expandable {
			return action{kind: actResizeVolume, member: m.Name, reason: "VolumeResize", message: fmt.Sprintf("growing the volume of %s from %s to %s", m.Name, have.String(), want.String())}, true
		}
		stuck = append(stuck, fmt.Sprintf("%s (%s)", m.Name, have.String()))
	}
	if len(stuck) > 0 {
		return action{kind: actWait, reason: "VolumeExpansionUnsupported", message: fmt.Sprintf(
			"storage.size is %s but the StorageClass of these volumes does not allow expansion: %s; members added from now on get %s",
			want.String(), strings.Join(stuck, ", "), want.String())}, true
	}
	return action{}, false
}

// quorumLossRecovery is the action of quorumLossPolicy once quorum is
// counted lost (the evidence held for unhealthyAfter: a loss may be a zone
// rebooting). It returns false when the policy is Wait or has nothing to
// act with.
func quorumLossRecovery(s *scope, h health) (action, bool) {
	c := s.cluster
	if !h.quorumLost() || c.Status.ClusterID == "" {
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
				message: fmt.Sprintf("quorum lost since %s; rebuilding from snapshot %s of EtcdBackup %s", quorumLostAt(c).UTC().Format(time.RFC3339), sn.Name, b.Name)}, true
		}
	}
	return action{}, false
}

// continuePending finishes the recorded change, step by step, or undoes
// it when it cannot finish.
func continuePending(s *scope, h health, p *quorumv1alpha1.MembershipChange) action {
	switch p.Type {
	case quorumv1alpha1.ChangeAddMember:
		return continueAdd(s, h, p)
	case quorumv1alpha1.ChangeRemoveMember:
		return continueRemove(s, p)
	case quorumv1alpha1.ChangeRestartMember:
		return continueRestart(s, p)
	case quorumv1alpha1.ChangeForceNewCluster:
		return action{kind: actForceNewCluster, member: p.Member, zone: p.Zone, reason: p.Reason}
	case quorumv1alpha1.ChangeRestoreFromBackup:
		return action{kind: actResetForRestore, reason: p.Reason}
	}
	return action{kind: actWait, reason: "UnknownChange", message: fmt.Sprintf("unknown recorded change %q", p.Type)}
}

// continueAdd starts, promotes and finishes an added member; a learner not
// promoted within startTimeout is removed, so that repairs never stall
// behind a member that cannot start.
func continueAdd(s *scope, h health, p *quorumv1alpha1.MembershipChange) action {
	m := s.members[p.Member]
	first := p.Reason == "Bootstrap" || p.Reason == "Restore"
	if first && !s.listed {
		if m == nil || m.Pod == nil {
			return action{kind: actStartMember, member: p.Member, zone: p.Zone, reason: p.Reason}
		}
		return action{kind: actWait, reason: "Bootstrapping", message: fmt.Sprintf("waiting for the first member %s to start", p.Member)}
	}
	if !s.listed || !s.access.ok() {
		return action{kind: actWait, reason: "EtcdUnreachable", message: unreachableMessage(s)}
	}
	if m == nil || !m.InEtcd {
		switch {
		case first:
			return action{kind: actWait, reason: "Bootstrapping", message: fmt.Sprintf("waiting for the first member %s to start", p.Member)}
		case !s.linearizable:
			return action{kind: actWait, reason: "MembershipUnconfirmed", message: fmt.Sprintf("the add of %s waits until the membership is read through the leader", p.Member)}
		case len(h.failed) > 0 && p.Reason != "Replace":
			// etcd refuses to add a member while a voter is down: an add
			// not made yet gives way to the repair.
			return action{kind: actCancelChange, member: p.Member, reason: "RepairFirst", message: fmt.Sprintf(
				"dropping the add of %s (%s), which etcd has not made: failed members are repaired first", p.Member, p.Reason)}
		case s.now.Sub(p.StartedAt.Time) >= startTimeout(s.cluster):
			return action{kind: actCancelChange, member: p.Member, reason: "MemberStartTimedOut", message: fmt.Sprintf(
				"etcd did not add %s within %s: dropping the change so that other repairs go on", p.Member, startTimeout(s.cluster))}
		}
		return action{kind: actAddLearner, member: p.Member, zone: p.Zone, reason: p.Reason, message: fmt.Sprintf("adding %s as a learner in zone %s", p.Member, zoneName(p.Zone))}
	}
	if m.Learner && !first && s.now.Sub(p.StartedAt.Time) >= startTimeout(s.cluster) {
		return action{kind: actAbandonAdd, member: p.Member, zone: p.Zone, reason: "MemberStartTimedOut", message: fmt.Sprintf(
			"learner %s was not promoted within %s (%s): removing it so that other repairs go on", p.Member, startTimeout(s.cluster), learnerTrouble(m))}
	}
	if m.Pod == nil || (m.PVC == nil && s.cluster.Spec.Storage.EmptyDir == nil) {
		return action{kind: actStartMember, member: p.Member, zone: p.Zone, reason: p.Reason}
	}
	if m.Learner {
		return action{kind: actPromote, member: p.Member, message: fmt.Sprintf("promoting learner %s", p.Member)}
	}
	return action{kind: actFinishAdd, member: p.Member, zone: p.Zone, reason: p.Reason}
}

// learnerTrouble says why a learner may not have come up.
func learnerTrouble(m *memberState) string {
	switch {
	case m.Pod == nil:
		return "it has no pod"
	case m.Pod.Spec.NodeName == "":
		return "its pod was never scheduled"
	case m.Status == nil:
		return "it never answered"
	}
	return "it did not catch up with the leader"
}

// continueRemove carries a recorded removal on, re-checking its evidence:
// the membership read through the leader, the quorum projection, and
// leadership moved off the member first. A removal the projection no
// longer allows is dropped (the member is still there: nothing happened).
func continueRemove(s *scope, p *quorumv1alpha1.MembershipChange) action {
	m := s.members[p.Member]
	switch {
	case !s.access.ok() || !s.listed:
		return action{kind: actWait, reason: "EtcdUnreachable", message: unreachableMessage(s)}
	case !s.linearizable:
		return action{kind: actWait, reason: "MembershipUnconfirmed", message: fmt.Sprintf("the removal of %s waits until the membership is read through the leader", p.Member)}
	case m == nil || !m.InEtcd:
		return action{kind: actCleanupMember, member: p.Member, zone: p.Zone, reason: p.Reason}
	}
	a := removal(s, m, p.Reason, fmt.Sprintf("removing member %s (%s)", m.Name, p.Reason))
	if a.kind == actWait && a.reason == "QuorumAtRisk" {
		return action{kind: actCancelChange, member: p.Member, reason: "QuorumAtRisk", message: "dropping the recorded removal: " + a.message}
	}
	return a
}

// continueRestart restarts a member at the recorded version and waits for
// it to be healthy; one not healthy within startTimeout is rolled back to
// the version it ran (an upgrade that failed), or left to the failure
// policy.
func continueRestart(s *scope, p *quorumv1alpha1.MembershipChange) action {
	m := s.members[p.Member]
	version := p.Version
	if version == "" {
		version = knownVersion(s)
	}
	timedOut := s.now.Sub(p.StartedAt.Time) >= startTimeout(s.cluster) && (m == nil || !m.Healthy)
	switch {
	case timedOut && p.FromVersion != "" && p.FromVersion != version:
		return action{kind: actRollback, member: p.Member, zone: p.Zone, version: p.FromVersion, reason: "UpgradeFailed", message: fmt.Sprintf(
			"member %s did not become healthy at %s within %s: rolling it back to %s", p.Member, version, startTimeout(s.cluster), p.FromVersion)}
	case timedOut:
		return action{kind: actCancelChange, member: p.Member, reason: "RestartTimedOut", message: fmt.Sprintf(
			"member %s did not become healthy within %s of its restart; the failure policy takes over", p.Member, startTimeout(s.cluster))}
	}
	return action{kind: actRestartMember, member: p.Member, zone: p.Zone, reason: p.Reason, version: version}
}

func anyMemberObjects(s *scope) bool {
	for _, m := range s.members {
		if m.Pod != nil || m.PVC != nil {
			return true
		}
	}
	return false
}

// knownVersion is the version the cluster is known to run: the oldest
// version a voter's pod runs, else what the status last recorded, else
// (a new cluster) spec.version. New and recreated pods get it, never a
// spec.version no member has run yet.
func knownVersion(s *scope) string {
	if v := lowestVersion(s); v != "" {
		return v
	}
	if s.cluster.Status.Version != "" {
		return s.cluster.Status.Version
	}
	return s.cluster.Spec.Version
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
	switch {
	case !s.access.ok():
		return s.access.message
	case s.listErr != nil:
		return "no member answers: " + s.listErr.Error()
	}
	return "no member has a running pod"
}

// quorumLostMessage lists the voters that are not healthy, and why.
func quorumLostMessage(s *scope, h health) string {
	var lost []string
	for _, m := range s.voters() {
		if !m.Healthy {
			lost = append(lost, fmt.Sprintf("%s (%s)", m.Name, assessReason(s, m)))
		}
	}
	sort.Strings(lost)
	return fmt.Sprintf("%d of %d voters are healthy, quorum needs %d; not healthy: %s", h.healthyVoters, h.voters, etcd.Quorum(h.voters), strings.Join(lost, ", "))
}

func assessReason(s *scope, m *memberState) string {
	if r := failureReason(s.cluster, m, time.Time{}, s.now); r != "" {
		return r
	}
	if !m.NodeReady {
		return fmt.Sprintf("its node %s is NotReady", m.NodeName)
	}
	return memberTrouble(m)
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

// quorumLostAt is when the evidence of the quorum loss started: the
// transition of QuorumLost to Unknown (suspected), unhealthyAfter before
// it was counted lost.
func quorumLostAt(c *quorumv1alpha1.EtcdCluster) time.Time {
	cond := meta.FindStatusCondition(c.Status.Conditions, quorumv1alpha1.ConditionQuorumLost)
	switch {
	case cond == nil:
		return time.Time{}
	case cond.Status == metav1.ConditionTrue:
		return cond.LastTransitionTime.Add(-unhealthyAfter(c))
	}
	return cond.LastTransitionTime.Time
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
	if f := s.cluster.Status.FailedUpgrade; f != nil && f.Version == target && f.Generation == s.cluster.Generation {
		return action{kind: actWait, reason: "UpgradeFailed", message: f.Message + "; change the spec to try again"}, true
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
	next := restartOrder(s, stale)[0]
	return restart(s, next, target, "Upgrade", fmt.Sprintf("to upgrade it from %s to %s", next.PodVersion, target)), true
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
