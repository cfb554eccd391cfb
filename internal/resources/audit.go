package resources

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	auditpolicy "k8s.io/apiserver/pkg/audit/policy"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// ErrNoAuditPolicy is a policy ConfigMap without the policy key.
var ErrNoAuditPolicy = errors.New("no audit policy")

// AuditPolicy reads the audit policy from its ConfigMap and checks it the
// way kube-apiserver loads it, so no replica starts with a policy that
// stops it. It returns the data the replicas' template hash covers: the
// ControlPlane controller and the stacked EtcdCluster's pods hash the
// same.
func AuditPolicy(cm *corev1.ConfigMap) (map[string][]byte, error) {
	policy, ok := cm.Data[quorumv1alpha1.AuditPolicyKey]
	if !ok {
		return nil, fmt.Errorf("%w: ConfigMap %s has no key %s", ErrNoAuditPolicy, cm.Name, quorumv1alpha1.AuditPolicyKey)
	}
	if _, err := auditpolicy.LoadPolicyFromBytes([]byte(policy)); err != nil {
		return nil, fmt.Errorf("the policy in ConfigMap %s is refused: %w", cm.Name, err)
	}
	return map[string][]byte{quorumv1alpha1.AuditPolicyKey: []byte(policy)}, nil
}
