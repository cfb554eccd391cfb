package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"quorum.dev/quorum/internal/join"
	"quorum.dev/quorum/internal/resources"
)

// Tenant nodes (issue 16) are worker nodes of a hosted control plane: a
// ControlPlane the local cluster runs. Each is built like a management
// node (its own network namespace on the bridge, containerd, cgroups,
// kubelet) but joins the hosted cluster with the real `kubeadm join`,
// which discovers it through the signed cluster-info and a bootstrap
// token, writes the kubelet's configuration and waits for its TLS
// bootstrap. kubeadm runs in a mount namespace of its own where
// /etc/kubernetes, /var/lib/kubelet and /etc/hosts are the node's (so
// nothing of it lands on the machine, and the endpoint's in-cluster name
// resolves to its Service address); what kubeadm leaves to systemd (start
// the kubelet) the tool does.

const (
	tenantNodesDir = "tenant-nodes"
	maxTenantNodes = 9
)

// tenantRecord is what join-node keeps of a tenant node.
type tenantRecord struct {
	Index        int    `json:"index"`
	ControlPlane string `json:"controlPlane"` // namespace/name
	// Server is the endpoint Service's address the node reaches.
	Server string `json:"server"`
	// MadeDirs are the host folders kubeadm's mounts needed that did not
	// exist; down removes them if they are still empty.
	MadeDirs []string `json:"madeDirs,omitempty"`
}

func tenantNode(name string, index int) Node {
	return Node{
		Name: name, IP: fmt.Sprintf("10.250.0.%d", 20+index), PodCIDR: fmt.Sprintf("10.251.%d.0/24", 20+index),
		index: 20 + index, tenant: true,
	}
}

var nodeNameShape = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$`)

// TenantNodes are the tenant nodes that exist, by name.
func (c *Cluster) TenantNodes() (map[string]Node, error) {
	entries, err := os.ReadDir(c.path(tenantNodesDir))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]Node{}
	for _, e := range entries {
		rec, err := c.tenantRecord(e.Name())
		if os.IsNotExist(err) {
			continue // being removed
		}
		if err != nil {
			return nil, err
		}
		out[e.Name()] = tenantNode(e.Name(), rec.Index)
	}
	return out, nil
}

func (c *Cluster) tenantRecord(name string) (tenantRecord, error) {
	var rec tenantRecord
	data, err := os.ReadFile(c.path(tenantNodesDir, name, "node.json"))
	if err != nil {
		return rec, err
	}
	return rec, json.Unmarshal(data, &rec)
}

// JoinNode starts a tenant node and joins it to the ControlPlane
// namespace/name with kubeadm join; it returns once the node is Ready in
// the hosted cluster, with the time that took.
func (c *Cluster) JoinNode(ctx context.Context, name, controlPlane string) (time.Duration, error) {
	start := time.Now()
	if !nodeNameShape.MatchString(name) {
		return 0, fmt.Errorf("node name %q: want a DNS label of at most 40 characters", name)
	}
	if _, err := NodeByName(name); err == nil {
		return 0, fmt.Errorf("%s is a node of the management cluster", name)
	}
	ns, cpName, ok := strings.Cut(controlPlane, "/")
	if !ok || ns == "" || cpName == "" {
		return 0, fmt.Errorf("--control-plane %q: want NAMESPACE/NAME", controlPlane)
	}
	if _, err := os.Stat(c.path(tenantNodesDir, name)); err == nil {
		return 0, fmt.Errorf("tenant node %s exists; remove-node %s first", name, name)
	}
	cs, err := c.Clientset()
	if err != nil {
		return 0, err
	}
	svc, err := cs.CoreV1().Services(ns).Get(ctx, resources.EndpointServiceName(cpName), metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("the endpoint Service of ControlPlane %s: %w", controlPlane, err)
	}
	admin, err := cs.CoreV1().Secrets(ns).Get(ctx, resources.KubeconfigSecretName(cpName, resources.KubeconfigAdmin), metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("the admin kubeconfig of ControlPlane %s: %w", controlPlane, err)
	}
	kubeconfig := admin.Data[resources.KubeconfigKey]
	server := fmt.Sprintf("https://%s:%d", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
	cmd, err := join.NewToken(ctx, kubeconfig, server, time.Hour, 2*time.Minute)
	if err != nil {
		return 0, fmt.Errorf("a bootstrap token for %s: %w", name, err)
	}

	rec := tenantRecord{ControlPlane: controlPlane, Server: server}
	existing, err := c.claimTenantIndex(name, &rec)
	if err != nil {
		return 0, err
	}
	n := tenantNode(name, rec.Index)
	if err := c.tenantNetworkUp(n, existing); err != nil {
		return 0, fmt.Errorf("network of %s: %w", name, err)
	}
	if err := c.writeRuntimeConfig(n); err != nil {
		return 0, err
	}
	if err := c.makeCgroupRoot(n); err != nil {
		return 0, err
	}
	if err := c.startContainerd(n); err != nil {
		return 0, err
	}
	if err := c.importImages(n, c.tenantImages()); err != nil {
		return 0, err
	}

	made, err := c.runKubeadmJoin(ctx, n, cmd, svc.Spec.ClusterIP)
	rec.MadeDirs = made
	if saveErr := c.saveTenantRecord(name, rec); saveErr != nil && err == nil {
		err = saveErr
	}
	if err != nil {
		return 0, err
	}

	hosted, err := hostedClient(kubeconfig, server)
	if err != nil {
		return 0, err
	}
	if err := waitFor("tenant node "+name+" Ready", 3*time.Minute, time.Second, func() (bool, error) {
		return NodeReady(ctx, hosted, name)
	}); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// claimTenantIndex gives name the lowest free tenant index and saves its
// record, under a lock: joins run side by side (e2e cases, or two
// join-node commands), and two nodes given one index would share an
// address. It returns the other tenant nodes.
func (c *Cluster) claimTenantIndex(name string, rec *tenantRecord) (map[string]Node, error) {
	if err := os.MkdirAll(c.path(), 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(c.path("tenant-nodes.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lock.Close() }()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()

	existing, err := c.TenantNodes()
	if err != nil {
		return nil, err
	}
	if _, ok := existing[name]; ok {
		return nil, fmt.Errorf("tenant node %s exists; remove-node %s first", name, name)
	}
	for i := 1; i <= maxTenantNodes && rec.Index == 0; i++ {
		free := true
		for _, n := range existing {
			free = free && n.index != 20+i
		}
		if free {
			rec.Index = i
		}
	}
	if rec.Index == 0 {
		return nil, fmt.Errorf("the local cluster runs at most %d tenant nodes", maxTenantNodes)
	}
	return existing, c.saveTenantRecord(name, *rec)
}

func (c *Cluster) saveTenantRecord(name string, rec tenantRecord) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	// Written whole, then renamed: a join beside this one reads it.
	path := c.path(tenantNodesDir, name, "node.json")
	if err := writeFile(path+".new", data, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".new", path)
}

// tenantImages are the image tarballs a tenant node gets: the pause
// image, busybox (what its test pods run), the add-ons' kube-proxy,
// CoreDNS and konnectivity agent, and the conformance tests' images when
// they are built.
func (c *Cluster) tenantImages() []string {
	var out []string
	refs := []string{PauseImage, BusyboxImage, resources.KubeProxyImage(KubernetesVersion),
		resources.CoreDNSImage(resources.CoreDNSVersion(KubernetesVersion)), resources.KonnectivityAgentImage()}
	if exists(c.imageTarball(AgnhostImage)) {
		refs = append(refs, AgnhostImage, GlibcDNSTestingImage, ConformanceBusyboxImage, ConformancePauseImage)
	}
	for _, ref := range []string{AgnhostPreviousImage, KittenImage, NautilusImage, SampleAPIServerImage, E2EEtcdImage} {
		if exists(c.imageTarball(ref)) {
			refs = append(refs, ref)
		}
	}
	for _, ref := range refs {
		out = append(out, c.imageTarball(ref))
	}
	return out
}

// hostedClient reaches a hosted control plane's API at server with an
// admin kubeconfig.
func hostedClient(kubeconfig []byte, server string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Host = server
	cfg.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// runKubeadmJoin runs `kubeadm join` for n in the node's network namespace
// and a mount namespace of its own, and starts the node's kubelet once
// kubeadm has written its configuration (where kubeadm would have asked
// systemd to). It returns the host folders it had to create as mount
// points.
func (c *Cluster) runKubeadmJoin(ctx context.Context, n Node, cmd join.Command, clusterIP string) ([]string, error) {
	etc, varLib := c.nodeDir(n, "etc-kubernetes"), c.nodeDir(n, "var-lib-kubelet")
	patches := c.nodeDir(n, "kubeadm-patches")
	for _, d := range []string{etc, varLib, patches, c.nodeDir(n, "manifests")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	var made []string
	for _, d := range []string{"/etc/kubernetes", "/var/lib/kubelet"} {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
			made = append(made, d)
		}
	}
	host, _, _ := strings.Cut(cmd.Endpoint, ":")
	hosts := c.nodeDir(n, "hosts")
	if err := writeFile(hosts, []byte(fmt.Sprintf("127.0.0.1 localhost\n%s %s\n", clusterIP, host)), 0o644); err != nil {
		return made, err
	}
	// The kubelet runs in the machine's mount namespace: every path in
	// its configuration is the node's own folder (kubeadm's
	// /etc/kubernetes is etc-kubernetes), and it runs on cgroupfs under
	// the node's cgroup root like the management nodes.
	patch := fmt.Sprintf(`staticPodPath: %[1]s
authentication:
  x509:
    clientCAFile: %[2]s
`, c.nodeDir(n, "manifests"), filepath.Join(etc, "pki", "ca.crt")) + c.kubeletNodeSettings(n)
	if err := writeFile(filepath.Join(patches, "kubeletconfiguration+merge.yaml"), []byte(patch), 0o644); err != nil {
		return made, err
	}

	logPath := c.nodeDir(n, "kubeadm-join.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return made, err
	}
	defer func() { _ = logf.Close() }()
	args := []string{"--net=/run/netns/" + n.Netns(), "--", "unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/kubernetes && mount --bind "$3" /var/lib/kubelet && shift 3 && exec "$@"`,
		"sh", hosts, etc, varLib, filepath.Join(c.Bin, "kubeadm"), "join"}
	args = append(args, cmd.Args()...)
	args = append(args, "--node-name", n.Name, "--cri-socket", "unix://"+c.containerdSocket(n), "--patches", patches,
		"--ignore-preflight-errors=all", "-v=1")
	kubeadm := exec.CommandContext(ctx, "nsenter", args...)
	kubeadm.Stdout, kubeadm.Stderr = logf, logf
	if err := kubeadm.Start(); err != nil {
		return made, err
	}
	done := make(chan error, 1)
	go func() { done <- kubeadm.Wait() }()

	// kubeadm writes kubeadm-flags.env last before it would start the
	// kubelet.
	flagsFile := filepath.Join(varLib, "kubeadm-flags.env")
	started := false
	for !started {
		select {
		case err := <-done:
			return made, fmt.Errorf("kubeadm join ended before it configured the kubelet: %w\n%s", err, tail("kubeadm", logPath, 20))
		case <-time.After(500 * time.Millisecond):
		}
		if _, err := os.Stat(flagsFile); err != nil {
			continue
		}
		flags, err := kubeadmFlags(flagsFile)
		if err != nil {
			return made, err
		}
		// The kubelet runs in a mount namespace of its own where
		// /etc/hosts is the node's, as a machine's would be: host-network
		// pods (kube-proxy) get that file and reach the endpoint by its
		// name. Its root folder is a shared mount made here, so the
		// volumes it mounts there propagate to containerd.
		root := c.nodeDir(n, "kubelet-root")
		if err := os.MkdirAll(root, 0o750); err != nil {
			return made, err
		}
		if err := sharedMount(root); err != nil {
			return made, err
		}
		kubeletArgs := append([]string{
			"unshare", "--mount", "--propagation", "unchanged", "sh", "-c", `mount --bind "$1" /etc/hosts && shift && exec "$@"`, "sh", hosts,
			filepath.Join(c.Bin, "kubelet"),
			"--config=" + filepath.Join(varLib, "config.yaml"),
			"--bootstrap-kubeconfig=" + filepath.Join(etc, "bootstrap-kubelet.conf"),
			"--kubeconfig=" + filepath.Join(etc, "kubelet.conf"),
			"--hostname-override=" + n.Name,
			"--node-ip=" + n.IP,
			"--root-dir=" + root,
			"--cert-dir=" + c.nodeDir(n, "kubelet-pki"),
		}, flags...)
		if err := c.startIfStopped(daemon{name: "kubelet-" + n.Name, netns: n.Netns(), args: kubeletArgs, restart: true}); err != nil {
			return made, err
		}
		started = true
	}
	select {
	case err := <-done:
		if err != nil {
			return made, fmt.Errorf("kubeadm join: %w; %s", err, c.joinFailure(n, logPath))
		}
	case <-time.After(5 * time.Minute):
		_ = kubeadm.Process.Kill()
		return made, fmt.Errorf("kubeadm join did not finish in 5 minutes; %s", c.joinFailure(n, logPath))
	}
	return made, nil
}

// joinFailure says why a join that started the kubelet failed, in few
// enough lines that a test recap keeps them all: kubeadm's errors, whether
// the kubelet runs and how often it exited, and its last log lines.
func (c *Cluster) joinFailure(n Node, kubeadmLog string) string {
	var b strings.Builder
	if data, err := os.ReadFile(kubeadmLog); err == nil {
		var errs []string
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "error") || strings.Contains(l, "[kubelet-check]") {
				errs = append(errs, l)
			}
		}
		b.WriteString("kubeadm said:\n" + strings.Join(lastN(errs, 4), "\n") + "\n")
	}
	b.WriteString(c.KubeletReport(n.Name))
	return b.String()
}

// KubeletReport says whether a node's kubelet runs, how often it exited,
// and its last log lines: what a test that waits for the node says when
// the wait fails.
func (c *Cluster) KubeletReport(node string) string {
	name := "kubelet-" + node
	data, err := os.ReadFile(c.logFile(name))
	if err != nil {
		return "no log of the kubelet: " + err.Error()
	}
	exits := strings.Count(string(data), "local-cluster: "+name+" exited")
	state := fmt.Sprintf("the kubelet of %s does not run (it exited %d times); ", node, exits)
	if pid, alive := c.pid(name); alive {
		state = fmt.Sprintf("the kubelet of %s runs (pid %d; it exited %d times before); ", node, pid, exits)
	}
	return state + "the kubelet's log ends:\n" + lastLines(data, 12)
}

func lastN(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

// sharedMount makes dir a mount point of its own in the machine's mount
// namespace, shared: mounts made below it in a copy of that namespace show
// in the machine's too.
func sharedMount(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	mounted := false
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && unescapeMount(f[4]) == dir {
			mounted = true
		}
	}
	if !mounted {
		if _, err := run("mount", "--bind", dir, dir); err != nil {
			return err
		}
	}
	_, err = run("mount", "--make-shared", dir)
	return err
}

// kubeadmFlags are the kubelet flags kubeadm wrote for systemd, less the
// ones the tool sets itself.
func kubeadmFlags(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "KUBELET_KUBEADM_ARGS=")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(strings.Trim(v, `"`)) {
			name, _, _ := strings.Cut(f, "=")
			switch name {
			case "--hostname-override", "--node-ip", "--kubeconfig", "--bootstrap-kubeconfig", "--config", "--container-runtime-endpoint":
				continue
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// tail is the end of a log file (what it is the log of), for errors.
func tail(what, path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "no log of " + what + ": " + err.Error()
	}
	return what + "'s log ends:\n" + lastLines(data, lines)
}

// lastLines are a log's last n lines, each cut at 400 characters.
func lastLines(data []byte, n int) string {
	last := lastN(strings.Split(string(bytes.TrimSpace(data)), "\n"), n)
	for i, l := range last {
		if len(l) > 400 {
			last[i] = l[:400] + "..."
		}
	}
	return strings.Join(last, "\n")
}

// tenantNetworkUp joins a tenant node to the bridge and routes: it reaches
// the management cluster's Services (the endpoint) through node-a and
// every pod subnet through its node, and every namespace reaches its pods.
func (c *Cluster) tenantNetworkUp(n Node, others map[string]Node) error {
	if err := addHost(n.Netns(), n.hostVeth(), n.IP); err != nil {
		return err
	}
	if err := routePods(n.Netns()); err != nil {
		return err
	}
	if err := ensureRoute(n.Netns(), serviceCIDR, "via", Nodes[0].IP); err != nil {
		return err
	}
	peers := append([]Node{}, Nodes...)
	for _, o := range others {
		peers = append(peers, o)
	}
	for _, p := range peers {
		if err := ensureRoute(n.Netns(), p.PodCIDR, "via", p.IP); err != nil {
			return err
		}
	}
	for _, ns := range append([]string{"", cpNetns}, netnsesOf(peers)...) {
		if err := ensureRoute(ns, n.PodCIDR, "via", n.IP); err != nil {
			return err
		}
	}
	return nil
}

func netnsesOf(nodes []Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Netns())
	}
	return out
}

// RemoveNode stops a tenant node (its kubelet, containers and containerd),
// deletes its Node from the hosted cluster when that still answers, and
// removes its routes, namespace, cgroups and state.
func (c *Cluster) RemoveNode(ctx context.Context, name string) error {
	return c.removeTenantNode(ctx, name, true)
}

// removeTenantNode removes a tenant node, and its Node object from the
// hosted cluster if deleteNode.
func (c *Cluster) removeTenantNode(ctx context.Context, name string, deleteNode bool) error {
	rec, err := c.tenantRecord(name)
	if err != nil {
		return fmt.Errorf("no tenant node %s: %w", name, err)
	}
	n := tenantNode(name, rec.Index)
	var errs []error
	if err := c.stopNode(n); err != nil {
		errs = append(errs, err)
	}
	if err := c.removeCgroupRoot(n); err != nil {
		errs = append(errs, err)
	}
	if ns, cpName, ok := strings.Cut(rec.ControlPlane, "/"); ok && deleteNode && c.Running() {
		if err := c.deleteHostedNode(ctx, ns, cpName, rec.Server, name); err != nil {
			c.Log("tenant node %s: not deleted from ControlPlane %s: %v", name, rec.ControlPlane, err)
		}
	}
	others, _ := c.TenantNodes()
	for _, ns := range append([]string{"", cpNetns}, append(netnsesOf(Nodes), tenantNetnses(others, name)...)...) {
		if ns != "" {
			if _, err := os.Stat("/run/netns/" + ns); err != nil {
				continue
			}
		}
		args := []string{"route", "del", n.PodCIDR}
		var out string
		var err error
		if ns == "" {
			out, err = run("ip", args...)
		} else {
			out, err = inNetns(ns, "ip", args...)
		}
		if err != nil && !strings.Contains(out, "No such process") {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat("/run/netns/" + n.Netns()); err == nil {
		if _, err := run("ip", "netns", "del", n.Netns()); err != nil {
			errs = append(errs, err)
		}
	}
	// Deleting the namespace deletes the node's end of the link, and the
	// kernel then the host's end, a moment later.
	if _, err := run("ip", "link", "show", n.hostVeth()); err == nil {
		if out, err := run("ip", "link", "del", n.hostVeth()); err != nil && !strings.Contains(out, "Cannot find device") {
			errs = append(errs, err)
		}
	}
	for _, d := range rec.MadeDirs {
		// Only if still empty: something else may use it since.
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EBUSY) {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(c.nodeDir(n)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func tenantNetnses(nodes map[string]Node, skip string) []string {
	var out []string
	for name, n := range nodes {
		if name != skip {
			out = append(out, n.Netns())
		}
	}
	return out
}

// deleteHostedNode deletes a Node object from a hosted cluster.
func (c *Cluster) deleteHostedNode(ctx context.Context, ns, cpName, server, name string) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	admin, err := cs.CoreV1().Secrets(ns).Get(ctx, resources.KubeconfigSecretName(cpName, resources.KubeconfigAdmin), metav1.GetOptions{})
	if err != nil {
		return err
	}
	hosted, err := hostedClient(admin.Data[resources.KubeconfigKey], server)
	if err != nil {
		return err
	}
	err = hosted.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// IsolateKubelet makes a tenant node's kubelet refuse every connection
// but the node's own, as a node behind a firewall the control plane cannot
// cross: the apiservers reach it only through a tunnel the node opens
// (konnectivity). It returns what undoes it; removing the node undoes it
// too.
func (c *Cluster) IsolateKubelet(name string) (func() error, error) {
	nodes, err := c.TenantNodes()
	if err != nil {
		return nil, err
	}
	n, ok := nodes[name]
	if !ok {
		return nil, fmt.Errorf("no tenant node %s", name)
	}
	rule := []string{"INPUT", "-p", "tcp", "--dport", "10250", "!", "-s", n.IP, "-m", "comment", "--comment", "quorum: kubelet isolated",
		"-j", "REJECT", "--reject-with", "tcp-reset"}
	if _, err := inNetns(n.Netns(), "iptables", append([]string{"-I"}, rule...)...); err != nil {
		return nil, err
	}
	return func() error {
		if !exists("/run/netns/" + n.Netns()) {
			return nil // the node is gone
		}
		_, err := inNetns(n.Netns(), "iptables", append([]string{"-D"}, rule...)...)
		return err
	}, nil
}
