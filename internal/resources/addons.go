package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// The hosted cluster's add-ons, made as kubeadm's addon phase makes them
// (k8s.io/kubernetes/cmd/kubeadm/app/phases/addons): same names, labels,
// RBAC and configuration, so that tools and people who know a kubeadm
// cluster find them where they look.
const (
	AddonCoreDNS   = "coreDNS"
	AddonKubeProxy = "kubeProxy"

	// LabelAddon marks every object of an add-on with its name; with
	// LabelManagedBy ManagedBy it is what the operator uninstalls.
	LabelAddon = "quorum.dev/addon"
	ManagedBy  = "quorum"

	// AnnotationConfigHash on kube-proxy's pods is its configuration's
	// hash.
	AnnotationConfigHash = "quorum.dev/config-hash"

	CoreDNSName     = "coredns"
	KubeDNSService  = "kube-dns"
	KubeProxyName   = "kube-proxy"
	kubeProxyConfig = "/var/lib/kube-proxy"
)

// coreDNSVersions is kubeadm's CoreDNS version for each Kubernetes minor
// version (constants.CoreDNSVersion of each release).
var coreDNSVersions = map[int]string{33: "v1.12.0", 34: "v1.12.1", 35: "v1.13.1", 36: "v1.14.2"}

// CoreDNSVersion is the CoreDNS version for a Kubernetes version: the one
// kubeadm of that minor version installs; past the newest minor known, the
// newest; before the oldest, the oldest.
func CoreDNSVersion(kubernetes string) string {
	minor := 0
	if _, err := fmt.Sscanf(strings.TrimPrefix(kubernetes, "v"), "1.%d.", &minor); err != nil {
		minor = 0
	}
	known := make([]int, 0, len(coreDNSVersions))
	for m := range coreDNSVersions {
		known = append(known, m)
	}
	sort.Ints(known)
	pick := known[0]
	for _, m := range known {
		if m <= minor {
			pick = m
		}
	}
	return coreDNSVersions[pick]
}

// CoreDNSImage is CoreDNS's image at a CoreDNS version.
func CoreDNSImage(version string) string { return "registry.k8s.io/coredns/coredns:" + version }

// KubeProxyImage is kube-proxy's image at a Kubernetes version.
func KubeProxyImage(version string) string { return "registry.k8s.io/kube-proxy:" + version }

// Addon is one add-on's objects for the hosted cluster, in the order they
// are applied, and the version they run.
type Addon struct {
	Name    string
	Version string
	Objects []runtime.Object
}

// Addons are the add-ons spec.addons asks for, at the versions that fit
// kubernetes (the oldest version the apiservers run).
func Addons(cp *quorumv1alpha1.ControlPlane, kubernetes string) ([]Addon, error) {
	var out []Addon
	if c := cp.Spec.Addons.CoreDNS; c != nil {
		a, err := coreDNS(cp, c, kubernetes)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if k := cp.Spec.Addons.KubeProxy; k != nil {
		a, err := kubeProxy(cp, k, kubernetes)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if KonnectivityEnabled(cp) {
		a, err := konnectivity(cp)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// AddonNames are every add-on the operator knows, installed or not.
var AddonNames = []string{AddonCoreDNS, AddonKubeProxy, AddonKonnectivity}

// AddonObjectKinds lists, per add-on, the objects it is made of (kind,
// namespace, name), for uninstalling one not asked for any more: those its
// builder makes, whatever the spec (names do not depend on it).
func AddonObjectKinds(name string) [][3]string {
	cp := &quorumv1alpha1.ControlPlane{Spec: quorumv1alpha1.ControlPlaneSpec{Addons: quorumv1alpha1.ControlPlaneAddons{
		CoreDNS: &quorumv1alpha1.CoreDNSAddon{}, KubeProxy: &quorumv1alpha1.KubeProxyAddon{}, Konnectivity: &quorumv1alpha1.KonnectivityAddon{},
	}}}
	addons, err := Addons(cp, "v1.36.0")
	if err != nil {
		panic(err) // the default Service range always has a DNS address
	}
	var out [][3]string
	for _, a := range addons {
		if a.Name != name {
			continue
		}
		// Workloads first, then what they use.
		for i := len(a.Objects) - 1; i >= 0; i-- {
			o := a.Objects[i]
			m := o.(metav1.Object)
			out = append(out, [3]string{o.GetObjectKind().GroupVersionKind().Kind, m.GetNamespace(), m.GetName()})
		}
	}
	return out
}

// serviceAccountKubeconfig reaches the apiservers at the endpoint with
// the pod's service-account token, trusting the CA that comes with it: for
// add-ons on the nodes' network, which cannot count on the hosted
// "kubernetes" Service.
func serviceAccountKubeconfig(cp *quorumv1alpha1.ControlPlane, namespace string) ([]byte, error) {
	return yaml.Marshal(map[string]any{
		"apiVersion": "v1",
		"kind":       "Config",
		"clusters": []any{map[string]any{"name": "default", "cluster": map[string]any{
			"certificate-authority": serviceAccountCAPath,
			"server":                EndpointURL(cp),
		}}},
		"contexts":        []any{map[string]any{"name": "default", "context": map[string]any{"cluster": "default", "namespace": namespace, "user": "default"}}},
		"current-context": "default",
		"users":           []any{map[string]any{"name": "default", "user": map[string]any{"tokenFile": serviceAccountTokenPath}}},
	})
}

func addonMeta(addon, namespace, name string, extra map[string]string) metav1.ObjectMeta {
	labels := map[string]string{LabelAddon: addon, LabelManagedBy: ManagedBy}
	for k, v := range extra {
		labels[k] = v
	}
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels}
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// coreDNS is kubeadm's CoreDNS: the Corefile forwards other names to the
// node's resolver.
func coreDNS(cp *quorumv1alpha1.ControlPlane, spec *quorumv1alpha1.CoreDNSAddon, kubernetes string) (Addon, error) {
	dnsIP, err := ClusterDNSIP(ServiceCIDR(cp))
	if err != nil {
		return Addon{}, err
	}
	version := CoreDNSVersion(kubernetes)
	sys := metav1.NamespaceSystem
	kubeDNS := map[string]string{"k8s-app": KubeDNSService}
	corefile := fmt.Sprintf(`.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes %s in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success %[1]s
       disable denial %[1]s
    }
    loop
    reload
    loadbalance
}
`, ClusterDomain)
	probe := func(path string, port int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP}}}
	}
	liveness := probe("/health", 8080)
	liveness.InitialDelaySeconds, liveness.TimeoutSeconds, liveness.SuccessThreshold, liveness.FailureThreshold = 60, 5, 1, 5
	readiness := probe("/ready", 8181)
	replicas := ptr.Deref(spec.Replicas, 2)
	deployment := &appsv1.Deployment{
		TypeMeta:   typeMeta("apps/v1", "Deployment"),
		ObjectMeta: addonMeta(AddonCoreDNS, sys, CoreDNSName, kubeDNS),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: kubeDNS},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr.To(intstr.FromInt32(1))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: kubeDNS},
				Spec: corev1.PodSpec{
					PriorityClassName:  "system-cluster-critical",
					ServiceAccountName: CoreDNSName,
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{
							LabelSelector: &metav1.LabelSelector{MatchLabels: kubeDNS}, TopologyKey: corev1.LabelHostname}}},
					}},
					Tolerations: []corev1.Toleration{
						{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
						{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule},
					},
					NodeSelector: map[string]string{corev1.LabelOSStable: "linux"},
					Containers: []corev1.Container{{
						Name:  CoreDNSName,
						Image: CoreDNSImage(version),
						Args:  []string{"-conf", "/etc/coredns/Corefile"},
						Resources: corev1.ResourceRequirements{
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("170Mi")},
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("70Mi")},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "config-volume", MountPath: "/etc/coredns", ReadOnly: true}},
						Ports: []corev1.ContainerPort{
							{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
							{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
							{Name: "metrics", ContainerPort: 9153, Protocol: corev1.ProtocolTCP},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}, Drop: []corev1.Capability{"ALL"}},
							ReadOnlyRootFilesystem:   ptr.To(true),
						},
						LivenessProbe:  liveness,
						ReadinessProbe: readiness,
					}},
					DNSPolicy: corev1.DNSDefault,
					Volumes: []corev1.Volume{{Name: "config-volume", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
						LocalObjectReference: corev1.LocalObjectReference{Name: CoreDNSName},
						Items:                []corev1.KeyToPath{{Key: "Corefile", Path: "Corefile"}},
					}}}},
				},
			},
		},
	}
	objects := []runtime.Object{
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: addonMeta(AddonCoreDNS, sys, CoreDNSName, nil)},
		&rbacv1.ClusterRole{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: addonMeta(AddonCoreDNS, "", "system:coredns", nil),
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
				{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
				{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
			}},
		&rbacv1.ClusterRoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ObjectMeta: addonMeta(AddonCoreDNS, "", "system:coredns", nil),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:coredns"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: CoreDNSName, Namespace: sys}}},
		&corev1.ConfigMap{TypeMeta: typeMeta("v1", "ConfigMap"), ObjectMeta: addonMeta(AddonCoreDNS, sys, CoreDNSName, nil),
			Data: map[string]string{"Corefile": corefile}},
		deployment,
		&corev1.Service{TypeMeta: typeMeta("v1", "Service"),
			ObjectMeta: addonMeta(AddonCoreDNS, sys, KubeDNSService, map[string]string{"k8s-app": KubeDNSService, "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}),
			Spec: corev1.ServiceSpec{
				ClusterIP: dnsIP.String(),
				Selector:  kubeDNS,
				Ports: []corev1.ServicePort{
					{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
					{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
					{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)},
				},
			}},
	}
	return Addon{Name: AddonCoreDNS, Version: version, Objects: objects}, nil
}

// kubeProxy is kubeadm's kube-proxy: a privileged host-network DaemonSet
// with its service account's token, reaching the apiservers through the
// endpoint (the Service address of the hosted cluster's own "kubernetes"
// Service is what kube-proxy itself makes reachable).
func kubeProxy(cp *quorumv1alpha1.ControlPlane, spec *quorumv1alpha1.KubeProxyAddon, kubernetes string) (Addon, error) {
	sys := metav1.NamespaceSystem
	mode := spec.Mode
	if mode == "" {
		mode = "iptables"
	}
	cfg := map[string]any{
		"apiVersion":       "kubeproxy.config.k8s.io/v1alpha1",
		"kind":             "KubeProxyConfiguration",
		"bindAddress":      "0.0.0.0",
		"clientConnection": map[string]any{"kubeconfig": kubeProxyConfig + "/kubeconfig.conf"},
		"mode":             mode,
	}
	if spec.MasqueradeAll {
		cfg[mode] = map[string]any{"masqueradeAll": true}
	}
	if spec.ConntrackMaxPerCore != nil {
		conntrack := map[string]any{"maxPerCore": *spec.ConntrackMaxPerCore}
		if *spec.ConntrackMaxPerCore == 0 {
			// kube-proxy's floor would set the table size anyway.
			conntrack["min"] = 0
		}
		cfg["conntrack"] = conntrack
	}
	config, err := yaml.Marshal(cfg)
	if err != nil {
		return Addon{}, err
	}
	kubeconfig, err := serviceAccountKubeconfig(cp, metav1.NamespaceDefault)
	if err != nil {
		return Addon{}, err
	}
	labels := map[string]string{"k8s-app": KubeProxyName}
	// kube-proxy reads its configuration once: a new one rolls the pods.
	sum := sha256.Sum256(append(append([]byte{}, config...), kubeconfig...))
	daemonSet := &appsv1.DaemonSet{
		TypeMeta:   typeMeta("apps/v1", "DaemonSet"),
		ObjectMeta: addonMeta(AddonKubeProxy, sys, KubeProxyName, labels),
		Spec: appsv1.DaemonSetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{AnnotationConfigHash: hex.EncodeToString(sum[:8])}},
				Spec: corev1.PodSpec{
					PriorityClassName:  "system-node-critical",
					ServiceAccountName: KubeProxyName,
					HostNetwork:        true,
					Tolerations:        []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					NodeSelector:       map[string]string{corev1.LabelOSStable: "linux"},
					Containers: []corev1.Container{{
						Name:    KubeProxyName,
						Image:   KubeProxyImage(kubernetes),
						Command: []string{"/usr/local/bin/kube-proxy", "--config=" + kubeProxyConfig + "/config.conf", "--hostname-override=$(NODE_NAME)"},
						Env: []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}}},
						SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
						VolumeMounts: []corev1.VolumeMount{
							{Name: KubeProxyName, MountPath: kubeProxyConfig},
							{Name: "xtables-lock", MountPath: "/run/xtables.lock"},
							{Name: "lib-modules", MountPath: "/lib/modules", ReadOnly: true},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: KubeProxyName, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: KubeProxyName}}}},
						{Name: "xtables-lock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/xtables.lock", Type: ptr.To(corev1.HostPathFileOrCreate)}}},
						{Name: "lib-modules", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/lib/modules"}}},
					},
				},
			},
		},
	}
	objects := []runtime.Object{
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: addonMeta(AddonKubeProxy, sys, KubeProxyName, nil)},
		&rbacv1.ClusterRoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ObjectMeta: addonMeta(AddonKubeProxy, "", "kubeadm:node-proxier", nil),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:node-proxier"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: KubeProxyName, Namespace: sys}}},
		// kubeadm join reads kube-proxy's configuration with the token.
		&rbacv1.Role{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: addonMeta(AddonKubeProxy, sys, KubeProxyName, nil),
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{KubeProxyName}, Verbs: []string{"get"}}}},
		&rbacv1.RoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"), ObjectMeta: addonMeta(AddonKubeProxy, sys, KubeProxyName, nil),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: KubeProxyName},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: NodeBootstrapGroup}}},
		&corev1.ConfigMap{TypeMeta: typeMeta("v1", "ConfigMap"), ObjectMeta: addonMeta(AddonKubeProxy, sys, KubeProxyName, labels),
			Data: map[string]string{"config.conf": string(config), "kubeconfig.conf": string(kubeconfig)}},
		daemonSet,
	}
	return Addon{Name: AddonKubeProxy, Version: kubernetes, Objects: objects}, nil
}
