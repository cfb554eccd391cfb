package e2e

// A linearizability-checked workload, after etcd's own robustness tests:
// concurrent clients do Put, Get, compare-and-swap and Delete on a small
// key space at a steady rate, every operation recorded with its call and
// return times, and the history is checked with porcupine against a
// key-value model. A write whose outcome is unknown (an error or a
// timeout) may have happened at any time after its call: it is recorded
// as returning at the end of the history, which lets the checker place it
// anywhere after its call, or effectively nowhere.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"

	"quorum.dev/quorum/test/linearizability"
)

// workload runs clients against one EtcdCluster.
type workload struct {
	t      *testing.T
	ns     string
	cl     *clientv3.Client
	prefix string
	start  time.Time
	// cancel stops the watch, stopOps the clients; wg waits for the watch,
	// opsWG for the clients.
	cancel, stopOps context.CancelFunc
	wg, opsWG       sync.WaitGroup
	mu              sync.Mutex
	history         []porcupine.Operation
	// acked are the acknowledged puts and CAS, by key.
	acked map[string][]ackedWrite
	// history is etcd's own: a watch that runs with the workload, from the
	// revision it started at, so a later compaction cannot hide it. seen
	// holds each put value's revision by key; watched is the revision the
	// watch is known complete to.
	watchMu  sync.Mutex
	seen     map[string]map[string]int64
	events   map[string][]keyEvent
	watched  int64
	watchErr error
	from     int64
	// end is the revision when the clients stopped.
	end int64
	// figures
	ops, failed  int
	errors       map[string]int
	lastWrite    time.Time
	longestNoAck time.Duration
}

// ackedWrite is an acknowledged write, its revision and when it was
// acknowledged.
type ackedWrite struct {
	value    string
	revision int64
	at       time.Time
}

// keyEvent is a change to a key in etcd's history: a put of value, or a
// delete.
type keyEvent struct {
	revision int64
	value    string
	deleted  bool
}

// workloadOptions shape a workload.
type workloadOptions struct {
	clients int
	rate    float64 // operations per second, all clients together
	keys    int
	// prefix of the keys; /workload/ when empty.
	prefix string
}

// startWorkload starts clients against ns/name (through the same client
// the writer uses) until stop; bounded to 30 minutes.
func startWorkload(t *testing.T, ns, name string, o workloadOptions) *workload {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	prefix := o.prefix
	if prefix == "" {
		prefix = "/workload/"
	}
	w := &workload{t: t, ns: ns, cl: etcdClient(t, ns, name), prefix: prefix, start: time.Now(), cancel: cancel, acked: map[string][]ackedWrite{}, errors: map[string]int{}}
	w.lastWrite = w.start
	w.seen, w.events = map[string]map[string]int64{}, map[string][]keyEvent{}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	resp, err := w.cl.Get(rctx, w.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	rcancel()
	if err != nil {
		t.Fatalf("reading the revision to watch from: %v", err)
	}
	w.from = resp.Header.Revision + 1
	w.wg.Add(1)
	go w.watch(ctx)
	each := time.Duration(float64(o.clients) / o.rate * float64(time.Second))
	opsCtx, stopOps := context.WithCancel(ctx)
	w.stopOps = stopOps
	for c := 0; c < o.clients; c++ {
		w.opsWG.Add(1)
		go w.client(opsCtx, c, o.keys, each, name)
	}
	return w
}

// watch records etcd's history of the workload's keys as it happens.
func (w *workload) watch(ctx context.Context) {
	defer w.wg.Done()
	// Not WithRequireLeader: the watch outlives leader changes and member
	// restarts, the client resuming it from the last revision it saw.
	for wr := range w.cl.Watch(ctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(w.from), clientv3.WithProgressNotify()) {
		w.watchMu.Lock()
		if err := wr.Err(); err != nil {
			if wr.Canceled && ctx.Err() == nil {
				w.watchErr = err // compacted past it, or refused: the history is incomplete
				w.watchMu.Unlock()
				return
			}
			w.watchMu.Unlock()
			continue
		}
		for _, ev := range wr.Events {
			w.addEvent(ev)
		}
		if wr.IsProgressNotify() {
			w.watched = max(w.watched, wr.Header.Revision)
		}
		w.watchMu.Unlock()
	}
}

// addEvent records one event of etcd's history; the caller holds watchMu.
func (w *workload) addEvent(ev *clientv3.Event) {
	k := string(ev.Kv.Key)
	if ev.Type == clientv3.EventTypePut {
		if w.seen[k] == nil {
			w.seen[k] = map[string]int64{}
		}
		w.seen[k][string(ev.Kv.Value)] = ev.Kv.ModRevision
		w.events[k] = append(w.events[k], keyEvent{revision: ev.Kv.ModRevision, value: string(ev.Kv.Value)})
	} else {
		w.events[k] = append(w.events[k], keyEvent{revision: ev.Kv.ModRevision, deleted: true})
	}
	w.watched = max(w.watched, ev.Kv.ModRevision)
}

func (w *workload) client(ctx context.Context, id, keys int, every time.Duration, name string) {
	defer w.opsWG.Done()
	rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastRead := map[string]string{}
	refresh := time.Now()
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if id == 0 && time.Since(refresh) > 2*time.Second {
			refresh = time.Now()
			if urls, err := readyClientURLs(w.ns, name); err == nil && len(urls) > 0 {
				w.cl.SetEndpoints(urls...)
			}
		}
		key := fmt.Sprintf("%sk%02d", w.prefix, rng.IntN(keys))
		value := fmt.Sprintf("c%d-%d", id, seq)
		in := nextOp(rng, key, value, lastRead[key])
		call := time.Now()
		out, rev, err := w.do(ctx, in)
		ret := time.Now()
		if ctx.Err() != nil && err != nil {
			// Stopped mid-operation: a write may still have been applied
			// (and later reads may see it), so it is recorded as of
			// unknown outcome; a read is not recorded.
			if in.Op != "get" {
				w.record(id, in, out, rev, err, call, ret)
			}
			return
		}
		if in.Op == "get" && err == nil {
			lastRead[key] = out.Value
		}
		w.record(id, in, out, rev, err, call, ret)
	}
}

// nextOp draws the workload's next operation on key: 35% put, 35% get,
// 20% compare-and-swap against the value last read, 10% delete.
func nextOp(rng *rand.Rand, key, value, lastRead string) linearizability.Input {
	switch r := rng.IntN(100); {
	case r < 35:
		return linearizability.Input{Op: "put", Key: key, Value: value}
	case r < 70:
		return linearizability.Input{Op: "get", Key: key}
	case r < 90:
		return linearizability.Input{Op: "cas", Key: key, Value: value, Expect: lastRead}
	}
	return linearizability.Input{Op: "delete", Key: key}
}

// do runs one operation with a 2 s timeout; rev is the revision etcd
// answered at.
func (w *workload) do(ctx context.Context, in linearizability.Input) (out linearizability.Output, rev int64, err error) {
	octx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	switch in.Op {
	case "put":
		resp, err := w.cl.Put(octx, in.Key, in.Value)
		if err != nil {
			return linearizability.Output{}, 0, err
		}
		return linearizability.Output{}, resp.Header.Revision, nil
	case "get":
		resp, err := w.cl.Get(octx, in.Key)
		if err != nil {
			return linearizability.Output{}, 0, err
		}
		if len(resp.Kvs) > 0 {
			return linearizability.Output{Value: string(resp.Kvs[0].Value)}, resp.Header.Revision, nil
		}
		return linearizability.Output{}, resp.Header.Revision, nil
	case "cas":
		var cmp clientv3.Cmp
		if in.Expect == "" {
			cmp = clientv3.Compare(clientv3.CreateRevision(in.Key), "=", 0)
		} else {
			cmp = clientv3.Compare(clientv3.Value(in.Key), "=", in.Expect)
		}
		resp, err := w.cl.Txn(octx).If(cmp).Then(clientv3.OpPut(in.Key, in.Value)).Commit()
		if err != nil {
			return linearizability.Output{}, 0, err
		}
		return linearizability.Output{OK: resp.Succeeded}, resp.Header.Revision, nil
	default:
		resp, err := w.cl.Delete(octx, in.Key)
		if err != nil {
			return linearizability.Output{}, 0, err
		}
		return linearizability.Output{OK: resp.Deleted > 0}, resp.Header.Revision, nil
	}
}

func (w *workload) record(id int, in linearizability.Input, out linearizability.Output, rev int64, err error, call, ret time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ops++
	op := porcupine.Operation{ClientId: id, Input: in, Call: call.UnixNano(), Output: out, Return: ret.UnixNano(), Metadata: rev}
	if err != nil {
		w.failed++
		w.errors[errorKind(err)]++
		if in.Op == "get" {
			return // a failed read changed nothing
		}
		op.Output, op.Return = linearizability.Output{Unknown: true}, math.MaxInt64
	} else if in.Op != "get" {
		if d := ret.Sub(w.lastWrite); d > w.longestNoAck {
			w.longestNoAck = d
		}
		w.lastWrite = ret
		if in.Op == "put" || (in.Op == "cas" && out.OK) {
			w.acked[in.Key] = append(w.acked[in.Key], ackedWrite{value: in.Value, revision: rev, at: ret})
		}
	}
	w.history = append(w.history, op)
}

// workloadReport is the figures of a workload.
type workloadReport struct {
	errors                    map[string]int
	ops, acknowledged, failed int
	rate                      float64
	longestNoWrite            time.Duration
	verdict                   string
	// after is what else the scenario measured, for the summary line.
	after string
}

func (r workloadReport) String() string {
	var kinds []string
	for k, n := range r.errors {
		kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(kinds)
	failed := fmt.Sprint(r.failed)
	if len(kinds) > 0 {
		failed += " (" + strings.Join(kinds, ", ") + ")"
	}
	out := fmt.Sprintf("%d ops (%.0f/s), %d acknowledged, %s failed, longest window with no successful write %s, %s",
		r.ops, r.rate, r.acknowledged, failed, r.longestNoWrite.Round(10*time.Millisecond), r.verdict)
	if r.after != "" {
		out += "; " + r.after
	}
	return out
}

// errorKind names an error for the figures.
func errorKind(err error) string {
	switch msg := err.Error(); {
	case strings.Contains(msg, "database space exceeded"):
		return "NOSPACE"
	case strings.Contains(msg, "context canceled"):
		return "in flight at stop"
	case strings.Contains(msg, "deadline exceeded"):
		return "timeout"
	case strings.Contains(msg, "leader changed") || strings.Contains(msg, "no leader"):
		return "no leader"
	default:
		return "other"
	}
}

// stop ends the clients and checks everything: the history is
// linearizable, every acknowledged write is in etcd's history, and every
// member has the same hash at one revision.
func (w *workload) stop(t *testing.T, ns, name string) workloadReport {
	t.Helper()
	w.stopClients(t)
	w.mu.Lock()
	defer w.mu.Unlock()
	rep := workloadReport{ops: w.ops, failed: w.failed, longestNoWrite: w.longestNoAck, rate: float64(w.ops) / time.Since(w.start).Seconds()}
	for _, op := range w.history {
		if op.Input.(linearizability.Input).Op != "get" && !op.Output.(linearizability.Output).Unknown {
			rep.acknowledged++
		}
	}
	if rep.acknowledged == 0 {
		t.Fatalf("no write was acknowledged (%d ops, %d failed)", w.ops, w.failed)
	}

	// Every acknowledged write is in etcd's history.
	cl := etcdClient(t, ns, name)
	defer func() { _ = cl.Close() }()
	w.watchMu.Lock()
	seen := w.seen
	w.watchMu.Unlock()
	lost := 0
	for k, vs := range w.acked {
		for _, v := range vs {
			if _, ok := seen[k][v.value]; !ok {
				lost++
				if lost <= 5 {
					t.Errorf("acknowledged write %s=%s (revision %d) is not in etcd's history", k, v.value, v.revision)
				}
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d acknowledged writes lost", lost)
	}

	rep.verdict = w.linearizable(t, seen, false)
	rep.errors = w.errors
	assertSameHash(t, cl, w.end, clientURLs(t, ns, name))
	return rep
}

// linearizable checks the history against the key-value model and
// returns the verdict. Writes of unknown outcome are resolved with etcd's
// history (seen); with keepUnseen, one the history does not hold stays
// unknown (the history may end before it: the cluster was lost) instead of
// leaving the history. The caller holds mu.
func (w *workload) linearizable(t *testing.T, seen map[string]map[string]int64, keepUnseen bool) string {
	t.Helper()
	// A write whose outcome the client did not learn (a timeout, or a
	// NOSPACE error, which etcd may answer for a write it applied: etcd
	// issue 16659) is resolved with etcd's own history, values being
	// unique: never there, it was not applied and leaves the history; there,
	// it was, at its revision.
	// An applied one took effect at its revision: it returned, at the
	// latest, when the first operation answered at that revision or later
	// did (etcd's robustness tests bound it the same way).
	type answered struct{ rev, ret int64 }
	var byRev []answered
	for _, op := range w.history {
		if rev, _ := op.Metadata.(int64); rev > 0 {
			byRev = append(byRev, answered{rev, op.Return})
		}
	}
	sort.Slice(byRev, func(i, j int) bool { return byRev[i].rev < byRev[j].rev })
	for i := len(byRev) - 2; i >= 0; i-- {
		byRev[i].ret = min(byRev[i].ret, byRev[i+1].ret)
	}
	returnBy := func(rev int64) int64 {
		i := sort.Search(len(byRev), func(i int) bool { return byRev[i].rev >= rev })
		if i == len(byRev) {
			return math.MaxInt64
		}
		return byRev[i].ret
	}
	history := make([]porcupine.Operation, 0, len(w.history))
	dropped, resolved := 0, 0
	for _, op := range w.history {
		in, out := op.Input.(linearizability.Input), op.Output.(linearizability.Output)
		if out.Unknown && (in.Op == "put" || in.Op == "cas") {
			rev, applied := seen[in.Key][in.Value]
			if !applied && keepUnseen {
				history = append(history, op)
				continue
			}
			if !applied {
				dropped++
				continue
			}
			resolved++
			op.Output = linearizability.Output{OK: true}
			op.Return = max(op.Call, returnBy(rev))
		}
		history = append(history, op)
	}

	verdict := checkHistory(t, history)
	if dropped+resolved > 0 {
		verdict += fmt.Sprintf(" (writes of unknown outcome: %d found applied, %d not)", resolved, dropped)
	}
	return verdict
}

// checkHistory checks a history against the key-value model with
// porcupine; on a violation the checker's visualisation is written to the
// temporary directory and named in the failure.
func checkHistory(t *testing.T, history []porcupine.Operation) string {
	t.Helper()
	result, info := porcupine.CheckOperationsVerbose(linearizability.KVModel, history, 2*time.Minute)
	verdict := "linearizable"
	switch result {
	case porcupine.Illegal:
		verdict = "NOT LINEARIZABLE"
		path := filepath.Join(os.TempDir(), fmt.Sprintf("quorum-porcupine-%s-%d.html", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().Unix()))
		if err := porcupine.VisualizePath(linearizability.KVModel, info, path); err == nil {
			t.Errorf("the history is not linearizable; the checker's visualisation is at %s", path)
		} else {
			t.Errorf("the history is not linearizable (visualisation failed: %v)", err)
		}
	case porcupine.Unknown:
		verdict = "linearizability unknown (checker timed out)"
		t.Errorf("porcupine timed out after 2m on %d operations: the history is not verified", len(history))
	}

	return verdict
}

// stopClients stops the clients, waits (bounded: a minute) until the
// watch has delivered every revision up to the one the store is at, then
// stops the watch.
func (w *workload) stopClients(t *testing.T) {
	t.Helper()
	w.stopOps()
	w.opsWG.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := w.cl.Get(rctx, w.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		rcancel()
		if err == nil {
			w.end = resp.Header.Revision
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("reading the end revision: %v", err)
		}
		time.Sleep(time.Second)
	}
	for {
		w.watchMu.Lock()
		done, werr := w.watched >= w.end, w.watchErr
		w.watchMu.Unlock()
		if werr != nil {
			t.Fatalf("the history watch failed: %v", werr)
		}
		if done {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the history watch did not reach revision %d in a minute", w.end)
		}
		_ = w.cl.RequestProgress(ctx)
		time.Sleep(500 * time.Millisecond)
	}
	w.cancel()
	w.wg.Wait()
}
