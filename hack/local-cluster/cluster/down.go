package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Down stops every process the cluster started (by its recorded PID, and
// the containers and shims of its nodes), unmounts what they left, removes
// the cgroups, namespaces, bridge and routes, and deletes the cluster's
// state. The build caches (bin/, .local/images, .local/bin) stay.
func (c *Cluster) Down() error {
	var errs []error
	tenants, err := c.TenantNodes()
	if err != nil {
		errs = append(errs, err)
	}
	for name := range tenants {
		if err := c.removeTenantNode(context.Background(), name, false); err != nil {
			errs = append(errs, fmt.Errorf("tenant node %s: %w", name, err))
		}
	}
	for _, n := range Nodes {
		if err := c.StopNode(n.Name); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range []string{"kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		c.stop(name, 10*time.Second)
	}
	if err := c.unmountUnder(c.State); err != nil {
		errs = append(errs, err)
	}
	for _, n := range Nodes {
		if err := c.removeCgroupRoot(n); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.networkDown(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(c.State); err != nil {
			errs = append(errs, err)
		}
		_ = os.Remove(c.Kubeconfig())
	}
	return errors.Join(errs...)
}

// daemonNames lists every daemon of the cluster, in start order.
func daemonNames() []string {
	names := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
	for _, n := range Nodes {
		names = append(names, "containerd-"+n.Name, "kubelet-"+n.Name, "kube-proxy-"+n.Name)
	}
	return names
}

// Status says which daemons run and how the nodes are.
func (c *Cluster) Status(ctx context.Context) string {
	var b strings.Builder
	running := 0
	names := daemonNames()
	tenants, _ := c.TenantNodes()
	for name := range tenants {
		names = append(names, "containerd-"+name, "kubelet-"+name)
	}
	for _, name := range names {
		if pid, alive := c.pid(name); alive {
			running++
			fmt.Fprintf(&b, "  %-28s running (pid %d)\n", name, pid)
		} else {
			fmt.Fprintf(&b, "  %-28s stopped\n", name)
		}
	}
	if running == 0 {
		return "the local cluster is not running\n"
	}
	cs, err := c.Clientset()
	if err == nil {
		for _, n := range Nodes {
			ready, err := NodeReady(ctx, cs, n.Name)
			state := "NotReady"
			if ready {
				state = "Ready"
			}
			if err != nil {
				state = "unknown: " + err.Error()
			}
			fmt.Fprintf(&b, "  node %-23s %s\n", n.String(), state)
		}
	}
	fmt.Fprintf(&b, "  kubeconfig: %s\n  kubectl:    %s\n", c.Kubeconfig(), c.Kubectl())
	return b.String()
}

// Running says whether the control plane of the cluster runs.
func (c *Cluster) Running() bool {
	_, alive := c.pid("kube-apiserver")
	return alive
}

// KillContainer kills the main process of one container with SIGKILL
// through its node's containerd; the kubelet then restarts it as it would
// after a crash.
func (c *Cluster) KillContainer(ctx context.Context, cs kubernetes.Interface, namespace, pod, container string) error {
	return c.SignalContainer(ctx, cs, namespace, pod, container, "SIGKILL")
}

// SignalContainer sends a signal (SIGKILL, SIGSTOP, SIGCONT) to the main
// process of one container through its node's containerd.
// The runtime may not know the task the pod's status names for a moment
// (chaos saw "no running task found" for a container the kubelet had
// reported running): that is tried again, with the status read again, for
// up to 15 s.
func (c *Cluster) SignalContainer(ctx context.Context, cs kubernetes.Interface, namespace, pod, container, signal string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := c.signalContainerOnce(ctx, cs, namespace, pod, container, signal)
		if err == nil || !strings.Contains(err.Error(), "no running task found") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *Cluster) signalContainerOnce(ctx context.Context, cs kubernetes.Interface, namespace, pod, container, signal string) error {
	p, err := cs.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return err
	}
	n, err := NodeByName(p.Spec.NodeName)
	if err != nil {
		return err
	}
	for _, st := range p.Status.ContainerStatuses {
		if st.Name != container {
			continue
		}
		id := strings.TrimPrefix(st.ContainerID, "containerd://")
		if id == "" || st.State.Running == nil {
			return fmt.Errorf("container %s of %s/%s is not running", container, namespace, pod)
		}
		_, err := run("ctr", "--address", c.containerdSocket(n), "-n", "k8s.io", "tasks", "kill", "--signal", signal, id)
		return err
	}
	return fmt.Errorf("pod %s/%s has no container %s", namespace, pod, container)
}

// LogFiles lists the daemons' log files, for a failed test to point at.
func (c *Cluster) LogFiles() []string {
	files, _ := filepath.Glob(c.path("logs", "*.log"))
	return files
}
