package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// controlPlaneUp starts etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler in the control-plane namespace. The controller-manager
// starts only once /readyz answers 200: before the RBAC bootstrap is done it
// exits.
func (c *Cluster) controlPlaneUp() error {
	pkiDir := c.path("pki")
	if err := c.startIfStopped(daemon{name: "etcd", netns: cpNetns, args: []string{
		filepath.Join(c.Bin, "etcd"),
		"--name=local", "--data-dir=" + c.path("etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=local=http://127.0.0.1:2380",
		"--listen-metrics-urls=http://127.0.0.1:2381",
		"--quota-backend-bytes=4294967296", "--snapshot-count=10000", "--log-level=warn",
	}}); err != nil {
		return err
	}
	if err := c.startIfStopped(daemon{name: "kube-apiserver", netns: cpNetns, args: []string{
		filepath.Join(c.Bin, "kube-apiserver"),
		"--advertise-address=" + controlPlaneIP, "--bind-address=0.0.0.0",
		fmt.Sprintf("--secure-port=%d", apiServerPort),
		"--etcd-servers=http://127.0.0.1:2379",
		"--service-cluster-ip-range=" + serviceCIDR,
		"--allow-privileged=true",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--client-ca-file=" + filepath.Join(pkiDir, "ca.crt"),
		"--tls-cert-file=" + filepath.Join(pkiDir, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(pkiDir, "apiserver.key"),
		"--kubelet-client-certificate=" + filepath.Join(pkiDir, "apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + filepath.Join(pkiDir, "apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--service-account-issuer=https://kubernetes.default.svc." + clusterDomain,
		"--service-account-key-file=" + filepath.Join(pkiDir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(pkiDir, "sa.key"),
		"--profiling=false",
	}}); err != nil {
		return err
	}
	if err := waitFor("kube-apiserver /readyz", 3*time.Minute, 250*time.Millisecond, c.apiServerReady); err != nil {
		return fmt.Errorf("%w (log: %s)", err, c.logFile("kube-apiserver"))
	}
	kubeconfigs := c.path("kubeconfig")
	if err := c.startIfStopped(daemon{name: "kube-controller-manager", netns: cpNetns, args: []string{
		filepath.Join(c.Bin, "kube-controller-manager"),
		"--kubeconfig=" + filepath.Join(kubeconfigs, "controller-manager.conf"),
		"--authentication-kubeconfig=" + filepath.Join(kubeconfigs, "controller-manager.conf"),
		"--authorization-kubeconfig=" + filepath.Join(kubeconfigs, "controller-manager.conf"),
		"--bind-address=127.0.0.1", "--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + filepath.Join(pkiDir, "sa.key"),
		"--root-ca-file=" + filepath.Join(pkiDir, "ca.crt"),
		"--cluster-signing-cert-file=" + filepath.Join(pkiDir, "ca.crt"),
		"--cluster-signing-key-file=" + filepath.Join(pkiDir, "ca.key"),
		"--service-cluster-ip-range=" + serviceCIDR,
		"--cluster-cidr=" + clusterCIDR,
		// Each node's pod subnet is fixed in its CNI config.
		"--allocate-node-cidrs=false",
		// A stopped zone turns NotReady within about 15 s (with the kubelets'
		// 10 s node lease), so failover tests do not wait the default 40 s.
		"--node-monitor-grace-period=16s",
		"--profiling=false",
	}}); err != nil {
		return err
	}
	return c.startIfStopped(daemon{name: "kube-scheduler", netns: cpNetns, args: []string{
		filepath.Join(c.Bin, "kube-scheduler"),
		"--kubeconfig=" + filepath.Join(kubeconfigs, "scheduler.conf"),
		"--authentication-kubeconfig=" + filepath.Join(kubeconfigs, "scheduler.conf"),
		"--authorization-kubeconfig=" + filepath.Join(kubeconfigs, "scheduler.conf"),
		"--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false",
	}})
}

func (c *Cluster) startIfStopped(d daemon) error {
	if _, alive := c.pid(d.name); alive {
		return nil
	}
	return c.start(d)
}

// apiServerReady asks /readyz with the admin certificate and wants a 200.
func (c *Cluster) apiServerReady() (bool, error) {
	client, err := c.adminHTTPClient()
	if err != nil {
		return false, err
	}
	resp, err := client.Get(fmt.Sprintf("https://%s:%d/readyz", controlPlaneIP, apiServerPort))
	if err != nil {
		return false, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("/readyz answered %d: %s", resp.StatusCode, body)
	}
	return true, nil
}

func (c *Cluster) adminHTTPClient() (*http.Client, error) {
	caPEM, err := os.ReadFile(c.path("pki", "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}, nil
}
