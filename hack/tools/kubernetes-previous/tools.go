//go:build tools

// Package tools pins the control-plane commands of the previous Kubernetes
// minor version, which the ControlPlane upgrade test starts from.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/test/images/agnhost"
)
