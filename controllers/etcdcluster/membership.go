package etcdcluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/placement"
	"quorum.dev/quorum/internal/resources"
)

// Membership steps: every change is recorded in status.pendingChange
// before etcd is asked (record), so a restarted operator finishes it.

// etcdTimeout bounds every etcd call a step makes.
const etcdTimeout = 10 * time.Second

// record writes the intent of a membership change to status before it is
// carried out. A conflict means someone else wrote first: the pass ends and
// the next one decides again from fresh state.
func (r *Reconciler) record(ctx context.Context, s *scope, p quorumv1alpha1.MembershipChange) error {
	p.StartedAt = metav1.NewTime(r.Clock())
	s.cluster.Status.PendingChange = &p
	return r.persist(ctx, s)
}

// persist writes c.Status as it is now and remembers it as stored.
func (r *Reconciler) persist(ctx context.Context, s *scope) error {
	if err := r.Status().Update(ctx, s.cluster); err != nil {
		return err
	}
	*s.persisted = *s.cluster.Status.DeepCopy()
	return nil
}

// startChange records a change of a.member unless one is recorded already,
// and returns the member; nil when the member is gone, and the change with
// it.
func (r *Reconciler) startChange(ctx context.Context, s *scope, t quorumv1alpha1.ChangeType, a action, reason string) (*memberState, error) {
	c := s.cluster
	m := s.members[a.member]
	if m == nil {
		c.Status.PendingChange = nil
		return nil, nil
	}
	if p := c.Status.PendingChange; p == nil || p.Type != t {
		if err := r.record(ctx, s, quorumv1alpha1.MembershipChange{Type: t, Member: a.member, Zone: a.zone, Reason: reason, ID: etcd.FormatID(m.ID),
			Version: a.version, FromVersion: a.fromVersion}); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// newMemberName names a new member: the cluster's name and a random suffix,
// never reused, so a replacement is a new member and never mistaken for the
// one it replaces.
func newMemberName(c *quorumv1alpha1.EtcdCluster) string {
	return c.Name + "-" + utilrand.String(5)
}

// addLearner records the add (unless recorded) and adds the learner to
// etcd; its pod is started by the next step.
func (r *Reconciler) addLearner(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	name := a.member
	if c.Status.PendingChange == nil {
		name = newMemberName(c)
		if err := r.record(ctx, s, quorumv1alpha1.MembershipChange{Type: quorumv1alpha1.ChangeAddMember, Member: name, Zone: a.zone, Reason: a.reason}); err != nil {
			return err
		}
	}
	actx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	added, _, err := s.etcd.AddLearner(actx, resources.PeerURL(name, c.Name, c.Namespace))
	if err != nil {
		return fmt.Errorf("adding learner %s: %w", name, err)
	}
	c.Status.PendingChange.ID = etcd.FormatID(added.ID)
	membershipChanges.WithLabelValues(c.Namespace, c.Name, "add_learner").Inc()
	r.Event(c, corev1.EventTypeNormal, "LearnerAdded", fmt.Sprintf("added learner %s (%s) in zone %s: %s", name, etcd.FormatID(added.ID), zoneName(a.zone), a.reason))
	return nil
}

// promote makes the learner a voter.
func (r *Reconciler) promote(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	pctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	if err := s.etcd.Promote(pctx, s.members[a.member].ID); err != nil {
		if errors.Is(err, etcd.ErrLearnerNotReady) {
			// etcd refuses to promote a learner that is not in sync:
			// retry, don't fail.
			return nil
		}
		return fmt.Errorf("promoting %s: %w", a.member, err)
	}
	membershipChanges.WithLabelValues(c.Namespace, c.Name, "promote").Inc()
	r.Event(c, corev1.EventTypeNormal, "MemberPromoted", fmt.Sprintf("promoted learner %s to voter", a.member))
	return nil
}

// finishAdd ends an add once the member votes: its pod is labelled a
// voter, a bootstrap or restore records the cluster ID, and the change is
// cleared.
func (r *Reconciler) finishAdd(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	if err := r.labelVoter(ctx, s.members[a.member]); err != nil {
		return err
	}
	switch a.reason {
	case "Bootstrap":
		c.Status.ClusterID = etcd.FormatID(s.clusterID)
		r.Event(c, corev1.EventTypeNormal, "Bootstrapped", fmt.Sprintf("cluster %s bootstrapped with member %s", c.Status.ClusterID, a.member))
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
		r.Event(c, corev1.EventTypeNormal, "Restored", msg)
		// The member's pod restored the snapshot in its init containers;
		// it is recreated without them, so a restart never restores again.
		c.Status.PendingChange = &quorumv1alpha1.MembershipChange{Type: quorumv1alpha1.ChangeRestartMember, Member: a.member,
			Zone: s.members[a.member].Zone, Reason: "RestoreDone", StartedAt: metav1.NewTime(s.now)}
		return nil
	case "Replace":
		replacements.WithLabelValues(c.Namespace, c.Name).Inc()
	}
	c.Status.PendingChange = nil
	return nil
}

// moveLeader hands leadership from a.member to a.transferee, through the
// leader itself.
func (r *Reconciler) moveLeader(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	from, to := s.members[a.member], s.members[a.transferee]
	mctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	if err := s.etcd.MoveLeader(mctx, resources.ClientURL(from.Name, c.Name, c.Namespace), to.ID); err != nil {
		return fmt.Errorf("moving leadership from %s to %s: %w", from.Name, to.Name, err)
	}
	r.Event(c, corev1.EventTypeNormal, "LeaderMoved", a.message)
	return nil
}

// removeMember records the removal (unless recorded) and removes the
// member from etcd; its objects are cleaned up by the next step. The
// evidence is read again first: the membership through the leader (the
// member must be in it), and the member must not lead.
func (r *Reconciler) removeMember(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	m := s.members[a.member]
	present, err := r.confirmMembership(ctx, s, m)
	if err != nil {
		return err
	}
	if !present {
		// Already removed (by an earlier pass, or by hand): the cleanup
		// step deletes its objects.
		return nil
	}
	if m.ID == s.leaderID {
		return fmt.Errorf("refusing to remove %s: it leads; leadership is moved first", m.Name)
	}
	if c.Status.PendingChange == nil {
		replaceZone := ""
		if a.reason == "Replace" {
			replaceZone = m.Zone
		}
		if err := r.record(ctx, s, quorumv1alpha1.MembershipChange{Type: quorumv1alpha1.ChangeRemoveMember, Member: m.Name, Zone: m.Zone,
			Reason: a.reason, ID: etcd.FormatID(m.ID), ReplaceZone: replaceZone}); err != nil {
			return err
		}
	}
	rctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	if err := s.etcd.Remove(rctx, m.ID); err != nil {
		// A member applying its own removal stops, and the answer to a
		// request it served can be lost: what counts is the membership.
		if present, cerr := r.confirmMembership(ctx, s, m); cerr != nil || present {
			return fmt.Errorf("removing member %s: %w", m.Name, err)
		}
	}
	membershipChanges.WithLabelValues(c.Namespace, c.Name, "remove").Inc()
	r.Event(c, corev1.EventTypeNormal, "MemberRemoved", fmt.Sprintf("removed member %s (%s): %s", m.Name, etcd.FormatID(m.ID), a.message))
	return nil
}

// confirmMembership reads the membership through the leader at the moment
// a destructive step acts, and says whether m (by ID, or by name for a
// member etcd has not named yet) is in it. Any failure to read it refuses
// the step: the operator's trouble is never evidence.
func (r *Reconciler) confirmMembership(ctx context.Context, s *scope, m *memberState) (bool, error) {
	if s.etcd == nil {
		return false, fmt.Errorf("refusing to change the membership: no connection to etcd")
	}
	lctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	members, _, err := s.etcd.MemberList(lctx, true)
	if err != nil {
		return false, fmt.Errorf("refusing to change the membership: it cannot be read through the leader: %w", err)
	}
	for _, em := range members {
		if (m.ID != 0 && em.ID == m.ID) || memberName(em) == m.Name {
			return true, nil
		}
	}
	return false, nil
}

// cleanupMember deletes a removed member's objects; a replacement is then
// recorded at once, so the zone is repaired before any other change.
func (r *Reconciler) cleanupMember(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	if err := r.confirmGone(ctx, s, a.member); err != nil {
		return err
	}
	done, err := r.deleteMemberObjects(ctx, s, a.member)
	if err != nil || !done {
		return err
	}
	p := c.Status.PendingChange
	c.Status.PendingChange = nil
	if p != nil && p.Reason == "Replace" {
		zone, ok := placement.ZoneForNewMember(c.Spec.Zones, s.readyZones, placementMembers(s.votersExcept(a.member)), p.ReplaceZone)
		if ok {
			c.Status.PendingChange = &quorumv1alpha1.MembershipChange{
				Type: quorumv1alpha1.ChangeAddMember, Member: newMemberName(c), Zone: zone, Reason: "Replace", StartedAt: metav1.NewTime(s.now),
			}
		}
	}
	return nil
}

// confirmGone re-reads the membership through the leader and refuses to go
// on unless the member is not in it: a volume is deleted only for a member
// etcd itself no longer lists.
func (r *Reconciler) confirmGone(ctx context.Context, s *scope, name string) error {
	m := s.members[name]
	if m == nil {
		m = &memberState{Name: name}
	}
	present, err := r.confirmMembership(ctx, s, m)
	if err != nil {
		return err
	}
	if present {
		return fmt.Errorf("refusing to delete the objects of %s: etcd still lists it as a member", name)
	}
	return nil
}

// deleteOrphan deletes the objects of a member etcd does not list, once
// that is confirmed through the leader.
func (r *Reconciler) deleteOrphan(ctx context.Context, s *scope, a action) error {
	if err := r.confirmGone(ctx, s, a.member); err != nil {
		return err
	}
	if _, err := r.deleteMemberObjects(ctx, s, a.member); err != nil {
		return err
	}
	r.Event(s.cluster, corev1.EventTypeNormal, "OrphanDeleted", a.message)
	return nil
}

// abandonAdd undoes an add that did not finish in time: the learner is
// removed from etcd (a learner does not vote, so quorum is untouched), its
// objects deleted and the change dropped, so that repairs go on.
func (r *Reconciler) abandonAdd(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	m := s.members[a.member]
	present, err := r.confirmMembership(ctx, s, m)
	if err != nil {
		return err
	}
	if present {
		if !m.Learner {
			return fmt.Errorf("refusing to abandon the add of %s: it votes now", m.Name)
		}
		rctx, cancel := context.WithTimeout(ctx, etcdTimeout)
		defer cancel()
		if err := s.etcd.Remove(rctx, m.ID); err != nil {
			return fmt.Errorf("removing learner %s: %w", m.Name, err)
		}
		membershipChanges.WithLabelValues(c.Namespace, c.Name, "remove").Inc()
	}
	done, err := r.deleteMemberObjects(ctx, s, a.member)
	if err != nil || !done {
		return err
	}
	changeTimeouts.WithLabelValues(c.Namespace, c.Name, "add").Inc()
	r.Event(c, corev1.EventTypeWarning, a.reason, a.message)
	c.Status.PendingChange = nil
	return nil
}

// cancelChange drops a recorded change that must not go on, saying why.
func (r *Reconciler) cancelChange(s *scope, a action) error {
	switch a.reason {
	case "RestartTimedOut":
		changeTimeouts.WithLabelValues(s.cluster.Namespace, s.cluster.Name, "restart").Inc()
	case "MemberStartTimedOut":
		changeTimeouts.WithLabelValues(s.cluster.Namespace, s.cluster.Name, "add").Inc()
	}
	r.Event(s.cluster, corev1.EventTypeWarning, a.reason, a.message)
	s.cluster.Status.PendingChange = nil
	return nil
}

// deleteFailedPod deletes a member's failed pod; the member comes back
// from its volume with the same identity.
func (r *Reconciler) deleteFailedPod(ctx context.Context, s *scope, a action) error {
	m := s.members[a.member]
	if err := r.Delete(ctx, m.Pod, client.Preconditions{UID: &m.Pod.UID}); client.IgnoreNotFound(err) != nil {
		return err
	}
	r.Event(s.cluster, corev1.EventTypeNormal, "FailedPodDeleted", a.message)
	return nil
}

// recreatePod brings back the pod of a member whose data is intact.
func (r *Reconciler) recreatePod(ctx context.Context, s *scope, a action) error {
	m := s.members[a.member]
	// The pod's deletion and its volume's can reach the cache in either
	// order: a volume being deleted with its pod must not get a new pod
	// (it would hold the volume in Terminating and run a member whose
	// data goes at its next restart). The API server says.
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	pvc := &corev1.PersistentVolumeClaim{}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: s.cluster.Namespace, Name: resources.PVCName(a.member)}, pvc); err != nil {
		return client.IgnoreNotFound(err)
	}
	if pvc.DeletionTimestamp != nil {
		return nil
	}
	if err := r.createMemberPod(ctx, s, a.member, a.zone, m.PodVersionOr(knownVersion(s)), false); err != nil {
		return err
	}
	r.Event(s.cluster, corev1.EventTypeNormal, "PodRecreated", a.message)
	return nil
}

// startMember makes a recorded member's certificates, volume and pod.
func (r *Reconciler) startMember(ctx context.Context, s *scope, name, zone string) error {
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
	// A new member runs what the cluster is known to run, never a
	// spec.version no member has run yet (an upgrade moves members to it
	// one at a time, behind its preflight).
	return r.createMemberPod(ctx, s, name, zone, knownVersion(s), newCluster)
}

// createMemberPod creates a member's certificates, volume and pod, each
// only if missing.
func (r *Reconciler) createMemberPod(ctx context.Context, s *scope, name, zone, version string, newCluster bool) error {
	return r.createPod(ctx, s, name, zone, version, newCluster, nil)
}

func (r *Reconciler) createPod(ctx context.Context, s *scope, name, zone, version string, newCluster bool, restore *resources.RestoreSource) error {
	c := s.cluster
	if err := r.ensureMemberSecret(ctx, c, name); err != nil {
		return err
	}
	if c.Spec.Storage.EmptyDir == nil {
		if m := s.members[name]; m == nil || m.PVC == nil {
			if err := r.CreateOwned(ctx, c, resources.MemberPVC(c, name, zone)); err != nil {
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
	issued := ""
	if resources.AutoTLS(c) {
		secret := &corev1.Secret{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: resources.MemberSecretName(name)}, secret); err != nil {
			return err
		}
		issued = secret.Annotations[annotationIssuedAt]
	}
	pod := resources.MemberPod{
		Cluster: c, Member: name, Zone: zone, Version: version,
		InitialCluster: resources.InitialCluster(peers), NewCluster: newCluster, Voter: voter, Restore: restore,
		CertificatesIssuedAt: issued,
	}.Pod()
	if c.Labels[resources.LabelControlPlane] != "" {
		// A stacked control plane's member also runs that replica's
		// apiserver, controller-manager and scheduler.
		if err := r.decorateStacked(ctx, c, pod); err != nil {
			return err
		}
	}
	return r.CreateOwned(ctx, c, pod)
}

// labelVoter marks a voter's pod so the PodDisruptionBudget counts it.
func (r *Reconciler) labelVoter(ctx context.Context, m *memberState) error {
	if m == nil || m.Pod == nil || m.Pod.Labels[resources.LabelVoter] == "true" {
		return nil
	}
	patch := client.MergeFrom(m.Pod.DeepCopy())
	m.Pod.Labels[resources.LabelVoter] = "true"
	return r.Patch(ctx, m.Pod, patch)
}

// deleteMemberObjects deletes a member's pod, volume and certificates. A
// pod on a NotReady node is deleted without grace: the member is already out
// of the membership, so its process can no longer do harm. done is true once
// all are gone.
func (r *Reconciler) deleteMemberObjects(ctx context.Context, s *scope, name string) (bool, error) {
	c := s.cluster
	m := s.members[name]
	done := true
	if m != nil && m.Pod != nil {
		done = false
		opts := []client.DeleteOption{}
		if !m.NodeReady || m.Pod.DeletionTimestamp != nil {
			opts = append(opts, client.GracePeriodSeconds(0))
		}
		if err := r.Delete(ctx, m.Pod, opts...); client.IgnoreNotFound(err) != nil {
			return false, err
		}
	}
	if m != nil && m.PVC != nil {
		done = false
		if m.PVC.DeletionTimestamp == nil {
			if err := r.Delete(ctx, m.PVC); client.IgnoreNotFound(err) != nil {
				return false, err
			}
		}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: resources.MemberSecretName(name)}}
	if err := r.Delete(ctx, secret); client.IgnoreNotFound(err) != nil {
		return false, err
	}
	return done, nil
}

// resizeVolume asks a member's volume for spec.storage.size; the storage
// driver grows it online.
func (r *Reconciler) resizeVolume(ctx context.Context, s *scope, a action) error {
	pvc := s.members[a.member].PVC.DeepCopy()
	pvc.Spec.Resources.Requests[corev1.ResourceStorage] = *s.cluster.Spec.Storage.Size
	if err := r.Update(ctx, pvc); err != nil {
		return err
	}
	r.Event(s.cluster, corev1.EventTypeNormal, "VolumeResized", a.message)
	return nil
}
