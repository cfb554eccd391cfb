package etcdbackup

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/backupjob"
	"quorum.dev/quorum/internal/reconciler"
)

// collect reads a finished backup pod's result into the status; the
// caller deletes the pod once the status is stored. A result the status
// already holds (the pod was collected before, and the operator stopped
// before deleting it) changes nothing and raises no second event.
func (r *Reconciler) collect(ctx context.Context, b *quorumv1alpha1.EtcdBackup, st *quorumv1alpha1.EtcdBackupStatus, p *corev1.Pod) {
	if p.DeletionTimestamp != nil {
		return
	}
	logText, err := r.PodLogs(ctx, p.Namespace, p.Name)
	if apierrors.IsNotFound(err) {
		// The cache still lists a pod an earlier pass collected and
		// deleted: its result is already in the status.
		return
	}
	var res *backupjob.Result
	if err == nil {
		res, err = backupjob.ParseResult(logText)
	}
	switch {
	case err != nil:
		r.fail(b, st, "SnapshotFailed", fmt.Sprintf("backup pod %s ended %s without a readable result: %v", p.Name, p.Status.Phase, err))
	case !res.OK && failedWith(st, res):
	case !res.OK:
		r.fail(b, st, res.Reason, res.Message)
	case holds(st, res):
	default:
		r.succeed(b, st, res)
		backupDuration.WithLabelValues(b.Namespace, b.Name).Observe(time.Since(p.CreationTimestamp.Time).Seconds())
	}
}

// holds says whether the status already has res's snapshot as the last
// success.
func holds(st *quorumv1alpha1.EtcdBackupStatus, res *backupjob.Result) bool {
	if st.LastSuccessfulTime == nil || !st.LastSuccessfulTime.Time.Equal(metav1.NewTime(res.Snapshot.TakenAt).Rfc3339Copy().Time) {
		return false
	}
	for _, s := range st.Snapshots {
		if s.Name == res.Snapshot.Name {
			return true
		}
	}
	return false
}

// failedWith says whether the status's last run already failed with res:
// the same pod collected again (each run's message names its snapshot or
// its cause at a time, so two runs rarely match; when they do, one event
// fewer is the cost).
func failedWith(st *quorumv1alpha1.EtcdBackupStatus, res *backupjob.Result) bool {
	c := meta.FindStatusCondition(st.Conditions, quorumv1alpha1.ConditionLastBackupSucceeded)
	return c != nil && c.Status == metav1.ConditionFalse && c.Reason == res.Reason && c.Message == res.Message
}

func (r *Reconciler) succeed(b *quorumv1alpha1.EtcdBackup, st *quorumv1alpha1.EtcdBackupStatus, res *backupjob.Result) {
	s := res.Snapshot
	t := metav1.NewTime(s.TakenAt)
	st.LastSuccessfulTime = &t
	st.Snapshots = nil
	for _, m := range res.Snapshots {
		st.Snapshots = append(st.Snapshots, quorumv1alpha1.Snapshot{
			Name: m.Name, TakenAt: metav1.NewTime(m.TakenAt), Revision: m.Revision,
			SizeBytes: m.SizeBytes, SHA256: m.SHA256, Location: m.Location,
		})
	}
	sort.SliceStable(st.Snapshots, func(i, j int) bool { return st.Snapshots[i].TakenAt.After(st.Snapshots[j].TakenAt.Time) })
	st.SnapshotCount = int32(res.Total)
	msg := fmt.Sprintf("snapshot %s at revision %d (%d bytes, sha256 %s) verified and written to %s", s.Name, s.Revision, s.SizeBytes, s.SHA256[:12], s.Location)
	reconciler.SetCondition(&st.Conditions, b.Generation, quorumv1alpha1.ConditionLastBackupSucceeded, true, "SnapshotVerified", msg)
	r.Event(b, corev1.EventTypeNormal, "SnapshotTaken", msg)
	if len(res.Deleted) > 0 {
		r.Event(b, corev1.EventTypeNormal, "SnapshotsDeleted", fmt.Sprintf("retention (keepLast %d) deleted %s", b.Spec.Retention.KeepLast, strings.Join(res.Deleted, ", ")))
	}
	backupSize.WithLabelValues(b.Namespace, b.Name).Set(float64(s.SizeBytes))
	backupLastSuccess.WithLabelValues(b.Namespace, b.Name).Set(float64(s.TakenAt.Unix()))
}

func (r *Reconciler) fail(b *quorumv1alpha1.EtcdBackup, st *quorumv1alpha1.EtcdBackupStatus, reason, msg string) {
	if reason == "" {
		reason = "SnapshotFailed"
	}

	reconciler.SetCondition(&st.Conditions, b.Generation, quorumv1alpha1.ConditionLastBackupSucceeded, false, reason, msg)
	r.Event(b, corev1.EventTypeWarning, reason, msg)
	backupFailures.WithLabelValues(b.Namespace, b.Name, reason).Inc()
}
