package controlplane

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rbacac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/kubernetes"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

// The RBAC the hosted cluster's credentials rely on. kube-apiserver makes
// the system:* roles itself; these bindings are Quorum's, made with the
// break-glass super-admin credential (system:masters) the way kubeadm init
// makes its own, so that no other credential needs system:masters:
//
//   - kubeadm:cluster-admins: the admin kubeconfig's group (and the
//     apiservers' kubelet client's) is cluster-admin, revocable by deleting
//     the binding;
//   - the apiservers' kubelet client may use the kubelet API (logs, exec);
//   - the operator's user may read the two leader leases and the add-ons'
//     Deployment and DaemonSet, nothing else.

// hostedRBACManager is the field manager of those objects.
const hostedRBACManager = "quorum"

// leaseNames are the leases the operator reads.
var leaseNames = []string{"kube-controller-manager", "kube-scheduler"}

// ensureHostedRBAC applies the bindings through the hosted API.
func ensureHostedRBAC(ctx context.Context, cs kubernetes.Interface) error {
	opts := metav1.ApplyOptions{FieldManager: hostedRBACManager, Force: true}
	rbac := cs.RbacV1()
	if _, err := rbac.ClusterRoleBindings().Apply(ctx, rbacac.ClusterRoleBinding(resources.AdminGroup).
		WithRoleRef(rbacac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName("cluster-admin")).
		WithSubjects(rbacac.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(rbacv1.GroupKind).WithName(resources.AdminGroup)), opts); err != nil {
		return err
	}
	if _, err := rbac.ClusterRoleBindings().Apply(ctx, rbacac.ClusterRoleBinding("quorum:kubelet-api-admin").
		WithRoleRef(rbacac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName("system:kubelet-api-admin")).
		WithSubjects(rbacac.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(rbacv1.UserKind).WithName(resources.KubeletClientUser)), opts); err != nil {
		return err
	}
	if _, err := rbac.Roles("kube-system").Apply(ctx, rbacac.Role(resources.OperatorUser, "kube-system").
		WithRules(rbacac.PolicyRule().WithAPIGroups("coordination.k8s.io").WithResources("leases").WithResourceNames(leaseNames...).WithVerbs("get"),
			// The add-ons' workloads, to report them and see one removed.
			rbacac.PolicyRule().WithAPIGroups("apps").WithResources("deployments").WithResourceNames(resources.CoreDNSName).WithVerbs("get"),
			rbacac.PolicyRule().WithAPIGroups("apps").WithResources("daemonsets").WithResourceNames(resources.KubeProxyName, resources.KonnectivityAgentName).WithVerbs("get")), opts); err != nil {
		return err
	}
	_, err := rbac.RoleBindings("kube-system").Apply(ctx, rbacac.RoleBinding(resources.OperatorUser, "kube-system").
		WithRoleRef(rbacac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("Role").WithName(resources.OperatorUser)).
		WithSubjects(rbacac.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(rbacv1.UserKind).WithName(resources.OperatorUser)), opts)
	return err
}

// hostedRBAC makes the bindings, the objects kubeadm join reads and the
// add-ons once per control plane and process, and again when what they
// should be changes (a new CA bundle, endpoint, version or spec.addons),
// when the operator's credential is refused or an add-on was found changed
// (force): applying them is idempotent, and the super-admin credential is
// not used on every pass. It returns the add-ons spec.addons asks for, as
// they should be.
func (r *Reconciler) hostedRBAC(ctx context.Context, s *scope, kubeconfigs map[string][]byte, force bool) ([]resources.Addon, error) {
	cp := s.cp
	join, err := desiredJoinObjects(cp, kubeconfigs[resources.KubeconfigAdmin])
	if err != nil {
		return nil, err
	}
	addons, err := resources.Addons(cp, addonsVersion(s))
	if err != nil {
		return nil, err
	}
	addonsPrint, err := addonsFingerprint(addons)
	if err != nil {
		return nil, err
	}
	fingerprint := join.fingerprint() + addonsPrint
	if done, ok := r.rbacDone.Load(cp.UID); ok && done == fingerprint && !force {
		return addons, nil
	}
	cs, err := r.hosted(ctx, cp, kubeconfigs[resources.KubeconfigSuperAdmin])
	if err != nil {
		return nil, err
	}
	if err := ensureHostedRBAC(ctx, cs); err != nil {
		return nil, fmt.Errorf("making the hosted cluster's RBAC bindings: %w", err)
	}
	if err := ensureJoinObjects(ctx, cs, join); err != nil {
		return nil, fmt.Errorf("making what kubeadm join reads in the hosted cluster: %w", err)
	}
	if err := ensureAddons(ctx, cs, addons); err != nil {
		return nil, err
	}
	r.rbacDone.Store(cp.UID, fingerprint)
	return addons, nil
}

// hosted opens a client to cp's API with a kubeconfig.
func (r *Reconciler) hosted(ctx context.Context, cp *quorumv1alpha1.ControlPlane, kubeconfig []byte) (kubernetes.Interface, error) {
	if kubeconfig == nil {
		return nil, fmt.Errorf("no kubeconfig yet")
	}
	open := r.Hosted
	if open == nil {
		open = hostedClient
	}
	return open(ctx, cp, kubeconfig)
}

// forbidden says whether err is the hosted API refusing the credential.
func forbidden(err error) bool { return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) }
