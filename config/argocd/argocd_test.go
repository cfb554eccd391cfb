package argocd

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func object(generation int64, annotations map[string]any, status map[string]any) map[string]any {
	meta := map[string]any{"name": "main", "generation": generation}
	if annotations != nil {
		meta["annotations"] = annotations
	}
	obj := map[string]any{"apiVersion": "quorum.dev/v1alpha1", "kind": "EtcdCluster", "metadata": meta}
	if status != nil {
		obj["status"] = status
	}
	return obj
}

func conds(observed int64, cs ...[3]string) map[string]any {
	var list []any
	for _, c := range cs {
		list = append(list, map[string]any{"type": c[0], "status": c[1], "message": c[2], "observedGeneration": observed})
	}
	return map[string]any{"observedGeneration": observed, "conditions": list}
}

func TestHealth(t *testing.T) {
	paused := map[string]any{"quorum.dev/paused": "true"}
	for _, tc := range []struct {
		name string
		obj  map[string]any
		want string
	}{
		{"just applied, no status", object(1, nil, nil), "Progressing"},
		{"status without conditions", object(1, nil, map[string]any{}), "Progressing"},
		{"ready", object(2, nil, conds(2, [3]string{"Ready", "True", "3 of 3 voters are healthy"})), "Healthy"},
		{"ready for an older generation", object(3, nil, conds(2, [3]string{"Ready", "True", "3 of 3"})), "Progressing"},
		{"reconciling", object(1, nil, conds(1, [3]string{"Ready", "False", "adding"}, [3]string{"Reconciling", "True", "adding"})), "Progressing"},
		{"stalled", object(1, nil, conds(1, [3]string{"Ready", "False", "refused"}, [3]string{"Stalled", "True", "downgrade refused"})), "Degraded"},
		{"paused and stalled", object(1, paused, conds(1, [3]string{"Ready", "False", "paused"}, [3]string{"Stalled", "True", "paused"})), "Suspended"},
		{"paused and ready", object(1, paused, conds(1, [3]string{"Ready", "True", "healthy; paused"})), "Healthy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Evaluate(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			if h.Status != tc.want {
				t.Fatalf("health %s (%s), want %s", h.Status, h.Message, tc.want)
			}
		})
	}
}

// TestConfigMap: argocd-cm.yaml parses and carries the check, unchanged,
// for every kind.
func TestConfigMap(t *testing.T) {
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(ConfigMap()), &cm); err != nil {
		t.Fatal(err)
	}
	for _, kind := range Kinds {
		got := cm.Data["resource.customizations.health.quorum.dev_"+kind]
		if strings.TrimSpace(got) != strings.TrimSpace(HealthLua) {
			t.Fatalf("the ConfigMap's check for %s differs from health.lua:\n%s", kind, got)
		}
	}
}
