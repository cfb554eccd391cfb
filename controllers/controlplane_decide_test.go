package controllers

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
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

func cpScopeOf(replicas int32, mutate func(*cpScope), rs ...*replicaState) *cpScope {
	cp := testControlPlane()
	cp.Spec.Replicas = ptr.To(replicas)
	cp.Spec.Zones = quorumv1alpha1.Zones{"zone-a", "zone-b", "zone-c"}
	s := &cpScope{
		cp: cp, now: cpNow, replicas: rs,
		readyZones: map[string]bool{"zone-a": true, "zone-b": true, "zone-c": true},
		etcd:       cpEtcd{available: true},
		hash:       "current",
	}
	s.version, s.versionRefused = targetVersion(cp, s.live())
	if mutate != nil {
		mutate(s)
	}
	return s
}

func TestDecideControlPlane(t *testing.T) {
	leaderIs := func(name string) func(*cpScope) {
		return func(s *cpScope) {
			s.leaders = quorumv1alpha1.ControlPlaneLeaders{ControllerManager: name, Scheduler: name}
		}
	}
	stacked := func(s *cpScope) { s.stacked = true }
	cases := []struct {
		name    string
		s       *cpScope
		kind    cpActionKind
		replica string
		zone    string
		reason  string
	}{
		{"healthy does nothing", cpScopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c")), cpNone, "", "", ""},
		{"bootstrap waits for etcd", cpScopeOf(3, func(s *cpScope) { s.etcd = cpEtcd{message: "EtcdCluster x does not exist"} }), cpWait, "", "", reasonWaitEtcd},
		{"bootstrap creates in the first zone", cpScopeOf(3, nil), cpCreate, "", "zone-a", reasonBootstrap},
		{"bootstrap creates the rest at once", cpScopeOf(3, nil, rep("a", "zone-a", unready(5*time.Second))), cpCreate, "", "zone-b", reasonScaleUp},
		{"scale up waits for the new replica", cpScopeOf(5, nil, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c"), rep("d", "zone-a", unready(5*time.Second))), cpWait, "", "", reasonWaitReady},
		{"scale up to the emptiest zone", cpScopeOf(5, nil, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c"), rep("d", "zone-a")), cpCreate, "", "zone-b", reasonScaleUp},
		{"scale down from the fullest zone", cpScopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c"), rep("d", "zone-a"), rep("e", "zone-b")), cpDelete, "a", "zone-a", reasonScaleDown},
		{"scale down spares the leader", cpScopeOf(3, leaderIs("a"), rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c"), rep("d", "zone-a"), rep("e", "zone-b")), cpDelete, "d", "zone-a", reasonScaleDown},
		{"unready past unhealthyAfter is replaced", cpScopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b", unready(2*time.Minute)), rep("c", "zone-c")), cpDelete, "b", "zone-b", reasonReplace},
		{"unready within unhealthyAfter waits", cpScopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b", unready(10*time.Second)), rep("c", "zone-c")), cpNone, "", "", ""},
		{"NotReady node is replaced at once", cpScopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b", onDownNode), rep("c", "zone-c")), cpDelete, "b", "zone-b", reasonReplace},
		{"a replica stuck terminating on a dead node is forced", cpScopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b", onDownNode, terminating), rep("c", "zone-c")), cpDelete, "b", "zone-b", reasonReplace},
		{"a terminating replica is waited for", cpScopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b", terminating), rep("c", "zone-c")), cpWait, "", "", reasonWaitReady},
		{"a replacement goes back to its zone", cpScopeOf(3, nil, rep("a", "zone-a"), rep("c", "zone-c")), cpCreate, "", "zone-b", reasonScaleUp},
		{"no replacement when autoReplace is off", cpScopeOf(3, func(s *cpScope) { s.cp.Spec.FailurePolicy.AutoReplace = ptr.To(false) }, rep("a", "zone-a"), rep("b", "zone-b", onDownNode), rep("c", "zone-c")), cpNone, "", "", ""},
		{"upgrade adds one replica at the new version first", cpScopeOf(3, leaderIs("a"), rep("a", "zone-a", outdatedAt("v1.35.4")), rep("b", "zone-b", outdatedAt("v1.35.4")), rep("c", "zone-c", outdatedAt("v1.35.4"))), cpCreate, "", "zone-b", reasonUpgrade},
		{"upgrade removes an old replica once the new is ready", cpScopeOf(3, leaderIs("a"), rep("a", "zone-a", outdatedAt("v1.35.4")), rep("b", "zone-b", outdatedAt("v1.35.4")), rep("c", "zone-c", outdatedAt("v1.35.4")), rep("n", "zone-b")), cpDelete, "b", "zone-b", reasonUpgrade},
		{"upgrade waits while the new replica is not ready", cpScopeOf(3, nil, rep("a", "zone-a", outdatedAt("v1.35.4")), rep("b", "zone-b", outdatedAt("v1.35.4")), rep("c", "zone-c", outdatedAt("v1.35.4")), rep("n", "zone-b", unready(time.Second))), cpWait, "", "", reasonWaitReady},
		{"the leader is rolled last", cpScopeOf(3, leaderIs("a"), rep("a", "zone-a", outdatedAt("v1.35.4")), rep("b", "zone-b"), rep("c", "zone-c")), cpCreate, "", "zone-a", reasonUpgrade},
		{"a changed template rolls at the same version", cpScopeOf(3, nil, rep("a", "zone-a", func(r *replicaState) { r.Hash = "old" }), rep("b", "zone-b"), rep("c", "zone-c")), cpCreate, "", "zone-a", reasonRoll},
		{"stacked: healthy does nothing", cpScopeOf(3, stacked, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c")), cpNone, "", "", ""},
		{"stacked: waits while the EtcdCluster changes", cpScopeOf(3, func(s *cpScope) { s.stacked = true; s.etcd.busy = true }, rep("a", "zone-a", outdatedAt("v1.35.4")), rep("b", "zone-b"), rep("c", "zone-c")), cpWait, "", "", reasonWaitEtcdOp},
		{"stacked: rolls by restarting a member's pod", cpScopeOf(3, stacked, rep("a", "zone-a", outdatedAt("v1.35.4")), rep("b", "zone-b", outdatedAt("v1.35.4")), rep("c", "zone-c", outdatedAt("v1.35.4"))), cpDelete, "a", "zone-a", reasonUpgrade},
		{"stacked: restarts an apiserver unready past unhealthyAfter", cpScopeOf(3, stacked, rep("a", "zone-a"), rep("b", "zone-b", unready(2*time.Minute)), rep("c", "zone-c")), cpDelete, "b", "zone-b", reasonReplace},
		{"stacked: never restarts a second unready member", cpScopeOf(3, stacked, rep("a", "zone-a", unready(5*time.Second)), rep("b", "zone-b", unready(2*time.Minute)), rep("c", "zone-c")), cpWait, "", "", reasonWaitReady},
		{"stacked: a lost node is the EtcdCluster's to replace", cpScopeOf(3, stacked, rep("a", "zone-a"), rep("b", "zone-b", onDownNode), rep("c", "zone-c")), cpNone, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := decideControlPlane(tc.s)
			if a.kind != tc.kind || a.replica != tc.replica || (tc.zone != "" && a.zone != tc.zone) || (tc.reason != "" && a.reason != tc.reason) {
				t.Errorf("got %s replica=%q zone=%q reason=%q (%s), want %s replica=%q zone=%q reason=%q",
					a.kind, a.replica, a.zone, a.reason, a.message, tc.kind, tc.replica, tc.zone, tc.reason)
			}
		})
	}
}

func TestKubernetesVersionStep(t *testing.T) {
	cases := []struct {
		from, to string
		refused  string
	}{
		{"v1.35.4", "v1.36.3", ""},
		{"v1.36.3", "v1.36.1", ""},
		{"v1.36.3", "v1.35.4", "older"},
		{"v1.34.0", "v1.36.3", "one minor version at a time"},
		{"v1.36.3", "v2.0.0", "major"},
	}
	for _, c := range cases {
		err := kubernetesVersionStep(c.from, c.to)
		if (err == nil) != (c.refused == "") || (err != nil && !strings.Contains(err.Error(), c.refused)) {
			t.Errorf("%s -> %s: %v, want refusal %q", c.from, c.to, err, c.refused)
		}
	}
	// A refused step keeps new replicas at the running version.
	s := cpScopeOf(3, nil, rep("a", "zone-a", outdatedAt("v1.34.2")))
	if s.version != "v1.34.2" || !strings.Contains(s.versionRefused, "one minor version at a time") {
		t.Errorf("target %s refused %q", s.version, s.versionRefused)
	}
}

func TestControlPlaneStatus(t *testing.T) {
	s := cpScopeOf(3, func(s *cpScope) {
		s.leaders = quorumv1alpha1.ControlPlaneLeaders{ControllerManager: "a", Scheduler: "b"}
	}, rep("a", "zone-a"), rep("b", "zone-b", unready(5*time.Second)), rep("c", "zone-c", outdatedAt("v1.35.4")))
	st := computeControlPlaneStatus(s, decideControlPlane(s))
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

func TestStackedBackupsRestoreTheirEtcdCluster(t *testing.T) {
	viaControlPlane := backupWith("cp-hourly", "ignored", 14)
	viaControlPlane.Spec.EtcdClusterRef = nil
	viaControlPlane.Spec.ControlPlaneRef = &quorumv1alpha1.LocalObjectReference{Name: "tenant"}
	backups := []quorumv1alpha1.EtcdBackup{backupWith("hourly", "tenant-etcd", 9), viaControlPlane, backupWith("other", "other", 16)}
	b, sn := newestSnapshotOf(backups, "tenant-etcd")
	if b == nil || b.Name != "cp-hourly" || sn.TakenAt.Hour() != 14 {
		t.Fatalf("newest snapshot of a stacked EtcdCluster = %v %v, want the ControlPlane backup's", b, sn)
	}
}
