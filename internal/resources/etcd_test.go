package resources

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// TestMemberPodDrains: a deleted member goes on serving while the nodes'
// kube-proxies drop it from the client Service, and is given the time to
// stop after that.
func TestMemberPodDrains(t *testing.T) {
	c := &quorumv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Name: "main", Namespace: "ns"}, Spec: quorumv1alpha1.EtcdClusterSpec{Version: "3.6.16"}}
	pod := MemberPod{Cluster: c, Member: "main-a", Zone: "a", Version: "3.6.16"}.Pod()
	etcd := pod.Spec.Containers[0]
	if etcd.Lifecycle == nil || etcd.Lifecycle.PreStop == nil || etcd.Lifecycle.PreStop.Sleep == nil {
		t.Fatalf("etcd has no preStop sleep: %+v", etcd.Lifecycle)
	}
	if got := etcd.Lifecycle.PreStop.Sleep.Seconds; got != MemberDrainSeconds || got < 1 {
		t.Errorf("preStop sleeps %ds, want %ds", got, MemberDrainSeconds)
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || *g < MemberDrainSeconds+20 {
		t.Errorf("grace period %v leaves etcd under 20s to stop after the drain", g)
	}
}
