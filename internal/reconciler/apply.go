package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// ApplyOwned makes obj, controlled by owner, what the cluster holds, with
// server-side apply under Quorum's field owner: the fields obj sets are
// Quorum's and drift in them is corrected; fields others own (a node port
// the API server allocated, an annotation a user added) are left alone.
//
// An apply that would change nothing is not sent: an intent already applied
// at the resourceVersion the cache holds is skipped (Cluster API's SSA cache
// model), so a reconcile of an unchanged object writes nothing. Afterwards,
// obj holds the object as stored.
func (b *Base) ApplyOwned(ctx context.Context, owner, obj client.Object) error {
	if err := controllerutil.SetControllerReference(owner, obj, b.Scheme()); err != nil {
		return err
	}
	gvk, err := apiutil.GVKForObject(obj, b.Scheme())
	if err != nil {
		return err
	}
	intent, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	intent["apiVersion"], intent["kind"] = gvk.GroupVersion().String(), gvk.Kind
	// Server-set fields are not part of what Quorum asks for.
	delete(intent, "status")
	for _, f := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields"} {
		unstructured.RemoveNestedField(intent, "metadata", f)
	}
	digest, err := intentDigest(intent)
	if err != nil {
		return err
	}

	current := obj.DeepCopyObject().(client.Object)
	if err := b.Get(ctx, client.ObjectKeyFromObject(obj), current); err == nil {
		if b.applied.has(appliedKey(gvk.String(), obj, current.GetResourceVersion(), digest)) {
			return copyInto(current, obj)
		}
	} else if client.IgnoreNotFound(err) != nil {
		return err
	}

	u := &unstructured.Unstructured{Object: intent}
	err = b.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership)
	if apierrors.IsInvalid(err) {
		// Someone changed a key of a keyed list Quorum sets (a Service
		// port's number): the apply merges both entries into an invalid
		// object. Quorum's fields are put back whole instead.
		u, err = b.replaceFields(ctx, intent)
	}
	if err != nil {
		return fmt.Errorf("applying %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	b.applied.add(appliedKey(gvk.String(), obj, u.GetResourceVersion(), digest))
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj)
}

// replaceFields updates the live object so that every field directly under
// spec (or data, for Secrets) that intent sets holds intent's value whole,
// and intent's labels, annotations and owner references are on it.
func (b *Base) replaceFields(ctx context.Context, intent map[string]any) (*unstructured.Unstructured, error) {
	want := &unstructured.Unstructured{Object: intent}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(want.GroupVersionKind())
	if err := b.Get(ctx, client.ObjectKeyFromObject(want), live); err != nil {
		return nil, err
	}
	for _, section := range []string{"spec", "data", "stringData"} {
		fields, ok := intent[section].(map[string]any)
		if !ok {
			continue
		}
		for k, v := range fields {
			if err := unstructured.SetNestedField(live.Object, runtime.DeepCopyJSONValue(v), section, k); err != nil {
				return nil, err
			}
		}
	}
	labels, annotations := live.GetLabels(), live.GetAnnotations()
	if labels == nil {
		labels = map[string]string{}
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	maps.Copy(labels, want.GetLabels())
	maps.Copy(annotations, want.GetAnnotations())
	live.SetLabels(labels)
	live.SetAnnotations(annotations)
	live.SetOwnerReferences(want.GetOwnerReferences())
	if err := b.Update(ctx, live, client.FieldOwner(FieldOwner)); err != nil {
		return nil, err
	}
	return live, nil
}

// appliedCache remembers which intents were applied at which
// resourceVersion. It only ever grows by one entry per real change of an
// object, and is dropped with the process.
type appliedCache struct{ m sync.Map }

func (c *appliedCache) has(key string) bool { _, ok := c.m.Load(key); return ok }
func (c *appliedCache) add(key string)      { c.m.Store(key, struct{}{}) }

func appliedKey(gvk string, obj client.Object, resourceVersion, digest string) string {
	return gvk + "/" + obj.GetNamespace() + "/" + obj.GetName() + "@" + resourceVersion + "#" + digest
}

func intentDigest(intent map[string]any) (string, error) {
	data, err := json.Marshal(intent) // maps marshal with sorted keys
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func copyInto(from, to client.Object) error {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(from)
	if err != nil {
		return err
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u, to)
}
