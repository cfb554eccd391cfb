package reconciler

import (
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// NodeReady says whether a node's Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ReadyZones are the zones with at least one Ready, schedulable node.
func ReadyZones(nodes []corev1.Node) map[string]bool {
	zones := map[string]bool{}
	for i := range nodes {
		if n := &nodes[i]; NodeReady(n) && !n.Spec.Unschedulable {
			zones[n.Labels[quorumv1alpha1.LabelZone]] = true
		}
	}
	return zones
}

// NodeReadinessChanged lets through node updates that change readiness or
// schedulability, not the heartbeats every few seconds.
func NodeReadinessChanged(e event.UpdateEvent) bool {
	oldNode, ok1 := e.ObjectOld.(*corev1.Node)
	newNode, ok2 := e.ObjectNew.(*corev1.Node)
	if !ok1 || !ok2 {
		return false
	}
	return NodeReady(oldNode) != NodeReady(newNode) || oldNode.Spec.Unschedulable != newNode.Spec.Unschedulable
}
