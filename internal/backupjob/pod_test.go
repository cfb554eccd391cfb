package backupjob

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// TestPodSpoolAndResources: the spool is bounded by the largest snapshot
// the cluster can give; resources default, and the EtcdBackup's win.
func TestPodSpoolAndResources(t *testing.T) {
	q := resource.MustParse("64Mi")
	c := &quorumv1alpha1.EtcdCluster{}
	c.Spec.Maintenance.QuotaBackendBytes = &q
	if got := SpoolLimit(c); got.Value() != 80<<20 {
		t.Errorf("spool of a 64Mi quota: %s, want 80Mi", got.String())
	}
	c.Status.Members = []quorumv1alpha1.MemberStatus{{Name: "a", DBSizeBytes: 100 << 20}}
	if got := SpoolLimit(c); got.Value() != 125<<20 {
		t.Errorf("spool of a 100Mi database over a 64Mi quota: %s, want 125Mi", got.String())
	}
	if got := SpoolLimit(&quorumv1alpha1.EtcdCluster{}); got.Value() != (2<<30)+(2<<30)/4 {
		t.Errorf("spool with etcd's default quota: %s, want 2.5Gi", got.String())
	}

	d := quorumv1alpha1.BackupDestination{Volume: &quorumv1alpha1.VolumeDestination{ClaimName: "backups"}}
	pod := Pod(PodSpec{Image: "m", Namespace: "ns", Name: "b", Destination: d, Spool: SpoolLimit(c)})
	if l := pod.Spec.Volumes[0].EmptyDir.SizeLimit; pod.Spec.Volumes[0].Name != "spool" || l == nil || l.Value() != 125<<20 {
		t.Errorf("spool volume %+v, want a 125Mi size limit", pod.Spec.Volumes[0])
	}
	r := pod.Spec.Containers[0].Resources
	if r.Requests.Cpu().String() != "50m" || r.Requests.Memory().String() != "64Mi" || r.Limits.Memory().String() != "256Mi" {
		t.Errorf("default resources %+v, want 50m/64Mi requested, 256Mi memory limit", r)
	}
	own := &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}, Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}
	r = Pod(PodSpec{Image: "m", Namespace: "ns", Name: "b", Destination: d, Resources: own}).Spec.Containers[0].Resources
	if r.Requests.Memory().String() != "1Gi" || r.Limits.Memory().String() != "2Gi" || r.Requests.Cpu().String() != "50m" {
		t.Errorf("the backup's own resources %+v, want 1Gi/2Gi memory and the default 50m cpu", r)
	}
}
