package resources

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// The konnectivity add-on, as the Kubernetes documentation sets it up
// ("Set up Konnectivity service"): each replica runs a konnectivity server
// beside its apiserver, which sends every connection to the hosted
// cluster (kubelets, webhooks, aggregated APIs) to it over a Unix socket
// (its egress selector); agents on the nodes connect out to the servers
// through the endpoint, prove who they are with a service-account token
// the servers check by TokenReview, and dial what the apiservers ask for.
// The agents count the servers by the leases the servers publish in the
// hosted cluster, so scaling the replicas changes no pod.
const (
	AddonKonnectivity = "konnectivity"
	// KonnectivityVersion is the konnectivity (apiserver-network-proxy)
	// release the add-on runs; its client is in the apiservers of 1.34 to
	// 1.36.
	KonnectivityVersion = "v0.34.0"
	// KonnectivityAgentName names the agents' DaemonSet, ServiceAccount
	// and kubeconfig ConfigMap in kube-system.
	KonnectivityAgentName = "konnectivity-agent"
	// KonnectivityServerUser is the servers' user in the hosted cluster
	// (their kubeconfig): TokenReviews and their leases.
	KonnectivityServerUser = "system:konnectivity-server"
	// KonnectivityAudience is the audience of the agents' tokens.
	KonnectivityAudience = "system:konnectivity-server"
	// KonnectivityServerContainer is the server's container in a replica.
	KonnectivityServerContainer = "konnectivity-server"
	// DefaultKonnectivityPort is the agents' port unless
	// addons.konnectivity.port says otherwise.
	DefaultKonnectivityPort = 8132
	// Admin (metrics) and health ports of the servers and the agents.
	konnectivityAdminPort  = 8133
	konnectivityHealthPort = 8134

	// AnnotationEgressSelector on a replica pod is its apiserver's egress
	// selector configuration, which the apiserver reads as a file through
	// the downward API: it is fixed, so it needs no object of its own.
	AnnotationEgressSelector = "quorum.dev/egress-selector-configuration"

	konnectivityDir         = "/etc/kubernetes/konnectivity-server"
	konnectivitySocket      = konnectivityDir + "/konnectivity-server.socket"
	egressSelectorDir       = "/etc/kubernetes/egress-selector"
	egressSelectorFile      = "egress-selector-configuration.yaml"
	konnectivityTokenDir    = "/var/run/secrets/tokens"
	konnectivityTokenFile   = "konnectivity-agent-token"
	konnectivityAgentCfg    = "/etc/konnectivity-agent"
	serviceAccountCAPath    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
	serviceAccountTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// KonnectivityServerImage is konnectivity's server image at
// KonnectivityVersion.
func KonnectivityServerImage() string {
	return "registry.k8s.io/kas-network-proxy/proxy-server:" + KonnectivityVersion
}

// KonnectivityAgentImage is konnectivity's agent image at
// KonnectivityVersion.
func KonnectivityAgentImage() string {
	return "registry.k8s.io/kas-network-proxy/proxy-agent:" + KonnectivityVersion
}

// KonnectivityEnabled says whether cp asks for the konnectivity add-on.
func KonnectivityEnabled(cp *quorumv1alpha1.ControlPlane) bool {
	return cp.Spec.Addons.Konnectivity != nil
}

// KonnectivityPort is the endpoint port the agents connect to.
func KonnectivityPort(cp *quorumv1alpha1.ControlPlane) int32 {
	if k := cp.Spec.Addons.Konnectivity; k != nil && k.Port != 0 {
		return k.Port
	}
	return DefaultKonnectivityPort
}

// egressSelectorConfiguration sends the apiserver's connections to the
// hosted cluster to the konnectivity server over its socket; those to
// etcd and the control plane's own stay direct.
func egressSelectorConfiguration() string {
	return `apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: GRPC
    transport:
      uds:
        udsName: ` + konnectivitySocket + `
`
}

// konnectivityServer is a replica's konnectivity server: the agents'
// port on the pod, the apiserver's socket in a folder both mount; agents
// are served the apiserver's certificate (it names the endpoint) and
// authenticated by their tokens, which the server checks with its own
// kubeconfig through its replica's apiserver.
func konnectivityServer(cp *quorumv1alpha1.ControlPlane, security *corev1.SecurityContext, pkiMount corev1.VolumeMount) (corev1.Container, []corev1.Volume) {
	args := map[string]string{
		"uds-name":                 konnectivitySocket,
		"delete-existing-uds-file": "true",
		"server-port":              "0",
		"mode":                     "grpc",
		"cluster-cert":             pkiDir + "/" + PKIAPIServerCert,
		"cluster-key":              pkiDir + "/" + PKIAPIServerKey,
		"agent-port":               fmt.Sprint(KonnectivityPort(cp)),
		"admin-port":               fmt.Sprint(konnectivityAdminPort),
		"health-port":              fmt.Sprint(konnectivityHealthPort),
		"agent-namespace":          metav1.NamespaceSystem,
		"agent-service-account":    KonnectivityAgentName,
		"authentication-audience":  KonnectivityAudience,
		"kubeconfig":               kubeconfigDir + "/konnectivity-server/" + KubeconfigKey,
		"server-id":                "$(POD_NAME)",
		// Agents count the servers by their leases in the hosted cluster.
		"enable-lease-controller": "true",
		// A connection to a node goes through that node's agent.
		"proxy-strategies": "destHost,default",
		"keepalive-time":   "30s",
		"cipher-suites":    TLSCipherSuites,
		"v":                "2",
	}
	c := corev1.Container{
		Name:            KonnectivityServerContainer,
		Image:           KonnectivityServerImage(),
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"/proxy-server"},
		Args:            flags(args),
		Env:             []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
		Ports: []corev1.ContainerPort{
			{Name: "konnectivity", ContainerPort: KonnectivityPort(cp)},
		},
		// No readiness probe: the server is ready once an agent is
		// connected, and agents reach it only through the endpoint, which
		// sends traffic to Ready replicas alone.
		LivenessProbe: &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(konnectivityHealthPort)}},
			InitialDelaySeconds: 10, PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: 6,
		},
		SecurityContext: security,
		Resources:       WithDefaultRequests(corev1.ResourceRequirements{}, KonnectivityServerRequests),
		VolumeMounts: []corev1.VolumeMount{
			pkiMount,
			{Name: "konnectivity-uds", MountPath: konnectivityDir},
			{Name: "konnectivity-server-kubeconfig", MountPath: kubeconfigDir + "/konnectivity-server", ReadOnly: true},
		},
	}
	volumes := []corev1.Volume{
		{Name: "konnectivity-uds", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "konnectivity-server-kubeconfig", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: KubeconfigSecretName(cp.Name, KubeconfigKonnectivityServer), DefaultMode: ptr.To[int32](0o440),
		}}},
		{Name: "egress-selector", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{{
				Path:     egressSelectorFile,
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['" + AnnotationEgressSelector + "']"},
			}},
		}}},
	}
	return c, volumes
}

// konnectivityAPIServerMounts are what the apiserver mounts of
// konnectivity: the server's socket and its egress selector file.
func konnectivityAPIServerMounts() []corev1.VolumeMount {
	return []corev1.VolumeMount{
		{Name: "konnectivity-uds", MountPath: konnectivityDir},
		{Name: "egress-selector", MountPath: egressSelectorDir, ReadOnly: true},
	}
}

// konnectivity is the add-on's hosted objects: the servers' rights (check
// agents' tokens, keep their leases), the agents' service account, their
// right to count the servers' leases, and the DaemonSet: on every node,
// on the node's network, connecting to the endpoint and known to the
// servers by the node's address (so a connection to a kubelet goes
// through its own node's agent).
func konnectivity(cp *quorumv1alpha1.ControlPlane) (Addon, error) {
	sys := metav1.NamespaceSystem
	host := EndpointHost(cp)
	kubeconfig, err := serviceAccountKubeconfig(cp, sys)
	if err != nil {
		return Addon{}, err
	}
	rbacMeta := func(kind string) metav1.TypeMeta { return typeMeta("rbac.authorization.k8s.io/v1", kind) }
	leases := rbacv1.PolicyRule{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}}
	serverLeases, agentLeases := leases, leases
	serverLeases.Verbs = []string{"get", "list", "watch", "create", "update", "delete"}
	agentLeases.Verbs = []string{"get", "list", "watch"}
	serverName := "quorum:konnectivity-server"
	labels := map[string]string{"k8s-app": KonnectivityAgentName}
	args := map[string]string{
		"ca-cert":                    serviceAccountCAPath,
		"proxy-server-host":          host,
		"proxy-server-port":          fmt.Sprint(KonnectivityPort(cp)),
		"admin-server-port":          fmt.Sprint(konnectivityAdminPort),
		"health-server-port":         fmt.Sprint(konnectivityHealthPort),
		"service-account-token-path": konnectivityTokenDir + "/" + konnectivityTokenFile,
		"agent-identifiers":          "ipv4=$(HOST_IP)",
		"count-server-leases":        "true",
		"sync-forever":               "true",
		"kubeconfig":                 konnectivityAgentCfg + "/kubeconfig.conf",
		"keepalive-time":             "30s",
		"v":                          "2",
	}
	daemonSet := &appsv1.DaemonSet{
		TypeMeta:   typeMeta("apps/v1", "DaemonSet"),
		ObjectMeta: addonMeta(AddonKonnectivity, sys, KonnectivityAgentName, labels),
		Spec: appsv1.DaemonSetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					PriorityClassName:  "system-cluster-critical",
					ServiceAccountName: KonnectivityAgentName,
					HostNetwork:        true,
					Tolerations:        []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					NodeSelector:       map[string]string{corev1.LabelOSStable: "linux"},
					SecurityContext:    &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name:    KonnectivityAgentName,
						Image:   KonnectivityAgentImage(),
						Command: []string{"/proxy-agent"},
						Args:    flags(args),
						Env: []corev1.EnvVar{{Name: "HOST_IP", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.hostIP"}}}},
						LivenessProbe: &corev1.Probe{
							ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Path: "/healthz", Port: intstr.FromInt32(konnectivityHealthPort)}},
							InitialDelaySeconds: 15, PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: 6,
						},
						// Ready once connected to a server.
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Path: "/readyz", Port: intstr.FromInt32(konnectivityHealthPort)}},
							PeriodSeconds: 5, TimeoutSeconds: 5,
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						Resources: WithDefaultRequests(corev1.ResourceRequirements{}, KonnectivityAgentRequests),
						VolumeMounts: []corev1.VolumeMount{
							{Name: "konnectivity-agent-token", MountPath: konnectivityTokenDir, ReadOnly: true},
							{Name: KonnectivityAgentName, MountPath: konnectivityAgentCfg, ReadOnly: true},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "konnectivity-agent-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
							Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
								Path: konnectivityTokenFile, Audience: KonnectivityAudience, ExpirationSeconds: ptr.To[int64](3600),
							}}},
						}}},
						{Name: KonnectivityAgentName, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: KonnectivityAgentName}}}},
					},
				},
			},
		},
	}
	objects := []runtime.Object{
		&rbacv1.ClusterRoleBinding{TypeMeta: rbacMeta("ClusterRoleBinding"), ObjectMeta: addonMeta(AddonKonnectivity, "", "system:konnectivity-server", nil),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: KonnectivityServerUser}}},
		&rbacv1.Role{TypeMeta: rbacMeta("Role"), ObjectMeta: addonMeta(AddonKonnectivity, sys, serverName, nil), Rules: []rbacv1.PolicyRule{serverLeases}},
		&rbacv1.RoleBinding{TypeMeta: rbacMeta("RoleBinding"), ObjectMeta: addonMeta(AddonKonnectivity, sys, serverName, nil),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: serverName},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: KonnectivityServerUser}}},
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: addonMeta(AddonKonnectivity, sys, KonnectivityAgentName, nil)},
		&rbacv1.Role{TypeMeta: rbacMeta("Role"), ObjectMeta: addonMeta(AddonKonnectivity, sys, KonnectivityAgentName, nil), Rules: []rbacv1.PolicyRule{agentLeases}},
		&rbacv1.RoleBinding{TypeMeta: rbacMeta("RoleBinding"), ObjectMeta: addonMeta(AddonKonnectivity, sys, KonnectivityAgentName, nil),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: KonnectivityAgentName},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: KonnectivityAgentName, Namespace: sys}}},
		&corev1.ConfigMap{TypeMeta: typeMeta("v1", "ConfigMap"), ObjectMeta: addonMeta(AddonKonnectivity, sys, KonnectivityAgentName, labels),
			Data: map[string]string{"kubeconfig.conf": string(kubeconfig)}},
		daemonSet,
	}
	return Addon{Name: AddonKonnectivity, Version: KonnectivityVersion, Objects: objects}, nil
}
