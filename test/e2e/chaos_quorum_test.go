package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

// Scenario 9: quorum lost under each quorumLossPolicy, under the workload.
// Wait loses nothing and changes nothing; ForceNewCluster and
// RestoreFromBackup lose what their status says they lose, and no more:
// the recovered store equals etcd's history at the revision they report,
// and every acknowledged write they dropped was acknowledged inside the
// data-loss window they report.

// healthObservation is how far apart the operator looks at a healthy
// cluster (its health interval): the time it reports a member last healthy
// is that precise.
const healthObservation = 10 * time.Second

// afterRecovery is the workload run on a recovered cluster: fresh keys, so
// its history starts empty.
var afterRecovery = workloadOptions{clients: 8, rate: 200, keys: 16, prefix: "/after-recovery/"}

// chaosQuorumLossWait: the etcd of the leader and of a follower stopped
// (SIGSTOP) for longer than unhealthyAfter: QuorumLost, and under Wait
// nothing is removed, restarted or rebuilt; once they run again no
// acknowledged write is missing.
func chaosQuorumLossWait(t *testing.T) {
	ns, c, w := chaosCluster(t, "chaos-qwait")
	before := memberIDs(c)
	ctx := context.Background()
	stopped := loseMajority(t, c, func(m string) error {
		return local.SignalContainer(ctx, kube, ns, m, "etcd", "SIGSTOP")
	})
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			for _, m := range stopped {
				_ = local.SignalContainer(context.Background(), kube, ns, m, "etcd", "SIGCONT")
			}
		}
	})
	waitQuorumLost(t, ns, "main")
	// Past the point where a policy would act: nothing may change.
	time.Sleep(15 * time.Second)
	c = getCluster(t, ns, "main")
	if fmt.Sprint(memberIDs(c)) != fmt.Sprint(before) || c.Status.PendingChange != nil || c.Status.Recovery != nil || c.Status.Restore != nil {
		t.Fatalf("under Wait the membership changed or a recovery started: members %v (before %v), pending %+v, recovery %+v, restore %+v",
			memberIDs(c), before, c.Status.PendingChange, c.Status.Recovery, c.Status.Restore)
	}
	for _, m := range stopped {
		if err := local.SignalContainer(ctx, kube, ns, m, "etcd", "SIGCONT"); err != nil {
			t.Fatalf("SIGCONT %s: %v", m, err)
		}
	}
	resumed = true
	start := time.Now()
	c = waitHealthy(t, ns, "main", 3, 4*time.Minute)
	heal := time.Since(start)
	if fmt.Sprint(memberIDs(c)) != fmt.Sprint(before) {
		t.Errorf("members %v after the loss, want %v", memberIDs(c), before)
	}
	recordChaos(t, "quorum lost under Wait (2 of 3 stopped 35s+)", heal, w.stop(t, ns, "main"))
}

// chaosQuorumLossForce: the leader and a follower lost for good (pods
// and volumes deleted); under ForceNewCluster the survivor goes on alone
// with the same cluster ID and the cluster grows back to 3. status.recovery
// names the survivor and the revision it went on from: the store equals
// etcd's history at that revision, and each acknowledged write it lacks
// was acknowledged after the survivor was last seen healthy.
func chaosQuorumLossForce(t *testing.T) {
	ns, c, w := chaosCluster(t, "chaos-qforce", func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.QuorumLossPolicy = quorumv1alpha1.QuorumLossForceNewCluster
	})
	lost := loseMajority(t, c, func(m string) error { return deleteMember(ns, m) })
	start := time.Now()
	waitQuorumLost(t, ns, "main")
	pre := w.halt(t)
	var rec *quorumv1alpha1.RecoveryStatus
	eventually(t, "a recovery from the survivor", 4*time.Minute, func() (bool, string) {
		cur := getCluster(t, ns, "main")
		rec = cur.Status.Recovery
		return rec != nil && rec.Revision > 0, fmt.Sprintf("recovery %+v; %s", rec, conditionSummary(cur))
	})
	after := waitHealthy(t, ns, "main", 3, 6*time.Minute)
	heal := time.Since(start)
	if after.Status.ClusterID != c.Status.ClusterID {
		t.Errorf("cluster ID %s after ForceNewCluster, was %s", after.Status.ClusterID, c.Status.ClusterID)
	}
	for _, m := range lost {
		if rec.Member == m {
			t.Errorf("recovered from %s, a member whose volume was deleted", m)
		}
	}
	t.Logf("recovered from %s at revision %d (raft index %d); quorum lost at %s, member last healthy at %s, window %s",
		rec.Member, rec.Revision, rec.RaftIndex, rec.QuorumLostAt, rec.MemberLastHealthyAt, rec.DataLossWindow)
	cl := etcdClient(t, ns, "main")
	defer func() { _ = cl.Close() }()
	loss := w.checkRecovered(t, cl, rec.Revision, true, rec.MemberLastHealthyAt.Add(-healthObservation-time.Second), rec.QuorumLostAt.Time)
	post := startWorkload(t, ns, "main", afterRecovery)
	time.Sleep(10 * time.Second)
	postRep := post.stop(t, ns, "main")
	pre.after = fmt.Sprintf("%s, reported window %s; then on the recovered cluster %d ops, %s", loss, rec.DataLossWindow, postRep.ops, postRep.verdict)
	recordChaos(t, "quorum lost for good under ForceNewCluster", heal, pre)
}

// chaosQuorumLossRestore: a verified snapshot, 10 s more of writes, then
// the leader and a follower lost for good; under RestoreFromBackup the
// cluster is rebuilt from the snapshot. Its store equals etcd's history at
// the snapshot's revision, and every acknowledged write it lacks was
// acknowledged after the snapshot's takenAt (the start of the reported
// window).
func chaosQuorumLossRestore(t *testing.T) {
	ns := newNamespace(t, "chaos-qrestore")
	s3Server(t, ns, "etcd-backups")
	newEtcdCluster(t, ns, "main", 3, func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.QuorumLossPolicy = quorumv1alpha1.QuorumLossRestoreFromBackup
	})
	c := waitHealthy(t, ns, "main", 3, 4*time.Minute)
	w := startWorkload(t, ns, "main", chaosLoad)
	time.Sleep(10 * time.Second)
	create(t, s3Backup(ns, "before-loss", "main", "etcd-backups", "s3-credentials"))
	waitBackup(t, ns, "before-loss", metav1.ConditionTrue, "SnapshotVerified")
	time.Sleep(10 * time.Second) // writes the snapshot does not hold
	loseMajority(t, c, func(m string) error { return deleteMember(ns, m) })
	start := time.Now()
	waitQuorumLost(t, ns, "main")
	pre := w.halt(t)
	var rs *quorumv1alpha1.RestoreStatus
	eventually(t, "rebuilt from the snapshot", 6*time.Minute, func() (bool, string) {
		cur := getCluster(t, ns, "main")
		rs = cur.Status.Restore
		return rs != nil && rs.Verified && rs.DataLossWindow != "" && cur.Status.ClusterID != "" && cur.Status.ClusterID != c.Status.ClusterID,
			fmt.Sprintf("restore %+v; %s", rs, conditionSummary(cur))
	})
	waitHealthy(t, ns, "main", 3, 6*time.Minute)
	heal := time.Since(start)
	t.Logf("rebuilt from %s at revision %d taken %s; quorum lost %s, window %s", rs.Snapshot, rs.Revision, rs.TakenAt, rs.QuorumLostAt, rs.DataLossWindow)
	cl := etcdClient(t, ns, "main")
	defer func() { _ = cl.Close() }()
	loss := w.checkRecovered(t, cl, rs.Revision, false, rs.TakenAt.Time, rs.QuorumLostAt.Time)
	if loss.lost == 0 {
		t.Errorf("no acknowledged write was lost, yet 10 s of writes followed the snapshot: the check saw nothing")
	}
	post := startWorkload(t, ns, "main", afterRecovery)
	time.Sleep(10 * time.Second)
	postRep := post.stop(t, ns, "main")
	pre.after = fmt.Sprintf("%s, reported window %s; then on the rebuilt cluster %d ops, %s", loss, rs.DataLossWindow, postRep.ops, postRep.verdict)
	recordChaos(t, "quorum lost for good under RestoreFromBackup", heal, pre)
}

// loseMajority applies lose to the leader and to one follower, and
// returns their names.
func loseMajority(t *testing.T, c *quorumv1alpha1.EtcdCluster, lose func(member string) error) []string {
	t.Helper()
	var names []string
	if c.Status.Leader != "" {
		names = append(names, c.Status.Leader)
	}
	for _, m := range c.Status.Members {
		if len(names) < 2 && m.Name != c.Status.Leader {
			names = append(names, m.Name)
		}
	}
	for _, m := range names {
		if err := lose(m); err != nil {
			t.Fatalf("losing %s: %v", m, err)
		}
	}
	t.Logf("lost %s (leader %s)", strings.Join(names, " and "), c.Status.Leader)
	return names
}

// deleteMember loses a member for good: its volume, then its pod.
func deleteMember(ns, member string) error {
	ctx := context.Background()
	if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, resources.PVCName(member), metav1.DeleteOptions{}); err != nil {
		return err
	}
	return kube.CoreV1().Pods(ns).Delete(ctx, member, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
}

// waitQuorumLost waits for QuorumLost=True; the evidence must hold for
// unhealthyAfter without a pass that contradicts it, which on a machine
// running every scenario at once can take several tries.
func waitQuorumLost(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, "QuorumLost", 6*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, name)
		cond := meta.FindStatusCondition(c.Status.Conditions, quorumv1alpha1.ConditionQuorumLost)
		return cond != nil && cond.Status == metav1.ConditionTrue, conditionSummary(c)
	})
}

// halt stops the clients of a workload whose cluster has lost quorum and
// checks the history up to there on its own: writes of unknown outcome
// that etcd's history (as far as the watch got) does not hold stay
// unknown.
func (w *workload) halt(t *testing.T) workloadReport {
	t.Helper()
	w.stopOps()
	w.opsWG.Wait()
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	rep := workloadReport{ops: w.ops, failed: w.failed, longestNoWrite: w.longestNoAck, rate: float64(w.ops) / time.Since(w.start).Seconds(), errors: w.errors}
	for _, vs := range w.acked {
		rep.acknowledged += len(vs)
	}
	w.watchMu.Lock()
	seen := w.seen
	w.watchMu.Unlock()
	rep.verdict = w.linearizable(t, seen, true)
	return rep
}

// lossReport is what a recovery cost, as the writes saw it.
type lossReport struct {
	revision      int64
	kept, lost    int
	lastLostAckAt time.Time
	firstLostRev  int64
}

func (r lossReport) String() string {
	s := fmt.Sprintf("recovered at revision %d: %d acknowledged writes kept, %d lost", r.revision, r.kept, r.lost)
	if r.lost > 0 {
		s += fmt.Sprintf(" (revisions %d and up, the last acknowledged %s)", r.firstLostRev, r.lastLostAckAt.UTC().Format("15:04:05.000"))
	}
	return s
}

// checkRecovered checks a cluster recovered at revision against the
// workload's history: its keys and values are exactly etcd's history at
// that revision, every acknowledged write at or below it is kept, and
// every one above it was acknowledged inside the window the operator
// reported: no earlier than lostAfter, no later than lostBy (the loss,
// which status gives to the second). With fill, the part of the
// history the watch had not delivered when the cluster was lost is read
// from the recovered cluster (which kept the survivor's history).
func (w *workload) checkRecovered(t *testing.T, cl *clientv3.Client, revision int64, fill bool, lostAfter, lostBy time.Time) lossReport {
	t.Helper()
	w.watchMu.Lock()
	defer w.watchMu.Unlock()
	if fill && w.watched < revision {
		// The recovered cluster's writes stopped with the workload: a
		// progress notification at or past revision means every event up
		// to it was delivered.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		wch := cl.Watch(ctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(w.watched+1))
		tick := time.NewTicker(time.Second)
	fill:
		for w.watched < revision {
			select {
			case <-tick.C:
				_ = cl.RequestProgress(ctx)
			case wr, ok := <-wch:
				if !ok || wr.Err() != nil {
					break fill
				}
				for _, ev := range wr.Events {
					if ev.Kv.ModRevision <= revision {
						w.addEvent(ev)
					}
				}
				if wr.IsProgressNotify() && wr.Header.Revision >= revision {
					w.watched = max(w.watched, revision)
				}
			}
		}
		tick.Stop()
		cancel()
	}
	if w.watched < revision {
		t.Fatalf("etcd's history is known to revision %d only, the recovery went on from %d", w.watched, revision)
	}
	want := map[string]string{}
	for k, evs := range w.events {
		sort.Slice(evs, func(i, j int) bool { return evs[i].revision < evs[j].revision })
		for _, ev := range evs {
			if ev.revision > revision {
				break
			}
			if ev.deleted {
				delete(want, k)
			} else {
				want[k] = ev.value
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cl.Get(ctx, w.prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the recovered store is not etcd's history at revision %d:\n got %v\nwant %v", revision, got, want)
	}

	r := lossReport{revision: revision}
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, vs := range w.acked {
		for _, v := range vs {
			if v.revision <= revision {
				r.kept++
				if w.seen[k][v.value] != v.revision {
					t.Errorf("acknowledged write %s=%s at revision %d, at or below the recovery's %d, is not in the history", k, v.value, v.revision, revision)
				}
				continue
			}
			r.lost++
			if r.firstLostRev == 0 || v.revision < r.firstLostRev {
				r.firstLostRev = v.revision
			}
			if v.at.After(r.lastLostAckAt) {
				r.lastLostAckAt = v.at
			}
			if v.at.After(lostBy.Add(time.Second)) {
				t.Errorf("acknowledged write %s=%s (revision %d) was acknowledged at %s, after the reported loss (%s)",
					k, v.value, v.revision, v.at.UTC().Format(time.RFC3339Nano), lostBy.UTC().Format(time.RFC3339))
			}
			if v.at.Before(lostAfter) {
				t.Errorf("acknowledged write %s=%s (revision %d) was acknowledged at %s, before the reported window starts (%s), yet it is lost",
					k, v.value, v.revision, v.at.UTC().Format(time.RFC3339Nano), lostAfter.UTC().Format(time.RFC3339Nano))
			}
		}
	}
	t.Logf("recovery checked against the writes: %s", r)
	return r
}
