// Package resources builds the Kubernetes objects Quorum runs its members
// in: Pods, Services, PVCs and PodDisruptionBudgets. Objects in, objects
// out: nothing here talks to the API server.
package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// Labels and annotations on the objects of an EtcdCluster.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelCluster   = "quorum.dev/etcd-cluster"
	LabelMember    = "quorum.dev/member"
	LabelZone      = "quorum.dev/zone"
	// LabelVoter is "true" on the pods of voting members: the
	// PodDisruptionBudget counts voters only, never a learner.
	LabelVoter = "quorum.dev/voter"
	// LabelVersion is the etcd version a member's pod runs.
	LabelVersion = "quorum.dev/etcd-version"
	// LabelPreflight marks the pod that checks a version's image before an
	// upgrade; its value is the version.
	LabelPreflight = "quorum.dev/preflight"
	// AnnotationForceNewCluster marks a pod started with --force-new-cluster.
	AnnotationForceNewCluster = "quorum.dev/force-new-cluster"
)

// Ports of an etcd member.
const (
	ClientPort  = 2379
	PeerPort    = 2380
	MetricsPort = 2381
)

// MemberDrainSeconds is how long a deleted member's pod goes on serving
// before etcd is stopped, while the nodes' kube-proxies drop it from the
// client Service.
const MemberDrainSeconds = 5

const (
	dataDir     = "/var/lib/etcd"
	tlsDir      = "/etc/etcd/tls"
	runAsUserID = 65532
)

// DefaultEtcdImage is the image of an etcd version when no image is given.
func DefaultEtcdImage(version string) string { return "registry.k8s.io/etcd:" + version + "-0" }

// EtcdImage is the image a cluster's members run at version.
func EtcdImage(c *quorumv1alpha1.EtcdCluster, version string) string {
	if c.Spec.Image != "" && version == c.Spec.Version {
		return c.Spec.Image
	}
	return DefaultEtcdImage(version)
}

// PeerServiceName names the headless Service of a cluster's members.
func PeerServiceName(cluster string) string { return cluster + "-peer" }

// ClientServiceName names the Service clients reach a cluster on.
func ClientServiceName(cluster string) string { return cluster + "-client" }

// CASecretName names the Secret of a cluster's CA.
func CASecretName(cluster string) string { return cluster + "-ca" }

// ClientSecretName names the Secret of a cluster's client certificate.
func ClientSecretName(cluster string) string { return cluster + "-client-tls" }

// MemberSecretName names the Secret of a member's certificates.
func MemberSecretName(member string) string { return member + "-tls" }

// PVCName names a member's volume claim.
func PVCName(member string) string { return member + "-data" }

// MemberHost is a member's stable DNS name through the headless Service.
func MemberHost(member, cluster, namespace string) string {
	return fmt.Sprintf("%s.%s.%s.svc", member, PeerServiceName(cluster), namespace)
}

// PeerURL is the URL other members reach a member on.
func PeerURL(member, cluster, namespace string) string {
	return fmt.Sprintf("https://%s:%d", MemberHost(member, cluster, namespace), PeerPort)
}

// ClientURL is the URL clients reach a member on.
func ClientURL(member, cluster, namespace string) string {
	return fmt.Sprintf("https://%s:%d", MemberHost(member, cluster, namespace), ClientPort)
}

// ClusterLabels select every object of a cluster.
func ClusterLabels(cluster string) map[string]string {
	return map[string]string{
		LabelName:      "etcd",
		LabelManagedBy: "quorum",
		LabelInstance:  cluster,
		LabelCluster:   cluster,
	}
}

// Selector is the label selector of a cluster's member pods, for /scale.
func Selector(cluster string) string {
	return labels.SelectorFromSet(ClusterLabels(cluster)).String()
}

// MemberPod describes the pod of one member.
type MemberPod struct {
	Cluster *quorumv1alpha1.EtcdCluster
	Member  string
	Zone    string
	Version string
	// InitialCluster is etcd's --initial-cluster: name=peerURL of every
	// member, this one included. Only read when the data dir is empty.
	InitialCluster string
	// NewCluster is true for the first member of a new cluster.
	NewCluster bool
	// Voter labels the pod as a voting member (the PDB counts it).
	Voter bool
	// ForceNewCluster restarts the member as a one-member cluster with its
	// data (quorum-loss recovery).
	ForceNewCluster bool
	// Restore, for the first member of a restored cluster, fetches a
	// snapshot and restores it before etcd starts.
	Restore *RestoreSource
	// CertificatesIssuedAt is the issue time recorded on the member's
	// certificate Secret when the pod is made: a pod whose value differs
	// from the Secret's runs older certificates.
	CertificatesIssuedAt string
}

// AnnotationCertificatesIssuedAt on a member pod is the issue time of the
// certificates it started with.
const AnnotationCertificatesIssuedAt = "quorum.dev/certificates-issued-at"

// RestoreSource is the restore step of a member's pod: a container that
// fetches and verifies the snapshot to /var/lib/etcd/restore/snapshot.db,
// with the volumes it needs. etcdutl then restores it.
type RestoreSource struct {
	Fetch   corev1.Container
	Volumes []corev1.Volume
}

// RestoreBumpRevision is how far a restored cluster's revision jumps past
// the snapshot's: Kubernetes clients cache and watch by revision, and must
// see the restored state as newer than anything they knew.
const RestoreBumpRevision = 1000000000

// Pod builds the member's pod.
func (p MemberPod) Pod() *corev1.Pod {
	c := p.Cluster
	podLabels := ClusterLabels(c.Name)
	for k, v := range c.Spec.PodTemplate.Labels {
		if _, ours := podLabels[k]; !ours {
			podLabels[k] = v
		}
	}
	podLabels[LabelMember] = p.Member
	podLabels[LabelZone] = p.Zone
	podLabels[LabelVersion] = p.Version
	podLabels[LabelVoter] = fmt.Sprint(p.Voter)
	annotations := map[string]string{}
	for k, v := range c.Spec.PodTemplate.Annotations {
		annotations[k] = v
	}
	if p.ForceNewCluster {
		annotations[AnnotationForceNewCluster] = "true"
	}
	if p.CertificatesIssuedAt != "" {
		annotations[AnnotationCertificatesIssuedAt] = p.CertificatesIssuedAt
	}

	state := "existing"
	if p.NewCluster {
		state = "new"
	}
	host := MemberHost(p.Member, c.Name, c.Namespace)
	args := []string{
		"--name=" + p.Member,
		"--data-dir=" + dataDir + "/data",
		fmt.Sprintf("--listen-client-urls=https://0.0.0.0:%d", ClientPort),
		fmt.Sprintf("--advertise-client-urls=https://%s:%d", host, ClientPort),
		fmt.Sprintf("--listen-peer-urls=https://0.0.0.0:%d", PeerPort),
		fmt.Sprintf("--initial-advertise-peer-urls=https://%s:%d", host, PeerPort),
		fmt.Sprintf("--listen-metrics-urls=http://0.0.0.0:%d", MetricsPort),
		"--initial-cluster=" + p.InitialCluster,
		"--initial-cluster-state=" + state,
		"--initial-cluster-token=" + string(c.UID),
		"--client-cert-auth=true",
		"--trusted-ca-file=" + tlsDir + "/server/ca.crt",
		"--cert-file=" + tlsDir + "/server/tls.crt",
		"--key-file=" + tlsDir + "/server/tls.key",
		"--peer-client-cert-auth=true",
		"--peer-trusted-ca-file=" + tlsDir + "/peer/ca.crt",
		"--peer-cert-file=" + tlsDir + "/peer/tls.crt",
		"--peer-key-file=" + tlsDir + "/peer/tls.key",
		"--logger=zap", "--log-outputs=stderr",
	}
	if p.ForceNewCluster {
		args = append(args, "--force-new-cluster=true")
	}
	settings := MaintenanceFlags(c)
	args = append(args, settings...)
	if len(settings) > 0 {
		annotations[AnnotationMaintenance] = MaintenanceHash(c)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        p.Member,
			Namespace:   c.Namespace,
			Labels:      podLabels,
			Annotations: annotations,
		},
		Spec: corev1.PodSpec{
			Hostname:  p.Member,
			Subdomain: PeerServiceName(c.Name),
			// A member is one process with its own identity: the operator
			// replaces it, the kubelet only restarts it.
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			EnableServiceLinks:            ptr.To(false),
			AutomountServiceAccountToken:  ptr.To(false),
			NodeSelector:                  c.Spec.PodTemplate.NodeSelector,
			Tolerations:                   c.Spec.PodTemplate.Tolerations,
			PriorityClassName:             c.Spec.PodTemplate.PriorityClassName,
			Affinity:                      memberAffinity(c.Name, p.Zone),
			SecurityContext:               restrictedPodSecurity(),
			Containers: []corev1.Container{{
				Name:            "etcd",
				Image:           EtcdImage(c, p.Version),
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"/usr/local/bin/etcd"},
				Args:            args,
				Ports: []corev1.ContainerPort{
					{Name: "client", ContainerPort: ClientPort},
					{Name: "peer", ContainerPort: PeerPort},
					{Name: "metrics", ContainerPort: MetricsPort},
				},
				// /readyz fails for a learner and without quorum, so the
				// client Service sends traffic only to serving voters.
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(MetricsPort)}},
					PeriodSeconds:    2,
					TimeoutSeconds:   2,
					FailureThreshold: 2,
				},
				// /livez is a local read: a member waiting for its peers is
				// alive; only a hung process is restarted.
				LivenessProbe: &corev1.Probe{
					ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/livez", Port: intstr.FromInt32(MetricsPort)}},
					InitialDelaySeconds: 30,
					PeriodSeconds:       10,
					TimeoutSeconds:      5,
					FailureThreshold:    8,
				},
				// A deleted member's pod leaves the client Service at once,
				// but each node's kube-proxy drops it a moment later: it
				// serves on meanwhile, so clients reconnecting through the
				// Service (the apiservers) reach a live member the first
				// time instead of backing off from a closed port.
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: MemberDrainSeconds}}},
				Resources: WithDefaultRequests(c.Spec.PodTemplate.Resources, EtcdRequests),
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "data", MountPath: dataDir},
					{Name: "peer-tls", MountPath: tlsDir + "/peer", ReadOnly: true},
					{Name: "server-tls", MountPath: tlsDir + "/server", ReadOnly: true},
				},
			}},
			Volumes: []corev1.Volume{
				dataVolume(c, p.Member),
				secretVolume("peer-tls", peerSecret(c, p.Member)),
				secretVolume("server-tls", serverSecret(c, p.Member)),
			},
		},
	}
	if p.Restore != nil {
		fetch := p.Restore.Fetch
		fetch.Name = "fetch-snapshot"
		fetch.VolumeMounts = append(fetch.VolumeMounts, corev1.VolumeMount{Name: "data", MountPath: dataDir})
		restore := corev1.Container{
			Name:            "restore-snapshot",
			Image:           EtcdImage(c, p.Version),
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{"/usr/local/bin/etcdutl"},
			Args: []string{"snapshot", "restore", dataDir + "/restore/snapshot.db",
				"--data-dir=" + dataDir + "/data",
				"--name=" + p.Member,
				"--initial-cluster=" + p.InitialCluster,
				"--initial-cluster-token=" + string(c.UID),
				fmt.Sprintf("--initial-advertise-peer-urls=https://%s:%d", host, PeerPort),
				fmt.Sprintf("--bump-revision=%d", RestoreBumpRevision),
				"--mark-compacted",
			},
			SecurityContext: pod.Spec.Containers[0].SecurityContext,
			VolumeMounts:    []corev1.VolumeMount{{Name: "data", MountPath: dataDir}},
		}
		pod.Spec.InitContainers = []corev1.Container{fetch, restore}
		pod.Spec.Volumes = append(pod.Spec.Volumes, p.Restore.Volumes...)
	}
	return pod
}

// restrictedPodSecurity is the pod security context of every pod Quorum
// runs its members and replicas in: non-root, with the runtime's seccomp
// profile (Pod Security "restricted").
func restrictedPodSecurity() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To[int64](runAsUserID),
		RunAsGroup:     ptr.To[int64](runAsUserID),
		FSGroup:        ptr.To[int64](runAsUserID),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// MemberSecretKeys are the keys of a member's TLS Secret in auto mode.
const (
	KeyPeerCert   = "peer.crt"
	KeyPeerKey    = "peer.key"
	KeyServerCert = "server.crt"
	KeyServerKey  = "server.key"
	KeyCA         = "ca.crt"
)

// Keys of an EtcdCluster's CA Secret beyond tls.crt and tls.key (the CA
// that issues leaves); the rotation's record is in its annotations
// (reconciler.CARotation).
const (
	// KeyCABundle is the trust bundle every holder verifies with while a
	// rotation holds two CAs; absent, tls.crt alone is trusted.
	KeyCABundle = "ca-bundle.crt"
	// KeyNextCACert and KeyNextCAKey are the new CA while it is trusted but
	// does not issue yet.
	KeyNextCACert = "next.crt"
	KeyNextCAKey  = "next.key"
)

// CATrust is the trust bundle an EtcdCluster's CA Secret data says every
// holder verifies with.
func CATrust(data map[string][]byte) []byte {
	if b := data[KeyCABundle]; len(b) > 0 {
		return b
	}
	return data["tls.crt"]
}

// peerSecret and serverSecret say which Secret holds a member's
// certificates: its own in auto mode, the user's shared ones otherwise.
func peerSecret(c *quorumv1alpha1.EtcdCluster, member string) secretRef {
	if c.Spec.TLS.Auto == nil || *c.Spec.TLS.Auto {
		return secretRef{MemberSecretName(member), KeyPeerCert, KeyPeerKey}
	}
	return secretRef{c.Spec.TLS.PeerSecretRef.Name, "tls.crt", "tls.key"}
}

func serverSecret(c *quorumv1alpha1.EtcdCluster, member string) secretRef {
	if c.Spec.TLS.Auto == nil || *c.Spec.TLS.Auto {
		return secretRef{MemberSecretName(member), KeyServerCert, KeyServerKey}
	}
	return secretRef{c.Spec.TLS.ServerSecretRef.Name, "tls.crt", "tls.key"}
}

type secretRef struct{ name, cert, key string }

func secretVolume(name string, s secretRef) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  s.name,
		DefaultMode: ptr.To[int32](0o440),
		Items: []corev1.KeyToPath{
			{Key: s.cert, Path: "tls.crt"},
			{Key: s.key, Path: "tls.key"},
			{Key: KeyCA, Path: "ca.crt"},
		},
	}}}
}

func dataVolume(c *quorumv1alpha1.EtcdCluster, member string) corev1.Volume {
	if c.Spec.Storage.EmptyDir != nil {
		return corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: c.Spec.Storage.EmptyDir.DeepCopy()}}
	}
	return corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: PVCName(member)},
	}}
}

// memberAffinity pins a member to its zone and keeps two members of one
// cluster off the same node where it can.
func memberAffinity(cluster, zone string) *corev1.Affinity {
	return ZoneAffinity(map[string]string{LabelCluster: cluster}, zone)
}

// ZoneAffinity pins a pod to its zone (when zone is set) and keeps two pods
// matching peers off the same node where it can.
func ZoneAffinity(peers map[string]string, zone string) *corev1.Affinity {
	a := &corev1.Affinity{
		PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 100,
				PodAffinityTerm: corev1.PodAffinityTerm{
					LabelSelector: &metav1.LabelSelector{MatchLabels: peers},
					TopologyKey:   "kubernetes.io/hostname",
				},
			}},
		},
	}
	if zone != "" {
		a.NodeAffinity = &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{
						Key: quorumv1alpha1.LabelZone, Operator: corev1.NodeSelectorOpIn, Values: []string{zone},
					}},
				}},
			},
		}
	}
	return a
}

// MemberPVC builds the member's volume claim.
func MemberPVC(c *quorumv1alpha1.EtcdCluster, member, zone string) *corev1.PersistentVolumeClaim {
	labels := ClusterLabels(c.Name)
	labels[LabelMember] = member
	labels[LabelZone] = zone
	size := resource.MustParse("8Gi")
	if c.Spec.Storage.Size != nil {
		size = *c.Spec.Storage.Size
	}
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: PVCName(member), Namespace: c.Namespace, Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: c.Spec.Storage.StorageClassName,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
}

// PeerService is the headless Service that gives every member its DNS
// name. It publishes members before they are ready: a joining member must
// reach its peers to become ready at all.
func PeerService(c *quorumv1alpha1.EtcdCluster) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: PeerServiceName(c.Name), Namespace: c.Namespace, Labels: ClusterLabels(c.Name)},
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 map[string]string{LabelCluster: c.Name},
			Ports: []corev1.ServicePort{
				{Name: "client", Port: ClientPort, TargetPort: intstr.FromInt32(ClientPort), Protocol: corev1.ProtocolTCP},
				{Name: "peer", Port: PeerPort, TargetPort: intstr.FromInt32(PeerPort), Protocol: corev1.ProtocolTCP},
				// Every member's /metrics, for a ServiceMonitor (config/prometheus).
				{Name: "metrics", Port: MetricsPort, TargetPort: intstr.FromInt32(MetricsPort), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// ClientService is the Service clients use: ready voters only.
func ClientService(c *quorumv1alpha1.EtcdCluster) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ClientServiceName(c.Name), Namespace: c.Namespace, Labels: ClusterLabels(c.Name)},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{LabelCluster: c.Name},
			Ports: []corev1.ServicePort{
				{Name: "client", Port: ClientPort, TargetPort: intstr.FromInt32(ClientPort), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// PodDisruptionBudget keeps quorum through voluntary disruptions (drains):
// it counts voters only and lets at most the voters a quorum can spare go.
func PodDisruptionBudget(c *quorumv1alpha1.EtcdCluster) *policyv1.PodDisruptionBudget {
	voters := int32(3)
	if c.Spec.Replicas != nil {
		voters = *c.Spec.Replicas
	}
	spare := intstr.FromInt32((voters - 1) / 2)
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace, Labels: ClusterLabels(c.Name)},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &spare,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{
				LabelCluster: c.Name,
				LabelVoter:   "true",
			}},
		},
	}
}

// InitialCluster renders etcd's --initial-cluster from name=peerURL pairs,
// sorted for a stable pod spec.
func InitialCluster(peers map[string]string) string {
	names := make([]string, 0, len(peers))
	for n := range peers {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, n+"="+peers[n])
	}
	return strings.Join(parts, ",")
}

// PreflightPodName is the name of the pod that checks a version's image.
func PreflightPodName(cluster string) string { return cluster + "-preflight" }

// PreflightPod runs `etcd --version` from the image of version: if the image
// cannot be pulled or is not that version, the upgrade is refused before
// any member is touched.
func PreflightPod(c *quorumv1alpha1.EtcdCluster, version string) *corev1.Pod {
	labels := ClusterLabels(c.Name)
	labels[LabelPreflight] = version
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: PreflightPodName(c.Name), Namespace: c.Namespace, Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			NodeSelector:                  c.Spec.PodTemplate.NodeSelector,
			Tolerations:                   c.Spec.PodTemplate.Tolerations,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](runAsUserID),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "etcd-version",
				Image:           EtcdImage(c, version),
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"/usr/local/bin/etcd", "--version"},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}

// AutoTLS says whether the operator makes a cluster's certificates.
func AutoTLS(c *quorumv1alpha1.EtcdCluster) bool { return c.Spec.TLS.Auto == nil || *c.Spec.TLS.Auto }

// ClientSecretOf names the Secret with the client certificate that the
// operator, backup pods and control planes use toward a cluster: the
// operator's own in auto mode, the user's otherwise.
func ClientSecretOf(c *quorumv1alpha1.EtcdCluster) string {
	if AutoTLS(c) {
		return ClientSecretName(c.Name)
	}
	return c.Spec.TLS.ClientSecretRef.Name
}

// BackedUpCluster is the name of the EtcdCluster a backup takes snapshots
// of: the one it names, or its ControlPlane's stacked EtcdCluster.
func BackedUpCluster(b *quorumv1alpha1.EtcdBackup) string {
	if b.Spec.ControlPlaneRef != nil {
		return StackedEtcdName(b.Spec.ControlPlaneRef.Name)
	}
	if b.Spec.EtcdClusterRef != nil {
		return b.Spec.EtcdClusterRef.Name
	}
	return ""
}

// AnnotationMaintenance on a member pod is the hash of the maintenance
// flags it started with; a pod whose hash differs from the spec's is
// restarted onto the new settings.
const AnnotationMaintenance = "quorum.dev/maintenance"

// MaintenanceFlags are etcd's flags for spec.maintenance.
func MaintenanceFlags(c *quorumv1alpha1.EtcdCluster) []string {
	m := c.Spec.Maintenance
	var flags []string
	if q := m.QuotaBackendBytes; q != nil {
		flags = append(flags, fmt.Sprintf("--quota-backend-bytes=%d", q.Value()))
	}
	if a := m.AutoCompaction; a != nil {
		flags = append(flags, "--auto-compaction-mode="+a.Mode, "--auto-compaction-retention="+a.Retention)
	}
	return flags
}

// MaintenanceHash identifies the maintenance flags; "" without any (the
// value a pod made before they existed carries).
func MaintenanceHash(c *quorumv1alpha1.EtcdCluster) string {
	flags := MaintenanceFlags(c)
	if len(flags) == 0 {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.Join(flags, " ")))
	return hex.EncodeToString(sum[:8])
}

// NetworkPolicyName names a cluster's NetworkPolicy.
func NetworkPolicyName(cluster string) string { return cluster + "-members" }

// NetworkPolicy limits what reaches a cluster's members: the peer port
// only from the cluster's own members, the client port from pods of the
// cluster's namespace (clients, backup and restore pods, control planes)
// and from the operator's namespace, the metrics and health port from
// anywhere (Prometheus; the kubelet's probes come from the node). Other
// NetworkPolicies can allow more: policies add up.
func NetworkPolicy(c *quorumv1alpha1.EtcdCluster, operatorNamespace string) *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	port := func(p int32) []networkingv1.NetworkPolicyPort {
		pp := intstr.FromInt32(p)
		return []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &pp}}
	}
	members := &metav1.LabelSelector{MatchLabels: map[string]string{LabelName: "etcd", LabelCluster: c.Name}}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: NetworkPolicyName(c.Name), Namespace: c.Namespace, Labels: ClusterLabels(c.Name)},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: *members,
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{Ports: port(PeerPort), From: []networkingv1.NetworkPolicyPeer{{PodSelector: members}}},
				{Ports: port(ClientPort), From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: &metav1.LabelSelector{}},
					{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: operatorNamespace}}},
				}},
				{Ports: port(MetricsPort)},
			},
		},
	}
}
