package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"quorum.dev/quorum/internal/pki"
)

// TestProbeTLS: a real TLS server requiring client certificates tells a
// client from another CA (either way round) from one it accepts, and from
// a port where nothing listens.
func TestProbeTLS(t *testing.T) {
	ca, err := pki.NewCA("etcd-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("another-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue(pki.CertRequest{CommonName: "m", DNSNames: []string{"m.example"}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := tls.X509KeyPair(server.CertPEM, server.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = conn.Close() }()
				_ = conn.(*tls.Conn).Handshake()
				time.Sleep(2 * time.Second)
			}()
		}
	}()
	client := func(issuer, trusted *pki.KeyPair) *tls.Config {
		kp, err := issuer.Issue(pki.CertRequest{CommonName: "quorum-client", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := pki.ClientTLSConfig(kp.CertPEM, kp.KeyPEM, trusted.CertPEM)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	_ = closed.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		addr string
		cfg  *tls.Config
		want Failure
	}{
		{"accepted", ln.Addr().String(), client(ca, ca), ""},
		{"the server's CA not trusted", ln.Addr().String(), client(other, other), Rejected},
		{"the client's certificate refused", ln.Addr().String(), client(other, ca), Rejected},
		{"nothing listens", closedAddr, client(ca, ca), NoAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ProbeTLS(ctx, tc.addr, "m.example", tc.cfg)
			if got := Classify(err); got != tc.want {
				t.Fatalf("ProbeTLS = %v, classified %q, want %q", err, got, tc.want)
			}
		})
	}
}
