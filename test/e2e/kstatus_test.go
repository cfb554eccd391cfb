package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/testenv"
)

// kstatusNow is what the kstatus library (Flux, `kubectl wait`'s
// conventions) reads from the object as the API server serves it now;
// Argo CD's health check (config/argocd) is run on the same object and
// the test fails when the two disagree.
func kstatusNow(t *testing.T, kind, ns, name string) kstatus.Status {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(quorumv1alpha1.GroupVersion.WithKind(kind))
	if err := crClient(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	return testenv.KstatusOf(t, u)
}

// expectKstatus waits (bounded) until kstatus reads want.
func expectKstatus(t *testing.T, kind, ns, name string, want kstatus.Status, within time.Duration) {
	t.Helper()
	eventually(t, fmt.Sprintf("kstatus %s for %s %s", want, kind, name), within, func() (bool, string) {
		got := kstatusNow(t, kind, ns, name)
		return got == want, "kstatus reads " + string(got)
	})
}

// kubectlWaitReady runs `kubectl wait --for=condition=Ready` on the object
// in the background; the returned func waits for it and fails the test
// unless it succeeded.
func kubectlWaitReady(t *testing.T, kind, ns, name string, timeout time.Duration) func() {
	t.Helper()
	cmd := exec.Command(local.Kubectl(), "--kubeconfig", local.Kubeconfig(), "-n", ns, "wait",
		"--for=condition=Ready", strings.ToLower(kind)+"/"+name, fmt.Sprintf("--timeout=%s", timeout))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return func() {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("kubectl wait --for=condition=Ready %s/%s: %v: %s", kind, name, err, out.String())
			}
		case <-time.After(timeout + 30*time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("kubectl wait --for=condition=Ready %s/%s did not return", kind, name)
		}
	}
}
