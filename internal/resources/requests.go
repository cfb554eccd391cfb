package resources

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Default requests of the containers the operator makes, for those a user
// did not size: enough for the scheduler to place them honestly, small
// enough for a laptop. Production users set their own.
var (
	EtcdRequests               = Requests("100m", "256Mi")
	APIServerRequests          = Requests("100m", "256Mi")
	ControllerManagerRequests  = Requests("50m", "128Mi")
	SchedulerRequests          = Requests("20m", "64Mi")
	BackupRequests             = Requests("50m", "64Mi")
	KonnectivityServerRequests = Requests("10m", "32Mi")
	KonnectivityAgentRequests  = Requests("10m", "32Mi")
	// BackupMemoryLimit bounds a backup pod's memory: snapshots stream.
	BackupMemoryLimit = resource.MustParse("256Mi")
)

// Requests is a CPU and memory request.
func Requests(cpu, memory string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
}

// WithDefaultRequests is r with a request from defaults for every resource
// r neither requests nor limits: a limit alone already makes Kubernetes
// request the limit, and a default request above it would be refused.
func WithDefaultRequests(r corev1.ResourceRequirements, defaults corev1.ResourceList) corev1.ResourceRequirements {
	out := *r.DeepCopy()
	for name, q := range defaults {
		if _, ok := out.Requests[name]; ok {
			continue
		}
		if _, ok := out.Limits[name]; ok {
			continue
		}
		if out.Requests == nil {
			out.Requests = corev1.ResourceList{}
		}
		out.Requests[name] = q.DeepCopy()
	}
	return out
}
