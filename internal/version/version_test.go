package version

import (
	"strings"
	"testing"
)

func TestEtcdStep(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		refused  string
	}{
		{"3.6.16", "3.6.16", ""},
		{"3.6.15", "3.6.16", ""},
		{"3.6.16", "3.6.15", ""},
		{"3.6.16", "3.7.0", ""},
		{"3.6.16", "3.8.0", "version 3.8.0 is 2 minor versions ahead of the running 3.6.16: upgrade one minor version at a time"},
		{"3.6.16", "3.5.21", "version 3.5.21 is older than the running 3.6.16: etcd does not support downgrades"},
		{"3.6.16", "4.0.0", "different major version"},
		{"3.6.16", "latest", "not a major.minor.patch version"},
	} {
		err := EtcdStep(tc.from, tc.to)
		if (err == nil) != (tc.refused == "") || (err != nil && !strings.Contains(err.Error(), tc.refused)) {
			t.Errorf("EtcdStep(%s, %s) = %v, want refusal %q", tc.from, tc.to, err, tc.refused)
		}
	}
}

func TestKubernetesStep(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		refused  string
	}{
		{"v1.35.4", "v1.36.3", ""},
		{"v1.36.3", "v1.36.1", ""},
		{"v1.36.3", "v1.35.4", "version v1.35.4 is older than the running v1.36.3"},
		{"v1.34.0", "v1.36.3", "one minor version at a time"},
		{"v1.36.3", "v2.0.0", "major"},
	} {
		err := KubernetesStep(tc.from, tc.to)
		if (err == nil) != (tc.refused == "") || (err != nil && !strings.Contains(err.Error(), tc.refused)) {
			t.Errorf("KubernetesStep(%s, %s) = %v, want refusal %q", tc.from, tc.to, err, tc.refused)
		}
	}
}

func TestLowestAndTarget(t *testing.T) {
	if got := Lowest("3.6.16", "", "bogus", "3.6.9", "3.6.15"); got != "3.6.9" {
		t.Errorf("Lowest = %q, want 3.6.9 (numeric, not lexical, order)", got)
	}
	if got := Lowest(); got != "" {
		t.Errorf("Lowest of nothing = %q", got)
	}
	if v, refused := Target("v1.36.3", KubernetesStep); v != "v1.36.3" || refused != "" {
		t.Errorf("nothing running: %s %q", v, refused)
	}
	if v, refused := Target("v1.36.3", KubernetesStep, "v1.34.2", "v1.35.0"); v != "v1.34.2" || !strings.Contains(refused, "one minor version at a time") {
		t.Errorf("refused step: %s %q, want the running v1.34.2 kept", v, refused)
	}
	if v, refused := Target("v1.36.3", KubernetesStep, "v1.35.4"); v != "v1.36.3" || refused != "" {
		t.Errorf("allowed step: %s %q", v, refused)
	}
}
