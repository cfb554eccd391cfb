package etcdcluster

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/reconciler"
)

// rotationCAs are an old and a new CA, made once for the tests.
var rotationCAs = func() [2]*pki.KeyPair {
	var out [2]*pki.KeyPair
	for i := range out {
		ca, err := pki.NewCA("test-ca", 10*365*24*time.Hour)
		if err != nil {
			panic(err)
		}
		out[i] = ca
	}
	return out
}()

func leafOf(ca *pki.KeyPair) *x509.Certificate {
	kp, err := ca.Issue(pki.CertRequest{CommonName: "m", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Validity: 365 * 24 * time.Hour, Now: now})
	if err != nil {
		panic(err)
	}
	return kp.Cert
}

// holders says what the members, the client and the consumers run.
type holders struct {
	issuer    *pki.KeyPair // that issued the members' and client's leaves
	trust     []byte       // their ca.crt
	consumers []consumer
}

// rotationScope: a healthy 3-member cluster whose CA Secret is in phase,
// with holders as given; every pod runs its Secret.
func rotationScope(phase quorumv1alpha1.CARotationPhase, hs holders, mutate ...func(*quorumv1alpha1.EtcdCluster)) *scope {
	old, next := rotationCAs[0], rotationCAs[1]
	s := scopeOf(cluster(3, mutate...), three()...)
	o := &certObservation{members: map[string]certInfo{}, rotation: reconciler.CARotation{Phase: phase, Trigger: "1"}, consumers: hs.consumers}
	switch phase {
	case "":
		o.ca, o.trust = old.Cert, old.CertPEM
	case quorumv1alpha1.CARotationTrustBoth:
		o.ca, o.next, o.trust = old.Cert, next.Cert, pki.Bundle(old.CertPEM, next.CertPEM)
	case quorumv1alpha1.CARotationReissueLeaves:
		o.ca, o.trust = next.Cert, pki.Bundle(old.CertPEM, next.CertPEM)
	case quorumv1alpha1.CARotationDropOldCA:
		o.ca, o.trust = next.Cert, next.CertPEM
	}
	info := func() certInfo {
		l := leafOf(hs.issuer)
		return certInfo{ok: true, leaves: []*x509.Certificate{l}, trust: hs.trust, notAfter: l.NotAfter, issued: "t1"}
	}
	o.client = info()
	for name, m := range s.members {
		o.members[name] = info()
		m.Pod.Annotations = map[string]string{"quorum.dev/certificates-issued-at": "t1"}
	}
	s.certs = o
	return s
}

func trusting(cas ...*pki.KeyPair) consumer {
	c := consumer{name: "tenant", known: true}
	for _, ca := range cas {
		c.trustedCAs = append(c.trustedCAs, pki.Fingerprint(ca.Cert))
	}
	return c
}

func withIssuer(c consumer, ca *pki.KeyPair) consumer {
	c.clientIssuer = pki.Fingerprint(ca.Cert)
	return c
}

func rotateAnnotation(v string) func(*quorumv1alpha1.EtcdCluster) {
	return func(c *quorumv1alpha1.EtcdCluster) {
		c.Annotations = map[string]string{reconciler.AnnotationRotateCA: v}
	}
}

// TestCARotationPhases: each phase first brings every Secret to it
// (members one at a time through decideCertificates), then waits for the
// ControlPlanes on the cluster, then moves on; a rotation starts on a new
// annotation value or inside the CA's renewal window, only while healthy.
func TestCARotationPhases(t *testing.T) {
	old, next := rotationCAs[0], rotationCAs[1]
	both := pki.Bundle(old.CertPEM, next.CertPEM)
	T, R, D := quorumv1alpha1.CARotationTrustBoth, quorumv1alpha1.CARotationReissueLeaves, quorumv1alpha1.CARotationDropOldCA
	for _, tc := range []struct {
		name   string
		s      *scope
		kind   actionKind
		member string
		says   string
	}{
		{"no rotation asked: nothing", rotationScope("", holders{issuer: old, trust: old.CertPEM}), actNone, "", ""},
		{"the value already answered: nothing", rotationScope("", holders{issuer: old, trust: old.CertPEM}, rotateAnnotation("1")), actNone, "", ""},
		{"a new value: the rotation starts", rotationScope("", holders{issuer: old, trust: old.CertPEM}, rotateAnnotation("2")), actStartCARotation, "", `quorum.dev/rotate-ca is "2"`},
		{"trust both: a member's Secret gets the bundle first", rotationScope(T, holders{issuer: old, trust: old.CertPEM}), actRenewCert, "m-b", "trusting"},
		{"trust both: every Secret has it, a ControlPlane does not yet", rotationScope(T, holders{issuer: old, trust: both, consumers: []consumer{withIssuer(trusting(old), old)}}), actWait, "", "ControlPlane tenant (its replicas do not trust the new CA yet)"},
		{"trust both: a ControlPlane that never reported", rotationScope(T, holders{issuer: old, trust: both, consumers: []consumer{{name: "tenant"}}}), actWait, "", "have not reported"},
		{"trust both: every holder trusts both: the new CA issues", rotationScope(T, holders{issuer: old, trust: both, consumers: []consumer{withIssuer(trusting(old, next), old)}}), actAdvanceCARotation, "", "issues from now on"},
		{"reissue: a member's leaves from the old CA are reissued", rotationScope(R, holders{issuer: old, trust: both}), actRenewCert, "m-b", "issued from the new CA"},
		{"reissue: a ControlPlane's client certificate is still the old CA's", rotationScope(R, holders{issuer: next, trust: both, consumers: []consumer{withIssuer(trusting(old, next), old)}}), actWait, "", "not the new CA's yet"},
		{"reissue: every leaf is the new CA's: the old CA is dropped", rotationScope(R, holders{issuer: next, trust: both, consumers: []consumer{withIssuer(trusting(old, next), next)}}), actAdvanceCARotation, "", "old CA leaves"},
		{"drop: a member's Secret trusts the new CA alone", rotationScope(D, holders{issuer: next, trust: both}), actRenewCert, "m-b", "trusting"},
		{"drop: a ControlPlane still trusts the old CA", rotationScope(D, holders{issuer: next, trust: next.CertPEM, consumers: []consumer{withIssuer(trusting(old, next), next)}}), actWait, "", "still trust the old CA"},
		{"drop: every holder trusts the new CA alone: complete", rotationScope(D, holders{issuer: next, trust: next.CertPEM, consumers: []consumer{withIssuer(trusting(next), next)}}), actAdvanceCARotation, "", "complete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.s)
			if a.kind != tc.kind || (tc.member != "" && a.member != tc.member) || !strings.Contains(a.message, tc.says) {
				t.Fatalf("decide = %s %s %s (%s), want %s %s saying %q", a.kind, a.member, a.reason, a.message, tc.kind, tc.member, tc.says)
			}
			if a.kind != actNone && a.reason != reasonRotatingCA {
				t.Fatalf("reason %s, want %s", a.reason, reasonRotatingCA)
			}
		})
	}

	// A member whose pod predates its rewritten Secret restarts onto it
	// before the phase moves on.
	s := rotationScope(T, holders{issuer: old, trust: both, consumers: []consumer{withIssuer(trusting(old, next), old)}})
	ci := s.certs.members["m-c"]
	ci.issued = "t2"
	s.certs.members["m-c"] = ci
	if a := decide(s); a.kind != actRestartMember || a.member != "m-c" || a.reason != reasonRotatingCA {
		t.Fatalf("a member on its old Secret: %s %s %s, want it restarted", a.kind, a.member, a.reason)
	}

	// Nothing starts, and no phase moves, while a member is unhealthy.
	s = rotationScope("", holders{issuer: old, trust: old.CertPEM}, rotateAnnotation("2"), unhealthyInStatus("m-c", now))
	s.members["m-c"].Healthy = false
	if a := decide(s); a.kind == actStartCARotation {
		t.Fatal("a rotation started with a member unhealthy")
	}
	s = rotationScope(T, holders{issuer: old, trust: both, consumers: []consumer{withIssuer(trusting(old, next), old)}}, unhealthyInStatus("m-c", now))
	s.members["m-c"].Healthy = false
	if a := decide(s); a.kind == actAdvanceCARotation {
		t.Fatal("a phase moved on with a member unhealthy")
	}

	// The CA inside its renewal window (certificateValidity and
	// certificateRenewBefore before its end) rotates unasked.
	s = rotationScope("", holders{issuer: old, trust: old.CertPEM})
	s.now = old.Cert.NotAfter.Add(-(365 + 29) * 24 * time.Hour)
	for name, ci := range s.certs.members {
		ci.notAfter = s.now.Add(365 * 24 * time.Hour)
		s.certs.members[name] = ci
	}
	s.certs.client.notAfter = s.now.Add(365 * 24 * time.Hour)
	if a := decide(s); a.kind != actStartCARotation || !strings.Contains(a.message, "the CA expires") {
		t.Fatalf("a CA within its renewal window: %s (%s), want a rotation", a.kind, a.message)
	}

	// Status: the phase, what it waits for, and Progressing True.
	s = rotationScope(T, holders{issuer: old, trust: both, consumers: []consumer{withIssuer(trusting(old), old)}})
	a := decide(s)
	st := computeStatus(s.cluster, s, a, now)
	if st.CARotation == nil || st.CARotation.Phase != T || !strings.Contains(st.CARotation.Message, "ControlPlane tenant") {
		t.Fatalf("status.caRotation %+v", st.CARotation)
	}
	if c := reconciler.Condition(st.Conditions, quorumv1alpha1.ConditionProgressing); c.Status != metav1.ConditionTrue || c.Reason != reasonRotatingCA {
		t.Fatalf("Progressing %+v during a rotation", c)
	}
	if len(st.Certificates) < 2 || st.Certificates[1].Name != "ca-next" {
		t.Fatalf("certificates %v: want the new CA listed while it is only trusted", st.Certificates)
	}
}
