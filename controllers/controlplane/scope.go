package controlplane

import (
	"context"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/placement"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
	"quorum.dev/quorum/internal/version"
)

// replicaState is one control-plane replica as observed: its pod, its
// node, and whether its apiserver answers /readyz.
type replicaState struct {
	Name    string
	Zone    string
	Version string
	Hash    string
	Pod     *corev1.Pod
	// Ready is the apiserver container's readiness (/readyz).
	Ready bool
	// UnreadySince is when the apiserver last stopped being ready (or the
	// pod was created, if it never was).
	UnreadySince time.Time
	NodeReady    bool
	Terminating  bool
	// Failed is true when the pod itself failed (phase Failed).
	Failed  bool
	Created time.Time
}

// etcdState is what the control plane knows of its etcd.
type etcdState struct {
	available bool
	reason    string
	message   string
	// busy is true while a stacked control plane's EtcdCluster is making a
	// change or has a member that is not healthy: no replica is touched.
	busy bool
}

// scope is one reconcile's observation of a control plane.
type scope struct {
	cp      *quorumv1alpha1.ControlPlane
	now     time.Time
	stacked bool
	// paused is true when the control plane carries quorum.dev/paused:
	// only its replicas were observed.
	paused bool

	replicas   []*replicaState // sorted by name
	readyZones map[string]bool
	etcd       etcdState

	// version is the version new replicas run: spec.version when the step
	// from the running version is supported, else the running version;
	// keys is the encryption key and its rotation (nil without encryption).
	keys *keyState
	// configRefused says why the replicas' configuration (the audit
	// policy) cannot be used: nothing is created or rolled until it can.
	configRefused, configRefusedReason string
	// versionRefused says why spec.version is not carried out.
	version        string
	versionRefused string
	// template is what a replica is built from now, and hash its template
	// hash: a replica with another hash is rolled.
	template resources.Replica
	hash     string

	leaders quorumv1alpha1.ControlPlaneLeaders
	// hostedPending says why the hosted cluster's own objects (the RBAC
	// the admin credential relies on, what kubeadm join reads) are not
	// made yet; empty once they are, or when not looked at this pass.
	hostedPending string
	// addons are the add-ons as observed in the hosted cluster this pass
	// (nil when not looked at).
	addons []quorumv1alpha1.AddonStatus

	// certificates are the PKI's certificates with their expiry, when the
	// PKI was looked at this pass.
	certificates []quorumv1alpha1.CertificateStatus
	// etcdCredentials are the etcd credentials the current template
	// carries; status reports them once every replica runs it.
	etcdCredentials *quorumv1alpha1.EtcdCredentialsStatus
	// rotation is the CA rotation the PKI Secret records; trust the files
	// replicas verify clients with; caNotAfter when the cluster CA ends.
	rotation   reconciler.CARotation
	trust      resources.PKITrust
	caNotAfter time.Time
}

// observeReplicas lists the replica pods and the nodes.
func (r *Reconciler) observeReplicas(ctx context.Context, s *scope) error {
	nodes := &corev1.NodeList{}
	if err := r.List(ctx, nodes); err != nil {
		return err
	}
	nodeByName := map[string]*corev1.Node{}
	for i := range nodes.Items {
		nodeByName[nodes.Items[i].Name] = &nodes.Items[i]
	}
	s.readyZones = reconciler.ReadyZones(nodes.Items)
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(s.cp.Namespace), client.MatchingLabels(resources.ControlPlaneLabels(s.cp.Name))); err != nil {
		return err
	}
	s.replicas = observedReplicas(pods.Items, nodeByName, s.cp.Name)
	return nil
}

// observedReplicas turns replica pods into replica states.
func observedReplicas(pods []corev1.Pod, nodes map[string]*corev1.Node, cp string) []*replicaState {
	var out []*replicaState
	for i := range pods {
		p := &pods[i]
		if !resources.IsReplicaOf(p, cp) {
			continue
		}
		rs := &replicaState{
			Name: p.Name, Zone: p.Labels[resources.LabelZone], Version: p.Labels[resources.LabelKubernetesVersion],
			Hash: p.Annotations[resources.AnnotationTemplateHash], Pod: p, Created: p.CreationTimestamp.Time,
			Terminating: p.DeletionTimestamp != nil, Failed: p.Status.Phase == corev1.PodFailed,
			NodeReady: true, UnreadySince: p.CreationTimestamp.Time,
		}
		if p.Spec.NodeName != "" {
			n := nodes[p.Spec.NodeName]
			rs.NodeReady = n != nil && reconciler.NodeReady(n)
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.Name == "kube-apiserver" {
				rs.Ready = c.Ready
			}
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.ContainersReady && c.Status != corev1.ConditionTrue && c.LastTransitionTime.After(rs.UnreadySince) {
				rs.UnreadySince = c.LastTransitionTime.Time
			}
		}
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b *replicaState) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// targetVersion is the version new replicas get, and why spec.version is
// refused when it is.
func (s *scope) targetVersion() (string, string) {
	var running []string
	for _, r := range s.live() {
		running = append(running, r.Version)
	}
	return version.Target(s.cp.Spec.Version, version.KubernetesStep, running...)
}

// live are the replicas not being deleted.
func (s *scope) live() []*replicaState {
	var out []*replicaState
	for _, r := range s.replicas {
		if !r.Terminating {
			out = append(out, r)
		}
	}
	return out
}

// readiness counts the live replicas whose apiserver is ready and not.
func (s *scope) readiness() (ready, unready int) {
	for _, r := range s.live() {
		if r.Ready {
			ready++
		} else {
			unready++
		}
	}
	return ready, unready
}

// isLeader says whether a replica holds the controller-manager or
// scheduler lease: it is rolled and removed last.
func (s *scope) isLeader(name string) bool {
	return name != "" && (s.leaders.ControllerManager == name || s.leaders.Scheduler == name)
}

// rollOrder sorts replicas to roll or remove: zone by zone, leaders last.
func (s *scope) rollOrder(rs []*replicaState) []*replicaState {
	out := slices.Clone(rs)
	slices.SortStableFunc(out, func(a, b *replicaState) int {
		if la, lb := s.isLeader(a.Name), s.isLeader(b.Name); la != lb {
			if la {
				return 1
			}
			return -1
		}
		if c := strings.Compare(a.Zone, b.Zone); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

func replicaMembers(rs []*replicaState) []placement.Member {
	return placement.Of(rs, func(r *replicaState) placement.Member {
		return placement.Member{Name: r.Name, Zone: r.Zone, Healthy: r.Ready, Created: r.Created}
	})
}

// keyState is the encryption Secret as observed.
type keyState struct {
	rotation keyRotation
	// superAdmin is the break-glass kubeconfig, for the Rewrite phase.
	superAdmin []byte
}
