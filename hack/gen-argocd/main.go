// Command gen-argocd writes config/argocd/argocd-cm.yaml from
// config/argocd/health.lua (`make manifests` runs it).
package main

import (
	"fmt"
	"os"

	"quorum.dev/quorum/config/argocd"
)

func main() {
	out := "config/argocd/argocd-cm.yaml"
	if len(os.Args) > 1 {
		out = os.Args[1]
	}
	if err := os.WriteFile(out, []byte(argocd.ConfigMap()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
