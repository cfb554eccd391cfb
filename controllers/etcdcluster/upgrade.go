package etcdcluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

// Upgrade steps: a preflight pod proves the new image runs before any
// member is touched, then members restart one at a time at the new
// version, keeping their volume and identity.

// preflight (re)creates the pod that runs `etcd --version` from the image of
// a.version.
func (r *Reconciler) preflight(ctx context.Context, s *scope, a action) error {
	if s.preflight != nil {
		return client.IgnoreNotFound(r.Delete(ctx, s.preflight))
	}
	return r.CreateOwned(ctx, s.cluster, resources.PreflightPod(s.cluster, a.version))
}

// restartMember replaces a member's pod with one at a new version, keeping
// its volume and identity: delete, recreate, wait until healthy.
func (r *Reconciler) restartMember(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	m, err := r.startChange(ctx, s, quorumv1alpha1.ChangeRestartMember, a, a.reason)
	if m == nil || err != nil {
		return err
	}
	switch {
	case s.listed && !m.InEtcd:
		// The member is gone: nothing to restart.
		c.Status.PendingChange = nil
		return nil
	case m.Pod != nil && (m.PodVersion != a.version || len(m.Pod.Spec.InitContainers) > 0 ||
		(certificateRestart(a.reason) && s.certs != nil && runsOldCertificates(m, s.certs.members[m.Name])) ||
		(a.reason == reasonSettings && m.Pod.Annotations[resources.AnnotationMaintenance] != resources.MaintenanceHash(c))):
		if m.Pod.DeletionTimestamp == nil {
			return client.IgnoreNotFound(r.Delete(ctx, m.Pod))
		}
		return nil
	case m.Pod == nil:
		return r.createMemberPod(ctx, s, m.Name, m.Zone, a.version, false)
	case m.Healthy && a.reason == reasonSettings:
		r.Event(c, corev1.EventTypeNormal, "MemberRestarted", fmt.Sprintf("member %s runs the new maintenance settings", m.Name))
		c.Status.PendingChange = nil
	case m.Healthy && certificateRestart(a.reason):
		r.Event(c, corev1.EventTypeNormal, "MemberRestarted", fmt.Sprintf("member %s runs its renewed certificates", m.Name))
		c.Status.PendingChange = nil
	case m.Healthy && a.reason == "Rollback":
		r.Event(c, corev1.EventTypeNormal, "MemberRolledBack", fmt.Sprintf("member %s runs etcd %s again", m.Name, m.Version))
		c.Status.PendingChange = nil
	case m.Healthy:
		r.Event(c, corev1.EventTypeNormal, "MemberUpgraded", fmt.Sprintf("member %s runs etcd %s", m.Name, m.Version))
		c.Status.PendingChange = nil
	}
	return nil
}

// rollback turns a restart that did not come up in time into a restart at
// the version the member ran before, and records the failed upgrade so that
// it is not tried again until the spec changes.
func (r *Reconciler) rollback(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	p := c.Status.PendingChange
	failed := p.Version
	c.Status.FailedUpgrade = &quorumv1alpha1.FailedUpgrade{Version: failed, Member: a.member, Generation: c.Generation, Message: a.message}
	if err := r.record(ctx, s, quorumv1alpha1.MembershipChange{Type: quorumv1alpha1.ChangeRestartMember, Member: a.member, Zone: a.zone,
		Reason: "Rollback", ID: p.ID, Version: a.version}); err != nil {
		return err
	}
	changeTimeouts.WithLabelValues(c.Namespace, c.Name, "upgrade").Inc()
	r.Event(c, corev1.EventTypeWarning, "UpgradeFailed", a.message)
	return nil
}
