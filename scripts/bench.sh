#!/usr/bin/env bash
# `make bench`: every benchmark, printing `name value` lines. The sidecar runs on Node 24 (the
# runtime of our images) when npx can fetch it, else on this node; the script says which.
set -euo pipefail
cd "$(dirname "$0")/.."
node24=$(npx -y node@24 -e 'process.stdout.write(process.execPath)' 2>/dev/null || true)
export BENCH_NODE=${BENCH_NODE:-${node24:-$(command -v node)}}
echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "# sidecar node: $("$BENCH_NODE" --version), tools node: $(node --version)"
echo "## proxy"
node dist/bench/proxy.js
echo "## cedar (on $("$BENCH_NODE" --version))"
"$BENCH_NODE" dist/bench/cedar.js
echo "## slack"
node dist/bench/slack.js
for extra in dist/bench/*.js; do
  case "$extra" in dist/bench/proxy.js|dist/bench/cedar.js|dist/bench/slack.js) continue ;; esac
  echo "## $(basename "$extra" .js)"
  node "$extra"
done
# Not built (it drives root-only network namespaces with the e2e harness's scripts).
echo "## capture-connect"
if [[ "$(id -u)" == 0 ]]; then node bench/capture-connect.mjs; else echo "# not run: needs root (network namespaces, iptables)"; fi
