package e2e

import (
	"context"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/hack/local-cluster/cluster"
)

var (
	conformance        = flag.Bool("conformance", false, "run the upstream [Conformance] tests against a hosted ControlPlane with joined tenant nodes (make conformance)")
	conformanceFocus   = flag.String("conformance.focus", `\[Conformance\]`, "ginkgo focus of the upstream tests to run")
	conformanceSkip    = flag.String("conformance.skip", "", "ginkgo skip of the upstream tests")
	conformanceProcs   = flag.Int("conformance.procs", 2, "ginkgo processes for the parallel tests")
	conformanceTimeout = flag.Duration("conformance.timeout", 150*time.Minute, "how long the upstream suite may run")
)

// TestConformance (issue 16) runs the upstream end-to-end tests, built
// from the k8s.io/kubernetes module (e2e.test and ginkgo, hack/
// build-binaries.sh), against a 3-replica ControlPlane on an EtcdCluster
// with CoreDNS, kube-proxy and konnectivity and two tenant nodes joined by
// kubeadm join, whose kubelets refuse every connection from outside their
// node (the apiservers reach them through konnectivity):
// the parallel tests with --conformance.procs processes, then the
// [Serial] ones alone, as the upstream conformance runs do. It prints
// passed, failed and skipped with each failure's reason, and fails when
// any test failed.
func TestConformance(t *testing.T) {
	if !*conformance {
		t.Skip("make conformance runs it (-conformance)")
	}
	runConformance(t, "conformance", *conformanceFocus, *conformanceSkip, *conformanceProcs, true)
}

// conformanceSubset is the part of the upstream conformance tests the
// README's test command runs (issue 16): API machinery, pods, Services
// through kube-proxy and names through CoreDNS, none [Serial].
const conformanceSubset = `\[sig-api-machinery\] (Discovery|Servers with support for Table transformation|Watchers should be able to start watching from a specific resource version|CustomResourceDefinition resources \[Privileged:ClusterAdmin\] Simple CustomResourceDefinition creating/deleting).*\[Conformance\]` +
	`|\[sig-node\] Pods should (be submitted and removed|get a host IP).*\[Conformance\]` +
	`|\[sig-network\] Services should (serve a basic endpoint from pods|find a service from listing all namespaces).*\[Conformance\]` +
	`|\[sig-network\] DNS should provide DNS for (services|the cluster) .*\[Conformance\]`

// testConformanceSubset runs conformanceSubset side by side with the
// other cases.
func testConformanceSubset(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join(local.Bin, "e2e.test")); err != nil {
		t.Fatalf("e2e.test is not built (local-cluster up builds it): %v", err)
	}
	runConformance(t, "conformance-subset", conformanceSubset, "", 2, false)
}

// runConformance makes the control plane and its two tenant nodes (named
// after the namespace), isolates their kubelets, checks logs and exec
// reach them through konnectivity, and runs the upstream tests focus and skip select:
// the parallel ones with procs processes, then (when serial) the
// [Serial] ones alone.
func runConformance(t *testing.T, prefix, focus, skip string, procs int, serial bool) {
	ctx := context.Background()
	ns := newNamespace(t, prefix)
	cp := controlPlaneOnEtcd(t, ns, cluster.KubernetesVersion, 8*time.Minute, func(cp *quorumv1alpha1.ControlPlane) {
		cp.Spec.Addons = quorumv1alpha1.ControlPlaneAddons{CoreDNS: &quorumv1alpha1.CoreDNSAddon{}, KubeProxy: localKubeProxy(),
			Konnectivity: &quorumv1alpha1.KonnectivityAddon{}}
	})
	suffix := ns[strings.LastIndex(ns, "-")+1:]
	var nodes []string
	for i := 1; i <= 2; i++ {
		node := fmt.Sprintf("%s-%s-%d", prefix, suffix, i)
		took, err := local.JoinNode(ctx, node, ns+"/tenant")
		t.Cleanup(func() {
			if err := local.RemoveNode(context.Background(), node); err != nil {
				t.Errorf("remove-node %s: %v", node, err)
			}
		})
		if err != nil {
			t.Fatalf("join-node %s: %v", node, err)
		}
		t.Logf("tenant node %s Ready %s after join-node", node, took.Round(100*time.Millisecond))
		nodes = append(nodes, node)
	}
	kubeconfig := adminKubeconfig(t, cp)
	// The kubelets refuse the apiservers: every upstream test that reaches
	// a kubelet or a pod (logs, exec, port-forward, proxy, webhooks) goes
	// through konnectivity.
	waitAddonsReady(t, cp, 3, len(nodes), 3*time.Minute)
	isolateKubelets(t, nodes...)
	assertTunnel(t, cp, kubeconfig, nodes[0])

	runs := []struct {
		name  string
		procs int
		skip  string
		focus string
	}{
		{"parallel", procs, joinRegexps(`\[Serial\]`, skip), focus},
	}
	if serial {
		runs = append(runs, struct {
			name  string
			procs int
			skip  string
			focus string
		}{"serial", 1, skip, joinAll(focus, `\[Serial\]`)})
	}
	var total conformanceCounts
	for _, run := range runs {
		dir := filepath.Join(t.TempDir(), run.name)
		args := []string{"--procs", fmt.Sprint(run.procs), "--timeout", conformanceTimeout.String(), "--junit-report", "junit.xml",
			"--output-dir", dir, "--focus", run.focus}
		if run.skip != "" {
			args = append(args, "--skip", run.skip)
		}
		args = append(args, filepath.Join(local.Bin, "e2e.test"), "--", "--kubeconfig", kubeconfig, "--provider", "skeleton",
			"--report-dir", dir)
		cmd := exec.Command(filepath.Join(local.Bin, "ginkgo"), args...)
		logPath := filepath.Join(local.Root, ".local", prefix+"-"+run.name+".log")
		logf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		start := time.Now()
		runErr := cmd.Run()
		_ = logf.Close()
		counts, err := readJUnit(filepath.Join(dir, "junit.xml"))
		if err != nil {
			t.Fatalf("the %s run (%v) left no report: %v; its output is %s", run.name, runErr, err, logPath)
		}
		// Specs the focus selected that did not run (the suite's timeout,
		// or a spec skipping itself) are the skipped ones; ginkgo's report
		// lists every filtered-out spec as skipped too.
		matched, err := matchedSpecs(run.focus, run.skip)
		if err != nil {
			t.Fatal(err)
		}
		counts.skipped = matched - counts.passed - counts.failed
		t.Logf("%s, %s tests (%d processes) in %s: %d passed, %d failed, %d skipped (output %s)",
			prefix, run.name, run.procs, time.Since(start).Round(time.Second), counts.passed, counts.failed, counts.skipped, logPath)
		for _, f := range counts.failures {
			t.Logf("  FAILED %s", f)
		}
		total.add(counts)
	}
	t.Logf("%s: %d passed, %d failed, %d skipped", prefix, total.passed, total.failed, total.skipped)
	if total.failed > 0 || total.passed == 0 {
		t.Errorf("%d upstream conformance tests failed, %d passed", total.failed, total.passed)
	}
}

func joinRegexps(res ...string) string {
	var out []string
	for _, r := range res {
		if r != "" {
			out = append(out, r)
		}
	}
	return strings.Join(out, "|")
}

// joinAll is a focus matching specs that match every regexp, in either
// order (ginkgo's focus is one regexp over the spec's full text).
func joinAll(a, b string) string {
	return fmt.Sprintf("((%s).*(%s))|((%s).*(%s))", a, b, b, a)
}

type conformanceCounts struct {
	passed, failed, skipped int
	failures                []string
}

func (c *conformanceCounts) add(o conformanceCounts) {
	c.passed += o.passed
	c.failed += o.failed
	c.skipped += o.skipped
	c.failures = append(c.failures, o.failures...)
}

// matchedSpecs is how many upstream specs a focus and skip select
// (e2e.test's dry run).
func matchedSpecs(focus, skip string) (int, error) {
	args := []string{"--ginkgo.dry-run", "--ginkgo.no-color", "--ginkgo.focus", focus}
	if skip != "" {
		args = append(args, "--ginkgo.skip", skip)
	}
	out, err := exec.Command(filepath.Join(local.Bin, "e2e.test"), args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("e2e.test dry run: %w: %s", err, out)
	}
	var ran, of int
	for _, line := range strings.Split(string(out), "\n") {
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "Ran %d of %d Specs", &ran, &of); err == nil {
			return ran, nil
		}
	}
	return 0, fmt.Errorf("e2e.test dry run said no count: %s", out)
}

// readJUnit counts the passed and failed specs of a ginkgo JUnit report
// (a timed-out spec fails), leaving out the suite's own setup nodes.
func readJUnit(path string) (conformanceCounts, error) {
	var out conformanceCounts
	data, err := os.ReadFile(path)
	if err != nil {
		return out, err
	}
	var report struct {
		Suites []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Status  string `xml:"status,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
				Error *struct {
					Message string `xml:"message,attr"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &report); err != nil {
		return out, err
	}
	for _, s := range report.Suites {
		for _, c := range s.Cases {
			if strings.HasPrefix(c.Name, "[ReportBeforeSuite]") || strings.HasPrefix(c.Name, "[ReportAfterSuite]") ||
				strings.HasPrefix(c.Name, "[SynchronizedBeforeSuite]") || strings.HasPrefix(c.Name, "[SynchronizedAfterSuite]") ||
				strings.HasPrefix(c.Name, "[BeforeSuite]") || strings.HasPrefix(c.Name, "[AfterSuite]") {
				continue
			}
			switch {
			case c.Failure != nil || c.Error != nil:
				msg := ""
				if c.Failure != nil {
					msg = c.Failure.Message
				} else {
					msg = c.Error.Message
				}
				msg, _, _ = strings.Cut(strings.TrimSpace(msg), "\n")
				out.failed++
				out.failures = append(out.failures, c.Name+": "+msg)
			case c.Status == "passed":
				out.passed++
			}
		}
	}
	return out, nil
}
