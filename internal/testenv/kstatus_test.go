package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// TestJustAppliedReadsInProgress: each sample, applied with no operator
// to act on it, reads InProgress to kstatus and Progressing to Argo CD (the
// API server defaults status.observedGeneration to -1); once status says
// Ready for its generation it reads Current.
func TestJustAppliedReadsInProgress(t *testing.T) {
	c := Start(t)
	ns := Namespace(t, c, "kstatus")
	ctx := context.Background()
	samples, err := filepath.Glob("../../config/samples/quorum_v1alpha1_*.yaml")
	if err != nil || len(samples) != 3 {
		t.Fatalf("samples %v: %v", samples, err)
	}
	for _, path := range samples {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetNamespace(ns)
		if err := c.Create(ctx, u); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(u.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
			t.Fatal(err)
		}
		if s := KstatusOf(t, got); s != kstatus.InProgressStatus {
			t.Fatalf("%s just applied reads %s, want InProgress; status %v", u.GetKind(), s, got.Object["status"])
		}

		var conds []metav1.Condition
		meta.SetStatusCondition(&conds, metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Ready", Message: "as asked", ObservedGeneration: got.GetGeneration()})
		raw, err := runtimeToMaps(conds)
		if err != nil {
			t.Fatal(err)
		}
		got.Object["status"] = map[string]any{"observedGeneration": got.GetGeneration(), "conditions": raw}
		if err := c.Status().Update(ctx, got); err != nil {
			t.Fatal(err)
		}
		if s := KstatusOf(t, got); s != kstatus.CurrentStatus {
			t.Fatalf("%s Ready for its generation reads %s, want Current", u.GetKind(), s)
		}
	}
}

func runtimeToMaps(conds []metav1.Condition) ([]any, error) {
	data, err := yaml.Marshal(conds)
	if err != nil {
		return nil, err
	}
	var out []any
	return out, yaml.Unmarshal(data, &out)
}
