package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"quorum.dev/quorum/hack/local-cluster/cluster"
)

// TestSmoke proves the local cluster is a real one: pods in every zone,
// traffic across nodes, DNS, volumes that outlive their pods, Quorum
// deployed and leading, and a zone outage that really stops a node.
func TestSmoke(t *testing.T) {
	ns := newNamespace(t, "smoke")
	ctx := context.Background()

	// A web server in every zone, answering with its zone.
	ips := map[string]string{}
	for _, n := range cluster.Nodes {
		name := "web-" + n.Zone
		pod := agentPod(name, n.Zone, "serve", "8080", n.Zone)
		pod.Labels["app"] = "web"
		pod.Spec.Hostname = name
		pod.Spec.Subdomain = "web-headless"
		pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
			PeriodSeconds: 1,
		}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a pod on each zone's node", func(t *testing.T) {
		for _, n := range cluster.Nodes {
			pod := waitPodReady(t, ns, "web-"+n.Zone, 2*time.Minute)
			if pod.Spec.NodeName != n.Name {
				t.Errorf("pod for %s runs on %s, want %s", n.Zone, pod.Spec.NodeName, n.Name)
			}
			ips[n.Zone] = pod.Status.PodIP
		}
	})

	t.Run("pod-to-pod traffic across nodes", func(t *testing.T) {
		out := runPod(t, ns, agentPod("client-a", "zone-a", "get",
			fmt.Sprintf("http://%s:8080/", ips["zone-b"]), fmt.Sprintf("http://%s:8080/", ips["zone-c"])))
		if out != "zone-b\nzone-c" {
			t.Fatalf("from zone-a, the pods of zone-b and zone-c answered %q", out)
		}
	})

	t.Run("DNS for a Service and for a headless-Service pod", func(t *testing.T) {
		for _, svc := range []*corev1.Service{
			{
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
					Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
			},
			{
				ObjectMeta: metav1.ObjectMeta{Name: "web-headless"},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, ClusterIP: corev1.ClusterIPNone,
					Ports: []corev1.ServicePort{{Port: 8080}}},
			},
		} {
			if _, err := kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		svc, err := kube.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		serviceName := fmt.Sprintf("web.%s.svc.cluster.local", ns)
		podName := fmt.Sprintf("web-zone-c.web-headless.%s.svc.cluster.local", ns)
		// Resolve both names through CoreDNS, then fetch through the Service
		// (kube-proxy) and from the headless pod name.
		out := runPod(t, ns, agentPod("client-dns-lookup", "zone-b", "lookup", serviceName, podName))
		want := fmt.Sprintf("%s\n%s", svc.Spec.ClusterIP, ips["zone-c"])
		if out != want {
			t.Fatalf("DNS answers:\n got: %q\nwant: %q", out, want)
		}
		out = runPod(t, ns, agentPod("client-dns-get", "zone-b", "get", "http://"+serviceName+"/", "http://"+podName+":8080/"))
		if !strings.HasPrefix(out, "zone-") || !strings.HasSuffix(out, "\nzone-c") {
			t.Fatalf("through the Service and the headless pod name, got %q; want a zone, then zone-c", out)
		}
	})

	t.Run("a PVC bound, written, and its data kept across pods", func(t *testing.T) {
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("64Mi")}},
			},
		}
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		volume := corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}
		token := fmt.Sprintf("written-%d", time.Now().UnixNano())
		runPod(t, ns, busyboxPod("writer", "zone-c", "echo "+token+" > /data/token && sync"), volume)
		eventually(t, "the PVC bound", time.Minute, func() (bool, string) {
			p, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return p.Status.Phase == corev1.ClaimBound, string(p.Status.Phase)
		})
		if err := kube.CoreV1().Pods(ns).Delete(ctx, "writer", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the writer pod gone", time.Minute, func() (bool, string) {
			_, err := kube.CoreV1().Pods(ns).Get(ctx, "writer", metav1.GetOptions{})
			return ignoreNotFound(err) == nil && err != nil, "still there"
		})
		if out := runPod(t, ns, busyboxPod("reader", "zone-c", "cat /data/token"), volume); out != token {
			t.Fatalf("the new pod read %q from the volume, want %q", out, token)
		}
	})

	t.Run("Quorum's Deployment Ready with its leader lease held", func(t *testing.T) {
		if err := cluster.WaitDeploymentReady(ctx, kube, cluster.QuorumNamespace, "quorum-manager", time.Minute); err != nil {
			t.Fatal(err)
		}
		lease, err := kube.CoordinationV1().Leases(cluster.QuorumNamespace).Get(ctx, cluster.QuorumLease, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !cluster.LeaseHeld(lease) {
			t.Fatalf("the lease %s is not held: %+v", cluster.QuorumLease, lease.Spec)
		}
		holder := *lease.Spec.HolderIdentity
		pods, err := kube.CoreV1().Pods(cluster.QuorumNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=manager"})
		if err != nil {
			t.Fatal(err)
		}
		held := false
		for _, p := range pods.Items {
			if strings.HasPrefix(holder, p.Name+"_") {
				held = true
			}
		}
		if !held {
			t.Fatalf("the lease is held by %q, which is none of the manager pods", holder)
		}
	})

	t.Run("stopping zone-b's node: NotReady, containers gone, then back Ready", func(t *testing.T) {
		if err := local.StopNode("node-b"); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		t.Cleanup(func() {
			if _, err := local.NodeContainers("node-b"); err == nil {
				return
			}
			_ = local.StartNode("node-b")
		})
		if n, err := local.NodeContainers("node-b"); err == nil {
			t.Fatalf("node-b's containerd still answers with %d containers after the stop", n)
		}
		if pids := local.NodeProcesses("node-b"); len(pids) != 0 {
			t.Fatalf("node-b still runs container processes %v after the stop", pids)
		}
		eventually(t, "node-b NotReady", 90*time.Second, func() (bool, string) {
			ready, err := cluster.NodeReady(ctx, kube, "node-b")
			if err != nil {
				return false, err.Error()
			}
			return !ready, "still Ready"
		})
		t.Logf("node-b NotReady %s after the stop", time.Since(stopped).Round(100*time.Millisecond))

		if err := local.StartNode("node-b"); err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		waitNodeReady(t, "node-b", 90*time.Second)
		t.Logf("node-b Ready %s after the start", time.Since(started).Round(100*time.Millisecond))
		// Its pod comes back too: the kubelet restarts what it was running.
		waitPodReady(t, ns, "web-zone-b", 2*time.Minute)
	})
}
