package controlplane

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

// ensureEndpoint applies the endpoint Service and returns it as stored:
// its cluster and load-balancer IPs go into the serving certificate. Node
// ports the API server allocated are not Quorum's fields and are kept.
func (r *Reconciler) ensureEndpoint(ctx context.Context, cp *quorumv1alpha1.ControlPlane) (*corev1.Service, error) {
	svc := resources.EndpointService(cp)
	return svc, r.ApplyOwned(ctx, cp, svc)
}
