#!/usr/bin/env bash
# Builds and caches promtool (Prometheus's rule checker) for the chart's alert tests
# (test/chart-alerts.test.ts: `promtool check rules` and `promtool test rules` on the chart's
# PrometheusRule), with Go and the module proxy only: `go install` of the pinned version.
#
#   scripts/promtool-tools.sh install   build into the cache unless already built; last stdout line = the promtool binary
#   scripts/promtool-tools.sh bin       print the path of the promtool binary (no build)
#
# Cache: ${THOUGHTGATE_CACHE:-$HOME/.cache/thoughtgate}/promtool-<version>/bin/promtool. A stamp
# file holds a hash of what decides the binary (version, build flags); a change rebuilds.
# All build chatter goes to stderr. Same discipline as scripts/k8s-tools.sh.
set -euo pipefail

cache_root="${THOUGHTGATE_CACHE:-$HOME/.cache/thoughtgate}"

die() { echo "promtool-tools: $*" >&2; exit 1; }

# github.com/prometheus/prometheus is tagged v0.3xx.y for Prometheus 3.xx.y (the Go module cannot
# carry v3 without a /v3 path).
version="v0.316.0"
[[ "$version" =~ ^v0\.([0-9])([0-9]{2})\.([0-9]+)$ ]] || die "unexpected github.com/prometheus/prometheus version $version"
release="${BASH_REMATCH[1]}.$((10#${BASH_REMATCH[2]})).${BASH_REMATCH[3]}"
base_dir="$cache_root/promtool-$version"
bin_dir="$base_dir/bin"
promtool_bin="$bin_dir/promtool"
# What `promtool --version` prints (3.16.0 for v0.316.0), as Prometheus's release builds stamp it.
# -s -w: no symbol table / DWARF.
ldflags="-s -w -X github.com/prometheus/common/version.Version=$release"

stamp_value() { echo "github.com/prometheus/prometheus/cmd/promtool@$version ldflags=$ldflags" | sha256sum | cut -d' ' -f1; }

is_built() {
  [[ -f "$base_dir/stamp" && "$(cat "$base_dir/stamp")" == "$(stamp_value)" && -x "$promtool_bin" ]]
}

build() {
  command -v go >/dev/null || die "Go is required to build promtool $version (https://go.dev/dl)"
  local tmp start
  start=$SECONDS
  tmp="$(mktemp -d "$base_dir/build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "promtool-tools: building promtool $version into $bin_dir (first time: several minutes)" >&2
  (
    # Outside any module (no go.mod of ours pins Prometheus): -mod=mod lets `go install pkg@version`
    # resolve the module's own go.mod/go.sum, checked against the checksum database.
    # GOWORK=off: a go.work higher up must not interfere. CGO_ENABLED=0: a static binary.
    cd "$tmp" || exit 1
    export GOFLAGS="-mod=mod -buildvcs=false" GOWORK=off CGO_ENABLED=0 GOBIN="$tmp"
    go install -trimpath -ldflags="$ldflags" "github.com/prometheus/prometheus/cmd/promtool@$version"
  ) >&2
  [[ -x "$tmp/promtool" ]] || die "the build did not produce promtool"
  rm -rf "${bin_dir:?}"
  mv "$tmp" "$bin_dir"
  trap - EXIT
  chmod 755 "$bin_dir"
  stamp_value > "$base_dir/stamp"
  echo "promtool-tools: built in $((SECONDS - start))s" >&2
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
  echo "$promtool_bin"
}

# Everything runs from main, called on the last line: bash reads a script as it runs, so a
# script edited (or checked out) while it runs would otherwise execute a mix of old and new text.
main() {
  case "${1:-}" in
    install) install ;;
    bin) echo "$promtool_bin" ;;
    *) echo "usage: $0 install|bin" >&2; exit 2 ;;
  esac
}

main "$@"; exit $?
