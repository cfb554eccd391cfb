package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupV1Controllers are the v1 hierarchies every node gets a cgroup root
// in: kubelet refuses a cgroupRoot that does not exist in each of them.
var cgroupV1Controllers = []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd"}

// nodeUp writes a node's configs and starts its containerd, kubelet and
// kube-proxy.
func (c *Cluster) nodeUp(n Node, images []string) error {
	if err := c.writeNodeConfig(n); err != nil {
		return err
	}
	if err := c.makeCgroupRoot(n); err != nil {
		return err
	}
	if err := c.startContainerd(n); err != nil {
		return err
	}
	if err := c.importImages(n, images); err != nil {
		return err
	}
	return c.startKubeletAndProxy(n)
}

// importImages loads image tarballs into a node's containerd.
func (c *Cluster) importImages(n Node, images []string) error {
	for _, img := range images {
		if _, err := run("ctr", "--address", c.containerdSocket(n), "-n", "k8s.io", "images", "import", img); err != nil {
			return fmt.Errorf("importing %s on %s: %w", filepath.Base(img), n.Name, err)
		}
	}
	return nil
}

func (c *Cluster) startContainerd(n Node) error {
	if err := c.startIfStopped(daemon{name: "containerd-" + n.Name, netns: n.Netns(), args: []string{
		"containerd", "--config", c.nodeDir(n, "containerd", "config.toml"),
	}}); err != nil {
		return err
	}
	return waitFor("containerd on "+n.Name, time.Minute, 100*time.Millisecond, func() (bool, error) {
		_, err := run("ctr", "--address", c.containerdSocket(n), "version")
		return err == nil, err
	})
}

func (c *Cluster) startKubeletAndProxy(n Node) error {
	if err := c.startIfStopped(daemon{name: "kubelet-" + n.Name, netns: n.Netns(), args: []string{
		filepath.Join(c.Bin, "kubelet"),
		"--config=" + c.nodeDir(n, "kubelet", "config.yaml"),
		"--kubeconfig=" + c.path("kubeconfig", "kubelet-"+n.Name+".conf"),
		"--hostname-override=" + n.Name,
		"--node-ip=" + n.IP,
		"--root-dir=" + c.nodeDir(n, "kubelet", "root"),
		"--cert-dir=" + c.nodeDir(n, "kubelet", "pki"),
		"--node-labels=" + labelZone + "=" + n.Zone,
	}, restart: true}); err != nil {
		return err
	}
	return c.startIfStopped(daemon{name: "kube-proxy-" + n.Name, netns: n.Netns(), args: []string{
		filepath.Join(c.Bin, "kube-proxy"), "--config=" + c.nodeDir(n, "kube-proxy.yaml"),
	}})
}

const labelZone = "topology.kubernetes.io/zone"

func (c *Cluster) writeNodeConfig(n Node) error {
	if err := c.writeRuntimeConfig(n); err != nil {
		return err
	}
	return c.writeKubeletAndProxyConfig(n)
}

// writeRuntimeConfig writes a node's CNI and containerd configurations and
// the cluster's empty resolv.conf: what any node runs containers with,
// whichever cluster its kubelet is in.
func (c *Cluster) writeRuntimeConfig(n Node) error {
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "quorum-%[1]s",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni-%[2]d",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "%[3]s"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "%[4]s"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, n.Name, n.index, n.PodCIDR, c.nodeDir(n, "cni", "ipam"))
	if err := writeFile(c.nodeDir(n, "cni", "net.d", "10-quorum.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}

	// restrict_oom_score_adj: these machines lack CAP_SYS_RESOURCE, so a
	// negative oom_score_adj is refused even for root and every sandbox fails
	// to start without it.
	containerd := fmt.Sprintf(`version = 2
root = "%[1]s/root"
state = "%[1]s/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "%[1]s/containerd.sock"

[ttrpc]
  address = "%[1]s/containerd.sock.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "%[1]s/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "%[2]s"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  disable_apparmor = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "%[1]s/runc"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "%[3]s"
`, c.nodeDir(n, "containerd"), PauseImage, c.nodeDir(n, "cni", "net.d"))
	if err := writeFile(c.nodeDir(n, "containerd", "config.toml"), []byte(containerd), 0o644); err != nil {
		return err
	}

	return writeFile(c.path("resolv.conf"), []byte("# the local cluster has no upstream DNS\n"), 0o644)
}

// kubeletNodeSettings are the kubelet settings of every node of the local
// cluster, management or tenant: its cgroup root (cgroupfs), containerd,
// log folder and the cluster's empty resolv.conf, and the machine's
// limits. imageGCHighThresholdPercent 100: images exist only locally and
// must never be garbage collected. failCgroupV1 false: these machines run
// cgroup v1 (hybrid). nodeLeaseDurationSeconds 10 with the
// controller-manager's short grace period makes a stopped node NotReady
// in seconds without flapping healthy ones.
func (c *Cluster) kubeletNodeSettings(n Node) string {
	return fmt.Sprintf(`cgroupDriver: cgroupfs
cgroupRoot: %[1]s
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%[2]s
podLogsDir: %[3]s
resolvConf: %[4]s
readOnlyPort: 0
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
nodeLeaseDurationSeconds: 10
nodeStatusUpdateFrequency: 4s
maxPods: 60
serializeImagePulls: false
protectKernelDefaults: false
localStorageCapacityIsolation: false
`, n.cgroupRoot(), c.containerdSocket(n), c.nodeDir(n, "pod-logs"), c.path("resolv.conf"))
}

// writeKubeletAndProxyConfig writes a management node's kubelet and
// kube-proxy configurations.
func (c *Cluster) writeKubeletAndProxyConfig(n Node) error {
	kubelet := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
clusterDomain: %[1]s
clusterDNS: [%[2]s]
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[3]s}
authorization: {mode: Webhook}
`, clusterDomain, dnsServiceIP, c.path("pki", "ca.crt")) + c.kubeletNodeSettings(n)
	if err := writeFile(c.nodeDir(n, "kubelet", "config.yaml"), []byte(kubelet), 0o644); err != nil {
		return err
	}

	// masqueradeAll: a pod reaching a Service whose endpoint is on its own
	// node's bridge gets its reply through conntrack without relying on
	// br_netfilter in the node's namespace. conntrack 0s/0: leave the
	// machine-wide conntrack sysctls as they are.
	proxy := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %[1]s
hostnameOverride: %[2]s
mode: iptables
clusterCIDR: %[3]s
bindAddress: %[4]s
healthzBindAddress: 0.0.0.0:10256
metricsBindAddress: 127.0.0.1:10249
iptables:
  masqueradeAll: true
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, c.path("kubeconfig", "kube-proxy.conf"), n.Name, clusterCIDR, n.IP)
	return writeFile(c.nodeDir(n, "kube-proxy.yaml"), []byte(proxy), 0o644)
}

// makeCgroupRoot creates the node's cgroup root in every v1 hierarchy,
// copying cpuset.cpus and cpuset.mems from the root (a new cpuset cgroup is
// empty and refuses tasks).
func (c *Cluster) makeCgroupRoot(n Node) error {
	for _, ctrl := range cgroupV1Controllers {
		base := filepath.Join("/sys/fs/cgroup", ctrl)
		if _, err := os.Stat(base); err != nil {
			continue
		}
		dir := filepath.Join(base, n.cgroupRoot())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if ctrl == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(base, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// removeCgroupRoot removes the node's cgroups, deepest first. It runs only
// after every process in them is gone.
func (c *Cluster) removeCgroupRoot(n Node) error {
	var errs []error
	for _, ctrl := range cgroupV1Controllers {
		dir := filepath.Join("/sys/fs/cgroup", ctrl, n.cgroupRoot())
		var dirs []string
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// cgroupPIDs lists every process in the node's cgroups: the node's
// containers, which this package started through the node's containerd.
func cgroupPIDs(n Node) []int {
	seen := map[int]bool{}
	var pids []int
	_ = filepath.WalkDir(filepath.Join("/sys/fs/cgroup", "pids", n.cgroupRoot()), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer func() { _ = f.Close() }()
		s := bufio.NewScanner(f)
		for s.Scan() {
			if pid, err := strconv.Atoi(strings.TrimSpace(s.Text())); err == nil && !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// shimPIDs lists the containerd shims of a node: the processes whose
// command line names the node's containerd socket.
func (c *Cluster) shimPIDs(n Node) []int {
	sock := c.containerdSocket(n)
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(cmdline), "containerd-shim") && strings.Contains(string(cmdline), sock) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// StopNode is a zone outage: the node's kubelet and kube-proxy stop, every
// container on it is killed, its containerd stops, and the mounts its pods
// left are removed. Its state stays, so StartNode brings it back.
func (c *Cluster) StopNode(name string) error {
	n, err := NodeByName(name)
	if err != nil {
		return err
	}
	return c.stopNode(n)
}

// stopNode stops a node's kubelet, kube-proxy (tenant nodes run none),
// containers and containerd, and removes the mounts its pods left.
func (c *Cluster) stopNode(n Node) error {
	c.stop("kubelet-"+n.Name, 5*time.Second)
	c.stop("kube-proxy-"+n.Name, 5*time.Second)
	c.killContainers(n)
	c.stop("containerd-"+n.Name, 10*time.Second)
	return c.unmountUnder(c.nodeDir(n))
}

// killContainers kills every process in the node's cgroups and its shims,
// until none is left.
func (c *Cluster) killContainers(n Node) {
	for i := 0; i < 50; i++ {
		pids := append(cgroupPIDs(n), c.shimPIDs(n)...)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StartNode restarts a stopped node's containerd, kubelet and kube-proxy.
func (c *Cluster) StartNode(name string) error {
	n, err := NodeByName(name)
	if err != nil {
		return err
	}
	if err := c.makeCgroupRoot(n); err != nil {
		return err
	}
	if err := c.startContainerd(n); err != nil {
		return err
	}
	return c.startKubeletAndProxy(n)
}

// unmountUnder detaches every mount below dir, deepest first: the pods'
// volumes, the containers' root filesystems and network namespace files.
func (c *Cluster) unmountUnder(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		p := unescapeMount(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes the octal escapes of /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// NodeContainers asks the node's containerd how many containers it runs;
// it fails when containerd does not answer (a stopped node).
func (c *Cluster) NodeContainers(name string) (int, error) {
	n, err := NodeByName(name)
	if err != nil {
		return 0, err
	}
	out, err := run("ctr", "--address", c.containerdSocket(n), "--timeout", "3s", "-n", "k8s.io", "tasks", "ls", "-q")
	if err != nil {
		return 0, err
	}
	return len(strings.Fields(out)), nil
}

// NodeProcesses lists the processes left in the node's cgroups.
func (c *Cluster) NodeProcesses(name string) []int {
	n, err := NodeByName(name)
	if err != nil {
		return nil
	}
	return cgroupPIDs(n)
}
