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
	// +kubebuilder:default={}
	// +optional
	APIServer APIServerSpec `json:"apiServer"`

	// controllerManager tunes kube-controller-manager. Leader election is
	// always on (a Lease in the hosted cluster).
	// +optional
	ControllerManager ControllerManagerSpec `json:"controllerManager,omitempty"`

	// scheduler tunes kube-scheduler. Leader election is always on (a Lease
	// in the hosted cluster).
	// +optional
	Scheduler SchedulerSpec `json:"scheduler,omitempty"`

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

	// addons are installed into the hosted cluster, and kept there at the
	// versions that fit the Kubernetes version its apiservers run. One
	// absent is not installed; one removed from here is uninstalled.
	// +optional
	Addons ControlPlaneAddons `json:"addons,omitempty"`
}

// ControlPlaneAddons are the hosted cluster's add-ons, as kubeadm installs
// them.
type ControlPlaneAddons struct {
	// coreDNS is the cluster DNS: the Deployment coredns and the Service
	// kube-dns at the tenth address of the Service range (the address the
	// kubelet-config tells joining nodes), in kube-system, at the CoreDNS
	// version kubeadm uses for the running Kubernetes minor version.
	// +optional
	CoreDNS *CoreDNSAddon `json:"coreDNS,omitempty"`
	// kubeProxy is the DaemonSet kube-proxy on every node, at the
	// Kubernetes version the apiservers run (the oldest, during an
	// upgrade), reaching the apiservers through the endpoint.
	// +optional
	KubeProxy *KubeProxyAddon `json:"kubeProxy,omitempty"`
	// konnectivity tunnels the apiservers' traffic to the hosted cluster
	// (kubelets for logs, exec and port-forward; webhooks; aggregated
	// APIs) through agents on the nodes, for nodes the apiservers cannot
	// reach: a konnectivity server beside each apiserver (the apiserver's
	// egress selector sends it every connection to the cluster), the
	// DaemonSet konnectivity-agent on every node, which connects out to
	// the servers through the endpoint.
	// +optional
	Konnectivity *KonnectivityAddon `json:"konnectivity,omitempty"`
}

// KonnectivityAddon tunes the konnectivity tunnel.
type KonnectivityAddon struct {
	// port of the endpoint the agents connect to (the servers' agent
	// port); the endpoint Service gets it beside the apiserver's.
	// +kubebuilder:default=8132
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
}

// CoreDNSAddon tunes the hosted cluster's CoreDNS.
type CoreDNSAddon struct {
	// replicas of CoreDNS.
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
}

// KubeProxyAddon tunes the hosted cluster's kube-proxy.
type KubeProxyAddon struct {
	// mode is kube-proxy's proxy mode.
	// +kubebuilder:default=iptables
	// +kubebuilder:validation:Enum=iptables;nftables
	// +optional
	Mode string `json:"mode,omitempty"`
	// masqueradeAll makes kube-proxy SNAT all traffic to Service addresses:
	// for nodes whose bridge does not pass traffic through netfilter
	// (no br_netfilter), where a pod reaching a Service backed on its own
	// node would otherwise not get the answer.
	// +optional
	MasqueradeAll bool `json:"masqueradeAll,omitempty"`
	// conntrackMaxPerCore is the conntrack table size kube-proxy sets per
	// CPU (net.netfilter.nf_conntrack_max); 0 leaves the machine's setting
	// alone, which nodes running in a network namespace of their own
	// (kind, nested nodes) need: only the first namespace may set it.
	// Unset: kube-proxy's default (32768).
	// +kubebuilder:validation:Minimum=0
	// +optional
	ConntrackMaxPerCore *int32 `json:"conntrackMaxPerCore,omitempty"`
}

// AddonStatus is an add-on as observed in the hosted cluster.
type AddonStatus struct {
	// name: coreDNS, kubeProxy or konnectivity.
	Name string `json:"name"`
	// version the operator installed.
	// +optional
	Version string `json:"version,omitempty"`
	// desired is the number of pods the add-on's Deployment or DaemonSet
	// wants; ready how many of those at its current version are ready.
	// +optional
	Desired int32 `json:"desired"`
	// +optional
	Ready int32 `json:"ready"`
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
	// without leading dashes (event-ttl: 2h). The flags Quorum owns (etcd
	// access, authentication, authorization, certificates and TLS, service
	// accounts, encryption, audit, profiling, leader election) are refused,
	// with a message naming the flag; other flags Quorum sets may be
	// overridden.
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[a-z0-9][-a-z0-9.]*$'))",message="extraArgs keys are flag names without leading dashes, such as event-ttl"
	// +optional
	ExtraArgs map[string]string `json:"extraArgs,omitempty"`

	// resources of the component's container. Requests not given default
	// to kube-apiserver 100m CPU and 256Mi memory (or podTemplate.resources
	// for kube-apiserver), kube-controller-manager 50m and 128Mi,
	// kube-scheduler 20m and 64Mi.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// Flags Quorum owns, refused in extraArgs: one CEL rule per flag and per
// prefix on the spec types below, each with a message naming it (CRD
// validation cannot call Go, and a message built from the map's keys costs
// more than the API server allows). The envtest suite
// (TestReservedFlagsAreRefused) checks every flag and prefix here is
// refused with its own message, so a flag added here without its rule
// fails it.
var (
	// ReservedAPIServerFlags are kube-apiserver flags refused by name.
	ReservedAPIServerFlags = []string{"client-ca-file", "kubelet-certificate-authority", "token-auth-file", "anonymous-auth", "profiling", "enable-bootstrap-token-auth", "advertise-address", "secure-port", "etcd-servers", "etcd-cafile", "etcd-certfile", "etcd-keyfile", "etcd-prefix", "audit-log-path", "audit-policy-file", "audit-webhook-config-file", "authorization-mode", "authorization-config", "authentication-config", "encryption-provider-config", "service-account-issuer", "service-account-key-file", "service-account-signing-key-file", "tls-cert-file", "tls-private-key-file", "tls-min-version", "tls-cipher-suites", "kubelet-client-certificate", "kubelet-client-key", "proxy-client-cert-file", "proxy-client-key-file", "requestheader-client-ca-file", "requestheader-allowed-names", "oidc-issuer-url", "egress-selector-config-file"}
	// ReservedAPIServerPrefixes are kube-apiserver flag prefixes refused.
	ReservedAPIServerPrefixes = []string{"etcd-", "audit-", "requestheader-", "service-account-", "oidc-", "authentication-", "authorization-", "encryption-provider-", "tls-", "kubelet-client-", "proxy-client-"}
	// ReservedControllerManagerFlags are kube-controller-manager flags refused by name.
	ReservedControllerManagerFlags = []string{"kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig", "root-ca-file", "client-ca-file", "service-account-private-key-file", "use-service-account-credentials", "leader-elect", "profiling", "secure-port", "controllers", "cluster-signing-cert-file", "cluster-signing-key-file", "requestheader-client-ca-file", "tls-cert-file", "tls-private-key-file", "tls-min-version", "tls-cipher-suites"}
	// ReservedControllerManagerPrefixes are kube-controller-manager flag prefixes refused.
	ReservedControllerManagerPrefixes = []string{"cluster-signing-", "requestheader-", "tls-"}
	// ReservedSchedulerFlags are kube-scheduler flags refused by name.
	ReservedSchedulerFlags = []string{"kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig", "leader-elect", "profiling", "config", "secure-port", "requestheader-client-ca-file", "tls-cert-file", "tls-private-key-file", "tls-min-version", "tls-cipher-suites"}
	// ReservedSchedulerPrefixes are kube-scheduler flag prefixes refused.
	ReservedSchedulerPrefixes = []string{"requestheader-", "tls-"}
)

// APIServerSpec tunes kube-apiserver.
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('client-ca-file' in self.extraArgs)",message="apiServer.extraArgs: --client-ca-file is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('kubelet-certificate-authority' in self.extraArgs)",message="apiServer.extraArgs: --kubelet-certificate-authority is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('token-auth-file' in self.extraArgs)",message="apiServer.extraArgs: --token-auth-file is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('anonymous-auth' in self.extraArgs)",message="apiServer.extraArgs: --anonymous-auth is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('profiling' in self.extraArgs)",message="apiServer.extraArgs: --profiling is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('enable-bootstrap-token-auth' in self.extraArgs)",message="apiServer.extraArgs: --enable-bootstrap-token-auth is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('advertise-address' in self.extraArgs)",message="apiServer.extraArgs: --advertise-address is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('secure-port' in self.extraArgs)",message="apiServer.extraArgs: --secure-port is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('etcd-servers' in self.extraArgs)",message="apiServer.extraArgs: --etcd-servers is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('etcd-cafile' in self.extraArgs)",message="apiServer.extraArgs: --etcd-cafile is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('etcd-certfile' in self.extraArgs)",message="apiServer.extraArgs: --etcd-certfile is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('etcd-keyfile' in self.extraArgs)",message="apiServer.extraArgs: --etcd-keyfile is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('etcd-prefix' in self.extraArgs)",message="apiServer.extraArgs: --etcd-prefix is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('audit-log-path' in self.extraArgs)",message="apiServer.extraArgs: --audit-log-path is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('audit-policy-file' in self.extraArgs)",message="apiServer.extraArgs: --audit-policy-file is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('audit-webhook-config-file' in self.extraArgs)",message="apiServer.extraArgs: --audit-webhook-config-file is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('authorization-mode' in self.extraArgs)",message="apiServer.extraArgs: --authorization-mode is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('authorization-config' in self.extraArgs)",message="apiServer.extraArgs: --authorization-config is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('authentication-config' in self.extraArgs)",message="apiServer.extraArgs: --authentication-config is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('encryption-provider-config' in self.extraArgs)",message="apiServer.extraArgs: --encryption-provider-config is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('service-account-issuer' in self.extraArgs)",message="apiServer.extraArgs: --service-account-issuer is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('service-account-key-file' in self.extraArgs)",message="apiServer.extraArgs: --service-account-key-file is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('service-account-signing-key-file' in self.extraArgs)",message="apiServer.extraArgs: --service-account-signing-key-file is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('tls-cert-file' in self.extraArgs)",message="apiServer.extraArgs: --tls-cert-file is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('tls-private-key-file' in self.extraArgs)",message="apiServer.extraArgs: --tls-private-key-file is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('tls-min-version' in self.extraArgs)",message="apiServer.extraArgs: --tls-min-version is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('tls-cipher-suites' in self.extraArgs)",message="apiServer.extraArgs: --tls-cipher-suites is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('kubelet-client-certificate' in self.extraArgs)",message="apiServer.extraArgs: --kubelet-client-certificate is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('kubelet-client-key' in self.extraArgs)",message="apiServer.extraArgs: --kubelet-client-key is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('proxy-client-cert-file' in self.extraArgs)",message="apiServer.extraArgs: --proxy-client-cert-file is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('proxy-client-key-file' in self.extraArgs)",message="apiServer.extraArgs: --proxy-client-key-file is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('requestheader-client-ca-file' in self.extraArgs)",message="apiServer.extraArgs: --requestheader-client-ca-file is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('requestheader-allowed-names' in self.extraArgs)",message="apiServer.extraArgs: --requestheader-allowed-names is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('oidc-issuer-url' in self.extraArgs)",message="apiServer.extraArgs: --oidc-issuer-url is owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('egress-selector-config-file' in self.extraArgs)",message="apiServer.extraArgs: --egress-selector-config-file is owned by Quorum (the konnectivity add-on) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('etcd-'))",message="apiServer.extraArgs: --etcd-* flags are owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('audit-'))",message="apiServer.extraArgs: --audit-* flags are owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('requestheader-'))",message="apiServer.extraArgs: --requestheader-* flags are owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('service-account-'))",message="apiServer.extraArgs: --service-account-* flags are owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('oidc-'))",message="apiServer.extraArgs: --oidc-* flags are owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('authentication-'))",message="apiServer.extraArgs: --authentication-* flags are owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('authorization-'))",message="apiServer.extraArgs: --authorization-* flags are owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('encryption-provider-'))",message="apiServer.extraArgs: --encryption-provider-* flags are owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('tls-'))",message="apiServer.extraArgs: --tls-* flags are owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('kubelet-client-'))",message="apiServer.extraArgs: --kubelet-client-* flags are owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('proxy-client-'))",message="apiServer.extraArgs: --proxy-client-* flags are owned by Quorum (etcd access, authentication, authorization, certificates and TLS, service accounts, encryption, audit, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('disable-admission-plugins' in self.extraArgs) || !self.extraArgs['disable-admission-plugins'].matches('(^|,) *NodeRestriction *(,|$)')",message="apiServer.extraArgs: --disable-admission-plugins cannot disable NodeRestriction: it keeps each node's kubelet to its own node"
type APIServerSpec struct {
	ComponentSpec `json:",inline"`

	// encryptionAtRest encrypts the hosted cluster's Secrets in etcd (and
	// so in every snapshot): secretbox with a key per ControlPlane, kept in
	// the Secret <name>-encryption. On by default.
	// +kubebuilder:default={provider: secretbox}
	// +optional
	EncryptionAtRest EncryptionAtRest `json:"encryptionAtRest"`

	// audit turns on the apiservers' audit log with a policy from a
	// ConfigMap. Off when unset.
	// +optional
	Audit *APIServerAudit `json:"audit,omitempty"`
}

// AuditOutput is where audit events go.
// +kubebuilder:validation:Enum=Stdout;Volume
type AuditOutput string

const (
	// AuditStdout writes audit events to the apiserver container's
	// standard output, for the node's log pipeline.
	AuditStdout AuditOutput = "Stdout"
	// AuditVolume writes them to a file on an emptyDir volume of each
	// replica pod (audit-log, mounted at /var/log/kubernetes/audit),
	// rotated by maxAge, maxSize and maxBackups.
	AuditVolume AuditOutput = "Volume"
)

// APIServerAudit is the audit log of the hosted apiservers.
// +kubebuilder:validation:XValidation:rule="self.output == 'Volume' || (!has(self.maxAge) && !has(self.maxSize) && !has(self.maxBackups))",message="audit: maxAge, maxSize and maxBackups rotate the Volume output only"
type APIServerAudit struct {
	// policyConfigMapRef names a ConfigMap in this namespace holding the
	// audit Policy (audit.k8s.io/v1) under key policy.yaml. A policy the
	// apiserver would refuse is refused before any replica rolls
	// (Progressing=False, AuditPolicyInvalid); a change to it rolls the
	// replicas.
	// +required
	PolicyConfigMapRef LocalObjectReference `json:"policyConfigMapRef"`

	// output: Stdout (the default) or Volume.
	// +kubebuilder:default=Stdout
	// +optional
	Output AuditOutput `json:"output,omitempty"`

	// maxAge is how many days rotated audit files are kept (Volume).
	// +kubebuilder:validation:XValidation:rule="self >= 1 && self <= 366",message="audit.maxAge must be between 1 and 366 days"
	// +optional
	MaxAge *int32 `json:"maxAge,omitempty"`

	// maxSize is the size in MiB at which the audit file is rotated (Volume).
	// +kubebuilder:validation:XValidation:rule="self >= 1 && self <= 10240",message="audit.maxSize must be between 1 and 10240 MiB"
	// +optional
	MaxSize *int32 `json:"maxSize,omitempty"`

	// maxBackups is how many rotated audit files are kept (Volume).
	// +kubebuilder:validation:XValidation:rule="self >= 0 && self <= 100",message="audit.maxBackups must be between 0 and 100"
	// +optional
	MaxBackups *int32 `json:"maxBackups,omitempty"`
}

// AuditPolicyKey is the key of the audit Policy in its ConfigMap.
const AuditPolicyKey = "policy.yaml"

// EncryptionAtRest is how the hosted apiserver encrypts resources in etcd.
type EncryptionAtRest struct {
	// provider of the encryption: secretbox (XSalsa20 and Poly1305).
	// +kubebuilder:default=secretbox
	// +kubebuilder:validation:Enum=secretbox
	// +optional
	Provider string `json:"provider,omitempty"`
}

// ControllerManagerSpec tunes kube-controller-manager.
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('kubeconfig' in self.extraArgs)",message="controllerManager.extraArgs: --kubeconfig is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('authentication-kubeconfig' in self.extraArgs)",message="controllerManager.extraArgs: --authentication-kubeconfig is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('authorization-kubeconfig' in self.extraArgs)",message="controllerManager.extraArgs: --authorization-kubeconfig is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('root-ca-file' in self.extraArgs)",message="controllerManager.extraArgs: --root-ca-file is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('client-ca-file' in self.extraArgs)",message="controllerManager.extraArgs: --client-ca-file is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('service-account-private-key-file' in self.extraArgs)",message="controllerManager.extraArgs: --service-account-private-key-file is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('use-service-account-credentials' in self.extraArgs)",message="controllerManager.extraArgs: --use-service-account-credentials is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('leader-elect' in self.extraArgs)",message="controllerManager.extraArgs: --leader-elect is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('profiling' in self.extraArgs)",message="controllerManager.extraArgs: --profiling is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('secure-port' in self.extraArgs)",message="controllerManager.extraArgs: --secure-port is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('controllers' in self.extraArgs)",message="controllerManager.extraArgs: --controllers is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('cluster-signing-cert-file' in self.extraArgs)",message="controllerManager.extraArgs: --cluster-signing-cert-file is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('cluster-signing-key-file' in self.extraArgs)",message="controllerManager.extraArgs: --cluster-signing-key-file is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('requestheader-client-ca-file' in self.extraArgs)",message="controllerManager.extraArgs: --requestheader-client-ca-file is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('tls-cert-file' in self.extraArgs)",message="controllerManager.extraArgs: --tls-cert-file is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('tls-private-key-file' in self.extraArgs)",message="controllerManager.extraArgs: --tls-private-key-file is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('tls-min-version' in self.extraArgs)",message="controllerManager.extraArgs: --tls-min-version is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('tls-cipher-suites' in self.extraArgs)",message="controllerManager.extraArgs: --tls-cipher-suites is owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('cluster-signing-'))",message="controllerManager.extraArgs: --cluster-signing-* flags are owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('requestheader-'))",message="controllerManager.extraArgs: --requestheader-* flags are owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('tls-'))",message="controllerManager.extraArgs: --tls-* flags are owned by Quorum (credentials, certificates and TLS, service accounts, leader election, profiling) and cannot be set here"
type ControllerManagerSpec struct {
	ComponentSpec `json:",inline"`
}

// SchedulerSpec tunes kube-scheduler.
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('kubeconfig' in self.extraArgs)",message="scheduler.extraArgs: --kubeconfig is owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('authentication-kubeconfig' in self.extraArgs)",message="scheduler.extraArgs: --authentication-kubeconfig is owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('authorization-kubeconfig' in self.extraArgs)",message="scheduler.extraArgs: --authorization-kubeconfig is owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('leader-elect' in self.extraArgs)",message="scheduler.extraArgs: --leader-elect is owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('profiling' in self.extraArgs)",message="scheduler.extraArgs: --profiling is owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('config' in self.extraArgs)",message="scheduler.extraArgs: --config is owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('secure-port' in self.extraArgs)",message="scheduler.extraArgs: --secure-port is owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('requestheader-client-ca-file' in self.extraArgs)",message="scheduler.extraArgs: --requestheader-client-ca-file is owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('tls-cert-file' in self.extraArgs)",message="scheduler.extraArgs: --tls-cert-file is owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('tls-private-key-file' in self.extraArgs)",message="scheduler.extraArgs: --tls-private-key-file is owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('tls-min-version' in self.extraArgs)",message="scheduler.extraArgs: --tls-min-version is owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !('tls-cipher-suites' in self.extraArgs)",message="scheduler.extraArgs: --tls-cipher-suites is owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('requestheader-'))",message="scheduler.extraArgs: --requestheader-* flags are owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || !self.extraArgs.exists(k, k.startsWith('tls-'))",message="scheduler.extraArgs: --tls-* flags are owned by Quorum (credentials, TLS, leader election, profiling) and cannot be set here"
type SchedulerSpec struct {
	ComponentSpec `json:",inline"`
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
	// addons are the add-ons of spec.addons as found in the hosted
	// cluster.
	// +optional
	// +listType=map
	// +listMapKey=name
	Addons []AddonStatus `json:"addons,omitempty"`
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
