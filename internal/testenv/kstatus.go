package testenv

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"quorum.dev/quorum/config/argocd"
)

// Kstatus is what the kstatus library (Flux's health checks, `kubectl
// wait`, Argo CD through the same conventions) reads from obj. Argo CD's
// health check (config/argocd) is run on the same object and must agree;
// the test fails when it does not.
func Kstatus(t *testing.T, obj runtime.Object) kstatus.Status {
	t.Helper()
	gvk, err := apiutil.GVKForObject(obj, Scheme)
	if err != nil {
		t.Fatal(err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	return KstatusOf(t, u)
}

// KstatusOf is Kstatus for an object read as unstructured (as the API
// server serves it).
func KstatusOf(t *testing.T, u *unstructured.Unstructured) kstatus.Status {
	t.Helper()
	res, err := kstatus.Compute(u)
	if err != nil {
		t.Fatal(err)
	}
	h, err := argocd.Evaluate(u.Object)
	if err != nil {
		t.Fatalf("Argo CD's health check on %s %s: %v", u.GetKind(), u.GetName(), err)
	}
	if want := ArgoHealthFor(res.Status, u.GetAnnotations()["quorum.dev/paused"] == "true"); h.Status != want {
		t.Fatalf("%s %s: kstatus reads %s (%s) but Argo CD's health check says %s (%s), want %s",
			u.GetKind(), u.GetName(), res.Status, res.Message, h.Status, h.Message, want)
	}
	return res.Status
}

// ArgoHealthFor is the Argo CD health that matches a kstatus status: a
// paused object that is not current reads Suspended.
func ArgoHealthFor(s kstatus.Status, paused bool) string {
	switch {
	case s == kstatus.CurrentStatus:
		return "Healthy"
	case paused:
		return "Suspended"
	case s == kstatus.FailedStatus:
		return "Degraded"
	}
	return "Progressing"
}
