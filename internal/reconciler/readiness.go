package reconciler

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The conditions GitOps tools read (kstatus, which Flux and `kubectl wait`
// use; Argo CD's health checks): Ready says the object is what its spec
// asks and healthy; Reconciling is True while the operator is still
// getting it there; Stalled is True when it cannot get there without a
// person. Reconciling and Stalled are only present while True.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
)

// Readiness is what an object's Ready, Reconciling and Stalled conditions
// say.
type Readiness struct {
	// Ready is true when the object is what its spec asks and healthy.
	Ready   bool
	Reason  string
	Message string
	// Stalled is true when it cannot become ready without a person; the
	// reason and message say what to do.
	Stalled bool
}

// SetReadiness writes r as the Ready, Reconciling and Stalled conditions:
// an object not ready is either stalled or reconciling, never neither, so
// no tool reads it as healthy.
func SetReadiness(conds *[]metav1.Condition, generation int64, r Readiness) {
	SetCondition(conds, generation, ConditionReady, r.Ready, r.Reason, r.Message)
	switch {
	case r.Ready:
		meta.RemoveStatusCondition(conds, ConditionReconciling)
		meta.RemoveStatusCondition(conds, ConditionStalled)
	case r.Stalled:
		meta.RemoveStatusCondition(conds, ConditionReconciling)
		SetCondition(conds, generation, ConditionStalled, true, r.Reason, r.Message)
	default:
		meta.RemoveStatusCondition(conds, ConditionStalled)
		SetCondition(conds, generation, ConditionReconciling, true, r.Reason, r.Message)
	}
}
