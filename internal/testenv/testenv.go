// Package testenv starts one envtest (a real kube-apiserver and etcd, built
// by hack/build-binaries.sh) per test binary, with Quorum's CRDs, and gives
// the controller tests what they share: a client that counts every write
// (events included), Ready nodes in three zones, and a namespace per test.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// Scheme knows the Kubernetes kinds and Quorum's.
var Scheme = k8sruntime.NewScheme()

var (
	once    sync.Once
	env     *envtest.Environment
	kclient client.Client
	config  *rest.Config
	err     error
)

func init() {
	_ = clientgoscheme.AddToScheme(Scheme)
	_ = quorumv1alpha1.AddToScheme(Scheme)
}

// Start starts the API server once for the test binary and returns a
// client of it. Call Stop from TestMain.
func Start(t *testing.T) client.Client {
	t.Helper()
	once.Do(func() {
		if os.Getenv("KUBEBUILDER_ASSETS") == "" {
			err = fmt.Errorf("KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver and etcd")
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		env = &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join(root, "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
		cfg, startErr := env.Start()
		if startErr != nil {
			err = startErr
			_ = env.Stop()
			env = nil
			return
		}
		config = cfg
		kclient, err = client.New(cfg, client.Options{Scheme: Scheme})
	})
	if err != nil {
		t.Fatal(err)
	}
	return kclient
}

// Config is the API server's client configuration, once Start ran: a
// test can use the same real API server as a hosted control plane's.
func Config() *rest.Config { return config }

// Stop stops the API server if Start started it.
func Stop() {
	if env != nil {
		_ = env.Stop()
	}
}

// ReadyNodes makes one Ready node per zone, zone-a to zone-c (once).
func ReadyNodes(t *testing.T, c client.Client) {
	t.Helper()
	ctx := context.Background()
	for _, z := range []string{"zone-a", "zone-b", "zone-c"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-" + z, Labels: map[string]string{quorumv1alpha1.LabelZone: z}}}
		if err := c.Create(ctx, n); err != nil {
			if client.IgnoreAlreadyExists(err) != nil {
				t.Fatal(err)
			}
			continue
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		if err := c.Status().Update(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
}

// Namespace makes a namespace for one test.
func Namespace(t *testing.T, c client.Client, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}
