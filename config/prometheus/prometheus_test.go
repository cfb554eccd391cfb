// Package prometheus holds Quorum's alerts (rules.yaml, tested in
// rules_test.yaml), the PrometheusRule and ServiceMonitors for the
// Prometheus Operator, and a Grafana dashboard. This test runs the real
// promtool on them.
package prometheus

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// promtool is the binary hack/build-binaries.sh builds (make
// test-binaries); its absence fails the test rather than skipping it.
func promtool(t *testing.T) string {
	t.Helper()
	dirs := []string{os.Getenv("KUBEBUILDER_ASSETS"), "../../bin/k8s"}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if p := filepath.Join(d, "promtool"); fileExists(p) {
			return p
		}
	}
	t.Fatalf("no promtool in %v: run make test-binaries", dirs)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// TestRules: the alerts parse, and each fires (and stays quiet) as
// rules_test.yaml says.
func TestRules(t *testing.T) {
	p := promtool(t)
	run(t, p, "check", "rules", "rules.yaml")
	run(t, p, "test", "rules", "rules_test.yaml")
}

// TestEveryAlertIsTested: each alert in rules.yaml has a firing case in
// rules_test.yaml.
func TestEveryAlertIsTested(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
			} `json:"rules"`
		} `json:"groups"`
	}
	readYAML(t, "rules.yaml", &rules)
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	readYAML(t, "rules_test.yaml", &tests)
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if !fires[r.Alert] {
				t.Errorf("alert %s has no case in rules_test.yaml where it fires", r.Alert)
			}
		}
	}
}

// TestDashboard: dashboard.json is a Grafana dashboard whose every query
// parses (promtool checks them as recording rules).
func TestDashboard(t *testing.T) {
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	data, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	var recording []map[string]string
	for i, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for j, target := range p.Targets {
			recording = append(recording, map[string]string{"record": fmt.Sprintf("dashboard:panel%d_%d", i, j), "expr": target.Expr})
		}
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": recording}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, promtool(t), "check", "rules", file)
}

// TestMetricsExist: every quorum_* metric the alerts and the dashboard
// read is one the controllers export.
func TestMetricsExist(t *testing.T) {
	exported := map[string]bool{}
	sources, err := filepath.Glob("../../controllers/*/metrics.go")
	if err != nil || len(sources) == 0 {
		t.Fatalf("no metrics.go under controllers/: %v", err)
	}
	named := regexp.MustCompile(`Name:\s+"(quorum_[a-z_]+)"`)
	for _, src := range sources {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range named.FindAllStringSubmatch(string(data), -1) {
			exported[m[1]] = true
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				exported[m[1]+suffix] = true
			}
		}
	}
	used := regexp.MustCompile(`quorum_[a-z_]+`)
	for _, f := range []string{"rules.yaml", "rules_test.yaml", "dashboard.json"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range slices.Compact(used.FindAllString(string(data), -1)) {
			if !exported[m] {
				t.Errorf("%s reads %s, which no controller exports", f, m)
			}
		}
	}
}

func readYAML(t *testing.T, name string, into any) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
