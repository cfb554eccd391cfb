package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// Labels and annotations of control-plane replicas.
const (
	// LabelControlPlane names the ControlPlane a replica pod belongs to.
	LabelControlPlane = "quorum.dev/control-plane"
	// LabelKubernetesVersion is the Kubernetes version a replica pod runs.
	LabelKubernetesVersion = "quorum.dev/kubernetes-version"
	// AnnotationTemplateHash is the hash of what a replica pod was built
	// from (version, flags, certificates); a replica whose hash differs from
	// the control plane's is rolled.
	AnnotationTemplateHash = "quorum.dev/template-hash"
)

// The TLS floor of every control-plane component: TLS 1.2 with only
// AEAD, forward-secret suites (TLS 1.3 suites are not configurable).
const (
	TLSMinVersion   = "VersionTLS12"
	TLSCipherSuites = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256," +
		"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384," +
		"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
)

// APIServerPort is the port every apiserver listens on in its pod.
const APIServerPort = 6443

// DefaultServiceCIDR is the hosted cluster's Service range unless the
// apiServer's service-cluster-ip-range flag says otherwise.
const DefaultServiceCIDR = "10.96.0.0/12"

// Keys of the control plane's PKI Secret.
const (
	PKICACert               = "ca.crt"
	PKICAKey                = "ca.key"
	PKIAPIServerCert        = "apiserver.crt"
	PKIAPIServerKey         = "apiserver.key"
	PKIKubeletClientCert    = "apiserver-kubelet-client.crt"
	PKIKubeletClientKey     = "apiserver-kubelet-client.key"
	PKIFrontProxyCACert     = "front-proxy-ca.crt"
	PKIFrontProxyCAKey      = "front-proxy-ca.key"
	PKIFrontProxyClientCert = "front-proxy-client.crt"
	PKIFrontProxyClientKey  = "front-proxy-client.key"
	PKIServiceAccountKey    = "sa.key"
	PKIServiceAccountPub    = "sa.pub"
	PKIEtcdCACert           = "etcd-ca.crt"
	PKIEtcdClientCert       = "apiserver-etcd-client.crt"
	PKIEtcdClientKey        = "apiserver-etcd-client.key"
	// During a CA rotation: the trust bundles (old and new CA) and the new
	// CAs while they are trusted but do not issue yet.
	PKICABundle             = "ca-bundle.crt"
	PKIFrontProxyCABundle   = "front-proxy-ca-bundle.crt"
	PKINextCACert           = "next-ca.crt"
	PKINextCAKey            = "next-ca.key"
	PKINextFrontProxyCACert = "next-front-proxy-ca.crt"
	PKINextFrontProxyCAKey  = "next-front-proxy-ca.key"
	// KubeconfigKey is the key of a kubeconfig Secret.
	KubeconfigKey = "value"
)

// EndpointServiceName is the name of a control plane's endpoint Service.
func EndpointServiceName(cp string) string { return cp + "-apiserver" }

// PKISecretName is the name of the Secret holding a control plane's CAs,
// certificates and service-account keys.
func PKISecretName(cp string) string { return cp + "-pki" }

// KubeconfigSecretName is the name of one user's kubeconfig Secret.
func KubeconfigSecretName(cp, user string) string {
	return cp + "-" + user + "-kubeconfig"
}

// StackedEtcdName is the EtcdCluster a stacked control plane's members
// belong to; its member pods are the control plane's replicas.
func StackedEtcdName(cp string) string { return cp + "-etcd" }

// Kubeconfig users.
const (
	KubeconfigAdmin = "admin"
	// KubeconfigSuperAdmin is the break-glass credential (system:masters,
	// which RBAC cannot revoke); the operator uses it only to create the
	// RBAC bindings the other credentials rely on, as kubeadm init does.
	KubeconfigSuperAdmin = "super-admin"
	// KubeconfigOperator is the operator's own credential in the hosted
	// cluster: it may read the two leader leases and nothing else.
	KubeconfigOperator          = "operator"
	KubeconfigControllerManager = "controller-manager"
	KubeconfigScheduler         = "scheduler"
	// KubeconfigKonnectivityServer is the konnectivity servers' (with that
	// add-on): they check agents' tokens through their replica's apiserver.
	KubeconfigKonnectivityServer = "konnectivity-server"
)

// Identities in the hosted cluster, as kubeadm names them where kubeadm
// has a name.
const (
	// AdminGroup is the admin kubeconfig's group, bound to cluster-admin
	// by a ClusterRoleBinding of the same name (kubeadm 1.29+).
	AdminGroup = "kubeadm:cluster-admins"
	// OperatorUser is the operator's user in the hosted cluster.
	OperatorUser = "quorum:operator"
	// KubeletClientUser is the apiservers' client certificate to kubelets.
	KubeletClientUser = "kube-apiserver-kubelet-client"
)

// ControlPlaneLabels are the labels of every replica pod of cp; the
// endpoint Service selects on them.
func ControlPlaneLabels(cp string) map[string]string {
	return map[string]string{LabelControlPlane: cp}
}

// ControlPlaneSelector is the label selector of a control plane's replicas.
func ControlPlaneSelector(cp string) string { return LabelControlPlane + "=" + cp }

// EndpointHosts are the DNS names of the endpoint Service a client may use,
// with the endpoint host first when one is set.
func EndpointHosts(cp *quorumv1alpha1.ControlPlane) []string {
	svc := EndpointServiceName(cp.Name)
	var hosts []string
	if cp.Spec.Endpoint.Host != "" {
		hosts = append(hosts, cp.Spec.Endpoint.Host)
	}
	return append(hosts, svc, svc+"."+cp.Namespace, svc+"."+cp.Namespace+".svc", svc+"."+cp.Namespace+".svc.cluster.local")
}

// EndpointPort is the port of the endpoint.
func EndpointPort(cp *quorumv1alpha1.ControlPlane) int32 {
	if cp.Spec.Endpoint.Port == 0 {
		return APIServerPort
	}
	return cp.Spec.Endpoint.Port
}

// EndpointURL is the address clients use: the endpoint host when set,
// otherwise the Service's DNS name inside the management cluster.
func EndpointURL(cp *quorumv1alpha1.ControlPlane) string {
	return fmt.Sprintf("https://%s", net.JoinHostPort(EndpointHost(cp), fmt.Sprint(EndpointPort(cp))))
}

// EndpointHost is the endpoint's host name: spec.endpoint.host, otherwise
// the Service's DNS name inside the management cluster.
func EndpointHost(cp *quorumv1alpha1.ControlPlane) string {
	if cp.Spec.Endpoint.Host != "" {
		return cp.Spec.Endpoint.Host
	}
	return EndpointServiceName(cp.Name) + "." + cp.Namespace + ".svc"
}

// ServiceCIDR is the hosted cluster's Service range.
func ServiceCIDR(cp *quorumv1alpha1.ControlPlane) string {
	if r := cp.Spec.APIServer.ExtraArgs["service-cluster-ip-range"]; r != "" {
		return strings.Split(r, ",")[0]
	}
	return DefaultServiceCIDR
}

// KubernetesServiceIP is the first address of the hosted Service range: the
// hosted cluster's kubernetes Service, which pods use to reach the
// apiservers.
func KubernetesServiceIP(cidr string) (net.IP, error) { return serviceRangeIP(cidr, 1) }

// serviceRangeIP is the nth address of a Service range (n below 256).
func serviceRangeIP(cidr string, n byte) (net.IP, error) {
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("service-cluster-ip-range %q: %w", cidr, err)
	}
	ip := slices.Clone(ipnet.IP.To16())
	ip[len(ip)-1] += n
	return ip, nil
}

// EndpointService is the load balancer in front of every apiserver. Only
// Ready pods (apiserver /readyz) are its endpoints.
func EndpointService(cp *quorumv1alpha1.ControlPlane) *corev1.Service {
	annotations := map[string]string{}
	if cp.Spec.Endpoint.Host != "" {
		annotations["external-dns.alpha.kubernetes.io/hostname"] = cp.Spec.Endpoint.Host
		ttl := int64(30)
		if cp.Spec.Endpoint.DNSTTL != nil {
			ttl = int64(cp.Spec.Endpoint.DNSTTL.Seconds())
		}
		annotations["external-dns.alpha.kubernetes.io/ttl"] = fmt.Sprint(ttl)
	}
	t := corev1.ServiceType(cp.Spec.Endpoint.ServiceType)
	if t == "" {
		t = corev1.ServiceTypeLoadBalancer
	}
	ports := []corev1.ServicePort{{
		Name: "https", Port: EndpointPort(cp), TargetPort: intstr.FromInt32(APIServerPort), Protocol: corev1.ProtocolTCP,
	}}
	if KonnectivityEnabled(cp) {
		ports = append(ports, corev1.ServicePort{
			Name: "konnectivity", Port: KonnectivityPort(cp), TargetPort: intstr.FromInt32(KonnectivityPort(cp)), Protocol: corev1.ProtocolTCP,
		})
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: EndpointServiceName(cp.Name), Namespace: cp.Namespace,
			Labels: ControlPlaneLabels(cp.Name), Annotations: annotations,
		},
		Spec: corev1.ServiceSpec{
			Type:     t,
			Selector: ControlPlaneLabels(cp.Name),
			Ports:    ports,
		},
	}
}

// EtcdAccess is how a control plane's apiservers reach etcd.
type EtcdAccess struct {
	// Servers is the apiserver's --etcd-servers.
	Servers string
}

// Replica is the input of one replica's containers.
type Replica struct {
	ControlPlane *quorumv1alpha1.ControlPlane
	// Version is the Kubernetes version the replica runs.
	Version string
	Etcd    EtcdAccess
	// PKIHash identifies the certificates the replica mounts: new
	// certificates change the template hash and roll the replicas.
	PKIHash string
	// Trust are the PKI files client certificates are verified with.
	Trust PKITrust
}

// PKITrust names the PKI files that verify client certificates: the
// cluster CA's and the front-proxy CA's, or their bundles while a CA
// rotation trusts two.
type PKITrust struct {
	Cluster, FrontProxy string
}

// TrustOf is the trust a replica built from the PKI Secret data uses.
func TrustOf(data map[string][]byte) PKITrust {
	t := PKITrust{Cluster: PKICACert, FrontProxy: PKIFrontProxyCACert}
	if len(data[PKICABundle]) > 0 {
		t.Cluster = PKICABundle
	}
	if len(data[PKIFrontProxyCABundle]) > 0 {
		t.FrontProxy = PKIFrontProxyCABundle
	}
	return t
}

// Paths inside a replica pod.
const (
	pkiDir         = "/etc/kubernetes/pki"
	kubeconfigDir  = "/etc/kubernetes/kubeconfig"
	auditPolicyDir = "/etc/kubernetes/audit"
	auditLogDir    = "/var/log/kubernetes/audit"
)

// Containers are kube-apiserver, kube-controller-manager and
// kube-scheduler of one replica, with the volumes they mount.
func (r Replica) Containers() ([]corev1.Container, []corev1.Volume) {
	cp := r.ControlPlane
	cidr := ServiceCIDR(cp)
	trust := r.Trust
	if trust.Cluster == "" {
		trust.Cluster = PKICACert
	}
	if trust.FrontProxy == "" {
		trust.FrontProxy = PKIFrontProxyCACert
	}
	apiserver := map[string]string{
		"advertise-address":                  "$(POD_IP)",
		"bind-address":                       "0.0.0.0",
		"secure-port":                        fmt.Sprint(APIServerPort),
		"etcd-servers":                       r.Etcd.Servers,
		"etcd-cafile":                        pkiDir + "/" + PKIEtcdCACert,
		"etcd-certfile":                      pkiDir + "/" + PKIEtcdClientCert,
		"etcd-keyfile":                       pkiDir + "/" + PKIEtcdClientKey,
		"client-ca-file":                     pkiDir + "/" + trust.Cluster,
		"tls-cert-file":                      pkiDir + "/" + PKIAPIServerCert,
		"tls-private-key-file":               pkiDir + "/" + PKIAPIServerKey,
		"kubelet-client-certificate":         pkiDir + "/" + PKIKubeletClientCert,
		"kubelet-client-key":                 pkiDir + "/" + PKIKubeletClientKey,
		"kubelet-preferred-address-types":    "InternalIP,ExternalIP,Hostname",
		"proxy-client-cert-file":             pkiDir + "/" + PKIFrontProxyClientCert,
		"proxy-client-key-file":              pkiDir + "/" + PKIFrontProxyClientKey,
		"requestheader-client-ca-file":       pkiDir + "/" + trust.FrontProxy,
		"requestheader-allowed-names":        "front-proxy-client",
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		"service-account-issuer":             "https://kubernetes.default.svc.cluster.local",
		"service-account-key-file":           pkiDir + "/" + PKIServiceAccountPub,
		"service-account-signing-key-file":   pkiDir + "/" + PKIServiceAccountKey,
		"service-cluster-ip-range":           cidr,
		"authorization-mode":                 "Node,RBAC",
		// Nodes join with kubeadm's bootstrap tokens (kube-system Secrets).
		"enable-bootstrap-token-auth": "true",
		"enable-admission-plugins":    "NodeRestriction",
		// The apiservers run outside the hosted cluster's Service network:
		// admission webhooks and aggregated APIs are reached at their
		// endpoints' addresses (pod IPs), not their Service addresses.
		"enable-aggregator-routing": "true",
		"allow-privileged":          "true",
		// On SIGTERM, /readyz fails at once and requests are still served
		// for this long, so the endpoint drains a replica before it stops.
		"shutdown-delay-duration": "5s",
		"profiling":               "false",
		"tls-min-version":         TLSMinVersion,
		"tls-cipher-suites":       TLSCipherSuites,
	}
	controllerManager := map[string]string{
		"kubeconfig":                       kubeconfigDir + "/controller-manager/" + KubeconfigKey,
		"authentication-kubeconfig":        kubeconfigDir + "/controller-manager/" + KubeconfigKey,
		"authorization-kubeconfig":         kubeconfigDir + "/controller-manager/" + KubeconfigKey,
		"bind-address":                     "0.0.0.0",
		"leader-elect":                     "true",
		"cluster-name":                     cp.Name,
		"cluster-signing-cert-file":        pkiDir + "/" + PKICACert,
		"cluster-signing-key-file":         pkiDir + "/" + PKICAKey,
		"root-ca-file":                     pkiDir + "/" + trust.Cluster,
		"client-ca-file":                   pkiDir + "/" + trust.Cluster,
		"requestheader-client-ca-file":     pkiDir + "/" + trust.FrontProxy,
		"service-account-private-key-file": pkiDir + "/" + PKIServiceAccountKey,
		"use-service-account-credentials":  "true",
		"controllers":                      "*,bootstrapsigner,tokencleaner",
		// Candidates look at the lease every second (2s by default), so a
		// killed leader's lease is taken within about its 15s duration.
		"leader-elect-retry-period": "1s",
		"service-cluster-ip-range":  cidr,
		"profiling":                 "false",
		"tls-min-version":           TLSMinVersion,
		"tls-cipher-suites":         TLSCipherSuites,
	}
	scheduler := map[string]string{
		"kubeconfig":                kubeconfigDir + "/scheduler/" + KubeconfigKey,
		"authentication-kubeconfig": kubeconfigDir + "/scheduler/" + KubeconfigKey,
		"authorization-kubeconfig":  kubeconfigDir + "/scheduler/" + KubeconfigKey,
		"bind-address":              "0.0.0.0",
		"leader-elect":              "true",
		"leader-elect-retry-period": "1s",
		"profiling":                 "false",
		"tls-min-version":           TLSMinVersion,
		"tls-cipher-suites":         TLSCipherSuites,
	}
	if EncryptionEnabled(cp) {
		apiserver["encryption-provider-config"] = encryptionDir + "/" + EncryptionConfigKey
	}
	if KonnectivityEnabled(cp) {
		apiserver["egress-selector-config-file"] = egressSelectorDir + "/" + egressSelectorFile
	}
	if a := cp.Spec.APIServer.Audit; a != nil {
		apiserver["audit-policy-file"] = auditPolicyDir + "/" + quorumv1alpha1.AuditPolicyKey
		apiserver["audit-log-path"] = "-"
		if a.Output == quorumv1alpha1.AuditVolume {
			apiserver["audit-log-path"] = auditLogDir + "/audit.log"
			apiserver["audit-log-maxage"] = fmt.Sprint(ptr.Deref(a.MaxAge, 7))
			apiserver["audit-log-maxsize"] = fmt.Sprint(ptr.Deref(a.MaxSize, 100))
			apiserver["audit-log-maxbackup"] = fmt.Sprint(ptr.Deref(a.MaxBackups, 10))
		}
	}
	maps.Copy(apiserver, cp.Spec.APIServer.ExtraArgs)
	// Admission plugins a user enables come on top of NodeRestriction
	// (the API refuses disabling it).
	if extra := cp.Spec.APIServer.ExtraArgs["enable-admission-plugins"]; extra != "" && !slices.Contains(strings.Split(extra, ","), "NodeRestriction") {
		apiserver["enable-admission-plugins"] = "NodeRestriction," + extra
	}
	maps.Copy(controllerManager, cp.Spec.ControllerManager.ExtraArgs)
	maps.Copy(scheduler, cp.Spec.Scheduler.ExtraArgs)

	security := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	probe := func(path string, port int32, period, failures int32, initial int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTPS}},
			InitialDelaySeconds: initial,
			PeriodSeconds:       period,
			TimeoutSeconds:      period,
			FailureThreshold:    failures,
		}
	}
	container := func(name string, args map[string]string, port int32, mounts ...corev1.VolumeMount) corev1.Container {
		return corev1.Container{
			Name:            name,
			Image:           KubernetesImage(name, r.Version),
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{"/usr/local/bin/" + name},
			Args:            flags(args),
			Ports:           []corev1.ContainerPort{{Name: "https", ContainerPort: port}},
			// A process that stops answering is restarted in place; the
			// operator replaces a replica whose apiserver stays unready.
			LivenessProbe:   probe("/livez", port, 10, 8, 30),
			SecurityContext: security,
			VolumeMounts: append([]corev1.VolumeMount{
				{Name: "tmp", MountPath: "/tmp"},
			}, mounts...),
		}
	}
	pkiMount := corev1.VolumeMount{Name: "pki", MountPath: pkiDir, ReadOnly: true}
	apiMounts := []corev1.VolumeMount{pkiMount}
	if EncryptionEnabled(cp) {
		apiMounts = append(apiMounts, corev1.VolumeMount{Name: "encryption", MountPath: encryptionDir, ReadOnly: true})
	}
	if a := cp.Spec.APIServer.Audit; a != nil {
		apiMounts = append(apiMounts, corev1.VolumeMount{Name: "audit-policy", MountPath: auditPolicyDir, ReadOnly: true})
		if a.Output == quorumv1alpha1.AuditVolume {
			apiMounts = append(apiMounts, corev1.VolumeMount{Name: "audit-log", MountPath: auditLogDir})
		}
	}
	if KonnectivityEnabled(cp) {
		apiMounts = append(apiMounts, konnectivityAPIServerMounts()...)
	}
	api := container("kube-apiserver", apiserver, APIServerPort, apiMounts...)
	api.Env = []corev1.EnvVar{{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}}
	// Only a replica whose apiserver answers /readyz (etcd reachable,
	// informers synced) takes traffic from the endpoint.
	api.ReadinessProbe = probe("/readyz", APIServerPort, 2, 2, 0)
	api.Resources = WithDefaultRequests(componentResources(cp.Spec.APIServer.ComponentSpec, cp.Spec.PodTemplate.Resources), APIServerRequests)
	kcm := container("kube-controller-manager", controllerManager, 10257, pkiMount,
		corev1.VolumeMount{Name: "controller-manager-kubeconfig", MountPath: kubeconfigDir + "/controller-manager", ReadOnly: true})
	kcm.LivenessProbe.HTTPGet.Path = "/healthz"
	kcm.Resources = WithDefaultRequests(componentResources(cp.Spec.ControllerManager.ComponentSpec, corev1.ResourceRequirements{}), ControllerManagerRequests)
	sched := container("kube-scheduler", scheduler, 10259,
		corev1.VolumeMount{Name: "scheduler-kubeconfig", MountPath: kubeconfigDir + "/scheduler", ReadOnly: true})
	sched.LivenessProbe.HTTPGet.Path = "/healthz"
	sched.Resources = WithDefaultRequests(componentResources(cp.Spec.Scheduler.ComponentSpec, corev1.ResourceRequirements{}), SchedulerRequests)

	secret := func(name, secretName string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: secretName, DefaultMode: ptr.To[int32](0o440),
		}}}
	}
	volumes := []corev1.Volume{
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		secret("pki", PKISecretName(cp.Name)),
		secret("controller-manager-kubeconfig", KubeconfigSecretName(cp.Name, KubeconfigControllerManager)),
		secret("scheduler-kubeconfig", KubeconfigSecretName(cp.Name, KubeconfigScheduler)),
	}
	if EncryptionEnabled(cp) {
		volumes = append(volumes, secret("encryption", EncryptionSecretName(cp.Name)))
	}
	if a := cp.Spec.APIServer.Audit; a != nil {
		volumes = append(volumes, corev1.Volume{Name: "audit-policy", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: a.PolicyConfigMapRef.Name},
			Items:                []corev1.KeyToPath{{Key: quorumv1alpha1.AuditPolicyKey, Path: quorumv1alpha1.AuditPolicyKey}},
		}}})
		if a.Output == quorumv1alpha1.AuditVolume {
			volumes = append(volumes, corev1.Volume{Name: "audit-log", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		}
	}
	containers := []corev1.Container{api, kcm, sched}
	if KonnectivityEnabled(cp) {
		server, serverVolumes := konnectivityServer(cp, security, pkiMount)
		containers = append(containers, server)
		volumes = append(volumes, serverVolumes...)
	}
	return containers, volumes
}

// KubernetesImage is the image of a control-plane component.
func KubernetesImage(component, version string) string {
	return "registry.k8s.io/" + component + ":" + version
}

// flags renders name=value pairs as sorted --name=value arguments.
func flags(args map[string]string) []string {
	out := make([]string, 0, len(args))
	for _, k := range slices.Sorted(maps.Keys(args)) {
		out = append(out, "--"+k+"="+args[k])
	}
	return out
}

// TemplateHash identifies what a replica is built from: its containers
// (version, flags, etcd access) and its certificates.
func (r Replica) TemplateHash() string {
	containers, volumes := r.Containers()
	b, err := json.Marshal(struct {
		C []corev1.Container
		V []corev1.Volume
		P string
	}{containers, volumes, r.PKIHash})
	if err != nil {
		panic(err) // plain structs always marshal
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Decorate adds the replica's containers, volumes, labels and template
// hash to a pod: a stacked control plane's etcd member pod, or a new pod.
func (r Replica) Decorate(pod *corev1.Pod) {
	containers, volumes := r.Containers()
	pod.Spec.Containers = append(pod.Spec.Containers, containers...)
	pod.Spec.Volumes = append(pod.Spec.Volumes, volumes...)
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	maps.Copy(pod.Labels, ControlPlaneLabels(r.ControlPlane.Name))
	pod.Labels[LabelKubernetesVersion] = r.Version
	pod.Annotations[AnnotationTemplateHash] = r.TemplateHash()
	if KonnectivityEnabled(r.ControlPlane) {
		pod.Annotations[AnnotationEgressSelector] = egressSelectorConfiguration()
	}
}

// ReplicaPod builds a replica of a control plane whose etcd runs elsewhere
// (clusterRef or external).
func (r Replica) ReplicaPod(name, zone string) *corev1.Pod {
	cp := r.ControlPlane
	labels := map[string]string{}
	maps.Copy(labels, cp.Spec.PodTemplate.Labels)
	labels[LabelName] = "kube-control-plane"
	labels[LabelManagedBy] = "quorum"
	labels[LabelInstance] = cp.Name
	labels[LabelZone] = zone
	annotations := maps.Clone(cp.Spec.PodTemplate.Annotations)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cp.Namespace, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			Hostname:                      name,
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			EnableServiceLinks:            ptr.To(false),
			AutomountServiceAccountToken:  ptr.To(false),
			NodeSelector:                  cp.Spec.PodTemplate.NodeSelector,
			Tolerations:                   cp.Spec.PodTemplate.Tolerations,
			PriorityClassName:             cp.Spec.PodTemplate.PriorityClassName,
			Affinity:                      ZoneAffinity(ControlPlaneLabels(cp.Name), zone),
			SecurityContext:               restrictedPodSecurity(),
		},
	}
	r.Decorate(pod)
	return pod
}

// StackedEtcdCluster is the EtcdCluster of a stacked control plane: one
// member per replica, in the replica's zone; the member pods carry the
// control-plane containers, so the EtcdCluster's membership rules place,
// scale and replace the replicas.
func StackedEtcdCluster(cp *quorumv1alpha1.ControlPlane) *quorumv1alpha1.EtcdCluster {
	st := cp.Spec.Etcd.Stacked
	template := *cp.Spec.PodTemplate.DeepCopy()
	template.Labels = maps.Clone(template.Labels)
	if template.Labels == nil {
		template.Labels = map[string]string{}
	}
	maps.Copy(template.Labels, ControlPlaneLabels(cp.Name))
	// The template's resources are the apiserver's; etcd has its own.
	template.Resources = corev1.ResourceRequirements{}
	if st.Resources != nil {
		template.Resources = *st.Resources.DeepCopy()
	}
	return &quorumv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{
			Name: StackedEtcdName(cp.Name), Namespace: cp.Namespace,
			Labels: ControlPlaneLabels(cp.Name),
		},
		Spec: quorumv1alpha1.EtcdClusterSpec{
			Replicas:       cp.Spec.Replicas,
			Version:        st.Version,
			Image:          st.Image,
			Zones:          cp.Spec.Zones,
			Storage:        *st.Storage.DeepCopy(),
			FailurePolicy:  *cp.Spec.FailurePolicy.FailurePolicy.DeepCopy(),
			PodTemplate:    template,
			DeletionPolicy: cp.Spec.DeletionPolicy,
		},
	}
}

// IsReplicaOf says whether a pod is a replica of the control plane cp.
func IsReplicaOf(p *corev1.Pod, cp string) bool {
	return p.Labels[LabelControlPlane] == cp && p.Labels[LabelKubernetesVersion] != ""
}

// EncryptionEnabled says whether the hosted apiservers encrypt Secrets at
// rest: on unless a provider other than secretbox is named (none is yet).
func EncryptionEnabled(cp *quorumv1alpha1.ControlPlane) bool {
	p := cp.Spec.APIServer.EncryptionAtRest.Provider
	return p == "" || p == "secretbox"
}

// ReplicaSecretNames are the Secrets every replica mounts, in the order
// their hash is taken: the PKI, then the controller-manager's and the
// scheduler's kubeconfigs (and the konnectivity server's, with that
// add-on), then the encryption configuration (the admin
// kubeconfig is not mounted, so renewing it rolls nothing).
func ReplicaSecretNames(cp *quorumv1alpha1.ControlPlane) []string {
	names := []string{PKISecretName(cp.Name), KubeconfigSecretName(cp.Name, KubeconfigControllerManager), KubeconfigSecretName(cp.Name, KubeconfigScheduler)}
	if KonnectivityEnabled(cp) {
		names = append(names, KubeconfigSecretName(cp.Name, KubeconfigKonnectivityServer))
	}
	if EncryptionEnabled(cp) {
		names = append(names, EncryptionSecretName(cp.Name))
	}
	return names
}

// ReplicaConfigMapNames are the ConfigMaps every replica mounts (the
// audit policy), hashed after the Secrets: a new policy rolls the replicas.
func ReplicaConfigMapNames(cp *quorumv1alpha1.ControlPlane) []string {
	if a := cp.Spec.APIServer.Audit; a != nil {
		return []string{a.PolicyConfigMapRef.Name}
	}
	return nil
}

// SecretsHash identifies the certificates and kubeconfigs replicas mount:
// the data of the Secrets of ReplicaSecretNames, in that order.
func SecretsHash(secrets ...map[string][]byte) string {
	h := sha256.New()
	for _, data := range secrets {
		for _, k := range slices.Sorted(maps.Keys(data)) {
			sum := sha256.Sum256(data[k])
			h.Write([]byte(k + "=" + hex.EncodeToString(sum[:]) + ";"))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// StackedEtcdAccess is how a stacked replica's apiserver reaches etcd: its
// own member, in the same pod.
func StackedEtcdAccess() EtcdAccess {
	return EtcdAccess{Servers: fmt.Sprintf("https://127.0.0.1:%d", ClientPort)}
}

// componentResources is a component's own resources, else fallback.
func componentResources(c quorumv1alpha1.ComponentSpec, fallback corev1.ResourceRequirements) corev1.ResourceRequirements {
	if c.Resources != nil {
		return *c.Resources.DeepCopy()
	}
	return fallback
}
