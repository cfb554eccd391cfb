package etcd

import (
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Failure says why a member did not answer: the evidence a failed call
// gives about the member, as opposed to about the caller.
type Failure string

const (
	// NoAnswer means the call failed at the network level (refused, timed out,
	// unreachable): the member may be down, or the path to it broken.
	NoAnswer Failure = "NoAnswer"
	// Rejected means the member (or the TLS handshake with it) refused the
	// caller's credentials, or the caller does not trust the member's
	// certificate. That is evidence about the caller's credentials, never
	// that the member is down.
	Rejected Failure = "Rejected"
)

// Classify tells a network failure from a refusal of the caller's
// credentials. gRPC reports a failed TLS handshake as Unavailable with the
// handshake error in its message, so the message is read too.
func Classify(err error) Failure {
	if err == nil {
		return ""
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unauthenticated, codes.PermissionDenied:
			return Rejected
		}
	}
	msg := err.Error()
	for _, sign := range []string{"authentication handshake failed", "x509:", "tls: ", "certificate", "permission denied", "unauthenticated"} {
		if strings.Contains(msg, sign) {
			return Rejected
		}
	}
	return NoAnswer
}
