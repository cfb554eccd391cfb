package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"time"

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
	for _, sign := range []string{"authentication handshake failed", "x509:", "tls: ", "certificate", "permission denied", "unauthenticated", "remote error"} {
		if strings.Contains(msg, sign) {
			return Rejected
		}
	}
	return NoAnswer
}

// ProbeTLS opens a TLS connection to a member at addr (host:port, an IP)
// verifying its certificate for serverName, and waits briefly for the
// member to refuse the caller's certificate (with TLS 1.3 a server's
// refusal arrives after the handshake). It tells, when gRPC only reports a
// timeout, whether the caller's credentials are the trouble: the error it
// returns classifies as Rejected then, as NoAnswer when nothing answers,
// and it returns nil when the member accepted the connection.
func ProbeTLS(ctx context.Context, addr, serverName string, cfg *tls.Config) error {
	c := cfg.Clone()
	c.ServerName = serverName
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 3 * time.Second}, Config: c}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil // nothing sent, nothing refused: the member took the certificate
		}
		return err
	}
	return nil
}
