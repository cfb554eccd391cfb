package controlplane

import (
	"testing"
	"time"

	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"quorum.dev/quorum/internal/testenv"
)

// TestKstatus: a ControlPlane's phases as the kstatus library reads them.
func TestKstatus(t *testing.T) {
	etcdMissing := func(s *scope) {
		s.etcd = etcdState{reason: "EtcdClusterNotFound", message: "EtcdCluster etcd does not exist"}
	}
	for _, tc := range []struct {
		name string
		s    *scope
		want kstatus.Status
	}{
		{"bootstrapping", scopeOf(3, nil), kstatus.InProgressStatus},
		{"healthy and as asked", scopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b"), rep("c", "zone-c")), kstatus.CurrentStatus},
		{"a replica unready: degraded", scopeOf(3, nil, rep("a", "zone-a"), rep("b", "zone-b", unready(10*time.Second)), rep("c", "zone-c")), kstatus.InProgressStatus},
		{"rolling onto a new version", scopeOf(3, nil, rep("a", "zone-a", outdatedAt("v1.35.4")), rep("b", "zone-b"), rep("c", "zone-c")), kstatus.InProgressStatus},
		{"a refused version step", scopeOf(3, nil, rep("a", "zone-a", outdatedAt("v1.34.2")), rep("b", "zone-b", outdatedAt("v1.34.2")), rep("c", "zone-c", outdatedAt("v1.34.2"))), kstatus.FailedStatus},
		{"its EtcdCluster missing", scopeOf(3, etcdMissing), kstatus.FailedStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.cp.Generation = 1
			st := computeStatus(tc.s, decide(tc.s))
			obj := tc.s.cp.DeepCopy()
			obj.Status = st
			got := testenv.Kstatus(t, obj)
			if got != tc.want {
				t.Fatalf("kstatus = %s, want %s; conditions %+v", got, tc.want, st.Conditions)
			}
		})
	}
}
