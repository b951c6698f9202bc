#!/usr/bin/env bash
# Builds and caches Jaeger v2 (an OpenTelemetry Collector distribution: OTLP/HTTP receiver, in-memory
# storage, a query HTTP API) for the tracing test (e2e/tracing.test.ts), with Go and the module proxy
# only. Jaeger's go.mod carries replace directives, so `go install pkg@version` refuses it: the build
# runs `go get -tool` in a scratch module and `go build` of the tool there.
#
#   scripts/jaeger-tools.sh install   build into the cache unless already built; last stdout line = the jaeger binary
#   scripts/jaeger-tools.sh bin       print the path of the jaeger binary (no build)
#
# Cache: ${THOUGHTGATE_CACHE:-$HOME/.cache/thoughtgate}/jaeger-<version>/bin/jaeger. A stamp file
# holds a hash of what decides the binary (version, build flags); a change rebuilds.
# All build chatter goes to stderr. Same discipline as scripts/promtool-tools.sh.
set -euo pipefail

cache_root="${THOUGHTGATE_CACHE:-$HOME/.cache/thoughtgate}"

die() { echo "jaeger-tools: $*" >&2; exit 1; }

# v1.75.0 is the module version of Jaeger v2.12 (cmd/jaeger is the v2 binary).
version="v1.75.0"
base_dir="$cache_root/jaeger-$version"
bin_dir="$base_dir/bin"
jaeger_bin="$bin_dir/jaeger"
# -s -w: no symbol table / DWARF.
ldflags="-s -w"

stamp_value() { echo "github.com/jaegertracing/jaeger/cmd/jaeger@$version ldflags=$ldflags" | sha256sum | cut -d' ' -f1; }

is_built() {
  [[ -f "$base_dir/stamp" && "$(cat "$base_dir/stamp")" == "$(stamp_value)" && -x "$jaeger_bin" ]]
}

build() {
  command -v go >/dev/null || die "Go is required to build jaeger $version (https://go.dev/dl)"
  local tmp start
  start=$SECONDS
  tmp="$(mktemp -d "$base_dir/build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "jaeger-tools: building jaeger $version into $bin_dir (first time: many minutes)" >&2
  (
    # A scratch module pins Jaeger as a tool; its go.sum is checked against the checksum database.
    # GOWORK=off: a go.work higher up must not interfere. CGO_ENABLED=0: a static binary.
    mkdir -p "$tmp/mod" && cd "$tmp/mod" || exit 1
    export GOFLAGS="-mod=mod -buildvcs=false" GOWORK=off CGO_ENABLED=0
    go mod init thoughtgate.local/jaeger-tool
    go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$version"
    go build -trimpath -ldflags="$ldflags" -o "$tmp/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
  ) >&2
  [[ -x "$tmp/jaeger" ]] || die "the build did not produce jaeger"
  rm -rf "$tmp/mod"
  rm -rf "${bin_dir:?}"
  mv "$tmp" "$bin_dir"
  trap - EXIT
  chmod 755 "$bin_dir"
  stamp_value > "$base_dir/stamp"
  echo "jaeger-tools: built in $((SECONDS - start))s" >&2
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
  echo "$jaeger_bin"
}

# Everything runs from main, called on the last line: bash reads a script as it runs, so a
# script edited (or checked out) while it runs would otherwise execute a mix of old and new text.
main() {
  case "${1:-}" in
    install) install ;;
    bin) echo "$jaeger_bin" ;;
    *) echo "usage: $0 install|bin" >&2; exit 2 ;;
  esac
}

main "$@"; exit $?
