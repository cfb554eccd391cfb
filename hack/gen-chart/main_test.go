package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// helm is the binary hack/build-binaries.sh builds (make test-binaries);
// its absence fails the test.
func helm(t *testing.T) string {
	t.Helper()
	for _, d := range []string{os.Getenv("KUBEBUILDER_ASSETS"), "../../bin/k8s"} {
		if p := filepath.Join(d, "helm"); d != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Fatal("no helm binary: run make test-binaries")
	return ""
}

func render(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	out, err := exec.Command(helm(t), append([]string{"template", "rel", "../../charts/quorum", "--namespace", "ops"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	var docs []map[string]any
	for _, part := range strings.Split(string(out), "\n---\n") {
		var d map[string]any
		if err := yaml.Unmarshal([]byte(part), &d); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, part)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

func find(docs []map[string]any, kind, name string) map[string]any {
	for _, d := range docs {
		m, _ := d["metadata"].(map[string]any)
		if d["kind"] == kind && m["name"] == name {
			return d
		}
	}
	return nil
}

func TestChartLints(t *testing.T) {
	if out, err := exec.Command(helm(t), "lint", "../../charts/quorum", "--strict", "--set", "watchNamespaces={a,b}", "--set", "networkPolicy.enabled=true").CombinedOutput(); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
}

// TestChartDefaults: the default values install what config/default
// does: a cluster-wide binding, metrics on :8443, the image of values.yaml
// for the manager and its backup pods, names from the release.
func TestChartDefaults(t *testing.T) {
	docs := render(t)
	dep := find(docs, "Deployment", "rel-manager")
	if dep == nil {
		t.Fatal("no Deployment rel-manager")
	}
	c := dep["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	args := strings.Join(strings.Fields(strings.Trim(strings.ReplaceAll(toString(c["args"]), ",", " "), "[]")), " ")
	for _, want := range []string{"--metrics-bind-address=:8443", "--backup-image=quorum.dev/quorum-manager:dev"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %s lack %s", args, want)
		}
	}
	if strings.Contains(args, "--namespaces") || strings.Contains(args, "--etcd-network-policies") {
		t.Errorf("args %s watch namespaces or make NetworkPolicies by default", args)
	}
	if c["image"] != "quorum.dev/quorum-manager:dev" || dep["metadata"].(map[string]any)["namespace"] != "ops" {
		t.Errorf("image %v, namespace %v", c["image"], dep["metadata"])
	}
	if find(docs, "ClusterRoleBinding", "rel-manager") == nil || find(docs, "ClusterRoleBinding", "rel-manager-cluster") == nil {
		t.Error("no cluster-wide bindings by default")
	}
	if find(docs, "Service", "rel-manager-metrics") == nil || find(docs, "NetworkPolicy", "rel-manager") != nil {
		t.Error("want the metrics Service and no NetworkPolicy by default")
	}
}

// TestChartNamespaced: watchNamespaces binds the manager's role only in
// those namespaces (the cluster-scoped part stays cluster-wide), tells the
// manager to watch only them, and the other values take effect.
func TestChartNamespaced(t *testing.T) {
	docs := render(t, "--set", "watchNamespaces={tenant-a,tenant-b}", "--set", "metrics.enabled=false",
		"--set", "networkPolicy.enabled=true", "--set", "replicas=1", "--set", "image.tag=v9", "--set", "resources.requests.cpu=7m")
	if find(docs, "ClusterRoleBinding", "rel-manager") != nil {
		t.Error("a cluster-wide binding of the manager's role in namespaced mode")
	}
	for _, ns := range []string{"tenant-a", "tenant-b"} {
		rb := find(docs, "RoleBinding", "rel-manager")
		found := false
		for _, d := range docs {
			m := d["metadata"].(map[string]any)
			if d["kind"] == "RoleBinding" && m["name"] == "rel-manager" && m["namespace"] == ns {
				found = true
			}
		}
		if rb == nil || !found {
			t.Errorf("no RoleBinding rel-manager in %s", ns)
		}
	}
	cr := find(docs, "ClusterRole", "rel-manager-cluster")
	if cr == nil || strings.Contains(toString(cr["rules"]), "secrets") || !strings.Contains(toString(cr["rules"]), "nodes") {
		t.Errorf("the cluster-scoped role: %v", cr)
	}
	dep := find(docs, "Deployment", "rel-manager")
	spec := dep["spec"].(map[string]any)
	c := spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	args := toString(c["args"])
	if !strings.Contains(args, "--namespaces=tenant-a,tenant-b") || !strings.Contains(args, "--metrics-bind-address=0") || !strings.Contains(args, "--etcd-network-policies") {
		t.Errorf("args %s", args)
	}
	if spec["replicas"] != float64(1) || c["image"] != "quorum.dev/quorum-manager:v9" || !strings.Contains(toString(c["resources"]), "7m") {
		t.Errorf("replicas %v, image %v, resources %v", spec["replicas"], c["image"], c["resources"])
	}
	if find(docs, "Service", "rel-manager-metrics") != nil || find(docs, "NetworkPolicy", "rel-manager") == nil {
		t.Error("want no metrics Service and a NetworkPolicy")
	}
}

func toString(v any) string {
	out, _ := yaml.Marshal(v)
	return string(out)
}
