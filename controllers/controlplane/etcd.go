package controlplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/resources"
)

// etcdCredentials are how the apiservers authenticate to etcd: a client
// certificate issued from the etcd CA (stacked and clusterRef), or the
// user's own (external).
type etcdCredentials struct {
	// CA issues the client certificate; nil when the certificate is given.
	// Trust is the bundle etcd is verified with (the CA alone when empty):
	// during a CA rotation it holds the old and the new CA.
	CA    *pki.KeyPair
	Trust []byte
	// CACert, Cert and Key are the given credentials when CA is nil.
	CACert, Cert, Key []byte
}

// observeEtcd finds how the apiservers reach etcd and whether it is
// available; a stacked control plane's EtcdCluster is applied first. creds
// is nil when the control plane cannot reach etcd yet (a missing
// EtcdCluster, CA or Secret): s.etcd then says why.
func (r *Reconciler) observeEtcd(ctx context.Context, s *scope) (*etcdCredentials, resources.EtcdAccess, error) {
	cp := s.cp
	switch {
	case cp.Spec.Etcd.Stacked != nil:
		ec := resources.StackedEtcdCluster(cp)
		created := false
		if err := r.Get(ctx, client.ObjectKeyFromObject(ec), &quorumv1alpha1.EtcdCluster{}); apierrors.IsNotFound(err) {
			created = true
		}
		if err := r.ApplyOwned(ctx, cp, ec); err != nil {
			return nil, resources.EtcdAccess{}, err
		}
		if created {
			r.Event(cp, corev1.EventTypeNormal, "EtcdClusterCreated", fmt.Sprintf("created the stacked EtcdCluster %s", ec.Name))
		}
		s.etcd = etcdClusterState(ec)
		creds, err := r.etcdClusterCredentials(ctx, ec)
		if creds == nil && err == nil {
			s.etcd = etcdState{reason: "EtcdClusterCreating", message: "the stacked EtcdCluster is being created"}
		}
		return creds, resources.StackedEtcdAccess(), err

	case cp.Spec.Etcd.ClusterRef != nil:
		name := cp.Spec.Etcd.ClusterRef.Name
		ec := &quorumv1alpha1.EtcdCluster{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: name}, ec); err != nil {
			if apierrors.IsNotFound(err) {
				s.etcd = etcdState{reason: "EtcdClusterNotFound", message: fmt.Sprintf("EtcdCluster %s does not exist in namespace %s", name, cp.Namespace)}
				return nil, resources.EtcdAccess{}, nil
			}
			return nil, resources.EtcdAccess{}, err
		}
		if other, err := r.etcdClusterHolder(ctx, cp, ec); err != nil || other != "" {
			s.etcd = etcdState{reason: "EtcdClusterInUse", message: fmt.Sprintf(
				"EtcdCluster %s already holds the state of ControlPlane %s: two control planes on one etcd would share /registry; give this one its own EtcdCluster", name, other)}
			return nil, resources.EtcdAccess{}, err
		}
		s.etcd = etcdClusterState(ec)
		access := resources.EtcdAccess{Servers: resources.EtcdServers(cp)}
		creds, err := r.etcdClusterCredentials(ctx, ec)
		if creds == nil && err == nil {
			s.etcd = etcdState{reason: "EtcdCredentialsUnavailable", message: fmt.Sprintf("EtcdCluster %s has no CA or client certificate Secret yet", name)}
		}
		return creds, access, err

	default:
		ext := cp.Spec.Etcd.External
		secret := &corev1.Secret{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: ext.SecretRef.Name}, secret); err != nil {
			if apierrors.IsNotFound(err) {
				s.etcd = etcdState{reason: "EtcdSecretNotFound", message: fmt.Sprintf("the etcd client Secret %s does not exist", ext.SecretRef.Name)}
				return nil, resources.EtcdAccess{}, nil
			}
			return nil, resources.EtcdAccess{}, err
		}
		for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
			if len(secret.Data[k]) == 0 {
				s.etcd = etcdState{reason: "EtcdSecretInvalid", message: fmt.Sprintf("the etcd client Secret %s has no %s", ext.SecretRef.Name, k)}
				return nil, resources.EtcdAccess{}, nil
			}
		}
		creds := &etcdCredentials{CACert: secret.Data["ca.crt"], Cert: secret.Data["tls.crt"], Key: secret.Data["tls.key"]}
		s.etcd = r.probeExternal(ctx, ext.Endpoints, creds)
		return creds, resources.EtcdAccess{Servers: resources.EtcdServers(cp)}, nil
	}
}

// etcdClusterHolder is the ControlPlane other than cp that an EtcdCluster
// belongs to, or "": the one that stacks it, else the oldest (then first by
// name) that references it. A second control plane on one EtcdCluster
// would write the same /registry keys.
func (r *Reconciler) etcdClusterHolder(ctx context.Context, cp *quorumv1alpha1.ControlPlane, ec *quorumv1alpha1.EtcdCluster) (string, error) {
	if owner := metav1.GetControllerOf(ec); owner != nil && owner.Kind == "ControlPlane" {
		if owner.Name == cp.Name {
			return "", nil
		}
		return owner.Name, nil
	}
	list := &quorumv1alpha1.ControlPlaneList{}
	if err := r.List(ctx, list, client.InNamespace(cp.Namespace)); err != nil {
		return "", err
	}
	return holderOf(list.Items, ec.Name, cp.Name), nil
}

// holderOf is the control plane of cps that holds EtcdCluster ec, when it
// is not self: the stacked one, else the oldest referencing it (ties by
// name).
func holderOf(cps []quorumv1alpha1.ControlPlane, ec, self string) string {
	var holder *quorumv1alpha1.ControlPlane
	for i := range cps {
		o := &cps[i]
		if o.DeletionTimestamp != nil {
			continue
		}
		if o.Spec.Etcd.Stacked != nil && resources.StackedEtcdName(o.Name) == ec {
			holder = o
			break
		}
		if o.Spec.Etcd.ClusterRef == nil || o.Spec.Etcd.ClusterRef.Name != ec {
			continue
		}
		if holder == nil || o.CreationTimestamp.Before(&holder.CreationTimestamp) ||
			(o.CreationTimestamp.Equal(&holder.CreationTimestamp) && o.Name < holder.Name) {
			holder = o
		}
	}
	if holder == nil || holder.Name == self {
		return ""
	}
	return holder.Name
}

// etcdClusterState reads an EtcdCluster's conditions.
func etcdClusterState(ec *quorumv1alpha1.EtcdCluster) etcdState {
	avail := meta.FindStatusCondition(ec.Status.Conditions, quorumv1alpha1.ConditionAvailable)
	st := etcdState{reason: "EtcdClusterUnavailable", message: fmt.Sprintf("EtcdCluster %s is not available", ec.Name)}
	if avail != nil && avail.Status == metav1.ConditionTrue {
		st = etcdState{available: true, reason: "EtcdClusterAvailable", message: fmt.Sprintf("EtcdCluster %s is available (%d of %d members ready)", ec.Name, ec.Status.ReadyReplicas, ec.Status.Replicas)}
	} else if avail != nil && avail.Message != "" {
		st.message += ": " + avail.Message
	}
	want := int32(3)
	if ec.Spec.Replicas != nil {
		want = *ec.Spec.Replicas
	}
	st.busy = ec.Status.PendingChange != nil || ec.Status.ReadyReplicas != want || ec.Status.Replicas != want || ec.Generation != ec.Status.ObservedGeneration
	return st
}

// etcdClusterCredentials are a client certificate from an EtcdCluster's
// CA, or its client Secret when the CA key is not the operator's; nil while
// the EtcdCluster controller has not made them yet.
func (r *Reconciler) etcdClusterCredentials(ctx context.Context, ec *quorumv1alpha1.EtcdCluster) (*etcdCredentials, error) {
	secret := &corev1.Secret{}
	if resources.AutoTLS(ec) {
		err := r.Get(ctx, client.ObjectKey{Namespace: ec.Namespace, Name: resources.CASecretName(ec.Name)}, secret)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		ca, err := pki.CAFromSecret(secret)
		if err != nil {
			return nil, fmt.Errorf("EtcdCluster %s CA: %w", ec.Name, err)
		}
		return &etcdCredentials{CA: ca, Trust: resources.CATrust(secret.Data)}, nil
	}
	err := r.Get(ctx, client.ObjectKey{Namespace: ec.Namespace, Name: resources.ClientSecretOf(ec)}, secret)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &etcdCredentials{CACert: secret.Data[resources.KeyCA], Cert: secret.Data[corev1.TLSCertKey], Key: secret.Data[corev1.TLSPrivateKeyKey]}, nil
}

// probeExternal asks an external etcd for its member list.
func (r *Reconciler) probeExternal(ctx context.Context, endpoints []string, creds *etcdCredentials) etcdState {
	var cfg *tls.Config
	if strings.HasPrefix(endpoints[0], "https://") {
		c, err := pki.ClientTLSConfig(creds.Cert, creds.Key, creds.CACert)
		if err != nil {
			return etcdState{reason: "EtcdSecretInvalid", message: "the etcd client Secret does not hold a usable certificate: " + err.Error()}
		}
		cfg = c
	}
	dial := r.Dial
	if dial == nil {
		dial = etcd.Dial
	}
	cl, err := dial(endpoints, cfg, nil)
	if err != nil {
		return etcdState{reason: "EtcdUnreachable", message: err.Error()}
	}
	defer func() { _ = cl.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	members, _, err := cl.MemberList(ctx, true)
	if err != nil {
		return etcdState{reason: "EtcdUnreachable", message: "the external etcd does not answer: " + err.Error()}
	}
	return etcdState{available: true, reason: "ExternalEtcdAnswers", message: fmt.Sprintf("the external etcd answers with %d members", len(members))}
}
