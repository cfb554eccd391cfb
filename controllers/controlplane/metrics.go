package controlplane

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the ControlPlane controller, on the manager's /metrics.
var (
	cpReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_controlplane_replicas",
		Help: "Replicas of a ControlPlane by state (ready, unready, updated).",
	}, []string{"namespace", "controlplane", "state"})
	cpAvailable = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_controlplane_available",
		Help: "1 while at least one apiserver of the ControlPlane is ready.",
	}, []string{"namespace", "controlplane"})
	cpCertificateExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "quorum_controlplane_certificate_expiry_timestamp_seconds",
		Help: "When each certificate of a ControlPlane's PKI and kubeconfigs expires, in seconds since the epoch.",
	}, []string{"namespace", "controlplane", "certificate"})
	cpReplacements = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quorum_controlplane_replica_replacements_total",
		Help: "Failed control-plane replicas deleted to be replaced.",
	}, []string{"namespace", "controlplane"})
)

func init() {
	metrics.Registry.MustRegister(cpReplicas, cpAvailable, cpReplacements, cpCertificateExpiry)
}
