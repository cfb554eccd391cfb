// Package reconciler holds what every Quorum reconciler repeats when it
// talks to Kubernetes: applying owned objects with server-side apply,
// creating owned objects, events, conditions, status writes, the clock, and
// node readiness. The reconcilers themselves decide; this package only
// carries their decisions out the same way for all three kinds.
package reconciler

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// FieldOwner is the field manager of everything Quorum applies.
const FieldOwner = "quorum"

// Base is embedded by each reconciler: the client (whose scheme owner
// references are set with), the event recorder and the clock.
type Base struct {
	client.Client
	Recorder events.EventRecorder
	// Now is the clock; tests set it.
	Now func() time.Time

	applied appliedCache
}

// Clock is the reconciler's current time.
func (b *Base) Clock() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// Event records an event about obj; kind is corev1.EventTypeNormal or
// corev1.EventTypeWarning.
func (b *Base) Event(obj runtime.Object, kind, reason, msg string) {
	if b.Recorder != nil {
		b.Recorder.Eventf(obj, nil, kind, reason, reason, "%s", msg)
	}
}

// CreateOwned creates obj with owner as its controlling owner, so deleting
// the owner deletes it. AlreadyExists is not an error: a restarted
// reconcile may create what the previous one did.
func (b *Base) CreateOwned(ctx context.Context, owner, obj client.Object) error {
	if err := controllerutil.SetControllerReference(owner, obj, b.Scheme()); err != nil {
		return err
	}
	if err := b.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// SetCondition sets a condition at the object's generation; the transition
// time changes only when the status does.
func SetCondition(conditions *[]metav1.Condition, generation int64, conditionType string, status bool, reason, msg string) {
	s := metav1.ConditionFalse
	if status {
		s = metav1.ConditionTrue
	}
	SetConditionAt(conditions, generation, conditionType, s, reason, msg, time.Time{})
}

// SetConditionAt sets a condition of any status (Unknown included); a
// transition is stamped at now (the reconciler's clock), or the wall clock
// when now is zero.
func SetConditionAt(conditions *[]metav1.Condition, generation int64, conditionType string, status metav1.ConditionStatus, reason, msg string, now time.Time) {
	if reason == "" {
		reason = "Unknown"
	}
	c := metav1.Condition{Type: conditionType, Status: status, Reason: reason, Message: msg, ObservedGeneration: generation}
	if !now.IsZero() {
		c.LastTransitionTime = metav1.NewTime(now)
	}
	meta.SetStatusCondition(conditions, c)
}

// Condition is the condition of conditionType, or one of status Unknown
// when there is none.
func Condition(conditions []metav1.Condition, conditionType string) metav1.Condition {
	if c := meta.FindStatusCondition(conditions, conditionType); c != nil {
		return *c
	}
	return metav1.Condition{Type: conditionType, Status: metav1.ConditionUnknown}
}

// ConditionMessage is the message of a condition, or "".
func ConditionMessage(conditions []metav1.Condition, conditionType string) string {
	if c := meta.FindStatusCondition(conditions, conditionType); c != nil {
		return c.Message
	}
	return ""
}

// StatusOf is a status type with its generated DeepCopy.
type StatusOf[S any] interface {
	*S
	DeepCopy() *S
}

// WriteStatus writes desired as obj's status (through set) only when it
// differs from stored, the status as last read or written; stored is then
// updated. A reconcile that changes nothing writes nothing. The write is an
// update of the status subresource, so a concurrent writer makes it fail
// with a conflict rather than be overwritten.
func WriteStatus[S any, P StatusOf[S]](ctx context.Context, c client.Client, obj client.Object, stored P, desired S, set func(S)) error {
	if equality.Semantic.DeepEqual(*stored, desired) {
		return nil
	}
	set(desired)
	if err := c.Status().Update(ctx, obj); err != nil {
		return err
	}
	*stored = *P(&desired).DeepCopy()
	return nil
}

// BoolGauge is 1 for true, 0 for false.
func BoolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// AnnotationPaused on any of Quorum's kinds stops every change the
// operator would make to it; its status is still observed and written.
const AnnotationPaused = "quorum.dev/paused"

// MaxConcurrentReconciles is how many objects of one kind are reconciled
// at once.
const MaxConcurrentReconciles = 4

// AnnotationRotateCA on an EtcdCluster (or a ControlPlane) asks for a CA
// rotation: each new value starts one.
const AnnotationRotateCA = "quorum.dev/rotate-ca"

// AnnotationDefrag on an EtcdCluster asks for a defragmentation of every
// member, one at a time, the leader last: each new value starts one.
const AnnotationDefrag = "quorum.dev/defrag"

// ReasonPaused is the condition reason while an object is paused.
const ReasonPaused = "Paused"

// Paused says whether obj carries quorum.dev/paused: "true".
func Paused(obj metav1.Object) bool {
	return obj.GetAnnotations()[AnnotationPaused] == "true"
}
