package etcdcluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

// Deletion policy: with Retain (the default) a finalizer holds the
// EtcdCluster until its volumes and certificate Secrets are released from
// it (no owner reference, so the garbage collector keeps them) and marked
// with the cluster's ID and, for a volume, its member's ID, role and zone.
// A new EtcdCluster of the same name in the namespace adopts them and
// comes back as the same cluster: same data, same cluster and member IDs.

const (
	// finalizerRetain holds an EtcdCluster whose deletionPolicy is Retain
	// until its data is released.
	finalizerRetain = "quorum.dev/retain-data"
	// annotationRetainedClusterID marks a released volume or Secret with
	// the etcd cluster ID it belongs to.
	annotationRetainedClusterID = "quorum.dev/retained-cluster-id"
	// annotationRetainedMember marks a released volume with its member:
	// "<hex ID>,<role>".
	annotationRetainedMember = "quorum.dev/retained-member"
)

func retainData(c *quorumv1alpha1.EtcdCluster) bool {
	return c.Spec.DeletionPolicy != quorumv1alpha1.DeletionDelete
}

// ensureFinalizer keeps the finalizer in step with the deletion policy; it
// says whether it wrote the object.
func (r *Reconciler) ensureFinalizer(ctx context.Context, c *quorumv1alpha1.EtcdCluster) (bool, error) {
	want := retainData(c)
	if want == controllerutil.ContainsFinalizer(c, finalizerRetain) {
		return false, nil
	}
	if want {
		controllerutil.AddFinalizer(c, finalizerRetain)
	} else {
		controllerutil.RemoveFinalizer(c, finalizerRetain)
	}
	return true, r.Update(ctx, c)
}

// retainedObjects are a cluster's volumes and certificate Secrets.
func (r *Reconciler) retainedObjects(ctx context.Context, c *quorumv1alpha1.EtcdCluster) ([]client.Object, error) {
	sel := []client.ListOption{client.InNamespace(c.Namespace), client.MatchingLabels{resources.LabelCluster: c.Name}}
	pvcs := &corev1.PersistentVolumeClaimList{}
	if err := r.List(ctx, pvcs, sel...); err != nil {
		return nil, err
	}
	secrets := &corev1.SecretList{}
	if err := r.List(ctx, secrets, sel...); err != nil {
		return nil, err
	}
	var out []client.Object
	for i := range pvcs.Items {
		out = append(out, &pvcs.Items[i])
	}
	for i := range secrets.Items {
		out = append(out, &secrets.Items[i])
	}
	return out, nil
}

// release lets go of a deleted cluster's volumes and Secrets, marked so a
// new cluster of the same name can adopt them, then of the finalizer.
func (r *Reconciler) release(ctx context.Context, c *quorumv1alpha1.EtcdCluster) error {
	objs, err := r.retainedObjects(ctx, c)
	if err != nil {
		return err
	}
	members := map[string]quorumv1alpha1.MemberStatus{}
	for _, m := range c.Status.Members {
		members[m.Name] = m
	}
	released := 0
	for _, obj := range objs {
		if !metav1.IsControlledBy(obj, c) {
			continue
		}
		var refs []metav1.OwnerReference
		for _, ref := range obj.GetOwnerReferences() {
			if ref.UID != c.UID {
				refs = append(refs, ref)
			}
		}
		obj.SetOwnerReferences(refs)
		ann := obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[annotationRetainedClusterID] = c.Status.ClusterID
		if _, isPVC := obj.(*corev1.PersistentVolumeClaim); isPVC {
			if m, ok := members[obj.GetLabels()[resources.LabelMember]]; ok && m.ID != "" {
				ann[annotationRetainedMember] = m.ID + "," + string(m.Role)
			}
		}
		obj.SetAnnotations(ann)
		if err := r.Update(ctx, obj); err != nil {
			return err
		}
		released++
	}
	r.Event(c, corev1.EventTypeNormal, "DataRetained", fmt.Sprintf(
		"deletionPolicy Retain: kept %d volumes and Secrets of cluster %s; an EtcdCluster named %s in this namespace adopts them", released, c.Status.ClusterID, c.Name))
	controllerutil.RemoveFinalizer(c, finalizerRetain)
	return r.Update(ctx, c)
}

// adopt takes over the volumes and Secrets a deleted cluster of the same
// name retained, and its membership from them, so the members come back
// from their volumes. It says whether it adopted anything. Volumes of two
// different clusters are never mixed: then nothing is adopted and the
// returned error says so.
func (r *Reconciler) adopt(ctx context.Context, c *quorumv1alpha1.EtcdCluster) (bool, error) {
	objs, err := r.retainedObjects(ctx, c)
	if err != nil {
		return false, err
	}
	var orphans []client.Object
	ids := map[string]bool{}
	for _, obj := range objs {
		id, ok := obj.GetAnnotations()[annotationRetainedClusterID]
		if !ok || metav1.GetControllerOf(obj) != nil {
			continue
		}
		orphans = append(orphans, obj)
		if id != "" {
			ids[id] = true
		}
	}
	if len(orphans) == 0 {
		return false, nil
	}
	if len(ids) > 1 {
		return false, &badInputError{reason: "RetainedDataConflict", msg: fmt.Sprintf(
			"volumes and Secrets retained from %d different clusters named %s are in this namespace: nothing is adopted; delete the ones not wanted", len(ids), c.Name)}
	}
	st := c.Status.DeepCopy()
	for id := range ids {
		st.ClusterID = id
	}
	for _, obj := range orphans {
		if err := controllerutil.SetControllerReference(c, obj, r.Scheme()); err != nil {
			return false, err
		}
		ann := obj.GetAnnotations()
		member := ann[annotationRetainedMember]
		delete(ann, annotationRetainedClusterID)
		delete(ann, annotationRetainedMember)
		obj.SetAnnotations(ann)
		if err := r.Update(ctx, obj); err != nil {
			return false, err
		}
		idHex, role, ok := strings.Cut(member, ",")
		if _, err := strconv.ParseUint(idHex, 16, 64); !ok || err != nil {
			continue
		}
		name := obj.GetLabels()[resources.LabelMember]
		st.Members = append(st.Members, quorumv1alpha1.MemberStatus{
			Name: name, ID: idHex, Zone: obj.GetLabels()[resources.LabelZone], Role: quorumv1alpha1.MemberRole(role),
			PeerURL: resources.PeerURL(name, c.Name, c.Namespace), ClientURL: resources.ClientURL(name, c.Name, c.Namespace),
		})
	}
	if err := r.writeAdopted(ctx, c, st); err != nil {
		return false, err
	}
	r.Event(c, corev1.EventTypeNormal, "DataAdopted", fmt.Sprintf("adopted %d volumes and Secrets retained from cluster %s; %d members come back from their volumes", len(orphans), st.ClusterID, len(st.Members)))
	return true, nil
}

// writeAdopted records the adopted membership in the status.
func (r *Reconciler) writeAdopted(ctx context.Context, c *quorumv1alpha1.EtcdCluster, st *quorumv1alpha1.EtcdClusterStatus) error {
	c.Status = *st
	return r.Status().Update(ctx, c)
}
