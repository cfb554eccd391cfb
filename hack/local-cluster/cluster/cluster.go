// Package cluster runs a real three-zone Kubernetes cluster on one machine:
// a control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler) in one network namespace and three worker nodes, each in a
// network namespace of its own with its own containerd, kubelet and
// kube-proxy, all joined by a bridge the package creates. Every address the
// cluster uses lives in those namespaces (and on the bridge), so test traffic
// never leaves the machine's own test hosts.
//
// It is the engine behind hack/local-cluster (up, down, status and faults)
// and the Go API the end-to-end suites use to stop, cut off and restart
// nodes.
package cluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Versions the cluster runs; the binaries are built by hack/build-binaries.sh.
const (
	KubernetesVersion = "v1.36.3"
	// PreviousKubernetesVersion is the minor version before, whose
	// control-plane images exist for the ControlPlane upgrade test.
	PreviousKubernetesVersion = "v1.35.4"
	EtcdVersion               = "3.6.16"
	// PreviousEtcdVersion is the patch release before, whose image the
	// nodes get once `hack/build-binaries.sh previous-etcd` built it (make
	// chaos does): the rolling-upgrade scenario starts from it.
	PreviousEtcdVersion = "3.6.15"
	CoreDNSVersion      = "v1.15.0"
	PauseImage          = "registry.k8s.io/pause:3.10"
	BusyboxImage        = "docker.io/library/busybox:1.36"
	ManagerImage        = "quorum.dev/quorum-manager:dev"
	AgentImage          = "quorum.dev/e2e-agent:dev"
	VersityImage        = "docker.io/versity/versitygw:v1.8.0"
	LocalPathImage      = "docker.io/rancher/local-path-provisioner:v0.0.30"
)

// The addresses of the cluster. They exist only inside the namespaces and on
// the bridge this package creates.
const (
	bridgeName     = "quorum0"
	bridgeCIDR     = "10.250.0.1/24" // the host's address on the bridge: kubectl and tests
	controlPlaneIP = "10.250.0.10"
	clusterCIDR    = "10.251.0.0/16"
	serviceCIDR    = "10.252.0.0/16"
	kubernetesSvc  = "10.252.0.1"
	dnsServiceIP   = "10.252.0.10"
	apiServerPort  = 6443
	clusterDomain  = "cluster.local"
	netnsPrefix    = "quorum-"
	cpNetns        = netnsPrefix + "cp"
)

// Node is one worker node: a zone of its own.
type Node struct {
	Name    string // node-a
	Zone    string // zone-a
	IP      string // its address on the bridge
	PodCIDR string // the pods' subnet on this node
	index   int
	// tenant is true for a node of a hosted control plane (join-node):
	// its namespace, link, cgroups and state are named apart from the
	// management nodes'.
	tenant bool
}

// Nodes are the three worker nodes, one per zone.
var Nodes = []Node{
	{Name: "node-a", Zone: "zone-a", IP: "10.250.0.11", PodCIDR: "10.251.1.0/24", index: 1},
	{Name: "node-b", Zone: "zone-b", IP: "10.250.0.12", PodCIDR: "10.251.2.0/24", index: 2},
	{Name: "node-c", Zone: "zone-c", IP: "10.250.0.13", PodCIDR: "10.251.3.0/24", index: 3},
}

// Netns is the name of the node's network namespace.
func (n Node) Netns() string {
	if n.tenant {
		return netnsPrefix + "t-" + n.Name
	}
	return netnsPrefix + n.Name
}

// hostVeth is the host end of the node's link to the bridge; taking it down
// cuts the node off the network.
func (n Node) hostVeth() string {
	if n.tenant {
		return fmt.Sprintf("q-t%d", n.index)
	}
	return "q-" + n.Name
}

// cgroupRoot is the kubelet's cgroup root for this node, in every v1
// hierarchy.
func (n Node) cgroupRoot() string {
	if n.tenant {
		return "/quorum-t-" + n.Name
	}
	return "/quorum-" + n.Name
}

// Cluster is a local cluster rooted in a repository checkout.
type Cluster struct {
	// Root is the repository root.
	Root string
	// State holds everything the running cluster writes: PKI, configs, data,
	// logs and PIDs (.local/cluster).
	State string
	// Bin holds the Kubernetes, etcd and add-on binaries (bin/k8s).
	Bin string
	// Log receives progress lines.
	Log func(format string, args ...any)
	// WithoutPrevious leaves out the previous Kubernetes version's
	// control-plane binaries and images (only upgrade tests use them) and
	// the upstream conformance tests and their images: the demo builds
	// less.
	WithoutPrevious bool
}

// New returns the cluster of the repository at root.
func New(root string) *Cluster {
	return &Cluster{
		Root:  root,
		State: filepath.Join(root, ".local", "cluster"),
		Bin:   filepath.Join(root, "bin", "k8s"),
		Log:   func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) },
	}
}

// FindRoot walks up from the working directory to the repository root (the
// folder with go.mod and hack/local-cluster).
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "local-cluster")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no Quorum checkout above the working directory")
		}
		dir = parent
	}
}

// Kubeconfig is the admin kubeconfig of the cluster, for the host.
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.Root, ".local", "kubeconfig") }

// Kubectl is the kubectl built alongside the cluster.
func (c *Cluster) Kubectl() string { return filepath.Join(c.Root, ".local", "bin", "kubectl") }

// NodeByName finds a worker node by its name (node-b) or zone (zone-b).
func NodeByName(name string) (Node, error) {
	for _, n := range Nodes {
		if n.Name == name || n.Zone == name {
			return n, nil
		}
	}
	names := make([]string, 0, len(Nodes))
	for _, n := range Nodes {
		names = append(names, n.Name)
	}
	return Node{}, fmt.Errorf("no node %q: the nodes are %s", name, strings.Join(names, ", "))
}

func (c *Cluster) path(parts ...string) string {
	return filepath.Join(append([]string{c.State}, parts...)...)
}

func (c *Cluster) nodeDir(n Node, parts ...string) string {
	if n.tenant {
		return c.path(append([]string{tenantNodesDir, n.Name}, parts...)...)
	}
	return c.path(append([]string{n.Name}, parts...)...)
}

func (c *Cluster) containerdSocket(n Node) string {
	return c.nodeDir(n, "containerd", "containerd.sock")
}

// hostPrefixLen is the prefix of the bridge subnet.
func hostPrefixLen() string {
	_, ipnet, _ := net.ParseCIDR(bridgeCIDR)
	ones, _ := ipnet.Mask.Size()
	return fmt.Sprint(ones)
}
