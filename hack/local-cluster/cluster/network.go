package cluster

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// networkUp creates the bridge, the control-plane and node namespaces with a
// veth link each, and the routes between pod subnets. The host keeps one
// address on the bridge so kubectl and tests can reach the cluster; nothing
// else on the host changes, and networkDown removes all of it.
func (c *Cluster) networkUp() error {
	if _, err := run("ip", "link", "show", bridgeName); err != nil {
		if _, err := run("ip", "link", "add", bridgeName, "type", "bridge"); err != nil {
			return err
		}
		if _, err := run("ip", "addr", "add", bridgeCIDR, "dev", bridgeName); err != nil {
			return err
		}
	}
	if _, err := run("ip", "link", "set", bridgeName, "up"); err != nil {
		return err
	}
	if err := addHost(cpNetns, "q-cp", controlPlaneIP); err != nil {
		return err
	}
	for _, n := range Nodes {
		if err := addHost(n.Netns(), n.hostVeth(), n.IP); err != nil {
			return err
		}
		// The node's own processes reach Services through kube-proxy's
		// rules on eth0.
		if err := routePods(n.Netns()); err != nil {
			return err
		}
		if err := ensureRoute(n.Netns(), serviceCIDR, "dev", "eth0"); err != nil {
			return err
		}
	}
	// The host reaches Service IPs through the first node's kube-proxy
	// (which masquerades them), so a hosted control plane's endpoint
	// Service answers kubectl on the host.
	if err := ensureRoute("", serviceCIDR, "via", Nodes[0].IP); err != nil {
		return err
	}
	// Every namespace and the host reach every node's pod subnet through that
	// node's address on the bridge.
	for _, dst := range Nodes {
		for _, ns := range append([]string{"", cpNetns}, nodeNetnses(dst)...) {
			if err := ensureRoute(ns, dst.PodCIDR, "via", dst.IP); err != nil {
				return err
			}
		}
	}
	return nil
}

// routePods lets a node's namespace route its pods' traffic: forwarding
// on, reverse-path filtering off.
func routePods(netns string) error {
	for _, sysctl := range []string{"net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"} {
		if _, err := inNetns(netns, "sysctl", "-qw", sysctl); err != nil {
			return err
		}
	}
	return nil
}

// nodeNetnses are the namespaces of the nodes other than skip.
func nodeNetnses(skip Node) []string {
	var out []string
	for _, n := range Nodes {
		if n.Name != skip.Name {
			out = append(out, n.Netns())
		}
	}
	return out
}

// addHost creates a network namespace joined to the bridge by a veth pair,
// with ip on its eth0.
func addHost(netns, hostVeth, ip string) error {
	if _, err := os.Stat("/run/netns/" + netns); err != nil {
		if _, err := run("ip", "netns", "add", netns); err != nil {
			return err
		}
	}
	if _, err := run("ip", "link", "show", hostVeth); err != nil {
		peer := hostVeth + "p"
		if _, err := run("ip", "link", "add", hostVeth, "type", "veth", "peer", "name", peer); err != nil {
			return err
		}
		if _, err := run("ip", "link", "set", peer, "netns", netns); err != nil {
			return err
		}
		if _, err := inNetns(netns, "ip", "link", "set", peer, "name", "eth0"); err != nil {
			return err
		}
		if _, err := inNetns(netns, "ip", "addr", "add", ip+"/"+hostPrefixLen(), "dev", "eth0"); err != nil {
			return err
		}
	}
	if _, err := run("ip", "link", "set", hostVeth, "master", bridgeName, "up"); err != nil {
		return err
	}
	for _, dev := range []string{"lo", "eth0"} {
		if _, err := inNetns(netns, "ip", "link", "set", dev, "up"); err != nil {
			return err
		}
	}
	return nil
}

// ensureRoute adds a route in a namespace ("" is the host) unless present.
func ensureRoute(netns, dst string, via ...string) error {
	args := append([]string{"route", "replace", dst}, via...)
	if netns == "" {
		_, err := run("ip", args...)
		return err
	}
	_, err := inNetns(netns, "ip", args...)
	return err
}

// networkDown removes the routes, namespaces and bridge networkUp made.
func (c *Cluster) networkDown() error {
	var errs []error
	for _, dst := range append([]string{serviceCIDR}, podCIDRs()...) {
		if out, err := run("ip", "route", "show", dst); err == nil && strings.Contains(out, dst) {
			if _, err := run("ip", "route", "del", dst); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, netns := range append([]string{cpNetns}, allNodeNetnses()...) {
		if _, err := os.Stat("/run/netns/" + netns); err == nil {
			if _, err := run("ip", "netns", "del", netns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, dev := range append([]string{"q-cp", bridgeName}, allHostVeths()...) {
		if _, err := run("ip", "link", "show", dev); err == nil {
			if _, err := run("ip", "link", "del", dev); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func allNodeNetnses() []string {
	var out []string
	for _, n := range Nodes {
		out = append(out, n.Netns())
	}
	return out
}

func allHostVeths() []string {
	var out []string
	for _, n := range Nodes {
		out = append(out, n.hostVeth())
	}
	return out
}

// CutNode takes the node's link to the bridge down: the node and its pods
// are cut off the network while everything keeps running.
func (c *Cluster) CutNode(name string) error {
	n, err := NodeByName(name)
	if err != nil {
		return err
	}
	_, err = run("ip", "link", "set", n.hostVeth(), "down")
	return err
}

// HealNode brings the node's link back up.
func (c *Cluster) HealNode(name string) error {
	n, err := NodeByName(name)
	if err != nil {
		return err
	}
	_, err = run("ip", "link", "set", n.hostVeth(), "up")
	return err
}

func (n Node) String() string { return fmt.Sprintf("%s (%s, %s)", n.Name, n.Zone, n.IP) }

func podCIDRs() []string {
	var out []string
	for _, n := range Nodes {
		out = append(out, n.PodCIDR)
	}
	return out
}
