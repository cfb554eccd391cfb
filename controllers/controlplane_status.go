package controllers

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

// computeControlPlaneStatus is the status of a control plane as s
// observed it, after action a.
func computeControlPlaneStatus(s *cpScope, a cpAction) quorumv1alpha1.ControlPlaneStatus {
	cp := s.cp
	st := quorumv1alpha1.ControlPlaneStatus{
		ObservedGeneration:  cp.Generation,
		Endpoint:            resources.EndpointURL(cp),
		KubeconfigSecretRef: &quorumv1alpha1.LocalObjectReference{Name: resources.KubeconfigSecretName(cp.Name, resources.KubeconfigAdmin)},
		Selector:            resources.ControlPlaneSelector(cp.Name),
		Leaders:             s.leaders,
		Conditions:          append([]metav1.Condition(nil), cp.Status.Conditions...),
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
	st.Version = lowestReplicaVersion(live)
	desired := int32(desiredControlPlaneReplicas(cp))

	set := func(t string, status bool, reason, msg string) {
		c := metav1.ConditionFalse
		if status {
			c = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: c, Reason: reason, Message: msg, ObservedGeneration: cp.Generation})
	}

	set(quorumv1alpha1.ConditionEtcdAvailable, s.etcd.available, s.etcd.reason, s.etcd.message)

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
	case failed > 0 && !cpAutoReplace(cp):
		set(quorumv1alpha1.ConditionDegraded, true, "ReplicaFailed", fmt.Sprintf("%d replica(s) failed and failurePolicy.autoReplace is false", failed))
	case failed > 0:
		set(quorumv1alpha1.ConditionDegraded, true, "ReplicaFailed", fmt.Sprintf("%d replica(s) failed; replacing them one at a time", failed))
	case st.ReadyReplicas < desired:
		set(quorumv1alpha1.ConditionDegraded, true, "ReplicasNotReady", fmt.Sprintf("%d of %d apiservers ready", st.ReadyReplicas, desired))
	default:
		set(quorumv1alpha1.ConditionDegraded, false, "AllReplicasReady", fmt.Sprintf("%d of %d apiservers ready", st.ReadyReplicas, desired))
	}

	switch {
	case s.versionRefused != "":
		set(quorumv1alpha1.ConditionProgressing, false, "UpgradeRefused", s.versionRefused)
	case a.kind == cpCreate || a.kind == cpDelete:
		set(quorumv1alpha1.ConditionProgressing, true, a.reason, a.message)
	case a.kind == cpWait:
		set(quorumv1alpha1.ConditionProgressing, true, a.reason, a.message)
	case st.Replicas == desired && st.UpdatedReplicas == desired:
		set(quorumv1alpha1.ConditionProgressing, false, "Stable", fmt.Sprintf("%d replicas at %s", desired, cp.Spec.Version))
	default:
		set(quorumv1alpha1.ConditionProgressing, true, reasonWaitReady, fmt.Sprintf("%d of %d replicas at the current template", st.UpdatedReplicas, desired))
	}
	return st
}

func updateControlPlaneMetrics(cp *quorumv1alpha1.ControlPlane, st quorumv1alpha1.ControlPlaneStatus) {
	cpReplicas.WithLabelValues(cp.Namespace, cp.Name, "ready").Set(float64(st.ReadyReplicas))
	cpReplicas.WithLabelValues(cp.Namespace, cp.Name, "unready").Set(float64(st.Replicas - st.ReadyReplicas))
	cpReplicas.WithLabelValues(cp.Namespace, cp.Name, "updated").Set(float64(st.UpdatedReplicas))
	cpAvailable.WithLabelValues(cp.Namespace, cp.Name).Set(boolGauge(meta.IsStatusConditionTrue(st.Conditions, quorumv1alpha1.ConditionAvailable)))
}
