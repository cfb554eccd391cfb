package etcdcluster

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
	"quorum.dev/quorum/internal/version"
)

// errNoControlPlane is returned when a stacked EtcdCluster's control plane
// is gone: its pods are not made.
var errNoControlPlane = errors.New("the stacked EtcdCluster's ControlPlane does not exist")

// decorateStacked adds the control-plane containers to a stacked
// EtcdCluster's member pod, built exactly as the ControlPlane controller
// builds replicas: the same version rule, the same Secrets, the same
// template hash.
func (r *Reconciler) decorateStacked(ctx context.Context, ec *quorumv1alpha1.EtcdCluster, pod *corev1.Pod) error {
	name := ec.Labels[resources.LabelControlPlane]
	cp := &quorumv1alpha1.ControlPlane{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ec.Namespace, Name: name}, cp); err != nil {
		if apierrors.IsNotFound(err) {
			return errNoControlPlane
		}
		return err
	}
	var secrets []map[string][]byte
	for _, n := range resources.ReplicaSecretNames(cp) {
		s := &corev1.Secret{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ec.Namespace, Name: n}, s); err != nil {
			return fmt.Errorf("control plane %s is not ready for its replicas: %w", name, err)
		}
		secrets = append(secrets, s.Data)
	}
	for _, n := range resources.ReplicaConfigMapNames(cp) {
		cm := &corev1.ConfigMap{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ec.Namespace, Name: n}, cm); err != nil {
			return fmt.Errorf("control plane %s is not ready for its replicas: %w", name, err)
		}
		data, err := resources.AuditPolicy(cm)
		if err != nil {
			return fmt.Errorf("control plane %s: %w", name, err)
		}
		secrets = append(secrets, data)
	}
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(ec.Namespace), client.MatchingLabels(resources.ControlPlaneLabels(name))); err != nil {
		return err
	}
	var running []string
	for i := range pods.Items {
		if p := &pods.Items[i]; resources.IsReplicaOf(p, name) && p.DeletionTimestamp == nil {
			running = append(running, p.Labels[resources.LabelKubernetesVersion])
		}
	}
	target, _ := version.Target(cp.Spec.Version, version.KubernetesStep, running...)
	resources.Replica{ControlPlane: cp, Version: target, PKIHash: resources.SecretsHash(secrets...), Trust: resources.TrustOf(secrets[0]), Etcd: resources.StackedEtcdAccess()}.Decorate(pod)
	return nil
}
