package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestManagerMetrics (issue 15): the manager serves its metrics over HTTPS
// only to a token the API server authorizes for GET /metrics: none is
// refused (401), a ServiceAccount without the quorum-metrics-reader
// ClusterRole is refused (403), one bound to it reads Quorum's metrics.
func TestManagerMetrics(t *testing.T) {
	ctx := context.Background()
	pods, err := kube.CoreV1().Pods("quorum-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=manager"})
	if err != nil {
		t.Fatal(err)
	}
	var ip string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
			ip = p.Status.PodIP
		}
	}
	if ip == "" {
		t.Fatal("no running manager pod")
	}
	url := fmt.Sprintf("https://%s:8443/metrics", ip)
	// The endpoint's certificate is self-signed (--metrics-cert-dir unset).
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed by design
	scrape := func(token string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	if code, _ := scrape(""); code != http.StatusUnauthorized {
		t.Fatalf("no token: HTTP %d, want 401", code)
	}
	plain := &http.Client{Timeout: 10 * time.Second}
	if resp, err := plain.Get(fmt.Sprintf("http://%s:8443/metrics", ip)); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served the metrics")
		}
	}

	ns := newNamespace(t, "metrics")
	sa, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "scraper"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := tok.Status.Token
	if code, _ := scrape(token); code != http.StatusForbidden {
		t.Fatalf("a ServiceAccount without quorum-metrics-reader: HTTP %d, want 403", code)
	}

	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-metrics-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "quorum-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: ns}},
	}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})
	// The authorizer's cache in the manager holds a denial for a while.
	eventually(t, "the bound ServiceAccount reads the metrics", 2*time.Minute, func() (bool, string) {
		code, body := scrape(token)
		if code != http.StatusOK {
			return false, fmt.Sprintf("HTTP %d", code)
		}
		// Both replicas serve; only the leader runs the controllers, so
		// check a metric every replica has.
		return strings.Contains(body, "rest_client_requests_total"), "no rest_client_requests_total in the metrics"
	})
}

// TestManagerSecretsNotCached (issue 15): the manager's ServiceAccount may
// not watch Secrets, so it cannot cache them (every case of the suite runs
// with that: Secrets are read from the API server), and may not escalate.
func TestManagerSecretsNotCached(t *testing.T) {
	sa := "system:serviceaccount:quorum-system:quorum-manager"
	for _, tc := range []struct {
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "tenant"}, true},
		{authorizationv1.ResourceAttributes{Verb: "watch", Resource: "secrets"}, false},
		{authorizationv1.ResourceAttributes{Verb: "watch", Resource: "secrets", Namespace: "tenant"}, false},
		{authorizationv1.ResourceAttributes{Verb: "escalate", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}, false},
	} {
		r, err := kube.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:quorum-system"}, ResourceAttributes: &tc.attrs},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Allowed != tc.want {
			t.Errorf("%s may %s %s (namespace %q): %v, want %v", sa, tc.attrs.Verb, tc.attrs.Resource, tc.attrs.Namespace, r.Status.Allowed, tc.want)
		}
	}
}
