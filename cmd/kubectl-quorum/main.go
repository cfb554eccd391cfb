// Command kubectl-quorum is Quorum's kubectl plugin: one screen of an
// EtcdCluster's or ControlPlane's state, and the day-two actions users
// otherwise write YAML for. Put it on PATH and call it as `kubectl quorum`.
//
//	kubectl quorum status [etcdcluster|controlplane] NAME
//	kubectl quorum backup now CLUSTER [--like BACKUP] [--wait 5m]
//	kubectl quorum restore --from BACKUP [--snapshot NAME] [--replicas N] NEW-CLUSTER [--wait 10m]
//	kubectl quorum defrag CLUSTER [--wait 10m]
//	kubectl quorum pause|resume [etcdcluster|controlplane|etcdbackup] NAME
//	kubectl quorum join-command CONTROLPLANE [--ttl 24h] [--server URL]
//
// Every command takes -n/--namespace, --kubeconfig and --context.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

const usage = `kubectl quorum: Quorum's etcd clusters and control planes, from kubectl.

  status [etcdcluster|controlplane] NAME      members, roles, zones, health, alarms,
                                             certificates, last backup: one screen
  backup now CLUSTER [--like BACKUP]          a one-shot EtcdBackup to where BACKUP (or the
                                             cluster's only EtcdBackup) stores snapshots
  restore --from BACKUP NEW-CLUSTER           a new EtcdCluster from BACKUP's newest verified
          [--snapshot NAME] [--replicas N]    snapshot (or NAME), shaped like the source
  defrag CLUSTER                              defragment every member, the leader last
  pause|resume [KIND] NAME                    stop or restart every change (KIND: etcdcluster,
                                             controlplane, etcdbackup; etcdcluster by default)
  join-command CONTROLPLANE [--ttl 24h]       a bootstrap token in the hosted cluster and the
               [--server URL]                kubeadm join command a node runs with it
                                             (--server: how to reach the hosted API from here)

Flags: -n/--namespace, --kubeconfig, --context; --wait DURATION (backup, restore,
defrag) waits until done, 0 returns at once.
`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kubectl quorum:", err)
		os.Exit(1)
	}
}

// options are the flags, wherever they sit among the arguments.
type options struct {
	namespace, kubeconfig, context string
	like, from, snapshot, server   string
	replicas                       int32
	wait, ttl                      time.Duration
	args                           []string
}

func parse(args []string) (options, error) {
	o := options{wait: -1}
	valued := map[string]*string{
		"-n": &o.namespace, "--namespace": &o.namespace, "--kubeconfig": &o.kubeconfig, "--context": &o.context,
		"--like": &o.like, "--from": &o.from, "--snapshot": &o.snapshot, "--server": &o.server,
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "--help" {
			return o, errHelp
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			o.args = append(o.args, a)
			continue
		}
		name, value, hasValue := strings.Cut(a, "=")
		if !hasValue {
			if i+1 >= len(args) {
				return o, fmt.Errorf("%s needs a value", name)
			}
			i++
			value = args[i]
		}
		switch name {
		case "--replicas":
			n, err := strconv.ParseInt(value, 10, 32)
			if err != nil || n < 1 {
				return o, fmt.Errorf("--replicas %q: want 1, 3, 5, 7 or 9", value)
			}
			o.replicas = int32(n)
		case "--wait":
			d, err := time.ParseDuration(value)
			if err != nil || d < 0 {
				return o, fmt.Errorf("--wait %q: want a duration such as 5m, or 0", value)
			}
			o.wait = d
		case "--ttl":
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return o, fmt.Errorf("--ttl %q: want a duration such as 24h", value)
			}
			o.ttl = d
		default:
			p, ok := valued[name]
			if !ok {
				return o, fmt.Errorf("unknown flag %s", name)
			}
			*p = value
		}
	}
	return o, nil
}

var errHelp = errors.New("help")

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parse(args)
	if errors.Is(err, errHelp) || (err == nil && len(o.args) == 0) {
		_, _ = io.WriteString(out, usage)
		return nil
	}
	if err != nil {
		return err
	}
	c, ns, err := connect(o)
	if err != nil {
		return err
	}
	cmd, rest := o.args[0], o.args[1:]
	switch cmd {
	case "status":
		return status(ctx, c, ns, rest, time.Now(), out)
	case "backup":
		if len(rest) != 2 || rest[0] != "now" {
			return fmt.Errorf("usage: kubectl quorum backup now CLUSTER [--like BACKUP]")
		}
		return backupNow(ctx, c, ns, rest[1], o, out)
	case "restore":
		if len(rest) != 1 || o.from == "" {
			return fmt.Errorf("usage: kubectl quorum restore --from BACKUP NEW-CLUSTER")
		}
		return restore(ctx, c, ns, rest[0], o, out)
	case "defrag":
		if len(rest) != 1 {
			return fmt.Errorf("usage: kubectl quorum defrag CLUSTER")
		}
		return defrag(ctx, c, ns, rest[0], o, out)
	case "pause", "resume":
		return pause(ctx, c, ns, rest, cmd == "pause", out)
	case "join-command":
		if len(rest) != 1 {
			return fmt.Errorf("usage: kubectl quorum join-command CONTROLPLANE [--ttl 24h] [--server URL]")
		}
		return joinCommand(ctx, c, ns, rest[0], o, out)
	}
	return fmt.Errorf("unknown command %q; kubectl quorum --help lists them", cmd)
}

// connect builds a client from the kubeconfig kubectl would use, and the
// namespace to work in.
func connect(o options) (client.Client, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.kubeconfig != "" {
		rules.ExplicitPath = o.kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", err
	}
	ns := o.namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil {
			return nil, "", err
		}
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	if err := quorumv1alpha1.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	return c, ns, err
}
