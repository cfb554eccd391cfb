package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
	"quorum.dev/quorum/internal/version"
)

// The add-ons of spec.addons live in the hosted cluster: applied with the
// super-admin credential when what they should be changes (the spec, the
// Kubernetes version the apiservers run, the endpoint), and looked at every
// pass with the operator's own credential, which may get just the CoreDNS
// Deployment and the kube-proxy DaemonSet: one deleted or changed by
// someone is applied again.

// addonsVersion is the Kubernetes version add-ons follow: the oldest the
// replicas run, so kube-proxy is never newer than an apiserver.
func addonsVersion(s *scope) string {
	var running []string
	for _, r := range s.replicas {
		running = append(running, r.Version)
	}
	if len(running) == 0 {
		return s.version
	}
	return version.Lowest(running...)
}

// addonsFingerprint changes when any add-on object would.
func addonsFingerprint(addons []resources.Addon) (string, error) {
	h := sha256.New()
	for _, a := range addons {
		h.Write([]byte(a.Name + "\x00"))
		for _, o := range a.Objects {
			data, err := json.Marshal(o)
			if err != nil {
				return "", err
			}
			h.Write(data)
			h.Write([]byte{0})
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ensureAddons applies the add-ons asked for and uninstalls the others.
func ensureAddons(ctx context.Context, cs kubernetes.Interface, addons []resources.Addon) error {
	asked := map[string]bool{}
	for _, a := range addons {
		asked[a.Name] = true
		for _, o := range a.Objects {
			if err := applyHosted(ctx, cs, o); err != nil {
				return fmt.Errorf("add-on %s: %w", a.Name, err)
			}
		}
	}
	for _, name := range resources.AddonNames {
		if asked[name] {
			continue
		}
		if err := uninstallAddon(ctx, cs, name); err != nil {
			return fmt.Errorf("uninstalling add-on %s: %w", name, err)
		}
	}
	return nil
}

// applyHosted server-side applies one object through the hosted API.
func applyHosted(ctx context.Context, cs kubernetes.Interface, obj runtime.Object) error {
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: hostedRBACManager, Force: ptr.To(true)}
	pt := types.ApplyPatchType
	switch o := obj.(type) {
	case *corev1.ServiceAccount:
		_, err = cs.CoreV1().ServiceAccounts(o.Namespace).Patch(ctx, o.Name, pt, data, opts)
	case *corev1.ConfigMap:
		_, err = cs.CoreV1().ConfigMaps(o.Namespace).Patch(ctx, o.Name, pt, data, opts)
	case *corev1.Service:
		_, err = cs.CoreV1().Services(o.Namespace).Patch(ctx, o.Name, pt, data, opts)
	case *appsv1.Deployment:
		_, err = cs.AppsV1().Deployments(o.Namespace).Patch(ctx, o.Name, pt, data, opts)
	case *appsv1.DaemonSet:
		_, err = cs.AppsV1().DaemonSets(o.Namespace).Patch(ctx, o.Name, pt, data, opts)
	case *rbacv1.ClusterRole:
		_, err = cs.RbacV1().ClusterRoles().Patch(ctx, o.Name, pt, data, opts)
	case *rbacv1.ClusterRoleBinding:
		_, err = cs.RbacV1().ClusterRoleBindings().Patch(ctx, o.Name, pt, data, opts)
	case *rbacv1.Role:
		_, err = cs.RbacV1().Roles(o.Namespace).Patch(ctx, o.Name, pt, data, opts)
	case *rbacv1.RoleBinding:
		_, err = cs.RbacV1().RoleBindings(o.Namespace).Patch(ctx, o.Name, pt, data, opts)
	default:
		return fmt.Errorf("no way to apply a %T", obj)
	}
	return err
}

// uninstallAddon deletes an add-on's objects that carry its label and
// Quorum's: an object of the same name someone else made is left alone.
func uninstallAddon(ctx context.Context, cs kubernetes.Interface, name string) error {
	for _, k := range resources.AddonObjectKinds(name) {
		kind, ns, objName := k[0], k[1], k[2]
		var (
			meta metav1.Object
			err  error
			del  func() error
		)
		get := metav1.GetOptions{}
		delOpts := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}
		switch kind {
		case "ServiceAccount":
			meta, err = cs.CoreV1().ServiceAccounts(ns).Get(ctx, objName, get)
			del = func() error { return cs.CoreV1().ServiceAccounts(ns).Delete(ctx, objName, delOpts) }
		case "ConfigMap":
			meta, err = cs.CoreV1().ConfigMaps(ns).Get(ctx, objName, get)
			del = func() error { return cs.CoreV1().ConfigMaps(ns).Delete(ctx, objName, delOpts) }
		case "Service":
			meta, err = cs.CoreV1().Services(ns).Get(ctx, objName, get)
			del = func() error { return cs.CoreV1().Services(ns).Delete(ctx, objName, delOpts) }
		case "Deployment":
			meta, err = cs.AppsV1().Deployments(ns).Get(ctx, objName, get)
			del = func() error { return cs.AppsV1().Deployments(ns).Delete(ctx, objName, delOpts) }
		case "DaemonSet":
			meta, err = cs.AppsV1().DaemonSets(ns).Get(ctx, objName, get)
			del = func() error { return cs.AppsV1().DaemonSets(ns).Delete(ctx, objName, delOpts) }
		case "ClusterRole":
			meta, err = cs.RbacV1().ClusterRoles().Get(ctx, objName, get)
			del = func() error { return cs.RbacV1().ClusterRoles().Delete(ctx, objName, delOpts) }
		case "ClusterRoleBinding":
			meta, err = cs.RbacV1().ClusterRoleBindings().Get(ctx, objName, get)
			del = func() error { return cs.RbacV1().ClusterRoleBindings().Delete(ctx, objName, delOpts) }
		case "Role":
			meta, err = cs.RbacV1().Roles(ns).Get(ctx, objName, get)
			del = func() error { return cs.RbacV1().Roles(ns).Delete(ctx, objName, delOpts) }
		case "RoleBinding":
			meta, err = cs.RbacV1().RoleBindings(ns).Get(ctx, objName, get)
			del = func() error { return cs.RbacV1().RoleBindings(ns).Delete(ctx, objName, delOpts) }
		default:
			return fmt.Errorf("no way to uninstall a %s", kind)
		}
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		labels := meta.GetLabels()
		if labels[resources.LabelManagedBy] != resources.ManagedBy || labels[resources.LabelAddon] != name {
			continue
		}
		if err := del(); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// observeAddons reads the add-ons' workloads with the operator's
// credential: their status, and whether one is missing or runs another
// image than the one applied (then it is applied again).
func observeAddons(ctx context.Context, cs kubernetes.Interface, addons []resources.Addon) ([]quorumv1alpha1.AddonStatus, bool, error) {
	var out []quorumv1alpha1.AddonStatus
	drifted := false
	for _, a := range addons {
		st := quorumv1alpha1.AddonStatus{Name: a.Name, Version: a.Version}
		for _, o := range a.Objects {
			switch want := o.(type) {
			case *appsv1.Deployment:
				d, err := cs.AppsV1().Deployments(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					drifted = true
					continue
				}
				if err != nil {
					return nil, false, err
				}
				drifted = drifted || d.Spec.Template.Spec.Containers[0].Image != want.Spec.Template.Spec.Containers[0].Image
				st.Desired = ptr.Deref(d.Spec.Replicas, 1)
				if d.Status.ObservedGeneration == d.Generation {
					st.Ready = min(d.Status.ReadyReplicas, d.Status.UpdatedReplicas)
				}
			case *appsv1.DaemonSet:
				d, err := cs.AppsV1().DaemonSets(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					drifted = true
					continue
				}
				if err != nil {
					return nil, false, err
				}
				drifted = drifted || d.Spec.Template.Spec.Containers[0].Image != want.Spec.Template.Spec.Containers[0].Image
				st.Desired = d.Status.DesiredNumberScheduled
				if d.Status.ObservedGeneration == d.Generation {
					st.Ready = min(d.Status.NumberReady, d.Status.UpdatedNumberScheduled)
				}
			}
		}
		out = append(out, st)
	}
	return out, drifted, nil
}
