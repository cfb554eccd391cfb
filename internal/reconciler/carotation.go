package reconciler

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// Annotations that record a CA rotation on the Secret holding the CA (an
// EtcdCluster's CA Secret, a ControlPlane's PKI Secret): the record a
// restarted operator goes on from.
const (
	// AnnotationCARotationPhase is the phase under way; absent when none.
	AnnotationCARotationPhase = "quorum.dev/ca-rotation-phase"
	// AnnotationCARotationTrigger is the quorum.dev/rotate-ca value last
	// answered, so the same value does not rotate twice.
	AnnotationCARotationTrigger = "quorum.dev/ca-rotation-trigger"
	// AnnotationCARotationStarted and AnnotationCARotationCompleted are
	// when the last rotation started and finished (RFC 3339).
	AnnotationCARotationStarted   = "quorum.dev/ca-rotation-started-at"
	AnnotationCARotationCompleted = "quorum.dev/ca-rotation-completed-at"
)

// CARotation is a CA rotation as a Secret's annotations record it.
type CARotation struct {
	// Phase is "" when no rotation is under way.
	Phase                  quorumv1alpha1.CARotationPhase
	Trigger                string
	StartedAt, CompletedAt time.Time
}

// ReadCARotation reads the rotation record of a Secret's annotations.
func ReadCARotation(ann map[string]string) CARotation {
	at := func(key string) time.Time {
		t, _ := time.Parse(time.RFC3339, ann[key])
		return t
	}
	return CARotation{
		Phase:       quorumv1alpha1.CARotationPhase(ann[AnnotationCARotationPhase]),
		Trigger:     ann[AnnotationCARotationTrigger],
		StartedAt:   at(AnnotationCARotationStarted),
		CompletedAt: at(AnnotationCARotationCompleted),
	}
}

// AdvanceCARotation writes the rotation's next state onto a Secret's
// annotations: started (answering trigger) when none is under way, else
// the next phase, or completed after DropOldCA. It returns the reason of
// the event that says so.
func AdvanceCARotation(ann map[string]string, trigger string, now time.Time) (string, error) {
	stamp := now.UTC().Format(time.RFC3339)
	switch phase := quorumv1alpha1.CARotationPhase(ann[AnnotationCARotationPhase]); phase {
	case "":
		ann[AnnotationCARotationPhase] = string(quorumv1alpha1.CARotationTrustBoth)
		ann[AnnotationCARotationTrigger] = trigger
		ann[AnnotationCARotationStarted] = stamp
		delete(ann, AnnotationCARotationCompleted)
		return "CARotationStarted", nil
	case quorumv1alpha1.CARotationTrustBoth:
		ann[AnnotationCARotationPhase] = string(quorumv1alpha1.CARotationReissueLeaves)
	case quorumv1alpha1.CARotationReissueLeaves:
		ann[AnnotationCARotationPhase] = string(quorumv1alpha1.CARotationDropOldCA)
	case quorumv1alpha1.CARotationDropOldCA:
		delete(ann, AnnotationCARotationPhase)
		ann[AnnotationCARotationCompleted] = stamp
		return "CARotated", nil
	default:
		return "", fmt.Errorf("unknown CA rotation phase %q", phase)
	}
	return "CARotationPhase", nil
}

// Status is status.caRotation for the record: the phase under way with
// message (what it waits for; the last one said while the phase lasts
// when empty), or the last rotation completed; prev when there is none.
func (r CARotation) Status(prev *quorumv1alpha1.CARotationStatus, message string) *quorumv1alpha1.CARotationStatus {
	at := func(t time.Time) *metav1.Time {
		if t.IsZero() {
			return nil
		}
		mt := metav1.NewTime(t)
		return &mt
	}
	switch {
	case r.Phase != "":
		st := &quorumv1alpha1.CARotationStatus{Phase: r.Phase, Trigger: r.Trigger, StartedAt: at(r.StartedAt), Message: message}
		if message == "" && prev != nil && prev.Phase == r.Phase {
			st.Message = prev.Message
		}
		return st
	case !r.CompletedAt.IsZero():
		return &quorumv1alpha1.CARotationStatus{Phase: quorumv1alpha1.CARotationCompleted, Trigger: r.Trigger, StartedAt: at(r.StartedAt), CompletedAt: at(r.CompletedAt)}
	}
	return prev
}
