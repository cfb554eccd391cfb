package resources

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// TestKonnectivityReplica: with the add-on, each replica runs a server
// beside its apiserver, the apiserver sends cluster traffic to the
// server's socket (its egress selector file comes from the pod's
// annotation), every mount has its volume, the server's kubeconfig rolls
// the replicas when it changes, and the endpoint gets the agents' port.
// Without it, none of that.
func TestKonnectivityReplica(t *testing.T) {
	cp := &quorumv1alpha1.ControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: "ns"}, Spec: quorumv1alpha1.ControlPlaneSpec{Version: "v1.36.3"}}
	plain := Replica{ControlPlane: cp, Version: "v1.36.3"}.ReplicaPod("tenant-a", "zone-a")
	cp.Spec.Addons.Konnectivity = &quorumv1alpha1.KonnectivityAddon{Port: 9132}
	pod := Replica{ControlPlane: cp, Version: "v1.36.3"}.ReplicaPod("tenant-a", "zone-a")

	if len(plain.Spec.Containers) != 3 || plain.Annotations[AnnotationEgressSelector] != "" ||
		slices.ContainsFunc(containerNamed(plain.Spec.Containers, "kube-apiserver").Args, func(a string) bool { return strings.HasPrefix(a, "--egress-selector") }) {
		t.Fatalf("without the add-on a replica has konnectivity: %v", plain.Spec.Containers)
	}
	if plain.Annotations[AnnotationTemplateHash] == pod.Annotations[AnnotationTemplateHash] {
		t.Error("turning konnectivity on does not roll the replicas")
	}
	server := containerNamed(pod.Spec.Containers, KonnectivityServerContainer)
	if server.Image != KonnectivityServerImage() || server.ReadinessProbe != nil || server.Ports[0].ContainerPort != 9132 {
		t.Fatalf("server container %+v", server)
	}
	for _, want := range []string{"--agent-port=9132", "--server-port=0", "--uds-name=" + konnectivitySocket, "--agent-service-account=" + KonnectivityAgentName,
		"--authentication-audience=" + KonnectivityAudience, "--enable-lease-controller=true", "--cluster-cert=" + pkiDir + "/" + PKIAPIServerCert} {
		if !slices.Contains(server.Args, want) {
			t.Errorf("server runs without %s: %v", want, server.Args)
		}
	}
	api := containerNamed(pod.Spec.Containers, "kube-apiserver")
	if !slices.Contains(api.Args, "--egress-selector-config-file="+egressSelectorDir+"/"+egressSelectorFile) {
		t.Errorf("the apiserver has no egress selector: %v", api.Args)
	}
	var egress map[string]any
	if err := yaml.Unmarshal([]byte(pod.Annotations[AnnotationEgressSelector]), &egress); err != nil || egress["kind"] != "EgressSelectorConfiguration" ||
		!strings.Contains(pod.Annotations[AnnotationEgressSelector], "udsName: "+konnectivitySocket) {
		t.Errorf("egress selector annotation %q: %v", pod.Annotations[AnnotationEgressSelector], err)
	}
	shares := func(c corev1.Container, mount string) bool {
		return slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == mount })
	}
	if !shares(api, "konnectivity-uds") || !shares(server, "konnectivity-uds") || !shares(api, "egress-selector") {
		t.Errorf("the socket folder is not shared: apiserver %v, server %v", api.VolumeMounts, server.VolumeMounts)
	}
	for _, c := range pod.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
				t.Errorf("%s mounts %s, which is no volume", c.Name, m.Name)
			}
		}
	}
	egressVolume := pod.Spec.Volumes[slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "egress-selector" })]
	if f := egressVolume.DownwardAPI.Items[0]; f.Path != egressSelectorFile || !strings.Contains(f.FieldRef.FieldPath, AnnotationEgressSelector) {
		t.Errorf("egress selector volume %+v", egressVolume)
	}
	if !slices.Contains(ReplicaSecretNames(cp), KubeconfigSecretName("tenant", KubeconfigKonnectivityServer)) {
		t.Errorf("the server's kubeconfig does not roll the replicas: %v", ReplicaSecretNames(cp))
	}
	svc := EndpointService(cp)
	if len(svc.Spec.Ports) != 2 || svc.Spec.Ports[1].Port != 9132 || svc.Spec.Ports[1].TargetPort.IntValue() != 9132 {
		t.Errorf("endpoint ports %+v", svc.Spec.Ports)
	}
	cp.Spec.Addons.Konnectivity = nil
	if len(EndpointService(cp).Spec.Ports) != 1 {
		t.Error("the endpoint keeps the agents' port without the add-on")
	}
}

// TestKonnectivityAgents: the add-on's hosted objects. The agents run on
// every node's network, reach the servers at the endpoint's host on the
// add-on's port, trust the cluster CA, present a token for the servers'
// audience and name their node's address; the servers may review tokens
// and keep leases, the agents read leases; every object carries the
// labels uninstalling looks for.
func TestKonnectivityAgents(t *testing.T) {
	cp := &quorumv1alpha1.ControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: "ns"}, Spec: quorumv1alpha1.ControlPlaneSpec{Version: "v1.36.3"}}
	cp.Spec.Endpoint.Host = "tenant.example.com"
	cp.Spec.Addons.Konnectivity = &quorumv1alpha1.KonnectivityAddon{}
	addons, err := Addons(cp, "v1.36.3")
	if err != nil {
		t.Fatal(err)
	}
	if len(addons) != 1 || addons[0].Name != AddonKonnectivity || addons[0].Version != KonnectivityVersion {
		t.Fatalf("addons %+v", addons)
	}
	var ds *appsv1.DaemonSet
	auth, leases := false, false
	for _, o := range addons[0].Objects {
		m := o.(metav1.Object)
		kind := o.GetObjectKind().GroupVersionKind().Kind
		if m.GetLabels()[LabelAddon] != AddonKonnectivity || m.GetLabels()[LabelManagedBy] != ManagedBy {
			t.Errorf("%s %s lacks the add-on's labels", kind, m.GetName())
		}
		switch v := o.(type) {
		case *appsv1.DaemonSet:
			ds = v
		case *rbacv1.ClusterRoleBinding:
			auth = v.RoleRef.Name == "system:auth-delegator" && v.Subjects[0].Name == KonnectivityServerUser
		case *rbacv1.RoleBinding:
			leases = leases || v.Subjects[0].Name == KonnectivityServerUser
		}
	}
	if ds == nil || !auth || !leases {
		t.Fatalf("daemonset %v, token reviews %v, leases %v", ds != nil, auth, leases)
	}
	spec := ds.Spec.Template.Spec
	agent := spec.Containers[0]
	if !spec.HostNetwork || agent.Image != KonnectivityAgentImage() || spec.Tolerations[0].Operator != corev1.TolerationOpExists {
		t.Errorf("agent pod %+v", spec)
	}
	for _, want := range []string{"--proxy-server-host=tenant.example.com", "--proxy-server-port=8132", "--ca-cert=" + serviceAccountCAPath,
		"--agent-identifiers=ipv4=$(HOST_IP)", "--count-server-leases=true", "--service-account-token-path=" + konnectivityTokenDir + "/" + konnectivityTokenFile} {
		if !slices.Contains(agent.Args, want) {
			t.Errorf("agent runs without %s: %v", want, agent.Args)
		}
	}
	token := spec.Volumes[0].Projected.Sources[0].ServiceAccountToken
	if token.Audience != KonnectivityAudience || token.Path != konnectivityTokenFile {
		t.Errorf("agent token %+v", token)
	}
}

// TestAddonObjectKinds: uninstalling an add-on deletes its workload first
// and every object its builder makes, whatever the spec asked.
func TestAddonObjectKinds(t *testing.T) {
	for name, want := range map[string][3]string{
		AddonCoreDNS:      {"Service", metav1.NamespaceSystem, KubeDNSService},
		AddonKubeProxy:    {"DaemonSet", metav1.NamespaceSystem, KubeProxyName},
		AddonKonnectivity: {"DaemonSet", metav1.NamespaceSystem, KonnectivityAgentName},
	} {
		kinds := AddonObjectKinds(name)
		if len(kinds) < 6 || kinds[0] != want || !slices.ContainsFunc(kinds, func(k [3]string) bool { return k[0] == "ServiceAccount" }) {
			t.Errorf("%s: %v", name, kinds)
		}
	}
	if kinds := AddonObjectKinds("nothing"); len(kinds) != 0 {
		t.Errorf("an unknown add-on: %v", kinds)
	}
}
