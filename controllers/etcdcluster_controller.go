package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/resources"
)

// EtcdClusterReconciler keeps an EtcdCluster's members alive: odd at rest,
// one membership change at a time, quorum first, replaced zone by zone.
type EtcdClusterReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	// Dial opens an etcd client; tests put a fake here.
	Dial etcd.Dialer
	// Now is the clock; tests set it.
	Now func() time.Time
	// Image is the manager's image, which fetches and verifies snapshots
	// for restores.
	Image string
	// PodLogs reads a finished pod's log (restore verification results).
	PodLogs func(ctx context.Context, namespace, pod string) (string, error)
}

// Requeue intervals: etcd health is not something Kubernetes watches, so a
// healthy cluster is looked at again every healthInterval; a cluster in
// the middle of a change sooner.
const (
	healthInterval = 10 * time.Second
	stepInterval   = 2 * time.Second
)

// +kubebuilder:rbac:groups="",resources=pods;persistentvolumeclaims;services;secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete

// Reconcile observes a cluster, makes the one change the rules allow, and
// writes the status.
func (r *EtcdClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	c := &quorumv1alpha1.EtcdCluster{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		// Owner references delete the pods, volumes, Services and Secrets.
		return ctrl.Result{}, nil
	}
	persisted := c.Status.DeepCopy()

	// A cluster built from a snapshot makes nothing until the snapshot
	// verified.
	if !restoreWanted(c) || restoreVerified(c) {
		if err := r.ensureBase(ctx, c); err != nil {
			var bad *badInputError
			if errors.As(err, &bad) {
				return ctrl.Result{RequeueAfter: healthInterval}, r.writeStatus(ctx, c, persisted, nil, action{kind: actWait, reason: bad.reason, message: bad.msg})
			}
			return ctrl.Result{}, err
		}
	}
	s, err := r.observe(ctx, c)
	if err != nil {
		return ctrl.Result{}, err
	}
	s.persisted = persisted
	if s.etcd != nil {
		defer func() { _ = s.etcd.Close() }()
	}

	a := decide(s)
	if a.kind != actNone && a.kind != actWait {
		log.Info("acting", "action", a.kind, "member", a.member, "zone", a.zone, "reason", a.reason, "detail", a.message)
	}
	result, stepErr := r.execute(ctx, s, a)
	if err := r.writeStatus(ctx, c, persisted, s, a); err != nil {
		return ctrl.Result{}, err
	}
	if stepErr != nil {
		return ctrl.Result{}, stepErr
	}
	return result, nil
}

// badInputError is a user error that is reported in a condition and
// retried, never a crash.
type badInputError struct{ reason, msg string }

func (e *badInputError) Error() string { return e.msg }

// ensureBase makes the objects every cluster has: the CA and client
// certificate (or checks the user's), the Services and the disruption budget.
func (r *EtcdClusterReconciler) ensureBase(ctx context.Context, c *quorumv1alpha1.EtcdCluster) error {
	if autoTLS(c) {
		ca, err := r.ensureCA(ctx, c)
		if err != nil {
			return err
		}
		if err := r.ensureClientSecret(ctx, c, ca); err != nil {
			return err
		}
	} else {
		for _, ref := range []*quorumv1alpha1.LocalObjectReference{c.Spec.TLS.PeerSecretRef, c.Spec.TLS.ServerSecretRef, c.Spec.TLS.ClientSecretRef} {
			if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: ref.Name}, &corev1.Secret{}); err != nil {
				if apierrors.IsNotFound(err) {
					return &badInputError{reason: "SecretNotFound", msg: fmt.Sprintf("the TLS Secret %s does not exist", ref.Name)}
				}
				return err
			}
		}
	}
	for _, obj := range []client.Object{resources.PeerService(c), resources.ClientService(c), resources.PodDisruptionBudget(c)} {
		if err := r.ensureObject(ctx, c, obj); err != nil {
			return err
		}
	}
	return nil
}

// ensureObject creates obj, or updates the fields Quorum owns when they
// drifted. An object that matches is not written.
func (r *EtcdClusterReconciler) ensureObject(ctx context.Context, owner client.Object, want client.Object) error {
	existing := want.DeepCopyObject().(client.Object)
	err := r.Get(ctx, client.ObjectKeyFromObject(want), existing)
	if apierrors.IsNotFound(err) {
		return r.createOwned(ctx, owner, want)
	}
	if err != nil {
		return err
	}
	changed := false
	switch w := want.(type) {
	case *corev1.Service:
		e := existing.(*corev1.Service)
		if !servicePortsEqual(e.Spec.Ports, w.Spec.Ports) || !maps.Equal(e.Spec.Selector, w.Spec.Selector) || e.Spec.PublishNotReadyAddresses != w.Spec.PublishNotReadyAddresses {
			e.Spec.Ports, e.Spec.Selector, e.Spec.PublishNotReadyAddresses = w.Spec.Ports, w.Spec.Selector, w.Spec.PublishNotReadyAddresses
			changed = true
		}
	case *policyv1.PodDisruptionBudget:
		e := existing.(*policyv1.PodDisruptionBudget)
		if e.Spec.MaxUnavailable == nil || *e.Spec.MaxUnavailable != *w.Spec.MaxUnavailable {
			e.Spec.MaxUnavailable = w.Spec.MaxUnavailable
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return r.Update(ctx, existing)
}

func servicePortsEqual(a, b []corev1.ServicePort) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Port != b[i].Port || a[i].TargetPort != b[i].TargetPort {
			return false
		}
	}
	return true
}

// createOwned creates obj with the cluster as its controlling owner, so
// deleting the cluster deletes it. AlreadyExists is not an error: a
// restarted reconcile may create what the previous one did.
func (r *EtcdClusterReconciler) createOwned(ctx context.Context, owner client.Object, obj client.Object) error {
	return createOwned(ctx, r.Client, r.Scheme, owner, obj)
}

// createOwned creates obj with owner as its controlling owner; an object
// that already exists is not an error.
func createOwned(ctx context.Context, c client.Client, scheme *runtime.Scheme, owner client.Object, obj client.Object) error {
	if err := controllerutil.SetControllerReference(owner, obj, scheme); err != nil {
		return err
	}
	if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

func (r *EtcdClusterReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// SetupWithManager watches clusters, the objects they own, and nodes (a
// node turning NotReady fails the members on it).
func (r *EtcdClusterReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Dial == nil {
		r.Dial = etcd.Dial
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&quorumv1alpha1.EtcdCluster{}).
		Owns(&corev1.Pod{}).
		Owns(&corev1.PersistentVolumeClaim{}).
		Owns(&corev1.Service{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.clustersOnNode),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: nodeReadinessChanged})).
		Named("etcdcluster").
		Complete(r)
}

// clustersOnNode enqueues every cluster: node events are rare and clusters
// few, and a member's node is known only after observing it.
func (r *EtcdClusterReconciler) clustersOnNode(ctx context.Context, _ client.Object) []ctrl.Request {
	list := &quorumv1alpha1.EtcdClusterList{}
	if err := r.List(ctx, list); err != nil {
		return nil
	}
	reqs := make([]ctrl.Request, 0, len(list.Items))
	for _, c := range list.Items {
		reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&c)})
	}
	return reqs
}

// nodeReadinessChanged lets through node updates that change readiness or
// schedulability, not the heartbeats every few seconds.
func nodeReadinessChanged(e event.UpdateEvent) bool {
	oldNode, ok1 := e.ObjectOld.(*corev1.Node)
	newNode, ok2 := e.ObjectNew.(*corev1.Node)
	if !ok1 || !ok2 {
		return false
	}
	return nodeReady(oldNode) != nodeReady(newNode) || oldNode.Spec.Unschedulable != newNode.Spec.Unschedulable
}
