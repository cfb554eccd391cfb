package etcdcluster

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/testenv"
)

// kstatusOf is what kstatus reads from c with status st.
func kstatusOf(t *testing.T, c *quorumv1alpha1.EtcdCluster, st quorumv1alpha1.EtcdClusterStatus) kstatus.Status {
	t.Helper()
	obj := c.DeepCopy()
	obj.Status = st
	obj.Generation = 1
	return testenv.Kstatus(t, obj)
}

// TestKstatus: the phases of an EtcdCluster as GitOps tools must read
// them: in progress while built or repaired, current when healthy and as
// asked, failed when only a person can help.
func TestKstatus(t *testing.T) {
	gen := func(c *quorumv1alpha1.EtcdCluster) { c.Generation = 1 }
	for _, tc := range []struct {
		name string
		s    *scope
		want kstatus.Status
	}{
		{"bootstrapping",
			func() *scope {
				s := scopeOf(cluster(3, gen, func(c *quorumv1alpha1.EtcdCluster) { c.Status.ClusterID = "" }))
				s.listed = false
				return s
			}(), kstatus.InProgressStatus},
		{"one voter of three, growing", scopeOf(cluster(3, gen), member("m-a", "a", 1, leader)), kstatus.InProgressStatus},
		{"healthy and as asked", scopeOf(cluster(3, gen), three()...), kstatus.CurrentStatus},
		{"a member down: degraded, being repaired",
			scopeOf(cluster(3, gen, unhealthyInStatus("m-c", now.Add(-20*time.Second))), three(map[string][]func(*memberState){"m-c": {nodeDown}})...), kstatus.InProgressStatus},
		{"a refused downgrade", scopeOf(cluster(3, gen, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Version = "3.5.21" }), three()...), kstatus.FailedStatus},
		{"an upgrade rolling", withPreflight(scopeOf(cluster(3, gen, func(c *quorumv1alpha1.EtcdCluster) { c.Spec.Version = "3.7.0" }), three()...), "3.7.0", corev1.ContainerStatus{}, corev1.PodSucceeded), kstatus.InProgressStatus},
		{"the operator's certificate refused",
			func() *scope {
				s := scopeOf(cluster(3, gen), three(map[string][]func(*memberState){"m-a": {rejected}, "m-b": {rejected}, "m-c": {rejected}})...)
				s.access = access{reason: "ClientCredentialsRejected", message: "refused"}
				return s
			}(), kstatus.FailedStatus},
		{"NOSPACE, being recovered", func() *scope {
			s := scopeOf(cluster(3, gen), three()...)
			s.alarms = []etcd.Alarm{{MemberID: 1, Type: "NOSPACE"}}
			return s
		}(), kstatus.InProgressStatus},
		{"NOSPACE held by live data", noSpace(cluster(3, gen, compactedAt(500, "m-a", "m-b", "m-c")), 1900<<20, 1900<<20, 500), kstatus.FailedStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.s)
			st := computeStatus(tc.s.cluster, tc.s, a, now)
			if got := kstatusOf(t, tc.s.cluster, st); got != tc.want {
				t.Fatalf("kstatus = %s, want %s (action %s %s; conditions %+v)", got, tc.want, a.kind, a.reason, st.Conditions)
			}
		})
	}
	// Bad input (a missing TLS Secret): failed.
	c := cluster(3, gen)
	st := computeStatus(c, nil, action{kind: actWait, reason: "SecretNotFound", message: "the TLS Secret x does not exist"}, now)
	if got := kstatusOf(t, c, st); got != kstatus.FailedStatus {
		t.Fatalf("bad input: kstatus = %s, want Failed", got)
	}
}
