package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"quorum.dev/quorum/hack/local-cluster/cluster"
)

// TestHelmChart (issue 15): the chart, installed with the real helm in
// namespaced mode while the cluster-wide install is scaled to zero, runs
// an EtcdCluster in the namespace it watches, leaves one in another
// namespace untouched, may not read Secrets there, and uninstalls
// cleanly. It runs alone: two operators must not act on one cluster.
func TestHelmChart(t *testing.T) {
	ctx := context.Background()
	helm := filepath.Join(local.Bin, "helm")
	release := newNamespace(t, "helm-release")
	watched := newNamespace(t, "helm-watched")
	other := newNamespace(t, "helm-other")

	scaleManager := func(n int32) {
		t.Helper()
		patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n))
		if _, err := kube.AppsV1().Deployments(cluster.QuorumNamespace).Patch(ctx, "quorum-manager", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	scaleManager(0)
	t.Cleanup(func() {
		scaleManager(2)
		if err := quorumManagerReady(t); err != nil {
			t.Errorf("the cluster-wide install did not come back: %v", err)
		}
	})
	eventually(t, "the cluster-wide manager stopped", 2*time.Minute, func() (bool, string) {
		pods, err := kube.CoreV1().Pods(cluster.QuorumNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=manager"})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d manager pods", len(pods.Items))
	})

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(helm, args...)
		cmd.Env = append(cmd.Environ(), "KUBECONFIG="+local.Kubeconfig(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	start := time.Now()
	run("install", "qh", filepath.Join(local.Root, "charts", "quorum"), "--namespace", release, "--skip-crds",
		"--set", "watchNamespaces={"+watched+"}", "--set", "replicas=1", "--set", "networkPolicy.enabled=true",
		"--set", "resources.requests.cpu=10m", "--wait", "--timeout", "3m")
	t.Logf("helm install in namespaced mode: ready in %s", time.Since(start).Round(time.Second))
	defer run("uninstall", "qh", "--namespace", release, "--wait", "--timeout", "2m")

	newEtcdCluster(t, watched, "main", 1)
	newEtcdCluster(t, other, "main", 1)
	waitHealthy(t, watched, "main", 1, 3*time.Minute)
	if c := getCluster(t, other, "main"); c.Status.ObservedGeneration != -1 || len(c.Status.Members) != 0 {
		t.Fatalf("the EtcdCluster in an unwatched namespace was acted on: %+v", c.Status)
	}
	if pods, err := kube.CoreV1().Pods(other).List(ctx, metav1.ListOptions{}); err != nil || len(pods.Items) != 0 {
		t.Fatalf("pods in the unwatched namespace: %v %v", pods, err)
	}

	sa := "system:serviceaccount:" + release + ":qh-manager"
	for _, tc := range []struct {
		ns   string
		want bool
	}{{watched, true}, {other, false}} {
		r, err := kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + release},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: tc.ns},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Allowed != tc.want {
			t.Errorf("%s may get Secrets in %s: %v, want %v", sa, tc.ns, r.Status.Allowed, tc.want)
		}
	}
	if _, err := kube.NetworkingV1().NetworkPolicies(release).Get(ctx, "qh-manager", metav1.GetOptions{}); err != nil {
		t.Errorf("networkPolicy.enabled made no NetworkPolicy for the manager: %v", err)
	}
	if _, err := kube.NetworkingV1().NetworkPolicies(watched).Get(ctx, "main-members", metav1.GetOptions{}); err != nil {
		t.Errorf("networkPolicy.enabled made no NetworkPolicy for the members: %v", err)
	}
	pods, err := kube.CoreV1().Pods(release).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=qh"})
	if err != nil || len(pods.Items) != 1 || pods.Items[0].Status.Phase != corev1.PodRunning {
		t.Fatalf("the release's manager pods: %v %v", pods, err)
	}
}
