package main

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

func TestParse(t *testing.T) {
	o, err := parse([]string{"restore", "-n", "tenant", "--from=nightly", "new", "--replicas", "3", "--wait", "0"})
	if err != nil {
		t.Fatal(err)
	}
	if o.namespace != "tenant" || o.from != "nightly" || o.replicas != 3 || o.wait != 0 || strings.Join(o.args, " ") != "restore new" {
		t.Fatalf("parsed %+v", o)
	}
	if o, _ := parse([]string{"defrag", "main"}); o.wait != -1 {
		t.Fatalf("no --wait: %v, want -1 (the command's own default)", o.wait)
	}
	if o, err := parse([]string{"join-command", "tenant", "--ttl", "2h", "--server", "https://10.0.0.1:6443"}); err != nil || o.ttl != 2*time.Hour || o.server != "https://10.0.0.1:6443" {
		t.Fatalf("join-command flags: %+v %v", o, err)
	}
	for _, bad := range [][]string{{"status", "--namespace"}, {"status", "--replicas", "two"}, {"status", "--wait", "soon"}, {"status", "--frobnicate", "x"}, {"join-command", "x", "--ttl", "0s"}} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}

func TestKindAndName(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		kind, name string
		fails      bool
	}{
		{[]string{"main"}, "etcdcluster", "main", false},
		{[]string{"controlplane", "tenant"}, "controlplane", "tenant", false},
		{[]string{"ControlPlanes/tenant"}, "controlplane", "tenant", false},
		{[]string{"pods", "x"}, "", "", true},
		{[]string{"pod/x"}, "", "", true},
		{nil, "", "", true},
	} {
		kind, name, err := kindAndName(tc.args, "etcdcluster", "controlplane")
		if (err != nil) != tc.fails || kind != tc.kind || name != tc.name {
			t.Errorf("kindAndName(%q) = %q %q %v", tc.args, kind, name, err)
		}
	}
}

// TestRenderEtcdCluster: the one screen says who leads, which member is
// down and why the cluster is not ready, the alarm, the first certificate
// to expire and the newest snapshot of the cluster's backups.
func TestRenderEtcdCluster(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(d)) }
	three := int32(3)
	c := &quorumv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "main", Generation: 2},
		Spec:       quorumv1alpha1.EtcdClusterSpec{Replicas: &three},
		Status: quorumv1alpha1.EtcdClusterStatus{
			Version: "3.6.16", Leader: "main-a", ClusterID: "c0ffee",
			Members: []quorumv1alpha1.MemberStatus{
				{Name: "main-a", ID: "a1", Zone: "zone-a", Role: quorumv1alpha1.RoleLeader, Healthy: true, DBSizeBytes: 3 << 20},
				{Name: "main-b", ID: "b2", Zone: "zone-b", Role: quorumv1alpha1.RoleFollower, Healthy: true},
				{Name: "main-c", ID: "c3", Zone: "zone-c", Role: quorumv1alpha1.RoleFollower},
			},
			Alarms:       []quorumv1alpha1.AlarmStatus{{Member: "main-b", Alarm: "NOSPACE"}},
			Certificates: []quorumv1alpha1.CertificateStatus{{Name: "ca", NotAfter: at(3650 * 24 * time.Hour)}, {Name: "main-b", NotAfter: at(30 * time.Hour)}},
			Conditions: []metav1.Condition{
				{Type: "Ready", Status: metav1.ConditionFalse, Reason: "MemberUnhealthy", Message: "main-c does not answer", ObservedGeneration: 2},
				{Type: "Degraded", Status: metav1.ConditionTrue, Reason: "MemberUnhealthy", Message: "main-c does not answer", ObservedGeneration: 2},
				{Type: "Available", Status: metav1.ConditionTrue, Reason: "QuorumHealthy", ObservedGeneration: 2},
			},
		},
	}
	backups := []quorumv1alpha1.EtcdBackup{
		{ObjectMeta: metav1.ObjectMeta{Name: "nightly"}, Spec: quorumv1alpha1.EtcdBackupSpec{EtcdClusterRef: &quorumv1alpha1.LocalObjectReference{Name: "main"}},
			Status: quorumv1alpha1.EtcdBackupStatus{Snapshots: []quorumv1alpha1.Snapshot{
				{Name: "old", TakenAt: at(-30 * time.Hour), Revision: 10, Location: "s3://b/old"},
				{Name: "new", TakenAt: at(-6 * time.Hour), Revision: 99, SizeBytes: 2 << 20, Location: "s3://b/new"},
			}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: quorumv1alpha1.EtcdBackupSpec{EtcdClusterRef: &quorumv1alpha1.LocalObjectReference{Name: "elsewhere"}},
			Status: quorumv1alpha1.EtcdBackupStatus{Snapshots: []quorumv1alpha1.Snapshot{{Name: "x", TakenAt: at(-time.Minute), Location: "s3://b/x"}}}},
	}
	out := renderEtcdCluster(c, backups, now)
	for _, want := range []string{
		"EtcdCluster tenant/main  etcd 3.6.16  2 of 3 voters healthy  leader main-a  cluster ID c0ffee",
		"Ready: False (MemberUnhealthy) main-c does not answer",
		"Degraded=True (MemberUnhealthy)",
		"alarm: NOSPACE on main-b",
		"the first to expire is main-b on 2026-11-27T18:00:00Z (in 30h0m0s)",
		"last backup: 6h0m0s ago by EtcdBackup nightly, revision 99, 2.0 MiB, s3://b/new",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the status screen does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Available=") || strings.Contains(out, "s3://b/x") {
		t.Errorf("a healthy condition or another cluster's backup is on the screen:\n%s", out)
	}
	for _, m := range []string{"main-a  a1  zone-a  leader    yes", "main-c  c3  zone-c  follower  no"} {
		if !strings.Contains(out, m) {
			t.Errorf("no member line %q:\n%s", m, out)
		}
	}
}
