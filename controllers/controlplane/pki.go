package controlplane

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
)

// defaultRenewBefore is spec.certificateRenewBefore's default.
const defaultRenewBefore = 30 * 24 * time.Hour

// pkiInput is everything the control plane's PKI depends on.
type pkiInput struct {
	cp *quorumv1alpha1.ControlPlane
	// serviceIPs are the endpoint Service's cluster and load-balancer IPs;
	// serviceHosts its load-balancer host names.
	serviceIPs   []net.IP
	serviceHosts []string
	etcd         etcdCredentials
	now          time.Time
	// rotation is the phase of a CA rotation under way ("" for none).
	rotation quorumv1alpha1.CARotationPhase
}

func renewBefore(cp *quorumv1alpha1.ControlPlane) time.Duration {
	if cp.Spec.CertificateRenewBefore != nil {
		return cp.Spec.CertificateRenewBefore.Duration
	}
	return defaultRenewBefore
}

// ensurePKI keeps the PKI Secret and the kubeconfig Secrets current and
// returns the data of the Secrets replicas mount (in ReplicaSecretNames'
// order, for the template hash) and the kubeconfigs they do not mount
// (admin, super-admin, operator) by user.
func (r *Reconciler) ensurePKI(ctx context.Context, s *scope, svc *corev1.Service, creds *etcdCredentials) ([]map[string][]byte, map[string][]byte, error) {
	cp := s.cp
	in := pkiInput{cp: cp, etcd: *creds, now: r.Clock()}
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
	current := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: resources.PKISecretName(cp.Name)}, current); client.IgnoreNotFound(err) != nil {
		return nil, nil, err
	}
	annotations := rotationAnnotations(cp, current.Annotations)
	s.rotation = reconciler.ReadCARotation(annotations)
	in.rotation = s.rotation.Phase
	data, renewed, err := planPKI(in, current.Data)
	if err != nil {
		return nil, nil, err
	}
	pkiSecret := controlPlaneSecret(cp, resources.PKISecretName(cp.Name), data)
	pkiSecret.Annotations = annotations
	if err := r.ApplyOwned(ctx, cp, pkiSecret); err != nil {
		return nil, nil, err
	}
	s.trust = resources.TrustOf(data)
	if len(renewed) > 0 {
		r.Event(cp, corev1.EventTypeNormal, "CertificatesRenewed", "issued "+strings.Join(renewed, ", ")+"; the replicas roll onto them")
	}
	ca, err := pki.ParseKeyPair(data[resources.PKICACert], data[resources.PKICAKey])
	if err != nil {
		return nil, nil, err
	}
	s.caNotAfter = ca.Cert.NotAfter
	trust := data[resources.PKICACert]
	if b := data[resources.PKICABundle]; len(b) > 0 {
		trust = b
	}
	s.certificates = nil
	for _, k := range slices.Sorted(maps.Keys(data)) {
		if !strings.HasSuffix(k, ".crt") {
			continue
		}
		if cert, err := pki.ParseCertificate(data[k]); err == nil {
			s.certificates = append(s.certificates, quorumv1alpha1.CertificateStatus{Name: strings.TrimSuffix(k, ".crt"), NotAfter: metav1.NewTime(cert.NotAfter)})
		}
	}
	s.etcdCredentials = etcdCredentialsOf(data)
	mounted := []map[string][]byte{data}
	kubeconfigs := map[string][]byte{}
	for _, u := range kubeconfigUsers(cp) {
		name := resources.KubeconfigSecretName(cp.Name, u.name)
		existing, err := r.secretData(ctx, cp.Namespace, name)
		if err != nil {
			return nil, nil, err
		}
		cfg, _, err := planKubeconfig(cp, u, ca, trust, existing[resources.KubeconfigKey], in.now)
		if err != nil {
			return nil, nil, err
		}
		kubeconfig := map[string][]byte{resources.KubeconfigKey: cfg}
		if err := r.ApplyOwned(ctx, cp, controlPlaneSecret(cp, name, kubeconfig)); err != nil {
			return nil, nil, err
		}
		if cfg, err := clientcmd.Load(cfg); err == nil {
			if ctx := cfg.Contexts[cfg.CurrentContext]; ctx != nil && cfg.AuthInfos[ctx.AuthInfo] != nil {
				if cert, err := pki.ParseCertificate(cfg.AuthInfos[ctx.AuthInfo].ClientCertificateData); err == nil {
					s.certificates = append(s.certificates, quorumv1alpha1.CertificateStatus{Name: "kubeconfig-" + u.name, NotAfter: metav1.NewTime(cert.NotAfter)})
				}
			}
		}
		switch u.name {
		case resources.KubeconfigControllerManager, resources.KubeconfigScheduler, resources.KubeconfigKonnectivityServer:
			mounted = append(mounted, kubeconfig)
		default:
			// The others are not mounted: renewing them rolls nothing.
			kubeconfigs[u.name] = cfg
		}
	}
	if !resources.KonnectivityEnabled(cp) {
		// The add-on removed: its servers' credential goes with it.
		stale := &corev1.Secret{}
		err := r.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: resources.KubeconfigSecretName(cp.Name, resources.KubeconfigKonnectivityServer)}, stale)
		if err == nil {
			err = r.Delete(ctx, stale)
		}
		if client.IgnoreNotFound(err) != nil {
			return nil, nil, err
		}
	}
	if resources.EncryptionEnabled(cp) {
		enc, err := r.ensureEncryption(ctx, s)
		if err != nil {
			return nil, nil, err
		}
		mounted = append(mounted, enc)
		s.keys.superAdmin = kubeconfigs[resources.KubeconfigSuperAdmin]
	}
	return mounted, kubeconfigs, nil
}

// ensureEncryption makes the encryption Secret with a first secretbox key
// when there is none, shapes its keys for a rotation under way, and
// returns its data. An existing key is never replaced outside a rotation:
// the keys are what the hosted cluster's Secrets are encrypted with. The
// key lives as long as the data it protects, not the ControlPlane: it
// belongs to the EtcdCluster holding the data (stacked or clusterRef), so
// deletionPolicy Retain keeps it with the volumes and a ControlPlane made
// again on the same etcd reads its Secrets; for an external etcd it belongs
// to nobody and stays when the ControlPlane goes.
func (r *Reconciler) ensureEncryption(ctx context.Context, s *scope) (map[string][]byte, error) {
	cp := s.cp
	name := resources.EncryptionSecretName(cp.Name)
	existing := &corev1.Secret{}
	err := r.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: name}, existing)
	if err == nil && len(existing.Data[resources.EncryptionConfigKey]) > 0 {
		kr := readKeyRotation(cp, existing.Annotations)
		keys, err := resources.ParseEncryptionConfig(existing.Data[resources.EncryptionConfigKey])
		if err != nil {
			return nil, fmt.Errorf("the encryption Secret %s: %w", name, err)
		}
		shaped, err := shapeKeys(keys, kr.phase, kr.newKey)
		if err != nil {
			return nil, fmt.Errorf("the encryption Secret %s: %w", name, err)
		}
		s.keys = &keyState{rotation: kr}
		_, recorded := existing.Annotations[annotationKeyRotationTrigger]
		if cfg := resources.EncryptionConfig(shaped); !bytes.Equal(cfg, existing.Data[resources.EncryptionConfigKey]) || !recorded {
			existing.Data[resources.EncryptionConfigKey] = cfg
			if existing.Annotations == nil {
				existing.Annotations = map[string]string{}
			}
			// A Secret made before rotations records the trigger value
			// there is as answered: only a new value rotates.
			existing.Annotations[annotationKeyRotationTrigger] = kr.trigger
			if err := r.Update(ctx, existing); err != nil {
				return nil, err
			}
		}
		return existing.Data, nil
	}
	if client.IgnoreNotFound(err) != nil {
		return nil, err
	}
	key, err := resources.NewEncryptionKey(newKeyName(r.Clock()))
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{resources.EncryptionConfigKey: resources.EncryptionConfig([]resources.EncryptionKey{key})}
	secret := controlPlaneSecret(cp, name, data)
	secret.Annotations = map[string]string{annotationKeyRotationTrigger: cp.Annotations[AnnotationRotateEncryptionKey]}
	holder := ""
	switch {
	case cp.Spec.Etcd.Stacked != nil:
		holder = resources.StackedEtcdName(cp.Name)
	case cp.Spec.Etcd.ClusterRef != nil:
		holder = cp.Spec.Etcd.ClusterRef.Name
	}
	if holder != "" {
		ec := &quorumv1alpha1.EtcdCluster{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: holder}, ec); err != nil {
			return nil, fmt.Errorf("the encryption key belongs to EtcdCluster %s: %w", holder, err)
		}
		secret.Labels[resources.LabelCluster] = holder
		if err := controllerutil.SetControllerReference(ec, secret, r.Scheme()); err != nil {
			return nil, err
		}
	}
	if err := r.Create(ctx, secret); err != nil {
		return nil, err
	}
	s.keys = &keyState{rotation: readKeyRotation(cp, secret.Annotations)}
	r.Event(cp, corev1.EventTypeNormal, "EncryptionKeyCreated", fmt.Sprintf("Secrets of the hosted cluster are encrypted at rest with secretbox key %s (Secret %s)", key.Name, name))
	return data, nil
}

// secretData is the data of a Secret, or nil when it does not exist.
func (r *Reconciler) secretData(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	secret := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, secret); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return secret.Data, nil
}

// controlPlaneSecret is one of the control plane's Secrets with data.
func controlPlaneSecret(cp *quorumv1alpha1.ControlPlane, name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cp.Namespace, Labels: resources.ControlPlaneLabels(cp.Name)},
		Type:       corev1.SecretTypeOpaque, Data: data,
	}
}

// servingNames are the DNS names and IPs the apiserver's serving
// certificate must hold: the endpoint host, the endpoint Service's names
// and IPs, the hosted cluster's kubernetes Service, and loopback (the
// replica's own controller-manager and scheduler).
func servingNames(in pkiInput) ([]string, []net.IP, error) {
	kubeIP, err := resources.KubernetesServiceIP(resources.ServiceCIDR(in.cp))
	if err != nil {
		return nil, nil, err
	}
	names := append(resources.EndpointHosts(in.cp), in.serviceHosts...)
	names = append(names, "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost")
	ips := append([]net.IP{net.ParseIP("127.0.0.1"), kubeIP}, in.serviceIPs...)
	return names, ips, nil
}

// planPKI returns the PKI Secret's data: what exists and is still good is
// kept; what is missing, expires within renewBefore, lacks a name the
// serving certificate needs, or was issued by another etcd CA is issued
// anew. renewed names the certificates issued over existing ones.
func planPKI(in pkiInput, existing map[string][]byte) (map[string][]byte, []string, error) {
	data := map[string][]byte{}
	for k, v := range existing {
		data[k] = v
	}
	var renewed []string

	if err := planRotation(in, data); err != nil {
		return nil, nil, err
	}
	ca, err := ensureCAKeys(data, resources.PKICACert, resources.PKICAKey, "kubernetes-ca "+in.cp.Namespace+"/"+in.cp.Name)
	if err != nil {
		return nil, nil, err
	}
	frontCA, err := ensureCAKeys(data, resources.PKIFrontProxyCACert, resources.PKIFrontProxyCAKey, "front-proxy-ca "+in.cp.Namespace+"/"+in.cp.Name)
	if err != nil {
		return nil, nil, err
	}
	if len(data[resources.PKIServiceAccountKey]) == 0 {
		key, pub, err := pki.NewServiceAccountKey()
		if err != nil {
			return nil, nil, err
		}
		data[resources.PKIServiceAccountKey], data[resources.PKIServiceAccountPub] = key, pub
	}

	names, ips, err := servingNames(in)
	if err != nil {
		return nil, nil, err
	}
	leaves := []struct {
		cert, key string
		issuer    *pki.KeyPair
		req       pki.CertRequest
	}{
		{resources.PKIAPIServerCert, resources.PKIAPIServerKey, ca, pki.CertRequest{
			CommonName: "kube-apiserver", DNSNames: names, IPs: ips,
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}},
		{resources.PKIKubeletClientCert, resources.PKIKubeletClientKey, ca, pki.CertRequest{
			CommonName: resources.KubeletClientUser, Organization: []string{resources.AdminGroup},
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
		{resources.PKIFrontProxyClientCert, resources.PKIFrontProxyClientKey, frontCA, pki.CertRequest{
			CommonName: "front-proxy-client", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
	}
	if in.etcd.CA != nil {
		leaves = append(leaves, struct {
			cert, key string
			issuer    *pki.KeyPair
			req       pki.CertRequest
		}{resources.PKIEtcdClientCert, resources.PKIEtcdClientKey, in.etcd.CA, pki.CertRequest{
			CommonName: "kube-apiserver-etcd-client " + in.cp.Namespace + "/" + in.cp.Name,
			Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}})
		data[resources.PKIEtcdCACert] = in.etcd.CA.CertPEM
		if len(in.etcd.Trust) > 0 {
			data[resources.PKIEtcdCACert] = in.etcd.Trust
		}
	} else {
		data[resources.PKIEtcdCACert] = in.etcd.CACert
		data[resources.PKIEtcdClientCert] = in.etcd.Cert
		data[resources.PKIEtcdClientKey] = in.etcd.Key
	}
	for _, l := range leaves {
		old, err := pki.ParseCertificate(data[l.cert])
		switch {
		case len(data[l.cert]) == 0:
		case err != nil || !pki.IssuedBy(old, l.issuer.Cert) || !covers(old, l.req):
			renewed = append(renewed, l.cert)
		case pki.RenewalDue(old.NotAfter, l.issuer.Cert.NotAfter, in.now, renewBefore(in.cp)):
			renewed = append(renewed, l.cert)
		default:
			continue
		}
		l.req.Validity = pki.DefaultLeafValidity
		kp, err := l.issuer.Issue(l.req)
		if err != nil {
			return nil, nil, err
		}
		data[l.cert], data[l.key] = kp.CertPEM, kp.KeyPEM
	}
	return data, renewed, nil
}

// ensureCAKeys returns the CA under certKey/keyKey, making it when absent.
func ensureCAKeys(data map[string][]byte, certKey, keyKey, name string) (*pki.KeyPair, error) {
	if len(data[certKey]) > 0 {
		return pki.ParseKeyPair(data[certKey], data[keyKey])
	}
	ca, err := pki.NewCA(name, pki.DefaultCAValidity)
	if err != nil {
		return nil, err
	}
	data[certKey], data[keyKey] = ca.CertPEM, ca.KeyPEM
	return ca, nil
}

// covers says whether cert holds every name and IP req asks for.
func covers(cert *x509.Certificate, req pki.CertRequest) bool {
	for _, n := range req.DNSNames {
		if !slices.Contains(cert.DNSNames, n) {
			return false
		}
	}
	for _, ip := range req.IPs {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// kubeconfigUser is who a kubeconfig authenticates as, and the server it
// points at.
type kubeconfigUser struct {
	name, commonName string
	organization     []string
	server           string
}

// kubeconfigUsers are the kubeconfigs of a control plane: the admin's
// (bound to cluster-admin through RBAC), the break-glass super-admin's and
// the operator's own through the endpoint, the controller-manager's, the
// scheduler's and (with that add-on) the konnectivity servers' through
// their own replica's apiserver.
func kubeconfigUsers(cp *quorumv1alpha1.ControlPlane) []kubeconfigUser {
	local := fmt.Sprintf("https://127.0.0.1:%d", resources.APIServerPort)
	users := []kubeconfigUser{
		{resources.KubeconfigAdmin, "kubernetes-admin", []string{resources.AdminGroup}, resources.EndpointURL(cp)},
		{resources.KubeconfigSuperAdmin, "kubernetes-super-admin", []string{"system:masters"}, resources.EndpointURL(cp)},
		{resources.KubeconfigOperator, resources.OperatorUser, nil, resources.EndpointURL(cp)},
		{resources.KubeconfigControllerManager, "system:kube-controller-manager", nil, local},
		{resources.KubeconfigScheduler, "system:kube-scheduler", nil, local},
	}
	if resources.KonnectivityEnabled(cp) {
		users = append(users, kubeconfigUser{resources.KubeconfigKonnectivityServer, resources.KonnectivityServerUser, nil, local})
	}
	return users
}

// planKubeconfig returns the kubeconfig for u, or existing when it still
// points at the right server, trusts the trust bundle (the CA, or both CAs
// during a rotation), was issued by the CA and is not about to expire.
func planKubeconfig(cp *quorumv1alpha1.ControlPlane, u kubeconfigUser, ca *pki.KeyPair, trust []byte, existing []byte, now time.Time) ([]byte, bool, error) {
	if len(existing) > 0 {
		if cfg, err := clientcmd.Load(existing); err == nil {
			ctx := cfg.Contexts[cfg.CurrentContext]
			if ctx != nil && cfg.Clusters[ctx.Cluster] != nil && cfg.AuthInfos[ctx.AuthInfo] != nil {
				cl, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
				cert, err := pki.ParseCertificate(user.ClientCertificateData)
				if err == nil && cl.Server == u.server && bytes.Equal(cl.CertificateAuthorityData, trust) &&
					cert.Subject.CommonName == u.commonName && slices.Equal(cert.Subject.Organization, u.organization) &&
					!pki.RenewalDue(cert.NotAfter, ca.Cert.NotAfter, now, renewBefore(cp)) && pki.IssuedBy(cert, ca.Cert) {
					return existing, false, nil
				}
			}
		}
	}
	kp, err := ca.Issue(pki.CertRequest{
		CommonName: u.commonName, Organization: u.organization,
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: pki.DefaultLeafValidity,
	})
	if err != nil {
		return nil, false, err
	}
	out, err := pki.Kubeconfig(cp.Name, u.server, trust, u.name, kp)
	return out, true, err
}

// etcdCredentialsOf is what a replica built from the PKI data runs of its
// etcd credentials: the CAs it trusts, and the one of them that issued its
// client certificate.
func etcdCredentialsOf(data map[string][]byte) *quorumv1alpha1.EtcdCredentialsStatus {
	cas, err := pki.ParseBundle(data[resources.PKIEtcdCACert])
	if err != nil {
		return nil
	}
	out := &quorumv1alpha1.EtcdCredentialsStatus{TrustedCAs: pki.BundleFingerprints(data[resources.PKIEtcdCACert])}
	if cert, err := pki.ParseCertificate(data[resources.PKIEtcdClientCert]); err == nil {
		out.ClientIssuer = pki.IssuerIn(cert, cas...)
	}
	return out
}
