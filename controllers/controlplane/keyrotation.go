package controlplane

// Rotation of the encryption-at-rest key, the way the Kubernetes
// documentation prescribes, one phase at a time, each once every replica
// runs the previous one:
//
//	AddKey    a new key is listed second: every apiserver can read it
//	WriteNew  the new key first: new writes use it
//	Rewrite   every Secret of the hosted cluster is written again, so none
//	          is left under the old key
//	DropOld   the old key leaves the configuration
//
// The phase, the trigger answered and the new key's name are annotations
// of the encryption Secret, so a restarted operator goes on. A rotation is
// asked for with a new value of quorum.dev/rotate-encryption-key on the
// ControlPlane.

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

// Annotations of key rotation.
const (
	// AnnotationRotateEncryptionKey on a ControlPlane asks for a rotation of
	// the encryption key on each new value.
	AnnotationRotateEncryptionKey = "quorum.dev/rotate-encryption-key"
	annotationKeyRotationPhase    = "quorum.dev/encryption-rotation-phase"
	annotationKeyRotationTrigger  = "quorum.dev/encryption-rotation-trigger"
	annotationKeyRotationNewKey   = "quorum.dev/encryption-rotation-new-key"
)

// Phases of a key rotation.
const (
	keyPhaseAddKey   = "AddKey"
	keyPhaseWriteNew = "WriteNew"
	keyPhaseRewrite  = "Rewrite"
	keyPhaseDropOld  = "DropOld"
)

var nextKeyPhase = map[string]string{keyPhaseAddKey: keyPhaseWriteNew, keyPhaseWriteNew: keyPhaseRewrite, keyPhaseRewrite: keyPhaseDropOld, keyPhaseDropOld: ""}

var keyPhaseDone = map[string]string{
	keyPhaseAddKey:   "every apiserver can read the new encryption key: it writes with it from now on",
	keyPhaseWriteNew: "every apiserver writes with the new encryption key: every Secret is written again",
	keyPhaseRewrite:  "every Secret is stored under the new encryption key: the old key is dropped",
	keyPhaseDropOld:  "the old encryption key is gone from every apiserver: the rotation is complete",
}

const (
	actStartKeyRotation   actionKind = "StartKeyRotation"
	actAdvanceKeyRotation actionKind = "AdvanceKeyRotation"
	reasonRotatingKey                = "RotatingEncryptionKey"
)

// keyRotation is the rotation the encryption Secret records.
type keyRotation struct {
	phase, trigger, newKey string
}

func readKeyRotation(cp *quorumv1alpha1.ControlPlane, ann map[string]string) keyRotation {
	kr := keyRotation{phase: ann[annotationKeyRotationPhase], newKey: ann[annotationKeyRotationNewKey]}
	var ok bool
	if kr.trigger, ok = ann[annotationKeyRotationTrigger]; !ok {
		// A Secret that records no trigger answered the value there is.
		kr.trigger = cp.Annotations[AnnotationRotateEncryptionKey]
	}
	return kr
}

// shapeKeys orders the keys for the phase: the new key last while it is
// only added, first from WriteNew on, alone once the old is dropped.
func shapeKeys(keys []resources.EncryptionKey, phase, newKey string) ([]resources.EncryptionKey, error) {
	if phase == "" || newKey == "" {
		return keys, nil
	}
	i := slices.IndexFunc(keys, func(k resources.EncryptionKey) bool { return k.Name == newKey })
	var nk resources.EncryptionKey
	if i < 0 {
		if phase != keyPhaseAddKey || len(keys) == 0 {
			return nil, fmt.Errorf("encryption key %s is missing in phase %s", newKey, phase)
		}
		var err error
		if nk, err = resources.NewEncryptionKey(newKey); err != nil {
			return nil, err
		}
	} else {
		nk = keys[i]
		keys = slices.Delete(slices.Clone(keys), i, i+1)
	}
	switch phase {
	case keyPhaseAddKey:
		return append(keys, nk), nil
	case keyPhaseDropOld:
		return []resources.EncryptionKey{nk}, nil
	}
	return append([]resources.EncryptionKey{nk}, keys...), nil
}

// decideKeyRotation starts a rotation on a new trigger once the replicas
// are settled, and moves to the next phase once every replica runs the
// current one.
func decideKeyRotation(s *scope) (action, bool) {
	if !resources.EncryptionEnabled(s.cp) || s.keys == nil {
		return action{}, false
	}
	kr := s.keys.rotation
	if kr.phase == "" {
		t := s.cp.Annotations[AnnotationRotateEncryptionKey]
		if t == "" || t == kr.trigger {
			return action{}, false
		}
		if !settledReplicas(s) {
			return action{kind: actWait, reason: reasonRotatingKey, message: "rotating the encryption key waits until every replica is ready and current"}, true
		}
		return action{kind: actStartKeyRotation, reason: reasonRotatingKey, message: fmt.Sprintf("%s is %q: a new encryption key is added", AnnotationRotateEncryptionKey, t)}, true
	}
	if !settledReplicas(s) {
		return action{kind: actWait, reason: reasonRotatingKey, message: fmt.Sprintf("encryption key rotation phase %s: waiting for every replica to run it", kr.phase)}, true
	}
	return action{kind: actAdvanceKeyRotation, reason: reasonRotatingKey, message: keyPhaseDone[kr.phase]}, true
}

// stepKeyRotation records the next phase on the encryption Secret (the
// next pass shapes its keys); leaving Rewrite first writes every Secret of
// the hosted cluster again.
func (r *Reconciler) stepKeyRotation(ctx context.Context, s *scope, a action) error {
	cp := s.cp
	secret := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: resources.EncryptionSecretName(cp.Name)}, secret); err != nil {
		return err
	}
	kr := readKeyRotation(cp, secret.Annotations)
	if kr.phase != s.keys.rotation.phase {
		return nil // moved on already
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	next := ""
	switch {
	case a.kind == actStartKeyRotation:
		next = keyPhaseAddKey
		secret.Annotations[annotationKeyRotationTrigger] = cp.Annotations[AnnotationRotateEncryptionKey]
		secret.Annotations[annotationKeyRotationNewKey] = newKeyName(r.Clock())
	case kr.phase == keyPhaseRewrite:
		n, err := r.rewriteSecrets(ctx, s)
		if err != nil {
			return fmt.Errorf("writing the hosted cluster's Secrets again under the new key: %w", err)
		}
		r.Event(cp, corev1.EventTypeNormal, "SecretsRewritten", fmt.Sprintf("wrote %d Secrets of the hosted cluster again under encryption key %s", n, kr.newKey))
		next = nextKeyPhase[kr.phase]
	default:
		next = nextKeyPhase[kr.phase]
	}
	secret.Annotations[annotationKeyRotationPhase] = next
	if next == "" {
		delete(secret.Annotations, annotationKeyRotationPhase)
		delete(secret.Annotations, annotationKeyRotationNewKey)
	}
	if err := r.Update(ctx, secret); err != nil {
		return err
	}
	r.Event(cp, corev1.EventTypeNormal, reasonRotatingKey, a.message)
	return nil
}

// rewriteSecrets writes every Secret of the hosted cluster again, unchanged:
// the apiserver stores each under the key it writes with. It uses the
// break-glass credential (the operator's own may not read Secrets), and
// only here.
func (r *Reconciler) rewriteSecrets(ctx context.Context, s *scope) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cs, err := r.hosted(ctx, s.cp, s.keys.superAdmin)
	if err != nil {
		return 0, err
	}
	n, cont := 0, ""
	for {
		list, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{Limit: 200, Continue: cont})
		if err != nil {
			return n, err
		}
		for i := range list.Items {
			sec := &list.Items[i]
			_, err := cs.CoreV1().Secrets(sec.Namespace).Update(ctx, sec, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) {
				// Written since it was listed: under the new key already.
				err = nil
			}
			if err != nil && !apierrors.IsNotFound(err) {
				return n, err
			}
			n++
		}
		if cont = list.Continue; cont == "" {
			return n, nil
		}
	}
}

// newKeyName names a new encryption key: when it was made, and a random
// part, so two keys made in one second (a rotation right after the
// control plane was made) never share a name.
func newKeyName(now time.Time) string {
	return "key-" + now.UTC().Format("20060102t150405") + "-" + utilrand.String(5)
}
