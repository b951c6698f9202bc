#!/usr/bin/env bash
# Builds and caches the Kubernetes control-plane binaries used by the e2e cluster
# (e2e/cluster/cluster.sh): kube-apiserver, kube-controller-manager and etcd, from the pinned
# module e2e/cluster/go.mod, with Go and the module proxy only.
#
#   scripts/k8s-tools.sh install   build into the cache unless already built; last stdout line = bin dir
#   scripts/k8s-tools.sh bindir    print the bin dir (no build)
#
# Cache: ${THOUGHTGATE_CACHE:-$HOME/.cache/thoughtgate}/k8s-<version>/bin. A stamp file holds a hash
# of everything that decides the binaries (go.mod, go.sum, cmd/etcd, build flags); a change rebuilds.
# All build chatter goes to stderr.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mod_dir="$repo_root/e2e/cluster"
cache_root="${THOUGHTGATE_CACHE:-$HOME/.cache/thoughtgate}"

die() { echo "k8s-tools: $*" >&2; exit 1; }

k8s_version() {
  local v
  v="$(sed -n 's#^[[:space:]]*k8s\.io/kubernetes \(v[0-9][^ ]*\).*#\1#p' "$mod_dir/go.mod" | head -n1)"
  [[ -n "$v" ]] || die "no k8s.io/kubernetes requirement in $mod_dir/go.mod"
  echo "$v"
}

version="$(k8s_version)"
[[ "$version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "unexpected k8s.io/kubernetes version $version"
major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}"
base_dir="$cache_root/k8s-$version"
bin_dir="$base_dir/bin"
binaries=(kube-apiserver kube-controller-manager etcd)

# The version a `kubectl version` / `/version` reports. Release builds set these with -X; without
# them the apiserver says v0.0.0-master and clients cannot tell which release they talk to.
# gitCommit is unknown (the module zip has no git metadata) and buildDate is fixed, so the binaries
# depend only on the inputs hashed below (the build is reproducible: -trimpath, no VCS stamping).
version_ldflags() {
  local pkg x=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitVersion=$version"
    x+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit= -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$x"
}
# -s -w: no symbol table / DWARF (the three binaries shrink by about a third).
ldflags="-s -w$(version_ldflags)"

tool=k8s-tools
what="kube-apiserver, kube-controller-manager, etcd $version"
packages=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager ./cmd/etcd)
hash_extra=("$mod_dir/cmd/etcd/main.go")
# shellcheck source=lib/go-tools.sh
source "$repo_root/scripts/lib/go-tools.sh"

install() {
  go_tools_install
  echo "$bin_dir"
}

# Everything runs from main, called on the last line: bash reads a script as it runs, so a
# script edited (or checked out) while it runs would otherwise execute a mix of old and new text.
main() {
  case "${1:-}" in
    install) install ;;
    bindir) echo "$bin_dir" ;;
    *) echo "usage: $0 install|bindir" >&2; exit 2 ;;
  esac
}

main "$@"; exit $?
