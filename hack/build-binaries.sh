#!/usr/bin/env bash
# Builds the real Kubernetes and etcd binaries the tests and the local cluster
# run, from their Go modules (hack/tools/*/go.mod), into bin/k8s (git-ignored).
#
#   hack/build-binaries.sh [component ...]
#
# Components: kube-apiserver kube-controller-manager kube-scheduler kubelet kubeadm
# kube-proxy kubectl etcd etcdctl etcdutl, e2e.test ginkgo agnhost (the
# upstream conformance tests, their runner and main image), and the local cluster's add-ons
# coredns versitygw local-path-provisioner, konnectivity (proxy-server and
# proxy-agent), hosted-coredns (the CoreDNS
# the coreDNS add-on of a hosted v1.36 control plane runs), promtool (Prometheus's rule
# tester), helm, previous-etcd (v3.6.15 into bin/k8s/v3.6.15, for the
# etcd rolling-upgrade chaos scenario), and previous-control-plane: the
# v1.35.4 kube-apiserver, controller-manager and scheduler (into
# bin/k8s/v1.35.4) that the ControlPlane upgrade test starts from. Default:
# what envtest needs.
# A binary already built for the pinned version is skipped. Compilation is
# cached by the Go build cache, so a fresh clone on a warm machine only links.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${QUORUM_BIN_DIR:-$root/bin/k8s}
k8s_version=v1.36.3
k8s_previous_version=v1.35.4
etcd_version=v3.6.16
etcd_previous_version=v3.6.15
mkdir -p "$out"

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(kube-apiserver etcd kubectl)

build() { # name module-dir package version ldflags [output-dir]
	local name=$1 dir=$2 pkg=$3 version=$4 ldflags=$5 dest=${6:-$out}
	local stamp="$dest/.$name.version"
	if [ -x "$dest/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
		return
	fi
	echo "building $name $version" >&2
	local start=$SECONDS
	mkdir -p "$dest"
	(cd "$root/hack/tools/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$dest/$name.tmp" "$pkg")
	mv "$dest/$name.tmp" "$dest/$name"
	echo "$version" >"$stamp"
	echo "built $name in $((SECONDS - start))s" >&2
}

install() { # name module@version [build tags] [output-dir]: a plain `go install` of a published command
	local name=$1 mod=$2 tags=${3:-} dest=${4:-$out}
	local stamp="$dest/.$name.version"
	if [ -x "$dest/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$mod" ]; then
		return
	fi
	echo "building $name ($mod)" >&2
	local start=$SECONDS
	mkdir -p "$dest"
	(cd "$root" && CGO_ENABLED=0 GOBIN="$dest" go install -tags "$tags" -trimpath -ldflags "-s -w" "$mod")
	echo "$mod" >"$stamp"
	echo "built $name in $((SECONDS - start))s" >&2
}

ldflags_for() { # version: the version stamps kubectl version and /version report
	local v=$1 minor
	minor=$(echo "$v" | cut -d. -f2)
	echo "-X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
		"-X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
}
k8s_ldflags=$(ldflags_for "$k8s_version")

for c in "${components[@]}"; do
	case $c in
	kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy | kubectl | kubeadm)
		build "$c" kubernetes "k8s.io/kubernetes/cmd/$c" "$k8s_version" "$k8s_ldflags" ;;
	previous-control-plane)
		for b in kube-apiserver kube-controller-manager kube-scheduler; do
			build "$b" kubernetes-previous "k8s.io/kubernetes/cmd/$b" "$k8s_previous_version" "$(ldflags_for "$k8s_previous_version")" "$out/$k8s_previous_version"
		done ;;
	# The upstream end-to-end tests (conformance) and their runner, from
	# their own wrapper module; agnhost is the image most of them run.
	e2e.test)
		stamp="$out/.e2e.test.version"
		if [ ! -x "$out/e2e.test" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$k8s_version" ]; then
			echo "building e2e.test $k8s_version" >&2
			start=$SECONDS
			(cd "$root/hack/tools/kubernetes-e2e" && CGO_ENABLED=0 go test -c -trimpath -ldflags "-s -w $k8s_ldflags" -o "$out/e2e.test.tmp" k8s.io/kubernetes/test/e2e)
			mv "$out/e2e.test.tmp" "$out/e2e.test"
			echo "$k8s_version" >"$stamp"
			echo "built e2e.test in $((SECONDS - start))s" >&2
		fi ;;
	ginkgo) build ginkgo kubernetes-e2e github.com/onsi/ginkgo/v2/ginkgo "$k8s_version" "" ;;
	agnhost)
		build agnhost kubernetes-e2e k8s.io/kubernetes/test/images/agnhost "$k8s_version" ""
		k8s_dir=$(cd "$root/hack/tools/kubernetes-e2e" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
		# agnhost's image carries a test certificate at its root (its
		# test-webserver serves it; StatefulSet readiness probes read it).
		mkdir -p "$out/e2e-images/agnhost"
		cp "$k8s_dir/test/images/agnhost/porter/localhost."{crt,key} "$out/e2e-images/agnhost/"
		chmod 644 "$out/e2e-images/agnhost/"* ;;
	# What only the whole conformance run needs (make conformance): the
	# older agnhost the StatefulSet update tests start from, the pictures
	# the kitten and nautilus images (agnhost serving them) carry, and the
	# Aggregator test's sample-apiserver and the etcd beside it, at the
	# versions e2e.test names.
	conformance-images)
		build agnhost kubernetes-previous k8s.io/kubernetes/test/images/agnhost "$k8s_previous_version" "" "$out/$k8s_previous_version"
		k8s_dir=$(cd "$root/hack/tools/kubernetes-e2e" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
		for img in kitten nautilus; do
			mkdir -p "$out/e2e-images/$img"
			cp "$k8s_dir/test/images/$img/html/"* "$out/e2e-images/$img/"
			chmod 644 "$out/e2e-images/$img/"*
		done
		build sample-apiserver sample-apiserver k8s.io/sample-apiserver v0.29.2 "" "$out/e2e-images"
		build etcd etcd-e2e go.etcd.io/etcd/server/v3 v3.6.8 "" "$out/e2e-images/etcd-v3.6.8" ;;
	etcd) build etcd etcd go.etcd.io/etcd/server/v3 "$etcd_version" "" ;;
	etcdctl | etcdutl) build "$c" etcd "go.etcd.io/etcd/$c/v3" "$etcd_version" "" ;;
	previous-etcd)
		build etcd etcd-previous go.etcd.io/etcd/server/v3 "$etcd_previous_version" "" "$out/$etcd_previous_version"
		for b in etcdctl etcdutl; do
			build "$b" etcd-previous "go.etcd.io/etcd/$b/v3" "$etcd_previous_version" "" "$out/$etcd_previous_version"
		done ;;
	coredns) install coredns github.com/coredns/coredns@v1.15.0 ;;
	# The CoreDNS a hosted ControlPlane at $k8s_version gets from its
	# coreDNS add-on (kubeadm's version for that minor), into bin/k8s/coredns-<version>.
	hosted-coredns) install coredns github.com/coredns/coredns@v1.14.2 "" "$out/coredns-v1.14.2" ;;
	# konnectivity's server and agent (the konnectivity add-on of a hosted
	# ControlPlane), from their wrapper module.
	konnectivity)
		build proxy-server konnectivity sigs.k8s.io/apiserver-network-proxy/cmd/server v0.34.0 ""
		build proxy-agent konnectivity sigs.k8s.io/apiserver-network-proxy/cmd/agent v0.34.0 "" ;;
	versitygw) install versitygw github.com/versity/versitygw/cmd/versitygw@v1.8.0 ;;
	local-path-provisioner) install local-path-provisioner github.com/rancher/local-path-provisioner@v0.0.30 ;;
	# The rule checker and tester, without the service discoveries (which
	# only the server uses and which are most of its build).
	helm) install helm helm.sh/helm/v3/cmd/helm@v3.22.0 ;;
	promtool) install promtool github.com/prometheus/prometheus/cmd/promtool@v0.316.0 remove_all_sd ;;
	*) echo "unknown component $c" >&2; exit 2 ;;
	esac
done
