package controllers

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/backupjob"
	"quorum.dev/quorum/internal/resources"
)

// EtcdBackupReconciler takes snapshots, once or on a schedule, in backup
// pods that run the manager image, and records what they verified.
type EtcdBackupReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	// Image is the image backup pods run (the manager's own).
	Image string
	// PodLogs reads a finished backup pod's log, where its result is.
	PodLogs func(ctx context.Context, namespace, pod string) (string, error)
	Now     func() time.Time
}

// Labels of backup pods.
const (
	labelBackup    = "quorum.dev/backup"
	labelBackupRun = "quorum.dev/backup-run"
	// backupPodDeadline bounds one run; a pod past it is stopped and the run
	// counts as failed.
	backupPodDeadline = time.Hour
)

var (
	backupDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "quorum_backup_duration_seconds", Help: "Duration of backup runs, from pod creation to result.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	}, []string{"namespace", "backup"})
	backupSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_backup_last_size_bytes", Help: "Size of the newest verified snapshot.",
	}, []string{"namespace", "backup"})
	backupLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_backup_last_success_timestamp_seconds", Help: "When the newest verified snapshot was taken.",
	}, []string{"namespace", "backup"})
	backupFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quorum_backup_failures_total", Help: "Failed backup runs by reason.",
	}, []string{"namespace", "backup", "reason"})
)

func init() {
	metrics.Registry.MustRegister(backupDuration, backupSize, backupLastSuccess, backupFailures)
}

// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get

// Reconcile collects finished runs, starts the run that is due, and writes
// the status.
func (r *EtcdBackupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	b := &quorumv1alpha1.EtcdBackup{}
	if err := r.Get(ctx, req.NamespacedName, b); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !b.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	persisted := b.Status.DeepCopy()
	st := b.Status.DeepCopy()
	st.ObservedGeneration = b.Generation
	now := r.now()
	result, err := r.reconcile(ctx, b, st, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !equality.Semantic.DeepEqual(*persisted, *st) {
		b.Status = *st
		if err := r.Status().Update(ctx, b); err != nil {
			return ctrl.Result{}, err
		}
	}
	return result, nil
}

func (r *EtcdBackupReconciler) reconcile(ctx context.Context, b *quorumv1alpha1.EtcdBackup, st *quorumv1alpha1.EtcdBackupStatus, now time.Time) (ctrl.Result, error) {
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
			if err := r.collect(ctx, b, st, p); err != nil {
				return ctrl.Result{}, err
			}
		case now.Sub(p.CreationTimestamp.Time) > backupPodDeadline:
			r.fail(b, st, "SnapshotFailed", fmt.Sprintf("backup pod %s ran longer than %s and was stopped", p.Name, backupPodDeadline))
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
		setBackupCondition(st, b, quorumv1alpha1.ConditionReady, false, reason, msg)
		return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
	}
	if reason, msg := r.checkDestination(ctx, b); reason != "" {
		setBackupCondition(st, b, quorumv1alpha1.ConditionReady, false, reason, msg)
		return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
	}
	if c := meta.FindStatusCondition(st.Conditions, quorumv1alpha1.ConditionLastBackupSucceeded); c != nil &&
		c.Status == metav1.ConditionFalse && c.Reason == "CredentialsInvalid" && c.ObservedGeneration == b.Generation {
		setBackupCondition(st, b, quorumv1alpha1.ConditionReady, false, c.Reason, c.Message)
	} else {
		setBackupCondition(st, b, quorumv1alpha1.ConditionReady, true, "Ready",
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
		sched, loc, err := parseSchedule(b.Spec.Schedule, ptr.Deref(b.Spec.TimeZone, ""))
		if err != nil {
			setBackupCondition(st, b, quorumv1alpha1.ConditionReady, false, "InvalidSchedule", err.Error())
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
		d := decideSchedule(sched, loc, last, now, deadline)
		nt := metav1.NewTime(d.next)
		next, requeue = &nt, d.next.Sub(now)
		if !d.scheduledAt.IsZero() {
			if d.missed > 0 {
				r.event(b, corev1.EventTypeWarning, "MissedRuns", fmt.Sprintf("%d scheduled runs were missed while the operator was down or a run was going; at most one catch-up run is taken", d.missed))
			}
			if d.run && !b.Spec.Suspend {
				due, dueAt = true, d.scheduledAt
			} else {
				// Skipped (too late, or suspended): remember it so it is
				// not considered again.
				t := metav1.NewTime(d.scheduledAt)
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
	if err := r.List(ctx, others, client.InNamespace(b.Namespace), client.MatchingLabels{resources.LabelCluster: target.Name}, client.HasLabels{labelBackup}); err != nil {
		return ctrl.Result{}, err
	}
	for _, p := range others.Items {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			r.event(b, corev1.EventTypeNormal, "Waiting", fmt.Sprintf("backup pod %s of the same cluster is still running", p.Name))
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
	if err := controllerutil.SetControllerReference(b, pod, r.Scheme); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.Create(ctx, pod); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, err
	}
	t := metav1.NewTime(dueAt)
	st.LastScheduleTime = &t
	logf.FromContext(ctx).Info("backup started", "pod", pod.Name, "cluster", target.Name)
	return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
}

// target finds the EtcdCluster to back up: the one named, or the stacked
// EtcdCluster of the ControlPlane named.
func (r *EtcdBackupReconciler) target(ctx context.Context, b *quorumv1alpha1.EtcdBackup) (*quorumv1alpha1.EtcdCluster, string, string) {
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
	name := backedUpCluster(b)
	c := &quorumv1alpha1.EtcdCluster{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: name}, c); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "ClusterNotFound", fmt.Sprintf("EtcdCluster %s does not exist in namespace %s", name, b.Namespace)
		}
		return nil, "ClusterNotFound", err.Error()
	}
	return c, "", ""
}

// backedUpCluster is the name of the EtcdCluster a backup takes snapshots
// of: the one it names, or its ControlPlane's stacked EtcdCluster.
func backedUpCluster(b *quorumv1alpha1.EtcdBackup) string {
	if b.Spec.ControlPlaneRef != nil {
		return resources.StackedEtcdName(b.Spec.ControlPlaneRef.Name)
	}
	if b.Spec.EtcdClusterRef != nil {
		return b.Spec.EtcdClusterRef.Name
	}
	return ""
}

// checkDestination checks what can be checked without the store: the claim
// and the Secrets exist. Whether the store accepts the credentials is the
// backup pod's to find out.
func (r *EtcdBackupReconciler) checkDestination(ctx context.Context, b *quorumv1alpha1.EtcdBackup) (string, string) {
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

// collect reads a finished backup pod's result into the status, then
// deletes the pod.
func (r *EtcdBackupReconciler) collect(ctx context.Context, b *quorumv1alpha1.EtcdBackup, st *quorumv1alpha1.EtcdBackupStatus, p *corev1.Pod) error {
	if p.DeletionTimestamp != nil {
		return nil
	}
	logText, err := r.PodLogs(ctx, p.Namespace, p.Name)
	if apierrors.IsNotFound(err) {
		// The cache still lists a pod an earlier pass collected and
		// deleted: its result is already in the status.
		return nil
	}
	var res *backupjob.Result
	if err == nil {
		res, err = backupjob.ParseResult(logText)
	}
	switch {
	case err != nil:
		r.fail(b, st, "SnapshotFailed", fmt.Sprintf("backup pod %s ended %s without a readable result: %v", p.Name, p.Status.Phase, err))
	case !res.OK:
		r.fail(b, st, res.Reason, res.Message)
	default:
		r.succeed(b, st, res)
		backupDuration.WithLabelValues(b.Namespace, b.Name).Observe(time.Since(p.CreationTimestamp.Time).Seconds())
	}
	return client.IgnoreNotFound(r.Delete(ctx, p))
}

func (r *EtcdBackupReconciler) succeed(b *quorumv1alpha1.EtcdBackup, st *quorumv1alpha1.EtcdBackupStatus, res *backupjob.Result) {
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
	setBackupCondition(st, b, quorumv1alpha1.ConditionLastBackupSucceeded, true, "SnapshotVerified", msg)
	r.event(b, corev1.EventTypeNormal, "SnapshotTaken", msg)
	if len(res.Deleted) > 0 {
		r.event(b, corev1.EventTypeNormal, "SnapshotsDeleted", fmt.Sprintf("retention (keepLast %d) deleted %s", b.Spec.Retention.KeepLast, strings.Join(res.Deleted, ", ")))
	}
	backupSize.WithLabelValues(b.Namespace, b.Name).Set(float64(s.SizeBytes))
	backupLastSuccess.WithLabelValues(b.Namespace, b.Name).Set(float64(s.TakenAt.Unix()))
}

func (r *EtcdBackupReconciler) fail(b *quorumv1alpha1.EtcdBackup, st *quorumv1alpha1.EtcdBackupStatus, reason, msg string) {
	if reason == "" {
		reason = "SnapshotFailed"
	}
	setBackupCondition(st, b, quorumv1alpha1.ConditionLastBackupSucceeded, false, reason, msg)
	r.event(b, corev1.EventTypeWarning, reason, msg)
	backupFailures.WithLabelValues(b.Namespace, b.Name, reason).Inc()
}

// backupPod is the pod that takes one snapshot: the manager image running
// `backup-job snapshot`, with the cluster's client certificate, the
// destination, and a bounded memory limit.
func (r *EtcdBackupReconciler) backupPod(b *quorumv1alpha1.EtcdBackup, c *quorumv1alpha1.EtcdCluster, now time.Time) (*corev1.Pod, error) {
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
	args := []string{"backup-job", "snapshot", "--cluster=" + c.Name, "--endpoints=" + strings.Join(endpoints, ","),
		"--keep-last=" + strconv.Itoa(int(keep)), "--tls-dir=/etc/quorum/etcd-client"}
	run := strconv.FormatInt(now.Unix(), 10)
	labels := map[string]string{labelBackup: b.Name, labelBackupRun: run, resources.LabelCluster: c.Name, resources.LabelManagedBy: "quorum"}
	pod := BackupJobPod(r.Image, b.Namespace, b.Name+"-"+run, labels, clientSecretOf(c), b.Spec.Destination, args)
	return pod, nil
}

func clientSecretOf(c *quorumv1alpha1.EtcdCluster) string {
	if autoTLS(c) {
		return resources.ClientSecretName(c.Name)
	}
	return c.Spec.TLS.ClientSecretRef.Name
}

// BackupJobPod builds a pod running `manager backup-job ...` against a
// destination: the volume mounted at /backup, or S3 credentials from their
// Secret; a spool emptyDir; the etcd client Secret when given.
func BackupJobPod(image, namespace, name string, labels map[string]string, etcdClientSecret string, d quorumv1alpha1.BackupDestination, args []string) *corev1.Pod {
	volumes := []corev1.Volume{{Name: "spool", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	mounts := []corev1.VolumeMount{{Name: "spool", MountPath: "/tmp"}}
	var env []corev1.EnvVar
	if etcdClientSecret != "" {
		volumes = append(volumes, corev1.Volume{Name: "etcd-client", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: etcdClientSecret, DefaultMode: ptr.To[int32](0o440)}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "etcd-client", MountPath: "/etc/quorum/etcd-client", ReadOnly: true})
	}
	if v := d.Volume; v != nil {
		volumes = append(volumes, corev1.Volume{Name: "backup", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.ClaimName}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "backup", MountPath: "/backup"})
		args = append(args, "--volume-dir="+path.Join("/backup", v.Path), "--location=pvc://"+path.Join(v.ClaimName, v.Path))
	} else if s := d.S3; s != nil {
		args = append(args, "--s3-endpoint="+s.Endpoint, "--s3-bucket="+s.Bucket, "--s3-prefix="+s.Prefix,
			"--s3-region="+s.Region, fmt.Sprintf("--s3-insecure=%v", s.Insecure), "--spool-dir=/tmp")
		env = append(env,
			corev1.EnvVar{Name: "S3_ACCESS_KEY_ID", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: s.CredentialsSecretRef.Name}, Key: "accessKeyID"}}},
			corev1.EnvVar{Name: "S3_SECRET_ACCESS_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: s.CredentialsSecretRef.Name}, Key: "secretAccessKey"}}})
		if s.CASecretRef != nil {
			volumes = append(volumes, corev1.Volume{Name: "s3-ca", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: s.CASecretRef.Name}}})
			mounts = append(mounts, corev1.VolumeMount{Name: "s3-ca", MountPath: "/etc/quorum/s3-ca", ReadOnly: true})
			args = append(args, "--s3-ca-file=/etc/quorum/s3-ca/ca.crt")
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         ptr.To(int64(backupPodDeadline.Seconds())),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), FSGroup: ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "backup", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"/manager"}, Args: args, Env: env, VolumeMounts: mounts,
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
				},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: volumes,
		},
	}
}

func setBackupCondition(st *quorumv1alpha1.EtcdBackupStatus, b *quorumv1alpha1.EtcdBackup, t string, status bool, reason, msg string) {
	s := metav1.ConditionFalse
	if status {
		s = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: b.Generation})
}

func (r *EtcdBackupReconciler) event(b *quorumv1alpha1.EtcdBackup, kind, reason, msg string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(b, nil, kind, reason, reason, "%s", msg)
	}
}

func (r *EtcdBackupReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// SetupWithManager watches backups and their pods.
func (r *EtcdBackupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&quorumv1alpha1.EtcdBackup{}).
		Owns(&corev1.Pod{}).
		Named("etcdbackup").
		Complete(r)
}
