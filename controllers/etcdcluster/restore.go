package etcdcluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/backupjob"
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
func (r *Reconciler) observeRestore(ctx context.Context, s *scope) error {
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

// verifyPod fetches and verifies the snapshot with the destination of its
// backup; it makes nothing else.
func (r *Reconciler) verifyPod(s *scope) *corev1.Pod {
	c, o := s.cluster, s.restore
	labels := map[string]string{labelRestoreVerify: c.Name, resources.LabelManagedBy: "quorum"}
	args := []string{"backup-job", "fetch", "--name=" + o.snapshot.Name, "--sha256=" + o.snapshot.SHA256, "--spool-dir=/tmp"}
	return backupjob.Pod(backupjob.PodSpec{Image: r.Image, Namespace: c.Namespace, Name: c.Name + "-restore-verify", Labels: labels,
		Destination: o.backup.Spec.Destination, Args: args, Resources: o.backup.Spec.Resources, Spool: restoreSpool(c, o.snapshot.SizeBytes)})
}

// restoreSource is the first member's restore step: the init containers
// that fetch and verify the snapshot and restore it with etcdutl.
func (r *Reconciler) restoreSource(s *scope, member string) (*resources.RestoreSource, error) {
	c := s.cluster
	rs := c.Status.Restore
	b := &quorumv1alpha1.EtcdBackup{}
	if s.restore != nil && s.restore.backup != nil {
		b = s.restore.backup
	} else {
		return nil, fmt.Errorf("the EtcdBackup %s of the restore is gone", rs.Backup)
	}
	args := []string{"backup-job", "fetch", "--name=" + rs.Snapshot, "--sha256=" + rs.SHA256, "--out=/var/lib/etcd/restore/snapshot.db", "--spool-dir=/tmp"}
	fetch := backupjob.Pod(backupjob.PodSpec{Image: r.Image, Namespace: c.Namespace, Name: member,
		Destination: b.Spec.Destination, Args: args, Resources: b.Spec.Resources, Spool: restoreSpool(c, snapshotSize(b, rs.Snapshot))})
	return &resources.RestoreSource{Fetch: fetch.Spec.Containers[0], Volumes: fetch.Spec.Volumes}, nil
}

// recordVerified records the verified snapshot the cluster is built from,
// then deletes the verify pod.
func (r *Reconciler) recordVerified(ctx context.Context, s *scope) error {
	c, o := s.cluster, s.restore
	rs := &quorumv1alpha1.RestoreStatus{Backup: o.backup.Name, Snapshot: o.snapshot.Name, Location: o.snapshot.Location,
		Revision: o.snapshot.Revision, SHA256: o.snapshot.SHA256, TakenAt: &o.snapshot.TakenAt, Verified: true}
	if old := c.Status.Restore; old != nil {
		rs.QuorumLostAt = old.QuorumLostAt
	}
	c.Status.Restore = rs
	if err := r.persist(ctx, s); err != nil {
		return err
	}
	r.Event(c, corev1.EventTypeNormal, "SnapshotVerified", fmt.Sprintf("snapshot %s (revision %d) fetched from %s and verified", rs.Snapshot, rs.Revision, rs.Location))
	return client.IgnoreNotFound(r.Delete(ctx, o.verifyPod))
}

// restoreSpool is the spool a restore pod needs: the snapshot's size (when
// known) or the cluster's quota, and a quarter more.
func restoreSpool(c *quorumv1alpha1.EtcdCluster, snapshotBytes int64) resource.Quantity {
	q := backupjob.SpoolLimit(c)
	if n := snapshotBytes + snapshotBytes/4; n > q.Value() {
		return *resource.NewQuantity(n, resource.BinarySI)
	}
	return q
}

// snapshotSize is the size b lists for its snapshot name; 0 if unlisted.
func snapshotSize(b *quorumv1alpha1.EtcdBackup, name string) int64 {
	for _, sn := range b.Status.Snapshots {
		if sn.Name == name {
			return sn.SizeBytes
		}
	}
	return 0
}
