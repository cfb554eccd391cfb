package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/hack/local-cluster/cluster"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/resources"
)

// statusWatch follows an EtcdCluster's status while a fault is injected
// and records every moment it said something untrue of a cluster whose
// majority serves: QuorumLost True, or Available not True.
type statusWatch struct {
	stop chan struct{}
	done chan struct{}

	mu sync.Mutex
	// quorumLost is set when QuorumLost was ever True; longest is the
	// longest stretch of misreporting, and what was said then.
	quorumLost bool
	longest    time.Duration
	said       string
	samples    int
}

// watchStatus polls the status every 500 ms until stop. A majority serves
// throughout the faults it is used for, so any misreport counts.
func watchStatus(t *testing.T, ns, name string) *statusWatch {
	t.Helper()
	w := &statusWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var since time.Time
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		// Bounded: at most 30 minutes of samples.
		for i := 0; i < 3600; i++ {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			c := &quorumv1alpha1.EtcdCluster{}
			if err := crClient(t).Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, c); err != nil {
				continue
			}
			lost := meta.IsStatusConditionTrue(c.Status.Conditions, quorumv1alpha1.ConditionQuorumLost)
			wrong := lost || !meta.IsStatusConditionTrue(c.Status.Conditions, quorumv1alpha1.ConditionAvailable)
			now := time.Now()
			w.mu.Lock()
			w.samples++
			w.quorumLost = w.quorumLost || lost
			switch {
			case wrong && since.IsZero():
				since = now
			case wrong:
				if d := now.Sub(since); d > w.longest {
					w.longest, w.said = d, fmt.Sprintf("ready %d/%d; %s", c.Status.ReadyReplicas, c.Status.Replicas, conditionSummary(c))
				}
			default:
				since = time.Time{}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// finish stops the watch and fails the test if the status ever said that
// quorum was lost or the cluster unavailable while a majority served.
func (w *statusWatch) finish(t *testing.T, what string) time.Duration {
	t.Helper()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("%s: %d status samples, longest misreport %s", what, w.samples, w.longest)
	if w.quorumLost || w.longest > 0 {
		t.Errorf("%s: the status misreported a cluster whose majority served, for up to %s (QuorumLost ever True: %v): %s", what, w.longest, w.quorumLost, w.said)
	}
	return w.longest
}

// memberID parses a member's hex ID from the status.
func memberID(t *testing.T, m quorumv1alpha1.MemberStatus) uint64 {
	t.Helper()
	id, err := strconv.ParseUint(m.ID, 16, 64)
	if err != nil {
		t.Fatalf("member %s has ID %q: %v", m.Name, m.ID, err)
	}
	return id
}

// pvcUIDs are the UIDs of a cluster's volumes by name.
func pvcUIDs(t *testing.T, ns, name string) map[string]types.UID {
	t.Helper()
	list, err := kube.CoreV1().PersistentVolumeClaims(ns).List(context.Background(), metav1.ListOptions{LabelSelector: resources.LabelCluster + "=" + name})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]types.UID{}
	for _, p := range list.Items {
		out[p.Name] = p.UID
	}
	return out
}

// testNOSPACEAlarm (issue 11 a): a NOSPACE alarm raised on one member of a
// healthy cluster whose policy is RestoreFromBackup, with a good backup, is
// reported and destroys nothing.
func testNOSPACEAlarm(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "etcd-alarm")
	s3Server(t, ns, "etcd-backups")
	newEtcdCluster(t, ns, "main", 3, func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.QuorumLossPolicy = quorumv1alpha1.QuorumLossRestoreFromBackup
	})
	before := waitHealthy(t, ns, "main", 3, 4*time.Minute)
	w := startWriter(t, ns, "main")
	create(t, s3Backup(ns, "once", "main", "etcd-backups", "s3-credentials"))
	waitBackup(t, ns, "once", metav1.ConditionTrue, "SnapshotVerified")

	victim := before.Status.Members[0]
	cl := etcdClient(t, ns, "main")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := pb.NewMaintenanceClient(cl.ActiveConnection()).Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: memberID(t, victim), Alarm: pb.AlarmType_NOSPACE})
	cancel()
	if err != nil {
		t.Fatalf("raising NOSPACE on %s: %v", victim.Name, err)
	}
	raised := time.Now()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = cl.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: memberID(t, victim), Alarm: pb.AlarmType_NOSPACE})
	})

	// The operator reports the alarm and, the database being small,
	// recovers from it (compaction, defragmentation, disarm): either is
	// seen.
	eventually(t, "AlarmActive with NOSPACE on "+victim.Name+", or its recovery", time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		for _, a := range c.Status.Alarms {
			if a.Member == victim.Name && a.Alarm == "NOSPACE" {
				return meta.IsStatusConditionTrue(c.Status.Conditions, quorumv1alpha1.ConditionAlarmActive), conditionSummary(c)
			}
		}
		return c.Status.LastCompaction != nil, fmt.Sprintf("alarms %v; %s", c.Status.Alarms, conditionSummary(c))
	})
	t.Logf("NOSPACE reported (or recovered) %s after the alarm was raised", time.Since(raised).Round(100*time.Millisecond))

	// Two minutes: past unhealthyAfter (20 s) several times over.
	sw := watchStatus(t, ns, "main")
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		c := getCluster(t, ns, "main")
		if c.Status.ClusterID != before.Status.ClusterID || ids(c) != ids(before) || c.Status.PendingChange != nil {
			t.Fatalf("an alarm changed the cluster: ID %s then %s, members %s then %s, pending %+v",
				before.Status.ClusterID, c.Status.ClusterID, ids(before), ids(c), c.Status.PendingChange)
		}
		time.Sleep(2 * time.Second)
	}
	sw.finish(t, "NOSPACE on one member")

	eventually(t, "AlarmActive False once recovered", 2*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		return meta.IsStatusConditionFalse(c.Status.Conditions, quorumv1alpha1.ConditionAlarmActive) && len(c.Status.Alarms) == 0, conditionSummary(c)
	})
	w.check(t)
}

// testForeignClientCertificate (issue 11 c): the operator's client
// certificate Secret replaced by one from another CA, with
// ForceNewCluster: members refuse the operator, which says so
// (EtcdUnreachable) and removes nothing; restoring the Secret heals it.
func testForeignClientCertificate(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "etcd-foreign-cert")
	newEtcdCluster(t, ns, "main", 3, func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.QuorumLossPolicy = quorumv1alpha1.QuorumLossForceNewCluster
	})
	before := waitHealthy(t, ns, "main", 3, 4*time.Minute)
	w := startWriter(t, ns, "main")
	volumes := pvcUIDs(t, ns, "main")

	ctx := context.Background()
	secrets := kube.CoreV1().Secrets(ns)
	orig, err := secrets.Get(ctx, resources.ClientSecretName("main"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Valid for two years: well outside certificateRenewBefore, so the
	// operator does not simply renew it from its own CA.
	ca, err := pki.NewCA("another-ca", 3*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(pki.CertRequest{CommonName: "quorum-client", Usages: clientUsages, Validity: 2 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	foreign := orig.DeepCopy()
	foreign.Data = map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM, resources.KeyCA: ca.CertPEM}
	if _, err := secrets.Update(ctx, foreign, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	replaced := time.Now()
	eventually(t, "EtcdUnreachable=True (ClientCredentialsRejected)", 2*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		cond := meta.FindStatusCondition(c.Status.Conditions, quorumv1alpha1.ConditionEtcdUnreachable)
		return cond != nil && cond.Status == metav1.ConditionTrue && cond.Reason == "ClientCredentialsRejected", conditionSummary(c)
	})
	t.Logf("EtcdUnreachable %s after the Secret was replaced", time.Since(replaced).Round(100*time.Millisecond))

	// Past unhealthyAfter (20 s) several times over: nothing may go, the
	// status may not call members unhealthy or quorum lost.
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		c := getCluster(t, ns, "main")
		if c.Status.ClusterID != before.Status.ClusterID || ids(c) != ids(before) || c.Status.PendingChange != nil {
			t.Fatalf("the operator's own trouble changed the cluster: members %s then %s, pending %+v", ids(before), ids(c), c.Status.PendingChange)
		}
		if meta.IsStatusConditionTrue(c.Status.Conditions, quorumv1alpha1.ConditionQuorumLost) {
			t.Fatalf("QuorumLost=True for the operator's own certificate: %s", conditionSummary(c))
		}
		for _, m := range c.Status.Members {
			if !m.Healthy {
				t.Fatalf("member %s reported unhealthy while the operator could not see it: %s", m.Name, conditionSummary(c))
			}
		}
		time.Sleep(2 * time.Second)
	}

	fixed, err := secrets.Get(ctx, resources.ClientSecretName("main"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fixed.Data = orig.Data
	if _, err := secrets.Update(ctx, fixed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "EtcdUnreachable=False once the Secret is fixed", 2*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		return meta.IsStatusConditionFalse(c.Status.Conditions, quorumv1alpha1.ConditionEtcdUnreachable) &&
			meta.IsStatusConditionTrue(c.Status.Conditions, quorumv1alpha1.ConditionAvailable), conditionSummary(c)
	})
	after := waitHealthy(t, ns, "main", 3, time.Minute)
	if ids(after) != ids(before) {
		t.Fatalf("members changed: %s, then %s", ids(before), ids(after))
	}
	for name, uid := range pvcUIDs(t, ns, "main") {
		if volumes[name] != uid {
			t.Fatalf("volume %s was replaced", name)
		}
	}
	w.check(t)
}

var clientUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}

// testLearnerThatCannotStart (issue 11 e): a scale-up whose new member can
// never be scheduled is undone after startTimeout, and a voter deleted
// meanwhile (pod and volume) is still replaced.
func testLearnerThatCannotStart(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "etcd-stuck")
	ctx := context.Background()
	// Members may only run on nodes carrying this namespace's label; the
	// label on zone-a's node goes before the scale-up, so the learner the
	// scale-up places there stays Pending.
	label, setLabel := namespaceNodeLabel(t, ns)
	newEtcdCluster(t, ns, "main", 3, func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.PodTemplate.NodeSelector = map[string]string{label: "ok"}
	})
	before := waitHealthy(t, ns, "main", 3, 4*time.Minute)
	// The 30 s bound comes once the cluster is up: bootstrapping under the
	// whole suite on two cores, a learner's volume provisioning and first
	// mount have taken longer than that, and the operator rightly undid
	// those learners again and again.
	patch := []byte(`{"spec":{"failurePolicy":{"startTimeout":"30s"}}}`)
	if err := crClient(t).Patch(ctx, &quorumv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	w := startWriter(t, ns, "main")
	setLabel("node-a", false)

	scale(t, ns, "main", 5)
	var learner string
	eventually(t, "a learner added in zone-a (in etcd, its pod Pending)", 2*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		p := c.Status.PendingChange
		if p == nil || p.Type != quorumv1alpha1.ChangeAddMember || p.Zone != "zone-a" {
			return false, conditionSummary(c)
		}
		learner = p.Member
		for _, m := range c.Status.Members {
			if m.Name == learner && m.Role == quorumv1alpha1.RoleLearner && m.ID != "" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s recorded, not in etcd yet", learner)
	})
	added := time.Now()

	// Meanwhile the zone-c voter loses its pod and volume.
	var victim quorumv1alpha1.MemberStatus
	for _, m := range before.Status.Members {
		if m.Zone == "zone-c" {
			victim = m
		}
	}
	_ = kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, resources.PVCName(victim.Name), metav1.DeleteOptions{})
	if err := kube.CoreV1().Pods(ns).Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	eventually(t, "the stuck learner removed after startTimeout", 3*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		for _, m := range c.Status.Members {
			if m.Name == learner {
				return false, fmt.Sprintf("%s still a %s; %s", learner, m.Role, conditionSummary(c))
			}
		}
		return true, ""
	})
	t.Logf("learner %s removed %s after it was added (startTimeout 30s)", learner, time.Since(added).Round(100*time.Millisecond))

	eventually(t, "the deleted zone-c voter replaced", 4*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		voters, healthy, inC := 0, 0, false
		for _, m := range c.Status.Members {
			if m.Name == victim.Name {
				return false, fmt.Sprintf("%s still a member; %s", victim.Name, conditionSummary(c))
			}
			if m.Role != quorumv1alpha1.RoleLearner {
				voters++
				if m.Healthy {
					healthy++
				}
				inC = inC || m.Zone == "zone-c"
			}
		}
		return voters >= 3 && healthy == voters && inC, fmt.Sprintf("%d voters, %d healthy, zone-c %v; %s", voters, healthy, inC, conditionSummary(c))
	})
	// The scale-up cannot finish while zone-a takes no member: back to 3.
	scale(t, ns, "main", 3)
	setLabel("node-a", true)
	waitHealthy(t, ns, "main", 3, 4*time.Minute)
	w.check(t)
}

// testCertificateRenewal (issue 12 a): certificates valid for 10 minutes,
// renewed 7 minutes before they expire: every member restarts onto new
// certificates and the client certificate is replaced, expiry dates move
// forward, no acknowledged write is lost and Available stays True.
func testCertificateRenewal(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "etcd-renew")
	newEtcdCluster(t, ns, "main", 3, func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.TLS.CertificateValidity = &metav1.Duration{Duration: 10 * time.Minute}
		c.Spec.TLS.CertificateRenewBefore = &metav1.Duration{Duration: 7 * time.Minute}
	})
	before := waitHealthy(t, ns, "main", 3, 4*time.Minute)
	expiry := map[string]time.Time{}
	for _, cs := range before.Status.Certificates {
		expiry[cs.Name] = cs.NotAfter.Time
	}
	pods := memberPodUIDs(t, ns)
	w := startWriter(t, ns, "main")
	sw := watchStatus(t, ns, "main")
	start := time.Now()
	eventually(t, "every certificate renewed and every member restarted onto its own", 9*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		var waiting []string
		for _, cs := range c.Status.Certificates {
			if cs.Name != "ca" && !cs.NotAfter.After(expiry[cs.Name]) {
				waiting = append(waiting, cs.Name)
			}
		}
		now := memberPodUIDs(t, ns)
		for name, uid := range pods {
			if now[name] == uid {
				waiting = append(waiting, "pod "+name)
			}
		}
		return len(waiting) == 0 && c.Status.PendingChange == nil, fmt.Sprintf("not yet: %v; %s", waiting, conditionSummary(c))
	})
	t.Logf("certificates renewed and members restarted %s after the cluster was healthy (renewal due 3m after issue)", time.Since(start).Round(time.Second))
	sw.finish(t, "certificate renewal")
	after := getCluster(t, ns, "main")
	if ids(after) != ids(before) {
		t.Fatalf("members changed across the renewal: %s, then %s", ids(before), ids(after))
	}
	w.check(t)
}

// testRetainAndAdopt (issue 13 d): an EtcdCluster deleted with the default
// deletionPolicy keeps its volumes and certificates; recreated under the
// same name it is the same cluster with every key; with Delete, the
// volumes go with it.
func testRetainAndAdopt(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "etcd-retain")
	ctx := context.Background()
	newEtcdCluster(t, ns, "main", 3)
	before := waitHealthy(t, ns, "main", 3, 4*time.Minute)
	cl := etcdClient(t, ns, "main")
	saved := putKeys(t, cl, "/kept/", 500)
	_ = cl.Close()

	start := time.Now()
	if err := crClient(t).Delete(ctx, &quorumv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cluster and its pods gone, its volumes kept", 3*time.Minute, func() (bool, string) {
		err := crClient(t).Get(ctx, types.NamespacedName{Namespace: ns, Name: "main"}, &quorumv1alpha1.EtcdCluster{})
		pods := memberPodUIDs(t, ns)
		vols := pvcUIDs(t, ns, "main")
		return err != nil && len(pods) == 0 && len(vols) == 3, fmt.Sprintf("object: %v, %d pods, %d volumes", err, len(pods), len(vols))
	})
	t.Logf("deleted with deletionPolicy Retain in %s: 3 volumes kept", time.Since(start).Round(100*time.Millisecond))

	start = time.Now()
	newEtcdCluster(t, ns, "main", 3)
	after := waitHealthy(t, ns, "main", 3, 5*time.Minute)
	t.Logf("recreated and healthy from its volumes in %s", time.Since(start).Round(100*time.Millisecond))
	if after.Status.ClusterID != before.Status.ClusterID || ids(after) != ids(before) {
		t.Fatalf("recreated as cluster %s with %s, want %s with %s", after.Status.ClusterID, ids(after), before.Status.ClusterID, ids(before))
	}
	cl = etcdClient(t, ns, "main")
	got, _ := getPrefix(t, cl, "/kept/")
	_ = cl.Close()
	for k, v := range saved {
		if got[k] != v {
			t.Fatalf("key %s is %q after the cluster came back, want %q (%d of %d keys there)", k, got[k], v, len(got), len(saved))
		}
	}

	// deletionPolicy Delete: the volumes go with the object.
	c := updateCluster(t, ns, "main", func(c *quorumv1alpha1.EtcdCluster) { c.Spec.DeletionPolicy = quorumv1alpha1.DeletionDelete })
	eventually(t, "the finalizer gone with deletionPolicy Delete", time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		return len(c.Finalizers) == 0, fmt.Sprintf("finalizers %v", c.Finalizers)
	})
	if err := crClient(t).Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the volumes deleted with the cluster", 3*time.Minute, func() (bool, string) {
		vols := pvcUIDs(t, ns, "main")
		return len(vols) == 0, fmt.Sprintf("%d volumes left", len(vols))
	})
}

// testVolumeCannotGrow (issue 13 f): a larger storage.size on the local
// StorageClass, which cannot expand volumes, is said (Stalled,
// VolumeExpansionUnsupported) and breaks nothing.
func testVolumeCannotGrow(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "etcd-grow")
	newEtcdCluster(t, ns, "main", 3)
	before := waitHealthy(t, ns, "main", 3, 4*time.Minute)
	w := startWriter(t, ns, "main")
	bigger := resource.MustParse("16Gi")
	updateCluster(t, ns, "main", func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Storage.Size = &bigger })
	eventually(t, "Stalled: VolumeExpansionUnsupported", 2*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		s := meta.FindStatusCondition(c.Status.Conditions, "Stalled")
		return s != nil && s.Reason == "VolumeExpansionUnsupported", conditionSummary(c)
	})
	time.Sleep(10 * time.Second)
	c := getCluster(t, ns, "main")
	if !meta.IsStatusConditionTrue(c.Status.Conditions, quorumv1alpha1.ConditionAvailable) || ids(c) != ids(before) {
		t.Fatalf("a volume that cannot grow changed the cluster: %s; %s", ids(c), conditionSummary(c))
	}
	w.check(t)
}

// testNoSpaceRecovery (issue 13 a): quotaBackendBytes 64Mi and a client
// overwriting one key with 1 MiB values until etcd answers "database space
// exceeded": the operator compacts, defragments and disarms, writes are
// accepted again, no acknowledged write is lost.
func testNoSpaceRecovery(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "etcd-nospace")
	quota := resource.MustParse("64Mi")
	newEtcdCluster(t, ns, "main", 3, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Maintenance.QuotaBackendBytes = &quota })
	waitHealthy(t, ns, "main", 3, 4*time.Minute)
	w := startWriter(t, ns, "main")
	full := fillUntilNoSpace(t, ns, "/big", false)
	took := waitWritesAccepted(t, ns)
	c := getCluster(t, ns, "main")
	t.Logf("NOSPACE after %d writes of 1 MiB; writes accepted again %s later; %s", full, took.Round(100*time.Millisecond), describeHousekeeping(c))
	if c.Status.LastCompaction == nil || c.Status.LastDefrag == nil {
		t.Fatalf("recovered without a recorded compaction and defragmentation: %+v %+v", c.Status.LastCompaction, c.Status.LastDefrag)
	}
	w.check(t)
}

// testNoSpaceLiveData (issue 13 b): the quota filled with live keys: the
// alarm says the space is live data; raising the quota clears it.
func testNoSpaceLiveData(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "etcd-livedata")
	quota := resource.MustParse("64Mi")
	newEtcdCluster(t, ns, "main", 3, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Maintenance.QuotaBackendBytes = &quota })
	waitHealthy(t, ns, "main", 3, 4*time.Minute)
	// Live keys until the quota is full of them: while the operator can
	// still free room (bbolt's own overhead) it does and disarms, and the
	// next keys fill it again; bounded to 8 rounds.
	live := false
	for round := 0; round < 8 && !live; round++ {
		var compacted int64
		if lc := getCluster(t, ns, "main").Status.LastCompaction; lc != nil {
			compacted = lc.Revision
		}
		n := fillUntilNoSpace(t, ns, fmt.Sprintf("/live/%d/", round), true)
		eventually(t, "NOSPACE recovered, or said to be live data", 3*time.Minute, func() (bool, string) {
			c := getCluster(t, ns, "main")
			cond := meta.FindStatusCondition(c.Status.Conditions, quorumv1alpha1.ConditionAlarmActive)
			live = cond != nil && cond.Reason == "NoSpaceLiveData"
			// A round that wrote nothing (its first write met an alarm a
			// member raised late, after the disarm) has nothing to compact.
			compactedAgain := n == 0 || (c.Status.LastCompaction != nil && c.Status.LastCompaction.Revision > compacted)
			recovered := cond != nil && cond.Status == metav1.ConditionFalse && compactedAgain
			return live || recovered, conditionSummary(c)
		})
		c := getCluster(t, ns, "main")
		t.Logf("round %d: NOSPACE after %d new keys of 1 MiB; %s; %s", round, n, describeHousekeeping(c), conditionSummary(c))
	}
	if !live {
		t.Fatal("eight rounds of live keys never left the quota full of live data")
	}
	bigger := resource.MustParse("256Mi")
	updateCluster(t, ns, "main", func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Maintenance.QuotaBackendBytes = &bigger })
	start := time.Now()
	eventually(t, "the alarm cleared once the quota was raised", 6*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		return meta.IsStatusConditionFalse(c.Status.Conditions, quorumv1alpha1.ConditionAlarmActive), conditionSummary(c)
	})
	t.Logf("quota raised to 256Mi: alarm cleared %s later (members restarted one at a time)", time.Since(start).Round(100*time.Millisecond))
	cl := etcdClient(t, ns, "main")
	defer func() { _ = cl.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Put(ctx, "/after", "ok"); err != nil {
		t.Fatalf("a write after the quota was raised: %v", err)
	}
}

// fillUntilNoSpace writes 1 MiB values (to one key, or to new keys when
// distinct) until etcd answers "database space exceeded", and returns how
// many writes it took. Bounded: at most 400 writes.
func fillUntilNoSpace(t *testing.T, ns, key string, distinct bool) int {
	t.Helper()
	cl := etcdClient(t, ns, "main")
	defer func() { _ = cl.Close() }()
	value := strings.Repeat("x", 1<<20)
	for i := 0; i < 400; i++ {
		k := key
		if distinct {
			k = fmt.Sprintf("%s%04d", key, i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cl.Put(ctx, k, value)
		cancel()
		if err != nil && strings.Contains(err.Error(), "database space exceeded") {
			return i
		}
	}
	t.Fatal("400 writes of 1 MiB never filled a 64Mi quota")
	return 0
}

func describeHousekeeping(c *quorumv1alpha1.EtcdCluster) string {
	out := ""
	if lc := c.Status.LastCompaction; lc != nil {
		out += fmt.Sprintf("compacted to revision %d", lc.Revision)
	}
	if ld := c.Status.LastDefrag; ld != nil {
		out += fmt.Sprintf("; last defragmentation (%s) gave back %d bytes", ld.Member, ld.ReclaimedBytes)
	}
	return out
}

// waitWritesAccepted waits (bounded: 5 min) until a write to the cluster
// succeeds again after NOSPACE, and returns how long that took.
func waitWritesAccepted(t *testing.T, ns string) time.Duration {
	t.Helper()
	start := time.Now()
	cl := etcdClient(t, ns, "main")
	defer func() { _ = cl.Close() }()
	eventually(t, "writes accepted again", 5*time.Minute, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := cl.Put(ctx, "/after-nospace", "ok")
		return err == nil, fmt.Sprint(err)
	})
	return time.Since(start)
}

// namespaceNodeLabel labels every node with a label of ns's own, removed
// when the test ends, for a cluster whose nodeSelector asks for it; the
// returned function puts the label on (true) or takes it off a node.
func namespaceNodeLabel(t *testing.T, ns string) (string, func(node string, on bool)) {
	t.Helper()
	label := "e2e.quorum.dev/" + ns
	setLabel := func(node string, on bool) {
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, label)
		if on {
			patch = fmt.Sprintf(`{"metadata":{"labels":{%q:"ok"}}}`, label)
		}
		if _, err := kube.CoreV1().Nodes().Patch(context.Background(), node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range cluster.Nodes {
		setLabel(n.Name, true)
		t.Cleanup(func() { setLabel(n.Name, false) })
	}
	return label, setLabel
}
