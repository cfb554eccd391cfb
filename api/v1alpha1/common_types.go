package v1alpha1

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// name of the referenced object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// FailurePolicy says when a member or replica counts as failed and whether
// the operator replaces it on its own.
type FailurePolicy struct {
	// unhealthyAfter is how long a member may stay unhealthy (it does not
	// answer, knows no leader, its node is NotReady, or its apiserver is not
	// ready) before it is replaced. The clock counts only time in which the
	// cluster had quorum and the operator could see it: a member is never
	// replaced for the operator's own trouble or while quorum is lost. A
	// member whose pod and data are gone is failed at once. Quorum is
	// counted lost only after a majority of voters failed for this long.
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('10s')",message="unhealthyAfter must be a duration of at least 10s, such as 60s or 2m: shorter would replace members for an election or a slow disk"
	// +optional
	UnhealthyAfter *metav1.Duration `json:"unhealthyAfter,omitempty"`

	// startTimeout bounds a change that waits for a member or replica to
	// come up: a new etcd member not promoted, a restarted member not
	// healthy again, or a new control-plane replica not ready within it is
	// removed or rolled back and reported, so repairs never stall behind it.
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('30s')",message="startTimeout must be a duration of at least 30s, such as 5m: a learner needs time to catch up"
	// +optional
	StartTimeout *metav1.Duration `json:"startTimeout,omitempty"`

	// autoReplace lets the operator replace failed members on its own. When
	// false, failures are only reported (Degraded) and a person decides.
	// +kubebuilder:default=true
	// +optional
	AutoReplace *bool `json:"autoReplace,omitempty"`
}

// PodTemplate is the part of each member's pod a user may shape.
type PodTemplate struct {
	// labels added to every pod (the operator's own labels win on conflict).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// annotations added to every pod.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// resources of the main container: etcd's in an EtcdCluster,
	// kube-apiserver's in a ControlPlane. Requests not given default to
	// 100m CPU and 256Mi memory; a resource with only a limit gets no
	// default request (Kubernetes makes the request the limit).
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// nodeSelector further restricts the nodes pods may run on; zone pinning
	// is added by the operator.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations of every pod.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// priorityClassName of every pod; control-plane pods usually want a high one.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// Condition types shared by the kinds.
const (
	// ConditionAvailable is true when the object serves: etcd has quorum, or
	// the control plane's endpoint answers.
	ConditionAvailable = "Available"
	// ConditionProgressing is true while the operator is changing the object
	// toward its spec: scaling, replacing, upgrading.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is true when some member or replica is failed or
	// missing, even if the object still serves.
	ConditionDegraded = "Degraded"
)

// Label keys the operator puts on the objects it makes.
const (
	// LabelZone is the well-known node label members are spread over.
	LabelZone = "topology.kubernetes.io/zone"
)

// Zones are failure domains: values of the topology.kubernetes.io/zone node
// label. Members are spread over them evenly (max skew 1).
// +kubebuilder:validation:MaxItems=16
// +kubebuilder:validation:items:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.all(z, size(z) != 0)",message="zones must not contain an empty name"
// +kubebuilder:validation:XValidation:rule="self.all(z, size(z) == 0 || z.matches('^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'))",message="zones must be label values, such as zone-a or eu-west-1a"
// +kubebuilder:validation:XValidation:rule="self.all(z, self.exists_one(y, y == z))",message="zones must be unique: a zone listed twice would get twice the members"
type Zones []string

// CertificateStatus is a certificate the operator issued and when it
// expires.
type CertificateStatus struct {
	// name of the certificate: ca, client, a member's name, or for a
	// control plane the key of its PKI Secret or kubeconfig.
	Name string `json:"name"`
	// notAfter is when it expires.
	NotAfter metav1.Time `json:"notAfter"`
}

// DeletionPolicy says what happens to a cluster's data when its object is
// deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

const (
	// DeletionRetain keeps the volumes and certificates (CA, client and
	// member Secrets) when the object is deleted; a new object of the same
	// name in the same namespace adopts them and comes back with the same
	// data and cluster ID.
	DeletionRetain DeletionPolicy = "Retain"
	// DeletionDelete deletes them with the object.
	DeletionDelete DeletionPolicy = "Delete"
)

// Defaults the API server sets; the operator applies them too, for objects
// stored before a field existed.
const (
	DefaultReplicas       = 3
	DefaultUnhealthyAfter = time.Minute
	DefaultStartTimeout   = 5 * time.Minute
)

// UnhealthyAfterOrDefault is unhealthyAfter, or its default.
func (p FailurePolicy) UnhealthyAfterOrDefault() time.Duration {
	if p.UnhealthyAfter != nil && p.UnhealthyAfter.Duration > 0 {
		return p.UnhealthyAfter.Duration
	}
	return DefaultUnhealthyAfter
}

// StartTimeoutOrDefault is startTimeout, or its default.
func (p FailurePolicy) StartTimeoutOrDefault() time.Duration {
	if p.StartTimeout != nil && p.StartTimeout.Duration > 0 {
		return p.StartTimeout.Duration
	}
	return DefaultStartTimeout
}

// Replaces says whether failed members or replicas are replaced
// (autoReplace, true unless set false).
func (p FailurePolicy) Replaces() bool { return p.AutoReplace == nil || *p.AutoReplace }

// replicasOrDefault is a replicas field, or its default.
func replicasOrDefault(r *int32) int {
	if r == nil {
		return DefaultReplicas
	}
	return int(*r)
}
