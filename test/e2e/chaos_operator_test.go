package e2e

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/hack/local-cluster/cluster"
)

// chaosOperatorKilled (scenario 5, the kills): under the workload, the
// cluster grows from 3 to 5 and shrinks back to 3 while the leading manager
// is killed (no grace) each time the recorded change moves on a step:
// recorded, after MemberAdd, pod made, before promote, after MemberRemove.
// Each change finishes once: no duplicate member, no learner left, nothing
// orphaned.
func chaosOperatorKilled(t *testing.T) {
	ns, _, w := chaosCluster(t, "chaos-opkill")
	start := time.Now()
	kills := 0
	for _, n := range []int32{5, 3} {
		scale(t, ns, "main", n)
		last := ""
		deadline := time.Now().Add(6 * time.Minute)
		for time.Now().Before(deadline) {
			c := getCluster(t, ns, "main")
			if c.Status.PendingChange == nil && len(c.Status.Members) == int(n) {
				break
			}
			if step := stepOf(c); step != "" && step != last {
				last = step
				if killLeadingManager(t) {
					kills++
					t.Logf("killed the leading manager at %s", step)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		waitHealthy(t, ns, "main", int(n), 6*time.Minute)
		assertMembership(t, ns, "main", int(n))
	}
	if kills < 4 {
		t.Fatalf("the manager was killed %d times; the scenario needs kills at several steps of both changes", kills)
	}
	rep := w.stop(t, ns, "main")
	rep.after = fmt.Sprintf("%d kills", kills)
	recordChaos(t, "operator killed at each step of 3-5-3", time.Since(start), rep)
}

// chaosLearnerCannotStart (scenario 6): under the workload, a scale-up's
// learner whose pod cannot be scheduled (its zone's node lost the label
// the cluster's nodeSelector asks for) is removed after
// failurePolicy.startTimeout, so the cluster is not left with a learner
// for ever; once the node is labelled again the scale-up completes.
func chaosLearnerCannotStart(t *testing.T) {
	ns := newNamespace(t, "chaos-stuck")
	label, setLabel := namespaceNodeLabel(t, ns)
	newEtcdCluster(t, ns, "main", 3, func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.PodTemplate.NodeSelector = map[string]string{label: "ok"}
		c.Spec.FailurePolicy.StartTimeout = &metav1.Duration{Duration: 30 * time.Second}
	})
	waitHealthy(t, ns, "main", 3, 4*time.Minute)
	w := startWorkload(t, ns, "main", chaosLoad)
	time.Sleep(10 * time.Second)
	for _, n := range cluster.Nodes {
		setLabel(n.Name, false)
	}
	start := time.Now()
	scale(t, ns, "main", 5)
	var learner string
	eventually(t, "a learner in etcd whose pod cannot start", 2*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		for _, m := range c.Status.Members {
			if m.Role == quorumv1alpha1.RoleLearner && m.ID != "" {
				learner = m.Name
				return true, ""
			}
		}
		return false, conditionSummary(c)
	})
	added := time.Now()
	eventually(t, "the learner removed after startTimeout", 3*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		for _, m := range c.Status.Members {
			if m.Name == learner {
				return false, fmt.Sprintf("%s still a %s; %s", learner, m.Role, conditionSummary(c))
			}
		}
		return true, ""
	})
	removed := time.Since(added)
	for _, n := range cluster.Nodes {
		setLabel(n.Name, true)
	}
	waitHealthy(t, ns, "main", 5, 6*time.Minute)
	assertMembership(t, ns, "main", 5)
	rep := w.stop(t, ns, "main")
	rep.after = fmt.Sprintf("the stuck learner removed %s after it was added (startTimeout 30s)", removed.Round(100*time.Millisecond))
	recordChaos(t, "a learner that cannot start, removed after its bound", time.Since(start), rep)
}
