// Package v1alpha1 holds the Quorum API: EtcdCluster, ControlPlane and
// EtcdBackup in the quorum.dev group.
//
// Every rule a user can break is written into the CRD schema (OpenAPI and
// CEL), so the API server itself rejects bad input with a message and no
// admission webhook has to be running for the API to be safe.
//
// +kubebuilder:object:generate=true
// +groupName=quorum.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every Quorum kind.
	GroupVersion = schema.GroupVersion{Group: "quorum.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the Quorum kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the Quorum kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&EtcdCluster{}, &EtcdClusterList{},
		&ControlPlane{}, &ControlPlaneList{},
		&EtcdBackup{}, &EtcdBackupList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
