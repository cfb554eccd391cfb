package etcdcluster

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
)

// memberState is everything observed about one member this pass: its pod,
// its volume, its node, and what etcd says of it.
type memberState struct {
	Name string
	Zone string

	// InEtcd is true when the member is in etcd's member list.
	InEtcd  bool
	ID      uint64
	Learner bool

	Pod       *corev1.Pod
	PVC       *corev1.PersistentVolumeClaim
	NodeReady bool // the node of its pod (or volume) is Ready
	NodeName  string

	// Status is the member's own answer; nil when it did not answer.
	Status  *etcd.Status
	Healthy bool
	Leader  bool
	// Version is what the member reports running; PodVersion is the
	// version its pod was made for.
	Version    string
	PodVersion string
	Created    time.Time
}

// Voter is a member of the raft group that votes.
func (m *memberState) Voter() bool { return m.InEtcd && !m.Learner }

// scope is one reconcile's observation of a cluster.
type scope struct {
	cluster *quorumv1alpha1.EtcdCluster
	now     time.Time

	members map[string]*memberState
	// listed is true when etcd answered the member list; clusterID is then
	// the cluster's ID.
	listed    bool
	clusterID uint64
	listErr   error
	leaderID  uint64

	nodes      map[string]*corev1.Node
	readyZones map[string]bool

	// preflight is the pod that checks a new version's image before an
	// upgrade touches any member.
	preflight *corev1.Pod

	etcd etcd.Cluster

	// persisted is the cluster's status as stored in the API server.
	persisted *quorumv1alpha1.EtcdClusterStatus

	// restore is observed when the cluster is to be built from a snapshot.
	restore *restoreObservation
	// backups are the EtcdBackups of this cluster, for RestoreFromBackup.
	backups []quorumv1alpha1.EtcdBackup
}

// observe builds the scope: pods, volumes and nodes from the cache, then the
// member list and each member's status from etcd.
func (r *Reconciler) observe(ctx context.Context, c *quorumv1alpha1.EtcdCluster) (*scope, error) {
	s := &scope{cluster: c, now: r.Clock(), members: map[string]*memberState{}, nodes: map[string]*corev1.Node{}}
	sel := client.MatchingLabels{resources.LabelCluster: c.Name}

	nodes := &corev1.NodeList{}
	if err := r.List(ctx, nodes); err != nil {
		return nil, err
	}
	for i := range nodes.Items {
		s.nodes[nodes.Items[i].Name] = &nodes.Items[i]
	}
	s.readyZones = reconciler.ReadyZones(nodes.Items)

	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(c.Namespace), sel); err != nil {
		return nil, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if !metav1.IsControlledBy(p, c) {
			continue
		}
		if p.Labels[resources.LabelPreflight] != "" {
			s.preflight = p
			continue
		}
		if p.Labels[resources.LabelMember] == "" {
			continue
		}
		m := s.member(p.Labels[resources.LabelMember])
		m.Pod = p
		m.Zone = p.Labels[resources.LabelZone]
		m.PodVersion = p.Labels[resources.LabelVersion]
		m.Version = m.PodVersion
		m.Created = p.CreationTimestamp.Time
	}
	pvcs := &corev1.PersistentVolumeClaimList{}
	if err := r.List(ctx, pvcs, client.InNamespace(c.Namespace), sel); err != nil {
		return nil, err
	}
	for i := range pvcs.Items {
		v := &pvcs.Items[i]
		if !metav1.IsControlledBy(v, c) {
			continue
		}
		m := s.member(v.Labels[resources.LabelMember])
		m.PVC = v
		if m.Zone == "" {
			m.Zone = v.Labels[resources.LabelZone]
		}
		if m.Created.IsZero() || v.CreationTimestamp.Time.Before(m.Created) {
			m.Created = v.CreationTimestamp.Time
		}
	}
	// Members known only from status (their pod and volume are gone) keep
	// their zone, so a replacement goes back there.
	for _, ms := range c.Status.Members {
		if m, ok := s.members[ms.Name]; ok && m.Zone == "" {
			m.Zone = ms.Zone
		}
	}
	for _, m := range s.members {
		m.NodeName, m.NodeReady = s.memberNode(m)
	}

	r.observeEtcd(ctx, s)
	if !s.listed && c.Status.ClusterID != "" {
		// No member answers: the last membership the status recorded is
		// the best knowledge, so a member whose pod is gone can still be
		// brought back from its volume. (A cluster being rebuilt has none.)
		for _, ms := range c.Status.Members {
			var id uint64
			if _, err := fmt.Sscanf(ms.ID, "%x", &id); err != nil || id == 0 {
				continue
			}
			m := s.member(ms.Name)
			m.InEtcd, m.ID, m.Learner = true, id, ms.Role == quorumv1alpha1.RoleLearner
			if m.Zone == "" {
				m.Zone = ms.Zone
			}
		}
	}

	if restoreWanted(c) {
		if err := r.observeRestore(ctx, s); err != nil {
			return nil, err
		}
	}
	if c.Spec.QuorumLossPolicy == quorumv1alpha1.QuorumLossRestoreFromBackup {
		list := &quorumv1alpha1.EtcdBackupList{}
		if err := r.List(ctx, list, client.InNamespace(c.Namespace)); err != nil {
			return nil, err
		}
		s.backups = list.Items
	}
	return s, nil
}

func (s *scope) member(name string) *memberState {
	m, ok := s.members[name]
	if !ok {
		m = &memberState{Name: name}
		s.members[name] = m
	}
	return m
}

// memberNode is the node a member runs on, or the node its volume lives on
// when it has no pod, and whether that node is Ready.
func (s *scope) memberNode(m *memberState) (string, bool) {
	name := ""
	if m.Pod != nil {
		name = m.Pod.Spec.NodeName
	}
	if name == "" && m.PVC != nil {
		name = m.PVC.Annotations["volume.kubernetes.io/selected-node"]
	}
	if name == "" {
		return "", true
	}
	n, ok := s.nodes[name]
	return name, ok && reconciler.NodeReady(n)
}

// observeEtcd asks etcd for its members and each member for its status.
// The member list is a serializable read, so it answers without quorum.
func (r *Reconciler) observeEtcd(ctx context.Context, s *scope) {
	c := s.cluster
	var endpoints []string
	for _, m := range s.sortedMembers() {
		if m.Pod != nil && m.Pod.Status.PodIP != "" {
			endpoints = append(endpoints, resources.ClientURL(m.Name, c.Name, c.Namespace))
		}
	}
	if len(endpoints) == 0 {
		return
	}
	tlsConfig, err := r.clientTLS(ctx, c)
	if err != nil {
		s.listErr = err
		return
	}
	cl, err := r.Dial(endpoints, tlsConfig)
	if err != nil {
		s.listErr = err
		return
	}
	s.etcd = cl
	listCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	members, clusterID, err := cl.MemberList(listCtx)
	cancel()
	if err != nil {
		s.listErr = err
	} else {
		s.listed, s.clusterID = true, clusterID
		for _, em := range members {
			m := s.member(memberName(em))
			m.InEtcd, m.ID, m.Learner = true, em.ID, em.IsLearner
		}
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	leaders := map[uint64]int{}
	for _, m := range s.members {
		if m.Pod == nil || m.Pod.Status.PodIP == "" {
			continue
		}
		wg.Add(1)
		go func(m *memberState) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			st, err := cl.Status(ctx, resources.ClientURL(m.Name, c.Name, c.Namespace))
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			m.Status = st
			m.Healthy = len(st.Errors) == 0 && st.Leader != 0
			if st.Version != "" {
				m.Version = st.Version
			}
			if st.Leader != 0 {
				leaders[st.Leader]++
			}
			if !m.InEtcd && st.MemberID != 0 && !s.listed {
				m.ID = st.MemberID
			}
		}(m)
	}
	wg.Wait()
	// The leader is the one most members name.
	best := 0
	for id, n := range leaders {
		if n > best || (n == best && id < s.leaderID) {
			s.leaderID, best = id, n
		}
	}
	for _, m := range s.members {
		m.Leader = m.InEtcd && m.ID == s.leaderID && s.leaderID != 0
	}
}

// memberName is a member's name: etcd's name once it started, otherwise
// the first label of its peer URL's host (members added as learners have no
// name until they start).
func memberName(m etcd.Member) string {
	if m.Name != "" {
		return m.Name
	}
	for _, u := range m.PeerURLs {
		if parsed, err := url.Parse(u); err == nil {
			return strings.SplitN(parsed.Hostname(), ".", 2)[0]
		}
	}
	return etcd.FormatID(m.ID)
}

// sortedMembers lists the members by name.
func (s *scope) sortedMembers() []*memberState {
	out := make([]*memberState, 0, len(s.members))
	for _, m := range s.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// voters lists the voting members.
func (s *scope) voters() []*memberState {
	var out []*memberState
	for _, m := range s.sortedMembers() {
		if m.Voter() {
			out = append(out, m)
		}
	}
	return out
}

// votersExcept lists the voters other than name.
func (s *scope) votersExcept(name string) []*memberState {
	var out []*memberState
	for _, m := range s.voters() {
		if m.Name != name {
			out = append(out, m)
		}
	}
	return out
}

// PodVersionOr is the version the member's pod runs, or def without a pod.
func (m *memberState) PodVersionOr(def string) string {
	if m != nil && m.PodVersion != "" {
		return m.PodVersion
	}
	return def
}
