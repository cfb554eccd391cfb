// Package controlplane is the ControlPlane reconciler: it keeps a hosted
// control plane's replicas alive behind its endpoint.
//
// A reconcile is a list of steps (controller.go): the endpoint Service
// (endpoint.go), etcd access (etcd.go), the PKI and kubeconfigs (pki.go),
// what the replicas are (scope.go) and who leads (leaders.go), then one
// change decided by a pure function (decide.go) and carried out
// (replicas.go), and the status (status.go), written only when it changed.
package controlplane

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
)

// Reconciler keeps ControlPlanes' replicas alive: PKI and kubeconfigs, the
// endpoint Service, the replicas (zone-spread, replaced, scaled and rolled
// one at a time), and a status read from the pods and, for the leader
// leases, the hosted API.
type Reconciler struct {
	reconciler.Base
	// Dial opens an etcd client (external etcd is probed); tests fake it.
	Dial etcd.Dialer
	// Hosted opens a client to a control plane's own API with one of its
	// kubeconfigs (the operator's, to read the leader leases; the
	// super-admin's, to make the RBAC bindings); nil dials the endpoint
	// Service's DNS name.
	Hosted func(ctx context.Context, cp *quorumv1alpha1.ControlPlane, kubeconfig []byte) (kubernetes.Interface, error)
	// rbacDone remembers the control planes whose hosted RBAC and join
	// objects this process made, with the join objects' fingerprint.
	rbacDone sync.Map // types.UID -> string

	// created remembers, per control plane, the replica pod this process
	// last created until the cache shows it: a pass on a cache that does
	// not show it yet must not create another.
	created sync.Map // client.ObjectKey -> creation
}

// creation is a replica pod created and not yet seen in the cache.
type creation struct {
	name string
	at   time.Time
}

// cacheLag bounds how long a created replica is waited for in the cache.
const cacheLag = time.Minute

// unseenCreation is the replica pod this process created for cp that the
// cache does not show yet, or "".
func (r *Reconciler) unseenCreation(s *scope) string {
	key := client.ObjectKeyFromObject(s.cp)
	v, ok := r.created.Load(key)
	if !ok {
		return ""
	}
	c := v.(creation)
	for _, rs := range s.replicas {
		if rs.Name == c.name {
			r.created.Delete(key)
			return ""
		}
	}
	if s.now.Sub(c.at) > cacheLag {
		r.created.Delete(key)
		return ""
	}
	return c.name
}

// Requeue intervals: apiserver readiness is watched through the pods, but
// leases are not, so a stable control plane is looked at again every
// healthInterval; one in the middle of a change sooner.
const (
	healthInterval = 10 * time.Second
	stepInterval   = 2 * time.Second
)

// +kubebuilder:rbac:groups=quorum.dev,resources=etcdclusters,verbs=create

// Reconcile makes a control plane's endpoint, etcd access and PKI, makes
// the one replica change the rules allow, and writes the status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cp := &quorumv1alpha1.ControlPlane{}
	if err := r.Get(ctx, req.NamespacedName, cp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cp.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	persisted := cp.Status.DeepCopy()
	s := &scope{cp: cp, now: r.Clock(), stacked: cp.Spec.Etcd.Stacked != nil}

	if reconciler.Paused(cp) {
		// Nothing is applied, created or deleted: the replicas are only
		// observed, for the status.
		s.paused = true
		if err := r.observeReplicas(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
		s.leaders = cp.Status.Leaders
		return ctrl.Result{RequeueAfter: healthInterval}, r.writeStatus(ctx, cp, persisted, s, action{kind: actWait, reason: reconciler.ReasonPaused,
			message: reconciler.AnnotationPaused + ` is "true": no replica is created, replaced, rolled or removed`})
	}

	svc, err := r.ensureEndpoint(ctx, cp)
	if err != nil {
		return ctrl.Result{}, err
	}
	creds, access, err := r.observeEtcd(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	if creds == nil {
		// No way to reach etcd yet: nothing is started, the condition says why.
		if err := r.observeReplicas(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: healthInterval}, r.writeStatus(ctx, cp, persisted, s, action{kind: actWait, reason: reasonWaitEtcd, message: s.etcd.message})
	}
	mounted, kubeconfigs, err := r.ensurePKI(ctx, s, svc, creds)
	if err != nil {
		return ctrl.Result{}, err
	}
	policies, err := r.auditPolicy(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	pkiHash := resources.SecretsHash(append(mounted, policies...)...)
	if err := r.observeReplicas(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	s.version, s.versionRefused = s.targetVersion()
	s.template = resources.Replica{ControlPlane: cp, Version: s.version, Etcd: access, PKIHash: pkiHash, Trust: s.trust}
	s.hash = s.template.TemplateHash()
	s.hostedPending = r.ensureHosted(ctx, s, kubeconfigs)
	s.leaders = r.readLeaders(ctx, s, kubeconfigs)

	a := decide(s)
	if s.configRefused != "" && (a.kind == actCreate || a.kind == actDelete) {
		a = action{kind: actWait, reason: s.configRefusedReason, message: s.configRefused}
	}
	if pod := r.unseenCreation(s); pod != "" && a.kind != actNone && a.kind != actWait {
		a = action{kind: actWait, reason: reasonWaitReady, message: fmt.Sprintf("waiting for replica %s, just created, to show in the cache", pod)}
	}
	if a.kind != actNone && a.kind != actWait {
		logf.FromContext(ctx).Info("acting", "action", a.kind, "replica", a.replica, "zone", a.zone, "reason", a.reason, "detail", a.message)
	}
	stepErr := r.execute(ctx, s, a)
	if err := r.writeStatus(ctx, cp, persisted, s, a); err != nil {
		return ctrl.Result{}, err
	}
	if stepErr != nil {
		return ctrl.Result{}, stepErr
	}
	if a.kind == actNone && s.hostedPending == "" {
		return ctrl.Result{RequeueAfter: healthInterval}, nil
	}
	return ctrl.Result{RequeueAfter: stepInterval}, nil
}

// SetupWithManager watches control planes, their pods (owned directly, or
// through the stacked EtcdCluster), Services, EtcdClusters and nodes.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	byLabel := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []ctrl.Request {
		if name := o.GetLabels()[resources.LabelControlPlane]; name != "" {
			return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
		}
		return nil
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&quorumv1alpha1.ControlPlane{}).
		Owns(&corev1.Service{}).
		Watches(&corev1.Pod{}, byLabel).
		Watches(&quorumv1alpha1.EtcdCluster{}, handler.EnqueueRequestsFromMapFunc(r.controlPlanesInNamespace)).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.allControlPlanes),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: reconciler.NodeReadinessChanged})).
		Named("controlplane").
		// Objects are independent: one whose members answer slowly (a
		// stopped process, a cut link: every call waits out its timeout)
		// must not hold up the others. A key is never reconciled twice at once.
		WithOptions(controller.Options{MaxConcurrentReconciles: reconciler.MaxConcurrentReconciles}).
		Complete(r)
}

// controlPlanesInNamespace enqueues the control planes that may use an
// EtcdCluster: those of its namespace (a reference may name it before it
// exists).
func (r *Reconciler) controlPlanesInNamespace(ctx context.Context, o client.Object) []ctrl.Request {
	return r.controlPlanes(ctx, client.InNamespace(o.GetNamespace()))
}

func (r *Reconciler) allControlPlanes(ctx context.Context, _ client.Object) []ctrl.Request {
	return r.controlPlanes(ctx)
}

func (r *Reconciler) controlPlanes(ctx context.Context, opts ...client.ListOption) []ctrl.Request {
	list := &quorumv1alpha1.ControlPlaneList{}
	if err := r.List(ctx, list, opts...); err != nil {
		return nil
	}
	var reqs []ctrl.Request
	for _, cp := range list.Items {
		reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&cp)})
	}
	return reqs
}
