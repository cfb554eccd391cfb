#!/usr/bin/env bash
# Builds the real Kubernetes and etcd binaries the tests and the local cluster
# run, from their Go modules (hack/tools/*/go.mod), into bin/k8s (git-ignored).
#
#   hack/build-binaries.sh [component ...]
#
# Components: kube-apiserver kube-controller-manager kube-scheduler kubelet
# kube-proxy kubectl etcd etcdctl etcdutl, and the local cluster's add-ons
# coredns versitygw local-path-provisioner. Default: what envtest needs.
# A binary already built for the pinned version is skipped. Compilation is
# cached by the Go build cache, so a fresh clone on a warm machine only links.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${QUORUM_BIN_DIR:-$root/bin/k8s}
k8s_version=v1.36.3
etcd_version=v3.6.16
mkdir -p "$out"

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(kube-apiserver etcd kubectl)

build() { # name module-dir package version ldflags
	local name=$1 dir=$2 pkg=$3 version=$4 ldflags=$5
	local stamp="$out/.$name.version"
	if [ -x "$out/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
		return
	fi
	echo "building $name $version" >&2
	local start=$SECONDS
	(cd "$root/hack/tools/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out/$name.tmp" "$pkg")
	mv "$out/$name.tmp" "$out/$name"
	echo "$version" >"$stamp"
	echo "built $name in $((SECONDS - start))s" >&2
}

install() { # name module@version: a plain `go install` of a published command
	local name=$1 mod=$2
	local stamp="$out/.$name.version"
	if [ -x "$out/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$mod" ]; then
		return
	fi
	echo "building $name ($mod)" >&2
	local start=$SECONDS
	(cd "$root" && CGO_ENABLED=0 GOBIN="$out" go install -trimpath -ldflags "-s -w" "$mod")
	echo "$mod" >"$stamp"
	echo "built $name in $((SECONDS - start))s" >&2
}

k8s_ldflags="-X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36 -X k8s.io/component-base/version.gitTreeState=clean"
k8s_ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=36"

for c in "${components[@]}"; do
	case $c in
	kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy | kubectl)
		build "$c" kubernetes "k8s.io/kubernetes/cmd/$c" "$k8s_version" "$k8s_ldflags" ;;
	etcd) build etcd etcd go.etcd.io/etcd/server/v3 "$etcd_version" "" ;;
	etcdctl | etcdutl) build "$c" etcd "go.etcd.io/etcd/$c/v3" "$etcd_version" "" ;;
	coredns) install coredns github.com/coredns/coredns@v1.15.0 ;;
	versitygw) install versitygw github.com/versity/versitygw/cmd/versitygw@v1.8.0 ;;
	local-path-provisioner) install local-path-provisioner github.com/rancher/local-path-provisioner@v0.0.30 ;;
	*) echo "unknown component $c" >&2; exit 2 ;;
	esac
done
