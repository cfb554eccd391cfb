package etcdcluster

// CA rotation without downtime. The CA Secret is the rotation's record:
// its phase annotation, the new CA (next.crt) while it is only trusted, and
// the trust bundle (ca-bundle.crt) while two CAs are trusted. Every other
// Secret follows it through decideCertificates (members, one restart at a
// time) and ensureClientSecret (the client, in place); the ControlPlanes
// that reach etcd with the CA follow it on their own and report what their
// replicas run. A phase ends only when every holder has moved, so an
// operator restarted at any point finds the phase in the Secret and goes on.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
)

const (
	actStartCARotation   actionKind = "StartCARotation"   // make a new CA, trusted next to the old one
	actAdvanceCARotation actionKind = "AdvanceCARotation" // every holder moved: the CA Secret goes to the next phase
)

// caRenewBefore is how long before the CA expires it is rotated without
// being asked: a certificate issued just before then still gets its full
// validity and a renewal window.
func caRenewBefore(c *quorumv1alpha1.EtcdCluster) time.Duration {
	return certValidity(c) + renewBefore(c)
}

// rotationWanted says why a rotation should start, "" when none should: a
// new value of the rotate-ca annotation, or the CA inside its renewal
// window.
func rotationWanted(c *quorumv1alpha1.EtcdCluster, o *certObservation, now time.Time) string {
	if t := c.Annotations[reconciler.AnnotationRotateCA]; t != "" && t != o.rotation.trigger {
		return fmt.Sprintf("%s is %q", reconciler.AnnotationRotateCA, t)
	}
	if o.ca.NotAfter.Sub(now) < caRenewBefore(c) {
		return fmt.Sprintf("the CA expires %s, within certificateValidity and certificateRenewBefore", o.ca.NotAfter.UTC().Format(time.RFC3339))
	}
	return ""
}

// decideCARotation starts a rotation when one is wanted and every member
// is healthy, and moves it to its next phase once every holder runs the
// current one: every member (restarted onto its Secret), the client
// Secret, and every ControlPlane on the cluster.
func decideCARotation(s *scope, h health) (action, bool) {
	c, o := s.cluster, s.certs
	if o == nil || !resources.AutoTLS(c) {
		return action{}, false
	}
	if o.rotation.phase == "" {
		why := rotationWanted(c, o, s.now)
		if why == "" {
			return action{}, false
		}
		if !settled(s, h) {
			return action{kind: actWait, reason: "CARotationWaiting", message: "rotating the CA (" + why + ") waits until every member is healthy"}, true
		}
		return action{kind: actStartCARotation, reason: reasonRotatingCA, message: "rotating the CA (" + why + "): a new CA is trusted next to the old one"}, true
	}
	if waiting := rotationWaiting(s, h); waiting != "" {
		return action{kind: actWait, reason: reasonRotatingCA, message: fmt.Sprintf("CA rotation phase %s: waiting for %s", o.rotation.phase, waiting)}, true
	}
	return action{kind: actAdvanceCARotation, reason: reasonRotatingCA, message: phaseDone[o.rotation.phase]}, true
}

// phaseDone says what the end of each phase does.
var phaseDone = map[quorumv1alpha1.CARotationPhase]string{
	quorumv1alpha1.CARotationTrustBoth:     "every holder trusts the new CA: it issues from now on",
	quorumv1alpha1.CARotationReissueLeaves: "every certificate is the new CA's: the old CA leaves the trust bundles",
	quorumv1alpha1.CARotationDropOldCA:     "every holder trusts the new CA only: the rotation is complete",
}

// rotationWaiting says what the current phase still waits for, "" when
// every holder runs it.
func rotationWaiting(s *scope, h health) string {
	c, o := s.cluster, s.certs
	if !settled(s, h) {
		return "every member to be healthy"
	}
	var behind []string
	for _, m := range s.voters() {
		if ci, ok := o.members[m.Name]; ok && (certDue(c, ci, o, s.now) != "" || runsOldCertificates(m, ci)) {
			behind = append(behind, m.Name)
		}
	}
	if certDue(c, o.client, o, s.now) != "" {
		behind = append(behind, "the client certificate")
	}
	if len(behind) > 0 {
		return strings.Join(behind, ", ") + " to run certificates of this phase"
	}
	for _, cons := range o.consumers {
		if why := consumerBehind(o, cons); why != "" {
			behind = append(behind, fmt.Sprintf("ControlPlane %s (%s)", cons.name, why))
		}
	}
	if len(behind) > 0 {
		return strings.Join(behind, ", ")
	}
	return ""
}

// consumerBehind says why a ControlPlane does not run the current phase
// yet, "" when it does.
func consumerBehind(o *certObservation, cons consumer) string {
	if !cons.known {
		return "its replicas have not reported the etcd credentials they run"
	}
	issuer := pki.Fingerprint(o.ca)
	switch o.rotation.phase {
	case quorumv1alpha1.CARotationTrustBoth:
		if o.next != nil && !slices.Contains(cons.trustedCAs, pki.Fingerprint(o.next)) {
			return "its replicas do not trust the new CA yet"
		}
	case quorumv1alpha1.CARotationReissueLeaves:
		if cons.clientIssuer != issuer {
			return "its replicas' etcd client certificate is not the new CA's yet"
		}
	case quorumv1alpha1.CARotationDropOldCA:
		if !slices.Equal(cons.trustedCAs, pki.BundleFingerprints(o.trust)) {
			return "its replicas still trust the old CA"
		}
	}
	return ""
}

// startCARotation makes the new CA and puts it in the trust bundle next to
// the old one; the old CA still issues.
func (r *Reconciler) startCARotation(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	secret := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: resources.CASecretName(c.Name)}, secret); err != nil {
		return err
	}
	if secret.Annotations[resources.AnnotationCARotationPhase] != "" {
		return nil // started already
	}
	now := r.Clock()
	next, err := pki.NewCA(caCommonName(c, now), caValidity)
	if err != nil {
		return err
	}
	secret.Data[resources.KeyNextCACert], secret.Data[resources.KeyNextCAKey] = next.CertPEM, next.KeyPEM
	secret.Data[resources.KeyCABundle] = pki.Bundle(secret.Data[corev1.TLSCertKey], next.CertPEM)
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[resources.AnnotationCARotationPhase] = string(quorumv1alpha1.CARotationTrustBoth)
	secret.Annotations[resources.AnnotationCARotationTrigger] = c.Annotations[reconciler.AnnotationRotateCA]
	secret.Annotations[resources.AnnotationCARotationStarted] = now.UTC().Format(time.RFC3339)
	delete(secret.Annotations, resources.AnnotationCARotationCompleted)
	if err := r.Update(ctx, secret); err != nil {
		return err
	}
	r.Event(c, corev1.EventTypeNormal, "CARotationStarted", a.message)
	return nil
}

// advanceCARotation moves the CA Secret to the next phase.
func (r *Reconciler) advanceCARotation(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	secret := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: resources.CASecretName(c.Name)}, secret); err != nil {
		return err
	}
	phase := quorumv1alpha1.CARotationPhase(secret.Annotations[resources.AnnotationCARotationPhase])
	if phase != s.certs.rotation.phase {
		return nil // moved on already; the next pass observes it
	}
	switch phase {
	case quorumv1alpha1.CARotationTrustBoth:
		if _, err := pki.ParseKeyPair(secret.Data[resources.KeyNextCACert], secret.Data[resources.KeyNextCAKey]); err != nil {
			return fmt.Errorf("the new CA in %s: %w", secret.Name, err)
		}
		secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey] = secret.Data[resources.KeyNextCACert], secret.Data[resources.KeyNextCAKey]
		delete(secret.Data, resources.KeyNextCACert)
		delete(secret.Data, resources.KeyNextCAKey)
		secret.Annotations[resources.AnnotationCARotationPhase] = string(quorumv1alpha1.CARotationReissueLeaves)
	case quorumv1alpha1.CARotationReissueLeaves:
		delete(secret.Data, resources.KeyCABundle)
		secret.Annotations[resources.AnnotationCARotationPhase] = string(quorumv1alpha1.CARotationDropOldCA)
	case quorumv1alpha1.CARotationDropOldCA:
		delete(secret.Annotations, resources.AnnotationCARotationPhase)
		secret.Annotations[resources.AnnotationCARotationCompleted] = r.Clock().UTC().Format(time.RFC3339)
	default:
		return fmt.Errorf("the CA Secret %s is in an unknown rotation phase %q", secret.Name, phase)
	}
	if err := r.Update(ctx, secret); err != nil {
		return err
	}
	reason := "CARotationPhase"
	if phase == quorumv1alpha1.CARotationDropOldCA {
		reason = "CARotated"
	}
	r.Event(c, corev1.EventTypeNormal, reason, a.message)
	return nil
}

// rotationStatus is status.caRotation as the CA Secret records it.
func rotationStatus(prev *quorumv1alpha1.CARotationStatus, o *certObservation, a action) *quorumv1alpha1.CARotationStatus {
	if o == nil {
		return prev
	}
	rot := o.rotation
	at := func(t time.Time) *metav1.Time {
		if t.IsZero() {
			return nil
		}
		mt := metav1.NewTime(t)
		return &mt
	}
	switch {
	case rot.phase != "":
		st := &quorumv1alpha1.CARotationStatus{Phase: rot.phase, Trigger: rot.trigger, StartedAt: at(rot.startedAt)}
		if a.reason == reasonRotatingCA {
			st.Message = a.message
		} else if prev != nil && prev.Phase == rot.phase {
			st.Message = prev.Message
		}
		return st
	case !rot.completedAt.IsZero():
		return &quorumv1alpha1.CARotationStatus{Phase: quorumv1alpha1.CARotationCompleted, Trigger: rot.trigger, StartedAt: at(rot.startedAt), CompletedAt: at(rot.completedAt)}
	}
	return nil
}
