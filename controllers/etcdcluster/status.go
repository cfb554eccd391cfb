package etcdcluster

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
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
func computeStatus(c *quorumv1alpha1.EtcdCluster, s *scope, a action, now time.Time) quorumv1alpha1.EtcdClusterStatus {
	prev := c.Status
	st := quorumv1alpha1.EtcdClusterStatus{
		ObservedGeneration: c.Generation,
		Replicas:           prev.Replicas,
		ReadyReplicas:      prev.ReadyReplicas,
		Leader:             prev.Leader,
		ClusterID:          prev.ClusterID,
		Members:            prev.Members,
		Conditions:         append([]metav1.Condition(nil), prev.Conditions...),
		Selector:           resources.Selector(c.Name),
		Version:            prev.Version,
		PendingChange:      prev.PendingChange,
		Restore:            prev.Restore,
	}
	if s == nil {
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionProgressing, false, a.reason, a.message)
		return st
	}
	h := assess(s)
	if s.listed {
		st.Replicas = int32(h.voters)
		st.ReadyReplicas = int32(h.healthyVoters)
	} else if s.listErr != nil || anyMemberObjects(s) {
		st.ReadyReplicas = 0
	}
	st.Leader = ""
	for _, m := range s.members {
		if m.Leader {
			st.Leader = m.Name
		}
	}
	st.Members = memberStatuses(c, s, prev.Members, now)
	st.Version = lowestVersion(s)

	// QuorumLost: fewer than a majority of voters healthy, or none answers.
	lost := h.quorumLost() || (!s.listed && st.ClusterID != "" && prev.PendingChange == nil)
	if lost {
		msg := quorumLostMessage(s, h)
		if !s.listed {
			msg = unreachableMessage(s)
		}
		if c.Spec.QuorumLossPolicy == quorumv1alpha1.QuorumLossWait || c.Spec.QuorumLossPolicy == "" {
			msg += "; quorumLossPolicy Wait: nothing is removed, members rejoin when they come back"
		}
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionQuorumLost, true, "QuorumLost", msg)
	} else {
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionQuorumLost, false, "QuorumHealthy", fmt.Sprintf("%d of %d voters are healthy", h.healthyVoters, h.voters))
	}

	switch {
	case lost:
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionAvailable, false, "QuorumLost", "the cluster has no quorum and serves no writes")
	case h.voters == 0:
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionAvailable, false, "Bootstrapping", "the first member is starting")
	default:
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionAvailable, true, "QuorumHealthy", fmt.Sprintf("%d of %d voters are healthy; quorum is %d", h.healthyVoters, h.voters, etcd.Quorum(h.voters)))
	}

	switch {
	case a.reason == "QuorumAtRisk":
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionQuorumAtRisk, true, "ActionWouldLoseQuorum", a.message)
	case !lost && h.voters > 1 && h.healthyVoters == etcd.Quorum(h.voters):
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionQuorumAtRisk, true, "OneFailureFromQuorumLoss",
			fmt.Sprintf("%d of %d voters are healthy: one more failure loses quorum (unhealthy: %s)", h.healthyVoters, h.voters, strings.Join(h.unhealthy, ", ")))
	case !lost && h.voters == 1:
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionQuorumAtRisk, true, "SingleMember", "a 1-member cluster tolerates no failure")
	default:
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionQuorumAtRisk, false, "QuorumSafe", "the cluster tolerates the failure of a member")
	}

	if len(h.failed) > 0 || len(h.unhealthy) > 0 {
		var parts []string
		for _, name := range h.unhealthy {
			if why, ok := h.failed[name]; ok {
				parts = append(parts, fmt.Sprintf("%s: %s", name, why))
			} else {
				parts = append(parts, name+": etcd does not report it healthy")
			}
		}
		for name, why := range h.failed {
			if !slices.Contains(h.unhealthy, name) {
				parts = append(parts, fmt.Sprintf("%s: %s", name, why))
			}
		}
		sort.Strings(parts)
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionDegraded, true, "MembersUnhealthy", strings.Join(parts, "; "))
	} else {
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionDegraded, false, "AllMembersHealthy", fmt.Sprintf("all %d voters are healthy", h.voters))
	}

	switch {
	case st.PendingChange != nil:
		p := st.PendingChange
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionProgressing, true, p.Reason, pendingMessage(p))
	case a.kind == actWait:
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionProgressing, false, a.reason, a.message)
	case a.kind != actNone && a.kind != actLabelVoter:
		reason := a.reason
		if reason == "" {
			reason = string(a.kind)
		}
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionProgressing, true, reason, a.message)
	default:
		reconciler.SetCondition(&st.Conditions, c.Generation, quorumv1alpha1.ConditionProgressing, false, "AsDesired",
			fmt.Sprintf("%d voters at version %s, as asked", h.voters, c.Spec.Version))
	}
	return st
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
			ms.DBSizeBytes = m.Status.DBSize
		}
		if o, ok := old[m.Name]; ok {
			if o.Healthy == ms.Healthy && o.Role == ms.Role && o.Since != nil {
				ms.Since = o.Since
			}
			// The database grows with every write: only a real change in
			// size (a tenth, or a MiB) is worth a status write.
			if !significantSizeChange(o.DBSizeBytes, ms.DBSizeBytes) {
				ms.DBSizeBytes = o.DBSizeBytes
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
	quorumAtRisk.WithLabelValues(c.Namespace, c.Name).Set(reconciler.BoolGauge(meta.IsStatusConditionTrue(st.Conditions, quorumv1alpha1.ConditionQuorumAtRisk)))
	quorumLost.WithLabelValues(c.Namespace, c.Name).Set(reconciler.BoolGauge(meta.IsStatusConditionTrue(st.Conditions, quorumv1alpha1.ConditionQuorumLost)))
}
