package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ControlPlaneSpec is the hosted control plane a user asks for.
type ControlPlaneSpec struct {
	// replicas is the number of control-plane replicas: 1, 3, 5, 7 or 9.
	// Each replica runs kube-apiserver, kube-controller-manager and
	// kube-scheduler (and an etcd member when etcd is stacked).
	// +kubebuilder:default=3
	// +kubebuilder:validation:XValidation:rule="self >= 1 && self <= 9",message="replicas must be between 1 and 9"
	// +kubebuilder:validation:XValidation:rule="self < 1 || self > 9 || self % 2 == 1",message="replicas must be odd (1, 3, 5, 7 or 9): an even count adds no failure tolerance"
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// version of Kubernetes, such as v1.36.3. Changing it rolls the replicas
	// one at a time; only patch changes and one minor step up are carried out.
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^v[0-9]+[.][0-9]+[.][0-9]+$')",message="version must be a Kubernetes release of the form vMAJOR.MINOR.PATCH, such as v1.36.3"
	// +required
	Version string `json:"version"`

	// zones the replicas are spread over (max skew 1). Empty means replicas
	// are not pinned to zones.
	// +optional
	Zones Zones `json:"zones,omitempty"`

	// etcd says where the control plane keeps its state: exactly one of
	// stacked, clusterRef or external.
	// +required
	Etcd ControlPlaneEtcd `json:"etcd"`

	// endpoint is the load-balanced address in front of every apiserver.
	// +kubebuilder:default={}
	// +optional
	Endpoint ControlPlaneEndpoint `json:"endpoint"`

	// apiServer tunes kube-apiserver.
	// +optional
	APIServer ComponentSpec `json:"apiServer,omitempty"`

	// controllerManager tunes kube-controller-manager. Leader election is
	// always on (a Lease in the hosted cluster).
	// +optional
	ControllerManager ComponentSpec `json:"controllerManager,omitempty"`

	// scheduler tunes kube-scheduler. Leader election is always on (a Lease
	// in the hosted cluster).
	// +optional
	Scheduler ComponentSpec `json:"scheduler,omitempty"`

	// deletionPolicy is the deletion policy of a stacked control plane's
	// EtcdCluster: Retain (the default) keeps its volumes and certificates
	// when the ControlPlane is deleted, Delete removes them.
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// failurePolicy says when a replica is failed, whether it is replaced,
	// and how often.
	// +kubebuilder:default={}
	// +optional
	FailurePolicy ControlPlaneFailurePolicy `json:"failurePolicy"`

	// certificateRenewBefore is how long before one of the control plane's
	// certificates (serving, client, kubeconfig) expires the operator issues
	// a new one from the same CA and rolls the replicas onto it. Certificates
	// are issued for one year.
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s') && duration(self) < duration('8760h')",message="certificateRenewBefore must be a positive duration shorter than the certificates' one-year validity, such as 720h"
	// +optional
	CertificateRenewBefore *metav1.Duration `json:"certificateRenewBefore,omitempty"`
	// podTemplate shapes every replica's pod.
	// +optional
	PodTemplate PodTemplate `json:"podTemplate,omitempty"`
}

// ControlPlaneFailurePolicy is the failure policy of a control plane, with
// limits on remediation (Cluster API's model): one replica is replaced at a
// time, a replacement that fails again soon counts as a retry, and retries
// stop at a limit, so a cause no new replica can fix does not churn pods
// for ever.
type ControlPlaneFailurePolicy struct {
	FailurePolicy `json:",inline"`

	// maxRetries is how many times in a row a replacement may fail again
	// within minHealthyPeriod before remediation stops and a person must
	// look (Degraded, reason RemediationLimitReached).
	// +kubebuilder:default=3
	// +kubebuilder:validation:XValidation:rule="self >= 0 && self <= 100",message="maxRetries must be between 0 and 100"
	// +optional
	MaxRetries *int32 `json:"maxRetries,omitempty"`

	// retryPeriod is the least time between two remediations.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('0s')",message="retryPeriod must be a duration such as 30s"
	// +optional
	RetryPeriod *metav1.Duration `json:"retryPeriod,omitempty"`

	// minHealthyPeriod is how long a replacement must stay healthy for its
	// remediation to count as a success; a failure after it starts the
	// retry count again.
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="minHealthyPeriod must be a positive duration such as 1h"
	// +optional
	MinHealthyPeriod *metav1.Duration `json:"minHealthyPeriod,omitempty"`
}

// ControlPlaneEtcd is where a control plane keeps its state.
// +kubebuilder:validation:XValidation:rule="(has(self.stacked) ? 1 : 0) + (has(self.clusterRef) ? 1 : 0) + (has(self.external) ? 1 : 0) == 1",message="etcd: exactly one of stacked, clusterRef or external must be set"
// +kubebuilder:validation:XValidation:rule="has(self.stacked) == has(oldSelf.stacked) && has(self.clusterRef) == has(oldSelf.clusterRef) && has(self.external) == has(oldSelf.external)",message="etcd source is immutable: a control plane cannot move its state to another etcd"
// +kubebuilder:validation:XValidation:rule="!has(self.clusterRef) || !has(oldSelf.clusterRef) || self.clusterRef.name == oldSelf.clusterRef.name",message="etcd.clusterRef is immutable: a control plane cannot move its state to another etcd"
type ControlPlaneEtcd struct {
	// stacked runs one etcd member in each replica's pod, in the same zone;
	// each apiserver talks to its own member.
	// +optional
	Stacked *StackedEtcd `json:"stacked,omitempty"`

	// clusterRef names an EtcdCluster in this namespace. The apiservers use
	// its client Service and a client certificate from its CA.
	// +optional
	ClusterRef *LocalObjectReference `json:"clusterRef,omitempty"`

	// external is an etcd the operator does not run.
	// +optional
	External *ExternalEtcd `json:"external,omitempty"`
}

// StackedEtcd is the etcd member run inside each control-plane replica.
type StackedEtcd struct {
	// version of etcd, such as 3.6.16.
	// +kubebuilder:default="3.6.16"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+[.][0-9]+[.][0-9]+$')",message="version must be an etcd release of the form major.minor.patch, such as 3.6.16"
	// +optional
	Version string `json:"version,omitempty"`

	// image overrides the etcd image. Empty means registry.k8s.io/etcd:<version>-0.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// storage of each member's data directory.
	// +kubebuilder:default={}
	// +optional
	Storage EtcdStorage `json:"storage"`

	// resources of each etcd member's container (podTemplate.resources is
	// the apiserver's). Requests not given default to 100m CPU and 256Mi
	// memory.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// ExternalEtcd is an etcd cluster the operator does not manage.
type ExternalEtcd struct {
	// endpoints of the etcd members, such as https://etcd-0.example:2379.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=9
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.all(e, e.matches('^https?://[^/]+$'))",message="etcd.external.endpoints must be URLs such as https://etcd-0.example:2379"
	// +listType=atomic
	// +required
	Endpoints []string `json:"endpoints"`

	// secretRef names a Secret with ca.crt, tls.crt and tls.key for the
	// apiservers' client connection to etcd.
	// +required
	SecretRef LocalObjectReference `json:"secretRef"`
}

// ServiceType is the kind of Service in front of the apiservers.
// +kubebuilder:validation:Enum=LoadBalancer;NodePort;ClusterIP
type ServiceType string

// ControlPlaneEndpoint is the load-balanced address of the apiservers.
type ControlPlaneEndpoint struct {
	// serviceType of the Service in front of the apiservers.
	// +kubebuilder:default=LoadBalancer
	// +optional
	ServiceType ServiceType `json:"serviceType,omitempty"`

	// host is the DNS name clients use. It goes into the serving certificate
	// and the kubeconfigs, and the Service is annotated for external-dns with
	// it.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="endpoint.host must be a lowercase DNS name such as api.tenant-a.example.com"
	// +optional
	Host string `json:"host,omitempty"`

	// dnsTTL is the TTL external-dns gives the host's record, low so clients
	// follow a moved endpoint quickly.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s')",message="endpoint.dnsTTL must be a duration of at least 1s, such as 30s"
	// +optional
	DNSTTL *metav1.Duration `json:"dnsTTL,omitempty"`

	// port the endpoint serves on.
	// +kubebuilder:default=6443
	// +kubebuilder:validation:XValidation:rule="self >= 1 && self <= 65535",message="endpoint.port must be between 1 and 65535"
	// +optional
	Port int32 `json:"port,omitempty"`
}

// ComponentSpec tunes one control-plane component.
type ComponentSpec struct {
	// extraArgs are flags added to the component's command line, by name
	// without leading dashes (audit-log-path: /var/log/audit.log). Flags the
	// operator sets itself are overridden by these.
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[a-z0-9][-a-z0-9.]*$'))",message="extraArgs keys are flag names without leading dashes, such as audit-log-path"
	// +optional
	ExtraArgs map[string]string `json:"extraArgs,omitempty"`

	// resources of the component's container. Requests not given default
	// to kube-apiserver 100m CPU and 256Mi memory (or podTemplate.resources
	// for kube-apiserver), kube-controller-manager 50m and 128Mi,
	// kube-scheduler 20m and 64Mi.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// ReplicaStatus is one control-plane replica as observed.
type ReplicaStatus struct {
	// name of the replica (and of its pod).
	Name string `json:"name"`
	// zone the replica runs in.
	// +optional
	Zone string `json:"zone,omitempty"`
	// ready is true when its apiserver answers /readyz.
	Ready bool `json:"ready"`
	// version of Kubernetes the replica runs.
	// +optional
	Version string `json:"version,omitempty"`
}

// ControlPlaneLeaders names the replicas holding the leader leases.
type ControlPlaneLeaders struct {
	// controllerManager is the replica holding the kube-controller-manager lease.
	// +optional
	ControllerManager string `json:"controllerManager,omitempty"`
	// scheduler is the replica holding the kube-scheduler lease.
	// +optional
	Scheduler string `json:"scheduler,omitempty"`
}

// ConditionEtcdAvailable is true when the control plane's etcd has quorum and
// the apiservers can reach it.
const ConditionEtcdAvailable = "EtcdAvailable"

// RemediationStatus is the last replacement of a failed replica.
type RemediationStatus struct {
	// replica that was replaced.
	Replica string `json:"replica"`
	// time it was deleted to be replaced.
	Time metav1.Time `json:"time"`
	// retryCount is how many remediations in a row came within
	// minHealthyPeriod of the one before.
	// +optional
	RetryCount int32 `json:"retryCount,omitempty"`
	// reason the replica was replaced.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// ControlPlaneStatus is the control plane as observed.
type ControlPlaneStatus struct {
	// observedGeneration is the generation of the spec this status reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// replicas is the number of replica pods.
	// +optional
	Replicas int32 `json:"replicas"`
	// readyReplicas is the number of replicas whose apiserver is ready.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`
	// updatedReplicas is the number of replicas at spec.version.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas"`
	// version is the oldest Kubernetes version any replica runs.
	// +optional
	Version string `json:"version,omitempty"`
	// endpoint is the address clients reach the apiservers on (https://host:port).
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// kubeconfigSecretRef names the Secret holding the admin kubeconfig
	// (key "value").
	// +optional
	KubeconfigSecretRef *LocalObjectReference `json:"kubeconfigSecretRef,omitempty"`
	// replicaStatus lists every replica.
	// +optional
	// +listType=map
	// +listMapKey=name
	ReplicaStatus []ReplicaStatus `json:"replicaStatus,omitempty"`
	// leaders names the replicas holding the leader leases.
	// +optional
	Leaders ControlPlaneLeaders `json:"leaders,omitempty"`
	// certificates the operator issued for this control plane (CAs,
	// leaves, kubeconfig clients), with when each expires.
	// +optional
	// +listType=map
	// +listMapKey=name
	Certificates []CertificateStatus `json:"certificates,omitempty"`
	// etcdCredentials is what every replica runs of its etcd credentials,
	// once all run the current template: an EtcdCluster rotating its CA
	// waits on it between phases.
	// +optional
	EtcdCredentials *EtcdCredentialsStatus `json:"etcdCredentials,omitempty"`
	// caRotation is the rotation of the cluster and front-proxy CAs under
	// way, or the last one made.
	// +optional
	CARotation *CARotationStatus `json:"caRotation,omitempty"`
	// lastRemediation is the last failed replica replaced.
	// +optional
	LastRemediation *RemediationStatus `json:"lastRemediation,omitempty"`
	// conditions: Available, Progressing, Degraded, EtcdAvailable,
	// CertificatesExpiring.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// selector of the replica pods, for the /scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`
}

// ControlPlane is a hosted Kubernetes control plane: kube-apiserver,
// kube-controller-manager and kube-scheduler replicas spread over zones
// behind one load-balanced endpoint.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=cp,categories=quorum
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.endpoint`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ControlPlane struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the control plane asked for.
	// +required
	Spec ControlPlaneSpec `json:"spec"`
	// status is the control plane as observed.
	// Until the operator first writes it, status reads observedGeneration -1,
	// so kstatus (Flux, `kubectl wait`) and Argo CD read a just-applied
	// object as in progress, never as current.
	// +optional
	// +kubebuilder:default={"observedGeneration":-1}
	Status ControlPlaneStatus `json:"status,omitempty"`
}

// ControlPlaneList is a list of ControlPlanes.
// +kubebuilder:object:root=true
type ControlPlaneList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ControlPlane `json:"items"`
}

// DesiredReplicas is spec.replicas, or its default.
func (s *ControlPlaneSpec) DesiredReplicas() int { return replicasOrDefault(s.Replicas) }

// EtcdCredentialsStatus is the etcd trust and client certificate every
// replica of a control plane runs.
type EtcdCredentialsStatus struct {
	// trustedCAs are the fingerprints (SHA-256, 16 hex digits) of the etcd
	// CAs the apiservers verify etcd with.
	// +optional
	// +listType=atomic
	TrustedCAs []string `json:"trustedCAs,omitempty"`
	// clientIssuer is the fingerprint of the CA that issued the
	// apiservers' etcd client certificate.
	// +optional
	ClientIssuer string `json:"clientIssuer,omitempty"`
}
