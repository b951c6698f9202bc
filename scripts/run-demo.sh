#!/usr/bin/env bash
# `make run`: the reference MCP server (server-everything, Streamable HTTP) and ThoughtGate in front
# of it with examples/thoughtgate.yaml. Ctrl-C stops both.
# `make run DEMO=a2a` (or `scripts/run-demo.sh a2a`): the A2A demo instead (scripts/run-demo-a2a.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-${DEMO:-}}" == a2a ]]; then exec scripts/run-demo-a2a.sh; fi
EVERYTHING_PORT=${EVERYTHING_PORT:-3001}
export EVERYTHING_URL="http://127.0.0.1:${EVERYTHING_PORT}/mcp"

PORT="$EVERYTHING_PORT" node node_modules/@modelcontextprotocol/server-everything/dist/index.js streamableHttp >.dev-everything.log 2>&1 &
everything=$!
trap 'kill $everything 2>/dev/null || true; rm -f .dev-everything.log' EXIT
for _ in $(seq 1 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/"$EVERYTHING_PORT") 2>/dev/null; then break; fi
  if ! kill -0 $everything 2>/dev/null; then echo "server-everything did not start:"; cat .dev-everything.log; exit 1; fi
  sleep 0.1
done

cat <<MSG

  server-everything  $EVERYTHING_URL  (the real MCP server)
  ThoughtGate        http://127.0.0.1:7467/mcp/everything  (point your MCP client here)
  admin              http://127.0.0.1:7469/ready  /metrics

  Try, in another terminal:
    npx @modelcontextprotocol/inspector --cli http://127.0.0.1:7467/mcp/everything --transport http --method tools/list
    npx @modelcontextprotocol/inspector --cli http://127.0.0.1:7467/mcp/everything --transport http \\
        --method tools/call --tool-name get-sum --tool-arg a=5 --tool-arg b=3      # permitted by Cedar
    npx @modelcontextprotocol/inspector --cli http://127.0.0.1:7467/mcp/everything --transport http \\
        --method tools/call --tool-name get-sum --tool-arg a=5000 --tool-arg b=3   # denied by Cedar
  Edit examples/thoughtgate.yaml while it runs: changes apply without a restart.

MSG
node dist/cli.js sidecar --config examples/thoughtgate.yaml
