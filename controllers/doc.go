// Package controllers holds one reconciler per Quorum kind. Each decides
// what to do next from what it observes; the internal packages carry it out.
//
// The RBAC markers below are what every reconciler needs on its own kind;
// each reconciler adds markers for the objects it manages.
//
// +kubebuilder:rbac:groups=quorum.dev,resources=etcdclusters;controlplanes;etcdbackups,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=quorum.dev,resources=etcdclusters/status;controlplanes/status;etcdbackups/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=quorum.dev,resources=etcdclusters/finalizers;controlplanes/finalizers;etcdbackups/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
//
// The manager's metrics endpoint (main.go) checks each scraper's token with
// the API server:
//
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
package controllers
