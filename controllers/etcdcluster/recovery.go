package etcdcluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
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
		r.Event(c, corev1.EventTypeWarning, "ForceNewCluster", a.message)
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
		pod := resources.MemberPod{Cluster: c, Member: m.Name, Zone: m.Zone, Version: m.PodVersionOr(c.Spec.Version),
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
		return r.createMemberPod(ctx, s, m.Name, m.Zone, m.PodVersionOr(c.Spec.Version), false)
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
		_, lostAt := quorumLostFor(s)
		t := metav1.NewTime(lostAt)
		c.Status.Restore = &quorumv1alpha1.RestoreStatus{Backup: a.zone, Snapshot: a.member, QuorumLostAt: &t}
		if err := r.record(ctx, s, quorumv1alpha1.ChangeRestoreFromBackup, "", "", "QuorumLoss", ""); err != nil {
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
