package controllers

// These tests run the EtcdCluster reconciler against a real kube-apiserver
// and etcd (envtest) with a fake etcd cluster behind the etcd interface:
// no kubelet runs here, so the test plays the kubelet (pod IPs, phases) and
// the fake plays the members.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

var (
	envOnce   sync.Once
	env       *envtest.Environment
	envClient client.Client
	envErr    error
	scheme    = runtime.NewScheme()
)

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		_ = env.Stop()
	}
	os.Exit(code)
}

// startEnv starts envtest once for the tests that need an API server.
func startEnv(t *testing.T) client.Client {
	t.Helper()
	envOnce.Do(func() {
		if os.Getenv("KUBEBUILDER_ASSETS") == "" {
			envErr = fmt.Errorf("KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver and etcd")
			return
		}
		_ = clientgoscheme.AddToScheme(scheme)
		_ = quorumv1alpha1.AddToScheme(scheme)
		env = &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
		cfg, err := env.Start()
		if err != nil {
			envErr = err
			_ = env.Stop()
			env = nil
			return
		}
		envClient, envErr = client.New(cfg, client.Options{Scheme: scheme})
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	return envClient
}

// writeCounter counts the writes a reconcile sends to the API server.
type writeCounter struct {
	client.Client
	mu     sync.Mutex
	writes []string
}

func (w *writeCounter) note(verb string, obj client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, fmt.Sprintf("%s %T %s", verb, obj, obj.GetName()))
}

func (w *writeCounter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	w.note("create", obj)
	return w.Client.Create(ctx, obj, opts...)
}

func (w *writeCounter) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	w.note("update", obj)
	return w.Client.Update(ctx, obj, opts...)
}

func (w *writeCounter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	w.note("patch", obj)
	return w.Client.Patch(ctx, obj, patch, opts...)
}

func (w *writeCounter) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	w.note("delete", obj)
	return w.Client.Delete(ctx, obj, opts...)
}

func (w *writeCounter) Status() client.SubResourceWriter {
	return &statusCounter{SubResourceWriter: w.Client.Status(), w: w}
}

type statusCounter struct {
	client.SubResourceWriter
	w *writeCounter
}

func (s *statusCounter) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.w.note("update-status", obj)
	return s.SubResourceWriter.Update(ctx, obj, opts...)
}

func (s *statusCounter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.w.note("patch-status", obj)
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

func (w *writeCounter) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.writes
	w.writes = nil
	return out
}

// readyNodes makes one Ready node per zone (once).
func readyNodes(t *testing.T, c client.Client) {
	t.Helper()
	ctx := context.Background()
	for _, z := range []string{"zone-a", "zone-b", "zone-c"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-" + z, Labels: map[string]string{quorumv1alpha1.LabelZone: z}}}
		if err := c.Create(ctx, n); err != nil {
			if client.IgnoreAlreadyExists(err) != nil {
				t.Fatal(err)
			}
			continue
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		if err := c.Status().Update(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
}

func newNamespace(t *testing.T, c client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "etcd-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// kubelet plays the kubelet: every member pod gets scheduled on its zone's
// node, an IP and Running, and the fake member behind it starts.
func kubelet(t *testing.T, c client.Client, ns string, f *fakeEtcd) {
	t.Helper()
	ctx := context.Background()
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(ns), client.HasLabels{resources.LabelMember}); err != nil {
		t.Fatal(err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.PodIP != "" {
			continue
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = fmt.Sprintf("10.1.0.%d", i+2)
		if err := c.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
		f.start(p.Name)
	}
}

// converge reconciles until the cluster has n voters and nothing pending.
func converge(t *testing.T, r *EtcdClusterReconciler, c client.Client, ns string, f *fakeEtcd, n int) *quorumv1alpha1.EtcdCluster {
	t.Helper()
	ctx := context.Background()
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}
	ec := &quorumv1alpha1.EtcdCluster{}
	for i := 0; i < 60; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
		kubelet(t, c, ns, f)
		if err := c.Get(ctx, req.NamespacedName, ec); err != nil {
			t.Fatal(err)
		}
		if int(ec.Status.ReadyReplicas) == n && ec.Status.PendingChange == nil && len(ec.Status.Members) == n &&
			meta.IsStatusConditionFalse(ec.Status.Conditions, quorumv1alpha1.ConditionProgressing) {
			return ec
		}
	}
	t.Fatalf("no convergence to %d voters: %+v", n, ec.Status)
	return nil
}

func newReconciler(c client.Client, f *fakeEtcd) *EtcdClusterReconciler {
	return &EtcdClusterReconciler{Client: c, Scheme: scheme, Dial: f.dial}
}

// TestEtcdClusterObjects creates a 3-member cluster and checks every object
// the operator makes, and the status it reports.
func TestEtcdClusterObjects(t *testing.T) {
	c := startEnv(t)
	readyNodes(t, c)
	ns := newNamespace(t, c)
	ctx := context.Background()
	ec := &quorumv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"},
		Spec: quorumv1alpha1.EtcdClusterSpec{
			Replicas: ptr.To[int32](3),
			Zones:    quorumv1alpha1.Zones{"zone-a", "zone-b", "zone-c"},
		},
	}
	if err := c.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	f := newFakeEtcd()
	r := newReconciler(c, f)
	ec = converge(t, r, c, ns, f, 3)

	if got := strings.Join(f.calls, ", "); !strings.HasPrefix(got, "add ") || strings.Count(got, "add ") != 2 || strings.Count(got, "promote ") != 2 {
		t.Fatalf("etcd calls: %s; want two learners added and promoted one at a time", got)
	}
	for i := 0; i+1 < len(f.calls); i++ {
		if strings.HasPrefix(f.calls[i], "add ") && strings.HasPrefix(f.calls[i+1], "add ") {
			t.Fatalf("two learners added without a promotion between them: %v", f.calls)
		}
	}

	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(ns), client.HasLabels{resources.LabelMember}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 3 {
		t.Fatalf("%d member pods, want 3", len(pods.Items))
	}
	zones := map[string]bool{}
	newClusters := 0
	for _, p := range pods.Items {
		zone := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Values[0]
		zones[zone] = true
		if p.Labels[resources.LabelZone] != zone || p.Labels[resources.LabelVoter] != "true" {
			t.Errorf("pod %s labels %v, pinned to %s", p.Name, p.Labels, zone)
		}
		args := strings.Join(p.Spec.Containers[0].Args, " ")
		if strings.Contains(args, "--initial-cluster-state=new") {
			newClusters++
		}
		for _, want := range []string{"--client-cert-auth=true", "--peer-client-cert-auth=true", "--name=" + p.Name, "https://" + p.Name + ".main-peer." + ns + ".svc:2380"} {
			if !strings.Contains(args, want) {
				t.Errorf("pod %s args lack %s: %s", p.Name, want, args)
			}
		}
		if p.Spec.Containers[0].Image != "registry.k8s.io/etcd:3.6.16-0" {
			t.Errorf("pod %s image %s", p.Name, p.Spec.Containers[0].Image)
		}
		sc := p.Spec.Containers[0].SecurityContext
		if p.Spec.SecurityContext.RunAsNonRoot == nil || !*p.Spec.SecurityContext.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("pod %s is not non-root with a read-only root filesystem", p.Name)
		}
		if p.Spec.Hostname != p.Name || p.Spec.Subdomain != "main-peer" {
			t.Errorf("pod %s hostname %s.%s", p.Name, p.Spec.Hostname, p.Spec.Subdomain)
		}
		if !metav1.IsControlledBy(&p, ec) {
			t.Errorf("pod %s is not owned by the cluster", p.Name)
		}
		pvc := &corev1.PersistentVolumeClaim{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.PVCName(p.Name)}, pvc); err != nil {
			t.Errorf("volume of %s: %v", p.Name, err)
		} else if !metav1.IsControlledBy(pvc, ec) || pvc.Spec.Resources.Requests.Storage().String() != "8Gi" {
			t.Errorf("volume of %s: owned %v, size %s", p.Name, metav1.IsControlledBy(pvc, ec), pvc.Spec.Resources.Requests.Storage())
		}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.MemberSecretName(p.Name)}, &corev1.Secret{}); err != nil {
			t.Errorf("certificates of %s: %v", p.Name, err)
		}
	}
	if len(zones) != 3 || newClusters != 1 {
		t.Fatalf("pods pinned to %v with %d bootstrapping a new cluster; want 3 zones and 1", zones, newClusters)
	}

	peer := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "main-peer"}, peer); err != nil {
		t.Fatal(err)
	}
	if peer.Spec.ClusterIP != corev1.ClusterIPNone || !peer.Spec.PublishNotReadyAddresses {
		t.Errorf("peer Service is not headless with not-ready addresses published: %+v", peer.Spec)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "main-client"}, &corev1.Service{}); err != nil {
		t.Error(err)
	}
	pdb := &policyv1.PodDisruptionBudget{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "main"}, pdb); err != nil {
		t.Fatal(err)
	}
	if pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.Selector.MatchLabels[resources.LabelVoter] != "true" {
		t.Errorf("PDB %+v: want maxUnavailable 1 over voters", pdb.Spec)
	}
	for _, name := range []string{"main-ca", "main-client-tls"} {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{}); err != nil {
			t.Errorf("secret %s: %v", name, err)
		}
	}

	st := ec.Status
	if st.Replicas != 3 || st.ReadyReplicas != 3 || st.ClusterID != "c1a5" || st.Leader == "" || st.Selector == "" || st.Version != "3.6.16" {
		t.Fatalf("status: %+v", st)
	}
	roles := map[quorumv1alpha1.MemberRole]int{}
	for _, m := range st.Members {
		roles[m.Role]++
		if !m.Healthy || m.ID == "" || m.Zone == "" || m.Since == nil || !strings.HasPrefix(m.ClientURL, "https://") {
			t.Errorf("member status %+v", m)
		}
	}
	if roles[quorumv1alpha1.RoleLeader] != 1 || roles[quorumv1alpha1.RoleFollower] != 2 {
		t.Errorf("roles %v, want 1 leader and 2 followers", roles)
	}
	for cond, want := range map[string]metav1.ConditionStatus{
		quorumv1alpha1.ConditionAvailable:    metav1.ConditionTrue,
		quorumv1alpha1.ConditionProgressing:  metav1.ConditionFalse,
		quorumv1alpha1.ConditionDegraded:     metav1.ConditionFalse,
		quorumv1alpha1.ConditionQuorumAtRisk: metav1.ConditionFalse,
		quorumv1alpha1.ConditionQuorumLost:   metav1.ConditionFalse,
	} {
		got := meta.FindStatusCondition(st.Conditions, cond)
		if got == nil || got.Status != want || got.ObservedGeneration != ec.Generation {
			t.Errorf("condition %s = %+v, want %s at generation %d", cond, got, want, ec.Generation)
		}
	}
}

// TestEtcdClusterQuietReconcile: a reconcile of a healthy cluster writes
// nothing to the API server.
func TestEtcdClusterQuietReconcile(t *testing.T) {
	c := startEnv(t)
	readyNodes(t, c)
	ns := newNamespace(t, c)
	ctx := context.Background()
	if err := c.Create(ctx, &quorumv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"},
		Spec:       quorumv1alpha1.EtcdClusterSpec{Replicas: ptr.To[int32](3), Zones: quorumv1alpha1.Zones{"zone-a", "zone-b", "zone-c"}},
	}); err != nil {
		t.Fatal(err)
	}
	f := newFakeEtcd()
	counter := &writeCounter{Client: c}
	r := newReconciler(counter, f)
	r.Now = time.Now
	converge(t, r, c, ns, f, 3)
	if len(counter.take()) == 0 {
		t.Fatal("the counter saw no write while the cluster was built: it counts nothing")
	}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}
	for i := 0; i < 3; i++ {
		res, err := r.Reconcile(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.RequeueAfter != healthInterval {
			t.Errorf("a healthy cluster is looked at again after %s, want %s", res.RequeueAfter, healthInterval)
		}
	}
	if writes := counter.take(); len(writes) != 0 {
		t.Fatalf("reconciles of a healthy cluster wrote: %v", writes)
	}
}

// TestEtcdClusterRestartAfterRecording: an operator killed after recording
// an add and after MemberAdd resumes without a duplicate member.
func TestEtcdClusterRestartAfterRecording(t *testing.T) {
	c := startEnv(t)
	readyNodes(t, c)
	ns := newNamespace(t, c)
	ctx := context.Background()
	ec := &quorumv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"},
		Spec:       quorumv1alpha1.EtcdClusterSpec{Replicas: ptr.To[int32](1), Zones: quorumv1alpha1.Zones{"zone-a", "zone-b", "zone-c"}},
	}
	if err := c.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	f := newFakeEtcd()
	r := newReconciler(c, f)
	ec = converge(t, r, c, ns, f, 1)

	// The operator recorded an add of "main-x" and etcd added it as a
	// learner, then the operator died before the pod existed.
	ec.Spec.Replicas = ptr.To[int32](3)
	if err := c.Update(ctx, ec); err != nil {
		t.Fatal(err)
	}
	ec.Status.PendingChange = &quorumv1alpha1.MembershipChange{Type: quorumv1alpha1.ChangeAddMember, Member: "main-x", Zone: "zone-b", Reason: "ScaleUp", StartedAt: metav1.Now()}
	if err := c.Status().Update(ctx, ec); err != nil {
		t.Fatal(err)
	}
	conn, _ := f.dial(nil, nil)
	if _, _, err := conn.AddLearner(ctx, resources.PeerURL("main-x", "main", ns)); err != nil {
		t.Fatal(err)
	}
	ec = converge(t, r, c, ns, f, 3)
	names := map[string]int{}
	for _, m := range ec.Status.Members {
		names[m.Name]++
	}
	if names["main-x"] != 1 || len(names) != 3 {
		t.Fatalf("members after the restart: %v; want main-x once among 3", names)
	}
	added := 0
	for _, call := range f.calls {
		if call == "add main-x" {
			added++
		}
	}
	if added != 1 {
		t.Fatalf("main-x was added %d times: %v", added, f.calls)
	}
}

// TestEtcdClusterBadInput: a missing TLS Secret is a condition with a
// reason; nothing is created and nothing crashes.
func TestEtcdClusterBadInput(t *testing.T) {
	c := startEnv(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	ec := &quorumv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"},
		Spec: quorumv1alpha1.EtcdClusterSpec{
			TLS: quorumv1alpha1.EtcdTLS{Auto: ptr.To(false),
				PeerSecretRef:   &quorumv1alpha1.LocalObjectReference{Name: "peer"},
				ServerSecretRef: &quorumv1alpha1.LocalObjectReference{Name: "server"},
				ClientSecretRef: &quorumv1alpha1.LocalObjectReference{Name: "client"}},
		},
	}
	if err := c.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	r := newReconciler(c, newFakeEtcd())
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ec)}); err != nil {
		t.Fatalf("a missing Secret must not fail the reconcile: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(ec), ec); err != nil {
		t.Fatal(err)
	}
	cond := meta.FindStatusCondition(ec.Status.Conditions, quorumv1alpha1.ConditionProgressing)
	if cond == nil || cond.Reason != "SecretNotFound" || !strings.Contains(cond.Message, "the TLS Secret peer does not exist") {
		t.Fatalf("Progressing = %+v; want SecretNotFound naming the Secret", cond)
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(ns)); err != nil || len(pods.Items) != 0 {
		t.Fatalf("pods were made for a cluster with missing Secrets: %d (%v)", len(pods.Items), err)
	}
}
