package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/placement"
	"quorum.dev/quorum/internal/resources"
)

// replicaState is one control-plane replica as observed: its pod, its
// node, and whether its apiserver answers /readyz.
type replicaState struct {
	Name    string
	Zone    string
	Version string
	Hash    string
	Pod     *corev1.Pod
	// Ready is the apiserver container's readiness (/readyz).
	Ready bool
	// UnreadySince is when the apiserver last stopped being ready (or the
	// pod was created, if it never was).
	UnreadySince time.Time
	NodeReady    bool
	Terminating  bool
	// Failed is true when the pod itself failed (phase Failed).
	Failed  bool
	Created time.Time
}

// cpEtcd is what the control plane knows of its etcd.
type cpEtcd struct {
	available bool
	reason    string
	message   string
	// busy is true while a stacked control plane's EtcdCluster is making a
	// change or has a member that is not healthy: no replica is touched.
	busy bool
}

// cpScope is one reconcile's observation of a control plane.
type cpScope struct {
	cp      *quorumv1alpha1.ControlPlane
	now     time.Time
	stacked bool

	replicas   []*replicaState // sorted by name
	readyZones map[string]bool
	etcd       cpEtcd

	// version is the version new replicas run: spec.version when the step
	// from the running version is supported, else the running version;
	// versionRefused says why spec.version is not carried out.
	version        string
	versionRefused string
	// hash is the template hash of a replica at version.
	hash string

	leaders quorumv1alpha1.ControlPlaneLeaders
}

// cpActionKind is the one change a control-plane reconcile makes.
type cpActionKind string

const (
	cpNone   cpActionKind = "None"
	cpWait   cpActionKind = "Wait"
	cpCreate cpActionKind = "CreateReplica"
	cpDelete cpActionKind = "DeleteReplica"
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
)

type cpAction struct {
	kind    cpActionKind
	replica string
	zone    string
	reason  string
	// force deletes a pod on a NotReady node without waiting for its kubelet.
	force   bool
	message string
}

func desiredControlPlaneReplicas(cp *quorumv1alpha1.ControlPlane) int {
	if cp.Spec.Replicas == nil {
		return 3
	}
	return int(*cp.Spec.Replicas)
}

func cpUnhealthyAfter(cp *quorumv1alpha1.ControlPlane) time.Duration {
	if d := cp.Spec.FailurePolicy.UnhealthyAfter; d != nil {
		return d.Duration
	}
	return 60 * time.Second
}

func cpAutoReplace(cp *quorumv1alpha1.ControlPlane) bool {
	return cp.Spec.FailurePolicy.AutoReplace == nil || *cp.Spec.FailurePolicy.AutoReplace
}

// replicaFailure says why a replica is failed, or "" when it is not: its
// pod failed, its node is NotReady, or its apiserver has not been ready for
// unhealthyAfter.
func replicaFailure(cp *quorumv1alpha1.ControlPlane, r *replicaState, now time.Time) string {
	switch {
	case r.Terminating:
		return ""
	case r.Failed:
		return "its pod failed"
	case !r.NodeReady:
		return "its node is NotReady"
	case !r.Ready && now.Sub(r.UnreadySince) >= cpUnhealthyAfter(cp):
		return fmt.Sprintf("its apiserver has not been ready for %s", now.Sub(r.UnreadySince).Round(time.Second))
	}
	return ""
}

// kubernetesVersionStep says whether replicas running current may be
// rolled to target: patch changes and one minor step up.
func kubernetesVersionStep(current, target string) error {
	return minorStep(current, target, "v", "control planes are not downgraded across minor versions")
}

// lowestVersion is the oldest Kubernetes version any replica runs.
func lowestReplicaVersion(replicas []*replicaState) string {
	lowest := ""
	var low semver
	for _, r := range replicas {
		v, err := parseVersion(r.Version)
		if err != nil {
			continue
		}
		if lowest == "" || v.less(low) {
			lowest, low = r.Version, v
		}
	}
	return lowest
}

// targetVersion is the version new replicas get, and why spec.version is
// refused when it is.
func targetVersion(cp *quorumv1alpha1.ControlPlane, replicas []*replicaState) (string, string) {
	running := lowestReplicaVersion(replicas)
	if running == "" {
		return cp.Spec.Version, ""
	}
	if err := kubernetesVersionStep(running, cp.Spec.Version); err != nil {
		return running, err.Error()
	}
	return cp.Spec.Version, ""
}

// live are the replicas not being deleted.
func (s *cpScope) live() []*replicaState {
	var out []*replicaState
	for _, r := range s.replicas {
		if !r.Terminating {
			out = append(out, r)
		}
	}
	return out
}

// isLeader says whether a replica holds the controller-manager or
// scheduler lease: it is rolled and removed last.
func (s *cpScope) isLeader(name string) bool {
	return name != "" && (s.leaders.ControllerManager == name || s.leaders.Scheduler == name)
}

// rollOrder sorts replicas to roll or remove: zone by zone, leaders last.
func (s *cpScope) rollOrder(rs []*replicaState) []*replicaState {
	out := slices.Clone(rs)
	slices.SortStableFunc(out, func(a, b *replicaState) int {
		if la, lb := s.isLeader(a.Name), s.isLeader(b.Name); la != lb {
			if la {
				return 1
			}
			return -1
		}
		if c := strings.Compare(a.Zone, b.Zone); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

func replicaMembers(rs []*replicaState) []placement.Member {
	out := make([]placement.Member, 0, len(rs))
	for _, r := range rs {
		out = append(out, placement.Member{Name: r.Name, Zone: r.Zone, Healthy: r.Ready, Created: r.Created})
	}
	return out
}

// decideControlPlane chooses the one change to make: replace a failed
// replica, add or remove one, or roll one onto the current template.
func decideControlPlane(s *cpScope) cpAction {
	if s.stacked {
		return decideStacked(s)
	}
	cp := s.cp
	desired := desiredControlPlaneReplicas(cp)
	live := s.live()
	for _, r := range s.replicas {
		// A replica on a NotReady node never finishes terminating: its pod
		// is removed at once, the apiserver holds no state.
		if r.Terminating && !r.NodeReady && r.Pod != nil {
			return cpAction{kind: cpDelete, replica: r.Name, zone: r.Zone, reason: reasonReplace, force: true, message: fmt.Sprintf("replica %s is terminating on a NotReady node", r.Name)}
		}
	}
	if len(live) < len(s.replicas) {
		return cpAction{kind: cpWait, reason: reasonWaitReady, message: "waiting for a replica to terminate"}
	}
	if !s.etcd.available && len(live) == 0 {
		return cpAction{kind: cpWait, reason: reasonWaitEtcd, message: "no replica is started until etcd is available: " + s.etcd.message}
	}
	ready, unready := 0, 0
	for _, r := range live {
		if r.Ready {
			ready++
		} else {
			unready++
		}
	}

	// Failed replicas go first, one at a time, zone by zone.
	if cpAutoReplace(cp) {
		for _, r := range s.rollOrder(live) {
			if why := replicaFailure(cp, r, s.now); why != "" {
				return cpAction{kind: cpDelete, replica: r.Name, zone: r.Zone, reason: reasonReplace, force: !r.NodeReady,
					message: fmt.Sprintf("replica %s in zone %s is replaced: %s", r.Name, zoneName(r.Zone), why)}
			}
		}
	}

	var outdated []*replicaState
	for _, r := range live {
		if r.Hash != s.hash {
			outdated = append(outdated, r)
		}
	}
	outdated = s.rollOrder(outdated)

	switch {
	case len(live) < desired:
		// One at a time once a replica serves; all at once at bootstrap.
		if unready > 0 && ready > 0 {
			return cpAction{kind: cpWait, reason: reasonWaitReady, message: fmt.Sprintf("%d replica(s) not ready yet", unready)}
		}
		zone, ok := placement.ZoneForNewMember(cp.Spec.Zones, s.readyZones, replicaMembers(live), "")
		if !ok {
			return cpAction{kind: cpWait, reason: reasonWaitReady, message: "no Ready zone to place a replica in"}
		}
		reason := reasonScaleUp
		if ready == 0 && len(live) == 0 {
			reason = reasonBootstrap
		}
		return cpAction{kind: cpCreate, zone: zone, reason: reason, message: fmt.Sprintf("adding a replica in zone %s (%d of %d)", zoneName(zone), len(live)+1, desired)}
	case len(outdated) > 0 && len(live) <= desired+1:
		// Roll: one extra replica at the new template, then one old one
		// goes, zone by zone, leaders last, only while all are ready.
		if unready > 0 {
			return cpAction{kind: cpWait, reason: reasonWaitReady, message: fmt.Sprintf("rolling waits for all replicas to be ready (%d not ready)", unready)}
		}
		next := outdated[0]
		reason := reasonRoll
		if next.Version != s.version {
			reason = reasonUpgrade
		}
		if len(live) == desired {
			zone, ok := placement.ZoneForNewMember(cp.Spec.Zones, s.readyZones, replicaMembers(live), next.Zone)
			if !ok {
				return cpAction{kind: cpWait, reason: reasonWaitReady, message: "no Ready zone to place a replica in"}
			}
			return cpAction{kind: cpCreate, zone: zone, reason: reason, message: fmt.Sprintf("adding a replica at %s in zone %s to replace %s", s.version, zoneName(next.Zone), outdated[0].Name)}
		}
		return cpAction{kind: cpDelete, replica: next.Name, zone: next.Zone, reason: reason, message: fmt.Sprintf("removing replica %s (%s) now that its replacement is ready", next.Name, next.Version)}
	case len(live) > desired:
		// From the fullest zone; a replica holding a lease stays if its zone
		// has another to give.
		victim, _ := placement.MemberToRemove(cp.Spec.Zones, replicaMembers(live))
		if s.isLeader(victim.Name) {
			for _, r := range live {
				if r.Zone == victim.Zone && !s.isLeader(r.Name) {
					victim = placement.Member{Name: r.Name, Zone: r.Zone}
					break
				}
			}
		}
		zone := victim.Zone
		return cpAction{kind: cpDelete, replica: victim.Name, zone: zone, reason: reasonScaleDown, message: fmt.Sprintf("removing replica %s from zone %s (%d to %d)", victim.Name, zoneName(zone), len(live), desired)}
	}
	return cpAction{kind: cpNone}
}

// decideStacked handles a stacked control plane, whose replicas are the
// members of its EtcdCluster: that controller places, scales and replaces
// them under the quorum rules. What is left here is what etcd cannot see:
// an apiserver that stays unready, and rolling onto a new template, both by
// deleting the pod so the EtcdCluster restarts the member from its volume.
func decideStacked(s *cpScope) cpAction {
	cp := s.cp
	live := s.live()
	if s.etcd.busy || len(live) < len(s.replicas) {
		return cpAction{kind: cpWait, reason: reasonWaitEtcdOp, message: "waiting for the EtcdCluster to finish a change: " + s.etcd.message}
	}
	unready := 0
	for _, r := range live {
		if !r.Ready {
			unready++
		}
	}
	if cpAutoReplace(cp) {
		for _, r := range s.rollOrder(live) {
			if why := replicaFailure(cp, r, s.now); why != "" && r.NodeReady && !r.Failed {
				if unready > 1 {
					return cpAction{kind: cpWait, reason: reasonWaitReady, message: fmt.Sprintf("replica %s is failed (%s) but %d replicas are not ready: restarting it could cost quorum", r.Name, why, unready)}
				}
				return cpAction{kind: cpDelete, replica: r.Name, zone: r.Zone, reason: reasonReplace,
					message: fmt.Sprintf("replica %s in zone %s is restarted: %s", r.Name, zoneName(r.Zone), why)}
			}
		}
	}
	if len(live) != desiredControlPlaneReplicas(cp) {
		return cpAction{kind: cpWait, reason: reasonWaitEtcdOp, message: fmt.Sprintf("the EtcdCluster is scaling (%d of %d)", len(live), desiredControlPlaneReplicas(cp))}
	}
	for _, r := range s.rollOrder(live) {
		if r.Hash == s.hash {
			continue
		}
		if unready > 0 {
			return cpAction{kind: cpWait, reason: reasonWaitReady, message: fmt.Sprintf("rolling waits for all replicas to be ready (%d not ready)", unready)}
		}
		reason := reasonRoll
		if r.Version != s.version {
			reason = reasonUpgrade
		}
		return cpAction{kind: cpDelete, replica: r.Name, zone: r.Zone, reason: reason,
			message: fmt.Sprintf("restarting replica %s (%s) at %s, keeping its etcd member", r.Name, r.Version, s.version)}
	}
	return cpAction{kind: cpNone}
}

// replicaLabelsOK says whether a pod belongs to the replicas of cp.
func replicaLabelsOK(p *corev1.Pod, cp string) bool {
	return p.Labels[resources.LabelControlPlane] == cp && p.Labels[resources.LabelKubernetesVersion] != ""
}
