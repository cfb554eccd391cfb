package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"quorum.dev/quorum/internal/pki"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/hack/local-cluster/cluster"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
)

// TestControlPlane runs the ControlPlane cases side by side, each in its
// own namespace. No case stops a node: the host reaches the endpoint
// Services through the first node's kube-proxy.
func TestControlPlane(t *testing.T) {
	t.Run("side by side", func(t *testing.T) {
		t.Run("on an EtcdCluster: kubectl through the endpoint, a replica killed, leader moved, scaled 3-5-3, upgraded", testControlPlaneOnEtcdCluster)
		t.Run("stacked etcd: kubectl through the endpoint while a replica is killed", testControlPlaneStacked)
		t.Run("a missing EtcdCluster is a condition, and the control plane starts once it exists", testControlPlaneMissingEtcd)
		t.Run("upstream conformance subset (API machinery, pods, Services, DNS) on two tenant nodes reached through konnectivity", testConformanceSubset)
	})
}

func newControlPlane(t *testing.T, ns, name, version string, replicas int32, etcd quorumv1alpha1.ControlPlaneEtcd, mutate ...func(*quorumv1alpha1.ControlPlane)) *quorumv1alpha1.ControlPlane {
	t.Helper()
	cp := &quorumv1alpha1.ControlPlane{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: quorumv1alpha1.ControlPlaneSpec{
			Replicas: ptr.To(replicas),
			Version:  version,
			Zones:    quorumv1alpha1.Zones{"zone-a", "zone-b", "zone-c"},
			Etcd:     etcd,
			Endpoint: quorumv1alpha1.ControlPlaneEndpoint{ServiceType: "ClusterIP"},
			FailurePolicy: quorumv1alpha1.ControlPlaneFailurePolicy{FailurePolicy: quorumv1alpha1.FailurePolicy{
				UnhealthyAfter: &metav1.Duration{Duration: 30 * time.Second},
			}},
		},
	}
	small := &corev1.ResourceRequirements{Requests: smallRequests()}
	cp.Spec.APIServer.Resources, cp.Spec.ControllerManager.Resources, cp.Spec.Scheduler.Resources = small, small, small
	if cp.Spec.Etcd.Stacked != nil {
		cp.Spec.Etcd.Stacked.Resources = small
	}
	for _, m := range mutate {
		m(cp)
	}
	if err := crClient(t).Create(context.Background(), cp); err != nil {
		t.Fatal(err)
	}
	return cp
}

func getControlPlane(t *testing.T, ns, name string) *quorumv1alpha1.ControlPlane {
	t.Helper()
	cp := &quorumv1alpha1.ControlPlane{}
	if err := crClient(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cp); err != nil {
		t.Fatal(err)
	}
	return cp
}

func cpSummary(cp *quorumv1alpha1.ControlPlane) string {
	var parts []string
	for _, c := range cp.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return fmt.Sprintf("replicas %d ready %d updated %d; %s", cp.Status.Replicas, cp.Status.ReadyReplicas, cp.Status.UpdatedReplicas, strings.Join(parts, "; "))
}

// waitControlPlane waits until n replicas at version are ready and the
// control plane says it is Available, not progressing, and Ready.
func waitControlPlane(t *testing.T, ns, name string, n int32, version string, timeout time.Duration) *quorumv1alpha1.ControlPlane {
	t.Helper()
	var cp *quorumv1alpha1.ControlPlane
	eventually(t, fmt.Sprintf("control plane %s/%s with %d ready replicas at %s", ns, name, n, version), timeout, func() (bool, string) {
		cp = getControlPlane(t, ns, name)
		st := cp.Status
		ok := st.ObservedGeneration == cp.Generation && st.Replicas == n && st.ReadyReplicas == n && st.UpdatedReplicas == n &&
			st.Version == version && meta.IsStatusConditionTrue(st.Conditions, quorumv1alpha1.ConditionAvailable) &&
			meta.IsStatusConditionFalse(st.Conditions, quorumv1alpha1.ConditionProgressing) &&
			// Ready also says the admin credential's binding is made.
			meta.IsStatusConditionTrue(st.Conditions, reconciler.ConditionReady)
		return ok, cpSummary(cp)
	})
	return cp
}

// adminKubeconfig writes the admin kubeconfig from the control plane's
// Secret, pointed at the endpoint Service's cluster IP (one of the serving
// certificate's SANs), which the host reaches through kube-proxy.
func adminKubeconfig(t *testing.T, cp *quorumv1alpha1.ControlPlane) string {
	t.Helper()
	ctx := context.Background()
	secret, err := kube.CoreV1().Secrets(cp.Namespace).Get(ctx, cp.Status.KubeconfigSecretRef.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := kube.CoreV1().Services(cp.Namespace).Get(ctx, resources.EndpointServiceName(cp.Name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(secret.Data[resources.KubeconfigKey])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = fmt.Sprintf("https://%s:%d", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
	}
	path := filepath.Join(t.TempDir(), "admin.conf")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// hostedKubectl runs kubectl against the hosted control plane.
func hostedKubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	cmd := exec.Command(local.Kubectl(), append([]string{"--kubeconfig", kubeconfig, "--request-timeout=20s"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// localKubeProxy is the kube-proxy add-on tenant nodes of the local
// cluster need: each is a network namespace on a plain bridge (no
// br_netfilter), and only the machine's first namespace may size the
// conntrack table.
func localKubeProxy() *quorumv1alpha1.KubeProxyAddon {
	return &quorumv1alpha1.KubeProxyAddon{MasqueradeAll: true, ConntrackMaxPerCore: ptr.To[int32](0)}
}

// hostedKubectlOut runs kubectl against a hosted API and returns what it
// printed, error or not (for polling).
func hostedKubectlOut(kubeconfig string, args ...string) string {
	out, err := exec.Command(local.Kubectl(), append([]string{"--kubeconfig", kubeconfig, "--request-timeout=20s"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%v: %s", err, out)
	}
	return string(out)
}

func hostedClientset(t *testing.T, kubeconfig string) *kubernetes.Clientset {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// poller reads through the endpoint every 100 ms and records the longest
// window of failure: from the last success before a failed request to the
// first success after it.
type poller struct {
	mu          sync.Mutex
	requests    int
	failures    int
	longest     time.Duration
	lastSuccess time.Time
	failing     bool
	lastErr     string
	// kinds counts the failures by kind; longestFrom is when the longest
	// failure window began, since started.
	kinds       map[string]int
	started     time.Time
	longestFrom time.Duration
	stop        context.CancelFunc
	done        chan struct{}
}

func startPoller(t *testing.T, kubeconfig string) *poller {
	t.Helper()
	cs := hostedClientset(t, kubeconfig)
	return startPollerWith(func() kubernetes.Interface { return cs })
}

// startFollowingPoller is startPoller with the admin kubeconfig fetched
// again from its Secret (at most every 2 s) whenever it changes, as a user
// is told to during a CA rotation.
func startFollowingPoller(t *testing.T, cp *quorumv1alpha1.ControlPlane) *poller {
	t.Helper()
	var cs kubernetes.Interface
	var version string
	var checked time.Time
	return startPollerWith(func() kubernetes.Interface {
		if cs != nil && time.Since(checked) < 2*time.Second {
			return cs
		}
		checked = time.Now()
		secret, err := kube.CoreV1().Secrets(cp.Namespace).Get(context.Background(), cp.Status.KubeconfigSecretRef.Name, metav1.GetOptions{})
		if err != nil || secret.ResourceVersion == version {
			return cs
		}
		if next, err := clientsetFrom(cp, secret.Data[resources.KubeconfigKey]); err == nil {
			cs, version = next, secret.ResourceVersion
		}
		return cs
	})
}

// clientsetFrom is a client of the hosted API from a kubeconfig, pointed at
// the endpoint Service's cluster IP.
// controlPlaneOnEtcd makes a 3-member EtcdCluster "etcd" (emptyDir) and a
// 3-replica ControlPlane "tenant" at version on it, and waits until the
// control plane is available.
func controlPlaneOnEtcd(t *testing.T, ns, version string, timeout time.Duration, mutate ...func(*quorumv1alpha1.ControlPlane)) *quorumv1alpha1.ControlPlane {
	t.Helper()
	newEtcdCluster(t, ns, "etcd", 3, func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.Storage = quorumv1alpha1.EtcdStorage{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	})
	newControlPlane(t, ns, "tenant", version, 3,
		quorumv1alpha1.ControlPlaneEtcd{ClusterRef: &quorumv1alpha1.LocalObjectReference{Name: "etcd"}}, mutate...)
	return waitControlPlane(t, ns, "tenant", 3, version, timeout)
}

func clientsetFrom(cp *quorumv1alpha1.ControlPlane, kubeconfig []byte) (kubernetes.Interface, error) {
	svc, err := kube.CoreV1().Services(cp.Namespace).Get(context.Background(), resources.EndpointServiceName(cp.Name), metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Host = fmt.Sprintf("https://%s:%d", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
	cfg.Timeout = 5 * time.Second
	return kubernetes.NewForConfig(cfg)
}

func startPollerWith(client func() kubernetes.Interface) *poller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &poller{stop: cancel, done: make(chan struct{}), lastSuccess: time.Now(), started: time.Now(), kinds: map[string]int{}}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			rctx, rcancel := context.WithTimeout(ctx, time.Second)
			err := errors.New("no kubeconfig")
			if cs := client(); cs != nil {
				_, err = cs.CoreV1().Namespaces().Get(rctx, "default", metav1.GetOptions{})
			}
			rcancel()
			if ctx.Err() != nil {
				return
			}
			now := time.Now()
			p.mu.Lock()
			p.requests++
			switch {
			case err != nil:
				p.failures++
				p.lastErr = err.Error()
				p.kinds[failureKind(err)]++
				p.failing = true
				p.window(now)
			default:
				if p.failing {
					p.window(now)
				}
				p.failing = false
				p.lastSuccess = now
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// window records the failure window that began at the last success and
// goes on at now.
func (p *poller) window(now time.Time) {
	if d := now.Sub(p.lastSuccess); d > p.longest {
		p.longest, p.longestFrom = d, p.lastSuccess.Sub(p.started)
	}
}

// failureKind names what kind of failure err is: a timeout, a refused
// connection, a certificate the client does not trust, an HTTP status, or
// something else.
func failureKind(err error) string {
	var status apierrors.APIStatus
	var unknownAuthority x509.UnknownAuthorityError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.As(err, &unknownAuthority):
		return "untrusted certificate"
	case errors.As(err, &status):
		return fmt.Sprintf("HTTP %d", status.Status().Code)
	default:
		return "other"
	}
}

// finish stops the poller and fails the test when requests failed for
// longer than allowed.
func (p *poller) finish(t *testing.T, what string, allowed time.Duration) {
	t.Helper()
	p.stop()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Logf("%s: %d requests through the endpoint, %d failed %v, longest failure window %s from %s after the start (last error: %s)",
		what, p.requests, p.failures, p.kinds, p.longest.Round(time.Millisecond), p.longestFrom.Round(100*time.Millisecond), p.lastErr)
	if p.requests < 20 {
		t.Errorf("%s: only %d requests were made", what, p.requests)
	}
	if p.longest > allowed {
		t.Errorf("%s: requests failed for %s in a row, more than %s", what, p.longest, allowed)
	}
}

// failoverAllowed bounds the longest run of failed requests while one
// replica of three is killed (SIGKILL, no drain): requests on the dead
// replica's connection time out (1 s each, client-go retries) until the
// client reconnects through the endpoint to another. Measured: 0-3.1 s.
const failoverAllowed = 5 * time.Second

// useTheEndpoint creates and lists objects with kubectl as the admin.
func useTheEndpoint(t *testing.T, kubeconfig, suffix string) {
	t.Helper()
	hostedKubectl(t, kubeconfig, "create", "namespace", "e2e-"+suffix)
	hostedKubectl(t, kubeconfig, "-n", "e2e-"+suffix, "create", "configmap", "probe", "--from-literal=written-by="+suffix)
	out := hostedKubectl(t, kubeconfig, "-n", "e2e-"+suffix, "get", "configmaps", "-o", "name")
	if !strings.Contains(out, "configmap/probe") {
		t.Fatalf("the hosted API does not list the configmap just created: %s", out)
	}
}

// killReplica deletes a replica's pod at once and waits for the control
// plane to be whole again, with a client polling through the endpoint.
func killReplica(t *testing.T, cp *quorumv1alpha1.ControlPlane, kubeconfig, version string) {
	t.Helper()
	ctx := context.Background()
	victim := cp.Status.ReplicaStatus[0].Name
	old, err := kube.CoreV1().Pods(cp.Namespace).Get(ctx, victim, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := startPoller(t, kubeconfig)
	// (issue 15) Degraded while the replica is replaced: in progress, then
	// current again.
	sampled := kstatusSampler(t, "ControlPlane", cp.Namespace, cp.Name)
	time.Sleep(2 * time.Second)
	killed := time.Now()
	if err := kube.CoreV1().Pods(cp.Namespace).Delete(ctx, victim, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	// A replica on another etcd comes back as a new pod; a stacked one is
	// its etcd member's pod, recreated under the same name from its volume.
	eventually(t, "the killed replica replaced", 3*time.Minute, func() (bool, string) {
		pods, err := kube.CoreV1().Pods(cp.Namespace).List(ctx, metav1.ListOptions{LabelSelector: resources.ControlPlaneSelector(cp.Name)})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, pod := range pods.Items {
			if pod.UID == old.UID {
				return false, "the killed pod is still listed"
			}
			for _, c := range pod.Status.ContainerStatuses {
				if c.Name == "kube-apiserver" && c.Ready && pod.DeletionTimestamp == nil {
					ready++
				}
			}
		}
		return ready == int(*cp.Spec.Replicas), fmt.Sprintf("%d apiservers ready", ready)
	})
	back := waitControlPlane(t, cp.Namespace, cp.Name, *cp.Spec.Replicas, version, 4*time.Minute)
	t.Logf("replica %s killed; %d replicas ready again after %s", victim, back.Status.ReadyReplicas, time.Since(killed).Round(time.Second))
	expectKstatus(t, "ControlPlane", cp.Namespace, cp.Name, kstatus.CurrentStatus, time.Minute)
	// Current at the end is what expectKstatus just saw.
	seen, wrong := sampled()
	if len(wrong) > 0 || !slices.Contains(seen, kstatus.InProgressStatus) {
		t.Fatalf("kstatus while a replica was replaced: %v (want InProgress before Current again); Argo CD disagreed: %v", seen, wrong)
	}
	p.finish(t, "replica "+victim+" killed", failoverAllowed)
}

func testControlPlaneOnEtcdCluster(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "cp-ext")
	newEtcdCluster(t, ns, "etcd", 3, func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.Storage = quorumv1alpha1.EtcdStorage{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	})
	applied := time.Now()
	// (issue 16) With CoreDNS and kube-proxy: at the versions for
	// v1.35 now, for v1.36 after the upgrade.
	newControlPlane(t, ns, "tenant", cluster.PreviousKubernetesVersion, 3,
		quorumv1alpha1.ControlPlaneEtcd{ClusterRef: &quorumv1alpha1.LocalObjectReference{Name: "etcd"}}, func(cp *quorumv1alpha1.ControlPlane) {
			cp.Spec.Addons = quorumv1alpha1.ControlPlaneAddons{CoreDNS: &quorumv1alpha1.CoreDNSAddon{}, KubeProxy: localKubeProxy()}
		})
	// (issue 15) In progress from the moment it is applied, current once
	// available; `kubectl wait` returns then.
	if s := kstatusNow(t, "ControlPlane", ns, "tenant"); s != kstatus.InProgressStatus {
		t.Fatalf("just applied, kstatus reads %s, want InProgress", s)
	}
	waitReady := kubectlWaitReady(t, "ControlPlane", ns, "tenant", 5*time.Minute)
	cp := waitControlPlane(t, ns, "tenant", 3, cluster.PreviousKubernetesVersion, 5*time.Minute)
	t.Logf("3 replicas on an EtcdCluster Available %s after apply (etcd created at the same time)", time.Since(applied).Round(time.Second))
	waitReady()
	expectKstatus(t, "ControlPlane", ns, "tenant", kstatus.CurrentStatus, time.Minute)
	assertSpread(t, cp, 3)
	if c := meta.FindStatusCondition(cp.Status.Conditions, quorumv1alpha1.ConditionEtcdAvailable); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("EtcdAvailable: %+v", c)
	}
	kubeconfig := adminKubeconfig(t, cp)
	useTheEndpoint(t, kubeconfig, "before")
	assertAddons(t, ns, "tenant", kubeconfig, cluster.PreviousKubernetesVersion)

	// (issue 11 f) A second ControlPlane on the same EtcdCluster would share
	// its /registry: refused with a condition, no replica started.
	newControlPlane(t, ns, "intruder", cluster.PreviousKubernetesVersion, 1,
		quorumv1alpha1.ControlPlaneEtcd{ClusterRef: &quorumv1alpha1.LocalObjectReference{Name: "etcd"}})
	eventually(t, "the second ControlPlane refused (EtcdClusterInUse)", time.Minute, func() (bool, string) {
		c := meta.FindStatusCondition(getControlPlane(t, ns, "intruder").Status.Conditions, quorumv1alpha1.ConditionEtcdAvailable)
		if c == nil {
			return false, "no EtcdAvailable yet"
		}
		return c.Status == metav1.ConditionFalse && c.Reason == "EtcdClusterInUse", c.Reason + ": " + c.Message
	})
	if pods, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: resources.LabelControlPlane + "=intruder"}); err != nil || len(pods.Items) != 0 {
		t.Fatalf("the refused ControlPlane has pods: %v %v", pods, err)
	}
	if err := crClient(t).Delete(context.Background(), &quorumv1alpha1.ControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "intruder"}}); err != nil {
		t.Fatal(err)
	}

	// (issue 16) Hosted Secrets are encrypted at rest; the flags Quorum
	// owns are refused in extraArgs.
	assertEncryptedAtRest(t, kubeconfig, ns, "etcd")
	assertReservedFlagsRefused(t, ns, "tenant")
	assertCredentials(t, cp)
	assertJoinPath(t, cp)
	// The rotation rolled every replica: the control plane as it is now.
	cp = rotateEncryptionKey(t, kubeconfig, ns, "tenant", "etcd")

	// (a) A replica's pod deleted while a client polls through the endpoint.
	killReplica(t, cp, kubeconfig, cluster.PreviousKubernetesVersion)
	useTheEndpoint(t, kubeconfig, "after-kill")

	// (c) Kill the replica holding the controller-manager lease.
	hosted := hostedClientset(t, kubeconfig)
	leaseHolder := func() (string, int32) {
		l, err := hosted.CoordinationV1().Leases("kube-system").Get(context.Background(), "kube-controller-manager", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return "", 0
		}
		id, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
		return id, ptr.Deref(l.Spec.LeaseDurationSeconds, 0)
	}
	var leader string
	var duration int32
	// The lease may still name the replica killed above until it expires:
	// wait for a live holder that status.leaders names.
	eventually(t, "status.leaders naming a live lease holder", time.Minute, func() (bool, string) {
		leader, duration = leaseHolder()
		cp = getControlPlane(t, ns, "tenant")
		live := false
		for _, r := range cp.Status.ReplicaStatus {
			live = live || (r.Name == leader && r.Ready)
		}
		return live && cp.Status.Leaders.ControllerManager == leader, fmt.Sprintf("lease %q, status %+v", leader, cp.Status.Leaders)
	})
	killed := time.Now()
	if err := kube.CoreV1().Pods(ns).Delete(context.Background(), leader, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	var next string
	eventually(t, "another replica holding the controller-manager lease", time.Minute, func() (bool, string) {
		next, _ = leaseHolder()
		return next != "" && next != leader, "holder " + next
	})
	took := time.Since(killed)
	t.Logf("controller-manager lease moved from %s to %s in %s (lease duration %ds)", leader, next, took.Round(100*time.Millisecond), duration)
	if limit := time.Duration(duration)*time.Second + 5*time.Second; took > limit {
		t.Errorf("the lease moved after %s, more than the lease duration plus 5s (%s)", took, limit)
	}
	eventually(t, "status.leaders naming the new holder", time.Minute, func() (bool, string) {
		cp = getControlPlane(t, ns, "tenant")
		return cp.Status.Leaders.ControllerManager == next, fmt.Sprintf("%+v", cp.Status.Leaders)
	})
	cp = waitControlPlane(t, ns, "tenant", 3, cluster.PreviousKubernetesVersion, 3*time.Minute)

	// (d) Scale 3 to 5 to 3, one replica at a time, spread over the zones.
	for _, n := range []int32{5, 3} {
		start := time.Now()
		scaleControlPlane(t, ns, "tenant", n)
		seen := watchReplicaCounts(t, ns, "tenant")
		cp = waitControlPlane(t, ns, "tenant", n, cluster.PreviousKubernetesVersion, 4*time.Minute)
		counts := seen()
		t.Logf("scaled to %d in %s (replica counts seen: %v)", n, time.Since(start).Round(time.Second), counts)
		assertSpread(t, cp, n)
		for _, c := range counts {
			if c > 5 {
				t.Errorf("%d replicas seen while scaling 3-5-3", c)
			}
		}
	}
	useTheEndpoint(t, kubeconfig, "after-scale")

	// (e) Upgrade one minor version, one replica at a time, while the API
	// keeps answering.
	p := startPoller(t, kubeconfig)
	start := time.Now()
	patchControlPlane(t, ns, "tenant", func(cp *quorumv1alpha1.ControlPlane) { cp.Spec.Version = cluster.KubernetesVersion })
	seen := watchReplicaCounts(t, ns, "tenant")
	cp = waitControlPlane(t, ns, "tenant", 3, cluster.KubernetesVersion, 6*time.Minute)
	counts := seen()
	t.Logf("upgraded %s -> %s in %s (live replica counts seen: %v)", cluster.PreviousKubernetesVersion, cluster.KubernetesVersion, time.Since(start).Round(time.Second), counts)
	for _, c := range counts {
		if c > 4 {
			t.Errorf("%d live replicas during the upgrade: more than one extra", c)
		}
	}
	p.finish(t, "upgrade", failoverAllowed)
	if out := hostedKubectl(t, kubeconfig, "version", "-o", "json"); !strings.Contains(out, `"gitVersion": "`+cluster.KubernetesVersion+`"`) {
		t.Errorf("the hosted API does not report %s after the upgrade: %s", cluster.KubernetesVersion, out)
	}
	for _, r := range cp.Status.ReplicaStatus {
		if r.Version != cluster.KubernetesVersion {
			t.Errorf("replica %s runs %s after the upgrade", r.Name, r.Version)
		}
	}
	out := hostedKubectl(t, kubeconfig, "-n", "e2e-before", "get", "configmap", "probe", "-o", "jsonpath={.data.written-by}")
	if out != "before" {
		t.Errorf("an object written before the upgrade reads %q", out)
	}
	assertAddons(t, ns, "tenant", kubeconfig, cluster.KubernetesVersion)
	// (issue 16 a) A node joins the upgraded cluster.
	assertNodeJoins(t, cp, kubeconfig)

	// Two minor versions down is refused in a condition; nothing moves.
	before := replicaNames(getControlPlane(t, ns, "tenant"))
	patchControlPlane(t, ns, "tenant", func(cp *quorumv1alpha1.ControlPlane) { cp.Spec.Version = "v1.34.0" })
	eventually(t, "the downgrade refused", time.Minute, func() (bool, string) {
		cp = getControlPlane(t, ns, "tenant")
		c := meta.FindStatusCondition(cp.Status.Conditions, quorumv1alpha1.ConditionProgressing)
		return c != nil && c.Reason == "UpgradeRefused" && c.Status == metav1.ConditionFalse, cpSummary(cp)
	})
	time.Sleep(5 * time.Second)
	if after := replicaNames(getControlPlane(t, ns, "tenant")); after != before {
		t.Errorf("a refused version changed the replicas: %s -> %s", before, after)
	}
}

func testControlPlaneStacked(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "cp-stacked")
	// (issue 16) With an audit policy from a ConfigMap, logged to stdout.
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "audit"},
		Data: map[string]string{quorumv1alpha1.AuditPolicyKey: "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resources: [{group: \"\", resources: [namespaces]}]\n"}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	newControlPlane(t, ns, "tenant", cluster.KubernetesVersion, 3,
		quorumv1alpha1.ControlPlaneEtcd{Stacked: &quorumv1alpha1.StackedEtcd{Version: cluster.EtcdVersion}}, func(cp *quorumv1alpha1.ControlPlane) {
			cp.Spec.APIServer.Audit = &quorumv1alpha1.APIServerAudit{PolicyConfigMapRef: quorumv1alpha1.LocalObjectReference{Name: "audit"}, Output: quorumv1alpha1.AuditStdout}
		})
	cp := waitControlPlane(t, ns, "tenant", 3, cluster.KubernetesVersion, 6*time.Minute)
	t.Logf("3 stacked replicas Available %s after apply", time.Since(applied).Round(time.Second))
	assertSpread(t, cp, 3)
	// Each replica pod runs an etcd member of the stacked EtcdCluster.
	ec := waitHealthy(t, ns, resources.StackedEtcdName("tenant"), 3, time.Minute)
	for _, m := range ec.Status.Members {
		pod, err := kube.CoreV1().Pods(ns).Get(context.Background(), m.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range pod.Spec.Containers {
			names = append(names, c.Name)
		}
		if got := strings.Join(names, ","); got != "etcd,kube-apiserver,kube-controller-manager,kube-scheduler" {
			t.Errorf("member pod %s runs %s", m.Name, got)
		}
	}
	kubeconfig := adminKubeconfig(t, cp)
	useTheEndpoint(t, kubeconfig, "before")
	assertAudited(t, cp, "e2e-before")
	killReplica(t, cp, kubeconfig, cluster.KubernetesVersion)
	useTheEndpoint(t, kubeconfig, "after-kill")
	waitHealthy(t, ns, resources.StackedEtcdName("tenant"), 3, 2*time.Minute)
}

// assertAudited finds, in the apiservers' standard output, the audit event
// of the namespace created through the endpoint (the policy logs
// namespaces at Metadata level).
func assertAudited(t *testing.T, cp *quorumv1alpha1.ControlPlane, namespace string) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "the audit event of creating namespace "+namespace, time.Minute, func() (bool, string) {
		pods, err := kube.CoreV1().Pods(cp.Namespace).List(ctx, metav1.ListOptions{LabelSelector: resources.ControlPlaneSelector(cp.Name)})
		if err != nil {
			return false, err.Error()
		}
		for _, p := range pods.Items {
			raw, err := kube.CoreV1().Pods(cp.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: "kube-apiserver"}).DoRaw(ctx)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(raw), "\n") {
				if strings.Contains(line, `"apiVersion":"audit.k8s.io/v1"`) && strings.Contains(line, `"verb":"create"`) &&
					strings.Contains(line, `"resource":"namespaces"`) && strings.Contains(line, `"name":"`+namespace+`"`) {
					t.Logf("audited in %s: %.160s", p.Name, line)
					return true, ""
				}
			}
		}
		return false, "no such audit event in any apiserver's log"
	})
}

func testControlPlaneMissingEtcd(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "cp-missing")
	newControlPlane(t, ns, "tenant", cluster.KubernetesVersion, 1,
		quorumv1alpha1.ControlPlaneEtcd{ClusterRef: &quorumv1alpha1.LocalObjectReference{Name: "not-yet"}})
	eventually(t, "EtcdAvailable=False EtcdClusterNotFound", time.Minute, func() (bool, string) {
		cp := getControlPlane(t, ns, "tenant")
		c := meta.FindStatusCondition(cp.Status.Conditions, quorumv1alpha1.ConditionEtcdAvailable)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == "EtcdClusterNotFound" &&
			meta.IsStatusConditionFalse(cp.Status.Conditions, quorumv1alpha1.ConditionAvailable), cpSummary(cp)
	})
	// (issue 15) A missing reference needs a person: failed.
	if s := kstatusNow(t, "ControlPlane", ns, "tenant"); s != kstatus.FailedStatus {
		t.Fatalf("clusterRef to a missing EtcdCluster, kstatus reads %s, want Failed", s)
	}
	restarts := managerRestarts(t)
	time.Sleep(10 * time.Second)
	pods, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: resources.ControlPlaneSelector("tenant")})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 0 {
		t.Errorf("%d replicas started without etcd", len(pods.Items))
	}
	if after := managerRestarts(t); after != restarts {
		t.Errorf("the operator restarted (%d -> %d restarts)", restarts, after)
	}
	// The reference resolves once the EtcdCluster exists: nothing was lost.
	newEtcdCluster(t, ns, "not-yet", 1, func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.Storage = quorumv1alpha1.EtcdStorage{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	})
	waitControlPlane(t, ns, "tenant", 1, cluster.KubernetesVersion, 4*time.Minute)

	// Quiet when nothing changes: once the control plane has settled (its
	// controller-manager and scheduler elected), reconciles (every 10 s, and
	// on every pod and EtcdCluster event) write nothing.
	var cp *quorumv1alpha1.ControlPlane
	eventually(t, "both leases held", 2*time.Minute, func() (bool, string) {
		cp = getControlPlane(t, ns, "tenant")
		l := cp.Status.Leaders
		return l.ControllerManager != "" && l.Scheduler != "", fmt.Sprintf("%+v", l)
	})
	time.Sleep(5 * time.Second)
	cp = getControlPlane(t, ns, "tenant")
	time.Sleep(25 * time.Second)
	if again := getControlPlane(t, ns, "tenant"); again.ResourceVersion != cp.ResourceVersion {
		t.Errorf("a healthy control plane was written: %s", cmpStatus(cp, again))
	}
}

func cmpStatus(a, b *quorumv1alpha1.ControlPlane) string {
	return fmt.Sprintf("resourceVersion %s -> %s, status %+v -> %+v", a.ResourceVersion, b.ResourceVersion, a.Status, b.Status)
}

func managerRestarts(t *testing.T) int32 {
	t.Helper()
	pods, err := kube.CoreV1().Pods("quorum-system").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			n += c.RestartCount
		}
	}
	return n
}

func patchControlPlane(t *testing.T, ns, name string, mutate func(*quorumv1alpha1.ControlPlane)) {
	t.Helper()
	updateRetrying(t, func() *quorumv1alpha1.ControlPlane { return getControlPlane(t, ns, name) }, mutate)
}

func scaleControlPlane(t *testing.T, ns, name string, n int32) {
	t.Helper()
	out, err := exec.Command(local.Kubectl(), "--kubeconfig", local.Kubeconfig(), "-n", ns, "scale", "controlplane", name, fmt.Sprintf("--replicas=%d", n)).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl scale: %v\n%s", err, out)
	}
}

// watchReplicaCounts samples the number of live replica pods until the
// returned function is called, and returns the distinct counts seen.
func watchReplicaCounts(t *testing.T, ns, name string) func() []int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	seen := map[int]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: resources.ControlPlaneSelector(name)})
			if err == nil {
				live := 0
				for _, p := range pods.Items {
					if p.DeletionTimestamp == nil {
						live++
					}
				}
				mu.Lock()
				seen[live] = true
				mu.Unlock()
			}
			time.Sleep(300 * time.Millisecond)
		}
	}()
	return func() []int {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		var out []int
		for c := range seen {
			out = append(out, c)
		}
		return out
	}
}

func replicaNames(cp *quorumv1alpha1.ControlPlane) string {
	var names []string
	for _, r := range cp.Status.ReplicaStatus {
		names = append(names, r.Name+"@"+r.Version)
	}
	return strings.Join(names, ",")
}

// assertSpread checks the replicas are spread over the three zones with a
// skew of at most one.
func assertSpread(t *testing.T, cp *quorumv1alpha1.ControlPlane, n int32) {
	t.Helper()
	zones := map[string]int{"zone-a": 0, "zone-b": 0, "zone-c": 0}
	for _, r := range cp.Status.ReplicaStatus {
		zones[r.Zone]++
	}
	lo, hi := int(n), 0
	for _, c := range zones {
		lo, hi = min(lo, c), max(hi, c)
	}
	if hi-lo > 1 || len(zones) != 3 {
		t.Errorf("replicas not spread over the zones: %v", zones)
	}
}

// assertEncryptedAtRest creates a Secret through the hosted API and reads
// its key straight from etcd: secretbox ciphertext, never the plain value;
// the hosted API still reads it back.
func assertEncryptedAtRest(t *testing.T, kubeconfig, ns, etcdCluster string) {
	t.Helper()
	marker := "plain-text-marker-" + ns
	hostedKubectl(t, kubeconfig, "-n", "default", "create", "secret", "generic", "at-rest", "--from-literal=value="+marker)
	cl := etcdClient(t, ns, etcdCluster)
	defer func() { _ = cl.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Get(ctx, "/registry/secrets/default/at-rest")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("reading the hosted Secret from etcd: %v (%d keys)", err, len(resp.Kvs))
	}
	stored := resp.Kvs[0].Value
	if !bytes.HasPrefix(stored, []byte("k8s:enc:secretbox:v1:")) || bytes.Contains(stored, []byte(marker)) {
		t.Fatalf("the hosted Secret is stored as %.60q, want secretbox ciphertext (k8s:enc:secretbox:v1:...)", stored)
	}
	out := hostedKubectl(t, kubeconfig, "-n", "default", "get", "secret", "at-rest", "-o", "jsonpath={.data.value}")
	if got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out)); err != nil || string(got) != marker {
		t.Fatalf("the encrypted Secret reads back as %q (%v)", got, err)
	}
	t.Logf("a hosted Secret is stored as %s... in etcd and reads back", stored[:len("k8s:enc:secretbox:v1:")])
}

// storedKey is the name of the secretbox key a hosted Secret is stored
// under in etcd.
func storedKey(t *testing.T, ns, etcdCluster, key string) string {
	t.Helper()
	cl := etcdClient(t, ns, etcdCluster)
	defer func() { _ = cl.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("reading %s from etcd: %v", key, err)
	}
	parts := strings.SplitN(string(resp.Kvs[0].Value), ":", 6)
	if len(parts) < 6 || parts[0] != "k8s" || parts[1] != "enc" || parts[2] != "secretbox" {
		t.Fatalf("%s is stored as %.40q, not secretbox ciphertext", key, resp.Kvs[0].Value)
	}
	return parts[4]
}

// rotateEncryptionKey rotates the encryption key with the annotation and
// waits for the rotation to end: the Secret written before it is stored
// under the new key (so it was written again before the old key was
// dropped) and still reads back through the hosted API.
func rotateEncryptionKey(t *testing.T, kubeconfig, ns, name, etcdCluster string) *quorumv1alpha1.ControlPlane {
	t.Helper()
	old := storedKey(t, ns, etcdCluster, "/registry/secrets/default/at-rest")
	start := time.Now()
	patchControlPlane(t, ns, name, func(cp *quorumv1alpha1.ControlPlane) {
		if cp.Annotations == nil {
			cp.Annotations = map[string]string{}
		}
		cp.Annotations["quorum.dev/rotate-encryption-key"] = "e2e"
	})
	eventually(t, "the encryption key rotated", 10*time.Minute, func() (bool, string) {
		sec, err := kube.CoreV1().Secrets(ns).Get(context.Background(), resources.EncryptionSecretName(name), metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		keys, err := resources.ParseEncryptionConfig(sec.Data[resources.EncryptionConfigKey])
		phase := sec.Annotations["quorum.dev/encryption-rotation-phase"]
		done := err == nil && len(keys) == 1 && keys[0].Name != old && phase == "" && sec.Annotations["quorum.dev/encryption-rotation-trigger"] == "e2e"
		return done, fmt.Sprintf("phase %q, %d keys; %s", phase, len(keys), cpSummary(getControlPlane(t, ns, name)))
	})
	cp := waitControlPlane(t, ns, name, 3, getControlPlane(t, ns, name).Spec.Version, 5*time.Minute)
	now := storedKey(t, ns, etcdCluster, "/registry/secrets/default/at-rest")
	if now == old {
		t.Fatalf("the hosted Secret is still stored under the old key %s after the rotation", old)
	}
	out := hostedKubectl(t, kubeconfig, "-n", "default", "get", "secret", "at-rest", "-o", "jsonpath={.data.value}")
	if got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out)); err != nil || !strings.HasPrefix(string(got), "plain-text-marker-") {
		t.Fatalf("after the rotation the Secret reads back as %q (%v)", got, err)
	}
	t.Logf("encryption key rotated %s -> %s in %s; the Secret was rewritten under the new key; %d replicas ready", old, now, time.Since(start).Round(time.Second), cp.Status.ReadyReplicas)
	return cp
}

// assertReservedFlagsRefused tries a flag Quorum owns in each component's
// extraArgs through the real API server: each is refused with a message
// naming it, and nothing is stored.
func assertReservedFlagsRefused(t *testing.T, ns, name string) {
	t.Helper()
	for _, tc := range []struct {
		set  func(*quorumv1alpha1.ControlPlane)
		want string
	}{
		{func(cp *quorumv1alpha1.ControlPlane) {
			cp.Spec.APIServer.ExtraArgs = map[string]string{"etcd-servers": "https://elsewhere:2379"}
		}, "apiServer.extraArgs: --etcd-servers is owned by Quorum"},
		{func(cp *quorumv1alpha1.ControlPlane) {
			cp.Spec.APIServer.ExtraArgs = map[string]string{"authorization-mode": "AlwaysAllow"}
		}, "apiServer.extraArgs: --authorization-mode is owned by Quorum"},
		{func(cp *quorumv1alpha1.ControlPlane) {
			cp.Spec.APIServer.ExtraArgs = map[string]string{"service-account-key-file": "/x"}
		}, "apiServer.extraArgs: --service-account-key-file is owned by Quorum"},
		{func(cp *quorumv1alpha1.ControlPlane) {
			cp.Spec.ControllerManager.ExtraArgs = map[string]string{"leader-elect": "false"}
		}, "controllerManager.extraArgs: --leader-elect is owned by Quorum"},
		{func(cp *quorumv1alpha1.ControlPlane) {
			cp.Spec.Scheduler.ExtraArgs = map[string]string{"profiling": "true"}
		}, "scheduler.extraArgs: --profiling is owned by Quorum"},
	} {
		cp := getControlPlane(t, ns, name)
		tc.set(cp)
		err := crClient(t).Update(context.Background(), cp, client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("updating with a reserved flag: %v, want refused with %q", err, tc.want)
		}
	}
}

// assertCredentials: the admin kubeconfig is cluster-admin through RBAC
// (its group, not system:masters), the break-glass super-admin kubeconfig
// exists, and the operator's own credential reads the leader leases and
// cannot list Secrets.
func assertCredentials(t *testing.T, cp *quorumv1alpha1.ControlPlane) {
	t.Helper()
	ctx := context.Background()
	kubeconfigOf := func(user string) []byte {
		secret, err := kube.CoreV1().Secrets(cp.Namespace).Get(ctx, resources.KubeconfigSecretName(cp.Name, user), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the %s kubeconfig: %v", user, err)
		}
		return secret.Data[resources.KubeconfigKey]
	}
	admin := kubeconfigOf(resources.KubeconfigAdmin)
	cfg, err := clientcmd.Load(admin)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertificate(cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo].ClientCertificateData)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(cert.Subject.Organization, "system:masters") || !slices.Contains(cert.Subject.Organization, resources.AdminGroup) {
		t.Fatalf("the admin kubeconfig's groups are %v, want %s (bound through RBAC), never system:masters", cert.Subject.Organization, resources.AdminGroup)
	}
	adminCS, err := clientsetFrom(cp, admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adminCS.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("the admin cannot list Secrets: %v", err)
	}
	_ = kubeconfigOf(resources.KubeconfigSuperAdmin)
	op, err := clientsetFrom(cp, kubeconfigOf(resources.KubeconfigOperator))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.CoordinationV1().Leases("kube-system").Get(ctx, "kube-controller-manager", metav1.GetOptions{}); err != nil {
		t.Fatalf("the operator's credential cannot read the controller-manager lease: %v", err)
	}
	for _, ns := range []string{"kube-system", "default"} {
		if _, err := op.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("the operator's credential listing Secrets in %s: %v, want Forbidden", ns, err)
		}
	}
	if _, err := op.CoordinationV1().Leases("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("the operator's credential listing every lease: %v, want Forbidden", err)
	}
	t.Logf("admin bound through %s; the operator's credential reads the leases and is refused Secrets", resources.AdminGroup)
}
