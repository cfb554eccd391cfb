package v1alpha1_test

// These tests prove the API against a real kube-apiserver and etcd (envtest
// with the binaries hack/build-binaries.sh builds): every rule a user can
// break is refused by the API server itself, with the message the user reads,
// and the samples are accepted with their defaults filled in.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

var (
	k8s     client.Client
	restCfg *rest.Config
	scheme  = runtime.NewScheme()
)

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver and etcd and points envtest at them")
		os.Exit(1)
	}
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := quorumv1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		// Start may fail after the API server is up (installing CRDs): stop
		// what it started.
		_ = env.Stop()
		os.Exit(1)
	}
	restCfg = cfg
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// sample reads a file of config/samples as an unstructured object, so a test
// can break it the way a user's YAML would be broken.
func sample(t *testing.T, file string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &obj.Object); err != nil {
		t.Fatal(err)
	}
	return obj
}

const (
	etcdClusterSample  = "quorum_v1alpha1_etcdcluster.yaml"
	controlPlaneSample = "quorum_v1alpha1_controlplane.yaml"
	etcdBackupSample   = "quorum_v1alpha1_etcdbackup.yaml"
)

func set(value any, path ...string) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		if err := unstructured.SetNestedField(u.Object, value, path...); err != nil {
			panic(err)
		}
	}
}

func unset(path ...string) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) { unstructured.RemoveNestedField(u.Object, path...) }
}

func all(fs ...func(*unstructured.Unstructured)) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		for _, f := range fs {
			f(u)
		}
	}
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetGenerateName("api-")
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.GetName()
}

const oddMessage = "replicas must be odd (1, 3, 5, 7 or 9): an even count adds no failure tolerance"

// TestInvalidObjectsAreRejected applies broken objects and asserts the API
// server refuses each with the field and the message a user reads.
func TestInvalidObjectsAreRejected(t *testing.T) {
	ns := namespace(t)
	cases := []struct {
		name   string
		sample string
		mutate func(*unstructured.Unstructured)
		field  string
		msg    string
	}{
		// EtcdCluster
		{"etcd even replicas", etcdClusterSample, set(int64(4), "spec", "replicas"), "spec.replicas", oddMessage},
		{"etcd two replicas", etcdClusterSample, set(int64(2), "spec", "replicas"), "spec.replicas", oddMessage},
		{"etcd zero replicas", etcdClusterSample, set(int64(0), "spec", "replicas"), "spec.replicas", "replicas must be between 1 and 9"},
		{"etcd negative replicas", etcdClusterSample, set(int64(-3), "spec", "replicas"), "spec.replicas", "replicas must be between 1 and 9"},
		{"etcd too many replicas", etcdClusterSample, set(int64(11), "spec", "replicas"), "spec.replicas", "replicas must be between 1 and 9"},
		{"etcd bad version", etcdClusterSample, set("v3.6", "spec", "version"), "spec.version", "version must be an etcd release of the form major.minor.patch, such as 3.6.16"},
		{"etcd version with words", etcdClusterSample, set("latest", "spec", "version"), "spec.version", "version must be an etcd release of the form major.minor.patch, such as 3.6.16"},
		{"etcd duplicate zones", etcdClusterSample, set([]any{"zone-a", "zone-b", "zone-a"}, "spec", "zones"), "spec.zones", "zones must be unique: a zone listed twice would get twice the members"},
		{"etcd empty zone", etcdClusterSample, set([]any{"zone-a", ""}, "spec", "zones"), "spec.zones", "zones must not contain an empty name"},
		{"etcd zone not a label value", etcdClusterSample, set([]any{"zone a"}, "spec", "zones"), "spec.zones", "zones must be label values, such as zone-a or eu-west-1a"},
		{"etcd negative unhealthyAfter", etcdClusterSample, set("-5s", "spec", "failurePolicy", "unhealthyAfter"), "spec.failurePolicy.unhealthyAfter", "unhealthyAfter must be a duration of at least 10s"},
		{"etcd zero unhealthyAfter", etcdClusterSample, set("0s", "spec", "failurePolicy", "unhealthyAfter"), "spec.failurePolicy.unhealthyAfter", "unhealthyAfter must be a duration of at least 10s"},
		{"etcd 1ns unhealthyAfter", etcdClusterSample, set("1ns", "spec", "failurePolicy", "unhealthyAfter"), "spec.failurePolicy.unhealthyAfter", "unhealthyAfter must be a duration of at least 10s"},
		{"etcd 9s unhealthyAfter", etcdClusterSample, set("9s", "spec", "failurePolicy", "unhealthyAfter"), "spec.failurePolicy.unhealthyAfter", "unhealthyAfter must be a duration of at least 10s"},
		{"etcd 10s startTimeout", etcdClusterSample, set("10s", "spec", "failurePolicy", "startTimeout"), "spec.failurePolicy.startTimeout", "startTimeout must be a duration of at least 30s"},
		{"cp maxRetries over 100", controlPlaneSample, set(int64(101), "spec", "failurePolicy", "maxRetries"), "spec.failurePolicy.maxRetries", "maxRetries must be between 0 and 100"},
		{"cp negative retryPeriod", controlPlaneSample, set("-1s", "spec", "failurePolicy", "retryPeriod"), "spec.failurePolicy.retryPeriod", "retryPeriod must be a duration such as 30s"},
		{"cp zero minHealthyPeriod", controlPlaneSample, set("0s", "spec", "failurePolicy", "minHealthyPeriod"), "spec.failurePolicy.minHealthyPeriod", "minHealthyPeriod must be a positive duration such as 1h"},
		{"etcd certificateValidity under 10m", etcdClusterSample, set("5m", "spec", "tls", "certificateValidity"), "spec.tls.certificateValidity", "certificateValidity must be a duration of at least 10m"},
		{"etcd certificateRenewBefore under 1m", etcdClusterSample, set("30s", "spec", "tls", "certificateRenewBefore"), "spec.tls.certificateRenewBefore", "certificateRenewBefore must be a duration of at least 1m"},
		{"etcd certificateRenewBefore not shorter than certificateValidity", etcdClusterSample, func(u *unstructured.Unstructured) {
			set("10m", "spec", "tls", "certificateValidity")(u)
			set("10m", "spec", "tls", "certificateRenewBefore")(u)
		}, "spec.tls", "certificateRenewBefore must be shorter than certificateValidity"},
		{"etcd quota under 16Mi", etcdClusterSample, set("1Mi", "spec", "maintenance", "quotaBackendBytes"), "spec.maintenance.quotaBackendBytes", "maintenance.quotaBackendBytes must be at least 16Mi"},
		{"etcd quota over half the volume", etcdClusterSample, func(u *unstructured.Unstructured) {
			set("8Gi", "spec", "storage", "size")(u)
			set("5Gi", "spec", "maintenance", "quotaBackendBytes")(u)
		}, "spec", "maintenance.quotaBackendBytes must be at most half of storage.size"},
		{"etcd periodic compaction with a count", etcdClusterSample, set(map[string]any{"mode": "periodic", "retention": "1000"}, "spec", "maintenance", "autoCompaction"),
			"spec.maintenance.autoCompaction", "autoCompaction.retention must be a duration such as 5m (periodic) or a number of revisions"},
		{"etcd malformed unhealthyAfter", etcdClusterSample, set("one minute", "spec", "failurePolicy", "unhealthyAfter"), "spec.failurePolicy.unhealthyAfter", "unhealthyAfter must be a duration of at least 10s"},
		{"etcd unknown quorumLossPolicy", etcdClusterSample, set("Pray", "spec", "quorumLossPolicy"), "spec.quorumLossPolicy", `supported values: "Wait", "RestoreFromBackup", "ForceNewCluster"`},
		{"etcd bootstrap without a backup", etcdClusterSample, set(map[string]any{"restore": map[string]any{}}, "spec", "bootstrap"), "spec.bootstrap.restore.backupRef", "Required value"},
		{"etcd zero storage size", etcdClusterSample, set("0", "spec", "storage", "size"), "spec.storage.size", "storage.size must be a positive quantity such as 8Gi"},
		{"etcd emptyDir with a storage class", etcdClusterSample, all(set(map[string]any{}, "spec", "storage", "emptyDir"), set("fast", "spec", "storage", "storageClassName")), "spec.storage", "storage: emptyDir and storageClassName are mutually exclusive"},
		{"etcd own TLS without secrets", etcdClusterSample, set(false, "spec", "tls", "auto"), "spec.tls", "tls: with auto false, peerSecretRef, serverSecretRef and clientSecretRef are all required"},
		{"etcd auto TLS with secrets", etcdClusterSample, set(map[string]any{"name": "mine"}, "spec", "tls", "peerSecretRef"), "spec.tls", "tls: secret references are only read when auto is false"},

		// ControlPlane
		{"cp even replicas", controlPlaneSample, set(int64(2), "spec", "replicas"), "spec.replicas", oddMessage},
		{"cp zero replicas", controlPlaneSample, set(int64(0), "spec", "replicas"), "spec.replicas", "replicas must be between 1 and 9"},
		{"cp bad version", controlPlaneSample, set("1.36.3", "spec", "version"), "spec.version", "version must be a Kubernetes release of the form vMAJOR.MINOR.PATCH, such as v1.36.3"},
		{"cp no version", controlPlaneSample, unset("spec", "version"), "spec.version", "Required value"},
		{"cp two etcd sources", controlPlaneSample, set(map[string]any{}, "spec", "etcd", "stacked"), "spec.etcd", "etcd: exactly one of stacked, clusterRef or external must be set"},
		{"cp no etcd source", controlPlaneSample, set(map[string]any{}, "spec", "etcd"), "spec.etcd", "etcd: exactly one of stacked, clusterRef or external must be set"},
		{"cp external etcd endpoint not a URL", controlPlaneSample, all(unset("spec", "etcd", "clusterRef"), set(map[string]any{"endpoints": []any{"etcd-0:2379"}, "secretRef": map[string]any{"name": "etcd-client"}}, "spec", "etcd", "external")), "spec.etcd.external.endpoints", "etcd.external.endpoints must be URLs such as https://etcd-0.example:2379"},
		{"cp unknown service type", controlPlaneSample, set("Ingress", "spec", "endpoint", "serviceType"), "spec.endpoint.serviceType", `supported values: "LoadBalancer", "NodePort", "ClusterIP"`},
		{"cp port out of range", controlPlaneSample, set(int64(70000), "spec", "endpoint", "port"), "spec.endpoint.port", "endpoint.port must be between 1 and 65535"},
		{"cp host not a DNS name", controlPlaneSample, set("https://api.example.com", "spec", "endpoint", "host"), "spec.endpoint.host", "endpoint.host must be a lowercase DNS name such as api.tenant-a.example.com"},
		{"cp negative dnsTTL", controlPlaneSample, set("-30s", "spec", "endpoint", "dnsTTL"), "spec.endpoint.dnsTTL", "endpoint.dnsTTL must be a duration of at least 1s, such as 30s"},
		{"cp extraArgs with dashes", controlPlaneSample, set(map[string]any{"--v": "4"}, "spec", "apiServer", "extraArgs"), "spec.apiServer.extraArgs", "extraArgs keys are flag names without leading dashes, such as event-ttl"},
		{"cp audit rotation with Stdout", controlPlaneSample, set(map[string]any{"policyConfigMapRef": map[string]any{"name": "audit"}, "maxAge": int64(7)}, "spec", "apiServer", "audit"),
			"spec.apiServer.audit", "audit: maxAge, maxSize and maxBackups rotate the Volume output only"},
		{"cp audit maxAge zero", controlPlaneSample, set(map[string]any{"policyConfigMapRef": map[string]any{"name": "audit"}, "output": "Volume", "maxAge": int64(0)}, "spec", "apiServer", "audit"),
			"spec.apiServer.audit.maxAge", "audit.maxAge must be between 1 and 366 days"},
		{"cp audit unknown output", controlPlaneSample, set(map[string]any{"policyConfigMapRef": map[string]any{"name": "audit"}, "output": "Syslog"}, "spec", "apiServer", "audit"),
			"spec.apiServer.audit.output", `supported values: "Stdout", "Volume"`},
		{"cp audit without a policy", controlPlaneSample, set(map[string]any{"output": "Stdout"}, "spec", "apiServer", "audit"),
			"spec.apiServer.audit.policyConfigMapRef", "Required value"},
		{"cp duplicate zones", controlPlaneSample, set([]any{"zone-a", "zone-a", "zone-b"}, "spec", "zones"), "spec.zones", "zones must be unique: a zone listed twice would get twice the members"},
		{"cp negative unhealthyAfter", controlPlaneSample, set("-1m", "spec", "failurePolicy", "unhealthyAfter"), "spec.failurePolicy.unhealthyAfter", "unhealthyAfter must be a duration of at least 10s"},

		// EtcdBackup
		{"backup no destination", etcdBackupSample, set(map[string]any{}, "spec", "destination"), "spec.destination", "destination: exactly one of volume or s3 must be set"},
		{"backup two destinations", etcdBackupSample, set(map[string]any{"claimName": "backups"}, "spec", "destination", "volume"), "spec.destination", "destination: exactly one of volume or s3 must be set"},
		{"backup no cluster", etcdBackupSample, unset("spec", "etcdClusterRef"), "spec", "exactly one of etcdClusterRef or controlPlaneRef must be set"},
		{"backup two clusters", etcdBackupSample, set(map[string]any{"name": "tenant-a"}, "spec", "controlPlaneRef"), "spec", "exactly one of etcdClusterRef or controlPlaneRef must be set"},
		{"backup cron with four fields", etcdBackupSample, set("0 */6 * *", "spec", "schedule"), "spec.schedule", `schedule must be a cron expression of five fields (minute hour day-of-month month day-of-week) such as "0 */6 * * *", or @hourly, @daily, @weekly, @monthly, @yearly or @every <duration>`},
		{"backup cron minute 61", etcdBackupSample, set("61 * * * *", "spec", "schedule"), "spec.schedule", "schedule must be a cron expression of five fields"},
		{"backup cron words", etcdBackupSample, set("every night", "spec", "schedule"), "spec.schedule", "schedule must be a cron expression of five fields"},
		{"backup keepLast zero", etcdBackupSample, set(int64(0), "spec", "retention", "keepLast"), "spec.retention.keepLast", "retention.keepLast must be at least 1: the last good snapshot is always kept"},
		{"backup keepLast negative", etcdBackupSample, set(int64(-2), "spec", "retention", "keepLast"), "spec.retention.keepLast", "retention.keepLast must be at least 1: the last good snapshot is always kept"},
		{"backup negative startingDeadline", etcdBackupSample, set("-5m", "spec", "startingDeadline"), "spec.startingDeadline", "startingDeadline must be a positive duration such as 5m"},
		{"backup bad time zone", etcdBackupSample, set("Paris, France", "spec", "timeZone"), "spec.timeZone", "timeZone must be an IANA time zone name such as UTC or Europe/Paris"},
		{"backup time zone without a schedule", etcdBackupSample, unset("spec", "schedule"), "spec", "timeZone is only used with a schedule"},
		{"backup bucket with capitals", etcdBackupSample, set("Etcd_Backups", "spec", "destination", "s3", "bucket"), "spec.destination.s3.bucket", "s3.bucket must be an S3 bucket name: 3 to 63 lowercase letters, digits, dots and dashes"},
		{"backup endpoint with a scheme", etcdBackupSample, set("http://s3.example.com", "spec", "destination", "s3", "endpoint"), "spec.destination.s3.endpoint", "s3.endpoint must be host or host:port, without a scheme (set insecure for plain HTTP)"},
		{"backup no credentials", etcdBackupSample, unset("spec", "destination", "s3", "credentialsSecretRef"), "spec.destination.s3.credentialsSecretRef", "Required value"},
		{"backup volume path escaping", etcdBackupSample, all(unset("spec", "destination", "s3"), set(map[string]any{"claimName": "backups", "path": "../other"}, "spec", "destination", "volume")), "spec.destination.volume.path", "volume.path must be relative and stay inside the volume (no leading / and no ..)"},
	}
	if len(cases) < 25 {
		t.Fatalf("the table must hold at least 25 invalid objects, has %d", len(cases))
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := sample(t, tc.sample)
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("invalid-%d", i))
			tc.mutate(obj)
			err := k8s.Create(context.Background(), obj)
			if err == nil {
				t.Fatalf("the API server accepted %s; want it refused with %q", tc.name, tc.msg)
			}
			assertRefused(t, err, tc.field, tc.msg)
		})
	}
}

// TestReservedFlagsAreRefused: every flag Quorum owns, in each
// component's extraArgs, is refused with a message naming it; flags Quorum
// does not own are accepted.
func TestReservedFlagsAreRefused(t *testing.T) {
	ns := namespace(t)
	components := []struct {
		field           string
		flags, prefixes []string
		examples        []string
	}{
		{"apiServer", quorumv1alpha1.ReservedAPIServerFlags, quorumv1alpha1.ReservedAPIServerPrefixes,
			[]string{"etcd-servers", "etcd-prefix", "audit-log-path", "audit-policy-file", "requestheader-allowed-names", "service-account-issuer",
				"oidc-issuer-url", "authentication-config", "authorization-mode", "authorization-webhook-config-file", "encryption-provider-config",
				"tls-min-version", "tls-cert-file", "kubelet-client-certificate", "proxy-client-key-file"}},
		{"controllerManager", quorumv1alpha1.ReservedControllerManagerFlags, quorumv1alpha1.ReservedControllerManagerPrefixes,
			[]string{"cluster-signing-cert-file", "cluster-signing-duration", "requestheader-client-ca-file", "tls-cipher-suites"}},
		{"scheduler", quorumv1alpha1.ReservedSchedulerFlags, quorumv1alpha1.ReservedSchedulerPrefixes,
			[]string{"requestheader-client-ca-file", "tls-private-key-file"}},
	}
	i := 0
	for _, c := range components {
		flags := append(append([]string{}, c.flags...), c.examples...)
		for _, p := range c.prefixes {
			flags = append(flags, p+"anything")
		}
		for _, flag := range flags {
			t.Run(c.field+"/"+flag, func(t *testing.T) {
				obj := sample(t, controlPlaneSample)
				obj.SetNamespace(ns)
				i++
				obj.SetName(fmt.Sprintf("reserved-%d", i))
				set(map[string]any{flag: "x"}, "spec", c.field, "extraArgs")(obj)
				err := k8s.Create(context.Background(), obj)
				if err == nil {
					t.Fatalf("the API server accepted %s.extraArgs.%s", c.field, flag)
				}
				want := c.field + ".extraArgs: --" + flag + " is owned by Quorum"
				if !slices.Contains(c.flags, flag) {
					i := slices.IndexFunc(c.prefixes, func(p string) bool { return strings.HasPrefix(flag, p) })
					if i < 0 {
						t.Fatalf("%s is in no reserved list", flag)
					}
					want = c.field + ".extraArgs: --" + c.prefixes[i] + "* flags are owned by Quorum"
				}
				assertRefused(t, err, "spec."+c.field, want)
			})
		}
	}
	t.Run("disabling NodeRestriction", func(t *testing.T) {
		obj := sample(t, controlPlaneSample)
		obj.SetNamespace(ns)
		obj.SetName("reserved-node-restriction")
		set(map[string]any{"disable-admission-plugins": "DefaultStorageClass, NodeRestriction"}, "spec", "apiServer", "extraArgs")(obj)
		assertRefused(t, k8s.Create(context.Background(), obj), "spec.apiServer", "--disable-admission-plugins cannot disable NodeRestriction")
	})
	t.Run("flags Quorum does not own", func(t *testing.T) {
		obj := sample(t, controlPlaneSample)
		obj.SetNamespace(ns)
		obj.SetName("unreserved")
		set(map[string]any{"event-ttl": "2h", "max-requests-inflight": "800", "service-cluster-ip-range": "10.100.0.0/16",
			"enable-admission-plugins": "AlwaysPullImages", "disable-admission-plugins": "DefaultStorageClass"}, "spec", "apiServer", "extraArgs")(obj)
		set(map[string]any{"node-monitor-grace-period": "50s", "leader-elect-lease-duration": "20s"}, "spec", "controllerManager", "extraArgs")(obj)
		set(map[string]any{"v": "2"}, "spec", "scheduler", "extraArgs")(obj)
		if err := k8s.Create(context.Background(), obj); err != nil {
			t.Fatalf("flags Quorum does not own were refused: %v", err)
		}
	})
}

// assertRefused checks that err is the API server's validation error and
// names the field and the message.
func assertRefused(t *testing.T, err error, field, msg string) {
	t.Helper()
	text := err.Error()
	if !strings.Contains(text, "is invalid") {
		t.Fatalf("want a validation error, got: %v", err)
	}
	if !strings.Contains(text, field+":") {
		t.Errorf("the error does not name the field %s:\n%s", field, text)
	}
	if !strings.Contains(text, msg) {
		t.Errorf("the error does not say %q:\n%s", msg, text)
	}
}

// TestImmutableFields creates valid objects and changes what may not change.
func TestImmutableFields(t *testing.T) {
	ns := namespace(t)
	cases := []struct {
		name   string
		sample string
		before func(*unstructured.Unstructured)
		change func(*unstructured.Unstructured)
		field  string
		msg    string
	}{
		{"etcd storage class", etcdClusterSample, set("standard", "spec", "storage", "storageClassName"), set("fast", "spec", "storage", "storageClassName"),
			"spec.storage", "storage.storageClassName is immutable: existing volumes cannot change class"},
		{"etcd storage class added", etcdClusterSample, nil, set("fast", "spec", "storage", "storageClassName"),
			"spec.storage", "storage.storageClassName is immutable: existing volumes cannot change class"},
		{"etcd volume to emptyDir", etcdClusterSample, nil, set(map[string]any{}, "spec", "storage", "emptyDir"),
			"spec.storage", "storage.emptyDir is immutable: members cannot move between a volume and an emptyDir"},
		{"etcd storage shrinks", etcdClusterSample, nil, set("1Gi", "spec", "storage", "size"),
			"spec.storage", "storage.size may not shrink: a volume cannot be made smaller than its data"},
		{"etcd TLS mode", etcdClusterSample, nil, all(set(false, "spec", "tls", "auto"), set(map[string]any{"name": "p"}, "spec", "tls", "peerSecretRef"), set(map[string]any{"name": "s"}, "spec", "tls", "serverSecretRef"), set(map[string]any{"name": "c"}, "spec", "tls", "clientSecretRef")),
			"spec.tls", "tls.auto is immutable: switching certificate source would cut members off from each other"},
		{"etcd bootstrap", etcdClusterSample, set(map[string]any{"restore": map[string]any{"backupRef": map[string]any{"name": "nightly"}}}, "spec", "bootstrap"), set("other", "spec", "bootstrap", "restore", "backupRef", "name"),
			"spec.bootstrap", "bootstrap is immutable: a cluster is bootstrapped once, at creation"},
		{"cp etcd source", controlPlaneSample, nil, all(unset("spec", "etcd", "clusterRef"), set(map[string]any{}, "spec", "etcd", "stacked")),
			"spec.etcd", "etcd source is immutable: a control plane cannot move its state to another etcd"},
		{"cp etcd cluster", controlPlaneSample, nil, set("other", "spec", "etcd", "clusterRef", "name"),
			"spec.etcd", "etcd.clusterRef is immutable: a control plane cannot move its state to another etcd"},
		{"backup cluster", etcdBackupSample, nil, set("other", "spec", "etcdClusterRef", "name"),
			"spec", "the backed-up cluster is immutable: create another EtcdBackup for another cluster"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			obj := sample(t, tc.sample)
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("immutable-%d", i))
			if tc.before != nil {
				tc.before(obj)
			}
			if err := k8s.Create(ctx, obj); err != nil {
				t.Fatalf("creating the valid object: %v", err)
			}
			tc.change(obj)
			err := k8s.Update(ctx, obj)
			if err == nil {
				t.Fatalf("the API server accepted the change; want %q", tc.msg)
			}
			assertRefused(t, err, tc.field, tc.msg)
		})
	}
}

// TestMutableFieldsStayMutable guards against immutability rules that are
// too broad: scaling, upgrading, growing storage and moving zones are normal.
func TestMutableFieldsStayMutable(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	obj := sample(t, etcdClusterSample)
	obj.SetNamespace(ns)
	if err := k8s.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	all(set(int64(5), "spec", "replicas"), set("3.6.17", "spec", "version"), set("4Gi", "spec", "storage", "size"),
		set([]any{"zone-a", "zone-b"}, "spec", "zones"), set("90s", "spec", "failurePolicy", "unhealthyAfter"))(obj)
	if err := k8s.Update(ctx, obj); err != nil {
		t.Fatalf("a normal change was refused: %v", err)
	}
}

// TestSamplesAcceptedWithDefaults applies every sample and reads back the
// defaults the API server filled in.
func TestSamplesAcceptedWithDefaults(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	for _, file := range []string{etcdClusterSample, controlPlaneSample, etcdBackupSample} {
		obj := sample(t, file)
		obj.SetNamespace(ns)
		if err := k8s.Create(ctx, obj); err != nil {
			t.Fatalf("sample %s refused: %v", file, err)
		}
	}

	ec := &quorumv1alpha1.EtcdCluster{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "main"}, ec); err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "etcd replicas", deref(ec.Spec.Replicas), int32(3))
	assertEqual(t, "etcd zones", strings.Join(ec.Spec.Zones, ","), "zone-a,zone-b,zone-c")
	assertEqual(t, "etcd tls.auto", deref(ec.Spec.TLS.Auto), true)
	assertEqual(t, "etcd failurePolicy.autoReplace", deref(ec.Spec.FailurePolicy.AutoReplace), true)
	assertEqual(t, "etcd failurePolicy.unhealthyAfter", ec.Spec.FailurePolicy.UnhealthyAfter.Duration.String(), "1m0s")
	assertEqual(t, "etcd quorumLossPolicy", ec.Spec.QuorumLossPolicy, quorumv1alpha1.QuorumLossWait)
	assertEqual(t, "etcd storage.size", ec.Spec.Storage.Size.String(), "2Gi")

	cp := &quorumv1alpha1.ControlPlane{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tenant-a"}, cp); err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "cp replicas", deref(cp.Spec.Replicas), int32(3))
	assertEqual(t, "cp endpoint.port", cp.Spec.Endpoint.Port, int32(6443))
	assertEqual(t, "cp endpoint.dnsTTL", cp.Spec.Endpoint.DNSTTL.Duration.String(), "30s")
	assertEqual(t, "cp endpoint.serviceType", cp.Spec.Endpoint.ServiceType, quorumv1alpha1.ServiceType("ClusterIP"))
	assertEqual(t, "cp failurePolicy.unhealthyAfter", cp.Spec.FailurePolicy.UnhealthyAfter.Duration.String(), "1m0s")
	assertEqual(t, "cp failurePolicy.autoReplace", deref(cp.Spec.FailurePolicy.AutoReplace), true)
	assertEqual(t, "cp etcd.clusterRef", cp.Spec.Etcd.ClusterRef.Name, "main")

	eb := &quorumv1alpha1.EtcdBackup{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "main-every-6h"}, eb); err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "backup schedule", eb.Spec.Schedule, "0 */6 * * *")
	assertEqual(t, "backup keepLast", eb.Spec.Retention.KeepLast, int32(10))
	assertEqual(t, "backup s3.region", eb.Spec.Destination.S3.Region, "us-east-1")
	assertEqual(t, "backup suspend", eb.Spec.Suspend, false)
}

// TestMinimalObjectsGetDefaults creates the smallest objects a user may
// write and asserts every default.
func TestMinimalObjectsGetDefaults(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()

	ec := &quorumv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minimal"}}
	if err := k8s.Create(ctx, ec); err != nil {
		t.Fatalf("a minimal EtcdCluster was refused: %v", err)
	}
	assertEqual(t, "replicas", deref(ec.Spec.Replicas), int32(3))
	assertEqual(t, "version", ec.Spec.Version, "3.6.16")
	assertEqual(t, "storage.size", ec.Spec.Storage.Size.String(), "8Gi")
	assertEqual(t, "tls.auto", deref(ec.Spec.TLS.Auto), true)
	assertEqual(t, "unhealthyAfter", ec.Spec.FailurePolicy.UnhealthyAfter.Duration.String(), "1m0s")
	assertEqual(t, "autoReplace", deref(ec.Spec.FailurePolicy.AutoReplace), true)
	assertEqual(t, "quorumLossPolicy", ec.Spec.QuorumLossPolicy, quorumv1alpha1.QuorumLossWait)

	cp := &quorumv1alpha1.ControlPlane{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minimal"},
		Spec: quorumv1alpha1.ControlPlaneSpec{
			Version: "v1.36.3",
			Etcd:    quorumv1alpha1.ControlPlaneEtcd{Stacked: &quorumv1alpha1.StackedEtcd{}},
		},
	}
	if err := k8s.Create(ctx, cp); err != nil {
		t.Fatalf("a minimal ControlPlane was refused: %v", err)
	}
	assertEqual(t, "cp replicas", deref(cp.Spec.Replicas), int32(3))
	assertEqual(t, "cp serviceType", cp.Spec.Endpoint.ServiceType, quorumv1alpha1.ServiceType("LoadBalancer"))
	assertEqual(t, "cp port", cp.Spec.Endpoint.Port, int32(6443))
	assertEqual(t, "cp dnsTTL", cp.Spec.Endpoint.DNSTTL.Duration.String(), "30s")
	assertEqual(t, "cp stacked etcd version", cp.Spec.Etcd.Stacked.Version, "3.6.16")
	assertEqual(t, "cp stacked etcd storage", cp.Spec.Etcd.Stacked.Storage.Size.String(), "8Gi")
	assertEqual(t, "cp encryption at rest", cp.Spec.APIServer.EncryptionAtRest.Provider, "secretbox")

	eb := &quorumv1alpha1.EtcdBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minimal"},
		Spec: quorumv1alpha1.EtcdBackupSpec{
			EtcdClusterRef: &quorumv1alpha1.LocalObjectReference{Name: "minimal"},
			Destination: quorumv1alpha1.BackupDestination{
				Volume: &quorumv1alpha1.VolumeDestination{ClaimName: "backups"},
			},
		},
	}
	if err := k8s.Create(ctx, eb); err != nil {
		t.Fatalf("a minimal EtcdBackup was refused: %v", err)
	}
	assertEqual(t, "backup keepLast", eb.Spec.Retention.KeepLast, int32(10))
}

// TestScaleSubresource drives /scale the way `kubectl scale` does: odd
// counts pass, an even count is refused with the same message as the spec.
func TestScaleSubresource(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	for _, tc := range []struct {
		file string
		obj  client.Object
	}{
		{etcdClusterSample, &quorumv1alpha1.EtcdCluster{}},
		{controlPlaneSample, &quorumv1alpha1.ControlPlane{}},
	} {
		t.Run(tc.obj.GetObjectKind().GroupVersionKind().Kind+tc.file, func(t *testing.T) {
			u := sample(t, tc.file)
			u.SetNamespace(ns)
			if err := k8s.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(u), tc.obj); err != nil {
				t.Fatal(err)
			}
			scale := &autoscalingv1.Scale{}
			if err := k8s.SubResource("scale").Get(ctx, tc.obj, scale); err != nil {
				t.Fatalf("reading /scale: %v", err)
			}
			assertEqual(t, "scale replicas", scale.Spec.Replicas, int32(3))

			scale.Spec.Replicas = 5
			if err := k8s.SubResource("scale").Update(ctx, tc.obj, client.WithSubResourceBody(scale)); err != nil {
				t.Fatalf("scaling to 5 was refused: %v", err)
			}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
				t.Fatal(err)
			}
			replicas, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
			assertEqual(t, "spec.replicas after scale", replicas, int64(5))

			if err := k8s.SubResource("scale").Get(ctx, tc.obj, scale); err != nil {
				t.Fatal(err)
			}
			scale.Spec.Replicas = 4
			err := k8s.SubResource("scale").Update(ctx, tc.obj, client.WithSubResourceBody(scale))
			if err == nil {
				t.Fatal("scaling to 4 was accepted")
			}
			assertRefused(t, err, "spec.replicas", oddMessage)
		})
	}
}

// TestPrinterColumns asks the API server for the table kubectl prints.
func TestPrinterColumns(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	for _, tc := range []struct {
		file     string
		resource string
		columns  []string
	}{
		{etcdClusterSample, "etcdclusters", []string{"Name", "Replicas", "Ready", "Leader", "Version", "Age"}},
		{controlPlaneSample, "controlplanes", []string{"Name", "Replicas", "Ready", "Version", "Endpoint", "Age"}},
		{etcdBackupSample, "etcdbackups", []string{"Name", "Cluster", "Schedule", "Last Success", "Snapshots", "Age"}},
	} {
		t.Run(tc.resource, func(t *testing.T) {
			u := sample(t, tc.file)
			u.SetNamespace(ns)
			if err := k8s.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
			cfg := rest.CopyConfig(restCfg)
			cfg.GroupVersion = &schema.GroupVersion{Group: "quorum.dev", Version: "v1alpha1"}
			cfg.APIPath = "/apis"
			cfg.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
			rc, err := rest.RESTClientFor(cfg)
			if err != nil {
				t.Fatal(err)
			}
			table := &metav1.Table{}
			err = rc.Get().Namespace(ns).Resource(tc.resource).
				SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
				Do(ctx).Into(table)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range table.ColumnDefinitions {
				got = append(got, c.Name)
			}
			assertEqual(t, "columns", strings.Join(got, ","), strings.Join(tc.columns, ","))
		})
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func assertEqual[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}
