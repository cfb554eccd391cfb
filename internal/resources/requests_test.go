package resources

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

func request(c corev1.Container, name corev1.ResourceName) string {
	q, ok := c.Resources.Requests[name]
	if !ok {
		return ""
	}
	return q.String()
}

// TestDefaultRequests: requests a user did not give are defaulted; what a
// user gave, and resources with only a limit, are left alone.
func TestDefaultRequests(t *testing.T) {
	got := WithDefaultRequests(corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	}, Requests("100m", "256Mi"))
	if q := got.Requests[corev1.ResourceCPU]; q.String() != "2" {
		t.Errorf("cpu request %s, want the user's 2", q.String())
	}
	if _, ok := got.Requests[corev1.ResourceMemory]; ok {
		t.Errorf("a memory request was added under the user's 64Mi limit: %v", got.Requests)
	}
	if got := WithDefaultRequests(corev1.ResourceRequirements{}, Requests("100m", "256Mi")); len(got.Requests) != 2 {
		t.Errorf("nothing given: requests %v, want both defaults", got.Requests)
	}

	// An etcd member, and each control-plane container, with and without
	// a size of its own.
	c := &quorumv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Name: "main", Namespace: "ns"}, Spec: quorumv1alpha1.EtcdClusterSpec{Version: "3.6.16"}}
	pod := MemberPod{Cluster: c, Member: "main-a", Zone: "a", Version: "3.6.16"}.Pod()
	if cpu, mem := request(pod.Spec.Containers[0], corev1.ResourceCPU), request(pod.Spec.Containers[0], corev1.ResourceMemory); cpu != "100m" || mem != "256Mi" {
		t.Errorf("etcd requests %s %s, want 100m 256Mi", cpu, mem)
	}
	cp := &quorumv1alpha1.ControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: "ns"}, Spec: quorumv1alpha1.ControlPlaneSpec{
		Version:   "v1.36.3",
		Scheduler: quorumv1alpha1.SchedulerSpec{ComponentSpec: quorumv1alpha1.ComponentSpec{Resources: &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}},
		Etcd:      quorumv1alpha1.ControlPlaneEtcd{Stacked: &quorumv1alpha1.StackedEtcd{Resources: &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}}},
	}}
	cp.Spec.PodTemplate.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}
	containers, _ := Replica{ControlPlane: cp, Version: "v1.36.3"}.Containers()
	want := map[string][2]string{
		"kube-apiserver":          {"100m", "512Mi"},
		"kube-controller-manager": {"50m", "128Mi"},
		"kube-scheduler":          {"1", "64Mi"},
	}
	for _, ctr := range containers {
		w := want[ctr.Name]
		if cpu, mem := request(ctr, corev1.ResourceCPU), request(ctr, corev1.ResourceMemory); cpu != w[0] || mem != w[1] {
			t.Errorf("%s requests %s %s, want %s %s", ctr.Name, cpu, mem, w[0], w[1])
		}
		delete(want, ctr.Name)
	}
	if len(want) != 0 {
		t.Errorf("containers missing: %v", want)
	}
	stacked := StackedEtcdCluster(cp)
	if stacked.Spec.PodTemplate.Resources.Requests.Memory().String() != "1Gi" {
		t.Errorf("stacked etcd resources %v, want etcd.stacked.resources", stacked.Spec.PodTemplate.Resources)
	}
	if pod := (MemberPod{Cluster: stacked, Member: "m", Zone: "a", Version: "3.6.16"}.Pod()); request(pod.Spec.Containers[0], corev1.ResourceCPU) != "100m" {
		t.Errorf("stacked etcd cpu request %s, want the 100m default", request(pod.Spec.Containers[0], corev1.ResourceCPU))
	}
}
