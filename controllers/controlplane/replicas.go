package controlplane

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// execute carries out the action: a replica pod created or deleted.
func (r *Reconciler) execute(ctx context.Context, s *scope, a action) error {
	cp := s.cp
	switch a.kind {
	case actStartCARotation, actAdvanceCARotation:
		return r.stepCARotation(ctx, s, a)
	case actStartKeyRotation, actAdvanceKeyRotation:
		return r.stepKeyRotation(ctx, s, a)
	case actCreate:
		name := cp.Name + "-" + utilrand.String(5)
		if err := r.CreateOwned(ctx, cp, s.template.ReplicaPod(name, a.zone)); err != nil {
			return err
		}
		r.created.Store(client.ObjectKeyFromObject(cp), creation{name: name, at: s.now})
		r.Event(cp, corev1.EventTypeNormal, "ReplicaCreated", fmt.Sprintf("%s: created replica %s (%s)", a.message, name, s.template.Version))
	case actDelete:
		var pod *corev1.Pod
		for _, rs := range s.replicas {
			if rs.Name == a.replica {
				pod = rs.Pod
			}
		}
		if pod == nil {
			return nil
		}
		opts := []client.DeleteOption{client.Preconditions{UID: &pod.UID}}
		if a.force {
			opts = append(opts, client.GracePeriodSeconds(0))
		}
		if err := r.Delete(ctx, pod, opts...); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		kind := corev1.EventTypeNormal
		if a.reason == reasonReplace {
			kind = corev1.EventTypeWarning
			cpReplacements.WithLabelValues(cp.Namespace, cp.Name).Inc()
			cp.Status.LastRemediation = &quorumv1alpha1.RemediationStatus{Replica: a.replica, Time: metav1.NewTime(s.now), RetryCount: retryCount(cp, s.now), Reason: a.message}
		}
		r.Event(cp, kind, "ReplicaDeleted", a.message)
	}
	return nil
}
