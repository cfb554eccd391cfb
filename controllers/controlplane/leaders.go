package controlplane

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

// readLeaders reads the controller-manager and scheduler leases through
// the hosted API. A lease whose holder stopped renewing names nobody.
func (r *Reconciler) readLeaders(ctx context.Context, s *scope, admin []byte) quorumv1alpha1.ControlPlaneLeaders {
	var out quorumv1alpha1.ControlPlaneLeaders
	anyReady := false
	for _, rs := range s.replicas {
		anyReady = anyReady || rs.Ready
	}
	if !anyReady || admin == nil {
		return out
	}
	open := r.Hosted
	if open == nil {
		open = hostedClient
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cs, err := open(ctx, s.cp, admin)
	if err != nil {
		logf.FromContext(ctx).V(1).Info("hosted API unreachable", "error", err.Error())
		return s.cp.Status.Leaders
	}
	holder := func(name string) (string, bool) {
		l, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", true
		}
		if err != nil || l.Spec.HolderIdentity == nil {
			return "", err == nil
		}
		if l.Spec.RenewTime != nil && l.Spec.LeaseDurationSeconds != nil &&
			s.now.After(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second)) {
			return "", true
		}
		// Identities are "<hostname>_<uuid>"; the hostname is the pod's name.
		id, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
		return id, true
	}
	prev := s.cp.Status.Leaders
	out = prev
	if id, ok := holder("kube-controller-manager"); ok {
		out.ControllerManager = id
	}
	if id, ok := holder("kube-scheduler"); ok {
		out.Scheduler = id
	}
	return out
}

// hostedClient reaches a control plane's API through its endpoint
// Service's cluster DNS name, as the admin.
func hostedClient(_ context.Context, cp *quorumv1alpha1.ControlPlane, admin []byte) (kubernetes.Interface, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(admin)
	if err != nil {
		return nil, err
	}
	cfg.Host = fmt.Sprintf("https://%s:%d", resources.EndpointHosts(cp)[len(resources.EndpointHosts(cp))-2], resources.EndpointPort(cp))
	cfg.Timeout = 3 * time.Second
	return kubernetes.NewForConfig(cfg)
}
