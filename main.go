// Command manager runs Quorum's controllers: flags, the controller-runtime
// manager and the wiring of the reconcilers. Nothing else lives here.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/controllers/controlplane"
	"quorum.dev/quorum/controllers/etcdbackup"
	"quorum.dev/quorum/controllers/etcdcluster"
	"quorum.dev/quorum/internal/backupjob"
	"quorum.dev/quorum/internal/reconciler"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(quorumv1alpha1.AddToScheme(scheme))
}

func main() {
	// The same image runs backup pods: `manager backup-job snapshot|fetch`.
	if len(os.Args) > 1 && os.Args[1] == "backup-job" {
		os.Exit(backupjob.Main(os.Args[2:], os.Stdout))
	}
	var (
		metricsAddr    string
		probeAddr      string
		leaderElect    bool
		leaderElectNS  string
		namespacesFlag string
		backupImage    string
		metricsSecure  bool
		metricsCertDir string
		etcdNetPols    bool
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "Address the Prometheus metrics endpoint binds to; 0 turns it off.")
	flag.BoolVar(&metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS, only to clients whose bearer token the API server authenticates (TokenReview) and authorizes for GET /metrics (SubjectAccessReview). false serves plain HTTP to anyone: for a process on a developer's machine only.")
	flag.BoolVar(&etcdNetPols, "etcd-network-policies", false, "Give every EtcdCluster (but stacked ones) a NetworkPolicy: the peer port only from its members, the client port from its namespace and the manager's, the metrics port from anywhere.")
	flag.StringVar(&metricsCertDir, "metrics-cert-dir", "", "Directory holding tls.crt and tls.key for the metrics endpoint, re-read when they change; empty means a self-signed certificate made at start.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", true, "Hold a leader lease so that only one manager acts at a time. Turn off only for a single local process.")
	flag.StringVar(&leaderElectNS, "leader-election-namespace", "", "Namespace of the leader lease; empty means the namespace the manager runs in.")
	flag.StringVar(&namespacesFlag, "namespaces", "", "Comma-separated namespaces to watch; empty means all namespaces.")
	flag.StringVar(&backupImage, "backup-image", "", "Image of backup pods; empty means the manager's own image (read from its pod).")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	cacheOpts := cache.Options{}
	if namespaces := watchedNamespaces(namespacesFlag); len(namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
		log.Info("watching namespaces", "namespaces", namespaces)
	}

	if etcdNetPols && os.Getenv("POD_NAMESPACE") == "" {
		log.Error(nil, "--etcd-network-policies lets the manager's namespace in: set POD_NAMESPACE")
		os.Exit(1)
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme: scheme,
		Cache:  cacheOpts,
		// Secrets are read from the API server, never cached: a cache would
		// hold every Secret of every watched namespace (other tenants'
		// included) in the manager's memory and need list and watch on all.
		// ConfigMaps (audit policies, read once per reconcile of a
		// ControlPlane that names one) likewise.
		Client:                        client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}}}},
		Metrics:                       metricsOptions(metricsAddr, metricsSecure, metricsCertDir),
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "quorum-manager.quorum.dev",
		LeaderElectionNamespace:       leaderElectNS,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		log.Error(err, "unable to create the manager")
		os.Exit(1)
	}

	clientset, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		log.Error(err, "unable to create a clientset")
		os.Exit(1)
	}
	if backupImage == "" {
		if backupImage, err = ownImage(context.Background(), clientset); err != nil {
			log.Error(err, "unable to find the manager's image for backup pods; set --backup-image")
			os.Exit(1)
		}
	}
	// Backup and restore pods report their result on their last log line.
	podLogs := func(ctx context.Context, namespace, pod string) (string, error) {
		tail := int64(20)
		data, err := clientset.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{TailLines: &tail}).DoRaw(ctx)
		return string(data), err
	}
	base := func(name string) reconciler.Base {
		return reconciler.Base{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder(name)}
	}
	if err := (&etcdcluster.Reconciler{
		Base:              base("quorum-etcdcluster"),
		Image:             backupImage,
		PodLogs:           podLogs,
		NetworkPolicies:   etcdNetPols,
		OperatorNamespace: os.Getenv("POD_NAMESPACE"),
		APIReader:         mgr.GetAPIReader(),
	}).SetupWithManager(mgr); err != nil {
		log.Error(err, "unable to set up the EtcdCluster controller")
		os.Exit(1)
	}
	if err := (&controlplane.Reconciler{
		Base: base("quorum-controlplane"),
	}).SetupWithManager(mgr); err != nil {
		log.Error(err, "unable to set up the ControlPlane controller")
		os.Exit(1)
	}
	if err := (&etcdbackup.Reconciler{
		Base:    base("quorum-etcdbackup"),
		Image:   backupImage,
		PodLogs: podLogs,
	}).SetupWithManager(mgr); err != nil {
		log.Error(err, "unable to set up the EtcdBackup controller")
		os.Exit(1)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up the ready check")
		os.Exit(1)
	}

	log.Info("starting the manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "the manager stopped with an error")
		os.Exit(1)
	}
}

// ownImage is the image of the pod the manager runs in (POD_NAME and
// POD_NAMESPACE come from the downward API): backup pods run the same image.
func ownImage(ctx context.Context, cs kubernetes.Interface) (string, error) {
	name, ns := os.Getenv("POD_NAME"), os.Getenv("POD_NAMESPACE")
	if name == "" || ns == "" {
		return "", fmt.Errorf("POD_NAME and POD_NAMESPACE are not set")
	}
	pod, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == "manager" {
			return c.Image, nil
		}
	}
	return "", fmt.Errorf("pod %s/%s has no container named manager", ns, name)
}

// watchedNamespaces parses the --namespaces flag: a comma-separated list,
// blanks and repeats dropped.
func watchedNamespaces(flagValue string) []string {
	var out []string
	seen := map[string]bool{}
	for _, ns := range strings.Split(flagValue, ",") {
		ns = strings.TrimSpace(ns)
		if ns == "" || seen[ns] {
			continue
		}
		seen[ns] = true
		out = append(out, ns)
	}
	return out
}

// metricsOptions serves metrics over HTTPS to authenticated and authorized
// clients only (a ServiceAccount token bound to the quorum-metrics-reader
// ClusterRole), unless secure is false. HTTP/2 is off: its rapid reset and
// stream cancellation attacks (CVE-2023-44487, CVE-2023-39325) need no
// credentials. The RBAC markers it needs are in controllers/doc.go.
func metricsOptions(addr string, secure bool, certDir string) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: addr, SecureServing: secure}
	if secure {
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
		opts.CertDir = certDir
		opts.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	}
	return opts
}
