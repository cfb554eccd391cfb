package etcdcluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/resources"
)

// Recovery steps after quorum loss, as quorumLossPolicy allows:
// ForceNewCluster restarts the best survivor alone; RestoreFromBackup
// deletes every member so the cluster is bootstrapped from a snapshot.

// forceNewCluster recovers from quorum loss with the survivor that has the
// most history: its pod is restarted with --force-new-cluster (etcd keeps
// its data and cluster ID and drops every other member), then restarted
// without the flag. The other members' objects are then orphans and are
// deleted; the cluster grows back one learner at a time.
func (r *Reconciler) forceNewCluster(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	if p := c.Status.PendingChange; (p == nil || p.Type != quorumv1alpha1.ChangeForceNewCluster) && s.members[a.member] != nil {
		if err := r.confirmQuorumLost(ctx, s); err != nil {
			return err
		}
		c.Status.Recovery = recoveryOf(s, s.members[a.member])
		r.Event(c, corev1.EventTypeWarning, "ForceNewCluster", fmt.Sprintf("%s; acknowledged writes after revision %d (up to %s of them) are lost",
			a.message, c.Status.Recovery.Revision, c.Status.Recovery.DataLossWindow))
	}
	m, err := r.startChange(ctx, s, quorumv1alpha1.ChangeForceNewCluster, a, "QuorumLoss")
	if m == nil || err != nil {
		return err
	}
	p := c.Status.PendingChange
	forced := m.Pod != nil && m.Pod.Annotations[resources.AnnotationForceNewCluster] == "true"
	alone := s.listed && len(s.voters()) == 1 && s.voters()[0].Name == a.member
	switch {
	case p.Reason == "QuorumLoss" && m.Pod != nil && !forced:
		if m.Pod.DeletionTimestamp == nil {
			return client.IgnoreNotFound(r.Delete(ctx, m.Pod))
		}
		return nil
	case p.Reason == "QuorumLoss" && m.Pod == nil:
		pod := resources.MemberPod{Cluster: c, Member: m.Name, Zone: m.Zone, Version: m.PodVersionOr(knownVersion(s)),
			InitialCluster: resources.InitialCluster(map[string]string{m.Name: resources.PeerURL(m.Name, c.Name, c.Namespace)}),
			Voter:          true, ForceNewCluster: true}.Pod()
		return r.CreateOwned(ctx, c, pod)
	case p.Reason == "QuorumLoss" && forced && alone && m.Healthy:
		// Restarting without the flag: a later restart must not force again.
		p.Reason = "QuorumLossRecovered"
		if err := r.persist(ctx, s); err != nil {
			return err
		}
		return client.IgnoreNotFound(r.Delete(ctx, m.Pod))
	case p.Reason == "QuorumLossRecovered" && m.Pod == nil:
		return r.createMemberPod(ctx, s, m.Name, m.Zone, m.PodVersionOr(knownVersion(s)), false)
	case p.Reason == "QuorumLossRecovered" && m.Pod != nil && forced:
		if m.Pod.DeletionTimestamp == nil {
			return client.IgnoreNotFound(r.Delete(ctx, m.Pod))
		}
		return nil
	case p.Reason == "QuorumLossRecovered" && m.Healthy:
		r.Event(c, corev1.EventTypeNormal, "QuorumRestored", fmt.Sprintf("cluster %s runs again from member %s; it grows back one learner at a time", c.Status.ClusterID, m.Name))
		c.Status.PendingChange = nil
	}
	return nil
}

// resetForRestore deletes every member after quorum was lost, keeping the
// cluster's Services and certificates (its identity for clients), and
// records the snapshot to rebuild from; the bootstrap then restores it.
func (r *Reconciler) resetForRestore(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	if p := c.Status.PendingChange; p == nil || p.Type != quorumv1alpha1.ChangeRestoreFromBackup {
		if err := r.confirmQuorumLost(ctx, s); err != nil {
			return err
		}
		t := metav1.NewTime(quorumLostAt(c))
		c.Status.Restore = &quorumv1alpha1.RestoreStatus{Backup: a.zone, Snapshot: a.member, QuorumLostAt: &t}
		if err := r.record(ctx, s, quorumv1alpha1.MembershipChange{Type: quorumv1alpha1.ChangeRestoreFromBackup, Reason: "QuorumLoss"}); err != nil {
			return err
		}
		r.Event(c, corev1.EventTypeWarning, "RestoreFromBackup", a.message)
	}
	remaining := false
	for _, m := range s.sortedMembers() {
		done, err := r.deleteMemberObjects(ctx, s, m.Name)
		if err != nil {
			return err
		}
		remaining = remaining || !done
	}
	if remaining {
		return nil
	}
	c.Status.ClusterID = ""
	c.Status.Members = nil
	c.Status.PendingChange = nil
	return nil
}

// confirmQuorumLost asks every voter again, at the moment a recovery would
// destroy something, and refuses unless the loss still shows: no member
// knows a leader, the membership cannot be read through a leader, and no
// kubelet reports a voter serving. A member refusing the operator's
// credentials refuses the recovery too.
func (r *Reconciler) confirmQuorumLost(ctx context.Context, s *scope) error {
	if s.etcd == nil {
		return fmt.Errorf("refusing to recover: no connection to etcd to confirm the loss")
	}
	c := s.cluster
	for _, m := range s.voters() {
		if m.PodServing {
			return fmt.Errorf("refusing to recover: member %s passes its readiness probe, so the cluster has quorum", m.Name)
		}
		if m.Pod == nil || m.Pod.Status.PodIP == "" {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := s.etcd.Status(sctx, resources.ClientURL(m.Name, c.Name, c.Namespace))
		cancel()
		switch {
		case err == nil && st.Leader != 0:
			return fmt.Errorf("refusing to recover: member %s knows a leader again", m.Name)
		case err != nil && etcd.Classify(err) == etcd.Rejected:
			return fmt.Errorf("refusing to recover: member %s refuses the operator's credentials, so the loss cannot be confirmed: %w", m.Name, err)
		}
	}
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, _, err := s.etcd.MemberList(lctx, true); err == nil {
		return fmt.Errorf("refusing to recover: the membership reads through a leader, so the cluster has quorum")
	}
	return nil
}

// recoveryOf is what restarting from survivor costs: writes the lost
// majority committed after the survivor last knew a leader.
func recoveryOf(s *scope, survivor *memberState) *quorumv1alpha1.RecoveryStatus {
	c := s.cluster
	lost := metav1.NewTime(quorumLostAt(c))
	rs := &quorumv1alpha1.RecoveryStatus{Member: survivor.Name, QuorumLostAt: &lost}
	if survivor.Status != nil {
		rs.RaftIndex, rs.Revision = survivor.Status.RaftIndex, survivor.Status.Revision
	}
	lastHealthy := lost.Time
	for _, ms := range c.Status.Members {
		if ms.Name == survivor.Name && !ms.Healthy && ms.Since != nil && ms.Since.Before(&lost) {
			lastHealthy = ms.Since.Time
		}
	}
	t := metav1.NewTime(lastHealthy)
	rs.MemberLastHealthyAt = &t
	rs.DataLossWindow = lost.Sub(lastHealthy).Round(time.Second).String()
	return rs
}
