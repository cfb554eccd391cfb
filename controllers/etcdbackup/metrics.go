package etcdbackup

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
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
		Name: "quorum_backup_last_success_timestamp_seconds", Help: "When the newest verified snapshot was taken.",
	}, []string{"namespace", "backup"})
	backupFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quorum_backup_failures_total", Help: "Failed backup runs by reason.",
	}, []string{"namespace", "backup", "reason"})
)

func init() {
	metrics.Registry.MustRegister(backupDuration, backupSize, backupLastSuccess, backupFailures)
}
