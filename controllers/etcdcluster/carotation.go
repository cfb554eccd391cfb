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
	if t := c.Annotations[reconciler.AnnotationRotateCA]; t != "" && t != o.rotation.Trigger {
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
	if o.rotation.Phase == "" {
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
		return action{kind: actWait, reason: reasonRotatingCA, message: fmt.Sprintf("CA rotation phase %s: waiting for %s", o.rotation.Phase, waiting)}, true
	}
	return action{kind: actAdvanceCARotation, reason: reasonRotatingCA, message: phaseDone[o.rotation.Phase]}, true
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
	switch o.rotation.Phase {
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
	if secret.Annotations[reconciler.AnnotationCARotationPhase] != "" {
		return nil // started already
	}
	now := r.Clock()
	next, err := pki.NewCA(caCommonName(c, now), caValidity)
	if err != nil {
		return err
	}
	secret.Data[resources.KeyNextCACert], secret.Data[resources.KeyNextCAKey] = next.CertPEM, next.KeyPEM
	secret.Data[resources.KeyCABundle] = pki.Bundle(secret.Data[corev1.TLSCertKey], next.CertPEM)
	return r.advanceRecord(ctx, c, secret, a, now)
}

// advanceCARotation moves the CA Secret to the next phase: the new CA
// issues (TrustBoth ends), the old one leaves the bundle (ReissueLeaves
// ends), the rotation is complete (DropOldCA ends).
func (r *Reconciler) advanceCARotation(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	secret := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: resources.CASecretName(c.Name)}, secret); err != nil {
		return err
	}
	switch phase := reconciler.ReadCARotation(secret.Annotations).Phase; {
	case phase != s.certs.rotation.Phase:
		return nil // moved on already; the next pass observes it
	case phase == quorumv1alpha1.CARotationTrustBoth:
		if _, err := pki.ParseKeyPair(secret.Data[resources.KeyNextCACert], secret.Data[resources.KeyNextCAKey]); err != nil {
			return fmt.Errorf("the new CA in %s: %w", secret.Name, err)
		}
		secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey] = secret.Data[resources.KeyNextCACert], secret.Data[resources.KeyNextCAKey]
		delete(secret.Data, resources.KeyNextCACert)
		delete(secret.Data, resources.KeyNextCAKey)
	case phase == quorumv1alpha1.CARotationReissueLeaves:
		delete(secret.Data, resources.KeyCABundle)
	}
	return r.advanceRecord(ctx, c, secret, a, r.Clock())
}

// advanceRecord writes the rotation's next state on the CA Secret with the
// data already shaped for it, and says so in an event.
func (r *Reconciler) advanceRecord(ctx context.Context, c *quorumv1alpha1.EtcdCluster, secret *corev1.Secret, a action, now time.Time) error {
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	reason, err := reconciler.AdvanceCARotation(secret.Annotations, c.Annotations[reconciler.AnnotationRotateCA], now)
	if err != nil {
		return fmt.Errorf("the CA Secret %s: %w", secret.Name, err)
	}
	if err := r.Update(ctx, secret); err != nil {
		return err
	}
	r.Event(c, corev1.EventTypeNormal, reason, a.message)
	return nil
}

// rotationStatus is status.caRotation as the CA Secret records it.
func rotationStatus(prev *quorumv1alpha1.CARotationStatus, o *certObservation, a action) *quorumv1alpha1.CARotationStatus {
	if o == nil {
		return prev
	}
	msg := ""
	if a.reason == reasonRotatingCA {
		msg = a.message
	}
	return o.rotation.Status(prev, msg)
}
