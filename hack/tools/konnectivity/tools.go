//go:build tools

// Package tools pins the konnectivity commands this module builds, so that
// `go mod tidy` keeps their dependencies.
package tools

import (
	_ "sigs.k8s.io/apiserver-network-proxy/cmd/agent"
	_ "sigs.k8s.io/apiserver-network-proxy/cmd/server"
)
