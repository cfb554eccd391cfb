package controlplane

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
	"quorum.dev/quorum/internal/version"
)

// writeStatus writes the status only when it changed, with events for a
// moved leader and a refused version.
func (r *Reconciler) writeStatus(ctx context.Context, cp *quorumv1alpha1.ControlPlane, persisted *quorumv1alpha1.ControlPlaneStatus, s *scope, a action) error {
	desired := computeStatus(s, a)
	updateMetrics(cp, desired)
	if desired.Leaders != persisted.Leaders && desired.Leaders.ControllerManager != "" && persisted.Leaders.ControllerManager != "" &&
		desired.Leaders.ControllerManager != persisted.Leaders.ControllerManager {
		r.Event(cp, corev1.EventTypeNormal, "LeaderChanged", fmt.Sprintf("kube-controller-manager leader moved from %s to %s", persisted.Leaders.ControllerManager, desired.Leaders.ControllerManager))
	}
	if s.versionRefused != "" && (persisted.Version == "" || !strings.Contains(reconciler.ConditionMessage(persisted.Conditions, quorumv1alpha1.ConditionProgressing), s.versionRefused)) {
		r.Event(cp, corev1.EventTypeWarning, "UpgradeRefused", s.versionRefused)
	}
	return reconciler.WriteStatus(ctx, r.Client, cp, persisted, desired, func(st quorumv1alpha1.ControlPlaneStatus) { cp.Status = st })
}

// computeStatus is the status of a control plane as s observed it, after
// action a.
func computeStatus(s *scope, a action) quorumv1alpha1.ControlPlaneStatus {
	cp := s.cp
	st := quorumv1alpha1.ControlPlaneStatus{
		ObservedGeneration:  cp.Generation,
		Endpoint:            resources.EndpointURL(cp),
		KubeconfigSecretRef: &quorumv1alpha1.LocalObjectReference{Name: resources.KubeconfigSecretName(cp.Name, resources.KubeconfigAdmin)},
		Selector:            resources.ControlPlaneSelector(cp.Name),
		Leaders:             s.leaders,
		LastRemediation:     cp.Status.LastRemediation,
		Certificates:        cp.Status.Certificates,
		EtcdCredentials:     cp.Status.EtcdCredentials,
		CARotation:          rotationStatus(s, a),
		Conditions:          append([]metav1.Condition(nil), cp.Status.Conditions...),
	}
	st.Addons = s.addons
	if s.addons == nil {
		// Not looked at this pass: what was seen of those still asked for.
		asked := map[string]bool{resources.AddonCoreDNS: cp.Spec.Addons.CoreDNS != nil, resources.AddonKubeProxy: cp.Spec.Addons.KubeProxy != nil}
		for _, a := range cp.Status.Addons {
			if asked[a.Name] {
				st.Addons = append(st.Addons, a)
			}
		}
	}
	if s.certificates != nil {
		st.Certificates = s.certificates
		for _, c := range s.certificates {
			cpCertificateExpiry.WithLabelValues(cp.Namespace, cp.Name, c.Name).Set(float64(c.NotAfter.Unix()))
		}
	}
	live := s.live()
	failed := 0
	for _, r := range live {
		st.Replicas++
		if r.Ready {
			st.ReadyReplicas++
		}
		if r.Version == cp.Spec.Version && r.Hash == s.hash && s.hash != "" {
			st.UpdatedReplicas++
		}
		if replicaFailure(cp, r, s.now) != "" {
			failed++
		}
		st.ReplicaStatus = append(st.ReplicaStatus, quorumv1alpha1.ReplicaStatus{Name: r.Name, Zone: r.Zone, Ready: r.Ready, Version: r.Version})
	}
	if s.etcdCredentials != nil && s.hash != "" && int(st.Replicas) == desiredReplicas(cp) && len(s.outdated()) == 0 && len(live) > 0 {
		// Every replica runs the current template, and its etcd credentials.
		st.EtcdCredentials = s.etcdCredentials
	}
	var running []string
	for _, r := range live {
		running = append(running, r.Version)
	}
	st.Version = version.Lowest(running...)
	desired := int32(desiredReplicas(cp))

	set := func(t string, status bool, reason, msg string) {
		reconciler.SetCondition(&st.Conditions, cp.Generation, t, status, reason, msg)
	}

	if s.paused {
		// Neither etcd nor the template was looked at: what was last
		// observed of them stands.
		st.UpdatedReplicas = cp.Status.UpdatedReplicas
	} else {
		set(quorumv1alpha1.ConditionEtcdAvailable, s.etcd.available, s.etcd.reason, s.etcd.message)
	}

	if st.ReadyReplicas > 0 {
		set(quorumv1alpha1.ConditionAvailable, true, "ReplicasReady", fmt.Sprintf("%d of %d apiservers ready behind %s", st.ReadyReplicas, desired, st.Endpoint))
	} else {
		msg := "no apiserver is ready"
		if !s.etcd.available {
			msg += ": " + s.etcd.message
		}
		set(quorumv1alpha1.ConditionAvailable, false, "NoReplicaReady", msg)
	}

	switch {
	case a.reason == reasonRemediationLimit:
		set(quorumv1alpha1.ConditionDegraded, true, reasonRemediationLimit, a.message)
	case failed > 0 && !autoReplace(cp):
		set(quorumv1alpha1.ConditionDegraded, true, "ReplicaFailed", fmt.Sprintf("%d replica(s) failed and failurePolicy.autoReplace is false", failed))
	case failed > 0:
		set(quorumv1alpha1.ConditionDegraded, true, "ReplicaFailed", fmt.Sprintf("%d replica(s) failed; replacing them one at a time", failed))
	case st.ReadyReplicas < desired:
		set(quorumv1alpha1.ConditionDegraded, true, "ReplicasNotReady", fmt.Sprintf("%d of %d apiservers ready", st.ReadyReplicas, desired))
	default:
		set(quorumv1alpha1.ConditionDegraded, false, "AllReplicasReady", fmt.Sprintf("%d of %d apiservers ready", st.ReadyReplicas, desired))
	}

	certificatesExpiring(s, st.Certificates, set)

	switch {
	case s.paused:
		set(quorumv1alpha1.ConditionProgressing, false, reconciler.ReasonPaused, a.message)
	case s.configRefused != "":
		set(quorumv1alpha1.ConditionProgressing, false, s.configRefusedReason, s.configRefused)
	case s.versionRefused != "":
		set(quorumv1alpha1.ConditionProgressing, false, "UpgradeRefused", s.versionRefused)
	case a.kind == actCreate || a.kind == actDelete || a.kind == actStartCARotation || a.kind == actAdvanceCARotation ||
		a.kind == actStartKeyRotation || a.kind == actAdvanceKeyRotation:
		set(quorumv1alpha1.ConditionProgressing, true, a.reason, a.message)
	case a.kind == actWait:
		set(quorumv1alpha1.ConditionProgressing, true, a.reason, a.message)
	case st.Replicas == desired && st.UpdatedReplicas == desired:
		set(quorumv1alpha1.ConditionProgressing, false, "Stable", fmt.Sprintf("%d replicas at %s", desired, cp.Spec.Version))
	default:
		set(quorumv1alpha1.ConditionProgressing, true, reasonWaitReady, fmt.Sprintf("%d of %d replicas at the current template", st.UpdatedReplicas, desired))
	}
	reconciler.SetReadiness(&st.Conditions, cp.Generation, readiness(s, &st, desired))
	return st
}

// etcdStalledReasons are the EtcdAvailable reasons a person must fix.
var etcdStalledReasons = map[string]bool{
	"EtcdClusterNotFound": true, "EtcdSecretNotFound": true, "EtcdSecretInvalid": true, "EtcdClusterInUse": true,
}

// readiness is the control plane's Ready: every replica ready at the
// current template and version, etcd available; otherwise stalled when a
// person must act (a refused version, a missing or shared etcd, the
// remediation limit, a pause), else reconciling.
func readiness(s *scope, st *quorumv1alpha1.ControlPlaneStatus, desired int32) reconciler.Readiness {
	cond := func(t string) metav1.Condition { return reconciler.Condition(st.Conditions, t) }
	etcd, degraded, prog := cond(quorumv1alpha1.ConditionEtcdAvailable), cond(quorumv1alpha1.ConditionDegraded), cond(quorumv1alpha1.ConditionProgressing)
	healthy := etcd.Status == metav1.ConditionTrue && degraded.Status == metav1.ConditionFalse &&
		st.Replicas == desired && st.ReadyReplicas == desired && st.Version == s.cp.Spec.Version
	switch {
	case s.paused && healthy:
		return reconciler.Readiness{Ready: true, Reason: reconciler.ReasonPaused, Message: "healthy and as asked; paused"}
	case s.paused:
		return reconciler.Readiness{Stalled: true, Reason: reconciler.ReasonPaused, Message: prog.Message}
	case etcd.Status != metav1.ConditionTrue && etcdStalledReasons[etcd.Reason]:
		return reconciler.Readiness{Stalled: true, Reason: etcd.Reason, Message: etcd.Message}
	case degraded.Reason == reasonRemediationLimit:
		return reconciler.Readiness{Stalled: true, Reason: degraded.Reason, Message: degraded.Message}
	case prog.Reason == "UpgradeRefused" || prog.Reason == reasonAuditPolicyNotFound || prog.Reason == reasonAuditPolicyInvalid:
		return reconciler.Readiness{Stalled: true, Reason: prog.Reason, Message: prog.Message}
	case healthy && st.UpdatedReplicas == desired && prog.Status == metav1.ConditionFalse && s.hostedPending != "":
		return reconciler.Readiness{Reason: reasonHostedPending,
			Message: "the apiservers are ready, but the hosted cluster's own objects (the RBAC the admin credential relies on, what kubeadm join reads, the add-ons) are not made yet: " + s.hostedPending}
	case healthy && st.UpdatedReplicas == desired && prog.Status == metav1.ConditionFalse:
		return reconciler.Readiness{Ready: true, Reason: "Ready", Message: cond(quorumv1alpha1.ConditionAvailable).Message}
	case prog.Status == metav1.ConditionTrue:
		return reconciler.Readiness{Reason: prog.Reason, Message: prog.Message}
	case etcd.Status != metav1.ConditionTrue:
		return reconciler.Readiness{Reason: etcd.Reason, Message: etcd.Message}
	}
	return reconciler.Readiness{Reason: degraded.Reason, Message: degraded.Message}
}

func updateMetrics(cp *quorumv1alpha1.ControlPlane, st quorumv1alpha1.ControlPlaneStatus) {
	cpReplicas.WithLabelValues(cp.Namespace, cp.Name, "ready").Set(float64(st.ReadyReplicas))
	cpReplicas.WithLabelValues(cp.Namespace, cp.Name, "unready").Set(float64(st.Replicas - st.ReadyReplicas))
	cpReplicas.WithLabelValues(cp.Namespace, cp.Name, "updated").Set(float64(st.UpdatedReplicas))
	cpAvailable.WithLabelValues(cp.Namespace, cp.Name).Set(reconciler.BoolGauge(meta.IsStatusConditionTrue(st.Conditions, quorumv1alpha1.ConditionAvailable)))
}

// certificatesExpiring says in CertificatesExpiring which certificates are
// inside their renewal window and not renewed (a certificate cannot
// outlive its CA, and the CA rotation that would fix it is blocked), and
// when the cluster CA itself is due for rotation without one under way.
func certificatesExpiring(s *scope, certs []quorumv1alpha1.CertificateStatus, set func(string, bool, string, string)) {
	if s.paused || s.caNotAfter.IsZero() {
		return
	}
	var expiring []string
	for _, c := range certs {
		if c.NotAfter.Sub(s.now) < renewBefore(s.cp) {
			expiring = append(expiring, fmt.Sprintf("%s (expires %s)", c.Name, c.NotAfter.UTC().Format(time.RFC3339)))
		}
	}
	switch {
	case len(expiring) > 0:
		set(quorumv1alpha1.ConditionCertificatesExpiring, true, "RenewalPending", "inside certificateRenewBefore and not renewed: "+strings.Join(expiring, ", ")+
			"; a certificate cannot outlive its CA: the CA rotation must finish (see status.caRotation)")
	case s.rotation.Phase == "" && s.caNotAfter.Sub(s.now) < pki.DefaultLeafValidity+renewBefore(s.cp):
		set(quorumv1alpha1.ConditionCertificatesExpiring, true, "CAExpiring", fmt.Sprintf(
			"the cluster CA expires %s and its rotation has not started: every replica must be ready and current", s.caNotAfter.UTC().Format(time.RFC3339)))
	default:
		set(quorumv1alpha1.ConditionCertificatesExpiring, false, "CertificatesValid", fmt.Sprintf("every certificate is valid beyond certificateRenewBefore (%s)", renewBefore(s.cp)))
	}
}
