//go:build tools

// Package tools pins the sample-apiserver command this module builds, so
// that `go mod tidy` keeps its dependencies.
package tools

import (
	_ "k8s.io/sample-apiserver"
)
