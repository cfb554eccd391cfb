package cluster

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"quorum.dev/quorum/internal/pki"
)

const certValidity = 365 * 24 * time.Hour

// pkiUp writes the cluster's CA, the serving and client certificates of
// every component, the service-account key pair and the kubeconfigs. Certs
// are made once; an existing CA is reused so a restarted cluster keeps its
// identity.
func (c *Cluster) pkiUp() error {
	if _, err := os.Stat(c.path("pki", "ca.crt")); err == nil {
		return nil
	}
	ca, err := pki.NewCA("quorum-local-cluster-ca", 10*certValidity)
	if err != nil {
		return err
	}
	if err := c.writeKeyPair("ca", ca); err != nil {
		return err
	}
	server := x509.ExtKeyUsageServerAuth
	client := x509.ExtKeyUsageClientAuth
	apiserver, err := ca.Issue(pki.CertRequest{
		CommonName: "kube-apiserver",
		DNSNames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc." + clusterDomain, "localhost"},
		IPs:      []net.IP{net.ParseIP(controlPlaneIP), net.ParseIP(kubernetesSvc), net.ParseIP("127.0.0.1")},
		Usages:   []x509.ExtKeyUsage{server},
		Validity: certValidity,
	})
	if err != nil {
		return err
	}
	if err := c.writeKeyPair("apiserver", apiserver); err != nil {
		return err
	}
	kubeletClient, err := ca.Issue(pki.CertRequest{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"},
		Usages: []x509.ExtKeyUsage{client}, Validity: certValidity})
	if err != nil {
		return err
	}
	if err := c.writeKeyPair("apiserver-kubelet-client", kubeletClient); err != nil {
		return err
	}
	saPrivate, saPublic, err := pki.NewServiceAccountKey()
	if err != nil {
		return err
	}
	if err := writeFile(c.path("pki", "sa.key"), saPrivate, 0o600); err != nil {
		return err
	}
	if err := writeFile(c.path("pki", "sa.pub"), saPublic, 0o644); err != nil {
		return err
	}

	server0 := fmt.Sprintf("https://%s:%d", controlPlaneIP, apiServerPort)
	users := []struct{ file, cn, org string }{
		{"admin", "kubernetes-admin", "system:masters"},
		{"controller-manager", "system:kube-controller-manager", ""},
		{"scheduler", "system:kube-scheduler", ""},
		{"kube-proxy", "system:kube-proxy", ""},
	}
	for _, n := range Nodes {
		users = append(users, struct{ file, cn, org string }{"kubelet-" + n.Name, "system:node:" + n.Name, "system:nodes"})
	}
	for _, u := range users {
		req := pki.CertRequest{CommonName: u.cn, Usages: []x509.ExtKeyUsage{client}, Validity: certValidity}
		if u.org != "" {
			req.Organization = []string{u.org}
		}
		kp, err := ca.Issue(req)
		if err != nil {
			return err
		}
		kubeconfig, err := pki.Kubeconfig("quorum-local", server0, ca.CertPEM, u.cn, kp)
		if err != nil {
			return err
		}
		if err := writeFile(c.path("kubeconfig", u.file+".conf"), kubeconfig, 0o600); err != nil {
			return err
		}
	}
	admin, err := os.ReadFile(c.path("kubeconfig", "admin.conf"))
	if err != nil {
		return err
	}
	return writeFile(c.Kubeconfig(), admin, 0o600)
}

func (c *Cluster) writeKeyPair(name string, kp *pki.KeyPair) error {
	if err := writeFile(c.path("pki", name+".crt"), kp.CertPEM, 0o644); err != nil {
		return err
	}
	return writeFile(c.path("pki", name+".key"), kp.KeyPEM, 0o600)
}
