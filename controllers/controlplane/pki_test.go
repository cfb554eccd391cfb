package controlplane

import (
	"crypto/x509"
	"net"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/resources"
)

func testControlPlane() *quorumv1alpha1.ControlPlane {
	return &quorumv1alpha1.ControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: "team-a"},
		Spec: quorumv1alpha1.ControlPlaneSpec{
			Replicas: ptr.To[int32](3), Version: "v1.36.3",
			Endpoint: quorumv1alpha1.ControlPlaneEndpoint{Host: "api.tenant.example.com", Port: 443},
			Etcd:     quorumv1alpha1.ControlPlaneEtcd{ClusterRef: &quorumv1alpha1.LocalObjectReference{Name: "etcd"}},
		},
	}
}

func testEtcdCA(t *testing.T) *pki.KeyPair {
	t.Helper()
	ca, err := pki.NewCA("etcd-ca", time.Hour*24*3650)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func cert(t *testing.T, data map[string][]byte, key string) *x509.Certificate {
	t.Helper()
	c, err := pki.ParseCertificate(data[key])
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return c
}

func TestPKISANsAndUsages(t *testing.T) {
	cp := testControlPlane()
	etcdCA := testEtcdCA(t)
	in := pkiInput{cp: cp, etcd: etcdCredentials{CA: etcdCA}, now: time.Now(), serviceIPs: []net.IP{net.ParseIP("10.252.0.42")}}
	data, renewed, err := planPKI(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(renewed) != 0 {
		t.Errorf("a new PKI renews nothing, got %v", renewed)
	}
	ca := cert(t, data, resources.PKICACert)
	serving := cert(t, data, resources.PKIAPIServerCert)
	for _, name := range []string{
		"api.tenant.example.com", "tenant-apiserver", "tenant-apiserver.team-a", "tenant-apiserver.team-a.svc",
		"tenant-apiserver.team-a.svc.cluster.local", "kubernetes", "kubernetes.default.svc.cluster.local", "localhost",
	} {
		if !slices.Contains(serving.DNSNames, name) {
			t.Errorf("serving certificate lacks DNS name %s: %v", name, serving.DNSNames)
		}
	}
	for _, ip := range []string{"10.252.0.42", "10.96.0.1", "127.0.0.1"} {
		if !slices.ContainsFunc(serving.IPAddresses, net.ParseIP(ip).Equal) {
			t.Errorf("serving certificate lacks IP %s: %v", ip, serving.IPAddresses)
		}
	}
	if err := serving.VerifyHostname("api.tenant.example.com"); err != nil {
		t.Error(err)
	}
	checks := []struct {
		key    string
		issuer *x509.Certificate
		usage  x509.ExtKeyUsage
		cn     string
	}{
		{resources.PKIAPIServerCert, ca, x509.ExtKeyUsageServerAuth, "kube-apiserver"},
		{resources.PKIKubeletClientCert, ca, x509.ExtKeyUsageClientAuth, "kube-apiserver-kubelet-client"},
		{resources.PKIFrontProxyClientCert, cert(t, data, resources.PKIFrontProxyCACert), x509.ExtKeyUsageClientAuth, "front-proxy-client"},
		{resources.PKIEtcdClientCert, etcdCA.Cert, x509.ExtKeyUsageClientAuth, "kube-apiserver-etcd-client team-a/tenant"},
	}
	for _, c := range checks {
		got := cert(t, data, c.key)
		if err := got.CheckSignatureFrom(c.issuer); err != nil {
			t.Errorf("%s is not signed by its CA: %v", c.key, err)
		}
		if !slices.Equal(got.ExtKeyUsage, []x509.ExtKeyUsage{c.usage}) {
			t.Errorf("%s usages = %v, want only %v", c.key, got.ExtKeyUsage, c.usage)
		}
		if got.Subject.CommonName != c.cn {
			t.Errorf("%s CN = %q, want %q", c.key, got.Subject.CommonName, c.cn)
		}
		if got.IsCA {
			t.Errorf("%s is a CA", c.key)
		}
	}
	if fp := cert(t, data, resources.PKIFrontProxyCACert); fp.Equal(ca) || !fp.IsCA {
		t.Error("the front-proxy CA must be its own CA")
	}
	if string(data[resources.PKIEtcdCACert]) != string(etcdCA.CertPEM) {
		t.Error("the apiservers must trust the etcd CA")
	}
	if len(data[resources.PKIServiceAccountKey]) == 0 || len(data[resources.PKIServiceAccountPub]) == 0 {
		t.Error("no service-account key pair")
	}

	// A second pass keeps everything: nothing is reissued or rolled.
	again, renewed, err := planPKI(in, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(renewed) != 0 || resources.SecretsHash(again) != resources.SecretsHash(data) {
		t.Errorf("a current PKI changed on a second pass: renewed %v", renewed)
	}
}

func TestPKIRenewal(t *testing.T) {
	cp := testControlPlane()
	in := pkiInput{cp: cp, etcd: etcdCredentials{CA: testEtcdCA(t)}, now: time.Now()}
	data, _, err := planPKI(in, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Eleven months on, the one-year certificates are within the default
	// 30-day threshold: every leaf is reissued from the same CAs.
	later := in
	later.now = in.now.Add(340 * 24 * time.Hour)
	renewedData, renewed, err := planPKI(later, data)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{resources.PKIAPIServerCert, resources.PKIKubeletClientCert, resources.PKIFrontProxyClientCert, resources.PKIEtcdClientCert}
	if !slices.Equal(renewed, want) {
		t.Errorf("renewed %v, want %v", renewed, want)
	}
	if string(renewedData[resources.PKICACert]) != string(data[resources.PKICACert]) || string(renewedData[resources.PKIServiceAccountKey]) != string(data[resources.PKIServiceAccountKey]) {
		t.Error("renewal must keep the CA and the service-account key")
	}
	if resources.SecretsHash(renewedData) == resources.SecretsHash(data) {
		t.Error("renewed certificates must change the template hash so the replicas roll")
	}

	// The threshold is configurable: with 10 days, day 340 is too early.
	cp.Spec.CertificateRenewBefore = &metav1.Duration{Duration: 10 * 24 * time.Hour}
	if _, renewed, _ := planPKI(later, data); len(renewed) != 0 {
		t.Errorf("with a 10-day threshold nothing is due on day 340, renewed %v", renewed)
	}

	// A new endpoint IP (a load balancer's) reissues only the serving cert.
	withLB := in
	withLB.serviceIPs = []net.IP{net.ParseIP("192.0.2.10")}
	_, renewed, err = planPKI(withLB, data)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(renewed, []string{resources.PKIAPIServerCert}) {
		t.Errorf("a new endpoint IP renewed %v, want only the serving certificate", renewed)
	}

	// An etcd CA that expires within the renewal window: the etcd client
	// certificate already ends with it and is not reissued on every pass
	// (a certificate cannot outlive its CA; it was, once a pass).
	shortCA, err := pki.NewCA("etcd-ca", 10*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	short := in
	short.etcd = etcdCredentials{CA: shortCA}
	shortData, _, err := planPKI(short, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, renewed, _ := planPKI(short, shortData); slices.Contains(renewed, resources.PKIEtcdClientCert) {
		t.Errorf("a certificate that already ends with its CA was reissued: %v", renewed)
	}

	// External etcd credentials are used as given.
	ext := in
	ext.etcd = etcdCredentials{CACert: []byte("ca"), Cert: []byte("crt"), Key: []byte("key")}
	extData, _, err := planPKI(ext, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(extData[resources.PKIEtcdClientCert]) != "crt" || string(extData[resources.PKIEtcdCACert]) != "ca" {
		t.Error("external etcd credentials must be copied")
	}
}

func TestKubeconfigs(t *testing.T) {
	cp := testControlPlane()
	ca, err := pki.NewCA("kubernetes-ca", 3650*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	want := map[string]struct{ server, cn, org string }{
		resources.KubeconfigAdmin:             {"https://api.tenant.example.com:443", "kubernetes-admin", "kubeadm:cluster-admins"},
		resources.KubeconfigSuperAdmin:        {"https://api.tenant.example.com:443", "kubernetes-super-admin", "system:masters"},
		resources.KubeconfigOperator:          {"https://api.tenant.example.com:443", "quorum:operator", ""},
		resources.KubeconfigControllerManager: {"https://127.0.0.1:6443", "system:kube-controller-manager", ""},
		resources.KubeconfigScheduler:         {"https://127.0.0.1:6443", "system:kube-scheduler", ""},
	}
	for _, u := range kubeconfigUsers(cp) {
		raw, changed, err := planKubeconfig(cp, u, ca, ca.CertPEM, nil, now)
		if err != nil || !changed {
			t.Fatalf("%s: changed=%v err=%v", u.name, changed, err)
		}
		cfg, err := clientcmd.Load(raw)
		if err != nil {
			t.Fatal(err)
		}
		ctx := cfg.Contexts[cfg.CurrentContext]
		cluster, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
		w := want[u.name]
		if cluster.Server != w.server {
			t.Errorf("%s server = %s, want %s", u.name, cluster.Server, w.server)
		}
		if string(cluster.CertificateAuthorityData) != string(ca.CertPEM) {
			t.Errorf("%s does not trust the cluster CA", u.name)
		}
		c, err := pki.ParseCertificate(user.ClientCertificateData)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject.CommonName != w.cn || (w.org != "" && !slices.Contains(c.Subject.Organization, w.org)) {
			t.Errorf("%s user = %v, want CN %s O %s", u.name, c.Subject, w.cn, w.org)
		}
		if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || c.CheckSignatureFrom(ca.Cert) != nil {
			t.Errorf("%s: a client certificate from the cluster CA is wanted", u.name)
		}
		// Unchanged on the next pass; reissued near expiry.
		if _, changed, _ := planKubeconfig(cp, u, ca, ca.CertPEM, raw, now); changed {
			t.Errorf("%s changed on a second pass", u.name)
		}
		if _, changed, _ := planKubeconfig(cp, u, ca, ca.CertPEM, raw, now.Add(350*24*time.Hour)); !changed {
			t.Errorf("%s not renewed within the threshold", u.name)
		}
	}
	// An admin kubeconfig issued before it was bound through RBAC
	// (system:masters) is reissued for the group.
	admin := kubeconfigUsers(cp)[0]
	old := admin
	old.organization = []string{"system:masters"}
	raw, _, err := planKubeconfig(cp, old, ca, ca.CertPEM, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, changed, _ := planKubeconfig(cp, admin, ca, ca.CertPEM, raw, now); !changed {
		t.Error("a system:masters admin kubeconfig was kept")
	}
	// Without a host, the admin kubeconfig points at the Service's DNS name.
	cp.Spec.Endpoint.Host = ""
	if got := resources.EndpointURL(cp); got != "https://tenant-apiserver.team-a.svc:443" {
		t.Errorf("endpoint without host = %s", got)
	}
}

// TestPKIRotationPhases: the PKI data through a rotation's phases: new CAs
// bundled with the old, then issuing (every leaf reissued, the bundles
// kept), then alone.
func TestPKIRotationPhases(t *testing.T) {
	cp := testControlPlane()
	in := pkiInput{cp: cp, etcd: etcdCredentials{CA: testEtcdCA(t)}, now: time.Now()}
	data, _, err := planPKI(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldCA, _ := pki.ParseCertificate(data[resources.PKICACert])
	oldFront, _ := pki.ParseCertificate(data[resources.PKIFrontProxyCACert])

	in.rotation = quorumv1alpha1.CARotationTrustBoth
	data, renewed, err := planPKI(in, data)
	if err != nil {
		t.Fatal(err)
	}
	nextCA, err := pki.ParseCertificate(data[resources.PKINextCACert])
	if err != nil || len(renewed) != 0 {
		t.Fatalf("trust both: next CA %v, renewed %v (nothing is reissued yet)", err, renewed)
	}
	if fps := pki.BundleFingerprints(data[resources.PKICABundle]); len(fps) != 2 || fps[0] != pki.Fingerprint(oldCA) || fps[1] != pki.Fingerprint(nextCA) {
		t.Fatalf("trust both: bundle %v", fps)
	}
	if tr := resources.TrustOf(data); tr.Cluster != resources.PKICABundle || tr.FrontProxy != resources.PKIFrontProxyCABundle {
		t.Fatalf("trust both: replicas verify with %+v, want the bundles", tr)
	}
	again, _, _ := planPKI(in, data)
	if string(again[resources.PKINextCACert]) != string(data[resources.PKINextCACert]) {
		t.Fatal("trust both planned twice made two new CAs")
	}

	in.rotation = quorumv1alpha1.CARotationReissueLeaves
	data, renewed, err = planPKI(in, data)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := pki.ParseCertificate(data[resources.PKICACert])
	front, _ := pki.ParseCertificate(data[resources.PKIFrontProxyCACert])
	if pki.Fingerprint(ca) != pki.Fingerprint(nextCA) || pki.Fingerprint(front) == pki.Fingerprint(oldFront) || len(data[resources.PKINextCACert]) != 0 {
		t.Fatal("reissue: the new CAs do not issue")
	}
	if len(renewed) != 3 {
		t.Fatalf("reissue: renewed %v, want the serving, kubelet-client and front-proxy-client certificates", renewed)
	}
	for k, issuer := range map[string]*x509.Certificate{resources.PKIAPIServerCert: ca, resources.PKIKubeletClientCert: ca, resources.PKIFrontProxyClientCert: front} {
		leaf, _ := pki.ParseCertificate(data[k])
		if !pki.IssuedBy(leaf, issuer) {
			t.Errorf("reissue: %s not issued by the new CA", k)
		}
	}
	if len(pki.BundleFingerprints(data[resources.PKICABundle])) != 2 {
		t.Fatal("reissue: the bundle lost the old CA too early")
	}

	in.rotation = quorumv1alpha1.CARotationDropOldCA
	data, _, err = planPKI(in, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(data[resources.PKICABundle]) != 0 || len(data[resources.PKIFrontProxyCABundle]) != 0 {
		t.Fatal("drop: bundles left")
	}
	if tr := resources.TrustOf(data); tr.Cluster != resources.PKICACert || tr.FrontProxy != resources.PKIFrontProxyCACert {
		t.Fatalf("drop: replicas verify with %+v, want the CAs alone", tr)
	}
}
