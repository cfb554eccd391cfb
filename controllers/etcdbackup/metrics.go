package etcdbackup

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/schedule"
)

// Metrics of the EtcdBackup controller, on the manager's /metrics.
var (
	backupDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "quorum_backup_duration_seconds", Help: "Duration of backup runs, from pod creation to result.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	}, []string{"namespace", "backup"})
	backupSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_backup_last_size_bytes", Help: "Size of the newest verified snapshot.",
	}, []string{"namespace", "backup"})
	backupLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_backup_last_success_timestamp_seconds",
		Help: "When the newest verified snapshot was taken; the EtcdBackup's creation time until one is, so an overdue first backup shows.",
	}, []string{"namespace", "backup"})
	backupInterval = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_backup_schedule_interval_seconds",
		Help: "Time between two runs of a scheduled, unsuspended EtcdBackup (from its next two due times).",
	}, []string{"namespace", "backup"})
	backupFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quorum_backup_failures_total", Help: "Failed backup runs by reason.",
	}, []string{"namespace", "backup", "reason"})
)

func init() {
	metrics.Registry.MustRegister(backupDuration, backupSize, backupLastSuccess, backupInterval, backupFailures)
}

// updateMetrics sets the gauges from the status each reconcile, so a
// restarted manager reports them before the next run.
func updateMetrics(b *quorumv1alpha1.EtcdBackup, st *quorumv1alpha1.EtcdBackupStatus, now time.Time) {
	last := b.CreationTimestamp.Time
	if st.LastSuccessfulTime != nil {
		last = st.LastSuccessfulTime.Time
	}
	backupLastSuccess.WithLabelValues(b.Namespace, b.Name).Set(float64(last.Unix()))
	sched, loc, err := schedule.Parse(b.Spec.Schedule, ptr.Deref(b.Spec.TimeZone, ""))
	if b.Spec.Schedule == "" || b.Spec.Suspend || err != nil {
		backupInterval.DeleteLabelValues(b.Namespace, b.Name)
		return
	}
	next := sched.Next(now.In(loc))
	backupInterval.WithLabelValues(b.Namespace, b.Name).Set(sched.Next(next).Sub(next).Seconds())
}

// forgetMetrics drops every series of a deleted EtcdBackup.
func forgetMetrics(namespace, name string) {
	labels := prometheus.Labels{"namespace": namespace, "backup": name}
	backupDuration.DeletePartialMatch(labels)
	backupSize.DeletePartialMatch(labels)
	backupLastSuccess.DeletePartialMatch(labels)
	backupInterval.DeletePartialMatch(labels)
	backupFailures.DeletePartialMatch(labels)
}
