package etcdcluster

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

func TestDecideVolumes(t *testing.T) {
	size := func(q string) func(*quorumv1alpha1.EtcdCluster) {
		return func(c *quorumv1alpha1.EtcdCluster) { v := resource.MustParse(q); c.Spec.Storage.Size = &v }
	}
	requested := func(q string, expandable bool) func(*memberState) {
		return func(m *memberState) {
			m.PVC.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(q)}
			m.Expandable = expandable
		}
	}
	for _, tc := range []struct {
		name   string
		s      *scope
		kind   actionKind
		reason string
	}{
		{"as asked", scopeOf(cluster(3, size("8Gi")), three(allOf(requested("8Gi", true)))...), actNone, ""},
		{"grown, expandable", scopeOf(cluster(3, size("16Gi")), three(allOf(requested("8Gi", true)))...), actResizeVolume, "VolumeResize"},
		{"grown, the StorageClass cannot expand: said, not ignored", scopeOf(cluster(3, size("16Gi")), three(allOf(requested("8Gi", false)))...), actWait, "VolumeExpansionUnsupported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.s)
			if a.kind != tc.kind || a.reason != tc.reason {
				t.Fatalf("decide = %s %s (%s), want %s %s", a.kind, a.reason, a.message, tc.kind, tc.reason)
			}
			if tc.kind == actWait {
				st := computeStatus(tc.s.cluster, tc.s, a, now)
				if r := readiness(tc.s.cluster, &st); !r.Stalled || r.Reason != "VolumeExpansionUnsupported" {
					t.Fatalf("readiness %+v, want Stalled VolumeExpansionUnsupported", r)
				}
			}
		})
	}
}
