package cluster

import (
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

//go:embed manifests/*.yaml
var manifests embed.FS

// The binaries the cluster needs, built by hack/build-binaries.sh.
var components = []string{
	"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl", "kubeadm",
	"etcd", "etcdctl", "etcdutl", "coredns", "hosted-coredns", "konnectivity", "versitygw", "local-path-provisioner",
	"previous-control-plane",
	// The upstream conformance tests, their runner and main image (the
	// test command runs a subset; the demo does without).
	"e2e.test", "ginkgo", "agnhost",
}

// demoSkips are the components the demo (--demo) does not build.
var demoSkips = []string{"previous-control-plane", "e2e.test", "ginkgo", "agnhost"}

// Timings of the last Up, for the closing report.
type Timings struct {
	Build, ControlPlane, NodesReady, AddonsReady, QuorumReady, Total time.Duration
}

// Up builds what is missing and starts the whole cluster: network, control
// plane, three nodes, CoreDNS, the default StorageClass, and Quorum from
// config/default. It is safe to run again on a running cluster.
func (c *Cluster) Up(ctx context.Context) (Timings, error) {
	var t Timings
	start := time.Now()
	if err := c.run(filepath.Join(c.Root, "hack", "install-deps.sh")); err != nil {
		return t, err
	}
	build := components
	if c.WithoutPrevious {
		build = slices.DeleteFunc(slices.Clone(components), func(s string) bool { return slices.Contains(demoSkips, s) })
	}
	if err := c.run(append([]string{filepath.Join(c.Root, "hack", "build-binaries.sh")}, build...)...); err != nil {
		return t, err
	}
	if err := os.MkdirAll(filepath.Dir(c.Kubectl()), 0o755); err != nil {
		return t, err
	}
	if err := copyFile(filepath.Join(c.Bin, "kubectl"), c.Kubectl(), 0o755); err != nil {
		return t, err
	}
	images, err := c.buildImages()
	if err != nil {
		return t, err
	}
	t.Build = time.Since(start)
	c.Log("binaries and images ready in %s", t.Build.Round(time.Second))

	step := time.Now()
	if err := c.networkUp(); err != nil {
		return t, fmt.Errorf("network: %w", err)
	}
	if err := c.pkiUp(); err != nil {
		return t, fmt.Errorf("pki: %w", err)
	}
	if err := c.controlPlaneUp(); err != nil {
		return t, fmt.Errorf("control plane: %w", err)
	}
	t.ControlPlane = time.Since(step)
	c.Log("control plane ready in %s", t.ControlPlane.Round(100*time.Millisecond))

	step = time.Now()
	errs := make(chan error, len(Nodes))
	for _, n := range Nodes {
		go func(n Node) { errs <- c.nodeUp(n, images) }(n)
	}
	for range Nodes {
		if err := <-errs; err != nil {
			return t, err
		}
	}
	cs, err := c.Clientset()
	if err != nil {
		return t, err
	}
	if err := c.WaitNodesReady(ctx, cs, 3*time.Minute); err != nil {
		return t, err
	}
	t.NodesReady = time.Since(step)
	c.Log("nodes Ready in %s", t.NodesReady.Round(100*time.Millisecond))

	step = time.Now()
	if err := c.applyAddons(); err != nil {
		return t, err
	}
	for _, d := range [][2]string{{"kube-system", "coredns"}, {"local-path-storage", "local-path-provisioner"}} {
		if err := WaitDeploymentReady(ctx, cs, d[0], d[1], 3*time.Minute); err != nil {
			return t, err
		}
	}
	t.AddonsReady = time.Since(step)
	c.Log("CoreDNS and the volume provisioner ready in %s", t.AddonsReady.Round(100*time.Millisecond))

	step = time.Now()
	if err := c.DeployQuorum(ctx, cs); err != nil {
		return t, err
	}
	t.QuorumReady = time.Since(step)
	t.Total = time.Since(start)
	c.Log("Quorum ready in %s; cluster up in %s", t.QuorumReady.Round(100*time.Millisecond), t.Total.Round(time.Second))
	return t, nil
}

// Clientset is a client of the cluster with the admin kubeconfig.
func (c *Cluster) Clientset() (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	return kubernetes.NewForConfig(cfg)
}

// WaitNodesReady waits until every node is registered and Ready.
func (c *Cluster) WaitNodesReady(ctx context.Context, cs kubernetes.Interface, timeout time.Duration) error {
	return waitFor("all nodes Ready", timeout, 250*time.Millisecond, func() (bool, error) {
		for _, n := range Nodes {
			ready, err := NodeReady(ctx, cs, n.Name)
			if !ready {
				return false, err
			}
		}
		return true, nil
	})
}

// NodeReady says whether a node reports Ready.
func NodeReady(ctx context.Context, cs kubernetes.Interface, name string) (bool, error) {
	node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue, nil
		}
	}
	return false, nil
}

// WaitDeploymentReady waits until a Deployment has all its replicas ready
// and up to date.
func WaitDeploymentReady(ctx context.Context, cs kubernetes.Interface, namespace, name string, timeout time.Duration) error {
	return waitFor(fmt.Sprintf("deployment %s/%s ready", namespace, name), timeout, 250*time.Millisecond, func() (bool, error) {
		d, err := cs.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return deploymentReady(d), nil
	})
}

func deploymentReady(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	// As `kubectl rollout status`: observed, all updated, no old pod left,
	// all available.
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
		d.Status.Replicas == want && d.Status.ReadyReplicas == want && d.Status.AvailableReplicas == want
}

// applyAddons applies CoreDNS and the volume provisioner.
func (c *Cluster) applyAddons() error {
	var pathMap []string
	for _, n := range Nodes {
		pathMap = append(pathMap, fmt.Sprintf(`{"node": %q, "paths": [%q]}`, n.Name, c.nodeDir(n, "local-path")))
	}
	replacer := strings.NewReplacer(
		"{{CLUSTER_DOMAIN}}", clusterDomain,
		"{{COREDNS_IMAGE}}", "registry.k8s.io/coredns/coredns:"+CoreDNSVersion,
		"{{DNS_SERVICE_IP}}", dnsServiceIP,
		"{{LOCAL_PATH_IMAGE}}", LocalPathImage,
		"{{BUSYBOX_IMAGE}}", BusyboxImage,
		"{{NODE_PATH_MAP}}", strings.Join(pathMap, ", "),
	)
	for _, f := range []string{"manifests/coredns.yaml", "manifests/local-path.yaml"} {
		data, err := manifests.ReadFile(f)
		if err != nil {
			return err
		}
		if err := c.Apply(replacer.Replace(string(data))); err != nil {
			return fmt.Errorf("applying %s: %w", f, err)
		}
	}
	return nil
}

// QuorumNamespace is where config/default installs Quorum.
const QuorumNamespace = "quorum-system"

// QuorumLease is the manager's leader-election lease.
const QuorumLease = "quorum-manager.quorum.dev"

// DeployQuorum installs Quorum from config/default (kustomize) with the
// locally built image, restarts its pods so they run the image just built,
// and waits until the Deployment is ready and a manager holds the lease.
func (c *Cluster) DeployQuorum(ctx context.Context, cs kubernetes.Interface) error {
	kustomize := filepath.Join(c.Root, "bin", "kustomize-v5.8.2")
	if err := c.run("make", "-C", c.Root, "--no-print-directory", "kustomize", "manifests"); err != nil {
		return err
	}
	out, err := exec.Command(kustomize, "build", filepath.Join(c.Root, "config", "default")).Output()
	if err != nil {
		return fmt.Errorf("kustomize build config/default: %w", err)
	}
	_, getErr := cs.AppsV1().Deployments(QuorumNamespace).Get(ctx, "quorum-manager", metav1.GetOptions{})
	existed := getErr == nil
	if err := c.Apply(string(out)); err != nil {
		return err
	}
	if existed {
		// The tag stays :dev while the binary changes; restarting makes the
		// pods run the image just imported.
		if err := c.kubectl("-n", QuorumNamespace, "rollout", "restart", "deployment/quorum-manager"); err != nil {
			return err
		}
	}
	if err := WaitDeploymentReady(ctx, cs, QuorumNamespace, "quorum-manager", 3*time.Minute); err != nil {
		return err
	}
	return waitFor("a Quorum manager holding the leader lease", 2*time.Minute, 250*time.Millisecond, func() (bool, error) {
		lease, err := cs.CoordinationV1().Leases(QuorumNamespace).Get(ctx, QuorumLease, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return LeaseHeld(lease), nil
	})
}

// LeaseHeld says whether a lease has a holder whose term has not run out.
func LeaseHeld(lease *coordinationv1.Lease) bool {
	s := lease.Spec
	if s.HolderIdentity == nil || *s.HolderIdentity == "" || s.RenewTime == nil || s.LeaseDurationSeconds == nil {
		return false
	}
	return time.Since(s.RenewTime.Time) < time.Duration(*s.LeaseDurationSeconds)*time.Second
}

// Apply applies manifests with kubectl (server-side).
func (c *Cluster) Apply(yaml string) error {
	cmd := exec.Command(c.Kubectl(), "--kubeconfig", c.Kubeconfig(), "apply", "--server-side", "--force-conflicts", "-f", "-")
	cmd.Stdin = strings.NewReader(yaml)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl apply: %w: %s", err, out)
	}
	return nil
}

func (c *Cluster) kubectl(args ...string) error {
	out, err := exec.Command(c.Kubectl(), append([]string{"--kubeconfig", c.Kubeconfig()}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// run runs a build step with its output on stderr.
func (c *Cluster) run(args ...string) error {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = c.Root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
