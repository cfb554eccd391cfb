package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/hack/local-cluster/cluster"
)

// testKubectlPlugin (issue 15): `kubectl quorum`, found by kubectl on
// PATH as users install it, against a 3-member cluster with an S3
// backup: status on one screen, a backup now, a defragmentation of every
// member, pause and resume, and a restore into a new cluster that holds
// the keys.
func testKubectlPlugin(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "plugin")
	s3Server(t, ns, "etcd-backups")
	newEtcdCluster(t, ns, "main", 3)
	c := waitHealthy(t, ns, "main", 3, 4*time.Minute)
	// The cluster's own backup policy: daily, so it does not run here.
	create(t, s3Backup(ns, "daily", "main", "etcd-backups", "s3-credentials", func(b *quorumv1alpha1.EtcdBackup) { b.Spec.Schedule = "0 3 * * *" }))
	before := putKeys(t, etcdClient(t, ns, "main"), "/plugin/", 300)

	quorum := quorumPlugin(t, ns)
	mustSay := func(out string, says ...string) {
		t.Helper()
		for _, s := range says {
			if !strings.Contains(out, s) {
				t.Fatalf("the output does not say %q:\n%s", s, out)
			}
		}
	}

	out := quorum("status", "main")
	mustSay(out, "3 of 3 voters healthy", "leader "+c.Status.Leader, "Ready: True", "alarms: none", "last backup: none", "certificates: ")
	for _, m := range c.Status.Members {
		mustSay(out, m.Name, m.ID, m.Zone)
	}

	out = quorum("backup", "now", "main", "--wait", "4m")
	mustSay(out, "to where daily stores them", "snapshot verified: s3://etcd-backups/main/")
	out = quorum("status", "main")
	mustSay(out, "last backup: ", "by EtcdBackup main-now-")
	list := &quorumv1alpha1.EtcdBackupList{}
	if err := crClient(t).List(context.Background(), list); err != nil {
		t.Fatal(err)
	}
	var now string
	for _, b := range list.Items {
		if b.Namespace == ns && strings.HasPrefix(b.Name, "main-now-") {
			now = b.Name
		}
	}

	out = quorum("defrag", "main", "--wait", "5m")
	mustSay(out, "3 of 3 members defragmented")
	if rd := getCluster(t, ns, "main").Status.RequestedDefrag; rd == nil || rd.CompletionTime == nil || len(rd.Defragmented) != 3 {
		t.Fatalf("status.requestedDefrag = %+v", rd)
	}

	quorum("pause", "main")
	if !strings.Contains(quorum("status", "main"), "PAUSED") || getCluster(t, ns, "main").Annotations["quorum.dev/paused"] != "true" {
		t.Fatal("pause did not pause")
	}
	quorum("resume", "etcdcluster/main")
	if _, ok := getCluster(t, ns, "main").Annotations["quorum.dev/paused"]; ok {
		t.Fatal("resume left the annotation")
	}

	out = quorum("restore", "--from", now, "restored", "--replicas", "1", "--wait", "5m")
	mustSay(out, "etcdcluster/restored created from EtcdBackup "+now, "with the settings of main", "Ready: ")
	got, _ := getPrefix(t, etcdClient(t, ns, "restored"), "/plugin/")
	if len(got) != len(before) {
		t.Fatalf("the restored cluster holds %d of the %d keys written before the backup", len(got), len(before))
	}
	if v := getCluster(t, ns, "restored").Spec.Version; v != cluster.EtcdVersion {
		t.Fatalf("the restored cluster runs %q, want the source's %s", v, cluster.EtcdVersion)
	}
}

var plugin struct {
	once sync.Once
	dir  string
	err  error
}

// quorumPlugin builds `kubectl-quorum` once per run and gives a function
// that runs `kubectl quorum -n ns ARGS...` as a user would, kubectl
// finding the plugin on PATH; it fails the test when the command fails.
func quorumPlugin(t *testing.T, ns string) func(args ...string) string {
	t.Helper()
	plugin.once.Do(func() {
		plugin.dir, plugin.err = os.MkdirTemp("", "kubectl-quorum-")
		if plugin.err != nil {
			return
		}
		build := exec.Command("go", "build", "-o", filepath.Join(plugin.dir, "kubectl-quorum"), "./cmd/kubectl-quorum")
		build.Dir = local.Root
		if out, err := build.CombinedOutput(); err != nil {
			plugin.err = fmt.Errorf("building the plugin: %w: %s", err, out)
		}
	})
	if plugin.err != nil {
		t.Fatal(plugin.err)
	}
	return func(args ...string) string {
		t.Helper()
		cmd := exec.Command(local.Kubectl(), append([]string{"quorum", "-n", ns}, args...)...)
		cmd.Env = append(os.Environ(), "PATH="+plugin.dir+":"+os.Getenv("PATH"), "KUBECONFIG="+local.Kubeconfig())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl quorum %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("kubectl quorum %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
}
