#!/usr/bin/env bash
# `make bench`: every benchmark, printing `name value` lines. The sidecar runs on Node 24 (the
# runtime of our images) when npx can fetch it, else on this node; the script says which.
#   scripts/bench.sh [name...]   only the named benchmarks (proxy, cedar, slack, jitter, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
node24=$(npx -y node@24 -e 'process.stdout.write(process.execPath)' 2>/dev/null || true)
export BENCH_NODE=${BENCH_NODE:-${node24:-$(command -v node)}}
only=" $* "
wanted() { [[ "$only" == "  " || "$only" == *" $1 "* ]]; }
echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# sidecar node: $("$BENCH_NODE" --version), tools node: $(node --version)"
if wanted proxy; then
  # Pins itself (load generator, upstream) and the proxy under test with taskset when it can.
  echo "## proxy"
  node dist/bench/proxy.js
fi
if wanted cedar; then
  echo "## cedar (on $("$BENCH_NODE" --version))"
  "$BENCH_NODE" dist/bench/cedar.js
fi
if wanted slack; then
  echo "## slack"
  node dist/bench/slack.js
fi
for extra in dist/bench/*.js; do
  name=$(basename "$extra" .js)
  case "$name" in proxy | cedar | slack) continue ;; esac
  wanted "$name" || continue
  echo "## $name"
  node "$extra"
done
# Not built (it drives root-only network namespaces with the e2e harness's scripts).
if wanted capture-connect; then
  echo "## capture-connect"
  if [[ "$(id -u)" == 0 ]]; then node bench/capture-connect.mjs; else echo "# not run: needs root (network namespaces, iptables)"; fi
fi
