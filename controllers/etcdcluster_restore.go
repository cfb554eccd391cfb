package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/backupjob"
	"quorum.dev/quorum/internal/placement"
	"quorum.dev/quorum/internal/resources"
)

// Restores. A cluster is built from a snapshot at creation
// (spec.bootstrap.restore) or after quorum loss (quorumLossPolicy
// RestoreFromBackup). Either way the snapshot is first fetched and verified
// by a pod of its own; nothing of the cluster is made from a snapshot that
// does not verify. Then the first member's pod restores it with etcdutl
// (revision bumped, marked compacted, as Kubernetes needs), the pod is
// recreated without the restore step, and learners grow the cluster back.

// restoreObservation is what a restore needs to know this pass.
type restoreObservation struct {
	backup   *quorumv1alpha1.EtcdBackup
	snapshot *quorumv1alpha1.Snapshot
	// verifyPod is the pod fetching and verifying the snapshot; result is
	// its result once it ended.
	verifyPod *corev1.Pod
	result    *backupjob.Result
	// zone is where the restored member must go when the snapshot is on a
	// volume bound to a node (the member's pod mounts it to fetch).
	zone string
}

const labelRestoreVerify = "quorum.dev/restore-verify"

// restoreWanted says whether the cluster is to be built from a snapshot.
func restoreWanted(c *quorumv1alpha1.EtcdCluster) bool {
	return c.Status.ClusterID == "" && ((c.Spec.Bootstrap != nil && c.Spec.Bootstrap.Restore != nil) || c.Status.Restore != nil)
}

// restoreVerified says whether the snapshot to restore has been verified.
func restoreVerified(c *quorumv1alpha1.EtcdCluster) bool {
	return c.Status.Restore != nil && c.Status.Restore.Verified
}

// observeRestore finds the backup and snapshot to restore, and the verify
// pod with its result.
func (r *EtcdClusterReconciler) observeRestore(ctx context.Context, s *scope) error {
	c := s.cluster
	o := &restoreObservation{}
	s.restore = o
	backupName, snapName := "", ""
	if c.Spec.Bootstrap != nil && c.Spec.Bootstrap.Restore != nil {
		backupName, snapName = c.Spec.Bootstrap.Restore.BackupRef.Name, c.Spec.Bootstrap.Restore.Snapshot
	}
	if rs := c.Status.Restore; rs != nil {
		backupName, snapName = rs.Backup, rs.Snapshot
	}
	b := &quorumv1alpha1.EtcdBackup{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: backupName}, b); err != nil {
		return client.IgnoreNotFound(err)
	}
	o.backup = b
	if v := b.Spec.Destination.Volume; v != nil {
		pvc := &corev1.PersistentVolumeClaim{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: v.ClaimName}, pvc); err == nil {
			if n, ok := s.nodes[pvc.Annotations["volume.kubernetes.io/selected-node"]]; ok {
				o.zone = n.Labels[quorumv1alpha1.LabelZone]
			}
		}
	}
	for i := range b.Status.Snapshots {
		sn := &b.Status.Snapshots[i]
		if snapName == "" || sn.Name == snapName {
			o.snapshot = sn
			break
		}
	}
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(c.Namespace), client.MatchingLabels{labelRestoreVerify: c.Name}); err != nil {
		return err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if !metav1.IsControlledBy(p, c) {
			continue
		}
		o.verifyPod = p
		if (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) && r.PodLogs != nil {
			logText, err := r.PodLogs(ctx, p.Namespace, p.Name)
			if err == nil {
				o.result, err = backupjob.ParseResult(logText)
			}
			if err != nil {
				o.result = &backupjob.Result{Reason: "VerificationFailed", Message: fmt.Sprintf("the verify pod ended %s without a readable result: %v", p.Status.Phase, err)}
			}
		}
	}
	return nil
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

// quorumLostFor is how long the stored QuorumLost condition has been true.
func quorumLostFor(s *scope) (time.Duration, time.Time) {
	cond := meta.FindStatusCondition(s.cluster.Status.Conditions, quorumv1alpha1.ConditionQuorumLost)
	if cond == nil || cond.Status != metav1.ConditionTrue {
		return 0, time.Time{}
	}
	return s.now.Sub(cond.LastTransitionTime.Time), cond.LastTransitionTime.Time
}

// newestSnapshotOf finds the newest snapshot of the cluster among the
// backups that name it.
func newestSnapshotOf(backups []quorumv1alpha1.EtcdBackup, cluster string) (*quorumv1alpha1.EtcdBackup, *quorumv1alpha1.Snapshot) {
	var bestB *quorumv1alpha1.EtcdBackup
	var best *quorumv1alpha1.Snapshot
	for i := range backups {
		b := &backups[i]
		if backedUpCluster(b) != cluster {
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

// verifyPod fetches and verifies the snapshot with the destination of its
// backup; it makes nothing else.
func (r *EtcdClusterReconciler) verifyPod(s *scope) *corev1.Pod {
	c, o := s.cluster, s.restore
	labels := map[string]string{labelRestoreVerify: c.Name, resources.LabelManagedBy: "quorum"}
	args := []string{"backup-job", "fetch", "--name=" + o.snapshot.Name, "--sha256=" + o.snapshot.SHA256, "--spool-dir=/tmp"}
	return BackupJobPod(r.Image, c.Namespace, c.Name+"-restore-verify", labels, "", o.backup.Spec.Destination, args)
}

// restoreSource is the first member's restore step: the init containers
// that fetch and verify the snapshot and restore it with etcdutl.
func (r *EtcdClusterReconciler) restoreSource(s *scope, member string) (*resources.RestoreSource, error) {
	c := s.cluster
	rs := c.Status.Restore
	b := &quorumv1alpha1.EtcdBackup{}
	if s.restore != nil && s.restore.backup != nil {
		b = s.restore.backup
	} else {
		return nil, fmt.Errorf("the EtcdBackup %s of the restore is gone", rs.Backup)
	}
	args := []string{"backup-job", "fetch", "--name=" + rs.Snapshot, "--sha256=" + rs.SHA256, "--out=/var/lib/etcd/restore/snapshot.db", "--spool-dir=/tmp"}
	fetch := BackupJobPod(r.Image, c.Namespace, member, nil, "", b.Spec.Destination, args)
	return &resources.RestoreSource{Fetch: fetch.Spec.Containers[0], Volumes: fetch.Spec.Volumes}, nil
}
