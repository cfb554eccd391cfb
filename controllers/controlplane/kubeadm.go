package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/kubernetes"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

// What `kubeadm join` expects in the cluster it joins, as `kubeadm init`
// makes it (k8s.io/kubernetes/cmd/kubeadm/app/phases/bootstraptoken and
// uploadconfig): the cluster-info ConfigMap anyone may read (its JWS
// signatures come from kube-controller-manager's bootstrapsigner), the
// kubeadm and kubelet configurations nodes and bootstrap tokens may read,
// and the bindings that let a bootstrap token ask for a node client
// certificate, have it approved, and a node renew its own.

// joinObjects are the ConfigMaps' contents, for one control plane.
type joinObjects struct {
	clusterInfo   []byte
	clusterConfig string
	kubeletConfig string
}

// desiredJoinObjects builds them from the control plane and its admin
// kubeconfig (its endpoint and CA bundle).
func desiredJoinObjects(cp *quorumv1alpha1.ControlPlane, adminKubeconfig []byte) (joinObjects, error) {
	info, err := resources.ClusterInfo(adminKubeconfig)
	if err != nil {
		return joinObjects{}, err
	}
	cluster, err := resources.KubeadmClusterConfiguration(cp)
	if err != nil {
		return joinObjects{}, err
	}
	kubelet, err := resources.KubeletConfiguration(cp)
	if err != nil {
		return joinObjects{}, err
	}
	return joinObjects{clusterInfo: info, clusterConfig: cluster, kubeletConfig: kubelet}, nil
}

// fingerprint changes when any of the contents does.
func (j joinObjects) fingerprint() string {
	h := sha256.New()
	for _, part := range [][]byte{j.clusterInfo, []byte(j.clusterConfig), []byte(j.kubeletConfig)} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ensureJoinObjects applies them through the hosted API.
func ensureJoinObjects(ctx context.Context, cs kubernetes.Interface, j joinObjects) error {
	opts := metav1.ApplyOptions{FieldManager: hostedRBACManager, Force: true}
	core := cs.CoreV1()
	if _, err := core.ConfigMaps(metav1.NamespacePublic).Apply(ctx, corev1ac.ConfigMap(resources.ClusterInfoConfigMap, metav1.NamespacePublic).
		WithData(map[string]string{resources.ClusterInfoKey: string(j.clusterInfo)}), opts); err != nil {
		return err
	}
	if _, err := core.ConfigMaps(metav1.NamespaceSystem).Apply(ctx, corev1ac.ConfigMap(resources.KubeadmConfigMap, metav1.NamespaceSystem).
		WithData(map[string]string{resources.KubeadmClusterConfigKey: j.clusterConfig}), opts); err != nil {
		return err
	}
	if _, err := core.ConfigMaps(metav1.NamespaceSystem).Apply(ctx, corev1ac.ConfigMap(resources.KubeletConfigMap, metav1.NamespaceSystem).
		WithData(map[string]string{resources.KubeletConfigKey: j.kubeletConfig}), opts); err != nil {
		return err
	}

	rbac := cs.RbacV1()
	group := func(name string) *rbacac.SubjectApplyConfiguration {
		return rbacac.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(rbacv1.GroupKind).WithName(name)
	}
	nodesAndTokens := []*rbacac.SubjectApplyConfiguration{group(resources.NodeBootstrapGroup), group("system:nodes")}
	// Roles on one ConfigMap each, in kube-public for anyone (the
	// cluster-info a joining node reads before it has any credential) and
	// in kube-system for nodes and bootstrap tokens.
	for _, r := range []struct {
		name, namespace, configMap string
		subjects                   []*rbacac.SubjectApplyConfiguration
	}{
		{"kubeadm:bootstrap-signer-clusterinfo", metav1.NamespacePublic, resources.ClusterInfoConfigMap,
			[]*rbacac.SubjectApplyConfiguration{rbacac.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(rbacv1.UserKind).WithName("system:anonymous")}},
		{"kubeadm:nodes-kubeadm-config", metav1.NamespaceSystem, resources.KubeadmConfigMap, nodesAndTokens},
		{"kubeadm:kubelet-config", metav1.NamespaceSystem, resources.KubeletConfigMap, nodesAndTokens},
	} {
		if _, err := rbac.Roles(r.namespace).Apply(ctx, rbacac.Role(r.name, r.namespace).
			WithRules(rbacac.PolicyRule().WithAPIGroups("").WithResources("configmaps").WithResourceNames(r.configMap).WithVerbs("get")), opts); err != nil {
			return err
		}
		if _, err := rbac.RoleBindings(r.namespace).Apply(ctx, rbacac.RoleBinding(r.name, r.namespace).
			WithRoleRef(rbacac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("Role").WithName(r.name)).
			WithSubjects(r.subjects...), opts); err != nil {
			return err
		}
	}
	// kubeadm join looks for a node of its name before it bootstraps.
	if _, err := rbac.ClusterRoles().Apply(ctx, rbacac.ClusterRole("kubeadm:get-nodes").
		WithRules(rbacac.PolicyRule().WithAPIGroups("").WithResources("nodes").WithVerbs("get")), opts); err != nil {
		return err
	}
	for _, b := range []struct{ name, role, group string }{
		{"kubeadm:get-nodes", "kubeadm:get-nodes", resources.NodeBootstrapGroup},
		// A bootstrap token may ask for a node client certificate...
		{"kubeadm:kubelet-bootstrap", "system:node-bootstrapper", resources.NodeBootstrapGroup},
		// ...which kube-controller-manager approves...
		{"kubeadm:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", resources.NodeBootstrapGroup},
		// ...and a node may renew its own.
		{"kubeadm:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "system:nodes"},
	} {
		if _, err := rbac.ClusterRoleBindings().Apply(ctx, rbacac.ClusterRoleBinding(b.name).
			WithRoleRef(rbacac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(b.role)).
			WithSubjects(group(b.group)), opts); err != nil {
			return err
		}
	}
	return nil
}
