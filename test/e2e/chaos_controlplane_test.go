package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/hack/local-cluster/cluster"
	"quorum.dev/quorum/test/linearizability"
)

// chaosControlPlane (the ControlPlane faults): a 3-replica ControlPlane on
// a 3-member EtcdCluster, with clients writing through the hosted API
// (ConfigMaps as registers: apply, get, a resourceVersion-guarded update
// as compare-and-swap, delete), while a replica is killed (no drain) and
// then the control plane is upgraded one minor version, replica by
// replica. The clients' history through the apiservers must be
// linearizable.
func chaosControlPlane(t *testing.T) {
	ns := newNamespace(t, "chaos-cp")
	cp := controlPlaneOnEtcd(t, ns, cluster.PreviousKubernetesVersion, 6*time.Minute)
	kubeconfig := adminKubeconfig(t, cp)
	w := startHostedWorkload(t, kubeconfig, hostedLoad)
	time.Sleep(10 * time.Second)

	start := time.Now()
	killReplica(t, cp, kubeconfig, cluster.PreviousKubernetesVersion)
	patchControlPlane(t, ns, "tenant", func(cp *quorumv1alpha1.ControlPlane) { cp.Spec.Version = cluster.KubernetesVersion })
	waitControlPlane(t, ns, "tenant", 3, cluster.KubernetesVersion, 8*time.Minute)
	heal := time.Since(start)
	time.Sleep(5 * time.Second)
	recordChaos(t, "ControlPlane replica killed, then upgraded "+cluster.PreviousKubernetesVersion+" to "+cluster.KubernetesVersion, heal, w.stop(t))
}

// hostedLoad is lighter than the etcd workload: every request crosses an
// apiserver on the same two cores.
var hostedLoad = workloadOptions{clients: 6, rate: 60, keys: 12}

// hostedWorkload runs clients against a hosted API: each key is a
// ConfigMap in one namespace, its value in data.v.
type hostedWorkload struct {
	cs      kubernetes.Interface
	ns      string
	start   time.Time
	stopOps context.CancelFunc
	wg      sync.WaitGroup

	mu                 sync.Mutex
	history            []porcupine.Operation
	ops, failed, acked int
	errors             map[string]int
	lastWrite          time.Time
	longestNoAck       time.Duration
}

func startHostedWorkload(t *testing.T, kubeconfig string, o workloadOptions) *hostedWorkload {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 1000, 1000
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt} })
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := "chaos-kv"
	cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cs.CoreV1().Namespaces().Create(cctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating the workload's namespace in the hosted cluster: %v", err)
	}
	ctx, stop := context.WithTimeout(context.Background(), 30*time.Minute)
	w := &hostedWorkload{cs: cs, ns: ns, start: time.Now(), stopOps: stop, errors: map[string]int{}}
	w.lastWrite = w.start
	each := time.Duration(float64(o.clients) / o.rate * float64(time.Second))
	for c := range o.clients {
		w.wg.Add(1)
		go w.client(ctx, c, o.keys, each)
	}
	return w
}

func (w *hostedWorkload) client(ctx context.Context, id, keys int, every time.Duration) {
	defer w.wg.Done()
	rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	tick := time.NewTicker(every)
	defer tick.Stop()
	type read struct{ value, rv string }
	lastRead := map[string]read{}
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		key := fmt.Sprintf("k%02d", rng.IntN(keys))
		value := fmt.Sprintf("c%d-%d", id, seq)
		in := nextOp(rng, key, value, lastRead[key].value)
		call := time.Now()
		out, rv, err := w.do(ctx, in, lastRead[key].rv)
		ret := time.Now()
		if ctx.Err() != nil && err != nil {
			// Stopped mid-operation: a write may have been applied.
			if in.Op != "get" {
				w.record(id, in, out, err, call, ret)
			}
			return
		}
		if in.Op == "get" && err == nil {
			lastRead[key] = read{out.Value, rv}
		}
		w.record(id, in, out, err, call, ret)
	}
}

// attemptsKey holds, in a request's context, how many times client-go
// sent it: it retries some failures by itself (a response with
// Retry-After), and a retried create or guarded update that answers
// AlreadyExists or Conflict may be answering its own first attempt.
type attemptsKey struct{}

type countingTransport struct{ next http.RoundTripper }

func (c countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if n, ok := req.Context().Value(attemptsKey{}).(*atomic.Int32); ok {
		n.Add(1)
	}
	return c.next.RoundTrip(req)
}

// do runs one operation through the hosted API. A compare-and-swap on a
// value read is an update guarded by the resourceVersion read with it
// (values are unique and nothing else writes these objects, so the two
// agree); on an absent key it is a create. Conflict, AlreadyExists and
// NotFound are definite answers to a request sent once; any other error,
// or one of those after client-go retried, leaves a write's outcome
// unknown.
func (w *hostedWorkload) do(ctx context.Context, in linearizability.Input, readRV string) (linearizability.Output, string, error) {
	attempts := &atomic.Int32{}
	octx, cancel := context.WithTimeout(context.WithValue(ctx, attemptsKey{}, attempts), 3*time.Second)
	defer cancel()
	definite := func(err error) bool {
		return attempts.Load() <= 1 && (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err))
	}
	cms := w.cs.CoreV1().ConfigMaps(w.ns)
	switch in.Op {
	case "put":
		_, err := cms.Apply(octx, corev1ac.ConfigMap(in.Key, w.ns).WithData(map[string]string{"v": in.Value}), metav1.ApplyOptions{FieldManager: "chaos", Force: true})
		return linearizability.Output{}, "", err
	case "get":
		cm, err := cms.Get(octx, in.Key, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return linearizability.Output{}, "", nil
		}
		if err != nil {
			return linearizability.Output{}, "", err
		}
		return linearizability.Output{Value: cm.Data["v"]}, cm.ResourceVersion, nil
	case "cas":
		var err error
		if in.Expect == "" {
			_, err = cms.Create(octx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: in.Key}, Data: map[string]string{"v": in.Value}}, metav1.CreateOptions{})
		} else {
			_, err = cms.Update(octx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: in.Key, ResourceVersion: readRV}, Data: map[string]string{"v": in.Value}}, metav1.UpdateOptions{})
		}
		if definite(err) {
			return linearizability.Output{OK: false}, "", nil
		}
		return linearizability.Output{OK: err == nil}, "", err
	default:
		err := cms.Delete(octx, in.Key, metav1.DeleteOptions{})
		if definite(err) {
			return linearizability.Output{OK: false}, "", nil
		}
		return linearizability.Output{OK: err == nil}, "", err
	}
}

func (w *hostedWorkload) record(id int, in linearizability.Input, out linearizability.Output, err error, call, ret time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ops++
	op := porcupine.Operation{ClientId: id, Input: in, Call: call.UnixNano(), Output: out, Return: ret.UnixNano()}
	if err != nil {
		w.failed++
		w.errors[errorKind(err)]++
		if in.Op == "get" {
			return
		}
		op.Output, op.Return = linearizability.Output{Unknown: true}, math.MaxInt64
	} else if in.Op != "get" {
		w.acked++
		w.longestNoAck = max(w.longestNoAck, ret.Sub(w.lastWrite))
		w.lastWrite = ret
	}
	w.history = append(w.history, op)
}

// stop ends the clients and checks the history.
func (w *hostedWorkload) stop(t *testing.T) workloadReport {
	t.Helper()
	w.stopOps()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.acked == 0 {
		t.Fatalf("no write through the hosted API was acknowledged (%d ops, %d failed)", w.ops, w.failed)
	}
	return workloadReport{ops: w.ops, acknowledged: w.acked, failed: w.failed, errors: w.errors, longestNoWrite: w.longestNoAck,
		rate: float64(w.ops) / time.Since(w.start).Seconds(), verdict: checkHistory(t, w.history)}
}
