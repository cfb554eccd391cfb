package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/placement"
	"quorum.dev/quorum/internal/resources"
)

// etcdTimeout bounds every etcd call a step makes.
const etcdTimeout = 10 * time.Second

// execute carries out one action. Membership changes are recorded in
// status.pendingChange before etcd is asked, so an operator killed at any
// point finds the change on restart and finishes or undoes it.
func (r *EtcdClusterReconciler) execute(ctx context.Context, s *scope, a action) (reconcile.Result, error) {
	c := s.cluster
	next := reconcile.Result{RequeueAfter: stepInterval}
	switch a.kind {
	case actNone, actWait:
		return reconcile.Result{RequeueAfter: healthInterval}, nil

	case actBootstrap:
		name := newMemberName(c)
		return next, r.record(ctx, s, quorumv1alpha1.ChangeAddMember, name, a.zone, a.reason, "")

	case actStartMember:
		return next, r.startMember(ctx, s, a.member, a.zone)

	case actRecreatePod:
		m := s.members[a.member]
		if err := r.createMemberPod(ctx, s, a.member, a.zone, m.PodVersionOr(c.Spec.Version), false); err != nil {
			return next, err
		}
		r.event(c, corev1.EventTypeNormal, "PodRecreated", a.message)
		return next, nil

	case actAddLearner:
		name := a.member
		if c.Status.PendingChange == nil {
			name = newMemberName(c)
			if err := r.record(ctx, s, quorumv1alpha1.ChangeAddMember, name, a.zone, a.reason, ""); err != nil {
				return next, err
			}
		}
		actx, cancel := context.WithTimeout(ctx, etcdTimeout)
		defer cancel()
		added, _, err := s.etcd.AddLearner(actx, resources.PeerURL(name, c.Name, c.Namespace))
		if err != nil {
			return next, fmt.Errorf("adding learner %s: %w", name, err)
		}
		c.Status.PendingChange.ID = etcd.FormatID(added.ID)
		membershipChanges.WithLabelValues(c.Namespace, c.Name, "add_learner").Inc()
		r.event(c, corev1.EventTypeNormal, "LearnerAdded", fmt.Sprintf("added learner %s (%s) in zone %s: %s", name, etcd.FormatID(added.ID), zoneName(a.zone), a.reason))
		return next, nil

	case actPromote:
		m := s.members[a.member]
		pctx, cancel := context.WithTimeout(ctx, etcdTimeout)
		defer cancel()
		if err := s.etcd.Promote(pctx, m.ID); err != nil {
			if errors.Is(err, etcd.ErrLearnerNotReady) {
				// etcd refuses to promote a learner that is not in sync:
				// retry, don't fail.
				return reconcile.Result{RequeueAfter: stepInterval}, nil
			}
			return next, fmt.Errorf("promoting %s: %w", a.member, err)
		}
		membershipChanges.WithLabelValues(c.Namespace, c.Name, "promote").Inc()
		r.event(c, corev1.EventTypeNormal, "MemberPromoted", fmt.Sprintf("promoted learner %s to voter", a.member))
		return next, nil

	case actFinishAdd:
		if err := r.labelVoter(ctx, s.members[a.member]); err != nil {
			return next, err
		}
		switch a.reason {
		case "Bootstrap":
			c.Status.ClusterID = etcd.FormatID(s.clusterID)
			r.event(c, corev1.EventTypeNormal, "Bootstrapped", fmt.Sprintf("cluster %s bootstrapped with member %s", c.Status.ClusterID, a.member))
		case "Restore":
			c.Status.ClusterID = etcd.FormatID(s.clusterID)
			rs := c.Status.Restore
			msg := fmt.Sprintf("cluster %s restored from snapshot %s (revision %d, bumped by %d) with member %s",
				c.Status.ClusterID, rs.Snapshot, rs.Revision, resources.RestoreBumpRevision, a.member)
			if rs.QuorumLostAt != nil && rs.TakenAt != nil {
				rs.DataLossWindow = rs.QuorumLostAt.Sub(rs.TakenAt.Time).Round(time.Second).String()
				msg += fmt.Sprintf("; writes between the snapshot (%s) and the loss of quorum (%s) are lost: a window of %s",
					rs.TakenAt.UTC().Format(time.RFC3339), rs.QuorumLostAt.UTC().Format(time.RFC3339), rs.DataLossWindow)
			}
			r.event(c, corev1.EventTypeNormal, "Restored", msg)
			// The member's pod restored the snapshot in its init
			// containers; it is recreated without them, so a restart never
			// restores again.
			c.Status.PendingChange = &quorumv1alpha1.MembershipChange{Type: quorumv1alpha1.ChangeRestartMember, Member: a.member,
				Zone: s.members[a.member].Zone, Reason: "RestoreDone", StartedAt: metav1.NewTime(s.now)}
			return next, nil
		case "Replace":
			replacements.WithLabelValues(c.Namespace, c.Name).Inc()
		}
		c.Status.PendingChange = nil
		return next, nil

	case actLabelVoter:
		return next, r.labelVoter(ctx, s.members[a.member])

	case actMoveLeader:
		from, to := s.members[a.member], s.members[a.transferee]
		mctx, cancel := context.WithTimeout(ctx, etcdTimeout)
		defer cancel()
		if err := s.etcd.MoveLeader(mctx, resources.ClientURL(from.Name, c.Name, c.Namespace), to.ID); err != nil {
			return next, fmt.Errorf("moving leadership from %s to %s: %w", from.Name, to.Name, err)
		}
		r.event(c, corev1.EventTypeNormal, "LeaderMoved", a.message)
		return next, nil

	case actRemoveMember:
		m := s.members[a.member]
		if c.Status.PendingChange == nil {
			replaceZone := ""
			if a.reason == "Replace" {
				replaceZone = m.Zone
			}
			c.Status.PendingChange = &quorumv1alpha1.MembershipChange{ReplaceZone: replaceZone}
			if err := r.record(ctx, s, quorumv1alpha1.ChangeRemoveMember, m.Name, m.Zone, a.reason, etcd.FormatID(m.ID)); err != nil {
				return next, err
			}
		}
		rctx, cancel := context.WithTimeout(ctx, etcdTimeout)
		defer cancel()
		if err := s.etcd.Remove(rctx, m.ID); err != nil {
			return next, fmt.Errorf("removing member %s: %w", m.Name, err)
		}
		membershipChanges.WithLabelValues(c.Namespace, c.Name, "remove").Inc()
		r.event(c, corev1.EventTypeNormal, "MemberRemoved", fmt.Sprintf("removed member %s (%s): %s", m.Name, etcd.FormatID(m.ID), a.message))
		return next, nil

	case actCleanupMember:
		done, err := r.deleteMemberObjects(ctx, s, a.member)
		if err != nil || !done {
			return next, err
		}
		p := c.Status.PendingChange
		c.Status.PendingChange = nil
		if p != nil && p.Reason == "Replace" {
			// The replacement is recorded at once: the zone is repaired
			// before any other change.
			zone, ok := placement.ZoneForNewMember(c.Spec.Zones, s.readyZones, placementMembers(votersExcept(s, a.member)), p.ReplaceZone)
			if ok {
				c.Status.PendingChange = &quorumv1alpha1.MembershipChange{
					Type: quorumv1alpha1.ChangeAddMember, Member: newMemberName(c), Zone: zone, Reason: "Replace", StartedAt: metav1.NewTime(s.now),
				}
			}
		}
		return next, nil

	case actDeleteOrphan:
		_, err := r.deleteMemberObjects(ctx, s, a.member)
		return next, err

	case actRestartMember:
		return next, r.restartMember(ctx, s, a)

	case actForceNewCluster:
		return next, r.forceNewCluster(ctx, s, a)

	case actPreflight:
		if s.preflight != nil {
			return next, ctrl.IgnoreNotFound(r.Delete(ctx, s.preflight))
		}
		return next, r.createOwned(ctx, c, resources.PreflightPod(c, a.version))

	case actDeletePreflight:
		return next, ctrl.IgnoreNotFound(r.Delete(ctx, s.preflight))

	case actVerifySnapshot:
		return next, r.createOwned(ctx, c, r.verifyPod(s))

	case actRecordVerified:
		o := s.restore
		rs := &quorumv1alpha1.RestoreStatus{Backup: o.backup.Name, Snapshot: o.snapshot.Name, Location: o.snapshot.Location,
			Revision: o.snapshot.Revision, SHA256: o.snapshot.SHA256, TakenAt: &o.snapshot.TakenAt, Verified: true}
		if old := c.Status.Restore; old != nil {
			rs.QuorumLostAt = old.QuorumLostAt
		}
		c.Status.Restore = rs
		if err := r.persist(ctx, s); err != nil {
			return next, err
		}
		r.event(c, corev1.EventTypeNormal, "SnapshotVerified", fmt.Sprintf("snapshot %s (revision %d) fetched from %s and verified", rs.Snapshot, rs.Revision, rs.Location))
		return next, ctrl.IgnoreNotFound(r.Delete(ctx, o.verifyPod))

	case actResetForRestore:
		return next, r.resetForRestore(ctx, s, a)
	}
	return next, fmt.Errorf("unknown action %s", a.kind)
}

// record writes the intent of a membership change to status before it is
// carried out. A conflict means someone else wrote first: the pass ends and
// the next one decides again from fresh state.
func (r *EtcdClusterReconciler) record(ctx context.Context, s *scope, t quorumv1alpha1.ChangeType, member, zone, reason, id string) error {
	c := s.cluster
	replaceZone := ""
	if c.Status.PendingChange != nil {
		replaceZone = c.Status.PendingChange.ReplaceZone
	}
	c.Status.PendingChange = &quorumv1alpha1.MembershipChange{
		Type: t, Member: member, Zone: zone, Reason: reason, ID: id, ReplaceZone: replaceZone, StartedAt: metav1.NewTime(r.now()),
	}
	return r.persist(ctx, s)
}

// persist writes c.Status as it is now and remembers it as stored.
func (r *EtcdClusterReconciler) persist(ctx context.Context, s *scope) error {
	if err := r.Status().Update(ctx, s.cluster); err != nil {
		return err
	}
	*s.persisted = *s.cluster.Status.DeepCopy()
	return nil
}

// newMemberName names a new member: the cluster's name and a random suffix,
// never reused, so a replacement is a new member and never mistaken for the
// one it replaces.
func newMemberName(c *quorumv1alpha1.EtcdCluster) string {
	return c.Name + "-" + utilrand.String(5)
}

// startMember makes a recorded member's certificates, volume and pod.
func (r *EtcdClusterReconciler) startMember(ctx context.Context, s *scope, name, zone string) error {
	c := s.cluster
	p := c.Status.PendingChange
	if p != nil && p.Reason == "Restore" && !s.listed {
		src, err := r.restoreSource(s, name)
		if err != nil {
			return err
		}
		return r.createPod(ctx, s, name, zone, c.Spec.Version, true, src)
	}
	newCluster := p != nil && p.Reason == "Bootstrap" && !s.listed
	return r.createMemberPod(ctx, s, name, zone, c.Spec.Version, newCluster)
}

// createMemberPod creates a member's certificates, volume and pod, each
// only if missing.
func (r *EtcdClusterReconciler) createMemberPod(ctx context.Context, s *scope, name, zone, version string, newCluster bool) error {
	return r.createPod(ctx, s, name, zone, version, newCluster, nil)
}

func (r *EtcdClusterReconciler) createPod(ctx context.Context, s *scope, name, zone, version string, newCluster bool, restore *resources.RestoreSource) error {
	c := s.cluster
	if err := r.ensureMemberSecret(ctx, c, name); err != nil {
		return err
	}
	if c.Spec.Storage.EmptyDir == nil {
		if m := s.members[name]; m == nil || m.PVC == nil {
			if err := r.createOwned(ctx, c, resources.MemberPVC(c, name, zone)); err != nil {
				return err
			}
		}
	}
	if m := s.members[name]; m != nil && m.Pod != nil {
		return nil
	}
	peers := map[string]string{name: resources.PeerURL(name, c.Name, c.Namespace)}
	voter := false
	if !newCluster {
		for _, m := range s.members {
			if m.InEtcd {
				peers[m.Name] = resources.PeerURL(m.Name, c.Name, c.Namespace)
			}
		}
		if m := s.members[name]; m != nil {
			voter = m.Voter()
		}
	}
	pod := resources.MemberPod{
		Cluster: c, Member: name, Zone: zone, Version: version,
		InitialCluster: resources.InitialCluster(peers), NewCluster: newCluster, Voter: voter, Restore: restore,
	}.Pod()
	if c.Labels[resources.LabelControlPlane] != "" {
		// A stacked control plane's member also runs that replica's
		// apiserver, controller-manager and scheduler.
		if err := decorateStackedPod(ctx, r.Client, c, pod); err != nil {
			return err
		}
	}
	return r.createOwned(ctx, c, pod)
}

// labelVoter marks a voter's pod so the PodDisruptionBudget counts it.
func (r *EtcdClusterReconciler) labelVoter(ctx context.Context, m *memberState) error {
	if m == nil || m.Pod == nil || m.Pod.Labels[labelVoter] == "true" {
		return nil
	}
	patch := ctrl.MergeFrom(m.Pod.DeepCopy())
	m.Pod.Labels[labelVoter] = "true"
	return r.Patch(ctx, m.Pod, patch)
}

// deleteMemberObjects deletes a member's pod, volume and certificates. A
// pod on a NotReady node is deleted without grace: the member is already out
// of the membership, so its process can no longer do harm. done is true once
// all are gone.
func (r *EtcdClusterReconciler) deleteMemberObjects(ctx context.Context, s *scope, name string) (bool, error) {
	c := s.cluster
	m := s.members[name]
	done := true
	if m != nil && m.Pod != nil {
		done = false
		opts := []ctrl.DeleteOption{}
		if !m.NodeReady || m.Pod.DeletionTimestamp != nil {
			opts = append(opts, ctrl.GracePeriodSeconds(0))
		}
		if err := r.Delete(ctx, m.Pod, opts...); ctrl.IgnoreNotFound(err) != nil {
			return false, err
		}
	}
	if m != nil && m.PVC != nil {
		done = false
		if m.PVC.DeletionTimestamp == nil {
			if err := r.Delete(ctx, m.PVC); ctrl.IgnoreNotFound(err) != nil {
				return false, err
			}
		}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: resources.MemberSecretName(name)}}
	if err := r.Delete(ctx, secret); ctrl.IgnoreNotFound(err) != nil {
		return false, err
	}
	return done, nil
}

// restartMember replaces a member's pod with one at a new version, keeping
// its volume and identity: delete, recreate, wait until healthy.
func (r *EtcdClusterReconciler) restartMember(ctx context.Context, s *scope, a action) error {
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
	case m.Pod != nil && (m.PodVersion != a.version || len(m.Pod.Spec.InitContainers) > 0):
		if m.Pod.DeletionTimestamp == nil {
			return ctrl.IgnoreNotFound(r.Delete(ctx, m.Pod))
		}
		return nil
	case m.Pod == nil:
		return r.createMemberPod(ctx, s, m.Name, m.Zone, a.version, false)
	case m.Healthy:
		r.event(c, corev1.EventTypeNormal, "MemberUpgraded", fmt.Sprintf("member %s runs etcd %s", m.Name, m.Version))
		c.Status.PendingChange = nil
	}
	return nil
}

// forceNewCluster recovers from quorum loss with the survivor that has the
// most history: its pod is restarted with --force-new-cluster (etcd keeps
// its data and cluster ID and drops every other member), then restarted
// without the flag. The other members' objects are then orphans and are
// deleted; the cluster grows back one learner at a time.
func (r *EtcdClusterReconciler) forceNewCluster(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	if p := c.Status.PendingChange; (p == nil || p.Type != quorumv1alpha1.ChangeForceNewCluster) && s.members[a.member] != nil {
		r.event(c, corev1.EventTypeWarning, "ForceNewCluster", a.message)
	}
	m, err := r.startChange(ctx, s, quorumv1alpha1.ChangeForceNewCluster, a, "QuorumLoss")
	if m == nil || err != nil {
		return err
	}
	p := c.Status.PendingChange
	forced := m != nil && m.Pod != nil && m.Pod.Annotations[resources.AnnotationForceNewCluster] == "true"
	alone := s.listed && len(s.voters()) == 1 && s.voters()[0].Name == a.member
	switch {
	case p.Reason == "QuorumLoss" && m.Pod != nil && !forced:
		if m.Pod.DeletionTimestamp == nil {
			return ctrl.IgnoreNotFound(r.Delete(ctx, m.Pod))
		}
		return nil
	case p.Reason == "QuorumLoss" && m.Pod == nil:
		pod := resources.MemberPod{Cluster: c, Member: m.Name, Zone: m.Zone, Version: m.PodVersionOr(c.Spec.Version),
			InitialCluster: resources.InitialCluster(map[string]string{m.Name: resources.PeerURL(m.Name, c.Name, c.Namespace)}),
			Voter:          true, ForceNewCluster: true}.Pod()
		return r.createOwned(ctx, c, pod)
	case p.Reason == "QuorumLoss" && forced && alone && m.Healthy:
		// Restarting without the flag: a later restart must not force again.
		p.Reason = "QuorumLossRecovered"
		if err := r.persist(ctx, s); err != nil {
			return err
		}
		return ctrl.IgnoreNotFound(r.Delete(ctx, m.Pod))
	case p.Reason == "QuorumLossRecovered" && m.Pod == nil:
		return r.createMemberPod(ctx, s, m.Name, m.Zone, m.PodVersionOr(c.Spec.Version), false)
	case p.Reason == "QuorumLossRecovered" && m.Pod != nil && forced:
		if m.Pod.DeletionTimestamp == nil {
			return ctrl.IgnoreNotFound(r.Delete(ctx, m.Pod))
		}
		return nil
	case p.Reason == "QuorumLossRecovered" && m.Healthy:
		r.event(c, corev1.EventTypeNormal, "QuorumRestored", fmt.Sprintf("cluster %s runs again from member %s; it grows back one learner at a time", c.Status.ClusterID, m.Name))
		c.Status.PendingChange = nil
	}
	return nil
}

// startChange records a change of a.member unless one is recorded already,
// and returns the member; nil when the member is gone, and the change with
// it.
func (r *EtcdClusterReconciler) startChange(ctx context.Context, s *scope, t quorumv1alpha1.ChangeType, a action, reason string) (*memberState, error) {
	c := s.cluster
	m := s.members[a.member]
	if m == nil {
		c.Status.PendingChange = nil
		return nil, nil
	}
	if p := c.Status.PendingChange; p == nil || p.Type != t {
		if err := r.record(ctx, s, t, a.member, a.zone, reason, etcd.FormatID(m.ID)); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// votersExcept lists the voters other than name.
func votersExcept(s *scope, name string) []*memberState {
	var out []*memberState
	for _, m := range s.voters() {
		if m.Name != name {
			out = append(out, m)
		}
	}
	return out
}

// PodVersionOr is the version the member's pod runs, or def without a pod.
func (m *memberState) PodVersionOr(def string) string {
	if m != nil && m.PodVersion != "" {
		return m.PodVersion
	}
	return def
}

func (r *EtcdClusterReconciler) event(c *quorumv1alpha1.EtcdCluster, kind, reason, msg string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(c, nil, kind, reason, reason, "%s", msg)
	}
}

// resetForRestore deletes every member after quorum was lost, keeping the
// cluster's Services and certificates (its identity for clients), and
// records the snapshot to rebuild from; the bootstrap then restores it.
func (r *EtcdClusterReconciler) resetForRestore(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	if p := c.Status.PendingChange; p == nil || p.Type != quorumv1alpha1.ChangeRestoreFromBackup {
		_, lostAt := quorumLostFor(s)
		t := metav1.NewTime(lostAt)
		c.Status.Restore = &quorumv1alpha1.RestoreStatus{Backup: a.zone, Snapshot: a.member, QuorumLostAt: &t}
		if err := r.record(ctx, s, quorumv1alpha1.ChangeRestoreFromBackup, "", "", "QuorumLoss", ""); err != nil {
			return err
		}
		r.event(c, corev1.EventTypeWarning, "RestoreFromBackup", a.message)
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
