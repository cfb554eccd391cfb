#!/usr/bin/env bash
# Installs the Debian packages the local cluster runs on: containerd, runc,
# the CNI plugins, iptables and friends, and busybox-static (the helper image
# of the volume provisioner). Skips what is already installed.
set -euo pipefail

packages=(containerd runc containernetworking-plugins iptables conntrack socat ethtool iproute2 busybox-static kmod netcat-openbsd bind9-dnsutils curl)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "the local cluster needs these Debian packages, and root to install them: ${missing[*]}" >&2
	exit 1
fi
echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# containerd's package starts nothing here (no init system), and the local
# cluster runs its own containerd per node with its own config.
