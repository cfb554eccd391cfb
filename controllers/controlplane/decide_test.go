package controlplane

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
)

var cpNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// rep is a ready, current replica of version v1.36.3 in zone z.
func rep(name, zone string, opts ...func(*replicaState)) *replicaState {
	r := &replicaState{
		Name: name, Zone: zone, Version: "v1.36.3", Hash: "current", Pod: &corev1.Pod{},
		Ready: true, NodeReady: true, Created: cpNow.Add(-time.Hour), UnreadySince: cpNow.Add(-time.Hour),
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

func unready(since time.Duration) func(*replicaState) {
	return func(r *replicaState) { r.Ready = false; r.UnreadySince = cpNow.Add(-since) }
}
func outdatedAt(v string) func(*replicaState) {
	return func(r *replicaState) { r.Version = v; r.Hash = "old" }
}
func onDownNode(r *replicaState)  { r.NodeReady = false; r.Ready = false }
func terminating(r *replicaState) { r.Terminating = true }

func scopeOf(replicas int32, mutate func(*scope), rs ...*replicaState) *scope {
	cp := testControlPlane()
	cp.Spec.Replicas = ptr.To(replicas)
	cp.Spec.Zones = quorumv1alpha1.Zones{"zone-a", "zone-b", "zone-c"}
	s := &scope{
		cp: cp, now: cpNow, replicas: rs,
		readyZones: map[string]bool{"zone-a": true, "zone-b": true, "zone-c": true},
		etcd:       etcdState{available: true},
		hash:       "current",
	}
	s.version, s.versionRefused = s.targetVersion()
	if mutate != nil {
		mutate(s)
	}
	return s
}

func TestDecideControlPlane(t *testing.T) {
	leaderIs := func(name string) func(*scope) {
		return func(s *scope) {
			s.leaders = quorumv1alpha1.ControlPlaneLeaders{ControllerManager: name, Scheduler: name}
		}
	}
	stacked := func(s *scope) { s.stacked = true }
	cases := []struct {
		name    string
		s       *scope
		kind    actionKind
		replica string
		zone    string
		reason  string
	}{
		{"healthy does nothing", scopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c")), actNone, "", "", ""},
		{"bootstrap waits for etcd", scopeOf(3, func(s *scope) { s.etcd = etcdState{message: "EtcdCluster x does not exist"} }), actWait, "", "", reasonWaitEtcd},
		{"bootstrap creates in the first zone", scopeOf(3, nil), actCreate, "", "zone-a", reasonBootstrap},
		{"bootstrap creates the rest at once", scopeOf(3, nil, rep("a", "zone-a", unready(5*time.Second))), actCreate, "", "zone-b", reasonScaleUp},
		{"scale up waits for the new replica", scopeOf(5, nil, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c"), rep("d", "zone-a", unready(5*time.Second))), actWait, "", "", reasonWaitReady},
		{"scale up to the emptiest zone", scopeOf(5, nil, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c"), rep("d", "zone-a")), actCreate, "", "zone-b", reasonScaleUp},
		{"scale down from the fullest zone", scopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c"), rep("d", "zone-a"), rep("e", "zone-b")), actDelete, "a", "zone-a", reasonScaleDown},
		{"scale down spares the leader", scopeOf(3, leaderIs("a"), rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c"), rep("d", "zone-a"), rep("e", "zone-b")), actDelete, "d", "zone-a", reasonScaleDown},
		{"unready past unhealthyAfter is replaced", scopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b", unready(2*time.Minute)), rep("c", "zone-c")), actDelete, "b", "zone-b", reasonReplace},
		{"unready within unhealthyAfter waits", scopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b", unready(10*time.Second)), rep("c", "zone-c")), actNone, "", "", ""},
		{"NotReady node is replaced at once", scopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b", onDownNode), rep("c", "zone-c")), actDelete, "b", "zone-b", reasonReplace},
		{"a replica stuck terminating on a dead node is forced", scopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b", onDownNode, terminating), rep("c", "zone-c")), actDelete, "b", "zone-b", reasonReplace},
		{"a terminating replica is waited for", scopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b", terminating), rep("c", "zone-c")), actWait, "", "", reasonWaitReady},
		{"a replacement goes back to its zone", scopeOf(3, nil, rep("a", "zone-a"), rep("c", "zone-c")), actCreate, "", "zone-b", reasonScaleUp},
		{"no replacement when autoReplace is off", scopeOf(3, func(s *scope) { s.cp.Spec.FailurePolicy.AutoReplace = ptr.To(false) }, rep("a", "zone-a"), rep("b", "zone-b", onDownNode), rep("c", "zone-c")), actNone, "", "", ""},
		{"upgrade adds one replica at the new version first", scopeOf(3, leaderIs("a"), rep("a", "zone-a", outdatedAt("v1.35.4")), rep("b", "zone-b", outdatedAt("v1.35.4")), rep("c", "zone-c", outdatedAt("v1.35.4"))), actCreate, "", "zone-b", reasonUpgrade},
		{"upgrade removes an old replica once the new is ready", scopeOf(3, leaderIs("a"), rep("a", "zone-a", outdatedAt("v1.35.4")), rep("b", "zone-b", outdatedAt("v1.35.4")), rep("c", "zone-c", outdatedAt("v1.35.4")), rep("n", "zone-b")), actDelete, "b", "zone-b", reasonUpgrade},
		{"upgrade waits while the new replica is not ready", scopeOf(3, nil, rep("a", "zone-a", outdatedAt("v1.35.4")), rep("b", "zone-b", outdatedAt("v1.35.4")), rep("c", "zone-c", outdatedAt("v1.35.4")), rep("n", "zone-b", unready(time.Second))), actWait, "", "", reasonWaitReady},
		{"the leader is rolled last", scopeOf(3, leaderIs("a"), rep("a", "zone-a", outdatedAt("v1.35.4")), rep("b", "zone-b"), rep("c", "zone-c")), actCreate, "", "zone-a", reasonUpgrade},
		{"a changed template rolls at the same version", scopeOf(3, nil, rep("a", "zone-a", func(r *replicaState) { r.Hash = "old" }), rep("b", "zone-b"), rep("c", "zone-c")), actCreate, "", "zone-a", reasonRoll},
		{"stacked: healthy does nothing", scopeOf(3, stacked, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c")), actNone, "", "", ""},
		{"stacked: waits while the EtcdCluster changes", scopeOf(3, func(s *scope) { s.stacked = true; s.etcd.busy = true }, rep("a", "zone-a", outdatedAt("v1.35.4")), rep("b", "zone-b"), rep("c", "zone-c")), actWait, "", "", reasonWaitEtcdOp},
		{"stacked: rolls by restarting a member's pod", scopeOf(3, stacked, rep("a", "zone-a", outdatedAt("v1.35.4")), rep("b", "zone-b", outdatedAt("v1.35.4")), rep("c", "zone-c", outdatedAt("v1.35.4"))), actDelete, "a", "zone-a", reasonUpgrade},
		{"stacked: restarts an apiserver unready past unhealthyAfter", scopeOf(3, stacked, rep("a", "zone-a"), rep("b", "zone-b", unready(2*time.Minute)), rep("c", "zone-c")), actDelete, "b", "zone-b", reasonReplace},
		{"stacked: never restarts a second unready member", scopeOf(3, stacked, rep("a", "zone-a", unready(5*time.Second)), rep("b", "zone-b", unready(2*time.Minute)), rep("c", "zone-c")), actWait, "", "", reasonWaitReady},
		{"stacked: a lost node is the EtcdCluster's to replace", scopeOf(3, stacked, rep("a", "zone-a"), rep("b", "zone-b", onDownNode), rep("c", "zone-c")), actNone, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.s)
			if a.kind != tc.kind || a.replica != tc.replica || (tc.zone != "" && a.zone != tc.zone) || (tc.reason != "" && a.reason != tc.reason) {
				t.Errorf("got %s replica=%q zone=%q reason=%q (%s), want %s replica=%q zone=%q reason=%q",
					a.kind, a.replica, a.zone, a.reason, a.message, tc.kind, tc.replica, tc.zone, tc.reason)
			}
		})
	}
}

// A refused version step keeps new replicas at the running version.
func TestRefusedVersionKeepsTheRunningOne(t *testing.T) {
	s := scopeOf(3, nil, rep("a", "zone-a", outdatedAt("v1.34.2")))
	if s.version != "v1.34.2" || !strings.Contains(s.versionRefused, "one minor version at a time") {
		t.Errorf("target %s refused %q", s.version, s.versionRefused)
	}
}

func TestControlPlaneStatus(t *testing.T) {
	s := scopeOf(3, func(s *scope) {
		s.leaders = quorumv1alpha1.ControlPlaneLeaders{ControllerManager: "a", Scheduler: "b"}
	}, rep("a", "zone-a"), rep("b", "zone-b", unready(5*time.Second)), rep("c", "zone-c", outdatedAt("v1.35.4")))
	st := computeStatus(s, decide(s))
	if st.Replicas != 3 || st.ReadyReplicas != 2 || st.UpdatedReplicas != 2 || st.Version != "v1.35.4" {
		t.Errorf("counts: %+v", st)
	}
	if st.Leaders.ControllerManager != "a" || st.Endpoint != "https://api.tenant.example.com:443" || st.KubeconfigSecretRef.Name != "tenant-admin-kubeconfig" {
		t.Errorf("status: %+v", st)
	}
	for _, c := range []struct{ t, status, reason string }{
		{quorumv1alpha1.ConditionAvailable, "True", "ReplicasReady"},
		{quorumv1alpha1.ConditionDegraded, "True", "ReplicasNotReady"},
		{quorumv1alpha1.ConditionEtcdAvailable, "True", ""},
	} {
		got := meta.FindStatusCondition(st.Conditions, c.t)
		if got == nil || string(got.Status) != c.status || (c.reason != "" && got.Reason != c.reason) {
			t.Errorf("%s = %+v, want %s %s", c.t, got, c.status, c.reason)
		}
	}
}

// TestNotReadyUntilHostedRBAC: every apiserver ready is not Ready while
// the admin credential's binding could not be made in the hosted cluster.
func TestNotReadyUntilHostedRBAC(t *testing.T) {
	s := scopeOf(3, func(s *scope) {
		s.hostedPending = "context deadline exceeded"
	}, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c"))
	st := computeStatus(s, decide(s))
	if c := meta.FindStatusCondition(st.Conditions, quorumv1alpha1.ConditionAvailable); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Available = %+v, want True", c)
	}
	ready := meta.FindStatusCondition(st.Conditions, reconciler.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != reasonHostedPending || !strings.Contains(ready.Message, "context deadline exceeded") {
		t.Errorf("Ready = %+v, want False %s", ready, reasonHostedPending)
	}
	s.hostedPending = ""
	st = computeStatus(s, decide(s))
	if !meta.IsStatusConditionTrue(st.Conditions, reconciler.ConditionReady) {
		t.Errorf("with the RBAC made, Ready = %+v", meta.FindStatusCondition(st.Conditions, reconciler.ConditionReady))
	}
}

// TestRemediationLimits: replicas are replaced only while etcd is
// available, one at a time, retryPeriod apart, and at most maxRetries times
// in a row within minHealthyPeriod; a new replica gets startTimeout.
func TestRemediationLimits(t *testing.T) {
	remediated := func(ago time.Duration, retries int32) func(*scope) {
		return func(s *scope) {
			s.cp.Status.LastRemediation = &quorumv1alpha1.RemediationStatus{Replica: "old", Time: metav1.NewTime(cpNow.Add(-ago)), RetryCount: retries}
		}
	}
	etcdDown := func(s *scope) {
		s.etcd = etcdState{reason: "EtcdClusterUnavailable", message: "EtcdCluster main is not available"}
	}
	young := func(r *replicaState) {
		r.Created = cpNow.Add(-time.Minute)
		r.UnreadySince = r.Created
		r.Ready = false
	}
	for _, tc := range []struct {
		name   string
		s      *scope
		kind   actionKind
		reason string
	}{
		{"etcd down: every apiserver unready, none replaced",
			scopeOf(3, etcdDown, rep("a", "zone-a", unready(5*time.Minute)), rep("b", "zone-b", unready(5*time.Minute)), rep("c", "zone-c", unready(5*time.Minute))),
			actWait, reasonWaitEtcd},
		{"etcd down, one stacked apiserver unready: not restarted",
			scopeOf(3, func(s *scope) { etcdDown(s); s.stacked = true }, rep("a", "zone-a"), rep("b", "zone-b", unready(5*time.Minute)), rep("c", "zone-c")),
			actWait, reasonWaitEtcd},
		{"etcd down but a node lost: its replica still goes (Kubernetes' fact, not etcd's)",
			scopeOf(3, etcdDown, rep("a", "zone-a"), rep("b", "zone-b", onDownNode), rep("c", "zone-c")),
			actDelete, reasonReplace},
		{"a second failed replica waits for the first one's replacement to exist",
			scopeOf(3, remediated(time.Hour*2, 0), rep("a", "zone-a", onDownNode), rep("c", "zone-c")),
			actCreate, reasonScaleUp},
		{"a second failed replica waits while the replacement starts",
			scopeOf(3, remediated(2*time.Hour, 0), rep("a", "zone-a", onDownNode), rep("b", "zone-b", young), rep("c", "zone-c")),
			actWait, reasonWaitReady},
		{"within retryPeriod of the last replacement: wait",
			scopeOf(3, remediated(10*time.Second, 0), rep("a", "zone-a", onDownNode), rep("b", "zone-b"), rep("c", "zone-c")),
			actWait, reasonWaitReady},
		{"maxRetries replacements failed again within minHealthyPeriod: stop",
			scopeOf(3, remediated(10*time.Minute, 3), rep("a", "zone-a", unready(10*time.Minute)), rep("b", "zone-b"), rep("c", "zone-c")),
			actWait, reasonRemediationLimit},
		{"after minHealthyPeriod the count starts again",
			scopeOf(3, remediated(2*time.Hour, 3), rep("a", "zone-a", unready(10*time.Minute)), rep("b", "zone-b"), rep("c", "zone-c")),
			actDelete, reasonReplace},
		{"a new replica is given startTimeout before it counts as unready",
			scopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b", young), rep("c", "zone-c")),
			actNone, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.s)
			if a.kind != tc.kind || (tc.reason != "" && a.reason != tc.reason) {
				t.Fatalf("got %s %s (%s), want %s %s", a.kind, a.reason, a.message, tc.kind, tc.reason)
			}
		})
	}

	// The limit is reported as Degraded.
	s := scopeOf(3, remediated(10*time.Minute, 3), rep("a", "zone-a", unready(10*time.Minute)), rep("b", "zone-b"), rep("c", "zone-c"))
	st := computeStatus(s, decide(s))
	if c := meta.FindStatusCondition(st.Conditions, quorumv1alpha1.ConditionDegraded); c == nil || c.Reason != reasonRemediationLimit {
		t.Fatalf("Degraded = %+v, want reason %s", c, reasonRemediationLimit)
	}
}

// TestOneControlPlanePerEtcdCluster: the oldest ControlPlane referencing an
// EtcdCluster (or the one stacking it) holds it; the others are refused.
func TestOneControlPlanePerEtcdCluster(t *testing.T) {
	at := func(name string, mins int, ref string) quorumv1alpha1.ControlPlane {
		cp := quorumv1alpha1.ControlPlane{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(cpNow.Add(time.Duration(mins) * time.Minute))}}
		if ref == "" {
			cp.Spec.Etcd.Stacked = &quorumv1alpha1.StackedEtcd{}
		} else {
			cp.Spec.Etcd.ClusterRef = &quorumv1alpha1.LocalObjectReference{Name: ref}
		}
		return cp
	}
	cps := []quorumv1alpha1.ControlPlane{at("second", 5, "main"), at("first", 1, "main"), at("other", 0, "spare"), at("tenant", 9, "")}
	for _, tc := range []struct{ self, ec, want string }{
		{"first", "main", ""},
		{"second", "main", "first"},
		{"other", "spare", ""},
		{"late", "tenant-etcd", "tenant"},
	} {
		if got := holderOf(cps, tc.ec, tc.self); got != tc.want {
			t.Errorf("holder of %s for %s = %q, want %q", tc.ec, tc.self, got, tc.want)
		}
	}
}

// TestCreationExpectations: a replica this process created is waited for
// until the cache shows it (or cacheLag passes), so a stale cache never
// makes a second one.
func TestCreationExpectations(t *testing.T) {
	r := &Reconciler{}
	s := scopeOf(3, nil, rep("a", "zone-a"))
	r.created.Store(client.ObjectKeyFromObject(s.cp), creation{name: "b", at: cpNow.Add(-5 * time.Second)})
	if got := r.unseenCreation(s); got != "b" {
		t.Fatalf("unseen creation = %q, want b", got)
	}
	s.replicas = append(s.replicas, rep("b", "zone-b"))
	if got := r.unseenCreation(s); got != "" {
		t.Fatalf("unseen creation = %q once the cache shows it", got)
	}
	r.created.Store(client.ObjectKeyFromObject(s.cp), creation{name: "c", at: cpNow.Add(-2 * cacheLag)})
	if got := r.unseenCreation(s); got != "" {
		t.Fatalf("unseen creation = %q after cacheLag", got)
	}
}

// TestStackedEtcdFollowsDeletionPolicy: a stacked control plane's
// EtcdCluster gets the control plane's deletionPolicy.
func TestStackedEtcdFollowsDeletionPolicy(t *testing.T) {
	cp := testControlPlane()
	cp.Spec.Etcd = quorumv1alpha1.ControlPlaneEtcd{Stacked: &quorumv1alpha1.StackedEtcd{}}
	for _, p := range []quorumv1alpha1.DeletionPolicy{quorumv1alpha1.DeletionRetain, quorumv1alpha1.DeletionDelete} {
		cp.Spec.DeletionPolicy = p
		if got := resources.StackedEtcdCluster(cp).Spec.DeletionPolicy; got != p {
			t.Fatalf("stacked EtcdCluster deletionPolicy %q, want %q", got, p)
		}
	}
}

// TestControlPlaneCARotationDecisions: a new rotate-ca value starts a
// rotation only with every replica ready and current; a phase moves on
// once every replica runs it; a CA near its end with no rotation under way
// is said in CertificatesExpiring.
func TestControlPlaneCARotationDecisions(t *testing.T) {
	asked := func(s *scope) {
		s.cp.Annotations = map[string]string{reconciler.AnnotationRotateCA: "2"}
		s.rotation.Trigger = "1"
		s.caNotAfter = cpNow.Add(10 * 365 * 24 * time.Hour)
	}
	if a := decide(scopeOf(3, asked, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c"))); a.kind != actStartCARotation {
		t.Fatalf("asked, replicas settled: %s (%s)", a.kind, a.message)
	}
	if a := decide(scopeOf(3, asked, rep("a", "zone-a"), rep("b", "zone-b", unready(5*time.Second)), rep("c", "zone-c"))); a.kind == actStartCARotation {
		t.Fatal("a rotation started with a replica not ready")
	}
	inPhase := func(s *scope) {
		s.rotation.Phase = quorumv1alpha1.CARotationTrustBoth
		s.caNotAfter = cpNow.Add(10 * 365 * 24 * time.Hour)
	}
	if a := decide(scopeOf(3, inPhase, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c", outdatedAt("v1.36.3")))); a.kind == actAdvanceCARotation {
		t.Fatal("a phase moved on with a replica not running it")
	}
	if a := decide(scopeOf(3, inPhase, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c"))); a.kind != actAdvanceCARotation {
		t.Fatalf("every replica runs the phase: %s (%s)", a.kind, a.message)
	}
	nearEnd := func(s *scope) { s.caNotAfter = cpNow.Add(200 * 24 * time.Hour) }
	s := scopeOf(3, nearEnd, rep("a", "zone-a"), rep("b", "zone-b", unready(5*time.Second)), rep("c", "zone-c"))
	st := computeStatus(s, decide(s))
	if c := meta.FindStatusCondition(st.Conditions, quorumv1alpha1.ConditionCertificatesExpiring); c == nil || c.Status != metav1.ConditionTrue || c.Reason != "CAExpiring" {
		t.Fatalf("CertificatesExpiring %+v with the CA ending in 200 days and no rotation", c)
	}
	s = scopeOf(3, nearEnd, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c"))
	if a := decide(s); a.kind != actStartCARotation || !strings.Contains(a.message, "the cluster CA expires") {
		t.Fatalf("the CA ending in 200 days, replicas settled: %s (%s), want a rotation", a.kind, a.message)
	}
}

// TestShapeKeys: the new key is added last, then written with (first),
// then alone; the old key is never dropped before DropOld.
func TestShapeKeys(t *testing.T) {
	old, _ := resources.NewEncryptionKey("key-old")
	names := func(ks []resources.EncryptionKey) string {
		var out []string
		for _, k := range ks {
			out = append(out, k.Name)
		}
		return strings.Join(out, ",")
	}
	keys, err := shapeKeys([]resources.EncryptionKey{old}, keyPhaseAddKey, "key-new")
	if err != nil || names(keys) != "key-old,key-new" {
		t.Fatalf("AddKey: %s %v", names(keys), err)
	}
	again, _ := shapeKeys(keys, keyPhaseAddKey, "key-new")
	if names(again) != "key-old,key-new" || string(again[1].Secret) != string(keys[1].Secret) {
		t.Fatalf("AddKey again made another key: %s", names(again))
	}
	for _, phase := range []string{keyPhaseWriteNew, keyPhaseRewrite} {
		if got, err := shapeKeys(keys, phase, "key-new"); err != nil || names(got) != "key-new,key-old" {
			t.Fatalf("%s: %s %v", phase, names(got), err)
		}
	}
	if got, _ := shapeKeys(keys, keyPhaseDropOld, "key-new"); names(got) != "key-new" || string(got[0].Secret) != string(keys[1].Secret) {
		t.Fatalf("DropOld: %s", names(got))
	}
	if _, err := shapeKeys([]resources.EncryptionKey{old}, keyPhaseWriteNew, "key-new"); err == nil {
		t.Fatal("WriteNew without the new key made one: the apiservers could not read what it writes")
	}
	if got, _ := shapeKeys([]resources.EncryptionKey{old}, "", ""); names(got) != "key-old" {
		t.Fatalf("no rotation: %s", names(got))
	}
}
