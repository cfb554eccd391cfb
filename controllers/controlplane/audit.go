package controlplane

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	auditpolicy "k8s.io/apiserver/pkg/audit/policy"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
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
	policy, ok := cm.Data[quorumv1alpha1.AuditPolicyKey]
	if !ok {
		s.configRefusedReason = reasonAuditPolicyNotFound
		s.configRefused = fmt.Sprintf("apiServer.audit: ConfigMap %s has no key %s", cm.Name, quorumv1alpha1.AuditPolicyKey)
		return nil, nil
	}
	if _, err := auditpolicy.LoadPolicyFromBytes([]byte(policy)); err != nil {
		s.configRefusedReason = reasonAuditPolicyInvalid
		s.configRefused = fmt.Sprintf("apiServer.audit: the policy in ConfigMap %s is refused: %v; no replica is created or rolled until it is fixed", cm.Name, err)
		return nil, nil
	}
	return []map[string][]byte{{quorumv1alpha1.AuditPolicyKey: []byte(policy)}}, nil
}
