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

// kstatusSampler reads kstatus (and Argo CD's health, which must agree)
// every 250 ms in the background; stop returns the distinct readings in
// order, and the disagreements seen.
func kstatusSampler(t *testing.T, kind, ns, name string) (stop func() ([]kstatus.Status, []string)) {
	t.Helper()
	done := make(chan struct{})
	result := make(chan struct {
		seen  []kstatus.Status
		wrong []string
	}, 1)
	go func() {
		var seen []kstatus.Status
		var wrong []string
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(quorumv1alpha1.GroupVersion.WithKind(kind))
			if err := crClient(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err == nil {
				s, err := testenv.Judge(u)
				if err != nil {
					wrong = append(wrong, err.Error())
				}
				if s != "" && (len(seen) == 0 || seen[len(seen)-1] != s) {
					seen = append(seen, s)
				}
			}
			select {
			case <-done:
				result <- struct {
					seen  []kstatus.Status
					wrong []string
				}{seen, wrong}
				return
			case <-tick.C:
			}
		}
	}()
	return func() ([]kstatus.Status, []string) {
		close(done)
		r := <-result
		return r.seen, r.wrong
	}
}
