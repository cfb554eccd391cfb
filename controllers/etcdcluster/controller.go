// Package etcdcluster is the EtcdCluster reconciler: it keeps a cluster's
// members alive, odd at rest, one membership change at a time, quorum
// first, replaced zone by zone.
//
// A reconcile is a list of steps (controller.go): fetch, make the base
// objects, observe (scope.go), decide one action with a pure function
// (decide.go), carry it out (membership.go, recovery.go, upgrade.go,
// restore.go), and write the status (status.go) only when it changed.
package etcdcluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
)

// Reconciler keeps EtcdClusters' members alive.
type Reconciler struct {
	reconciler.Base
	// Dial opens an etcd client; tests put a fake here.
	Dial etcd.Dialer
	// Image is the manager's image, which fetches and verifies snapshots
	// for restores.
	Image string
	// PodLogs reads a finished pod's log (restore verification results).
	PodLogs func(ctx context.Context, namespace, pod string) (string, error)
	// NetworkPolicies gives every cluster (but stacked ones, whose pods
	// serve the control plane too) a NetworkPolicy for its members' ports;
	// OperatorNamespace is where the manager runs, let in on the client
	// port.
	NetworkPolicies   bool
	OperatorNamespace string
	// APIReader reads from the API server, not the cache: a step that acts
	// on what the cache says of another kind of object (a volume seen from
	// a pod's event) checks it there first. Nil reads through the client.
	APIReader client.Reader
}

// Requeue intervals: etcd health is not something Kubernetes watches, so a
// healthy cluster is looked at again every healthInterval; a cluster in
// the middle of a change, or with an unhealthy member, every stepInterval.
const (
	healthInterval = 10 * time.Second
	stepInterval   = 2 * time.Second
)

// +kubebuilder:rbac:groups="",resources=pods;persistentvolumeclaims;services,verbs=get;list;watch;create;update;patch;delete
// Secrets are read from the API server, never cached or watched (main.go).
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.k8s.io,resources=storageclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete

// Reconcile observes a cluster, makes the one change the rules allow, and
// writes the status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &quorumv1alpha1.EtcdCluster{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		if apierrors.IsNotFound(err) {
			forgetMetrics(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		// Owner references delete the pods and Services; the volumes and
		// Secrets too, unless deletionPolicy Retain released them first.
		if controllerutil.ContainsFinalizer(c, finalizerRetain) {
			return ctrl.Result{}, r.release(ctx, c)
		}
		return ctrl.Result{}, nil
	}
	if wrote, err := r.ensureFinalizer(ctx, c); err != nil || wrote {
		return ctrl.Result{RequeueAfter: stepInterval}, err
	}
	persisted := c.Status.DeepCopy()
	if c.Status.ClusterID == "" && len(c.Status.Members) == 0 && !restoreWanted(c) && !reconciler.Paused(c) {
		// A cluster of this name was deleted with deletionPolicy Retain:
		// this one is it, back from its volumes.
		adopted, err := r.adopt(ctx, c)
		var bad *badInputError
		if errors.As(err, &bad) {
			return ctrl.Result{RequeueAfter: healthInterval}, r.writeStatus(ctx, c, persisted, nil, action{kind: actWait, reason: bad.reason, message: bad.msg})
		}
		if err != nil || adopted {
			return ctrl.Result{RequeueAfter: stepInterval}, err
		}
	}

	paused := reconciler.Paused(c)
	// A cluster built from a snapshot makes nothing until the snapshot
	// verified; a paused one makes nothing at all.
	if !paused && (!restoreWanted(c) || restoreVerified(c)) {
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
	if paused {
		a = pausedAction(a)
	}
	if a.kind != actNone && a.kind != actWait {
		logf.FromContext(ctx).Info("acting", "action", a.kind, "member", a.member, "zone", a.zone, "reason", a.reason, "detail", a.message)
	}
	stepErr := r.execute(ctx, s, a)
	if err := r.writeStatus(ctx, c, persisted, s, a); err != nil {
		return ctrl.Result{}, err
	}
	if stepErr != nil {
		return ctrl.Result{}, stepErr
	}
	if (a.kind == actNone || a.kind == actWait) && !s.troubled() {
		return ctrl.Result{RequeueAfter: healthInterval}, nil
	}
	return ctrl.Result{RequeueAfter: stepInterval}, nil
}

// troubled: a member became unhealthy lately (within twice
// unhealthyAfter, or its status records no time yet). Such a cluster is
// looked at every stepInterval, so the times its evidence carries (a
// member unhealthy since, quorum lost at, the data-loss windows computed
// from them) are that precise, not healthInterval's; a fault older than
// that has its times already, and is looked at every healthInterval again.
func (s *scope) troubled() bool {
	since := map[string]*metav1.Time{}
	for _, ms := range s.cluster.Status.Members {
		if !ms.Healthy {
			since[ms.Name] = ms.Since
		}
	}
	for _, m := range s.sortedMembers() {
		if m.Healthy {
			continue
		}
		if t := since[m.Name]; t == nil || s.now.Sub(t.Time) < 2*unhealthyAfter(s.cluster) {
			return true
		}
	}
	return false
}

// pausedAction is what a paused cluster does instead of a: nothing, and
// the condition says what would have been done.
func pausedAction(a action) action {
	next := "nothing is due"
	if a.kind != actNone && a.kind != actWait {
		next = "next: " + a.message
		if a.message == "" {
			next = "next: " + string(a.kind) + " " + a.member
		}
	} else if a.kind == actWait {
		next = "waiting: " + a.message
	}
	return action{kind: actWait, reason: reconciler.ReasonPaused, message: reconciler.AnnotationPaused + ` is "true": nothing is changed (` + next + ")"}
}

// execute carries out one action. Membership changes are recorded in
// status.pendingChange before etcd is asked, so an operator killed at any
// point finds the change on restart and finishes or undoes it.
func (r *Reconciler) execute(ctx context.Context, s *scope, a action) error {
	switch a.kind {
	case actNone, actWait:
		return nil
	case actBootstrap:
		return r.record(ctx, s, quorumv1alpha1.MembershipChange{Type: quorumv1alpha1.ChangeAddMember, Member: newMemberName(s.cluster), Zone: a.zone, Reason: a.reason})
	case actStartMember:
		return r.startMember(ctx, s, a.member, a.zone)
	case actRecreatePod:
		return r.recreatePod(ctx, s, a)
	case actAddLearner:
		return r.addLearner(ctx, s, a)
	case actPromote:
		return r.promote(ctx, s, a)
	case actFinishAdd:
		return r.finishAdd(ctx, s, a)
	case actLabelVoter:
		return r.labelVoter(ctx, s.members[a.member])
	case actMoveLeader:
		return r.moveLeader(ctx, s, a)
	case actRemoveMember:
		return r.removeMember(ctx, s, a)
	case actCleanupMember:
		return r.cleanupMember(ctx, s, a)
	case actDeleteOrphan:
		return r.deleteOrphan(ctx, s, a)
	case actDeleteFailedPod:
		return r.deleteFailedPod(ctx, s, a)
	case actAbandonAdd:
		return r.abandonAdd(ctx, s, a)
	case actRenewCert:
		return r.renewMemberSecret(ctx, s, a)
	case actStartCARotation:
		return r.startCARotation(ctx, s, a)
	case actAdvanceCARotation:
		return r.advanceCARotation(ctx, s, a)
	case actResizeVolume:
		return r.resizeVolume(ctx, s, a)
	case actCompact:
		return r.compact(ctx, s, a)
	case actDefrag:
		return r.defragment(ctx, s, a)
	case actDisarm:
		return r.disarm(ctx, s, a)
	case actCancelChange:
		return r.cancelChange(s, a)
	case actRollback:
		return r.rollback(ctx, s, a)
	case actRestartMember:
		return r.restartMember(ctx, s, a)
	case actForceNewCluster:
		return r.forceNewCluster(ctx, s, a)
	case actPreflight:
		return r.preflight(ctx, s, a)
	case actDeletePreflight:
		return client.IgnoreNotFound(r.Delete(ctx, s.preflight))
	case actVerifySnapshot:
		return r.CreateOwned(ctx, s.cluster, r.verifyPod(s))
	case actRecordVerified:
		return r.recordVerified(ctx, s)
	case actResetForRestore:
		return r.resetForRestore(ctx, s, a)
	}
	return fmt.Errorf("unknown action %s", a.kind)
}

// badInputError is a user error that is reported in a condition and
// retried, never a crash.
type badInputError struct{ reason, msg string }

func (e *badInputError) Error() string { return e.msg }

// ensureBase makes the objects every cluster has: the CA and client
// certificate (or checks the user's), the Services and the disruption
// budget, applied so that drift is corrected.
func (r *Reconciler) ensureBase(ctx context.Context, c *quorumv1alpha1.EtcdCluster) error {
	if resources.AutoTLS(c) {
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
		if err := r.ApplyOwned(ctx, c, obj); err != nil {
			return err
		}
	}
	return r.ensureNetworkPolicy(ctx, c)
}

// ensureNetworkPolicy applies the members' NetworkPolicy when the manager
// runs with --etcd-network-policies, and removes the one it made when not.
func (r *Reconciler) ensureNetworkPolicy(ctx context.Context, c *quorumv1alpha1.EtcdCluster) error {
	np := resources.NetworkPolicy(c, r.OperatorNamespace)
	if r.NetworkPolicies && c.Labels[resources.LabelControlPlane] == "" {
		return r.ApplyOwned(ctx, c, np)
	}
	existing := &networkingv1.NetworkPolicy{}
	if err := r.Get(ctx, client.ObjectKeyFromObject(np), existing); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(existing, c) {
		return nil
	}
	return client.IgnoreNotFound(r.Delete(ctx, existing))
}

// SetupWithManager watches clusters, the objects they own, and nodes (a
// node turning NotReady fails the members on it).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Dial == nil {
		r.Dial = etcd.Dial
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&quorumv1alpha1.EtcdCluster{}).
		Owns(&corev1.Pod{}).
		Owns(&corev1.PersistentVolumeClaim{}).
		Owns(&corev1.Service{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.allClusters),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: reconciler.NodeReadinessChanged})).
		Named("etcdcluster").
		// Objects are independent: one whose members answer slowly (a
		// stopped process, a cut link: every call waits out its timeout)
		// must not hold up the others. A key is never reconciled twice at once.
		WithOptions(controller.Options{MaxConcurrentReconciles: reconciler.MaxConcurrentReconciles}).
		Complete(r)
}

// allClusters enqueues every cluster: node events are rare and clusters
// few, and a member's node is known only after observing it.
func (r *Reconciler) allClusters(ctx context.Context, _ client.Object) []ctrl.Request {
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
