package controlplane

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"quorum.dev/quorum/internal/resources"
)

// The audit policy is read from the API server (ConfigMaps are not cached).
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get

// Reasons of Progressing=False when the audit policy cannot be used.
const (
	reasonAuditPolicyNotFound = "AuditPolicyNotFound"
	reasonAuditPolicyInvalid  = "AuditPolicyInvalid"
)

// auditPolicy reads the audit policy ConfigMap, when audit is on, and
// checks it the way kube-apiserver loads it: a missing ConfigMap or key,
// or a policy the apiserver would refuse, is recorded in the scope
// (nothing is then created or rolled, so no replica starts with a policy
// that stops it). It returns the ConfigMap data the replicas' template
// hash covers.
func (r *Reconciler) auditPolicy(ctx context.Context, s *scope) ([]map[string][]byte, error) {
	a := s.cp.Spec.APIServer.Audit
	if a == nil {
		return nil, nil
	}
	cm := &corev1.ConfigMap{}
	err := r.Get(ctx, client.ObjectKey{Namespace: s.cp.Namespace, Name: a.PolicyConfigMapRef.Name}, cm)
	switch {
	case apierrors.IsNotFound(err):
		s.configRefusedReason = reasonAuditPolicyNotFound
		s.configRefused = fmt.Sprintf("apiServer.audit: ConfigMap %s not found; no replica is created or rolled until it exists", a.PolicyConfigMapRef.Name)
		return nil, nil
	case err != nil:
		return nil, err
	}
	data, err := resources.AuditPolicy(cm)
	if err == nil {
		return []map[string][]byte{data}, nil
	}
	// A policy that cannot be used is the user's to fix: a condition, not
	// an error of this pass.
	s.configRefusedReason = reasonAuditPolicyInvalid
	if errors.Is(err, resources.ErrNoAuditPolicy) {
		s.configRefusedReason = reasonAuditPolicyNotFound
	}
	s.configRefused = "apiServer.audit: " + err.Error() + "; no replica is created or rolled until it is fixed"
	return nil, nil //nolint:nilerr // recorded in the scope as a refusal
}
