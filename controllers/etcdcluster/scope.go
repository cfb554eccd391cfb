package etcdcluster

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
)

// access is the operator's own ability to talk to the members. A failure
// here is the operator's trouble, never evidence about etcd.
type access struct {
	// reason is "" when access works, else ClientCredentialsInvalid (the
	// client Secret cannot be used), ClientCredentialsRejected (members
	// refuse it) or OperatorNetwork (members serve their kubelets' probes
	// but do not answer the operator).
	reason  string
	message string
}

func (a access) ok() bool { return a.reason == "" }

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

	// Status is the member's own answer; nil when it did not answer, and
	// Failure then says whether the call failed at the network level or
	// the member refused the operator's credentials.
	Status  *etcd.Status
	Failure etcd.Failure
	// Healthy is true when the member answered and knows a leader.
	Healthy bool
	Leader  bool
	// PodServing is true when its kubelet reports its pod Ready on a Ready
	// node: etcd's /readyz, which includes a linearizable read, passed
	// moments ago. It is evidence of quorum that does not depend on the
	// operator's own view.
	PodServing bool
	// Version is what the member reports running; PodVersion is the
	// version its pod was made for.
	Version    string
	PodVersion string
	Created    time.Time
	// Expandable is true when its volume's StorageClass allows expansion.
	Expandable bool
}

// Voter is a member of the raft group that votes.
func (m *memberState) Voter() bool { return m.InEtcd && !m.Learner }

// scope is one reconcile's observation of a cluster.
type scope struct {
	cluster *quorumv1alpha1.EtcdCluster
	now     time.Time

	members map[string]*memberState
	// listed is true when etcd answered the member list; clusterID is then
	// the cluster's ID. linearizable is true when that list was read
	// through the leader: only such a list is evidence enough to remove a
	// member or delete the objects of one etcd does not list.
	listed       bool
	linearizable bool
	clusterID    uint64
	listErr      error
	leaderID     uint64

	// access is whether the operator itself can talk to the members.
	access access
	// alarms are the alarms etcd reports; alarmsKnown is false when they
	// could not be read this pass.
	alarms      []etcd.Alarm
	alarmsKnown bool

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

	// certs are the certificates the operator issued (auto TLS only).
	certs *certObservation
}

// certObservation is what the certificate Secrets hold.
type certObservation struct {
	// ca issues leaves; next is a new CA trusted but not issuing yet (a
	// rotation's first phase); trust is the bundle every holder verifies
	// with.
	ca    *x509.Certificate
	next  *x509.Certificate
	trust []byte
	// rotation is the CA rotation the CA Secret records.
	rotation reconciler.CARotation
	client   certInfo
	members  map[string]certInfo
	// consumers are the ControlPlanes that reach etcd with this CA,
	// observed only during a rotation.
	consumers []consumer
}

// consumer is a ControlPlane whose apiservers reach this cluster, and the
// etcd credentials all its replicas run (known once they all run the
// current template).
type consumer struct {
	name         string
	known        bool
	trustedCAs   []string
	clientIssuer string
}

// certInfo is one issued certificate (for a member, the earlier-expiring of
// its peer and server certificates) and when the operator issued it.
type certInfo struct {
	// leaves are the certificates; trust is the Secret's ca.crt.
	leaves   []*x509.Certificate
	trust    []byte
	notAfter time.Time
	issuedAt time.Time
	// issued is the Secret's issue annotation as written ("" on Secrets
	// made before it was recorded).
	issued string
	// ok is false when the Secret holds no readable certificate.
	ok bool
}

// observeCertificates reads the CA, client and member certificate Secrets.
func (r *Reconciler) observeCertificates(ctx context.Context, s *scope) error {
	c := s.cluster
	secrets := &corev1.SecretList{}
	if err := r.List(ctx, secrets, client.InNamespace(c.Namespace), client.MatchingLabels{resources.LabelCluster: c.Name}); err != nil {
		return err
	}
	o := &certObservation{members: map[string]certInfo{}}
	for i := range secrets.Items {
		sec := &secrets.Items[i]
		if !metav1.IsControlledBy(sec, c) {
			continue
		}
		switch {
		case sec.Name == resources.CASecretName(c.Name):
			if ca, err := pki.CAFromSecret(sec); err == nil {
				o.ca = ca.Cert
				o.trust = resources.CATrust(sec.Data)
				o.rotation = reconciler.ReadCARotation(sec.Annotations)
				if next, err := pki.ParseCertificate(sec.Data[resources.KeyNextCACert]); err == nil {
					o.next = next
				}
			}
		case sec.Name == resources.ClientSecretName(c.Name):
			o.client = readCert(sec, corev1.TLSCertKey)
		case sec.Labels[resources.LabelMember] != "":
			o.members[sec.Labels[resources.LabelMember]] = readCert(sec, resources.KeyPeerCert, resources.KeyServerCert)
		}
	}
	if o.ca == nil {
		return nil
	}
	s.certs = o
	if o.rotation.Phase != "" {
		consumers, err := r.observeConsumers(ctx, c)
		if err != nil {
			return err
		}
		o.consumers = consumers
	}
	return nil
}

// observeConsumers lists the ControlPlanes that reach this cluster with
// its CA: those naming it in etcd.clusterRef, and the stacked control plane
// it belongs to.
func (r *Reconciler) observeConsumers(ctx context.Context, c *quorumv1alpha1.EtcdCluster) ([]consumer, error) {
	list := &quorumv1alpha1.ControlPlaneList{}
	if err := r.List(ctx, list, client.InNamespace(c.Namespace)); err != nil {
		return nil, err
	}
	var out []consumer
	for i := range list.Items {
		cp := &list.Items[i]
		ref := cp.Spec.Etcd.ClusterRef != nil && cp.Spec.Etcd.ClusterRef.Name == c.Name
		stacked := cp.Spec.Etcd.Stacked != nil && c.Labels[resources.LabelControlPlane] == cp.Name
		if (!ref && !stacked) || cp.DeletionTimestamp != nil {
			continue
		}
		cons := consumer{name: cp.Name}
		if ec := cp.Status.EtcdCredentials; ec != nil {
			cons.known, cons.trustedCAs, cons.clientIssuer = true, ec.TrustedCAs, ec.ClientIssuer
		}
		out = append(out, cons)
	}
	return out, nil
}

// readCert reads the certificates under keys of a Secret: the earliest
// expiry, and the issue time its annotation records (else the newest
// certificate's NotBefore).
func readCert(sec *corev1.Secret, keys ...string) certInfo {
	info := certInfo{ok: true}
	for _, k := range keys {
		cert, err := pki.ParseCertificate(sec.Data[k])
		if err != nil {
			return certInfo{}
		}
		info.leaves = append(info.leaves, cert)
		if info.notAfter.IsZero() || cert.NotAfter.Before(info.notAfter) {
			info.notAfter = cert.NotAfter
		}
		if cert.NotBefore.After(info.issuedAt) {
			info.issuedAt = cert.NotBefore
		}
	}
	info.trust = sec.Data[resources.KeyCA]
	info.issued = sec.Annotations[annotationIssuedAt]
	if t, err := time.Parse(time.RFC3339, info.issued); err == nil {
		info.issuedAt = t
	}
	return info
}

// runsOldCertificates says whether a member's pod started before its
// certificate Secret was last issued: its pod records the issue it started
// with; a pod from before that was recorded is compared by age.
func runsOldCertificates(m *memberState, ci certInfo) bool {
	if m.Pod == nil || ci.issued == "" {
		return false
	}
	if started, ok := m.Pod.Annotations[resources.AnnotationCertificatesIssuedAt]; ok {
		return started != ci.issued
	}
	return ci.issuedAt.After(m.Pod.CreationTimestamp.Time)
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
	// Whether each volume can grow, from its StorageClass.
	classes := map[string]bool{}
	for _, m := range s.members {
		if m.PVC == nil || m.PVC.Spec.StorageClassName == nil {
			continue
		}
		name := *m.PVC.Spec.StorageClassName
		expandable, ok := classes[name]
		if !ok {
			sc := &storagev1.StorageClass{}
			if err := r.Get(ctx, client.ObjectKey{Name: name}, sc); err == nil {
				expandable = sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion
			} else if !apierrors.IsNotFound(err) {
				return nil, err
			}
			classes[name] = expandable
		}
		m.Expandable = expandable
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
	if resources.AutoTLS(c) {
		if err := r.observeCertificates(ctx, s); err != nil {
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

// observeEtcd asks every member for its own status, at its pod IP (TLS
// still verifies the member's name: reaching members does not depend on
// cluster DNS), then the member list (linearizable when a member knows a
// leader, else serializable) and the alarms. It records whether the
// operator's own credentials and network work, apart from what etcd says.
func (r *Reconciler) observeEtcd(ctx context.Context, s *scope) {
	c := s.cluster
	var endpoints []string
	addresses := map[string]string{}
	for _, m := range s.sortedMembers() {
		m.PodServing = m.Pod != nil && m.Pod.DeletionTimestamp == nil && m.NodeReady && podReady(m.Pod)
		if m.Pod != nil && m.Pod.Status.PodIP != "" {
			endpoints = append(endpoints, resources.ClientURL(m.Name, c.Name, c.Namespace))
			addresses[resources.MemberHost(m.Name, c.Name, c.Namespace)] = m.Pod.Status.PodIP
		}
	}
	if len(endpoints) == 0 {
		return
	}
	tlsConfig, err := r.clientTLS(ctx, c, s.now)
	if err != nil {
		s.access = access{reason: "ClientCredentialsInvalid", message: err.Error()}
		s.listErr = err
		return
	}
	cl, err := r.Dial(endpoints, tlsConfig, addresses)
	if err != nil {
		s.listErr = err
		return
	}
	s.etcd = cl

	// Every member's own answer, in parallel, each bounded.
	var wg sync.WaitGroup
	var mu sync.Mutex
	leaders := map[uint64]int{}
	var rejected []string
	answered := 0
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
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				m.Failure = etcd.Classify(err)
				if m.Failure == etcd.Rejected {
					rejected = append(rejected, fmt.Sprintf("%s: %v", m.Name, err))
				}
				return
			}
			answered++
			m.Status = st
			m.Healthy = st.Leader != 0
			if st.Version != "" {
				m.Version = st.Version
			}
			if st.Leader != 0 {
				leaders[st.Leader]++
			}
		}(m)
	}
	wg.Wait()
	if answered == 0 && len(rejected) == 0 {
		// gRPC may report a refused certificate as a mere timeout: one
		// plain TLS handshake with a member tells.
		for _, m := range s.sortedMembers() {
			if m.Pod == nil || m.Pod.Status.PodIP == "" {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := etcd.ProbeTLS(pctx, net.JoinHostPort(m.Pod.Status.PodIP, fmt.Sprint(resources.ClientPort)), resources.MemberHost(m.Name, c.Name, c.Namespace), tlsConfig)
			cancel()
			if err != nil && etcd.Classify(err) == etcd.Rejected {
				rejected = append(rejected, fmt.Sprintf("%s: %v", m.Name, err))
			}
			break
		}
	}
	if answered == 0 && len(rejected) > 0 {
		sort.Strings(rejected)
		s.access = access{reason: "ClientCredentialsRejected", message: "members refuse the operator's client certificate: " + strings.Join(rejected, "; ")}
	}
	// The leader is the one most members name.
	best := 0
	for id, n := range leaders {
		if n > best || (n == best && id < s.leaderID) {
			s.leaderID, best = id, n
		}
	}

	// The membership: through the leader when one is known, so that it is
	// the membership as it stands; otherwise a member's own view, which is
	// enough to report and to bring pods back, never to remove anything.
	if s.leaderID != 0 {
		listCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		members, clusterID, err := cl.MemberList(listCtx, true)
		cancel()
		if err == nil {
			s.setMembership(members, clusterID, true)
		}
		alarmCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		s.alarms, err = cl.AlarmList(alarmCtx)
		cancel()
		s.alarmsKnown = err == nil
	}
	if !s.listed && s.access.ok() {
		listCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		members, clusterID, err := cl.MemberList(listCtx, false)
		cancel()
		if err != nil {
			s.listErr = err
		} else {
			s.setMembership(members, clusterID, false)
		}
	}
	for _, m := range s.members {
		m.Leader = m.InEtcd && m.ID == s.leaderID && s.leaderID != 0
		if !m.InEtcd && m.Status != nil && !s.listed {
			m.ID = m.Status.MemberID
		}
	}

	// Members that serve their kubelets' probes but answer nobody here:
	// the operator's network is at fault, not etcd.
	if s.access.ok() && answered == 0 {
		for _, m := range s.members {
			if m.PodServing {
				s.access = access{reason: "OperatorNetwork", message: fmt.Sprintf(
					"member %s passes its kubelet's readiness probe (a linearizable read) but does not answer the operator at %s: check the network (NetworkPolicies) between the operator and port %d",
					m.Name, m.Pod.Status.PodIP, resources.ClientPort)}
				break
			}
		}
	}
}

// setMembership records etcd's member list.
func (s *scope) setMembership(members []etcd.Member, clusterID uint64, linearizable bool) {
	s.listed, s.linearizable, s.clusterID = true, linearizable, clusterID
	for _, em := range members {
		m := s.member(memberName(em))
		m.InEtcd, m.ID, m.Learner = true, em.ID, em.IsLearner
	}
}

// podReady says whether a pod's Ready condition is True.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
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
