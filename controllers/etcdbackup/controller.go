// Package etcdbackup is the EtcdBackup reconciler: it takes snapshots,
// once or on a schedule (schedule.go), in backup pods that run the manager
// image, and records what they verified (status.go).
package etcdbackup

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/backupjob"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
	"quorum.dev/quorum/internal/schedule"
)

// Reconciler takes snapshots, once or on a schedule, in backup pods that
// run the manager image, and records what they verified.
type Reconciler struct {
	reconciler.Base
	// Image is the image backup pods run (the manager's own).
	Image string
	// PodLogs reads a finished backup pod's log, where its result is.
	PodLogs func(ctx context.Context, namespace, pod string) (string, error)
}

// Labels of backup pods.
const (
	labelBackup    = "quorum.dev/backup"
	labelBackupRun = "quorum.dev/backup-run"
	// labelBackupOf names the EtcdCluster a backup pod snapshots. Backup
	// pods never carry the cluster's own label: its Services select by it,
	// and clients would be sent to a pod that serves no etcd.
	labelBackupOf = "quorum.dev/backup-of"
)

// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get

// Reconcile collects finished runs, starts the run that is due, and writes
// the status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	b := &quorumv1alpha1.EtcdBackup{}
	if err := r.Get(ctx, req.NamespacedName, b); err != nil {
		if apierrors.IsNotFound(err) {
			forgetMetrics(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !b.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	persisted := b.Status.DeepCopy()
	st := b.Status.DeepCopy()
	st.ObservedGeneration = b.Generation
	now := r.Clock()
	var collected []*corev1.Pod
	result, err := r.reconcile(ctx, b, st, now, &collected)
	if err != nil {
		return ctrl.Result{}, err
	}
	reconciler.SetReadiness(&st.Conditions, b.Generation, readiness(b, st))
	updateMetrics(b, st, now)
	if err := reconciler.WriteStatus(ctx, r.Client, b, persisted, *st, func(st quorumv1alpha1.EtcdBackupStatus) { b.Status = st }); err != nil {
		return ctrl.Result{}, err
	}
	// A finished pod goes only once its result is in the stored status: an
	// operator killed in between finds the pod again and collects it again
	// (collect is idempotent), instead of losing the result.
	for _, p := range collected {
		if err := r.Delete(ctx, p); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, err
		}
	}
	return result, nil
}

func (r *Reconciler) reconcile(ctx context.Context, b *quorumv1alpha1.EtcdBackup, st *quorumv1alpha1.EtcdBackupStatus, now time.Time, collected *[]*corev1.Pod) (ctrl.Result, error) {
	if reconciler.Paused(b) {
		// No run starts and no pod is collected or deleted; a run already
		// going finishes on its own and is collected once unpaused.
		reconciler.SetCondition(&st.Conditions, b.Generation, quorumv1alpha1.ConditionReady, false, reconciler.ReasonPaused,
			reconciler.AnnotationPaused+` is "true": no snapshot is taken`)
		st.NextScheduleTime = nil
		return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
	}
	// Finished runs first: their result is the news.
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(b.Namespace), client.MatchingLabels{labelBackup: b.Name}); err != nil {
		return ctrl.Result{}, err
	}
	running := false
	for i := range pods.Items {
		p := &pods.Items[i]
		switch {
		case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
			r.collect(ctx, b, st, p)
			if p.DeletionTimestamp == nil {
				*collected = append(*collected, p)
			}
		case now.Sub(p.CreationTimestamp.Time) > backupjob.PodDeadline:
			r.fail(b, st, "SnapshotFailed", fmt.Sprintf("backup pod %s ran longer than %s and was stopped", p.Name, backupjob.PodDeadline))
			if err := r.Delete(ctx, p); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, err
			}
		default:
			running = true
		}
	}

	// What the backup refers to must exist; a missing one is a condition,
	// never a crash, and nothing is deleted.
	target, reason, msg := r.target(ctx, b)
	if target == nil {
		reconciler.SetCondition(&st.Conditions, b.Generation, quorumv1alpha1.ConditionReady, false, reason, msg)
		return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
	}
	if reason, msg := r.checkDestination(ctx, b); reason != "" {
		reconciler.SetCondition(&st.Conditions, b.Generation, quorumv1alpha1.ConditionReady, false, reason, msg)
		return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
	}
	if c := meta.FindStatusCondition(st.Conditions, quorumv1alpha1.ConditionLastBackupSucceeded); c != nil &&
		c.Status == metav1.ConditionFalse && c.Reason == "CredentialsInvalid" && c.ObservedGeneration == b.Generation {
		reconciler.SetCondition(&st.Conditions, b.Generation, quorumv1alpha1.ConditionReady, false, c.Reason, c.Message)
	} else {
		reconciler.SetCondition(&st.Conditions, b.Generation, quorumv1alpha1.ConditionReady, true, "Ready",
			fmt.Sprintf("backing up EtcdCluster %s to %s", target.Name, destinationString(b)))
	}
	if running {
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}

	// Is a run due?
	due, dueAt, next, requeue := false, now, (*metav1.Time)(nil), time.Duration(0)
	if b.Spec.Schedule == "" {
		due = st.LastScheduleTime == nil
	} else {
		sched, loc, err := schedule.Parse(b.Spec.Schedule, ptr.Deref(b.Spec.TimeZone, ""))
		if err != nil {
			reconciler.SetCondition(&st.Conditions, b.Generation, quorumv1alpha1.ConditionReady, false, "InvalidSchedule", err.Error())
			return ctrl.Result{}, nil
		}
		last := b.CreationTimestamp.Time
		if st.LastScheduleTime != nil {
			last = st.LastScheduleTime.Time
		}
		var deadline time.Duration
		if b.Spec.StartingDeadline != nil {
			deadline = b.Spec.StartingDeadline.Duration
		}
		d := schedule.Decide(sched, loc, last, now, deadline)
		nt := metav1.NewTime(d.Next)
		next, requeue = &nt, d.Next.Sub(now)
		if !d.ScheduledAt.IsZero() {
			if d.Missed > 0 {
				r.Event(b, corev1.EventTypeWarning, "MissedRuns", fmt.Sprintf("%d scheduled runs were missed while the operator was down or a run was going; at most one catch-up run is taken", d.Missed))
			}
			if d.Run && !b.Spec.Suspend {
				due, dueAt = true, d.ScheduledAt
			} else {
				// Skipped (too late, or suspended): remember it so it is
				// not considered again.
				t := metav1.NewTime(d.ScheduledAt)
				st.LastScheduleTime = &t
			}
		}
	}
	st.NextScheduleTime = next
	if b.Spec.Suspend {
		st.NextScheduleTime = nil
	}
	if !due {
		if requeue > 0 {
			return ctrl.Result{RequeueAfter: requeue + time.Second}, nil
		}
		return ctrl.Result{}, nil
	}

	// Never two snapshots of one cluster at once, whichever backup asks.
	others := &corev1.PodList{}
	if err := r.List(ctx, others, client.InNamespace(b.Namespace), client.MatchingLabels{labelBackupOf: target.Name}, client.HasLabels{labelBackup}); err != nil {
		return ctrl.Result{}, err
	}
	for _, p := range others.Items {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			r.Event(b, corev1.EventTypeNormal, "Waiting", fmt.Sprintf("backup pod %s of the same cluster is still running", p.Name))
			return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
		}
	}
	if !meta.IsStatusConditionTrue(target.Status.Conditions, quorumv1alpha1.ConditionAvailable) {
		r.fail(b, st, "ClusterUnhealthy", fmt.Sprintf("EtcdCluster %s is not Available: no snapshot taken", target.Name))
		if b.Spec.Schedule == "" {
			// A one-shot backup retries until the cluster is back.
			st.LastScheduleTime = nil
			return ctrl.Result{RequeueAfter: 15 * time.Second}, nil
		}
		t := metav1.NewTime(dueAt)
		st.LastScheduleTime = &t
		return ctrl.Result{RequeueAfter: requeue + time.Second}, nil
	}
	pod, err := r.backupPod(b, target, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.CreateOwned(ctx, b, pod); err != nil {
		return ctrl.Result{}, err
	}
	t := metav1.NewTime(dueAt)
	st.LastScheduleTime = &t
	logf.FromContext(ctx).Info("backup started", "pod", pod.Name, "cluster", target.Name)
	return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
}

// readiness turns what reconcile found into Ready, Reconciling and
// Stalled: a backup whose cluster, destination, credentials or schedule is
// wrong, or that is paused, is stalled; a one-shot backup is ready once its
// snapshot verified (reconciling until then, stalled if it failed for good);
// a scheduled one is ready while its last run, if any, succeeded, and
// reconciling toward its next run after a failure.
func readiness(b *quorumv1alpha1.EtcdBackup, st *quorumv1alpha1.EtcdBackupStatus) reconciler.Readiness {
	cfg := meta.FindStatusCondition(st.Conditions, quorumv1alpha1.ConditionReady)
	if cfg != nil && cfg.Status != metav1.ConditionTrue && cfg.Reason != "Ready" && cfg.Reason != "SnapshotVerified" && cfg.Reason != "Scheduled" &&
		cfg.Reason != "Running" && cfg.Reason != "NextRun" {
		return reconciler.Readiness{Stalled: true, Reason: cfg.Reason, Message: cfg.Message}
	}
	last := meta.FindStatusCondition(st.Conditions, quorumv1alpha1.ConditionLastBackupSucceeded)
	if b.Spec.Schedule == "" {
		switch {
		case last != nil && last.Status == metav1.ConditionTrue:
			return reconciler.Readiness{Ready: true, Reason: "SnapshotVerified", Message: last.Message}
		case last != nil && st.LastScheduleTime != nil:
			return reconciler.Readiness{Stalled: true, Reason: last.Reason, Message: last.Message + "; a one-shot backup does not run again: delete and recreate it"}
		case last != nil:
			return reconciler.Readiness{Reason: last.Reason, Message: last.Message + "; retried until the cluster is Available"}
		}
		return reconciler.Readiness{Reason: "Running", Message: "the snapshot is being taken"}
	}
	if last != nil && last.Status == metav1.ConditionFalse {
		msg := last.Message
		if st.NextScheduleTime != nil {
			msg += "; the next run is at " + st.NextScheduleTime.UTC().Format(time.RFC3339)
		}
		return reconciler.Readiness{Reason: "NextRun", Message: msg}
	}
	msg := "on schedule " + b.Spec.Schedule
	if cfg != nil && cfg.Message != "" {
		msg = cfg.Message + ", " + msg
	}
	return reconciler.Readiness{Ready: true, Reason: "Scheduled", Message: msg}
}

// target finds the EtcdCluster to back up: the one named, or the stacked
// EtcdCluster of the ControlPlane named.
func (r *Reconciler) target(ctx context.Context, b *quorumv1alpha1.EtcdBackup) (*quorumv1alpha1.EtcdCluster, string, string) {
	if ref := b.Spec.ControlPlaneRef; ref != nil {
		cp := &quorumv1alpha1.ControlPlane{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: ref.Name}, cp); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, "ControlPlaneNotFound", fmt.Sprintf("ControlPlane %s does not exist in namespace %s", ref.Name, b.Namespace)
			}
			return nil, "ControlPlaneNotFound", err.Error()
		}
		switch {
		case cp.Spec.Etcd.ClusterRef != nil:
			return nil, "ControlPlaneNotStacked", fmt.Sprintf("ControlPlane %s keeps its state in EtcdCluster %s: back up that EtcdCluster with etcdClusterRef", ref.Name, cp.Spec.Etcd.ClusterRef.Name)
		case cp.Spec.Etcd.External != nil:
			return nil, "ControlPlaneNotStacked", fmt.Sprintf("ControlPlane %s uses an external etcd, which Quorum does not run or back up", ref.Name)
		}
	}
	name := resources.BackedUpCluster(b)
	c := &quorumv1alpha1.EtcdCluster{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: name}, c); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "ClusterNotFound", fmt.Sprintf("EtcdCluster %s does not exist in namespace %s", name, b.Namespace)
		}
		return nil, "ClusterNotFound", err.Error()
	}
	return c, "", ""
}

// checkDestination checks what can be checked without the store: the claim
// and the Secrets exist. Whether the store accepts the credentials is the
// backup pod's to find out.
func (r *Reconciler) checkDestination(ctx context.Context, b *quorumv1alpha1.EtcdBackup) (string, string) {
	d := b.Spec.Destination
	if d.Volume != nil {
		if err := r.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: d.Volume.ClaimName}, &corev1.PersistentVolumeClaim{}); err != nil {
			return "DestinationUnreachable", fmt.Sprintf("PersistentVolumeClaim %s: %v", d.Volume.ClaimName, err)
		}
		return "", ""
	}
	s := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: d.S3.CredentialsSecretRef.Name}, s); err != nil {
		return "CredentialsInvalid", fmt.Sprintf("credentials Secret %s: %v", d.S3.CredentialsSecretRef.Name, err)
	}
	if len(s.Data["accessKeyID"]) == 0 || len(s.Data["secretAccessKey"]) == 0 {
		return "CredentialsInvalid", fmt.Sprintf("credentials Secret %s needs the keys accessKeyID and secretAccessKey", s.Name)
	}
	return "", ""
}

func destinationString(b *quorumv1alpha1.EtcdBackup) string {
	if v := b.Spec.Destination.Volume; v != nil {
		return "pvc://" + path.Join(v.ClaimName, v.Path)
	}
	s := b.Spec.Destination.S3
	return "s3://" + path.Join(s.Bucket, s.Prefix) + " at " + s.Endpoint
}

// backupPod is the pod that takes one snapshot: the manager image running
// `backup-job snapshot`, with the cluster's client certificate, the
// destination, and a bounded memory limit.
func (r *Reconciler) backupPod(b *quorumv1alpha1.EtcdBackup, c *quorumv1alpha1.EtcdCluster, now time.Time) (*corev1.Pod, error) {
	var endpoints []string
	for _, m := range c.Status.Members {
		if m.Role != quorumv1alpha1.RoleLearner {
			endpoints = append(endpoints, m.ClientURL)
		}
	}
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("EtcdCluster %s lists no member", c.Name)
	}
	keep := b.Spec.Retention.KeepLast
	if keep < 1 {
		keep = 10
	}
	args := []string{"backup-job", "snapshot", "--namespace=" + c.Namespace, "--cluster=" + c.Name, "--endpoints=" + strings.Join(endpoints, ","),
		"--keep-last=" + strconv.Itoa(int(keep)), "--tls-dir=/etc/quorum/etcd-client"}
	run := strconv.FormatInt(now.Unix(), 10)
	labels := map[string]string{labelBackup: b.Name, labelBackupRun: run, labelBackupOf: c.Name, resources.LabelManagedBy: "quorum"}
	pod := backupjob.Pod(backupjob.PodSpec{Image: r.Image, Namespace: b.Namespace, Name: b.Name + "-" + run, Labels: labels,
		EtcdClientSecret: resources.ClientSecretOf(c), Destination: b.Spec.Destination, Args: args,
		Resources: b.Spec.Resources, Spool: backupjob.SpoolLimit(c)})
	return pod, nil
}

// SetupWithManager watches backups and their pods.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&quorumv1alpha1.EtcdBackup{}).
		Owns(&corev1.Pod{}).
		Named("etcdbackup").
		Complete(r)
}
