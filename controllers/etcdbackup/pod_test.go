package etcdbackup

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

// TestBackupPodIsNoMember: the cluster's Services never select a backup
// pod (clients sent to it would find no etcd), and the pod names its
// snapshots by namespace, cluster and cluster ID.
func TestBackupPodIsNoMember(t *testing.T) {
	c := &quorumv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Name: "main", Namespace: "team-a"},
		Status: quorumv1alpha1.EtcdClusterStatus{Members: []quorumv1alpha1.MemberStatus{{Name: "main-x", ClientURL: "https://main-x:2379", Role: quorumv1alpha1.RoleLeader}}}}
	b := &quorumv1alpha1.EtcdBackup{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "team-a"},
		Spec: quorumv1alpha1.EtcdBackupSpec{Destination: quorumv1alpha1.BackupDestination{Volume: &quorumv1alpha1.VolumeDestination{ClaimName: "backups"}}}}
	pod, err := (&Reconciler{Image: "quorum"}).backupPod(b, c, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []map[string]string{resources.ClientService(c).Spec.Selector, resources.PeerService(c).Spec.Selector} {
		if labels.SelectorFromSet(svc).Matches(labels.Set(pod.Labels)) {
			t.Fatalf("a Service of the cluster (selector %v) selects the backup pod (labels %v)", svc, pod.Labels)
		}
	}
	if !slices.Contains(pod.Spec.Containers[0].Args, "--namespace=team-a") || !slices.ContainsFunc(pod.Spec.Containers[0].Args, func(a string) bool { return strings.HasPrefix(a, "--cluster=main") }) {
		t.Fatalf("args %v do not name the cluster's namespace and name", pod.Spec.Containers[0].Args)
	}
}
