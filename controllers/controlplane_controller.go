package controllers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/resources"
)

// ControlPlaneReconciler keeps a hosted control plane's replicas alive
// behind its endpoint: PKI and kubeconfigs, the endpoint Service, the
// replicas (zone-spread, replaced, scaled and rolled one at a time), and a
// status read from the pods and, for the leader leases, the hosted API.
type ControlPlaneReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	// Dial opens an etcd client (external etcd is probed); tests fake it.
	Dial etcd.Dialer
	// Now is the clock; tests set it.
	Now func() time.Time
	// Hosted opens a client to a control plane's own API (leader leases);
	// nil uses the admin kubeconfig through the endpoint Service's DNS name.
	Hosted func(ctx context.Context, cp *quorumv1alpha1.ControlPlane, adminKubeconfig []byte) (kubernetes.Interface, error)
}

// +kubebuilder:rbac:groups=quorum.dev,resources=controlplanes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=quorum.dev,resources=controlplanes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=quorum.dev,resources=etcdclusters,verbs=get;list;watch;create;update;patch

// Reconcile makes a control plane's PKI, endpoint and etcd access, makes
// the one replica change the rules allow, and writes the status.
func (r *ControlPlaneReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	cp := &quorumv1alpha1.ControlPlane{}
	if err := r.Get(ctx, req.NamespacedName, cp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cp.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	persisted := cp.Status.DeepCopy()
	s := &cpScope{cp: cp, now: r.now(), stacked: cp.Spec.Etcd.Stacked != nil, readyZones: map[string]bool{}}

	svc, err := r.ensureEndpoint(ctx, cp)
	if err != nil {
		return ctrl.Result{}, err
	}
	creds, access, err := r.observeEtcd(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	if creds == nil {
		// No way to reach etcd yet: nothing is started, the condition says why.
		if err := r.observeReplicas(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: healthInterval}, r.writeControlPlaneStatus(ctx, cp, persisted, s, cpAction{kind: cpWait, reason: reasonWaitEtcd, message: s.etcd.message})
	}
	hash, admin, err := r.ensurePKI(ctx, cp, svc, creds)
	if err != nil {
		return ctrl.Result{}, err
	}
	if s.stacked {
		if err := r.ensureStackedEtcd(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.observeReplicas(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	s.version, s.versionRefused = targetVersion(cp, s.live())
	s.hash = resources.Replica{ControlPlane: cp, Version: s.version, Etcd: access, PKIHash: hash}.TemplateHash()
	s.leaders = r.readLeaders(ctx, s, admin)

	a := decideControlPlane(s)
	if a.kind != cpNone && a.kind != cpWait {
		log.Info("acting", "action", a.kind, "replica", a.replica, "zone", a.zone, "reason", a.reason, "detail", a.message)
	}
	stepErr := r.executeControlPlane(ctx, s, a, resources.Replica{ControlPlane: cp, Version: s.version, Etcd: access, PKIHash: hash})
	if err := r.writeControlPlaneStatus(ctx, cp, persisted, s, a); err != nil {
		return ctrl.Result{}, err
	}
	if stepErr != nil {
		return ctrl.Result{}, stepErr
	}
	if a.kind == cpNone {
		return ctrl.Result{RequeueAfter: healthInterval}, nil
	}
	return ctrl.Result{RequeueAfter: stepInterval}, nil
}

func (r *ControlPlaneReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *ControlPlaneReconciler) event(cp *quorumv1alpha1.ControlPlane, kind, reason, msg string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(cp, nil, kind, reason, reason, "%s", msg)
	}
}

// createOwned creates obj controlled by owner; AlreadyExists is fine.
func (r *ControlPlaneReconciler) createOwned(ctx context.Context, owner client.Object, obj client.Object) error {
	return createOwned(ctx, r.Client, r.Scheme, owner, obj)
}

// ensureEndpoint creates the endpoint Service or brings back the fields
// Quorum owns, and returns it as stored (its IPs go into the serving
// certificate).
func (r *ControlPlaneReconciler) ensureEndpoint(ctx context.Context, cp *quorumv1alpha1.ControlPlane) (*corev1.Service, error) {
	want := resources.EndpointService(cp)
	svc := &corev1.Service{}
	err := r.Get(ctx, client.ObjectKeyFromObject(want), svc)
	if apierrors.IsNotFound(err) {
		if err := r.createOwned(ctx, cp, want); err != nil {
			return nil, err
		}
		return want, r.Get(ctx, client.ObjectKeyFromObject(want), svc)
	}
	if err != nil {
		return nil, err
	}
	changed := false
	if svc.Spec.Type != want.Spec.Type || !servicePortsEqual(svc.Spec.Ports, want.Spec.Ports) || !maps.Equal(svc.Spec.Selector, want.Spec.Selector) {
		svc.Spec.Type, svc.Spec.Selector = want.Spec.Type, want.Spec.Selector
		// Keep the node ports the API server gave.
		for i := range want.Spec.Ports {
			for _, old := range svc.Spec.Ports {
				if old.Name == want.Spec.Ports[i].Name && want.Spec.Type != corev1.ServiceTypeClusterIP {
					want.Spec.Ports[i].NodePort = old.NodePort
				}
			}
		}
		svc.Spec.Ports = want.Spec.Ports
		changed = true
	}
	for k, v := range want.Annotations {
		if svc.Annotations[k] != v {
			if svc.Annotations == nil {
				svc.Annotations = map[string]string{}
			}
			svc.Annotations[k] = v
			changed = true
		}
	}
	if !changed {
		return svc, nil
	}
	return svc, r.Update(ctx, svc)
}

// observeEtcd finds how the apiservers reach etcd and whether it is
// available. creds is nil when the control plane cannot reach etcd at all
// (a missing EtcdCluster or Secret): s.etcd then says why.
func (r *ControlPlaneReconciler) observeEtcd(ctx context.Context, s *cpScope) (*etcdCredentials, resources.EtcdAccess, error) {
	cp := s.cp
	switch {
	case cp.Spec.Etcd.Stacked != nil:
		ca, err := r.ensureStackedEtcdCA(ctx, cp)
		if err != nil {
			return nil, resources.EtcdAccess{}, err
		}
		ec := &quorumv1alpha1.EtcdCluster{}
		err = r.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: resources.StackedEtcdName(cp.Name)}, ec)
		switch {
		case apierrors.IsNotFound(err):
			s.etcd = cpEtcd{reason: "EtcdClusterCreating", message: "the stacked EtcdCluster is being created"}
		case err != nil:
			return nil, resources.EtcdAccess{}, err
		default:
			s.etcd = etcdClusterState(ec)
		}
		return &etcdCredentials{CA: ca}, resources.EtcdAccess{Servers: fmt.Sprintf("https://127.0.0.1:%d", resources.ClientPort)}, nil

	case cp.Spec.Etcd.ClusterRef != nil:
		name := cp.Spec.Etcd.ClusterRef.Name
		ec := &quorumv1alpha1.EtcdCluster{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: name}, ec); err != nil {
			if apierrors.IsNotFound(err) {
				s.etcd = cpEtcd{reason: "EtcdClusterNotFound", message: fmt.Sprintf("EtcdCluster %s does not exist in namespace %s", name, cp.Namespace)}
				return nil, resources.EtcdAccess{}, nil
			}
			return nil, resources.EtcdAccess{}, err
		}
		s.etcd = etcdClusterState(ec)
		access := resources.EtcdAccess{Servers: fmt.Sprintf("https://%s.%s.svc:%d", resources.ClientServiceName(name), cp.Namespace, resources.ClientPort)}
		creds, err := r.etcdClusterCredentials(ctx, ec)
		if err != nil || creds == nil {
			if creds == nil && err == nil {
				s.etcd = cpEtcd{reason: "EtcdCredentialsUnavailable", message: fmt.Sprintf("EtcdCluster %s has no CA or client certificate Secret yet", name)}
			}
			return nil, access, err
		}
		return creds, access, nil

	default:
		ext := cp.Spec.Etcd.External
		secret := &corev1.Secret{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: ext.SecretRef.Name}, secret); err != nil {
			if apierrors.IsNotFound(err) {
				s.etcd = cpEtcd{reason: "EtcdSecretNotFound", message: fmt.Sprintf("the etcd client Secret %s does not exist", ext.SecretRef.Name)}
				return nil, resources.EtcdAccess{}, nil
			}
			return nil, resources.EtcdAccess{}, err
		}
		for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
			if len(secret.Data[k]) == 0 {
				s.etcd = cpEtcd{reason: "EtcdSecretInvalid", message: fmt.Sprintf("the etcd client Secret %s has no %s", ext.SecretRef.Name, k)}
				return nil, resources.EtcdAccess{}, nil
			}
		}
		creds := &etcdCredentials{CACert: secret.Data["ca.crt"], Cert: secret.Data["tls.crt"], Key: secret.Data["tls.key"]}
		s.etcd = r.probeExternal(ctx, ext.Endpoints, creds)
		return creds, resources.EtcdAccess{Servers: strings.Join(ext.Endpoints, ",")}, nil
	}
}

// etcdClusterState reads an EtcdCluster's conditions.
func etcdClusterState(ec *quorumv1alpha1.EtcdCluster) cpEtcd {
	avail := meta.FindStatusCondition(ec.Status.Conditions, quorumv1alpha1.ConditionAvailable)
	st := cpEtcd{reason: "EtcdClusterUnavailable", message: fmt.Sprintf("EtcdCluster %s is not available", ec.Name)}
	if avail != nil && avail.Status == metav1.ConditionTrue {
		st = cpEtcd{available: true, reason: "EtcdClusterAvailable", message: fmt.Sprintf("EtcdCluster %s is available (%d of %d members ready)", ec.Name, ec.Status.ReadyReplicas, ec.Status.Replicas)}
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
// CA, or its client Secret when the CA key is not the operator's.
func (r *ControlPlaneReconciler) etcdClusterCredentials(ctx context.Context, ec *quorumv1alpha1.EtcdCluster) (*etcdCredentials, error) {
	secret := &corev1.Secret{}
	if autoTLS(ec) {
		err := r.Get(ctx, client.ObjectKey{Namespace: ec.Namespace, Name: resources.CASecretName(ec.Name)}, secret)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		ca, err := pki.ParseKeyPair(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey])
		if err != nil {
			return nil, fmt.Errorf("EtcdCluster %s CA: %w", ec.Name, err)
		}
		return &etcdCredentials{CA: ca}, nil
	}
	err := r.Get(ctx, client.ObjectKey{Namespace: ec.Namespace, Name: clientSecretOf(ec)}, secret)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &etcdCredentials{CACert: secret.Data[resources.KeyCA], Cert: secret.Data[corev1.TLSCertKey], Key: secret.Data[corev1.TLSPrivateKeyKey]}, nil
}

// probeExternal asks an external etcd for its member list.
func (r *ControlPlaneReconciler) probeExternal(ctx context.Context, endpoints []string, creds *etcdCredentials) cpEtcd {
	var cfg *tls.Config
	if strings.HasPrefix(endpoints[0], "https://") {
		c, err := pki.ClientTLSConfig(creds.Cert, creds.Key, creds.CACert)
		if err != nil {
			return cpEtcd{reason: "EtcdSecretInvalid", message: "the etcd client Secret does not hold a usable certificate: " + err.Error()}
		}
		cfg = c
	}
	dial := r.Dial
	if dial == nil {
		dial = etcd.Dial
	}
	cl, err := dial(endpoints, cfg)
	if err != nil {
		return cpEtcd{reason: "EtcdUnreachable", message: err.Error()}
	}
	defer func() { _ = cl.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	members, _, err := cl.MemberList(ctx)
	if err != nil {
		return cpEtcd{reason: "EtcdUnreachable", message: "the external etcd does not answer: " + err.Error()}
	}
	return cpEtcd{available: true, reason: "ExternalEtcdAnswers", message: fmt.Sprintf("the external etcd answers with %d members", len(members))}
}

// ensureStackedEtcdCA makes the CA of a stacked control plane's etcd
// before its EtcdCluster exists, so the apiservers' client certificate is
// issued from it in the same pass; the EtcdCluster controller adopts it.
func (r *ControlPlaneReconciler) ensureStackedEtcdCA(ctx context.Context, cp *quorumv1alpha1.ControlPlane) (*pki.KeyPair, error) {
	name := resources.StackedEtcdName(cp.Name)
	secret := &corev1.Secret{}
	err := r.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: resources.CASecretName(name)}, secret)
	if err == nil {
		return pki.ParseKeyPair(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey])
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	ca, secret, err := newEtcdCASecret(cp.Namespace, name)
	if err != nil {
		return nil, err
	}
	return ca, r.createOwned(ctx, cp, secret)
}

// ensureStackedEtcd creates the stacked EtcdCluster, or carries the
// control plane's replicas, zones, etcd version and failure policy to it.
func (r *ControlPlaneReconciler) ensureStackedEtcd(ctx context.Context, s *cpScope) error {
	want := resources.StackedEtcdCluster(s.cp)
	ec := &quorumv1alpha1.EtcdCluster{}
	err := r.Get(ctx, client.ObjectKeyFromObject(want), ec)
	if apierrors.IsNotFound(err) {
		r.event(s.cp, corev1.EventTypeNormal, "EtcdClusterCreated", fmt.Sprintf("created the stacked EtcdCluster %s", want.Name))
		return r.createOwned(ctx, s.cp, want)
	}
	if err != nil {
		return err
	}
	w := want.Spec
	if equality.Semantic.DeepEqual(ec.Spec.Replicas, w.Replicas) && ec.Spec.Version == w.Version && ec.Spec.Image == w.Image &&
		equality.Semantic.DeepEqual(ec.Spec.Zones, w.Zones) && equality.Semantic.DeepEqual(ec.Spec.FailurePolicy, w.FailurePolicy) &&
		equality.Semantic.DeepEqual(ec.Spec.PodTemplate, w.PodTemplate) {
		return nil
	}
	ec.Spec.Replicas, ec.Spec.Version, ec.Spec.Image, ec.Spec.Zones = w.Replicas, w.Version, w.Image, w.Zones
	ec.Spec.FailurePolicy, ec.Spec.PodTemplate = w.FailurePolicy, w.PodTemplate
	return r.Update(ctx, ec)
}

// ensurePKI keeps the PKI Secret and the kubeconfig Secrets current and
// returns the hash replicas are built with and the admin kubeconfig.
func (r *ControlPlaneReconciler) ensurePKI(ctx context.Context, cp *quorumv1alpha1.ControlPlane, svc *corev1.Service, creds *etcdCredentials) (string, []byte, error) {
	in := pkiInput{cp: cp, etcd: *creds, now: r.now()}
	for _, ip := range svc.Spec.ClusterIPs {
		if parsed := net.ParseIP(ip); parsed != nil {
			in.serviceIPs = append(in.serviceIPs, parsed)
		}
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if parsed := net.ParseIP(ing.IP); parsed != nil {
			in.serviceIPs = append(in.serviceIPs, parsed)
		}
		if ing.Hostname != "" {
			in.serviceHosts = append(in.serviceHosts, ing.Hostname)
		}
	}
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: cp.Namespace, Name: resources.PKISecretName(cp.Name)}
	err := r.Get(ctx, key, secret)
	if err != nil && !apierrors.IsNotFound(err) {
		return "", nil, err
	}
	exists := err == nil
	data, renewed, err := planPKI(in, secret.Data)
	if err != nil {
		return "", nil, err
	}
	if !exists {
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: resources.ControlPlaneLabels(cp.Name)},
			Type:       corev1.SecretTypeOpaque, Data: data,
		}
		if err := r.createOwned(ctx, cp, secret); err != nil {
			return "", nil, err
		}
	} else if !equality.Semantic.DeepEqual(secret.Data, data) {
		secret.Data = data
		if err := r.Update(ctx, secret); err != nil {
			return "", nil, err
		}
		if len(renewed) > 0 {
			r.event(cp, corev1.EventTypeNormal, "CertificatesRenewed", "issued "+strings.Join(renewed, ", ")+"; the replicas roll onto them")
		}
	}
	ca, err := pki.ParseKeyPair(data[resources.PKICACert], data[resources.PKICAKey])
	if err != nil {
		return "", nil, err
	}
	all := []map[string][]byte{data}
	var admin []byte
	for _, u := range kubeconfigUsers(cp) {
		ks := &corev1.Secret{}
		kkey := client.ObjectKey{Namespace: cp.Namespace, Name: resources.KubeconfigSecretName(cp.Name, u.name)}
		err := r.Get(ctx, kkey, ks)
		if err != nil && !apierrors.IsNotFound(err) {
			return "", nil, err
		}
		cfg, changed, perr := planKubeconfig(cp, u, ca, ks.Data[resources.KubeconfigKey], in.now)
		if perr != nil {
			return "", nil, perr
		}
		switch {
		case apierrors.IsNotFound(err):
			ks = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: kkey.Name, Namespace: kkey.Namespace, Labels: resources.ControlPlaneLabels(cp.Name)},
				Type:       corev1.SecretTypeOpaque, Data: map[string][]byte{resources.KubeconfigKey: cfg},
			}
			if err := r.createOwned(ctx, cp, ks); err != nil {
				return "", nil, err
			}
		case changed:
			ks.Data = map[string][]byte{resources.KubeconfigKey: cfg}
			if err := r.Update(ctx, ks); err != nil {
				return "", nil, err
			}
		}
		if u.name == resources.KubeconfigAdmin {
			admin = cfg
		} else {
			// The admin kubeconfig is not mounted: renewing it rolls nothing.
			all = append(all, ks.Data)
		}
	}
	return pkiHash(all...), admin, nil
}

// observeReplicas lists the replica pods and the nodes.
func (r *ControlPlaneReconciler) observeReplicas(ctx context.Context, s *cpScope) error {
	nodes := &corev1.NodeList{}
	if err := r.List(ctx, nodes); err != nil {
		return err
	}
	nodeByName := map[string]*corev1.Node{}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		nodeByName[n.Name] = n
		if nodeReady(n) && !n.Spec.Unschedulable {
			s.readyZones[n.Labels[quorumv1alpha1.LabelZone]] = true
		}
	}
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
		if !replicaLabelsOK(p, cp) {
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
			rs.NodeReady = n != nil && nodeReady(n)
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

// readLeaders reads the controller-manager and scheduler leases through
// the hosted API. A lease whose holder stopped renewing names nobody.
func (r *ControlPlaneReconciler) readLeaders(ctx context.Context, s *cpScope, admin []byte) quorumv1alpha1.ControlPlaneLeaders {
	var out quorumv1alpha1.ControlPlaneLeaders
	anyReady := false
	for _, rs := range s.replicas {
		anyReady = anyReady || rs.Ready
	}
	if !anyReady || admin == nil {
		return out
	}
	open := r.Hosted
	if open == nil {
		open = hostedClient
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cs, err := open(ctx, s.cp, admin)
	if err != nil {
		logf.FromContext(ctx).V(1).Info("hosted API unreachable", "error", err.Error())
		return s.cp.Status.Leaders
	}
	holder := func(name string) (string, bool) {
		l, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", true
		}
		if err != nil || l.Spec.HolderIdentity == nil {
			return "", err == nil
		}
		if l.Spec.RenewTime != nil && l.Spec.LeaseDurationSeconds != nil &&
			s.now.After(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second)) {
			return "", true
		}
		// Identities are "<hostname>_<uuid>"; the hostname is the pod's name.
		id, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
		return id, true
	}
	prev := s.cp.Status.Leaders
	out = prev
	if id, ok := holder("kube-controller-manager"); ok {
		out.ControllerManager = id
	}
	if id, ok := holder("kube-scheduler"); ok {
		out.Scheduler = id
	}
	return out
}

// hostedClient reaches a control plane's API through its endpoint
// Service's cluster DNS name, as the admin.
func hostedClient(_ context.Context, cp *quorumv1alpha1.ControlPlane, admin []byte) (kubernetes.Interface, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(admin)
	if err != nil {
		return nil, err
	}
	cfg.Host = fmt.Sprintf("https://%s:%d", resources.EndpointHosts(cp)[len(resources.EndpointHosts(cp))-2], resources.EndpointPort(cp))
	cfg.Timeout = 3 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// executeControlPlane carries out the action.
func (r *ControlPlaneReconciler) executeControlPlane(ctx context.Context, s *cpScope, a cpAction, tmpl resources.Replica) error {
	cp := s.cp
	switch a.kind {
	case cpCreate:
		name := cp.Name + "-" + utilrand.String(5)
		if err := r.createOwned(ctx, cp, tmpl.ReplicaPod(name, a.zone)); err != nil {
			return err
		}
		r.event(cp, corev1.EventTypeNormal, "ReplicaCreated", fmt.Sprintf("%s: created replica %s (%s)", a.message, name, tmpl.Version))
	case cpDelete:
		var pod *corev1.Pod
		for _, rs := range s.replicas {
			if rs.Name == a.replica {
				pod = rs.Pod
			}
		}
		if pod == nil {
			return nil
		}
		opts := []client.DeleteOption{client.Preconditions{UID: &pod.UID}}
		if a.force {
			opts = append(opts, client.GracePeriodSeconds(0))
		}
		if err := r.Delete(ctx, pod, opts...); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		kind := corev1.EventTypeNormal
		if a.reason == reasonReplace {
			kind = corev1.EventTypeWarning
			cpReplacements.WithLabelValues(cp.Namespace, cp.Name).Inc()
		}
		r.event(cp, kind, "ReplicaDeleted", a.message)
	}
	return nil
}

// writeControlPlaneStatus writes the status only when it changed.
func (r *ControlPlaneReconciler) writeControlPlaneStatus(ctx context.Context, cp *quorumv1alpha1.ControlPlane, persisted *quorumv1alpha1.ControlPlaneStatus, s *cpScope, a cpAction) error {
	desired := computeControlPlaneStatus(s, a)
	updateControlPlaneMetrics(cp, desired)
	if desired.Leaders != persisted.Leaders && desired.Leaders.ControllerManager != "" && persisted.Leaders.ControllerManager != "" &&
		desired.Leaders.ControllerManager != persisted.Leaders.ControllerManager {
		r.event(cp, corev1.EventTypeNormal, "LeaderChanged", fmt.Sprintf("kube-controller-manager leader moved from %s to %s", persisted.Leaders.ControllerManager, desired.Leaders.ControllerManager))
	}
	if s.versionRefused != "" && (persisted.Version == "" || !strings.Contains(conditionMessage(persisted.Conditions, quorumv1alpha1.ConditionProgressing), s.versionRefused)) {
		r.event(cp, corev1.EventTypeWarning, "UpgradeRefused", s.versionRefused)
	}
	if equality.Semantic.DeepEqual(*persisted, desired) {
		return nil
	}
	cp.Status = desired
	if err := r.Status().Update(ctx, cp); err != nil {
		return err
	}
	*persisted = *desired.DeepCopy()
	return nil
}

func conditionMessage(conds []metav1.Condition, t string) string {
	if c := meta.FindStatusCondition(conds, t); c != nil {
		return c.Message
	}
	return ""
}

// SetupWithManager watches control planes, their pods (owned directly, or
// through the stacked EtcdCluster), Services, EtcdClusters and nodes.
func (r *ControlPlaneReconciler) SetupWithManager(mgr ctrl.Manager) error {
	byLabel := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []ctrl.Request {
		if name := o.GetLabels()[resources.LabelControlPlane]; name != "" {
			return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
		}
		return nil
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&quorumv1alpha1.ControlPlane{}).
		Owns(&corev1.Service{}).
		Watches(&corev1.Pod{}, byLabel).
		Watches(&quorumv1alpha1.EtcdCluster{}, handler.EnqueueRequestsFromMapFunc(r.controlPlanesInNamespace)).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.allControlPlanes),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: nodeReadinessChanged})).
		Named("controlplane").
		Complete(r)
}

// controlPlanesInNamespace enqueues the control planes that may use an
// EtcdCluster: those of its namespace (a reference may name it before it
// exists).
func (r *ControlPlaneReconciler) controlPlanesInNamespace(ctx context.Context, o client.Object) []ctrl.Request {
	return r.controlPlanes(ctx, client.InNamespace(o.GetNamespace()))
}

func (r *ControlPlaneReconciler) allControlPlanes(ctx context.Context, _ client.Object) []ctrl.Request {
	return r.controlPlanes(ctx)
}

func (r *ControlPlaneReconciler) controlPlanes(ctx context.Context, opts ...client.ListOption) []ctrl.Request {
	list := &quorumv1alpha1.ControlPlaneList{}
	if err := r.List(ctx, list, opts...); err != nil {
		return nil
	}
	var reqs []ctrl.Request
	for _, cp := range list.Items {
		reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&cp)})
	}
	return reqs
}

// errNoControlPlane is returned when a stacked EtcdCluster's control plane
// is gone: its pods are not made.
var errNoControlPlane = errors.New("the stacked EtcdCluster's ControlPlane does not exist")

// decorateStackedPod adds the control-plane containers to a stacked
// EtcdCluster's member pod, built exactly as the ControlPlane controller
// builds replicas (same version rule, same template hash).
func decorateStackedPod(ctx context.Context, c client.Client, ec *quorumv1alpha1.EtcdCluster, pod *corev1.Pod) error {
	name := ec.Labels[resources.LabelControlPlane]
	cp := &quorumv1alpha1.ControlPlane{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ec.Namespace, Name: name}, cp); err != nil {
		if apierrors.IsNotFound(err) {
			return errNoControlPlane
		}
		return err
	}
	var secrets []map[string][]byte
	for _, n := range []string{resources.PKISecretName(name), resources.KubeconfigSecretName(name, resources.KubeconfigControllerManager), resources.KubeconfigSecretName(name, resources.KubeconfigScheduler)} {
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ec.Namespace, Name: n}, s); err != nil {
			return fmt.Errorf("control plane %s is not ready for its replicas: %w", name, err)
		}
		secrets = append(secrets, s.Data)
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(ec.Namespace), client.MatchingLabels(resources.ControlPlaneLabels(name))); err != nil {
		return err
	}
	var live []*replicaState
	for _, rs := range observedReplicas(pods.Items, nil, name) {
		if !rs.Terminating {
			live = append(live, rs)
		}
	}
	version, _ := targetVersion(cp, live)
	resources.Replica{
		ControlPlane: cp, Version: version, PKIHash: pkiHash(secrets...),
		Etcd: resources.EtcdAccess{Servers: fmt.Sprintf("https://127.0.0.1:%d", resources.ClientPort)},
	}.Decorate(pod)
	return nil
}
