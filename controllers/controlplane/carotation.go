package controlplane

// CA rotation of a control plane's cluster CA and front-proxy CA. The PKI
// Secret's annotations record the phase; planRotation shapes the Secret's
// data for it, the leaves and kubeconfigs follow (they are reissued when
// another CA issues, and trust the bundle), and the replicas roll onto each
// phase one at a time. A phase ends once every replica runs it.

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
)

const (
	actStartCARotation   actionKind = "StartCARotation"
	actAdvanceCARotation actionKind = "AdvanceCARotation"
	reasonRotatingCA                = "RotatingCA"
)

// rotationAnnotations are the rotation annotations of a PKI Secret, kept
// when the Secret is applied again. A Secret that records no trigger yet
// (new, or made before rotations existed) records the rotate-ca value the
// control plane has now as answered: only a new value rotates.
func rotationAnnotations(cp *quorumv1alpha1.ControlPlane, ann map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range []string{reconciler.AnnotationCARotationPhase, reconciler.AnnotationCARotationTrigger, reconciler.AnnotationCARotationStarted, reconciler.AnnotationCARotationCompleted} {
		if v, ok := ann[k]; ok {
			out[k] = v
		}
	}
	if _, ok := out[reconciler.AnnotationCARotationTrigger]; !ok {
		out[reconciler.AnnotationCARotationTrigger] = cp.Annotations[reconciler.AnnotationRotateCA]
	}
	return out
}

// planRotation shapes the PKI data for the rotation phase: in TrustBoth
// new CAs are made and bundled with the old; in ReissueLeaves the new CAs
// replace the old as issuers (the bundles stay); otherwise no bundle and
// no next CA are left.
func planRotation(in pkiInput, data map[string][]byte) error {
	pairs := []struct{ cert, key, next, nextKey, bundle, name string }{
		{resources.PKICACert, resources.PKICAKey, resources.PKINextCACert, resources.PKINextCAKey, resources.PKICABundle, "kubernetes-ca"},
		{resources.PKIFrontProxyCACert, resources.PKIFrontProxyCAKey, resources.PKINextFrontProxyCACert, resources.PKINextFrontProxyCAKey, resources.PKIFrontProxyCABundle, "front-proxy-ca"},
	}
	for _, p := range pairs {
		switch in.rotation {
		case quorumv1alpha1.CARotationTrustBoth:
			if len(data[p.cert]) == 0 {
				continue // a new control plane: nothing to rotate from
			}
			if len(data[p.next]) == 0 {
				ca, err := pki.NewCA(fmt.Sprintf("%s %s/%s %s", p.name, in.cp.Namespace, in.cp.Name, in.now.UTC().Format("20060102T150405Z")), pki.DefaultCAValidity)
				if err != nil {
					return err
				}
				data[p.next], data[p.nextKey] = ca.CertPEM, ca.KeyPEM
			}
			data[p.bundle] = pki.Bundle(data[p.cert], data[p.next])
		case quorumv1alpha1.CARotationReissueLeaves:
			if len(data[p.next]) > 0 {
				data[p.cert], data[p.key] = data[p.next], data[p.nextKey]
				delete(data, p.next)
				delete(data, p.nextKey)
			}
		default:
			delete(data, p.bundle)
			delete(data, p.next)
			delete(data, p.nextKey)
		}
	}
	return nil
}

// rotationWanted says why a rotation should start, "" when none should: a
// new rotate-ca value, or the cluster CA inside its renewal window.
func rotationWanted(s *scope) string {
	if t := s.cp.Annotations[reconciler.AnnotationRotateCA]; t != "" && t != s.rotation.Trigger {
		return fmt.Sprintf("%s is %q", reconciler.AnnotationRotateCA, t)
	}
	if !s.caNotAfter.IsZero() && s.caNotAfter.Sub(s.now) < pki.DefaultLeafValidity+renewBefore(s.cp) {
		return fmt.Sprintf("the cluster CA expires %s, within a certificate's validity and certificateRenewBefore", s.caNotAfter.UTC().Format(time.RFC3339))
	}
	return ""
}

// settledReplicas says whether every replica runs the current template,
// ready, as many as asked.
func settledReplicas(s *scope) bool {
	live := s.live()
	if len(live) != desiredReplicas(s.cp) || len(s.outdated()) > 0 {
		return false
	}
	_, unready := s.readiness()
	return unready == 0
}

// decideCARotation starts a rotation when one is wanted and the replicas
// are settled, and moves a rotation to its next phase once every replica
// runs the current one.
func decideCARotation(s *scope) (action, bool) {
	if s.rotation.Phase == "" {
		why := rotationWanted(s)
		if why == "" {
			return action{}, false
		}
		if !settledReplicas(s) {
			return action{kind: actWait, reason: "CARotationWaiting", message: "rotating the CAs (" + why + ") waits until every replica is ready and current"}, true
		}
		return action{kind: actStartCARotation, reason: reasonRotatingCA, message: "rotating the cluster and front-proxy CAs (" + why + "): new CAs are trusted next to the old ones"}, true
	}
	if !settledReplicas(s) {
		return action{kind: actWait, reason: reasonRotatingCA, message: fmt.Sprintf("CA rotation phase %s: waiting for every replica to run it", s.rotation.Phase)}, true
	}
	return action{kind: actAdvanceCARotation, reason: reasonRotatingCA, message: phaseDone[s.rotation.Phase]}, true
}

var phaseDone = map[quorumv1alpha1.CARotationPhase]string{
	quorumv1alpha1.CARotationTrustBoth:     "every replica trusts the new CAs: they issue from now on (fetch the admin kubeconfig again: it trusts both)",
	quorumv1alpha1.CARotationReissueLeaves: "every certificate and kubeconfig is the new CAs': the old CAs leave the trust bundles",
	quorumv1alpha1.CARotationDropOldCA:     "every replica trusts the new CAs only: the rotation is complete",
}

// stepCARotation writes the rotation's next state on the PKI Secret; the
// next pass shapes the Secret's data for it.
func (r *Reconciler) stepCARotation(ctx context.Context, s *scope, a action) error {
	cp := s.cp
	secret := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: resources.PKISecretName(cp.Name)}, secret); err != nil {
		return err
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	if reconciler.ReadCARotation(secret.Annotations).Phase != s.rotation.Phase {
		return nil // moved on already
	}
	reason, err := reconciler.AdvanceCARotation(secret.Annotations, cp.Annotations[reconciler.AnnotationRotateCA], r.Clock())
	if err != nil {
		return fmt.Errorf("the PKI Secret %s: %w", secret.Name, err)
	}
	if err := r.Update(ctx, secret); err != nil {
		return err
	}
	r.Event(cp, corev1.EventTypeNormal, reason, a.message)
	return nil
}

// rotationStatus is status.caRotation as the PKI Secret records it.
func rotationStatus(s *scope, a action) *quorumv1alpha1.CARotationStatus {
	msg := ""
	if a.reason == reasonRotatingCA {
		msg = a.message
	}
	return s.rotation.Status(s.cp.Status.CARotation, msg)
}
