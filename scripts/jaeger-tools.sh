#!/usr/bin/env bash
# Builds and caches Jaeger v2 (an OpenTelemetry Collector distribution: OTLP/HTTP receiver,
# in-memory storage, a query HTTP API), the collector of the tracing test
# (test/tracing-jaeger.test.ts, test/support/jaeger.ts), from the pinned module e2e/jaeger/go.mod
# (its `tool` line), with Go and the module proxy only.
#
#   scripts/jaeger-tools.sh install   build into the cache unless already built; last stdout line = the jaeger binary
#   scripts/jaeger-tools.sh bin       print the path of the jaeger binary (no build)
#
# Cache: ${THOUGHTGATE_CACHE:-$HOME/.cache/thoughtgate}/jaeger-<version>/bin/jaeger. A stamp file
# holds a hash of everything that decides the binary (go.mod, go.sum, build flags); a change
# rebuilds. All build chatter goes to stderr. Same discipline as scripts/helm-tools.sh.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mod_dir="$repo_root/e2e/jaeger"
cache_root="${THOUGHTGATE_CACHE:-$HOME/.cache/thoughtgate}"

die() { echo "jaeger-tools: $*" >&2; exit 1; }

version="$(sed -n 's#^[[:space:]]*github\.com/jaegertracing/jaeger \(v[0-9][^ ]*\).*#\1#p' "$mod_dir/go.mod" | head -n1)"
[[ "$version" =~ ^v1\.[0-9]+\.[0-9]+$ ]] || die "no github.com/jaegertracing/jaeger v1.x requirement in $mod_dir/go.mod"
base_dir="$cache_root/jaeger-$version"
jaeger_bin="$base_dir/bin/jaeger"

tool="jaeger-tools"
what="jaeger $version"
binaries=(jaeger)
packages=(github.com/jaegertracing/jaeger/cmd/jaeger)
# -s -w: no symbol table / DWARF (the test needs no version stamp).
ldflags="-s -w"
hash_extra=()
# shellcheck source=lib/go-tools.sh
source "$repo_root/scripts/lib/go-tools.sh"

# Everything runs from main, called on the last line: bash reads a script as it runs, so a
# script edited (or checked out) while it runs would otherwise execute a mix of old and new text.
main() {
  case "${1:-}" in
    install)
      go_tools_install
      echo "$jaeger_bin"
      ;;
    bin) echo "$jaeger_bin" ;;
    *) echo "usage: $0 install|bin" >&2; exit 2 ;;
  esac
}

main "$@"; exit $?
