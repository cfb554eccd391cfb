package etcdcluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
	"quorum.dev/quorum/internal/schedule"
	"quorum.dev/quorum/internal/version"
)

// writeStatus computes the status from this pass's observation and the
// action taken, and writes it only when it differs from what is stored: a
// reconcile of a healthy cluster writes nothing.
//
// persisted is the status as last read or written; c.Status may carry this
// pass's changes to the pending change and cluster ID on top of it.
func (r *Reconciler) writeStatus(ctx context.Context, c *quorumv1alpha1.EtcdCluster, persisted *quorumv1alpha1.EtcdClusterStatus, s *scope, a action) error {
	desired := computeStatus(c, s, a, r.Clock())
	updateMetrics(c, desired)
	return reconciler.WriteStatus(ctx, r, c, persisted, desired, func(st quorumv1alpha1.EtcdClusterStatus) { c.Status = st })
}

// computeStatus is the status of c as s observed it, after action a.
//
// What the operator could not see is never reported as a fact about etcd:
// while its own access fails (EtcdUnreachable=True) the members' health,
// readyReplicas and Degraded keep their last observed values, QuorumLost
// and Available are Unknown.
func computeStatus(c *quorumv1alpha1.EtcdCluster, s *scope, a action, now time.Time) quorumv1alpha1.EtcdClusterStatus {
	prev := c.Status
	st := quorumv1alpha1.EtcdClusterStatus{
		ObservedGeneration: c.Generation,
		Replicas:           prev.Replicas,
		ReadyReplicas:      prev.ReadyReplicas,
		Leader:             prev.Leader,
		ClusterID:          prev.ClusterID,
		Members:            prev.Members,
		Alarms:             prev.Alarms,
		Conditions:         append([]metav1.Condition(nil), prev.Conditions...),
		Selector:           resources.Selector(c.Name),
		Version:            prev.Version,
		PendingChange:      prev.PendingChange,
		Restore:            prev.Restore,
		Recovery:           prev.Recovery,
		FailedUpgrade:      prev.FailedUpgrade,
		CARotation:         prev.CARotation,
		LastCompaction:     prev.LastCompaction,
		LastDefrag:         prev.LastDefrag,
		ScheduledDefrag:    nextScheduledDefrag(c, now),
		RequestedDefrag:    prev.RequestedDefrag,
	}
	set := func(t string, status metav1.ConditionStatus, reason, msg string) {
		reconciler.SetConditionAt(&st.Conditions, c.Generation, t, status, reason, msg, now)
	}
	if s == nil {
		// Bad input: nothing could be made; a person must fix the spec.
		set(quorumv1alpha1.ConditionProgressing, metav1.ConditionFalse, a.reason, a.message)
		reconciler.SetReadiness(&st.Conditions, c.Generation, reconciler.Readiness{Stalled: true, Reason: a.reason, Message: a.message})
		return st
	}
	h := assess(s)
	seen := s.access.ok()
	if seen && (s.listed || h.voters > 0) {
		st.Replicas = int32(h.voters)
		st.ReadyReplicas = int32(h.healthyVoters)
		st.Leader = ""
		for _, m := range s.members {
			if m.Leader {
				st.Leader = m.Name
			}
		}
	}
	st.Members = memberStatuses(c, s, prev.Members, now)
	if v := lowestVersion(s); v != "" {
		st.Version = v
	}
	if f := st.FailedUpgrade; f != nil && (c.Spec.Version != f.Version || c.Generation != f.Generation) {
		// A new spec tries again; the record goes with the spec that asked.
		st.FailedUpgrade = nil
	}

	// EtcdUnreachable: the operator's own trouble, told apart from etcd's.
	if seen {
		set(quorumv1alpha1.ConditionEtcdUnreachable, metav1.ConditionFalse, "Reachable", "the operator reaches the members with its client certificate")
	} else {
		set(quorumv1alpha1.ConditionEtcdUnreachable, metav1.ConditionTrue, s.access.reason,
			s.access.message+"; nothing is removed or rebuilt until the operator sees etcd again")
	}

	// QuorumLost, from the evidence only.
	switch h.quorum {
	case quorumOK:
		set(quorumv1alpha1.ConditionQuorumLost, metav1.ConditionFalse, "QuorumHealthy", fmt.Sprintf("%d of %d voters are healthy", h.healthyVoters, h.voters))
	case quorumUnjudged:
		set(quorumv1alpha1.ConditionQuorumLost, metav1.ConditionUnknown, "EtcdUnreachable", "the operator cannot see etcd: "+s.access.message)
	case quorumSuspect:
		msg := fmt.Sprintf("%s; counted lost if this lasts %s", lostMessage(s, h), unhealthyAfter(c))
		if cond := meta.FindStatusCondition(st.Conditions, quorumv1alpha1.ConditionQuorumLost); cond == nil ||
			cond.Status != metav1.ConditionUnknown || cond.Reason != reasonQuorumLossSuspected {
			// The transition time is when the evidence started, whatever
			// the condition said before.
			meta.RemoveStatusCondition(&st.Conditions, quorumv1alpha1.ConditionQuorumLost)
		}
		set(quorumv1alpha1.ConditionQuorumLost, metav1.ConditionUnknown, reasonQuorumLossSuspected, msg)
	case quorumCountedLost:
		msg := lostMessage(s, h)
		if c.Spec.QuorumLossPolicy == quorumv1alpha1.QuorumLossWait || c.Spec.QuorumLossPolicy == "" {
			msg += "; quorumLossPolicy Wait: nothing is removed, members rejoin when they come back"
		}
		set(quorumv1alpha1.ConditionQuorumLost, metav1.ConditionTrue, "QuorumLost", msg)
	}

	switch {
	case !seen:
		set(quorumv1alpha1.ConditionAvailable, metav1.ConditionUnknown, "EtcdUnreachable", "the operator cannot see etcd: "+s.access.message)
	case h.canServe():
		set(quorumv1alpha1.ConditionAvailable, metav1.ConditionTrue, "QuorumHealthy", fmt.Sprintf("%d of %d voters are healthy; quorum is %d", h.healthyVoters, h.voters, etcd.Quorum(h.voters)))
	case h.voters == 0:
		set(quorumv1alpha1.ConditionAvailable, metav1.ConditionFalse, "Bootstrapping", "the first member is starting")
	case h.quorum == quorumCountedLost || h.quorum == quorumSuspect:
		set(quorumv1alpha1.ConditionAvailable, metav1.ConditionFalse, "QuorumLost", "the cluster has no quorum and serves no writes")
	default:
		set(quorumv1alpha1.ConditionAvailable, metav1.ConditionFalse, "NoLeader", quorumLostMessage(s, h))
	}

	switch {
	case a.reason == "QuorumAtRisk":
		set(quorumv1alpha1.ConditionQuorumAtRisk, metav1.ConditionTrue, "ActionWouldLoseQuorum", a.message)
	case !seen:
		set(quorumv1alpha1.ConditionQuorumAtRisk, metav1.ConditionUnknown, "EtcdUnreachable", "the operator cannot see etcd")
	case h.quorum == quorumCountedLost || h.quorum == quorumSuspect:
		set(quorumv1alpha1.ConditionQuorumAtRisk, metav1.ConditionTrue, "QuorumLost", "quorum is lost or suspected lost")
	case h.voters > 1 && h.healthyVoters == etcd.Quorum(h.voters):
		msg := fmt.Sprintf("%d of %d voters are healthy: one more failure loses quorum", h.healthyVoters, h.voters)
		if len(h.unhealthy) > 0 {
			msg += " (unhealthy: " + strings.Join(h.unhealthy, ", ") + ")"
		}
		set(quorumv1alpha1.ConditionQuorumAtRisk, metav1.ConditionTrue, "OneFailureFromQuorumLoss", msg)
	case h.voters == 1:
		set(quorumv1alpha1.ConditionQuorumAtRisk, metav1.ConditionTrue, "SingleMember", "a 1-member cluster tolerates no failure")
	default:
		set(quorumv1alpha1.ConditionQuorumAtRisk, metav1.ConditionFalse, "QuorumSafe", "the cluster tolerates the failure of a member")
	}

	switch {
	case !seen:
		// What the operator cannot see, it does not report as failed.
	case len(h.failed) > 0 || len(h.unhealthy) > 0:
		var parts []string
		for _, name := range h.unhealthy {
			if why, ok := h.failed[name]; ok {
				parts = append(parts, fmt.Sprintf("%s: %s", name, why))
			} else {
				parts = append(parts, fmt.Sprintf("%s: %s", name, assessReason(s, s.members[name])))
			}
		}
		for name, why := range h.failed {
			if !slices.Contains(h.unhealthy, name) {
				parts = append(parts, fmt.Sprintf("%s: %s", name, why))
			}
		}
		sort.Strings(parts)
		set(quorumv1alpha1.ConditionDegraded, metav1.ConditionTrue, "MembersUnhealthy", strings.Join(parts, "; "))
	default:
		set(quorumv1alpha1.ConditionDegraded, metav1.ConditionFalse, "AllMembersHealthy", fmt.Sprintf("all %d voters are healthy", h.voters))
	}

	alarmStatus(s, a, &st, set)
	certificateStatus(c, s, a, &st, set, now)
	st.CARotation = rotationStatus(prev.CARotation, s.certs, a)

	switch {
	case a.reason == reconciler.ReasonPaused:
		msg := a.message
		if p := st.PendingChange; p != nil {
			msg += "; in flight: " + pendingMessage(p)
		}
		set(quorumv1alpha1.ConditionProgressing, metav1.ConditionFalse, reconciler.ReasonPaused, msg)
	case st.PendingChange != nil:
		p := st.PendingChange
		set(quorumv1alpha1.ConditionProgressing, metav1.ConditionTrue, p.Reason, pendingMessage(p))
	case a.kind == actWait && a.reason == reasonRotatingCA:
		// A rotation waiting on its holders is under way.
		set(quorumv1alpha1.ConditionProgressing, metav1.ConditionTrue, a.reason, a.message)
	case a.kind == actWait:
		set(quorumv1alpha1.ConditionProgressing, metav1.ConditionFalse, a.reason, a.message)
	case a.kind != actNone && a.kind != actLabelVoter:
		reason := a.reason
		if reason == "" {
			reason = string(a.kind)
		}
		set(quorumv1alpha1.ConditionProgressing, metav1.ConditionTrue, reason, a.message)
	case st.FailedUpgrade != nil:
		set(quorumv1alpha1.ConditionProgressing, metav1.ConditionFalse, "UpgradeRolledBack", st.FailedUpgrade.Message)
	default:
		set(quorumv1alpha1.ConditionProgressing, metav1.ConditionFalse, "AsDesired",
			fmt.Sprintf("%d voters at version %s, as asked", h.voters, c.Spec.Version))
	}
	reconciler.SetReadiness(&st.Conditions, c.Generation, readiness(c, &st))
	return st
}

// stalledReasons are the reasons of a cluster that cannot become what its
// spec asks without a person.
var stalledReasons = map[string]bool{
	"UpgradeRefused": true, "VersionUnavailable": true, "UpgradeFailed": true, "UpgradeRolledBack": true, "AutoReplaceOff": true,
	"BackupNotFound": true, "VerificationFailed": true, "SnapshotNotFound": true, "NoSnapshot": true,
	"ClientCredentialsInvalid": true, "ClientCredentialsRejected": true, "OperatorNetwork": true,
	"VolumeExpansionUnsupported": true,
}

// housekeepingReasons are the reasons of work a healthy cluster does
// without ceasing to be what its spec asks.
var housekeepingReasons = map[string]bool{reasonScheduledDefrag: true, reasonFragmented: true, reasonRequestedDefrag: true}

// nextScheduledDefrag is status.scheduledDefrag with when the next run is
// due; nil without a defragmentation schedule.
func nextScheduledDefrag(c *quorumv1alpha1.EtcdCluster, now time.Time) *quorumv1alpha1.ScheduledDefragStatus {
	p := c.Spec.Maintenance.Defrag
	if p == nil || p.Schedule == "" {
		return nil
	}
	st := c.Status.ScheduledDefrag.DeepCopy()
	if st == nil {
		st = &quorumv1alpha1.ScheduledDefragStatus{}
	}
	st.NextScheduleTime = nil
	if sched, loc, err := schedule.Parse(p.Schedule, ptr.Deref(p.TimeZone, "")); err == nil {
		next := metav1.NewTime(sched.Next(now.In(loc)).UTC())
		st.NextScheduleTime = &next
	}
	return st
}

// readiness is the cluster's Ready, from the conditions just computed: True
// when it serves with every member healthy, as many voters as asked at the
// version asked, nothing in flight; otherwise stalled when a person must
// act, else reconciling.
func readiness(c *quorumv1alpha1.EtcdCluster, st *quorumv1alpha1.EtcdClusterStatus) reconciler.Readiness {
	cond := func(t string) metav1.Condition { return reconciler.Condition(st.Conditions, t) }
	prog, avail, degraded, alarm := cond(quorumv1alpha1.ConditionProgressing), cond(quorumv1alpha1.ConditionAvailable), cond(quorumv1alpha1.ConditionDegraded), cond(quorumv1alpha1.ConditionAlarmActive)
	unreachable := cond(quorumv1alpha1.ConditionEtcdUnreachable)
	asked := int(st.Replicas) == desiredReplicas(c) && st.Version == c.Spec.Version && st.PendingChange == nil
	healthy := avail.Status == metav1.ConditionTrue && degraded.Status == metav1.ConditionFalse && alarm.Status != metav1.ConditionTrue
	switch {
	case unreachable.Status == metav1.ConditionTrue:
		return reconciler.Readiness{Stalled: stalledReasons[unreachable.Reason], Reason: unreachable.Reason, Message: unreachable.Message}
	case alarm.Status == metav1.ConditionTrue && (prog.Status == metav1.ConditionTrue || alarm.Reason == "NoSpaceRecovery"):
		// The operator is recovering from NOSPACE.
		return reconciler.Readiness{Reason: "NoSpaceRecovery", Message: alarm.Message}
	case alarm.Status == metav1.ConditionTrue:
		return reconciler.Readiness{Stalled: true, Reason: "AlarmActive", Message: alarm.Message}
	case prog.Reason == reconciler.ReasonPaused:
		if healthy && asked {
			return reconciler.Readiness{Ready: true, Reason: reconciler.ReasonPaused, Message: "healthy and as asked; paused"}
		}
		return reconciler.Readiness{Stalled: true, Reason: reconciler.ReasonPaused, Message: prog.Message}
	case stalledReasons[prog.Reason]:
		return reconciler.Readiness{Stalled: true, Reason: prog.Reason, Message: prog.Message}
	case healthy && asked && (prog.Status == metav1.ConditionFalse || housekeepingReasons[prog.Reason]):
		// Housekeeping on a healthy cluster that is as asked leaves it
		// ready: Progressing says what is being done.
		return reconciler.Readiness{Ready: true, Reason: "Ready", Message: avail.Message}
	case prog.Status == metav1.ConditionTrue || !asked:
		return reconciler.Readiness{Reason: prog.Reason, Message: prog.Message}
	case !healthy && degraded.Status == metav1.ConditionTrue:
		return reconciler.Readiness{Reason: degraded.Reason, Message: degraded.Message}
	}
	return reconciler.Readiness{Reason: avail.Reason, Message: avail.Message}
}

// alarmStatus reports etcd's alarms by member name. An alarm is a fact
// about the data, not about a member's health: it never fails a member or
// counts toward a loss of quorum. Alarms not read this pass keep their last
// report.
func alarmStatus(s *scope, a action, st *quorumv1alpha1.EtcdClusterStatus, set func(string, metav1.ConditionStatus, string, string)) {
	if !s.alarmsKnown {
		if meta.FindStatusCondition(st.Conditions, quorumv1alpha1.ConditionAlarmActive) == nil {
			set(quorumv1alpha1.ConditionAlarmActive, metav1.ConditionUnknown, "AlarmsUnread", "the alarms could not be read through the leader")
		}
		return
	}
	names := map[uint64]string{}
	for _, m := range s.members {
		if m.InEtcd {
			names[m.ID] = m.Name
		}
	}
	st.Alarms = nil
	var parts []string
	for _, al := range s.alarms {
		name := names[al.MemberID]
		if name == "" {
			name = etcd.FormatID(al.MemberID)
		}
		st.Alarms = append(st.Alarms, quorumv1alpha1.AlarmStatus{Member: name, Alarm: al.Type})
		parts = append(parts, fmt.Sprintf("%s on %s", al.Type, name))
	}
	sort.Slice(st.Alarms, func(i, j int) bool {
		if st.Alarms[i].Member != st.Alarms[j].Member {
			return st.Alarms[i].Member < st.Alarms[j].Member
		}
		return st.Alarms[i].Alarm < st.Alarms[j].Alarm
	})
	sort.Strings(parts)
	if len(parts) == 0 {
		set(quorumv1alpha1.ConditionAlarmActive, metav1.ConditionFalse, "NoAlarm", "etcd reports no alarm")
		return
	}
	msg := "etcd reports " + strings.Join(parts, ", ") +
		": NOSPACE refuses writes until the operator has compacted, defragmented and disarmed it; CORRUPT needs a person. No member is replaced for an alarm"
	reason := "Alarm"
	switch a.reason {
	case "NoSpaceLiveData":
		reason, msg = "NoSpaceLiveData", msg+"; "+a.message
	case "NoSpaceRecovery":
		reason, msg = "NoSpaceRecovery", msg+"; "+a.message
	}
	set(quorumv1alpha1.ConditionAlarmActive, metav1.ConditionTrue, reason, msg)
}

// certificateStatus lists the certificates the operator issued with their
// expiry, and says in CertificatesExpiring which are inside their renewal
// window and why they are not renewed yet.
func certificateStatus(c *quorumv1alpha1.EtcdCluster, s *scope, a action, st *quorumv1alpha1.EtcdClusterStatus, set func(string, metav1.ConditionStatus, string, string), now time.Time) {
	o := s.certs
	if o == nil {
		return
	}
	st.Certificates = []quorumv1alpha1.CertificateStatus{{Name: "ca", NotAfter: metav1.NewTime(o.ca.NotAfter)}}
	if o.next != nil {
		st.Certificates = append(st.Certificates, quorumv1alpha1.CertificateStatus{Name: "ca-next", NotAfter: metav1.NewTime(o.next.NotAfter)})
	}
	if o.client.ok {
		st.Certificates = append(st.Certificates, quorumv1alpha1.CertificateStatus{Name: "client", NotAfter: metav1.NewTime(o.client.notAfter)})
	}
	var expiring []string
	if o.client.ok && o.client.notAfter.Sub(now) < renewBefore(c) {
		expiring = append(expiring, "client")
	}
	for _, name := range slices.Sorted(maps.Keys(o.members)) {
		ci := o.members[name]
		if !ci.ok {
			expiring = append(expiring, name+" (unreadable)")
			continue
		}
		st.Certificates = append(st.Certificates, quorumv1alpha1.CertificateStatus{Name: name, NotAfter: metav1.NewTime(ci.notAfter)})
		if ci.notAfter.Sub(now) < renewBefore(c) {
			expiring = append(expiring, fmt.Sprintf("%s (expires %s)", name, ci.notAfter.UTC().Format(time.RFC3339)))
		}
	}
	expiries := map[string]series{}
	for _, cs := range st.Certificates {
		expiries[cs.Name] = series{labels: []string{cs.Name}, value: float64(cs.NotAfter.Unix())}
	}
	setSeries(certificateExpiry, c.Namespace, c.Name, expiries)
	caSoon := o.ca.NotAfter.Sub(now) < certValidity(c)
	switch {
	case len(expiring) > 0:
		msg := "inside certificateRenewBefore (" + renewBefore(c).String() + "): " + strings.Join(expiring, ", ")
		switch {
		case caSoon:
			msg += fmt.Sprintf("; the CA expires %s, and no certificate can outlive it: rotate the CA", o.ca.NotAfter.UTC().Format(time.RFC3339))
		case a.reason == "CertificateRenewalWaiting" || a.reason == reconciler.ReasonPaused:
			msg += "; " + a.message
		default:
			msg += "; being renewed"
		}
		set(quorumv1alpha1.ConditionCertificatesExpiring, metav1.ConditionTrue, "RenewalPending", msg)
	case caSoon:
		set(quorumv1alpha1.ConditionCertificatesExpiring, metav1.ConditionTrue, "CAExpiring", fmt.Sprintf(
			"the CA expires %s, within certificateValidity: certificates issued now expire with it; rotate the CA", o.ca.NotAfter.UTC().Format(time.RFC3339)))
	default:
		set(quorumv1alpha1.ConditionCertificatesExpiring, metav1.ConditionFalse, "CertificatesValid",
			"every certificate is valid beyond certificateRenewBefore ("+renewBefore(c).String()+")")
	}
}

// lostMessage says what the evidence of a loss of quorum is.
func lostMessage(s *scope, h health) string {
	if !s.listed {
		return unreachableMessage(s) + "; " + quorumLostMessage(s, h)
	}
	return quorumLostMessage(s, h)
}

func pendingMessage(p *quorumv1alpha1.MembershipChange) string {
	switch p.Type {
	case quorumv1alpha1.ChangeAddMember:
		return fmt.Sprintf("adding member %s in zone %s (%s)", p.Member, zoneName(p.Zone), p.Reason)
	case quorumv1alpha1.ChangeRemoveMember:
		return fmt.Sprintf("removing member %s from zone %s (%s)", p.Member, zoneName(p.Zone), p.Reason)
	case quorumv1alpha1.ChangeRestartMember:
		return fmt.Sprintf("restarting member %s (%s)", p.Member, p.Reason)
	default:
		return fmt.Sprintf("restarting the cluster from member %s (%s)", p.Member, p.Reason)
	}
}

// memberStatuses lists the members etcd knows, and members with objects
// that it does not, keeping each entry's since unless its role or health
// changed.
func memberStatuses(c *quorumv1alpha1.EtcdCluster, s *scope, prev []quorumv1alpha1.MemberStatus, now time.Time) []quorumv1alpha1.MemberStatus {
	old := map[string]quorumv1alpha1.MemberStatus{}
	for _, m := range prev {
		old[m.Name] = m
	}
	var out []quorumv1alpha1.MemberStatus
	for _, m := range s.sortedMembers() {
		if !m.InEtcd && m.Pod == nil {
			continue
		}
		ms := quorumv1alpha1.MemberStatus{
			Name:      m.Name,
			Zone:      m.Zone,
			PeerURL:   resources.PeerURL(m.Name, c.Name, c.Namespace),
			ClientURL: resources.ClientURL(m.Name, c.Name, c.Namespace),
			Healthy:   m.Healthy,
			Version:   m.Version,
		}
		if m.InEtcd {
			ms.ID = etcd.FormatID(m.ID)
		}
		switch {
		case m.Learner:
			ms.Role = quorumv1alpha1.RoleLearner
		case m.Leader:
			ms.Role = quorumv1alpha1.RoleLeader
		case m.InEtcd:
			ms.Role = quorumv1alpha1.RoleFollower
		}
		if m.Status != nil {
			ms.DBSizeBytes, ms.DBSizeInUseBytes = m.Status.DBSize, m.Status.DBSizeInUse
		}
		if o, ok := old[m.Name]; ok {
			if !s.access.ok() {
				// Unseen is not unhealthy.
				ms.Healthy = o.Healthy
				if ms.Role == "" || !s.listed {
					ms.Role = o.Role
				}
			}
			if o.Healthy == ms.Healthy && o.Role == ms.Role && o.Since != nil {
				ms.Since = o.Since
			}
			// The database grows with every write: only a real change in
			// size (a tenth, or a MiB) is worth a status write.
			if !significantSizeChange(o.DBSizeBytes, ms.DBSizeBytes) {
				ms.DBSizeBytes = o.DBSizeBytes
			}
			if !significantSizeChange(o.DBSizeInUseBytes, ms.DBSizeInUseBytes) {
				ms.DBSizeInUseBytes = o.DBSizeInUseBytes
			}
			if ms.Version == "" {
				ms.Version = o.Version
			}
		}
		if ms.Since == nil {
			t := metav1.NewTime(now)
			ms.Since = &t
		}
		out = append(out, ms)
	}
	return out
}

func significantSizeChange(old, cur int64) bool {
	if old == 0 {
		// The first figure is always worth writing.
		return cur != 0
	}
	d := cur - old
	if d < 0 {
		d = -d
	}
	threshold := old / 10
	if threshold < 1<<20 {
		threshold = 1 << 20
	}
	return d >= threshold
}

func lowestVersion(s *scope) string {
	var running []string
	for _, m := range s.voters() {
		running = append(running, m.PodVersion)
	}
	return version.Lowest(running...)
}

func updateMetrics(c *quorumv1alpha1.EtcdCluster, st quorumv1alpha1.EtcdClusterStatus) {
	counts := map[quorumv1alpha1.MemberRole]float64{}
	healthy := 0.0
	for _, m := range st.Members {
		counts[m.Role]++
		if m.Healthy {
			healthy++
		}
	}
	for _, role := range []quorumv1alpha1.MemberRole{quorumv1alpha1.RoleLeader, quorumv1alpha1.RoleFollower, quorumv1alpha1.RoleLearner} {
		membersByRole.WithLabelValues(c.Namespace, c.Name, string(role)).Set(counts[role])
	}
	healthyMembers.WithLabelValues(c.Namespace, c.Name).Set(healthy)
	sizes, inUse, alarms := map[string]series{}, map[string]series{}, map[string]series{}
	for _, m := range st.Members {
		if m.DBSizeBytes > 0 {
			sizes[m.Name] = series{labels: []string{m.Name}, value: float64(m.DBSizeBytes)}
			inUse[m.Name] = series{labels: []string{m.Name}, value: float64(m.DBSizeInUseBytes)}
		}
	}
	for _, a := range st.Alarms {
		alarms[a.Member+"/"+a.Alarm] = series{labels: []string{a.Member, a.Alarm}, value: 1}
	}
	setSeries(dbSizeGauge, c.Namespace, c.Name, sizes)
	setSeries(dbSizeInUse, c.Namespace, c.Name, inUse)
	setSeries(alarmGauge, c.Namespace, c.Name, alarms)
	quotaGauge.WithLabelValues(c.Namespace, c.Name).Set(float64(quotaBytes(c)))
	quorumAtRisk.WithLabelValues(c.Namespace, c.Name).Set(reconciler.BoolGauge(meta.IsStatusConditionTrue(st.Conditions, quorumv1alpha1.ConditionQuorumAtRisk)))
	quorumLostGauge.WithLabelValues(c.Namespace, c.Name).Set(reconciler.BoolGauge(meta.IsStatusConditionTrue(st.Conditions, quorumv1alpha1.ConditionQuorumLost)))
}
