// Package e2e holds the end-to-end suites. They run against the local
// cluster hack/local-cluster starts (make cluster-up): real kubelets,
// containerd and runc on three zones, with Quorum deployed from
// config/default. Each case works in a namespace of its own so cases can run
// side by side on the one shared cluster.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"quorum.dev/quorum/hack/local-cluster/cluster"
)

var (
	local *cluster.Cluster
	kube  *kubernetes.Clientset
)

func TestMain(m *testing.M) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	local = cluster.New(root)
	if !local.Running() {
		fmt.Fprintln(os.Stderr, "the local cluster is not running: start it with `make cluster-up` (or run everything with `make test`)")
		os.Exit(1)
	}
	kube, err = local.Clientset()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client of the local cluster:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// newNamespace makes a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns, err := kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpNamespace(t, ns.Name)
		}
		_ = kube.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// dumpNamespace logs the pods and events of a failed test's namespace.
func dumpNamespace(t *testing.T, ns string) {
	ctx := context.Background()
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, p := range pods.Items {
			t.Logf("pod %s on %s: %s %s", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.Message)
		}
	}
	events, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, e := range events.Items {
			t.Logf("event %s/%s: %s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
}

// eventually polls cond until it holds or timeout passes, then fails with
// the last reason cond gave.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, reason := cond()
		if ok {
			return
		}
		if reason != "" {
			last = reason
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitPodPhase waits for a pod to reach phase.
func waitPodPhase(t *testing.T, ns, name string, phase corev1.PodPhase, timeout time.Duration) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, fmt.Sprintf("pod %s/%s %s", ns, name, phase), timeout, func() (bool, string) {
		p, err := kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pod = p
		if p.Status.Phase == corev1.PodFailed && phase != corev1.PodFailed {
			t.Fatalf("pod %s/%s failed: %s", ns, name, podLogs(t, ns, name))
		}
		return p.Status.Phase == phase, string(p.Status.Phase)
	})
	return pod
}

// waitNodeReady waits for a node to report Ready.
func waitNodeReady(t *testing.T, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ready, err := cluster.NodeReady(context.Background(), kube, name)
		if ready {
			return
		}
		if time.Now().After(deadline) {
			state := "NotReady"
			if err != nil {
				state = err.Error()
			}
			t.Fatalf("timed out after %s waiting for %s Ready: %s; %s", timeout, name, state, local.KubeletReport(name))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitPodReady waits for a pod to be Running and Ready.
func waitPodReady(t *testing.T, ns, name string, timeout time.Duration) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, fmt.Sprintf("pod %s/%s Ready", ns, name), timeout, func() (bool, string) {
		p, err := kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pod = p
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true, ""
			}
		}
		return false, string(p.Status.Phase)
	})
	return pod
}

func podLogs(t *testing.T, ns, name string) string {
	t.Helper()
	data, err := kube.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(context.Background())
	if err != nil {
		return "(no logs: " + err.Error() + ")"
	}
	return strings.TrimSpace(string(data))
}

// runPod runs a one-shot pod on a zone's node and returns its output once
// it succeeded.
func runPod(t *testing.T, ns string, pod *corev1.Pod, volumes ...corev1.Volume) string {
	t.Helper()
	name := pod.Name
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.Volumes = volumes
	for _, v := range volumes {
		pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: v.Name, MountPath: "/" + v.Name})
	}
	if _, err := kube.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodPhase(t, ns, name, corev1.PodSucceeded, 2*time.Minute)
	return podLogs(t, ns, name)
}

// busyboxPod is a pod running a shell command in the busybox image, pinned
// to a zone.
func busyboxPod(name, zone, command string) *corev1.Pod {
	return zonePod(name, zone, cluster.BusyboxImage, "sh", "-c", command)
}

// agentPod is a pod running the end-to-end agent (serve, get, lookup),
// pinned to a zone.
func agentPod(name, zone string, args ...string) *corev1.Pod {
	return zonePod(name, zone, cluster.AgentImage, append([]string{"/agent"}, args...)...)
}

func zonePod(name, zone, image string, command ...string) *corev1.Pod {
	zero := int64(0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeSelector:                  map[string]string{"topology.kubernetes.io/zone": zone},
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name:            "main",
				Image:           image,
				ImagePullPolicy: corev1.PullNever,
				Command:         command,
			}},
		},
	}
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
