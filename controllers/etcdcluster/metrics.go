package etcdcluster

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the EtcdCluster controller, on the manager's /metrics.
var (
	membersByRole = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_etcd_members",
		Help: "Members of an EtcdCluster by role (leader, follower, learner).",
	}, []string{"namespace", "cluster", "role"})
	healthyMembers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_etcd_healthy_members",
		Help: "Members of an EtcdCluster that answer with no alarm and know a leader.",
	}, []string{"namespace", "cluster"})
	membershipChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quorum_etcd_membership_changes_total",
		Help: "Membership changes made, by kind (add_learner, promote, remove).",
	}, []string{"namespace", "cluster", "change"})
	replacements = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quorum_etcd_member_replacements_total",
		Help: "Failed members replaced by a promoted new member.",
	}, []string{"namespace", "cluster"})
	changeTimeouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quorum_etcd_change_timeouts_total",
		Help: "Changes undone because a member did not come up within failurePolicy.startTimeout, by kind (add, restart, upgrade).",
	}, []string{"namespace", "cluster", "change"})
	quorumAtRisk = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_etcd_quorum_at_risk",
		Help: "1 while one more failure (or the next action) would lose quorum.",
	}, []string{"namespace", "cluster"})
	certificateExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_etcd_certificate_expiry_timestamp_seconds",
		Help: "When each certificate the operator issued for an EtcdCluster expires (ca, client, each member), in seconds since the epoch.",
	}, []string{"namespace", "cluster", "certificate"})
	defrags = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quorum_etcd_defragmentations_total",
		Help: "Member databases defragmented, by reason (NoSpaceRecovery, ScheduledDefrag, Fragmented).",
	}, []string{"namespace", "cluster", "reason"})
	defragReclaimed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quorum_etcd_defragmentation_reclaimed_bytes_total",
		Help: "Bytes member databases shrank by in defragmentations.",
	}, []string{"namespace", "cluster"})
	quorumLostGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_etcd_quorum_lost",
		Help: "1 while fewer than a majority of voters are healthy.",
	}, []string{"namespace", "cluster"})
	alarmGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_etcd_alarm",
		Help: "1 for each alarm etcd reports (NOSPACE, CORRUPT), by member.",
	}, []string{"namespace", "cluster", "member", "alarm"})
	dbSizeGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_etcd_member_db_size_bytes",
		Help: "Size of each member's database file, as last observed.",
	}, []string{"namespace", "cluster", "member"})
	dbSizeInUse = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_etcd_member_db_size_in_use_bytes",
		Help: "Bytes of each member's database in use (the rest are free pages a defragmentation gives back).",
	}, []string{"namespace", "cluster", "member"})
	quotaGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_etcd_quota_backend_bytes",
		Help: "spec.maintenance.quotaBackendBytes: the database size at which etcd raises NOSPACE.",
	}, []string{"namespace", "cluster"})
)

// perMember are the gauges with a series per member, alarm or
// certificate, kept by setSeries.
var perMember = []*prometheus.GaugeVec{alarmGauge, dbSizeGauge, dbSizeInUse, certificateExpiry}

func init() {
	metrics.Registry.MustRegister(membersByRole, healthyMembers, membershipChanges, replacements, changeTimeouts, quorumAtRisk, quorumLostGauge,
		certificateExpiry, defrags, defragReclaimed, alarmGauge, dbSizeGauge, dbSizeInUse, quotaGauge)
}

// series is one series of a per-member gauge: the label values after
// namespace and cluster, and its value.
type series struct {
	labels []string
	value  float64
}

type seriesOf struct {
	vec                *prometheus.GaugeVec
	namespace, cluster string
}

var (
	seriesMu sync.Mutex
	// lastSeries are the series each cluster set last, by key.
	lastSeries = map[seriesOf]map[string]series{}
)

// setSeries makes want the series of one cluster in vec: it sets them and
// deletes only those set before and gone now (a removed member, a cleared
// alarm), so a scrape never finds a current series missing.
func setSeries(vec *prometheus.GaugeVec, namespace, cluster string, want map[string]series) {
	seriesMu.Lock()
	defer seriesMu.Unlock()
	key := seriesOf{vec, namespace, cluster}
	for _, s := range want {
		vec.WithLabelValues(append([]string{namespace, cluster}, s.labels...)...).Set(s.value)
	}
	for k, s := range lastSeries[key] {
		if _, ok := want[k]; !ok {
			vec.DeleteLabelValues(append([]string{namespace, cluster}, s.labels...)...)
		}
	}
	lastSeries[key] = want
}

// forgetMetrics drops every series of a deleted cluster.
func forgetMetrics(namespace, name string) {
	labels := prometheus.Labels{"namespace": namespace, "cluster": name}
	for _, v := range append([]*prometheus.GaugeVec{membersByRole, healthyMembers, quorumAtRisk, quorumLostGauge, quotaGauge}, perMember...) {
		v.DeletePartialMatch(labels)
	}
	for _, v := range []*prometheus.CounterVec{membershipChanges, replacements, changeTimeouts, defrags, defragReclaimed} {
		v.DeletePartialMatch(labels)
	}
	seriesMu.Lock()
	defer seriesMu.Unlock()
	for k := range lastSeries {
		if k.namespace == namespace && k.cluster == name {
			delete(lastSeries, k)
		}
	}
}
