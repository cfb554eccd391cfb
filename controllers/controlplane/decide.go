package controlplane

import (
	"fmt"
	"time"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/placement"
)

// actionKind is the one change a control-plane reconcile makes.
type actionKind string

const (
	actNone   actionKind = "None"
	actWait   actionKind = "Wait"
	actCreate actionKind = "CreateReplica"
	actDelete actionKind = "DeleteReplica"
)

// Reasons of control-plane actions, used in events and conditions.
const (
	reasonScaleUp    = "ScaleUp"
	reasonScaleDown  = "ScaleDown"
	reasonUpgrade    = "Upgrade"
	reasonRoll       = "Roll"
	reasonReplace    = "Replace"
	reasonBootstrap  = "Bootstrap"
	reasonWaitEtcd   = "WaitingForEtcd"
	reasonWaitReady  = "WaitingForReplicas"
	reasonWaitEtcdOp = "WaitingForEtcdCluster"
	// reasonHostedPending: the apiservers answer but the hosted cluster's
	// own objects (the admin credential's binding, what kubeadm join
	// reads, the add-ons) are not made yet.
	reasonHostedPending = "WaitingForHostedObjects"
	// reasonRemediationLimit: failurePolicy.maxRetries replacements failed
	// again soon; nothing more is replaced until a person looks.
	reasonRemediationLimit = "RemediationLimitReached"
)

type action struct {
	kind    actionKind
	replica string
	zone    string
	reason  string
	// force deletes a pod on a NotReady node without waiting for its kubelet.
	force   bool
	message string
}

func desiredReplicas(cp *quorumv1alpha1.ControlPlane) int { return cp.Spec.DesiredReplicas() }

func unhealthyAfter(cp *quorumv1alpha1.ControlPlane) time.Duration {
	return cp.Spec.FailurePolicy.UnhealthyAfterOrDefault()
}

func autoReplace(cp *quorumv1alpha1.ControlPlane) bool { return cp.Spec.FailurePolicy.Replaces() }

// startTimeout is how long a new replica may take to become ready before
// it counts as unready at all: a new apiserver needs time to start.
func startTimeout(cp *quorumv1alpha1.ControlPlane) time.Duration {
	return cp.Spec.FailurePolicy.StartTimeoutOrDefault()
}

func maxRetries(cp *quorumv1alpha1.ControlPlane) int32 {
	if n := cp.Spec.FailurePolicy.MaxRetries; n != nil {
		return *n
	}
	return 3
}

func retryPeriod(cp *quorumv1alpha1.ControlPlane) time.Duration {
	if d := cp.Spec.FailurePolicy.RetryPeriod; d != nil {
		return d.Duration
	}
	return 30 * time.Second
}

func minHealthyPeriod(cp *quorumv1alpha1.ControlPlane) time.Duration {
	if d := cp.Spec.FailurePolicy.MinHealthyPeriod; d != nil && d.Duration > 0 {
		return d.Duration
	}
	return time.Hour
}

// replicaFailure says why a replica is failed, or "" when it is not: its
// pod failed, its node is NotReady, or its apiserver has not been ready for
// unhealthyAfter (a replica younger than startTimeout is still starting).
func replicaFailure(cp *quorumv1alpha1.ControlPlane, r *replicaState, now time.Time) string {
	switch {
	case r.Terminating:
		return ""
	case r.Failed:
		return "its pod failed"
	case !r.NodeReady:
		return "its node is NotReady"
	case r.Ready:
		return ""
	case now.Sub(r.Created) < startTimeout(cp):
		return ""
	case now.Sub(r.UnreadySince) >= unhealthyAfter(cp):
		return fmt.Sprintf("its apiserver has not been ready for %s", now.Sub(r.UnreadySince).Round(time.Second))
	}
	return ""
}

// retryCount is the retry count a remediation now would have: one more
// than the last one's when it came within minHealthyPeriod of it.
func retryCount(cp *quorumv1alpha1.ControlPlane, now time.Time) int32 {
	last := cp.Status.LastRemediation
	if last == nil || now.Sub(last.Time.Time) >= minHealthyPeriod(cp) {
		return 0
	}
	return last.RetryCount + 1
}

func zoneName(z string) string {
	if z == "" {
		return "(any)"
	}
	return z
}

// decide chooses the one change to make: replace a failed replica, add or
// remove one, or roll one onto the current template. The decisions are
// tried in priority order; the first with something to do (or a reason to
// wait) wins.
func decide(s *scope) action {
	steps := []func(*scope) (action, bool){
		decideTerminating, // a replica stuck terminating on a lost node goes at once
		decideEtcdFirst,   // nothing starts before etcd is available
		decideReplace,     // failed replicas, one at a time, zone by zone
		decideScaleUp,     // toward spec.replicas
		decideRoll,        // onto the current template, one surge replica at a time
		decideScaleDown,   // from the fullest zone, lease holders last
		decideCARotation,  // new CAs trusted, issuing, then alone, each phase once every replica runs it
		decideKeyRotation, // a new encryption key added, written with, Secrets rewritten, the old dropped
	}
	if s.stacked {
		// A stacked control plane's replicas are the members of its
		// EtcdCluster: that controller places, scales and replaces them
		// under the quorum rules. What is left here is what etcd cannot
		// see: an apiserver that stays unready, and rolling onto a new
		// template, both by deleting the pod so the EtcdCluster restarts
		// the member from its volume.
		steps = []func(*scope) (action, bool){decideStackedBusy, decideStackedRestart, decideStackedScaling, decideStackedRoll, decideCARotation, decideKeyRotation}
	}
	for _, d := range steps {
		if a, ok := d(s); ok {
			return a
		}
	}
	return action{kind: actNone}
}

// decideTerminating: a replica on a NotReady node never finishes
// terminating: its pod is removed at once, the apiserver holds no state.
// Other terminating replicas are waited for.
func decideTerminating(s *scope) (action, bool) {
	for _, r := range s.replicas {
		if r.Terminating && !r.NodeReady && r.Pod != nil {
			return action{kind: actDelete, replica: r.Name, zone: r.Zone, reason: reasonReplace, force: true, message: fmt.Sprintf("replica %s is terminating on a NotReady node", r.Name)}, true
		}
	}
	if len(s.live()) < len(s.replicas) {
		return action{kind: actWait, reason: reasonWaitReady, message: "waiting for a replica to terminate"}, true
	}
	return action{}, false
}

// decideEtcdFirst: no replica is started until etcd is available.
func decideEtcdFirst(s *scope) (action, bool) {
	if !s.etcd.available && len(s.live()) == 0 {
		return action{kind: actWait, reason: reasonWaitEtcd, message: "no replica is started until etcd is available: " + s.etcd.message}, true
	}
	return action{}, false
}

// decideReplace deletes a failed replica, one at a time, zone by zone; the
// scale-up makes its replacement. Not while etcd is unavailable (no
// apiserver can be ready then: a new one would fail the same way), not
// before the last replacement exists and had retryPeriod, and not beyond
// maxRetries replacements that failed again within minHealthyPeriod.
func decideReplace(s *scope) (action, bool) {
	cp := s.cp
	if !autoReplace(cp) {
		return action{}, false
	}
	var victim *replicaState
	var why string
	for _, r := range s.rollOrder(s.live()) {
		if why = replicaFailure(cp, r, s.now); why != "" {
			victim = r
			break
		}
	}
	if victim == nil {
		return action{}, false
	}
	nodeLost := !victim.NodeReady || victim.Failed
	switch {
	case !s.etcd.available && !nodeLost:
		return action{kind: actWait, reason: reasonWaitEtcd, message: fmt.Sprintf(
			"replica %s is not ready (%s), but etcd is not available: no replacement could be ready either, so none is made: %s", victim.Name, why, s.etcd.message)}, true
	case len(s.live()) < desiredReplicas(cp):
		// The last replacement is not made yet: the scale-up comes first.
		return action{}, false
	}
	for _, r := range s.live() {
		if r != victim && !r.Ready && s.now.Sub(r.Created) < startTimeout(cp) {
			return action{kind: actWait, reason: reasonWaitReady, message: fmt.Sprintf(
				"replica %s is failed (%s); it is replaced once replica %s, still starting, is ready", victim.Name, why, r.Name)}, true
		}
	}
	if a, held := remediationHeld(s, victim, why); held {
		return a, true
	}
	return action{kind: actDelete, replica: victim.Name, zone: victim.Zone, reason: reasonReplace, force: !victim.NodeReady,
		message: fmt.Sprintf("replica %s in zone %s is replaced: %s", victim.Name, zoneName(victim.Zone), why)}, true
}

// remediationHeld says whether the remediation of replica r (failed for
// why) must wait: retryPeriod after the last one, and never beyond
// maxRetries in a row within minHealthyPeriod (Cluster API's limits).
func remediationHeld(s *scope, r *replicaState, why string) (action, bool) {
	cp := s.cp
	if last := cp.Status.LastRemediation; last != nil && s.now.Sub(last.Time.Time) < retryPeriod(cp) {
		return action{kind: actWait, reason: reasonWaitReady, message: fmt.Sprintf(
			"replica %s is failed (%s); the next remediation waits %s after the last one (%s)", r.Name, why, retryPeriod(cp), last.Replica)}, true
	}
	if n := retryCount(cp, s.now); n > maxRetries(cp) {
		return action{kind: actWait, reason: reasonRemediationLimit, message: fmt.Sprintf(
			"replica %s is failed (%s), but %d remediations in a row failed again within %s: remediation stopped at failurePolicy.maxRetries %d; find the cause, then delete the pod or raise the limit",
			r.Name, why, n, minHealthyPeriod(cp), maxRetries(cp))}, true
	}
	return action{}, false
}

// decideScaleUp adds a replica: one at a time once a replica serves, all at
// once at bootstrap.
func decideScaleUp(s *scope) (action, bool) {
	cp, live := s.cp, s.live()
	desired := desiredReplicas(cp)
	if len(live) >= desired {
		return action{}, false
	}
	ready, _ := s.readiness()
	// A failed replica does not hold up its own replacement's sibling:
	// only replicas still starting are waited for.
	starting := 0
	for _, r := range live {
		if !r.Ready && replicaFailure(cp, r, s.now) == "" {
			starting++
		}
	}
	if starting > 0 && ready > 0 {
		return action{kind: actWait, reason: reasonWaitReady, message: fmt.Sprintf("%d replica(s) not ready yet", starting)}, true
	}
	zone, ok := placement.ZoneForNewMember(cp.Spec.Zones, s.readyZones, replicaMembers(live), "")
	if !ok {
		return action{kind: actWait, reason: reasonWaitReady, message: "no Ready zone to place a replica in"}, true
	}
	reason := reasonScaleUp
	if ready == 0 && len(live) == 0 {
		reason = reasonBootstrap
	}
	return action{kind: actCreate, zone: zone, reason: reason, message: fmt.Sprintf("adding a replica in zone %s (%d of %d)", zoneName(zone), len(live)+1, desired)}, true
}

// outdated are the live replicas not at the current template, in roll
// order.
func (s *scope) outdated() []*replicaState {
	var out []*replicaState
	for _, r := range s.live() {
		if r.Hash != s.hash {
			out = append(out, r)
		}
	}
	return s.rollOrder(out)
}

// decideRoll rolls onto the current template: one extra replica at the new
// template, then one old one goes, zone by zone, leaders last, only while
// all are ready.
func decideRoll(s *scope) (action, bool) {
	cp, live := s.cp, s.live()
	desired := desiredReplicas(cp)
	outdated := s.outdated()
	if len(outdated) == 0 || len(live) > desired+1 {
		return action{}, false
	}
	if _, unready := s.readiness(); unready > 0 {
		return action{kind: actWait, reason: reasonWaitReady, message: fmt.Sprintf("rolling waits for all replicas to be ready (%d not ready)", unready)}, true
	}
	next := outdated[0]
	reason := reasonRoll
	if next.Version != s.version {
		reason = reasonUpgrade
	}
	if len(live) == desired {
		zone, ok := placement.ZoneForNewMember(cp.Spec.Zones, s.readyZones, replicaMembers(live), next.Zone)
		if !ok {
			return action{kind: actWait, reason: reasonWaitReady, message: "no Ready zone to place a replica in"}, true
		}
		return action{kind: actCreate, zone: zone, reason: reason, message: fmt.Sprintf("adding a replica at %s in zone %s to replace %s", s.version, zoneName(next.Zone), next.Name)}, true
	}
	return action{kind: actDelete, replica: next.Name, zone: next.Zone, reason: reason, message: fmt.Sprintf("removing replica %s (%s) now that its replacement is ready", next.Name, next.Version)}, true
}

// decideScaleDown removes a replica from the fullest zone; a replica
// holding a lease stays if its zone has another to give.
func decideScaleDown(s *scope) (action, bool) {
	cp, live := s.cp, s.live()
	desired := desiredReplicas(cp)
	if len(live) <= desired {
		return action{}, false
	}
	victim, _ := placement.MemberToRemove(cp.Spec.Zones, replicaMembers(live))
	if s.isLeader(victim.Name) {
		for _, r := range live {
			if r.Zone == victim.Zone && !s.isLeader(r.Name) {
				victim = placement.Member{Name: r.Name, Zone: r.Zone}
				break
			}
		}
	}
	return action{kind: actDelete, replica: victim.Name, zone: victim.Zone, reason: reasonScaleDown, message: fmt.Sprintf("removing replica %s from zone %s (%d to %d)", victim.Name, zoneName(victim.Zone), len(live), desired)}, true
}

// decideStackedBusy: nothing is touched while the EtcdCluster makes a
// change or a replica terminates.
func decideStackedBusy(s *scope) (action, bool) {
	if s.etcd.busy || len(s.live()) < len(s.replicas) {
		return action{kind: actWait, reason: reasonWaitEtcdOp, message: "waiting for the EtcdCluster to finish a change: " + s.etcd.message}, true
	}
	return action{}, false
}

// decideStackedRestart restarts the pod of a replica whose apiserver stays
// unready, keeping its etcd member, one at a time and only while no other
// replica is unready (each pod holds a voter).
func decideStackedRestart(s *scope) (action, bool) {
	if !autoReplace(s.cp) {
		return action{}, false
	}
	_, unready := s.readiness()
	for _, r := range s.rollOrder(s.live()) {
		if why := replicaFailure(s.cp, r, s.now); why != "" && r.NodeReady && !r.Failed {
			if !s.etcd.available {
				return action{kind: actWait, reason: reasonWaitEtcd, message: fmt.Sprintf("replica %s is not ready (%s), but etcd is not available: it is not restarted", r.Name, why)}, true
			}
			if a, held := remediationHeld(s, r, why); held {
				return a, true
			}
			if unready > 1 {
				return action{kind: actWait, reason: reasonWaitReady, message: fmt.Sprintf("replica %s is failed (%s) but %d replicas are not ready: restarting it could cost quorum", r.Name, why, unready)}, true
			}
			return action{kind: actDelete, replica: r.Name, zone: r.Zone, reason: reasonReplace,
				message: fmt.Sprintf("replica %s in zone %s is restarted: %s", r.Name, zoneName(r.Zone), why)}, true
		}
	}
	return action{}, false
}

// decideStackedScaling waits while the EtcdCluster scales.
func decideStackedScaling(s *scope) (action, bool) {
	if n, want := len(s.live()), desiredReplicas(s.cp); n != want {
		return action{kind: actWait, reason: reasonWaitEtcdOp, message: fmt.Sprintf("the EtcdCluster is scaling (%d of %d)", n, want)}, true
	}
	return action{}, false
}

// decideStackedRoll restarts one outdated replica's pod at a time, only
// while all are ready.
func decideStackedRoll(s *scope) (action, bool) {
	outdated := s.outdated()
	if len(outdated) == 0 {
		return action{}, false
	}
	if _, unready := s.readiness(); unready > 0 {
		return action{kind: actWait, reason: reasonWaitReady, message: fmt.Sprintf("rolling waits for all replicas to be ready (%d not ready)", unready)}, true
	}
	r := outdated[0]
	reason := reasonRoll
	if r.Version != s.version {
		reason = reasonUpgrade
	}
	return action{kind: actDelete, replica: r.Name, zone: r.Zone, reason: reason,
		message: fmt.Sprintf("restarting replica %s (%s) at %s, keeping its etcd member", r.Name, r.Version, s.version)}, true
}
