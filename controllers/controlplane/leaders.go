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

// hostedTimeout bounds making the hosted cluster's own objects, a dozen
// requests through the endpoint.
const hostedTimeout = 15 * time.Second

// anyReplicaReady says whether some apiserver may answer.
func anyReplicaReady(s *scope) bool {
	for _, rs := range s.replicas {
		if rs.Ready {
			return true
		}
	}
	return false
}

// ensureHosted makes the hosted cluster's own objects once an apiserver is
// ready, and says why they are not made yet (empty once they are): the
// admin credential can do nothing until its binding exists, so the
// control plane is not Ready before. It also reports the add-ons, and
// applies them again when one was removed or changed in the hosted
// cluster.
func (r *Reconciler) ensureHosted(ctx context.Context, s *scope, kubeconfigs map[string][]byte) string {
	if !anyReplicaReady(s) || kubeconfigs == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, hostedTimeout)
	defer cancel()
	log := logf.FromContext(ctx)
	addons, err := r.hostedRBAC(ctx, s, kubeconfigs, false)
	if err != nil {
		log.V(1).Info("hosted RBAC not made yet", "error", err.Error())
		return err.Error()
	}
	if len(addons) == 0 {
		return ""
	}
	cs, err := r.hosted(ctx, s.cp, kubeconfigs[resources.KubeconfigOperator])
	if err != nil {
		return ""
	}
	observed, drifted, err := observeAddons(ctx, cs, addons)
	if err != nil {
		log.V(1).Info("add-ons not observed", "error", err.Error())
		if forbidden(err) {
			drifted = true
		}
	} else {
		s.addons = observed
	}
	if drifted {
		log.Info("an add-on is missing or changed in the hosted cluster: applying the add-ons again")
		if _, err := r.hostedRBAC(ctx, s, kubeconfigs, true); err != nil {
			return err.Error()
		}
	}
	return ""
}

// readLeaders reads the controller-manager and scheduler leases through
// the hosted API, with the operator's own credential (the RBAC that lets
// it is made by ensureHosted). A lease whose holder stopped renewing names
// nobody.
func (r *Reconciler) readLeaders(ctx context.Context, s *scope, kubeconfigs map[string][]byte) quorumv1alpha1.ControlPlaneLeaders {
	var out quorumv1alpha1.ControlPlaneLeaders
	if !anyReplicaReady(s) || kubeconfigs == nil {
		return out
	}
	if s.hostedPending != "" {
		return s.cp.Status.Leaders
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	log := logf.FromContext(ctx)
	cs, err := r.hosted(ctx, s.cp, kubeconfigs[resources.KubeconfigOperator])
	if err != nil {
		log.V(1).Info("hosted API unreachable", "error", err.Error())
		return s.cp.Status.Leaders
	}
	refused := false
	holder := func(name string) (string, bool) {
		l, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", true
		}
		refused = refused || forbidden(err)
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
	if refused {
		// The bindings were deleted (or never made by this process's
		// predecessor): made again now, read next pass.
		hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), hostedTimeout)
		defer hcancel()
		if _, err := r.hostedRBAC(hctx, s, kubeconfigs, true); err != nil {
			log.V(1).Info("hosted RBAC not made", "error", err.Error())
			s.hostedPending = err.Error()
		}
	}
	return out
}

// hostedClient reaches a control plane's API through its endpoint
// Service's cluster DNS name, with a kubeconfig's credential.
func hostedClient(_ context.Context, cp *quorumv1alpha1.ControlPlane, kubeconfig []byte) (kubernetes.Interface, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Host = fmt.Sprintf("https://%s:%d", resources.EndpointHosts(cp)[len(resources.EndpointHosts(cp))-2], resources.EndpointPort(cp))
	cfg.Timeout = 3 * time.Second
	return kubernetes.NewForConfig(cfg)
}
