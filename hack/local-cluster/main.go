// Command local-cluster runs a real three-zone Kubernetes cluster on this
// machine, with Quorum deployed in it, and injects the faults the
// end-to-end suites need.
//
//	local-cluster up [--demo]              build what is missing, start everything, deploy Quorum;
//	                                       --demo skips the previous Kubernetes version (upgrade tests only)
//	local-cluster down                     stop everything it started, leave the machine as found
//	local-cluster status                   what runs
//	local-cluster stop-node NODE           zone outage: kubelet, kube-proxy, containers, containerd
//	local-cluster start-node NODE          bring a stopped node back
//	local-cluster cut-node NODE            take the node's link down
//	local-cluster heal-node NODE           bring the link back
//	local-cluster kill-container NS/POD CONTAINER
//	local-cluster deploy-quorum            rebuild Quorum's image and roll it out
//	local-cluster join-node NAME --control-plane NAMESPACE/NAME
//	                                       a tenant node joined to a hosted ControlPlane with kubeadm join
//	local-cluster remove-node NAME         stop a tenant node, delete its Node, remove what it made
//
// NODE is node-a, node-b or node-c (or its zone, zone-b).
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"quorum.dev/quorum/hack/local-cluster/cluster"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "local-cluster:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: local-cluster up|down|status|stop-node|start-node|cut-node|heal-node|kill-container|deploy-quorum|join-node|remove-node")
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the local cluster makes network namespaces, cgroups and mounts: run it as root")
	}
	root, err := cluster.FindRoot()
	if err != nil {
		return err
	}
	c := cluster.New(root)
	ctx := context.Background()
	node := func() (string, error) {
		if len(args) != 2 {
			return "", fmt.Errorf("%s takes a node: node-a, node-b or node-c", args[0])
		}
		return args[1], nil
	}
	switch args[0] {
	case "up":
		switch {
		case len(args) == 2 && args[1] == "--demo":
			c.WithoutPrevious = true
		case len(args) != 1:
			return fmt.Errorf("up takes no argument but --demo")
		}
		t, err := c.Up(ctx)
		if err != nil {
			return fmt.Errorf("%w\nlogs: %s", err, strings.Join(c.LogFiles(), " "))
		}
		fmt.Printf("local cluster up in %s (build %s, control plane %s, nodes Ready %s, add-ons %s, Quorum %s)\n",
			round(t.Total), round(t.Build), round(t.ControlPlane), round(t.NodesReady), round(t.AddonsReady), round(t.QuorumReady))
		fmt.Printf("export KUBECONFIG=%s; %s get nodes\n", c.Kubeconfig(), c.Kubectl())
		return nil
	case "down":
		return c.Down()
	case "status":
		fmt.Print(c.Status(ctx))
		return nil
	case "stop-node":
		n, err := node()
		if err != nil {
			return err
		}
		return c.StopNode(n)
	case "start-node":
		n, err := node()
		if err != nil {
			return err
		}
		return c.StartNode(n)
	case "cut-node":
		n, err := node()
		if err != nil {
			return err
		}
		return c.CutNode(n)
	case "heal-node":
		n, err := node()
		if err != nil {
			return err
		}
		return c.HealNode(n)
	case "kill-container":
		if len(args) != 3 || !strings.Contains(args[1], "/") {
			return fmt.Errorf("usage: local-cluster kill-container NAMESPACE/POD CONTAINER")
		}
		nsPod := strings.SplitN(args[1], "/", 2)
		cs, err := c.Clientset()
		if err != nil {
			return err
		}
		return c.KillContainer(ctx, cs, nsPod[0], nsPod[1], args[2])
	case "deploy-quorum":
		if _, err := c.BuildImagesAndImport(); err != nil {
			return err
		}
		cs, err := c.Clientset()
		if err != nil {
			return err
		}
		return c.DeployQuorum(ctx, cs)
	case "join-node":
		if len(args) != 4 || args[2] != "--control-plane" {
			return fmt.Errorf("usage: local-cluster join-node NAME --control-plane NAMESPACE/NAME")
		}
		took, err := c.JoinNode(ctx, args[1], args[3])
		if err != nil {
			return err
		}
		fmt.Printf("tenant node %s joined ControlPlane %s and is Ready (%s after join-node)\n", args[1], args[3], round(took))
		return nil
	case "remove-node":
		if len(args) != 2 {
			return fmt.Errorf("usage: local-cluster remove-node NAME")
		}
		return c.RemoveNode(ctx, args[1])
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func round(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
