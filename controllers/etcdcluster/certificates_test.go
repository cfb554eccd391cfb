package etcdcluster

import (
	"crypto/x509"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// certsOf: every member's certificate expires at exp and was issued at
// issued; the CA lives ten years.
func certsOf(s *scope, exp, issued time.Time) *scope {
	s.certs = &certObservation{ca: &x509.Certificate{NotAfter: now.Add(10 * 365 * 24 * time.Hour)}, members: map[string]certInfo{},
		client: certInfo{ok: true, notAfter: now.Add(365 * 24 * time.Hour), issuedAt: issued, issued: issued.Format(time.RFC3339)}}
	for name := range s.members {
		s.certs.members[name] = certInfo{ok: true, notAfter: exp, issuedAt: issued, issued: issued.Format(time.RFC3339)}
	}
	return s
}

func TestDecideCertificates(t *testing.T) {
	year := now.Add(365 * 24 * time.Hour)
	podsBorn := func(at time.Time) func(*memberState) {
		return func(m *memberState) { m.Pod.CreationTimestamp = metav1.NewTime(at) }
	}
	born := now.Add(-48 * time.Hour)
	for _, tc := range []struct {
		name   string
		s      *scope
		kind   actionKind
		member string
		reason string
	}{
		{"valid for a year: nothing",
			certsOf(scopeOf(cluster(3), three(allOf(podsBorn(born)))...), year, born.Add(-time.Hour)), actNone, "", ""},
		{"inside renewBefore: the first follower's Secret is reissued",
			certsOf(scopeOf(cluster(3), three(allOf(podsBorn(born)))...), now.Add(24*time.Hour), born.Add(-time.Hour)), actRenewCert, "m-b", reasonCertificateRenewal},
		{"reissued Secrets: the followers restart onto them first",
			certsOf(scopeOf(cluster(3), three(allOf(podsBorn(born)))...), year, now.Add(-time.Minute)), actRestartMember, "m-b", reasonCertificateRenewal},
		{"the leader last, after leadership moved",
			func() *scope {
				s := certsOf(scopeOf(cluster(3), three(map[string][]func(*memberState){"m-a": {podsBorn(born)}, "m-b": {podsBorn(now)}, "m-c": {podsBorn(now)}})...), year, now.Add(-time.Minute))
				return s
			}(), actMoveLeader, "m-a", ""},
		{"a member unhealthy: renewal waits",
			certsOf(scopeOf(cluster(3, unhealthyInStatus("m-c", now)), three(map[string][]func(*memberState){"m-a": {podsBorn(born)}, "m-b": {podsBorn(born)}, "m-c": {podsBorn(born), unhealthy}})...), now.Add(24*time.Hour), born),
			actWait, "", "CertificateRenewalWaiting"},
		{"a CA expiring before the certificate: not reissued (it could not outlive the CA); the CA is rotated",
			func() *scope {
				s := certsOf(scopeOf(cluster(3), three(allOf(podsBorn(born)))...), now.Add(24*time.Hour), born.Add(-time.Hour))
				s.certs.ca.NotAfter = now.Add(24 * time.Hour)
				return s
			}(), actStartCARotation, "", reasonRotatingCA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.s)
			if a.kind != tc.kind || (tc.member != "" && a.member != tc.member) || (tc.reason != "" && a.reason != tc.reason) {
				t.Fatalf("decide = %s %s %s (%s), want %s %s %s", a.kind, a.member, a.reason, a.message, tc.kind, tc.member, tc.reason)
			}
		})
	}

	// The status lists every certificate and says when one is due and
	// blocked.
	s := certsOf(scopeOf(cluster(3, unhealthyInStatus("m-c", now)), three(map[string][]func(*memberState){"m-c": {unhealthy}})...), now.Add(24*time.Hour), born)
	st := computeStatus(s.cluster, s, decide(s), now)
	if len(st.Certificates) != 5 {
		t.Fatalf("certificates %v, want ca, client and 3 members", st.Certificates)
	}
	var cond *metav1.Condition
	for i := range st.Conditions {
		if st.Conditions[i].Type == quorumv1alpha1.ConditionCertificatesExpiring {
			cond = &st.Conditions[i]
		}
	}
	if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != "RenewalPending" {
		t.Fatalf("CertificatesExpiring = %+v", cond)
	}
}
