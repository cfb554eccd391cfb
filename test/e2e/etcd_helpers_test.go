package e2e

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/resources"
)

var quorumClient client.Client

// crClient is a controller-runtime client of the local cluster that knows
// Quorum's kinds.
func crClient(t *testing.T) client.Client {
	t.Helper()
	if quorumClient != nil {
		return quorumClient
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := quorumv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", local.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	quorumClient = c
	return c
}

// newEtcdCluster creates an EtcdCluster over the three zones.
func newEtcdCluster(t *testing.T, ns, name string, replicas int32, mutate ...func(*quorumv1alpha1.EtcdCluster)) *quorumv1alpha1.EtcdCluster {
	t.Helper()
	c := &quorumv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: quorumv1alpha1.EtcdClusterSpec{
			Replicas: ptr.To(replicas),
			Zones:    quorumv1alpha1.Zones{"zone-a", "zone-b", "zone-c"},
			FailurePolicy: quorumv1alpha1.FailurePolicy{
				UnhealthyAfter: &metav1.Duration{Duration: 20 * time.Second},
			},
			// Small requests: 2 cores host every case's members side by
			// side, and the defaults (100m each) leave members Pending.
			PodTemplate: quorumv1alpha1.PodTemplate{
				Resources: corev1.ResourceRequirements{Requests: smallRequests()},
			},
		},
	}
	for _, m := range mutate {
		m(c)
	}
	if err := crClient(t).Create(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func getCluster(t *testing.T, ns, name string) *quorumv1alpha1.EtcdCluster {
	t.Helper()
	c := &quorumv1alpha1.EtcdCluster{}
	if err := crClient(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// updateCluster changes the cluster's spec through mutate (see
// updateRetrying).
func updateCluster(t *testing.T, ns, name string, mutate func(*quorumv1alpha1.EtcdCluster)) *quorumv1alpha1.EtcdCluster {
	t.Helper()
	return updateRetrying(t, func() *quorumv1alpha1.EtcdCluster { return getCluster(t, ns, name) }, mutate)
}

// updateRetrying changes an object through mutate, read afresh by get and
// tried again on a conflict: the operator writes status all the time, and
// every write moves the resourceVersion an Update must match.
func updateRetrying[T client.Object](t *testing.T, get func() T, mutate func(T)) T {
	t.Helper()
	for range 10 {
		obj := get()
		mutate(obj)
		err := crClient(t).Update(context.Background(), obj)
		if err == nil {
			return obj
		}
		if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
	var zero T
	t.Fatalf("could not update %s: conflicts 10 times in a row", reflect.TypeOf(zero).Elem().Name())
	return zero
}

// waitHealthy waits until the cluster reports n healthy voters, no learner,
// no pending change, and Available.
func waitHealthy(t *testing.T, ns, name string, n int, timeout time.Duration) *quorumv1alpha1.EtcdCluster {
	t.Helper()
	var c *quorumv1alpha1.EtcdCluster
	eventually(t, fmt.Sprintf("%s/%s with %d healthy voters", ns, name, n), timeout, func() (bool, string) {
		c = getCluster(t, ns, name)
		voters, healthy := 0, 0
		for _, m := range c.Status.Members {
			if m.Role == quorumv1alpha1.RoleLearner {
				return false, "a learner is still there: " + m.Name
			}
			voters++
			if m.Healthy {
				healthy++
			}
		}
		ok := voters == n && healthy == n && c.Status.PendingChange == nil &&
			meta.IsStatusConditionTrue(c.Status.Conditions, quorumv1alpha1.ConditionAvailable) &&
			c.Status.ObservedGeneration == c.Generation
		return ok, fmt.Sprintf("%d voters, %d healthy, pending %v, conditions %s", voters, healthy, c.Status.PendingChange, conditionSummary(c))
	})
	return c
}

func conditionSummary(c *quorumv1alpha1.EtcdCluster) string {
	var parts []string
	for _, cond := range c.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s(%s: %s)", cond.Type, cond.Status, cond.Reason, cond.Message))
	}
	return strings.Join(parts, "; ")
}

// zonesOf counts the cluster's voters per zone.
func zonesOf(c *quorumv1alpha1.EtcdCluster) map[string]int {
	n := map[string]int{}
	for _, m := range c.Status.Members {
		if m.Role != quorumv1alpha1.RoleLearner {
			n[m.Zone]++
		}
	}
	return n
}

// etcdClient connects the test, on the host, to a cluster's members with
// the operator's client certificate. The members' names resolve only inside
// the cluster, so the dialer maps each name to its pod's IP (the host has
// routes to the pod subnets) while TLS still verifies the name.
func etcdClient(t *testing.T, ns, name string) *clientv3.Client {
	t.Helper()
	return etcdClientFor(t, ns, name, clientURLs(t, ns, name)...)
}

// etcdClientFor is etcdClient on chosen endpoints.
func etcdClientFor(t *testing.T, ns, name string, endpoints ...string) *clientv3.Client {
	t.Helper()
	ctx := context.Background()
	secret, err := kube.CoreV1().Secrets(ns).Get(ctx, resources.ClientSecretName(name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := pki.ClientTLSConfig(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey], secret.Data[resources.KeyCA])
	if err != nil {
		t.Fatal(err)
	}
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		member := strings.SplitN(host, ".", 2)[0]
		pod, err := kube.CoreV1().Pods(ns).Get(ctx, member, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if pod.Status.PodIP == "" {
			return nil, fmt.Errorf("member %s has no pod IP", member)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", net.JoinHostPort(pod.Status.PodIP, port))
	}
	cl, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsConfig,
		DialTimeout: 3 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(dialer)},
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// clientURLs lists the client URLs of the members that have a pod.
func clientURLs(t *testing.T, ns, name string) []string {
	t.Helper()
	urls, err := listClientURLs(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return urls
}

func listClientURLs(ns, name string) ([]string, error) {
	pods, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: resources.LabelCluster + "=" + name + "," + resources.LabelMember})
	if err != nil {
		return nil, err
	}
	var urls []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			urls = append(urls, resources.ClientURL(p.Name, name, ns))
		}
	}
	sort.Strings(urls)
	return urls, nil
}

// writer puts keys one after another for the whole of a test case and
// remembers every write etcd acknowledged; check then proves none was lost.
type writer struct {
	t      *testing.T
	ns     string
	name   string
	cl     *clientv3.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	acked    map[string]string
	failures int
	// lastAck is when the newest write was acknowledged; longestGap the
	// longest time between two acknowledged writes in which a write failed
	// or hung: the longest window in which the cluster took no write.
	lastAck    time.Time
	longestGap time.Duration
}

// gap is the longest window without an acknowledged write so far.
func (w *writer) gap() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.longestGap
}

func startWriter(t *testing.T, ns, name string) *writer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{t: t, ns: ns, name: name, cl: etcdClient(t, ns, name), cancel: cancel, done: make(chan struct{}), acked: map[string]string{}}
	go w.run(ctx)
	return w
}

func (w *writer) run(ctx context.Context) {
	defer close(w.done)
	refresh := time.NewTicker(2 * time.Second)
	defer refresh.Stop()
	// Bounded: at most 100000 writes, and only while the test case runs.
	for i := 0; i < 100000 && ctx.Err() == nil; i++ {
		select {
		case <-refresh.C:
			// Follow the membership as members come and go.
			if urls, err := listClientURLs(w.ns, w.name); err == nil && len(urls) > 0 {
				w.cl.SetEndpoints(urls...)
			}
		default:
		}
		key, value := fmt.Sprintf("/e2e/key-%06d", i), fmt.Sprintf("value-%d-%d", i, time.Now().UnixNano())
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := w.cl.Put(pctx, key, value)
		cancel()
		w.mu.Lock()
		if err == nil {
			w.acked[key] = value
			now := time.Now()
			if !w.lastAck.IsZero() && now.Sub(w.lastAck) > w.longestGap {
				w.longestGap = now.Sub(w.lastAck)
			}
			w.lastAck = now
		} else {
			w.failures++
		}
		w.mu.Unlock()
		if err != nil {
			time.Sleep(100 * time.Millisecond)
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// check stops the writer and asserts that every acknowledged write is
// there with its value, and that every member has the same hash of the
// keyspace at the same revision.
func (w *writer) check(t *testing.T) {
	t.Helper()
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.acked) == 0 {
		t.Fatalf("no write was acknowledged during the case (%d failed)", w.failures)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var resp *clientv3.GetResponse
	var err error
	for i := 0; i < 20; i++ {
		w.cl.SetEndpoints(clientURLs(t, w.ns, w.name)...)
		resp, err = w.cl.Get(ctx, "/e2e/", clientv3.WithPrefix())
		if err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("reading the keys back: %v", err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	lost := 0
	for k, v := range w.acked {
		if got[k] != v {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged write %s=%s is %q now", k, v, got[k])
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes are lost", lost, len(w.acked))
	}
	t.Logf("all %d acknowledged writes are there (%d writes failed while members changed, as clients see during elections)", len(w.acked), w.failures)
	assertSameHash(t, w.cl, resp.Header.Revision, clientURLs(t, w.ns, w.name))
}

// assertSameHash asks every member for the hash of its keyspace at rev.
func assertSameHash(t *testing.T, cl *clientv3.Client, rev int64, endpoints []string) {
	t.Helper()
	hashes := map[string]uint32{}
	for _, ep := range endpoints {
		var h *clientv3.HashKVResponse
		var err error
		for i := 0; i < 20; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			h, err = cl.HashKV(ctx, ep, rev)
			cancel()
			if err == nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("hash of %s at revision %d: %v", ep, rev, err)
		}
		hashes[ep] = h.Hash
	}
	var first uint32
	i := 0
	for ep, h := range hashes {
		if i == 0 {
			first = h
		} else if h != first {
			t.Fatalf("members disagree on the hash at revision %d: %v (%s)", rev, hashes, ep)
		}
		i++
	}
	t.Logf("%d members report hash %08x at revision %d", len(hashes), first, rev)
}

// readyClientURLs lists the client URLs of the members whose pods are
// Ready (all of them when none is): a client that avoids members its
// platform reports unready, as a load balancer in front of etcd would.
func readyClientURLs(ns, name string) ([]string, error) {
	pods, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: resources.LabelCluster + "=" + name + "," + resources.LabelMember})
	if err != nil {
		return nil, err
	}
	var ready, all []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		url := resources.ClientURL(p.Name, name, ns)
		all = append(all, url)
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = append(ready, url)
			}
		}
	}
	if len(ready) == 0 {
		ready = all
	}
	sort.Strings(ready)
	return ready, nil
}

// smallRequests are the requests of e2e pods: the local cluster's three
// nodes report the machine's 2 cores each, and 8 cases run side by side.
func smallRequests() corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")}
}
