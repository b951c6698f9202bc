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
stamp="$base_dir/stamp"
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

inputs_hash() {
  {
    cat "$mod_dir/go.mod" "$mod_dir/go.sum" "$mod_dir/cmd/etcd/main.go"
    echo "ldflags=$ldflags"
  } | sha256sum | cut -d' ' -f1
}

is_built() {
  local b
  [[ -f "$stamp" && "$(cat "$stamp")" == "$(inputs_hash)" ]] || return 1
  for b in "${binaries[@]}"; do [[ -x "$bin_dir/$b" ]] || return 1; done
}

build() {
  command -v go >/dev/null || die "Go is required to build the Kubernetes binaries (https://go.dev/dl)"
  local tmp start
  start=$SECONDS
  tmp="$(mktemp -d "$base_dir/build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "k8s-tools: building kube-apiserver, kube-controller-manager, etcd $version into $bin_dir (first time: several minutes)" >&2
  (
    cd "$mod_dir"
    # -mod=readonly: build exactly what go.mod/go.sum (committed, tidy) pin; fail instead of
    # silently resolving something else. GOWORK=off: a go.work higher up must not interfere.
    # CGO_ENABLED=0: static binaries like the release builds, no C toolchain needed.
    export GOFLAGS="-mod=readonly -buildvcs=false" GOWORK=off CGO_ENABLED=0
    go build -trimpath -ldflags="$ldflags" -o "$tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      ./cmd/etcd
  ) >&2
  local b
  for b in "${binaries[@]}"; do [[ -x "$tmp/$b" ]] || die "build did not produce $b"; done
  rm -rf "$bin_dir"
  mv "$tmp" "$bin_dir"
  trap - EXIT
  chmod 755 "$bin_dir"
  inputs_hash > "$stamp"
  echo "k8s-tools: built in $((SECONDS - start))s" >&2
}

install() {
  if ! is_built; then
    mkdir -p "$base_dir"
    # Parallel test workers may call install at once: one builds, the others wait and reuse.
    exec 9>"$base_dir/lock"
    flock 9
    is_built || build
    flock -u 9
  fi
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
