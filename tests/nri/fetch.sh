#!/bin/bash
# Fetches what tests/vm/t-nri.sh needs from Debian 13 (trixie) without touching
# the system's apt sources or installing anything: a private apt state under the
# cache, `apt-get download`, `dpkg-deb -x`. Debian 12's containerd is 1.6 (no
# NRI in CRI); trixie's 1.7.24 is the version the NRI facts were read in
# (BRIEF.md section 7). Cached once, like vm.sh's kernel.
#
#   tests/nri/fetch.sh [CACHE]     (default ~/.cache/numafollow-nri)
#
# Leaves CACHE/root/ (containerd, containerd-shim-runc-v2, ctr) and
# CACHE/cri/api.proto (cri-api's api.proto, its gogoproto lines removed).
set -eu -o pipefail
cache=${1:-${NF_NRI_CACHE:-${HOME:-/root}/.cache/numafollow-nri}}
pkgs="containerd golang-github-kubernetes-cri-api-dev"
[ -x "$cache/root/usr/bin/containerd" ] && [ -s "$cache/cri/api.proto" ] && exit 0

mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" "$cache/dl"
exec 9>"$cache/.lock"
flock 9
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
	>"$cache/apt/sources.list"
apt=(apt-get -q -o Dir::Etc::SourceList="$cache/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::State::Lists="$cache/apt/lists" -o Dir::Cache="$cache/apt/cache"
	-o Dir::State::Status=/var/lib/dpkg/status -o APT::Get::List-Cleanup=0)
"${apt[@]}" update >"$cache/apt.log" 2>&1 || { cat "$cache/apt.log" >&2; exit 1; }
# shellcheck disable=SC2086
(cd "$cache/dl" && "${apt[@]}" download $pkgs >>"$cache/apt.log" 2>&1) || { cat "$cache/apt.log" >&2; exit 1; }
rm -rf "$cache/root.tmp" && mkdir -p "$cache/root.tmp"
for d in "$cache"/dl/*.deb; do dpkg-deb -x "$d" "$cache/root.tmp"; done
proto=$(find "$cache/root.tmp" -path '*cri-api/pkg/apis/runtime/v1/api.proto' | head -n 1)
[ -n "$proto" ] || { echo "fetch.sh: no runtime/v1/api.proto in cri-api's package" >&2; exit 1; }
mkdir -p "$cache/cri"
grep -v gogoproto "$proto" >"$cache/cri/api.proto"
rm -rf "$cache/root" && mv "$cache/root.tmp" "$cache/root"
"$cache/root/usr/bin/containerd" --version
