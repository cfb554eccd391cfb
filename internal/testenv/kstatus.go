package testenv

import (
	"fmt"
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
	s, err := Judge(u)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Judge is what kstatus reads from u, and an error when it cannot read it
// or Argo CD's health check disagrees; for callers that cannot fail a test
// themselves (a goroutine sampling an object).
func Judge(u *unstructured.Unstructured) (kstatus.Status, error) {
	res, err := kstatus.Compute(u)
	if err != nil {
		return "", err
	}
	h, err := argocd.Evaluate(u.Object)
	if err != nil {
		return res.Status, fmt.Errorf("argo CD's health check on %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	if want := ArgoHealthFor(res.Status, u.GetAnnotations()["quorum.dev/paused"] == "true"); h.Status != want {
		return res.Status, fmt.Errorf("%s %s: kstatus reads %s (%s) but Argo CD's health check says %s (%s), want %s",
			u.GetKind(), u.GetName(), res.Status, res.Message, h.Status, h.Message, want)
	}
	return res.Status, nil
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
