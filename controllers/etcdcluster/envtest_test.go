package etcdcluster

// These tests run the EtcdCluster reconciler against a real kube-apiserver
// and etcd (envtest) with a fake etcd cluster behind the etcd interface:
// no kubelet runs here, so the test plays the kubelet (pod IPs, phases) and
// the fake plays the members.

import (
	"context"
	"crypto/x509"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd/etcdtest"
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

// threeMembers starts the API server and makes a namespace with an
// EtcdCluster "main" of 3 members over zone-a to zone-c, mutated as asked.
func threeMembers(t *testing.T, prefix string, mutate ...func(*quorumv1alpha1.EtcdCluster)) (client.Client, string) {
	t.Helper()
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, prefix)
	ec := &quorumv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"},
		Spec:       quorumv1alpha1.EtcdClusterSpec{Replicas: ptr.To[int32](3), Zones: quorumv1alpha1.Zones{"zone-a", "zone-b", "zone-c"}},
	}
	for _, m := range mutate {
		m(ec)
	}
	if err := c.Create(context.Background(), ec); err != nil {
		t.Fatal(err)
	}
	return c, ns
}

// kubelet plays the kubelet: every member pod gets scheduled on its zone's
// node, an IP and Running, and the fake member behind it starts.
func kubelet(t *testing.T, c client.Client, ns string, f *etcdtest.Cluster) {
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
		f.Start(p.Name)
	}
}

// pvcProtection plays the controller-manager's pvc-protection controller:
// a claim being deleted loses its kubernetes.io/pvc-protection finalizer
// once no pod uses it.
func pvcProtection(t *testing.T, c client.Client, ns string) {
	t.Helper()
	ctx := context.Background()
	pods, pvcs := &corev1.PodList{}, &corev1.PersistentVolumeClaimList{}
	if err := c.List(ctx, pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if err := c.List(ctx, pvcs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, p := range pods.Items {
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				used[v.PersistentVolumeClaim.ClaimName] = true
			}
		}
	}
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		if pvc.DeletionTimestamp == nil || used[pvc.Name] || !slices.Contains(pvc.Finalizers, "kubernetes.io/pvc-protection") {
			continue
		}
		pvc.Finalizers = slices.DeleteFunc(pvc.Finalizers, func(f string) bool { return f == "kubernetes.io/pvc-protection" })
		if err := c.Update(ctx, pvc); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
}

// converge reconciles until the cluster has n voters and nothing pending.
func converge(t *testing.T, r *Reconciler, c client.Client, ns string, f *etcdtest.Cluster, n int) *quorumv1alpha1.EtcdCluster {
	t.Helper()
	ctx := context.Background()
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}
	ec := &quorumv1alpha1.EtcdCluster{}
	for i := 0; i < 60; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
		kubelet(t, c, ns, f)
		pvcProtection(t, c, ns)
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

func newReconciler(c client.Client, f *etcdtest.Cluster) *Reconciler {
	return &Reconciler{Base: reconciler.Base{Client: c}, Dial: f.Dial}
}

// TestEtcdClusterObjects creates a 3-member cluster and checks every object
// the operator makes, and the status it reports.
func TestEtcdClusterObjects(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "etcd")
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
	f := etcdtest.New()
	r := newReconciler(c, f)
	ec = converge(t, r, c, ns, f, 3)

	if got := strings.Join(f.Calls(), ", "); !strings.HasPrefix(got, "add ") || strings.Count(got, "add ") != 2 || strings.Count(got, "promote ") != 2 {
		t.Fatalf("etcd calls: %s; want two learners added and promoted one at a time", got)
	}
	for i := 0; i+1 < len(f.Calls()); i++ {
		if strings.HasPrefix(f.Calls()[i], "add ") && strings.HasPrefix(f.Calls()[i+1], "add ") {
			t.Fatalf("two learners added without a promotion between them: %v", f.Calls())
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
	// One more pass: a member promoted in the last one reports its sizes
	// from the next.
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ec)}); err != nil {
		t.Fatal(err)
	}
	sized := &quorumv1alpha1.EtcdCluster{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(ec), sized); err != nil {
		t.Fatal(err)
	}
	for _, m := range sized.Status.Members {
		if m.DBSizeBytes != 20480 || m.DBSizeInUseBytes != 16384 {
			t.Errorf("member %s: dbSizeBytes %d, dbSizeInUseBytes %d, want the 20480 and 16384 it reports", m.Name, m.DBSizeBytes, m.DBSizeInUseBytes)
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
	c, ns := threeMembers(t, "etcd")
	ctx := context.Background()
	f := etcdtest.New()
	counter := &testenv.WriteCounter{Client: c}
	r := newReconciler(counter, f)
	r.Now = time.Now
	r.Recorder = counter // an event is a write too
	converge(t, r, c, ns, f, 3)
	if len(counter.Take()) == 0 {
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
	if writes := counter.Take(); len(writes) != 0 {
		t.Fatalf("reconciles of a healthy cluster wrote: %v", writes)
	}
}

// TestEtcdClusterRestartAfterRecording: an operator killed after recording
// an add and after MemberAdd resumes without a duplicate member.
func TestEtcdClusterRestartAfterRecording(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "etcd")
	ctx := context.Background()
	ec := &quorumv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"},
		Spec:       quorumv1alpha1.EtcdClusterSpec{Replicas: ptr.To[int32](1), Zones: quorumv1alpha1.Zones{"zone-a", "zone-b", "zone-c"}},
	}
	if err := c.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	f := etcdtest.New()
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
	conn, _ := f.Dial(nil, nil, nil)
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
	for _, call := range f.Calls() {
		if call == "add main-x" {
			added++
		}
	}
	if added != 1 {
		t.Fatalf("main-x was added %d times: %v", added, f.Calls())
	}
}

// TestEtcdClusterRemoveAnswerLost: a removal etcd made but whose answer
// was lost (the member serving it stopped) counts as made: no error, the
// scale-down goes on, and each removed member has its MemberRemoved event.
func TestEtcdClusterRemoveAnswerLost(t *testing.T) {
	c, ns := threeMembers(t, "etcd")
	ctx := context.Background()
	f := etcdtest.New()
	counter := &testenv.WriteCounter{Client: c}
	r := newReconciler(counter, f)
	r.Recorder = counter
	ec := converge(t, r, c, ns, f, 3)
	before := map[string]bool{}
	for _, m := range ec.Status.Members {
		before[m.Name] = true
	}
	f.LoseRemoveAnswers(true)
	ec.Spec.Replicas = ptr.To[int32](1)
	if err := c.Update(ctx, ec); err != nil {
		t.Fatal(err)
	}
	// Reconcile errors are retried, as the manager does: what must not
	// be lost is the removal's event.
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}
	for i := 0; i < 60 && (len(ec.Status.Members) != 1 || ec.Status.PendingChange != nil); i++ {
		_, _ = r.Reconcile(ctx, req)
		kubelet(t, c, ns, f)
		pvcProtection(t, c, ns)
		if err := c.Get(ctx, req.NamespacedName, ec); err != nil {
			t.Fatal(err)
		}
	}
	if len(ec.Status.Members) != 1 || ec.Status.PendingChange != nil {
		t.Fatalf("no convergence to 1 voter: members %v, pending %+v", ec.Status.Members, ec.Status.PendingChange)
	}
	removed := map[string]int{}
	for _, w := range counter.Take() {
		if note, ok := strings.CutPrefix(w, "event Normal MemberRemoved: removed member "); ok {
			name, _, _ := strings.Cut(note, " ")
			removed[name]++
		}
	}
	delete(before, ec.Status.Members[0].Name)
	for name := range before {
		if removed[name] != 1 {
			t.Errorf("member %s removed with %d MemberRemoved events, want 1 (events %v)", name, removed[name], removed)
		}
	}
	if len(removed) != len(before) {
		t.Errorf("MemberRemoved events for %v, want the %d removed members", removed, len(before))
	}
}

// TestEtcdClusterBadInput: a missing TLS Secret is a condition with a
// reason; nothing is created and nothing crashes.
func TestEtcdClusterBadInput(t *testing.T) {
	c := testenv.Start(t)
	ns := testenv.Namespace(t, c, "etcd")
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
	r := newReconciler(c, etcdtest.New())
	// The first pass adds the deletionPolicy finalizer; the second finds
	// the Secrets missing.
	for i := 0; i < 2; i++ {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ec)}); err != nil {
			t.Fatalf("a missing Secret must not fail the reconcile: %v", err)
		}
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

// TestEtcdClusterDriftCorrected: objects Quorum owns are brought back when
// someone changes a field Quorum sets (a value, or the key of a Service
// port), and a field Quorum does not set (an annotation a user added) is
// left alone.
func TestEtcdClusterDriftCorrected(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "etcd")
	ctx := context.Background()
	if err := c.Create(ctx, &quorumv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"},
		Spec:       quorumv1alpha1.EtcdClusterSpec{Replicas: ptr.To[int32](1)},
	}); err != nil {
		t.Fatal(err)
	}
	f := etcdtest.New()
	counter := &testenv.WriteCounter{Client: c}
	r := newReconciler(counter, f)
	converge(t, r, c, ns, f, 1)
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}

	// A value: the peer Service must publish members before they are ready.
	peer := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "main-peer"}, peer); err != nil {
		t.Fatal(err)
	}
	peer.Spec.PublishNotReadyAddresses = false
	peer.Annotations = map[string]string{"example.com/owner": "team-a"}
	if err := c.Update(ctx, peer); err != nil {
		t.Fatal(err)
	}
	// A key: the client Service's port number, and its selector's value.
	svc := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "main-client"}, svc); err != nil {
		t.Fatal(err)
	}
	svc.Spec.Selector = map[string]string{resources.LabelCluster: "other"}
	svc.Spec.Ports[0].Port = 12379
	if err := c.Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	counter.Take()
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if writes := counter.Take(); len(writes) < 2 {
		t.Errorf("writes to correct the drift: %v, want the two Services written", writes)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "main-peer"}, peer); err != nil {
		t.Fatal(err)
	}
	if !peer.Spec.PublishNotReadyAddresses || peer.Annotations["example.com/owner"] != "team-a" {
		t.Errorf("peer Service: publishNotReadyAddresses %v (want true), annotations %v (want the user's kept)", peer.Spec.PublishNotReadyAddresses, peer.Annotations)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "main-client"}, svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Selector[resources.LabelCluster] != "main" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != resources.ClientPort {
		t.Errorf("the client Service was not brought back: selector %v, ports %v", svc.Spec.Selector, svc.Spec.Ports)
	}
	for i := 0; i < 2; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if writes := counter.Take(); len(writes) > 1 {
		// One apply may follow the fallback update, to take the fields back
		// under Quorum's apply manager; nothing after that.
		t.Errorf("reconciles after the correction wrote: %v", writes)
	}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if writes := counter.Take(); len(writes) != 0 {
		t.Errorf("a reconcile of the corrected cluster wrote: %v", writes)
	}
}

// TestEtcdClusterPaused: with quorum.dev/paused a failed member is reported
// and not replaced, nothing is written but the status; unpaused, the
// repair goes on.
func TestEtcdClusterPaused(t *testing.T) {
	c, ns := threeMembers(t, "etcd-paused")
	ctx := context.Background()
	f := etcdtest.New()
	counter := &testenv.WriteCounter{Client: c}
	r := newReconciler(counter, f)
	r.Recorder = counter
	ec := converge(t, r, c, ns, f, 3)

	ec.Annotations = map[string]string{reconciler.AnnotationPaused: "true"}
	if err := c.Update(ctx, ec); err != nil {
		t.Fatal(err)
	}
	victim := ec.Status.Members[1].Name
	f.Stop(victim)
	// The volume goes, as the controller-manager's pvc-protection
	// controller would let it once no pod uses it.
	pvc := &corev1.PersistentVolumeClaim{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.PVCName(victim)}, pvc); err != nil {
		t.Fatal(err)
	}
	pvc.Finalizers = nil
	if err := c.Update(ctx, pvc); err != nil {
		t.Fatal(err)
	}
	_ = c.Delete(ctx, pvc)
	if err := c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: victim}}, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	calls := len(f.Calls())
	counter.Take()
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}
	for i := 0; i < 5; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.Calls()[calls:]; len(got) != 0 {
		t.Fatalf("a paused cluster called etcd: %v", got)
	}
	for _, w := range counter.Take() {
		if !strings.Contains(strings.SplitN(w, " ", 2)[0], "status") {
			t.Fatalf("a paused cluster wrote %s", w)
		}
	}
	if err := c.Get(ctx, req.NamespacedName, ec); err != nil {
		t.Fatal(err)
	}
	if got := meta.FindStatusCondition(ec.Status.Conditions, quorumv1alpha1.ConditionProgressing); got == nil || got.Reason != reconciler.ReasonPaused || !strings.Contains(got.Message, victim) {
		t.Fatalf("Progressing = %+v, want reason Paused naming the repair it holds back", got)
	}
	if !meta.IsStatusConditionTrue(ec.Status.Conditions, quorumv1alpha1.ConditionDegraded) {
		t.Fatalf("a paused cluster does not report its failed member: %+v", ec.Status.Conditions)
	}

	delete(ec.Annotations, reconciler.AnnotationPaused)
	if err := c.Update(ctx, ec); err != nil {
		t.Fatal(err)
	}
	ec = converge(t, r, c, ns, f, 3)
	for _, m := range ec.Status.Members {
		if m.Name == victim {
			t.Fatalf("unpaused, %s was not replaced: %+v", victim, ec.Status.Members)
		}
	}
}

// TestEtcdClusterCertificateRenewal: certificates inside their renewal
// window are reissued and every member restarts onto its own, one at a
// time, the leader last; the client certificate is replaced in place; the
// status's expiry dates move forward.
func TestEtcdClusterCertificateRenewal(t *testing.T) {
	c, ns := threeMembers(t, "etcd-renew", func(ec *quorumv1alpha1.EtcdCluster) {
		ec.Spec.TLS = quorumv1alpha1.EtcdTLS{CertificateValidity: &metav1.Duration{Duration: 10 * time.Minute}, CertificateRenewBefore: &metav1.Duration{Duration: 7 * time.Minute}}
	})
	ctx := context.Background()
	f := etcdtest.New()
	r := newReconciler(c, f)
	start := time.Now()
	r.Now = func() time.Time { return start }
	ec := converge(t, r, c, ns, f, 3)
	before := map[string]metav1.Time{}
	for _, cs := range ec.Status.Certificates {
		before[cs.Name] = cs.NotAfter
	}
	if len(before) != 5 {
		t.Fatalf("certificates %v, want ca, client and 3 members", ec.Status.Certificates)
	}
	uids := map[string]string{}
	for _, m := range ec.Status.Members {
		p := &corev1.Pod{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: m.Name}, p); err != nil {
			t.Fatal(err)
		}
		uids[m.Name] = string(p.UID)
	}

	// Four minutes on, six are left of ten: inside renewBefore (7m).
	r.Now = func() time.Time { return start.Add(4 * time.Minute) }
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}
	var order []string
	for i := 0; i < 80; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(ns), client.HasLabels{resources.LabelMember}); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) < 2 {
			t.Fatalf("only %d member pods at once: restarts must go one at a time", len(pods.Items))
		}
		for _, p := range pods.Items {
			if old, ok := uids[p.Labels[resources.LabelMember]]; ok && old != string(p.UID) && !slices.Contains(order, p.Labels[resources.LabelMember]) {
				order = append(order, p.Labels[resources.LabelMember])
			}
		}
		kubelet(t, c, ns, f)
		if err := c.Get(ctx, req.NamespacedName, ec); err != nil {
			t.Fatal(err)
		}
		if len(order) == 3 && ec.Status.PendingChange == nil && meta.IsStatusConditionFalse(ec.Status.Conditions, quorumv1alpha1.ConditionCertificatesExpiring) {
			break
		}
	}
	if len(order) != 3 {
		t.Fatalf("members restarted onto new certificates: %v, want all 3; status %+v", order, ec.Status)
	}
	// The leader went last, after leadership moved off it: the last member
	// restarted is not the leader now, and leadership moved once.
	if order[2] == ec.Status.Leader || !slices.Contains(f.Calls(), "move-leader") {
		t.Fatalf("restart order %v with leader %s and etcd calls %v: the leader must go last, after leadership moved", order, ec.Status.Leader, f.Calls())
	}
	for _, cs := range ec.Status.Certificates {
		if cs.Name != "ca" && !cs.NotAfter.After(before[cs.Name].Time) {
			t.Errorf("certificate %s still expires %s", cs.Name, cs.NotAfter)
		}
	}
	if !meta.IsStatusConditionTrue(ec.Status.Conditions, quorumv1alpha1.ConditionAvailable) {
		t.Fatalf("not Available after the renewal: %+v", ec.Status.Conditions)
	}
}

// gc plays the garbage collector for a deleted cluster: its pods,
// Services and disruption budget go (envtest runs no controllers).
func gc(t *testing.T, c client.Client, ns string) {
	t.Helper()
	ctx := context.Background()
	for _, list := range []client.ObjectList{&corev1.PodList{}, &corev1.ServiceList{}, &policyv1.PodDisruptionBudgetList{}} {
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		items, _ := meta.ExtractList(list)
		for _, o := range items {
			_ = c.Delete(ctx, o.(client.Object), client.GracePeriodSeconds(0))
		}
	}
}

// TestEtcdClusterRetainAndAdopt: deleting a cluster with the default
// deletionPolicy keeps its volumes and certificates; a new cluster of the
// same name adopts them and is the same cluster again. With Delete, they
// stay owned and go with it.
func TestEtcdClusterRetainAndAdopt(t *testing.T) {
	c := testenv.Start(t)
	testenv.ReadyNodes(t, c)
	ns := testenv.Namespace(t, c, "etcd-retain")
	ctx := context.Background()
	spec := quorumv1alpha1.EtcdClusterSpec{Replicas: ptr.To[int32](3), Zones: quorumv1alpha1.Zones{"zone-a", "zone-b", "zone-c"}}
	if err := c.Create(ctx, &quorumv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	f := etcdtest.New()
	r := newReconciler(c, f)
	before := converge(t, r, c, ns, f, 3)
	if !slices.Contains(before.Finalizers, finalizerRetain) {
		t.Fatalf("finalizers %v: the default deletionPolicy Retain needs %s", before.Finalizers, finalizerRetain)
	}

	if err := c.Delete(ctx, before); err != nil {
		t.Fatal(err)
	}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, req.NamespacedName, &quorumv1alpha1.EtcdCluster{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the deleted cluster is still there after its data was released: %v", err)
	}
	pvcs := &corev1.PersistentVolumeClaimList{}
	if err := c.List(ctx, pvcs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(pvcs.Items) != 3 {
		t.Fatalf("%d volumes kept, want 3", len(pvcs.Items))
	}
	for _, p := range pvcs.Items {
		if len(p.OwnerReferences) != 0 || p.Annotations[annotationRetainedClusterID] != before.Status.ClusterID || p.Annotations[annotationRetainedMember] == "" {
			t.Fatalf("volume %s: owners %v, annotations %v", p.Name, p.OwnerReferences, p.Annotations)
		}
	}
	ca := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.CASecretName("main")}, ca); err != nil || len(ca.OwnerReferences) != 0 {
		t.Fatalf("CA Secret: %v, owners %v", err, ca.OwnerReferences)
	}
	gc(t, c, ns)

	// The same name again: the same cluster, from its volumes.
	if err := c.Create(ctx, &quorumv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	after := converge(t, r, c, ns, f, 3)
	if after.Status.ClusterID != before.Status.ClusterID {
		t.Fatalf("cluster ID %s after adoption, want %s", after.Status.ClusterID, before.Status.ClusterID)
	}
	idsOf := func(ec *quorumv1alpha1.EtcdCluster) string {
		var out []string
		for _, m := range ec.Status.Members {
			out = append(out, m.Name+"="+m.ID)
		}
		return strings.Join(out, ",")
	}
	if idsOf(after) != idsOf(before) {
		t.Fatalf("members after adoption %s, want %s", idsOf(after), idsOf(before))
	}
	if n := strings.Count(strings.Join(f.Calls(), ","), "add "); n != 2 {
		t.Fatalf("%d members added in all, want the 2 of the first bootstrap: adoption adds none (%v)", n, f.Calls())
	}

	// deletionPolicy Delete: no finalizer, the data stays owned and goes.
	after.Spec.DeletionPolicy = quorumv1alpha1.DeletionDelete
	if err := c.Update(ctx, after); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, req.NamespacedName, after); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(after.Finalizers, finalizerRetain) {
		t.Fatalf("deletionPolicy Delete keeps the finalizer: %v", after.Finalizers)
	}
	if err := c.List(ctx, pvcs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pvcs.Items {
		if !metav1.IsControlledBy(&p, after) {
			t.Fatalf("volume %s is not owned by the cluster: the garbage collector would keep it", p.Name)
		}
	}
}

// TestEtcdClusterNoSpaceRecovery: a NOSPACE alarm over history a
// compaction frees is recovered: compacted, every member defragmented
// (the leader last, after leadership moved), the alarm disarmed; then a
// new quota restarts the members onto it one at a time.
func TestEtcdClusterNoSpaceRecovery(t *testing.T) {
	c, ns := threeMembers(t, "etcd-nospace")
	ctx := context.Background()
	f := etcdtest.New()
	r := newReconciler(c, f)
	ec := converge(t, r, c, ns, f, 3)
	leader := ec.Status.Leader

	f.Fill(2<<30, 1<<20)
	f.RaiseAlarm(leader, "NOSPACE")
	calls := len(f.Calls())
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}
	for i := 0; i < 20; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
		if slices.Contains(f.Calls()[calls:], "disarm NOSPACE") {
			break
		}
	}
	got := strings.Join(f.Calls()[calls:], ", ")
	if !strings.HasPrefix(got, "compact, defrag ") || strings.Count(got, "defrag ") != 3 || !strings.HasSuffix(got, "disarm NOSPACE") {
		t.Fatalf("etcd calls %q: want a compaction, three defragmentations, then the alarm disarmed", got)
	}
	if i, j := strings.Index(got, "move-leader"), strings.Index(got, "defrag "+leader); i < 0 || j < i {
		t.Fatalf("etcd calls %q: the leader %s is defragmented last, after leadership moved", got, leader)
	}
	if err := c.Get(ctx, req.NamespacedName, ec); err != nil {
		t.Fatal(err)
	}
	if ec.Status.LastCompaction == nil || ec.Status.LastDefrag == nil || ec.Status.LastDefrag.ReclaimedBytes <= 0 {
		t.Fatalf("status lastCompaction %+v, lastDefrag %+v", ec.Status.LastCompaction, ec.Status.LastDefrag)
	}

	// A new quota: each member restarts onto it, one at a time.
	q := resource.MustParse("4Gi")
	ec.Spec.Maintenance.QuotaBackendBytes = &q
	if err := c.Update(ctx, ec); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
		kubelet(t, c, ns, f)
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(ns), client.HasLabels{resources.LabelMember}); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) < 2 {
			t.Fatalf("%d member pods at once: restarts go one at a time", len(pods.Items))
		}
		done := len(pods.Items) == 3
		for _, p := range pods.Items {
			done = done && slices.Contains(p.Spec.Containers[0].Args, "--quota-backend-bytes=4294967296")
		}
		if done {
			return
		}
	}
	t.Fatal("members did not all restart with --quota-backend-bytes=4294967296")
}

// TestEtcdClusterScheduledDefrag: a due schedule defragments every member
// once, the leader last after leadership moved, records the run and keeps
// the cluster Ready; a member past whenFragmentedAbove is defragmented
// alone.
func TestEtcdClusterScheduledDefrag(t *testing.T) {
	c, ns := threeMembers(t, "etcd-defrag", func(ec *quorumv1alpha1.EtcdCluster) {
		ec.Spec.Maintenance.Defrag = &quorumv1alpha1.DefragPolicy{Schedule: "0 3 * * *", WhenFragmentedAbove: "45%", MinReclaimable: ptr.To(resource.MustParse("1Mi"))}
	})
	ctx := context.Background()
	f := etcdtest.New()
	r := newReconciler(c, f)
	ec := converge(t, r, c, ns, f, 3)
	leader := ec.Status.Leader
	if st := ec.Status.ScheduledDefrag; st == nil || st.NextScheduleTime == nil || st.NextScheduleTime.UTC().Hour() != 3 {
		t.Fatalf("status.scheduledDefrag %+v: want the next run at 03:00", st)
	}

	// The clock reaches the due time.
	due := ec.Status.ScheduledDefrag.NextScheduleTime.Time
	r.Now = func() time.Time { return due.Add(30 * time.Second) }
	calls := len(f.Calls())
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}
	for i := 0; i < 20; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
		if err := c.Get(ctx, req.NamespacedName, ec); err != nil {
			t.Fatal(err)
		}
		if !meta.IsStatusConditionTrue(ec.Status.Conditions, quorumv1alpha1.ConditionReady) {
			t.Fatalf("Ready during a scheduled defragmentation: %+v", meta.FindStatusCondition(ec.Status.Conditions, quorumv1alpha1.ConditionReady))
		}
		if st := ec.Status.ScheduledDefrag; st != nil && st.CompletionTime != nil {
			break
		}
	}
	st := ec.Status.ScheduledDefrag
	if st == nil || st.CompletionTime == nil || st.LastScheduleTime == nil || !st.LastScheduleTime.Time.Equal(due) {
		t.Fatalf("status.scheduledDefrag %+v: want the run due %v completed", st, due)
	}
	if len(st.Defragmented) != 3 || st.Defragmented[2] != leader {
		t.Fatalf("defragmented %v: want every member once, the leader %s last", st.Defragmented, leader)
	}
	got := strings.Join(f.Calls()[calls:], ", ")
	if strings.Count(got, "defrag ") != 3 {
		t.Fatalf("etcd calls %q: want three defragmentations", got)
	}
	if i, j := strings.Index(got, "move-leader"), strings.Index(got, "defrag "+leader); i < 0 || j < i {
		t.Fatalf("etcd calls %q: the leader %s is defragmented last, after leadership moved", got, leader)
	}
	if !st.NextScheduleTime.Time.Equal(due.Add(24 * time.Hour)) {
		t.Fatalf("next run %v, want %v", st.NextScheduleTime, due.Add(24*time.Hour))
	}

	// Later the same day nothing is due; one fragmented member is
	// defragmented alone.
	r.Now = func() time.Time { return due.Add(2 * time.Hour) }
	follower := st.Defragmented[0]
	f.Fragment(follower, 100<<20, 40<<20)
	calls = len(f.Calls())
	for i := 0; i < 5; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
	}
	if got := strings.Join(f.Calls()[calls:], ", "); strings.Count(got, "defrag ") != 1 || !strings.Contains(got, "defrag "+follower) {
		t.Fatalf("etcd calls %q: want %s defragmented, alone", got, follower)
	}
}

// TestEtcdClusterNetworkPolicy: with NetworkPolicies on, the members get
// one: peer port from members only, client port from the namespace and
// the operator's, metrics from anywhere; turned off, the one it made goes.
func TestEtcdClusterNetworkPolicy(t *testing.T) {
	c, ns := threeMembers(t, "etcd-netpol")
	ctx := context.Background()
	f := etcdtest.New()
	r := newReconciler(c, f)
	r.NetworkPolicies, r.OperatorNamespace = true, "quorum-system"
	converge(t, r, c, ns, f, 3)
	np := &networkingv1.NetworkPolicy{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "main-members"}, np); err != nil {
		t.Fatal(err)
	}
	byPort := map[int32]networkingv1.NetworkPolicyIngressRule{}
	for _, rule := range np.Spec.Ingress {
		byPort[rule.Ports[0].Port.IntVal] = rule
	}
	peer, clients, metrics := byPort[2380], byPort[2379], byPort[2381]
	if np.Spec.PodSelector.MatchLabels[resources.LabelCluster] != "main" || len(peer.From) != 1 || peer.From[0].PodSelector.MatchLabels[resources.LabelCluster] != "main" {
		t.Fatalf("the peer port: %+v (pods %+v)", peer, np.Spec.PodSelector)
	}
	if len(clients.From) != 2 || clients.From[1].NamespaceSelector.MatchLabels[corev1.LabelMetadataName] != "quorum-system" || len(metrics.From) != 0 {
		t.Fatalf("client %+v, metrics %+v", clients, metrics)
	}
	r.NetworkPolicies = false
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(np), np); !apierrors.IsNotFound(err) {
		t.Fatalf("with NetworkPolicies off the policy is still there: %v", err)
	}
}

// TestEtcdClusterRequestedDefrag: quorum.dev/defrag defragments every
// member once per value (no policy in the spec), the leader last, records
// the run in status.requestedDefrag, keeps the cluster Ready, and does
// nothing more until the value changes.
func TestEtcdClusterRequestedDefrag(t *testing.T) {
	c, ns := threeMembers(t, "etcd-asked")
	ctx := context.Background()
	f := etcdtest.New()
	r := newReconciler(c, f)
	ec := converge(t, r, c, ns, f, 3)
	leader := ec.Status.Leader
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}
	ask := func(value string) {
		t.Helper()
		patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"quorum.dev/defrag":"`+value+`"}}}`))
		if err := c.Patch(ctx, ec, patch); err != nil {
			t.Fatal(err)
		}
	}
	run := func(passes int) string {
		t.Helper()
		calls := len(f.Calls())
		for i := 0; i < passes; i++ {
			if _, err := r.Reconcile(ctx, req); err != nil {
				t.Fatalf("reconcile %d: %v", i, err)
			}
			if err := c.Get(ctx, req.NamespacedName, ec); err != nil {
				t.Fatal(err)
			}
			if !meta.IsStatusConditionTrue(ec.Status.Conditions, quorumv1alpha1.ConditionReady) {
				t.Fatalf("Ready during a requested defragmentation: %+v", meta.FindStatusCondition(ec.Status.Conditions, quorumv1alpha1.ConditionReady))
			}
		}
		return strings.Join(f.Calls()[calls:], ", ")
	}

	ask("first")
	got := run(10)
	rd := ec.Status.RequestedDefrag
	if rd == nil || rd.Trigger != "first" || rd.CompletionTime == nil || len(rd.Defragmented) != 3 || rd.Defragmented[2] != leader {
		t.Fatalf("status.requestedDefrag %+v: want every member once for \"first\", the leader %s last", rd, leader)
	}
	if strings.Count(got, "defrag ") != 3 {
		t.Fatalf("etcd calls %q: want three defragmentations", got)
	}
	if i, j := strings.Index(got, "move-leader"), strings.Index(got, "defrag "+leader); i < 0 || j < i {
		t.Fatalf("etcd calls %q: the leader %s is defragmented last, after leadership moved", got, leader)
	}
	if got := run(5); strings.Contains(got, "defrag ") {
		t.Fatalf("etcd calls %q with the same value: want none", got)
	}
	ask("second")
	if got := run(10); strings.Count(got, "defrag ") != 3 || ec.Status.RequestedDefrag.Trigger != "second" || ec.Status.RequestedDefrag.CompletionTime == nil {
		t.Fatalf("a new value: etcd calls %q, status %+v", got, ec.Status.RequestedDefrag)
	}
}

// TestEtcdClusterCARotation: quorum.dev/rotate-ca takes the cluster from
// its CA to a new one through the three phases, members restarted one at
// a time, each phase waiting for the ControlPlane on the cluster (played
// here) to run it; the operator replaced mid-way goes on from the CA
// Secret. Afterwards every leaf verifies against the new CA only.
func TestEtcdClusterCARotation(t *testing.T) {
	c, ns := threeMembers(t, "etcd-rotate")
	ctx := context.Background()
	f := etcdtest.New()
	r := newReconciler(c, f)
	ec := converge(t, r, c, ns, f, 3)
	oldCA := secretData(t, c, ns, resources.CASecretName("main"))
	cp := &quorumv1alpha1.ControlPlane{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenant"},
		Spec: quorumv1alpha1.ControlPlaneSpec{
			Replicas: ptr.To[int32](3), Version: "v1.36.3",
			Endpoint: quorumv1alpha1.ControlPlaneEndpoint{ServiceType: "ClusterIP"},
			Etcd:     quorumv1alpha1.ControlPlaneEtcd{ClusterRef: &quorumv1alpha1.LocalObjectReference{Name: "main"}},
		},
	}
	if err := c.Create(ctx, cp); err != nil {
		t.Fatal(err)
	}
	// The ControlPlane's replicas run what the CA Secret said some passes
	// ago: its status follows three passes late.
	var seen []map[string][]byte
	playControlPlane := func() {
		seen = append(seen, secretData(t, c, ns, resources.CASecretName("main")))
		if len(seen) < 3 {
			return
		}
		d := seen[len(seen)-3]
		issuer, err := pki.ParseCertificate(d[corev1.TLSCertKey])
		if err != nil {
			t.Fatal(err)
		}
		cp.Status.EtcdCredentials = &quorumv1alpha1.EtcdCredentialsStatus{TrustedCAs: pki.BundleFingerprints(resources.CATrust(d)), ClientIssuer: pki.Fingerprint(issuer)}
		if err := c.Status().Update(ctx, cp); err != nil {
			t.Fatal(err)
		}
	}

	patch := client.MergeFrom(ec.DeepCopy())
	ec.Annotations = map[string]string{reconciler.AnnotationRotateCA: "2026-11-26"}
	if err := c.Patch(ctx, ec, patch); err != nil {
		t.Fatal(err)
	}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}
	var phases []quorumv1alpha1.CARotationPhase
	passes := 0
	for i := 0; i < 200; i++ {
		passes = i + 1
		if i == 15 {
			r = newReconciler(c, f) // the operator restarted mid-rotation
		}
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
		kubelet(t, c, ns, f)
		playControlPlane()
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(ns), client.HasLabels{resources.LabelMember}); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) < 2 {
			t.Fatalf("only %d member pods at once: restarts must go one at a time", len(pods.Items))
		}
		if err := c.Get(ctx, req.NamespacedName, ec); err != nil {
			t.Fatal(err)
		}
		if rot := ec.Status.CARotation; rot != nil && (len(phases) == 0 || phases[len(phases)-1] != rot.Phase) {
			phases = append(phases, rot.Phase)
		}
		if rot := ec.Status.CARotation; rot != nil && rot.Phase == quorumv1alpha1.CARotationCompleted && ec.Status.PendingChange == nil {
			break
		}
	}
	want := []quorumv1alpha1.CARotationPhase{quorumv1alpha1.CARotationTrustBoth, quorumv1alpha1.CARotationReissueLeaves, quorumv1alpha1.CARotationDropOldCA, quorumv1alpha1.CARotationCompleted}
	if !slices.Equal(phases, want) {
		t.Fatalf("phases %v, want %v; status %+v", phases, want, ec.Status.CARotation)
	}
	t.Logf("rotated in %d passes; etcd calls %v", passes, f.Calls())
	if ec.Status.CARotation.Trigger != "2026-11-26" || ec.Status.CARotation.CompletedAt == nil {
		t.Fatalf("status.caRotation %+v", ec.Status.CARotation)
	}

	// Every leaf verifies against the new CA only, and trusts only it.
	newCA := secretData(t, c, ns, resources.CASecretName("main"))
	oldCert, _ := pki.ParseCertificate(oldCA[corev1.TLSCertKey])
	newCert, _ := pki.ParseCertificate(newCA[corev1.TLSCertKey])
	if pki.Fingerprint(oldCert) == pki.Fingerprint(newCert) || len(newCA[resources.KeyCABundle]) != 0 || len(newCA[resources.KeyNextCACert]) != 0 {
		t.Fatalf("the CA Secret after the rotation: the same CA, or a bundle or next CA left: keys %v", slices.Sorted(maps.Keys(newCA)))
	}
	check := func(name string, keys ...string) {
		d := secretData(t, c, ns, name)
		if string(d[resources.KeyCA]) != string(newCA[corev1.TLSCertKey]) {
			t.Errorf("%s trusts %q, want the new CA alone", name, pki.BundleFingerprints(d[resources.KeyCA]))
		}
		for _, k := range keys {
			leaf, err := pki.ParseCertificate(d[k])
			if err != nil || !pki.IssuedBy(leaf, newCert) || pki.IssuedBy(leaf, oldCert) {
				t.Errorf("%s %s: not the new CA's alone (%v)", name, k, err)
			}
		}
	}
	check(resources.ClientSecretName("main"), corev1.TLSCertKey)
	for _, m := range ec.Status.Members {
		check(resources.MemberSecretName(m.Name), resources.KeyPeerCert, resources.KeyServerCert)
	}
	if !meta.IsStatusConditionTrue(ec.Status.Conditions, quorumv1alpha1.ConditionAvailable) {
		t.Fatalf("not Available after the rotation: %+v", ec.Status.Conditions)
	}

	// The same annotation value again does nothing.
	calls := len(f.Calls())
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if d := secretData(t, c, ns, resources.CASecretName("main")); string(d[corev1.TLSCertKey]) != string(newCA[corev1.TLSCertKey]) || len(f.Calls()) != calls {
		t.Fatal("the answered rotate-ca value rotated again")
	}
}

func secretData(t *testing.T, c client.Client, ns, name string) map[string][]byte {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		t.Fatal(err)
	}
	return s.Data
}

// TestEtcdClusterForeignClientCertificate: a client Secret holding a
// certificate of another CA is left as it is (a person put it there; the
// members refuse it and EtcdUnreachable says so), while one of the
// cluster's own CA past its renewal window is reissued.
func TestEtcdClusterForeignClientCertificate(t *testing.T) {
	c, ns := threeMembers(t, "etcd-foreign")
	ctx := context.Background()
	f := etcdtest.New()
	r := newReconciler(c, f)
	converge(t, r, c, ns, f, 3)
	other, err := pki.NewCA("another-ca", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := other.Issue(pki.CertRequest{CommonName: "quorum-client", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.ClientSecretName("main")}, sec); err != nil {
		t.Fatal(err)
	}
	sec.Data = map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM, resources.KeyCA: other.CertPEM}
	if err := c.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "main"}}
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
	}
	after := secretData(t, c, ns, resources.ClientSecretName("main"))
	if string(after[corev1.TLSCertKey]) != string(kp.CertPEM) || string(after[resources.KeyCA]) != string(other.CertPEM) {
		t.Fatal("a foreign client certificate was replaced: the operator's own trouble must stay visible")
	}
}

// TestRecreatePodChecksTheVolume: a member's pod is recreated from its
// volume only if the API server (not the cache, where a pod's deletion can
// arrive before its volume's) says the volume is not being deleted.
func TestRecreatePodChecksTheVolume(t *testing.T) {
	c, ns := threeMembers(t, "recreate")
	ctx := context.Background()
	ec := &quorumv1alpha1.EtcdCluster{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "main"}, ec); err != nil {
		t.Fatal(err)
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.PVCName("main-a"), Finalizers: []string{"e2e.quorum.dev/hold"}},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	if err := c.Create(ctx, pvc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pvc.Finalizers = nil
		_ = c.Update(context.Background(), pvc)
	})
	if err := c.Delete(ctx, pvc); err != nil {
		t.Fatal(err)
	}
	// The scope holds the volume as a stale cache would: not being deleted.
	stale := pvc.DeepCopy()
	stale.DeletionTimestamp = nil
	s := &scope{cluster: ec, now: time.Now(), members: map[string]*memberState{
		"main-a": {Name: "main-a", Zone: "zone-a", InEtcd: true, ID: 1, PVC: stale, NodeReady: true},
	}}
	r := &Reconciler{Base: reconciler.Base{Client: c}, APIReader: c}
	if err := r.recreatePod(ctx, s, action{kind: actRecreatePod, member: "main-a", zone: "zone-a"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "main-a"}, &corev1.Pod{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a pod was made on a volume being deleted: %v", err)
	}
}
