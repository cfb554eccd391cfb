package controlplane

// These tests run the ControlPlane reconciler against a real kube-apiserver
// and etcd (envtest). No kubelet runs here, so the test plays the kubelet
// (pods Running, apiserver containers ready); the same real API server
// stands in for the hosted API whose leases name the leaders.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
	"quorum.dev/quorum/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Stop()
	os.Exit(code)
}

// etcdCluster makes an EtcdCluster "etcd" with its CA, as its controller
// would, and sets whether it is Available.
func etcdCluster(t *testing.T, c client.Client, ns string, available bool) {
	t.Helper()
	ctx := context.Background()
	ec := &quorumv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "etcd"},
		Spec:       quorumv1alpha1.EtcdClusterSpec{Replicas: ptr.To[int32](3), Zones: quorumv1alpha1.Zones{"zone-a", "zone-b", "zone-c"}},
	}
	if err := c.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	_, secret, err := pki.NewCASecret(metav1.ObjectMeta{Namespace: ns, Name: resources.CASecretName("etcd")}, "etcd-ca", pki.DefaultCAValidity)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	setEtcdAvailable(t, c, ns, available)
}

func setEtcdAvailable(t *testing.T, c client.Client, ns string, available bool) {
	t.Helper()
	ctx := context.Background()
	ec := &quorumv1alpha1.EtcdCluster{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "etcd"}, ec); err != nil {
		t.Fatal(err)
	}
	status := metav1.ConditionFalse
	if available {
		status = metav1.ConditionTrue
	}
	ec.Status.Replicas, ec.Status.ReadyReplicas = 3, 3
	meta.SetStatusCondition(&ec.Status.Conditions, metav1.Condition{Type: quorumv1alpha1.ConditionAvailable, Status: status, Reason: "Test", Message: "set by the test"})
	if err := c.Status().Update(ctx, ec); err != nil {
		t.Fatal(err)
	}
}

func newControlPlane(t *testing.T, c client.Client, ns, name string) {
	t.Helper()
	cp := &quorumv1alpha1.ControlPlane{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: quorumv1alpha1.ControlPlaneSpec{
			Replicas: ptr.To[int32](3), Version: "v1.36.3",
			Zones:    quorumv1alpha1.Zones{"zone-a", "zone-b", "zone-c"},
			Endpoint: quorumv1alpha1.ControlPlaneEndpoint{ServiceType: "ClusterIP"},
			Etcd:     quorumv1alpha1.ControlPlaneEtcd{ClusterRef: &quorumv1alpha1.LocalObjectReference{Name: "etcd"}},
		},
	}
	if err := c.Create(context.Background(), cp); err != nil {
		t.Fatal(err)
	}
}

// kubelet plays the kubelet for the replicas of cp: scheduled on their
// zone's node, Running, the apiserver container ready or not.
func kubelet(t *testing.T, c client.Client, ns, cp string, ready bool, since time.Time) {
	t.Helper()
	ctx := context.Background()
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(resources.ControlPlaneLabels(cp))); err != nil {
		t.Fatal(err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		state := corev1.ConditionFalse
		if ready {
			state = corev1.ConditionTrue
		}
		if p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].Ready == ready {
			continue
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = fmt.Sprintf("10.2.0.%d", i+2)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "kube-apiserver", Ready: ready}}
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.ContainersReady, Status: state, LastTransitionTime: metav1.NewTime(since)},
			{Type: corev1.PodReady, Status: state, LastTransitionTime: metav1.NewTime(since)},
		}
		if err := c.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
}

func newReconciler(c client.Client) *Reconciler {
	return &Reconciler{
		Base: reconciler.Base{Client: c},
		Hosted: func(context.Context, *quorumv1alpha1.ControlPlane, []byte) (kubernetes.Interface, error) {
			return kubernetes.NewForConfig(testenv.Config())
		},
	}
}

// converge reconciles cp, playing the kubelet, until its replicas are all
// ready and nothing progresses.
func converge(t *testing.T, r *Reconciler, c client.Client, ns, name string) *quorumv1alpha1.ControlPlane {
	t.Helper()
	ctx := context.Background()
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}}
	cp := &quorumv1alpha1.ControlPlane{}
	for i := 0; i < 30; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
		kubelet(t, c, ns, name, true, time.Now())
		if err := c.Get(ctx, req.NamespacedName, cp); err != nil {
			t.Fatal(err)
		}
		if cp.Status.ReadyReplicas == 3 && meta.IsStatusConditionFalse(cp.Status.Conditions, quorumv1alpha1.ConditionProgressing) {
			return cp
		}
	}
	t.Fatalf("no convergence: %+v", cp.Status)
	return nil
}

func replicaPods(t *testing.T, c client.Client, ns, cp string) []corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := c.List(context.Background(), pods, client.InNamespace(ns), client.MatchingLabels(resources.ControlPlaneLabels(cp))); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// TestControlPlaneObjects builds a control plane on an EtcdCluster and
// checks what the operator makes and reports; then a reconcile of a
// healthy control plane writes nothing.
func TestControlPlaneObjects(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "cp")
	ctx := context.Background()
	etcdCluster(t, c, ns, true)
	newControlPlane(t, c, ns, "tenant")
	counter := &testenv.WriteCounter{Client: c}
	r := newReconciler(counter)
	r.Recorder = counter
	cp := converge(t, r, c, ns, "tenant")

	for _, key := range []client.ObjectKey{
		{Namespace: ns, Name: resources.EndpointServiceName("tenant")},
	} {
		if err := c.Get(ctx, key, &corev1.Service{}); err != nil {
			t.Errorf("Service %s: %v", key.Name, err)
		}
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.KubeconfigSecretName("tenant", resources.KubeconfigAdmin)}, &corev1.Secret{}); err != nil {
		t.Errorf("admin kubeconfig: %v", err)
	}
	zones := map[string]int{}
	for _, p := range replicaPods(t, c, ns, "tenant") {
		zones[p.Labels[resources.LabelZone]]++
	}
	if zones["zone-a"] != 1 || zones["zone-b"] != 1 || zones["zone-c"] != 1 {
		t.Errorf("replicas per zone: %v", zones)
	}
	for cond, want := range map[string]metav1.ConditionStatus{
		quorumv1alpha1.ConditionAvailable:     metav1.ConditionTrue,
		quorumv1alpha1.ConditionEtcdAvailable: metav1.ConditionTrue,
		quorumv1alpha1.ConditionDegraded:      metav1.ConditionFalse,
	} {
		if got := meta.FindStatusCondition(cp.Status.Conditions, cond); got == nil || got.Status != want {
			t.Errorf("%s = %+v, want %s", cond, got, want)
		}
	}

	names := map[string]bool{}
	for _, cs := range cp.Status.Certificates {
		if !cs.NotAfter.After(time.Now().Add(300 * 24 * time.Hour)) {
			t.Errorf("certificate %s expires %s: want about a year or more", cs.Name, cs.NotAfter)
		}
		names[cs.Name] = true
	}
	for _, want := range []string{"ca", "apiserver", "front-proxy-ca", "apiserver-etcd-client", "kubeconfig-admin", "kubeconfig-controller-manager"} {
		if !names[want] {
			t.Errorf("status.certificates lacks %s: %v", want, cp.Status.Certificates)
		}
	}

	// The leader leases in the (hosted) API name a replica.
	leader := replicaPods(t, c, ns, "tenant")[1].Name
	cs, err := kubernetes.NewForConfig(testenv.Config())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kube-controller-manager", "kube-scheduler"} {
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(leader + "_0b3c"), LeaseDurationSeconds: ptr.To[int32](15), RenewTime: ptr.To(metav1.NewMicroTime(time.Now()))}}
		_ = cs.CoordinationV1().Leases("kube-system").Delete(ctx, name, metav1.DeleteOptions{})
		if _, err := cs.CoordinationV1().Leases("kube-system").Create(ctx, lease, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "tenant"}}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, req.NamespacedName, cp); err != nil {
		t.Fatal(err)
	}
	if cp.Status.Leaders.ControllerManager != leader || cp.Status.Leaders.Scheduler != leader {
		t.Errorf("leaders %+v, want %s", cp.Status.Leaders, leader)
	}
	// (issue 16) The hosted RBAC the credentials rely on: the admin group
	// is cluster-admin through a binding, the kubelet client may use the
	// kubelet API, the operator may get the two leases and nothing else.
	if crb, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, resources.AdminGroup, metav1.GetOptions{}); err != nil ||
		crb.RoleRef.Name != "cluster-admin" || len(crb.Subjects) != 1 || crb.Subjects[0].Name != resources.AdminGroup || crb.Subjects[0].Kind != "Group" {
		t.Errorf("ClusterRoleBinding %s: %+v %v", resources.AdminGroup, crb, err)
	}
	if crb, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, "quorum:kubelet-api-admin", metav1.GetOptions{}); err != nil ||
		crb.RoleRef.Name != "system:kubelet-api-admin" || crb.Subjects[0].Name != resources.KubeletClientUser {
		t.Errorf("kubelet API binding: %+v %v", crb, err)
	}
	role, err := cs.RbacV1().Roles("kube-system").Get(ctx, resources.OperatorUser, metav1.GetOptions{})
	if err != nil || len(role.Rules) != 3 {
		t.Fatalf("the operator's Role: %+v %v", role, err)
	}
	for i, want := range []struct{ resource, names string }{
		{"leases", "kube-controller-manager kube-scheduler"}, {"deployments", "coredns"}, {"daemonsets", "kube-proxy konnectivity-agent"},
	} {
		r := role.Rules[i]
		if !slices.Equal(r.Verbs, []string{"get"}) || !slices.Equal(r.Resources, []string{want.resource}) || strings.Join(r.ResourceNames, " ") != want.names {
			t.Errorf("the operator's Role, rule %d: %+v, want get %s %s", i, r, want.resource, want.names)
		}
	}
	assertJoinObjects(t, c, cs, ns, "tenant")

	if len(counter.Take()) == 0 {
		t.Fatal("the counter saw no write while the control plane was built: it counts nothing")
	}
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if writes := counter.Take(); len(writes) != 0 {
		t.Fatalf("reconciles of a healthy control plane wrote: %v", writes)
	}
}

// TestControlPlaneNotReadyWithoutHostedRBAC: apiservers that all answer
// are not a Ready control plane while the admin credential's binding cannot
// be made in the hosted cluster (the admin kubeconfig would be refused);
// once it can, Ready.
func TestControlPlaneNotReadyWithoutHostedRBAC(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "cp-rbac")
	ctx := context.Background()
	etcdCluster(t, c, ns, true)
	newControlPlane(t, c, ns, "tenant")
	r := newReconciler(c)
	working := r.Hosted
	r.Hosted = func(context.Context, *quorumv1alpha1.ControlPlane, []byte) (kubernetes.Interface, error) {
		return nil, errors.New("the endpoint answers 503")
	}
	cp := converge(t, r, c, ns, "tenant")
	ready := meta.FindStatusCondition(cp.Status.Conditions, reconciler.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != reasonHostedPending || !strings.Contains(ready.Message, "503") {
		t.Fatalf("3 apiservers ready, hosted RBAC not made: Ready = %+v, want False %s", ready, reasonHostedPending)
	}
	r.Hosted = working
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "tenant"}}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, req.NamespacedName, cp); err != nil {
		t.Fatal(err)
	}
	if !meta.IsStatusConditionTrue(cp.Status.Conditions, reconciler.ConditionReady) {
		t.Fatalf("hosted RBAC made: Ready = %+v", meta.FindStatusCondition(cp.Status.Conditions, reconciler.ConditionReady))
	}
}

// TestControlPlaneAddons: the add-ons asked for are made in the hosted
// cluster and reported; one deleted there is made again; one no longer
// asked for is uninstalled, but an object of the same name Quorum did not
// make is left alone.
func TestControlPlaneAddons(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "cp-addons")
	ctx := context.Background()
	etcdCluster(t, c, ns, true)
	newControlPlane(t, c, ns, "tenant")
	cp := &quorumv1alpha1.ControlPlane{}
	key := client.ObjectKey{Namespace: ns, Name: "tenant"}
	if err := c.Get(ctx, key, cp); err != nil {
		t.Fatal(err)
	}
	cp.Spec.Addons = quorumv1alpha1.ControlPlaneAddons{CoreDNS: &quorumv1alpha1.CoreDNSAddon{}, KubeProxy: &quorumv1alpha1.KubeProxyAddon{},
		Konnectivity: &quorumv1alpha1.KonnectivityAddon{}}
	// envtest's apiserver serves this Service range: kube-dns gets .10.
	cp.Spec.APIServer.ExtraArgs = map[string]string{"service-cluster-ip-range": "10.0.0.0/24"}
	if err := c.Update(ctx, cp); err != nil {
		t.Fatal(err)
	}
	r := newReconciler(c)
	if cp := converge(t, r, c, ns, "tenant"); !meta.IsStatusConditionTrue(cp.Status.Conditions, reconciler.ConditionReady) {
		t.Fatalf("Ready = %+v", meta.FindStatusCondition(cp.Status.Conditions, reconciler.ConditionReady))
	}
	hosted, err := kubernetes.NewForConfig(testenv.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, name := range resources.AddonNames {
			_ = uninstallAddon(context.Background(), hosted, name)
		}
	})
	sys := metav1.NamespaceSystem
	dep, err := hosted.AppsV1().Deployments(sys).Get(ctx, resources.CoreDNSName, metav1.GetOptions{})
	if err != nil || dep.Spec.Template.Spec.Containers[0].Image != "registry.k8s.io/coredns/coredns:v1.14.2" || *dep.Spec.Replicas != 2 {
		t.Fatalf("CoreDNS Deployment: %v %v", dep, err)
	}
	svc, err := hosted.CoreV1().Services(sys).Get(ctx, resources.KubeDNSService, metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != "10.0.0.10" {
		t.Fatalf("kube-dns Service: %v %v", svc, err)
	}
	ds, err := hosted.AppsV1().DaemonSets(sys).Get(ctx, resources.KubeProxyName, metav1.GetOptions{})
	if err != nil || ds.Spec.Template.Spec.Containers[0].Image != "registry.k8s.io/kube-proxy:v1.36.3" {
		t.Fatalf("kube-proxy DaemonSet: %v %v", ds, err)
	}
	// konnectivity: the agents in the hosted cluster, a server in every
	// replica with its own credential, the agents' port on the endpoint.
	agents, err := hosted.AppsV1().DaemonSets(sys).Get(ctx, resources.KonnectivityAgentName, metav1.GetOptions{})
	if err != nil || agents.Spec.Template.Spec.Containers[0].Image != resources.KonnectivityAgentImage() {
		t.Fatalf("konnectivity-agent DaemonSet: %v %v", agents, err)
	}
	serverKubeconfig := client.ObjectKey{Namespace: ns, Name: resources.KubeconfigSecretName("tenant", resources.KubeconfigKonnectivityServer)}
	if err := c.Get(ctx, serverKubeconfig, &corev1.Secret{}); err != nil {
		t.Fatalf("the konnectivity servers' kubeconfig: %v", err)
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(resources.ControlPlaneLabels("tenant"))); err != nil || len(pods.Items) == 0 {
		t.Fatalf("replicas: %v", err)
	}
	for _, p := range pods.Items {
		if !slices.ContainsFunc(p.Spec.Containers, func(c corev1.Container) bool { return c.Name == resources.KonnectivityServerContainer }) {
			t.Fatalf("replica %s runs no konnectivity server", p.Name)
		}
	}
	endpoint := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.EndpointServiceName("tenant")}, endpoint); err != nil || len(endpoint.Spec.Ports) != 2 {
		t.Fatalf("endpoint without the agents' port: %v %v", endpoint.Spec.Ports, err)
	}
	req := ctrl.Request{NamespacedName: key}
	reconcileAndGet := func() *quorumv1alpha1.ControlPlane {
		t.Helper()
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
		got := &quorumv1alpha1.ControlPlane{}
		if err := c.Get(ctx, key, got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	cp = reconcileAndGet()
	if len(cp.Status.Addons) != 3 || cp.Status.Addons[0].Name != resources.AddonCoreDNS || cp.Status.Addons[0].Version != "v1.14.2" ||
		cp.Status.Addons[0].Desired != 2 || cp.Status.Addons[1].Version != "v1.36.3" ||
		cp.Status.Addons[2].Name != resources.AddonKonnectivity || cp.Status.Addons[2].Version != resources.KonnectivityVersion {
		t.Fatalf("status.addons = %+v", cp.Status.Addons)
	}

	// Deleted in the hosted cluster: made again on the next pass.
	if err := hosted.AppsV1().Deployments(sys).Delete(ctx, resources.CoreDNSName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cp = reconcileAndGet()
	if _, err := hosted.AppsV1().Deployments(sys).Get(ctx, resources.CoreDNSName, metav1.GetOptions{}); err != nil {
		t.Fatalf("the deleted CoreDNS Deployment was not made again: %v", err)
	}

	// kube-proxy and konnectivity no longer asked for: uninstalled, the
	// servers' credential and port gone with them. CoreDNS's ConfigMap
	// taken over by someone (no Quorum label) survives CoreDNS's removal.
	cp.Spec.Addons.KubeProxy = nil
	cp.Spec.Addons.Konnectivity = nil
	if err := c.Update(ctx, cp); err != nil {
		t.Fatal(err)
	}
	cp = reconcileAndGet()
	if _, err := hosted.AppsV1().DaemonSets(sys).Get(ctx, resources.KonnectivityAgentName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("konnectivity-agent still installed after its removal from spec.addons: %v", err)
	}
	if _, err := hosted.RbacV1().ClusterRoleBindings().Get(ctx, "system:konnectivity-server", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the konnectivity servers' binding left behind: %v", err)
	}
	if err := c.Get(ctx, serverKubeconfig, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the konnectivity servers' kubeconfig left behind: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.EndpointServiceName("tenant")}, endpoint); err != nil || len(endpoint.Spec.Ports) != 1 {
		t.Fatalf("endpoint keeps the agents' port: %v %v", endpoint.Spec.Ports, err)
	}
	if _, err := hosted.AppsV1().DaemonSets(sys).Get(ctx, resources.KubeProxyName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("kube-proxy still installed after its removal from spec.addons: %v", err)
	}
	if _, err := hosted.RbacV1().ClusterRoleBindings().Get(ctx, "kubeadm:node-proxier", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("kube-proxy's binding left behind: %v", err)
	}
	if len(cp.Status.Addons) != 1 || cp.Status.Addons[0].Name != resources.AddonCoreDNS {
		t.Fatalf("status.addons after kube-proxy's removal = %+v", cp.Status.Addons)
	}
	if _, err := hosted.CoreV1().ConfigMaps(sys).Patch(ctx, resources.CoreDNSName, types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"app.kubernetes.io/managed-by":"someone"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	cp.Spec.Addons.CoreDNS = nil
	if err := c.Update(ctx, cp); err != nil {
		t.Fatal(err)
	}
	cp = reconcileAndGet()
	if _, err := hosted.AppsV1().Deployments(sys).Get(ctx, resources.CoreDNSName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("CoreDNS still installed after its removal from spec.addons: %v", err)
	}
	if _, err := hosted.CoreV1().ConfigMaps(sys).Get(ctx, resources.CoreDNSName, metav1.GetOptions{}); err != nil {
		t.Fatalf("a ConfigMap Quorum no longer manages was deleted: %v", err)
	}
	if len(cp.Status.Addons) != 0 {
		t.Fatalf("status.addons with none asked = %+v", cp.Status.Addons)
	}
	_ = hosted.CoreV1().ConfigMaps(sys).Delete(ctx, resources.CoreDNSName, metav1.DeleteOptions{})
}

// TestControlPlaneEtcdClusterInUse: a second ControlPlane naming an
// EtcdCluster another one holds is refused with a condition and starts
// nothing.
func TestControlPlaneEtcdClusterInUse(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "cp-twice")
	ctx := context.Background()
	etcdCluster(t, c, ns, true)
	newControlPlane(t, c, ns, "first")
	r := newReconciler(c)
	converge(t, r, c, ns, "first")
	newControlPlane(t, c, ns, "second")
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "second"}}
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	cp := &quorumv1alpha1.ControlPlane{}
	if err := c.Get(ctx, req.NamespacedName, cp); err != nil {
		t.Fatal(err)
	}
	if got := meta.FindStatusCondition(cp.Status.Conditions, quorumv1alpha1.ConditionEtcdAvailable); got == nil || got.Status != metav1.ConditionFalse || got.Reason != "EtcdClusterInUse" {
		t.Fatalf("EtcdAvailable of the second = %+v, want False EtcdClusterInUse", got)
	}
	if pods := replicaPods(t, c, ns, "second"); len(pods) != 0 {
		t.Fatalf("the refused control plane started %d replicas", len(pods))
	}
	// The first keeps its etcd.
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "first"}}); err != nil {
		t.Fatal(err)
	}
	first := &quorumv1alpha1.ControlPlane{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "first"}, first); err != nil {
		t.Fatal(err)
	}
	if !meta.IsStatusConditionTrue(first.Status.Conditions, quorumv1alpha1.ConditionEtcdAvailable) {
		t.Fatalf("the first control plane lost its etcd: %+v", first.Status.Conditions)
	}
}

// TestControlPlaneNoRemediationWhileEtcdIsDown: every apiserver unready
// because etcd is down is not a reason to replace any; once etcd is back,
// replicas are replaced one at a time.
func TestControlPlaneNoRemediationWhileEtcdIsDown(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "cp-etcd-down")
	ctx := context.Background()
	etcdCluster(t, c, ns, true)
	newControlPlane(t, c, ns, "tenant")
	r := newReconciler(c)
	converge(t, r, c, ns, "tenant")

	// Ten minutes later (past startTimeout and unhealthyAfter), etcd is
	// down and no apiserver has been ready for five minutes.
	later := time.Now().Add(10 * time.Minute)
	r.Now = func() time.Time { return later }
	setEtcdAvailable(t, c, ns, false)
	kubelet(t, c, ns, "tenant", false, later.Add(-5*time.Minute))
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "tenant"}}
	for i := 0; i < 5; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range replicaPods(t, c, ns, "tenant") {
		if p.DeletionTimestamp != nil {
			t.Fatalf("replica %s deleted while etcd was down", p.Name)
		}
	}
	if n := len(replicaPods(t, c, ns, "tenant")); n != 3 {
		t.Fatalf("%d replicas while etcd was down, want the 3 there were", n)
	}
	cp := &quorumv1alpha1.ControlPlane{}
	if err := c.Get(ctx, req.NamespacedName, cp); err != nil {
		t.Fatal(err)
	}
	if got := meta.FindStatusCondition(cp.Status.Conditions, quorumv1alpha1.ConditionProgressing); got == nil || got.Reason != reasonWaitEtcd {
		t.Fatalf("Progressing = %+v, want reason %s", got, reasonWaitEtcd)
	}

	// etcd back, the apiservers still unready: one replica is replaced, and
	// no second before the first one's replacement.
	setEtcdAvailable(t, c, ns, true)
	original := map[string]bool{}
	for _, p := range replicaPods(t, c, ns, "tenant") {
		original[p.Name] = true
	}
	deleted := map[string]bool{}
	for i := 0; i < 5; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
		// A pod bound to no node goes at once; one still terminating counts.
		live := map[string]bool{}
		for _, p := range replicaPods(t, c, ns, "tenant") {
			live[p.Name] = p.DeletionTimestamp == nil
		}
		for name := range original {
			if !live[name] {
				deleted[name] = true
			}
		}
	}
	if err := c.Get(ctx, req.NamespacedName, cp); err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || cp.Status.LastRemediation == nil || !deleted[cp.Status.LastRemediation.Replica] {
		t.Fatalf("replicas deleted %v, last remediation %+v: want exactly one, recorded", deleted, cp.Status.LastRemediation)
	}
}

// TestControlPlanePaused: a paused control plane replaces nothing, even a
// replica on a lost node, and says so; unpaused, it repairs.
func TestControlPlanePaused(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "cp-paused")
	ctx := context.Background()
	etcdCluster(t, c, ns, true)
	newControlPlane(t, c, ns, "tenant")
	r := newReconciler(c)
	cp := converge(t, r, c, ns, "tenant")
	cp.Annotations = map[string]string{reconciler.AnnotationPaused: "true"}
	if err := c.Update(ctx, cp); err != nil {
		t.Fatal(err)
	}
	victim := replicaPods(t, c, ns, "tenant")[0]
	if err := c.Delete(ctx, &victim, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "tenant"}}
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(replicaPods(t, c, ns, "tenant")); n != 2 {
		t.Fatalf("a paused control plane has %d replicas, want the 2 left", n)
	}
	if err := c.Get(ctx, req.NamespacedName, cp); err != nil {
		t.Fatal(err)
	}
	if got := meta.FindStatusCondition(cp.Status.Conditions, quorumv1alpha1.ConditionProgressing); got == nil || got.Reason != reconciler.ReasonPaused || cp.Status.Replicas != 2 {
		t.Fatalf("Progressing = %+v, replicas %d: want reason Paused and 2 replicas observed", got, cp.Status.Replicas)
	}
	delete(cp.Annotations, reconciler.AnnotationPaused)
	if err := c.Update(ctx, cp); err != nil {
		t.Fatal(err)
	}
	converge(t, r, c, ns, "tenant")
}

// TestControlPlaneFollowsEtcdCARotation: as the EtcdCluster's CA Secret
// goes through a rotation, the replicas roll onto the new trust bundle and
// a client certificate from the new CA, and status.etcdCredentials says
// what they run only once every replica runs it.
func TestControlPlaneFollowsEtcdCARotation(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "cp-rotate")
	ctx := context.Background()
	etcdCluster(t, c, ns, true)
	newControlPlane(t, c, ns, "tenant")
	r := newReconciler(c)
	cp := converge(t, r, c, ns, "tenant")

	caSecret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.CASecretName("etcd")}, caSecret); err != nil {
		t.Fatal(err)
	}
	old, err := pki.CAFromSecret(caSecret)
	if err != nil {
		t.Fatal(err)
	}
	next, err := pki.NewCA("etcd-ca next", pki.DefaultCAValidity)
	if err != nil {
		t.Fatal(err)
	}
	fp := func(ca *pki.KeyPair) string { return pki.Fingerprint(ca.Cert) }
	creds := func() *quorumv1alpha1.EtcdCredentialsStatus {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tenant"}, cp); err != nil {
			t.Fatal(err)
		}
		return cp.Status.EtcdCredentials
	}
	if got := creds(); got == nil || !slices.Equal(got.TrustedCAs, []string{fp(old)}) || got.ClientIssuer != fp(old) {
		t.Fatalf("status.etcdCredentials %+v, want the old CA trusted and issuing", got)
	}

	// Each phase of the EtcdCluster's rotation, as its controller writes
	// the CA Secret.
	for _, step := range []struct {
		name    string
		data    map[string][]byte
		trusted []string
		issuer  string
	}{
		{"trust both", map[string][]byte{corev1.TLSCertKey: old.CertPEM, corev1.TLSPrivateKeyKey: old.KeyPEM, resources.KeyCABundle: pki.Bundle(old.CertPEM, next.CertPEM)}, []string{fp(old), fp(next)}, fp(old)},
		{"the new CA issues", map[string][]byte{corev1.TLSCertKey: next.CertPEM, corev1.TLSPrivateKeyKey: next.KeyPEM, resources.KeyCABundle: pki.Bundle(old.CertPEM, next.CertPEM)}, []string{fp(old), fp(next)}, fp(next)},
		{"the old CA dropped", map[string][]byte{corev1.TLSCertKey: next.CertPEM, corev1.TLSPrivateKeyKey: next.KeyPEM}, []string{fp(next)}, fp(next)},
	} {
		before := creds()
		caSecret.Data = step.data
		if err := c.Update(ctx, caSecret); err != nil {
			t.Fatal(err)
		}
		req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "tenant"}}
		done := false
		for i := 0; i < 60 && !done; i++ {
			if _, err := r.Reconcile(ctx, req); err != nil {
				t.Fatalf("%s: reconcile %d: %v", step.name, i, err)
			}
			kubelet(t, c, ns, "tenant", true, time.Now().Add(-time.Hour))
			got := creds()
			switch {
			case got != nil && slices.Equal(got.TrustedCAs, step.trusted) && got.ClientIssuer == step.issuer:
				done = cp.Status.UpdatedReplicas == 3 && cp.Status.Replicas == 3
				if !done {
					t.Fatalf("%s: status.etcdCredentials %+v reported with %d of %d replicas updated", step.name, got, cp.Status.UpdatedReplicas, cp.Status.Replicas)
				}
			case got == nil || !slices.Equal(got.TrustedCAs, before.TrustedCAs) || got.ClientIssuer != before.ClientIssuer:
				t.Fatalf("%s: status.etcdCredentials %+v is neither what ran before (%+v) nor what is asked", step.name, got, before)
			}
		}
		if !done {
			t.Fatalf("%s: status.etcdCredentials %+v, want trusted %v issued by %s", step.name, creds(), step.trusted, step.issuer)
		}
	}
	pkiData := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.PKISecretName("tenant")}, pkiData); err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.ParseCertificate(pkiData.Data[resources.PKIEtcdClientCert])
	if err != nil || !pki.IssuedBy(leaf, next.Cert) || string(pkiData.Data[resources.PKIEtcdCACert]) != string(next.CertPEM) {
		t.Fatalf("the apiservers' etcd client certificate and trust after the rotation: not the new CA's alone (%v)", err)
	}
}

// TestControlPlaneCARotation: quorum.dev/rotate-ca takes the cluster and
// front-proxy CAs through the three phases, the replicas rolling onto each
// (the operator replaced mid-way goes on from the PKI Secret); afterwards
// every leaf and kubeconfig is the new CAs' alone.
func TestControlPlaneCARotation(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "cp-ca")
	ctx := context.Background()
	etcdCluster(t, c, ns, true)
	newControlPlane(t, c, ns, "tenant")
	r := newReconciler(c)
	cp := converge(t, r, c, ns, "tenant")
	pkiData := func() map[string][]byte {
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.PKISecretName("tenant")}, s); err != nil {
			t.Fatal(err)
		}
		return s.Data
	}
	oldCA, _ := pki.ParseCertificate(pkiData()[resources.PKICACert])
	oldFront, _ := pki.ParseCertificate(pkiData()[resources.PKIFrontProxyCACert])

	patch := client.MergeFrom(cp.DeepCopy())
	cp.Annotations = map[string]string{reconciler.AnnotationRotateCA: "1"}
	if err := c.Patch(ctx, cp, patch); err != nil {
		t.Fatal(err)
	}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "tenant"}}
	var phases []quorumv1alpha1.CARotationPhase
	for i := 0; i < 150; i++ {
		if i == 10 {
			r = newReconciler(c) // the operator restarted mid-rotation
		}
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
		kubelet(t, c, ns, "tenant", true, time.Now().Add(-time.Hour))
		if err := c.Get(ctx, req.NamespacedName, cp); err != nil {
			t.Fatal(err)
		}
		if rot := cp.Status.CARotation; rot != nil && (len(phases) == 0 || phases[len(phases)-1] != rot.Phase) {
			phases = append(phases, rot.Phase)
		}
		if rot := cp.Status.CARotation; rot != nil && rot.Phase == quorumv1alpha1.CARotationCompleted && cp.Status.UpdatedReplicas == 3 && cp.Status.Replicas == 3 {
			break
		}
	}
	want := []quorumv1alpha1.CARotationPhase{quorumv1alpha1.CARotationTrustBoth, quorumv1alpha1.CARotationReissueLeaves, quorumv1alpha1.CARotationDropOldCA, quorumv1alpha1.CARotationCompleted}
	if !slices.Equal(phases, want) {
		t.Fatalf("phases %v, want %v; status %+v", phases, want, cp.Status)
	}
	data := pkiData()
	ca, _ := pki.ParseCertificate(data[resources.PKICACert])
	front, _ := pki.ParseCertificate(data[resources.PKIFrontProxyCACert])
	if pki.Fingerprint(ca) == pki.Fingerprint(oldCA) || pki.Fingerprint(front) == pki.Fingerprint(oldFront) {
		t.Fatal("the CAs are the same after the rotation")
	}
	for k, issuer := range map[string]*x509.Certificate{resources.PKIAPIServerCert: ca, resources.PKIKubeletClientCert: ca, resources.PKIFrontProxyClientCert: front} {
		leaf, _ := pki.ParseCertificate(data[k])
		if !pki.IssuedBy(leaf, issuer) {
			t.Errorf("%s is not the new CA's", k)
		}
	}
	for _, u := range []string{resources.KubeconfigAdmin, resources.KubeconfigControllerManager, resources.KubeconfigScheduler} {
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.KubeconfigSecretName("tenant", u)}, s); err != nil {
			t.Fatal(err)
		}
		cfg, err := clientcmd.Load(s.Data[resources.KubeconfigKey])
		if err != nil {
			t.Fatal(err)
		}
		for _, cl := range cfg.Clusters {
			if string(cl.CertificateAuthorityData) != string(data[resources.PKICACert]) {
				t.Errorf("kubeconfig %s trusts %v, want the new CA alone", u, pki.BundleFingerprints(cl.CertificateAuthorityData))
			}
		}
		for _, ai := range cfg.AuthInfos {
			leaf, _ := pki.ParseCertificate(ai.ClientCertificateData)
			if !pki.IssuedBy(leaf, ca) {
				t.Errorf("kubeconfig %s: client certificate not the new CA's", u)
			}
		}
	}
	for _, p := range replicaPods(t, c, ns, "tenant") {
		args := strings.Join(p.Spec.Containers[0].Args, " ")
		if !strings.Contains(args, "--client-ca-file=/etc/kubernetes/pki/ca.crt") {
			t.Errorf("replica %s verifies clients with %s, want the new CA alone", p.Name, args)
		}
	}
	if !meta.IsStatusConditionTrue(cp.Status.Conditions, quorumv1alpha1.ConditionReady) ||
		!meta.IsStatusConditionFalse(cp.Status.Conditions, quorumv1alpha1.ConditionCertificatesExpiring) {
		t.Fatalf("not Ready, or certificates said expiring, after the rotation: %+v", cp.Status.Conditions)
	}
}

// TestControlPlaneAudit: audit on with a policy from a ConfigMap. A
// missing ConfigMap, then a policy kube-apiserver would refuse, stall the
// control plane with a reason and roll nothing; a good policy rolls the
// replicas onto it (flags, the ConfigMap mounted), and a new policy rolls
// them again.
func TestControlPlaneAudit(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "cp-audit")
	ctx := context.Background()
	etcdCluster(t, c, ns, true)
	newControlPlane(t, c, ns, "tenant")
	r := newReconciler(c)
	cp := converge(t, r, c, ns, "tenant")
	hashes := func() map[string]bool {
		out := map[string]bool{}
		for _, p := range replicaPods(t, c, ns, "tenant") {
			out[p.Annotations[resources.AnnotationTemplateHash]] = true
		}
		return out
	}
	before := hashes()
	cp.Spec.APIServer.Audit = &quorumv1alpha1.APIServerAudit{PolicyConfigMapRef: quorumv1alpha1.LocalObjectReference{Name: "audit"}, Output: quorumv1alpha1.AuditStdout}
	if err := c.Update(ctx, cp); err != nil {
		t.Fatal(err)
	}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "tenant"}}
	stalled := func(reason string) {
		t.Helper()
		for i := 0; i < 3; i++ {
			if _, err := r.Reconcile(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
		got := &quorumv1alpha1.ControlPlane{}
		if err := c.Get(ctx, req.NamespacedName, got); err != nil {
			t.Fatal(err)
		}
		prog := meta.FindStatusCondition(got.Status.Conditions, quorumv1alpha1.ConditionProgressing)
		if prog == nil || prog.Status != metav1.ConditionFalse || prog.Reason != reason {
			t.Fatalf("Progressing %+v, want False %s", prog, reason)
		}
		if s := testenv.Kstatus(t, got); s != kstatus.FailedStatus {
			t.Fatalf("kstatus %s with %s, want Failed (stalled)", s, reason)
		}
		if h := hashes(); fmt.Sprint(h) != fmt.Sprint(before) {
			t.Fatalf("replicas rolled while the audit policy could not be used: %v, were %v", h, before)
		}
	}
	stalled("AuditPolicyNotFound")

	policy := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "audit"},
		Data: map[string]string{quorumv1alpha1.AuditPolicyKey: "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Sideways\n"}}
	if err := c.Create(ctx, policy); err != nil {
		t.Fatal(err)
	}
	stalled("AuditPolicyInvalid")

	policy.Data[quorumv1alpha1.AuditPolicyKey] = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"
	if err := c.Update(ctx, policy); err != nil {
		t.Fatal(err)
	}
	converge(t, r, c, ns, "tenant")
	rolled := hashes()
	if len(rolled) != 1 || fmt.Sprint(rolled) == fmt.Sprint(before) {
		t.Fatalf("template hashes %v after the policy was fixed (were %v): want every replica rolled onto one new template", rolled, before)
	}
	pod := replicaPods(t, c, ns, "tenant")[0]
	api := pod.Spec.Containers[slices.IndexFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == "kube-apiserver" })]
	if !slices.Contains(api.Args, "--audit-policy-file=/etc/kubernetes/audit/policy.yaml") || !slices.Contains(api.Args, "--audit-log-path=-") {
		t.Fatalf("apiserver args %v", api.Args)
	}
	if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.ConfigMap != nil && v.ConfigMap.Name == "audit" }) {
		t.Fatalf("the policy ConfigMap is not mounted: %v", pod.Spec.Volumes)
	}

	policy.Data[quorumv1alpha1.AuditPolicyKey] = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n"
	if err := c.Update(ctx, policy); err != nil {
		t.Fatal(err)
	}
	converge(t, r, c, ns, "tenant")
	if again := hashes(); len(again) != 1 || fmt.Sprint(again) == fmt.Sprint(rolled) {
		t.Fatalf("a new policy did not roll the replicas: %v", again)
	}
}

// TestControlPlaneEncryptionKeyRotation: a new rotate-encryption-key value
// takes the encryption Secret through AddKey, WriteNew, Rewrite and
// DropOld, each phase once every replica runs the one before (the replicas
// roll onto each); the hosted cluster's Secrets are written again before
// the old key goes, and at the end one key is left, a new one.
func TestControlPlaneEncryptionKeyRotation(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "cp-keys")
	ctx := context.Background()
	etcdCluster(t, c, ns, true)
	newControlPlane(t, c, ns, "tenant")
	r := newReconciler(c)
	events := &testenv.WriteCounter{Client: c}
	r.Recorder = events
	cp := converge(t, r, c, ns, "tenant")
	secretKey := client.ObjectKey{Namespace: ns, Name: resources.EncryptionSecretName("tenant")}
	keysNow := func() ([]resources.EncryptionKey, map[string]string) {
		s := &corev1.Secret{}
		if err := c.Get(ctx, secretKey, s); err != nil {
			t.Fatal(err)
		}
		keys, err := resources.ParseEncryptionConfig(s.Data[resources.EncryptionConfigKey])
		if err != nil {
			t.Fatal(err)
		}
		return keys, s.Annotations
	}
	before, _ := keysNow()
	if len(before) != 1 {
		t.Fatalf("%d keys before the rotation", len(before))
	}
	events.Take()
	cp.Annotations = map[string]string{AnnotationRotateEncryptionKey: "1"}
	if err := c.Update(ctx, cp); err != nil {
		t.Fatal(err)
	}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "tenant"}}
	var phases []string
	rewritten, checked := false, false
	for i := 0; i < 200; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
		kubelet(t, c, ns, "tenant", true, time.Now())
		keys, ann := keysNow()
		phase := ann[annotationKeyRotationPhase]
		if len(phases) == 0 || phases[len(phases)-1] != phase {
			phases = append(phases, phase)
			checked = false
			continue
		}
		if !checked {
			// A pass after a phase starts, the keys are shaped for it.
			checked = true
			switch phase {
			case keyPhaseAddKey:
				if len(keys) != 2 || keys[0].Name != before[0].Name {
					t.Fatalf("AddKey: keys %v, want the old one first and a new one", keys)
				}
			case keyPhaseWriteNew, keyPhaseRewrite:
				if len(keys) != 2 || keys[1].Name != before[0].Name {
					t.Fatalf("%s: keys %v, want the new one first and the old one kept", phase, keys)
				}
			case keyPhaseDropOld:
				// The hosted Secrets (envtest stands in for the hosted
				// API) were written again before the old key went. A
				// write of an unchanged Secret reaches etcd only when it
				// is stored under a key that is not the write key, which
				// envtest has not: e2e checks the stored bytes.
				for _, w := range events.Take() {
					rewritten = rewritten || strings.Contains(w, "SecretsRewritten: wrote")
				}
			}
		}
		if phase == "" && len(phases) > 1 {
			break
		}
	}
	if got := strings.Join(phases, ","); got != "AddKey,WriteNew,Rewrite,DropOld," {
		t.Fatalf("phases %q, want through AddKey, WriteNew, Rewrite and DropOld to the end", got)
	}
	if !rewritten {
		t.Fatal("the old key was dropped before the hosted Secrets were written again")
	}
	after, ann := keysNow()
	if len(after) != 1 || after[0].Name == before[0].Name || ann[annotationKeyRotationTrigger] != "1" {
		t.Fatalf("after the rotation: keys %v, annotations %v", after, ann)
	}
	// The same value again rotates nothing.
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if again, ann := keysNow(); len(again) != 1 || again[0].Name != after[0].Name || ann[annotationKeyRotationPhase] != "" {
		t.Fatalf("a rotation started again on the same value: %v %v", again, ann)
	}
}

// assertJoinObjects (issue 16): what kubeadm join reads is in the hosted
// API: cluster-info holds the admin kubeconfig's server and CA and no
// credential, anyone may read it; kubeadm-config and kubelet-config name
// this control plane's version, endpoint and DNS, and only nodes and
// bootstrap tokens may read them; a bootstrap token may ask for a node
// certificate, which is approved, and may look up nodes. Checked with
// SubjectAccessReviews against the real RBAC authorizer.
func assertJoinObjects(t *testing.T, c client.Client, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	ctx := context.Background()
	admin := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.KubeconfigSecretName(name, resources.KubeconfigAdmin)}, admin); err != nil {
		t.Fatal(err)
	}
	adminCfg, err := clientcmd.Load(admin.Data[resources.KubeconfigKey])
	if err != nil {
		t.Fatal(err)
	}
	adminCluster := adminCfg.Clusters[adminCfg.Contexts[adminCfg.CurrentContext].Cluster]
	cp := &quorumv1alpha1.ControlPlane{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cp); err != nil {
		t.Fatal(err)
	}

	info, err := cs.CoreV1().ConfigMaps("kube-public").Get(ctx, resources.ClusterInfoConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	infoCfg, err := clientcmd.Load([]byte(info.Data[resources.ClusterInfoKey]))
	if err != nil {
		t.Fatalf("cluster-info's kubeconfig: %v", err)
	}
	if cl := infoCfg.Clusters[""]; cl == nil || cl.Server != adminCluster.Server || string(cl.CertificateAuthorityData) != string(adminCluster.CertificateAuthorityData) {
		t.Errorf("cluster-info's cluster %+v, want the admin kubeconfig's server %s and CA", infoCfg.Clusters, adminCluster.Server)
	}
	if len(infoCfg.AuthInfos) != 0 {
		t.Errorf("cluster-info carries credentials: %v", infoCfg.AuthInfos)
	}
	kubeadmCfg, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, resources.KubeadmConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cc := kubeadmCfg.Data[resources.KubeadmClusterConfigKey]
	for _, want := range []string{"kind: ClusterConfiguration", "kubernetesVersion: " + cp.Spec.Version, "controlPlaneEndpoint: " + strings.TrimPrefix(adminCluster.Server, "https://"), "external:"} {
		if !strings.Contains(cc, want) {
			t.Errorf("kubeadm-config's ClusterConfiguration lacks %q:\n%s", want, cc)
		}
	}
	kubeletCfg, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, resources.KubeletConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: KubeletConfiguration", "- 10.96.0.10", "mode: Webhook"} {
		if !strings.Contains(kubeletCfg.Data[resources.KubeletConfigKey], want) {
			t.Errorf("kubelet-config lacks %q:\n%s", want, kubeletCfg.Data[resources.KubeletConfigKey])
		}
	}

	token := authorizationUser{name: "system:bootstrap:abcdef", groups: []string{resources.NodeBootstrapGroup, "system:authenticated"}}
	node := authorizationUser{name: "system:node:worker-1", groups: []string{"system:nodes", "system:authenticated"}}
	anonymous := authorizationUser{name: "system:anonymous", groups: []string{"system:unauthenticated"}}
	stranger := authorizationUser{name: "someone", groups: []string{"system:authenticated"}}
	for _, check := range []struct {
		who                                      authorizationUser
		verb, group, resource, namespace, object string
		subresource                              string
		want                                     bool
	}{
		{anonymous, "get", "", "configmaps", "kube-public", "cluster-info", "", true},
		{anonymous, "get", "", "configmaps", "kube-system", "kubeadm-config", "", false},
		{token, "get", "", "configmaps", "kube-system", "kubeadm-config", "", true},
		{token, "get", "", "configmaps", "kube-system", "kubelet-config", "", true},
		{node, "get", "", "configmaps", "kube-system", "kubelet-config", "", true},
		{stranger, "get", "", "configmaps", "kube-system", "kubeadm-config", "", false},
		{token, "get", "", "nodes", "", "worker-1", "", true},
		{token, "create", "certificates.k8s.io", "certificatesigningrequests", "", "", "", true},
		{token, "create", "certificates.k8s.io", "certificatesigningrequests", "", "", "nodeclient", true},
		{node, "create", "certificates.k8s.io", "certificatesigningrequests", "", "", "selfnodeclient", true},
		{token, "list", "", "secrets", "kube-system", "", "", false},
	} {
		got := allowed(t, cs, check.who, check.verb, check.group, check.resource, check.subresource, check.namespace, check.object)
		if got != check.want {
			t.Errorf("%s %s %s/%s %s in %q: allowed %v, want %v", check.who.name, check.verb, check.resource, check.subresource, check.object, check.namespace, got, check.want)
		}
	}
}

type authorizationUser struct {
	name   string
	groups []string
}

// allowed asks the API server's authorizer.
func allowed(t *testing.T, cs kubernetes.Interface, who authorizationUser, verb, group, resource, subresource, namespace, name string) bool {
	t.Helper()
	review, err := cs.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: who.name, Groups: who.groups, ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: verb, Group: group, Resource: resource, Subresource: subresource, Namespace: namespace, Name: name}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return review.Status.Allowed
}
