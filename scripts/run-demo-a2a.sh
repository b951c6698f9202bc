#!/usr/bin/env bash
# `make run DEMO=a2a` (or scripts/run-demo.sh a2a): the example A2A agent (examples/a2a/agent.mjs,
# on the official JS SDK), ThoughtGate in front of it with examples/a2a/thoughtgate.yaml, and, unless
# SLACK_BOT_TOKEN is set, a local fake Slack to approve refunds in (test/fakes/slack-server.ts,
# bundled into .dev/). Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
AGENT_PORT=${AGENT_PORT:-9999}
FAKE_SLACK_PORT=${FAKE_SLACK_PORT:-3999}
export AGENT_URL="http://127.0.0.1:${AGENT_PORT}"
mkdir -p .dev
pids=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT

wait_port() { # port pid log
  for _ in $(seq 1 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then echo "$3 did not start:"; cat "$3"; exit 1; fi
    sleep 0.1
  done
}

node examples/a2a/agent.mjs "$AGENT_PORT" >.dev/a2a-agent.log 2>&1 &
pids+=($!)
wait_port "$AGENT_PORT" "${pids[-1]}" .dev/a2a-agent.log

if [[ -z "${SLACK_BOT_TOKEN:-}" ]]; then
  node_modules/.bin/esbuild test/fakes/slack-server.ts --bundle --platform=node --format=esm --packages=external \
    --outfile=.dev/fake-slack.mjs --log-level=error
  cat >.dev/fake-slack-seed.json <<'SEED'
{ "tokens": { "xoxb-demo": { "userId": "UBOT", "team": "Demo" } },
  "channels": [{ "id": "C0APPROVE", "name": "approvals" }],
  "users": [{ "id": "U0ALICE", "name": "alice", "realName": "Alice Approver" }] }
SEED
  # Its output (each posted message with a ready curl line to approve it) comes to this terminal.
  PORT="$FAKE_SLACK_PORT" FAKE_SLACK_SEED=.dev/fake-slack-seed.json node .dev/fake-slack.mjs &
  pids+=($!)
  wait_port "$FAKE_SLACK_PORT" "${pids[-1]}" /dev/null
  export SLACK_BOT_TOKEN=xoxb-demo SLACK_API_URL="http://127.0.0.1:${FAKE_SLACK_PORT}/api/" SLACK_CHANNEL=C0APPROVE SLACK_APPROVER=U0ALICE
  slack="fake Slack at $SLACK_API_URL: approve with the curl line it prints for each message"
else
  slack="Slack channel ${SLACK_CHANNEL:-C0APPROVE}, approver ${SLACK_APPROVER:-U0ALICE}"
fi

base=http://127.0.0.1:7467/a2a/billing
cat <<MSG

  A2A agent     $AGENT_URL/  (examples/a2a/agent.mjs; log .dev/a2a-agent.log)
  ThoughtGate   $base/  (the agent's base URL for clients: mind the trailing slash)
  approvals     $slack

  Try, in another terminal:
    curl -s $base/.well-known/agent-card.json -H 'A2A-Version: 1.0'     # the card: skill export hidden
    curl -s $base/a2a/jsonrpc -H 'content-type: application/json' -H 'A2A-Version: 1.0' -d \\
      '{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"invoice ACME"}],"metadata":{"skill":"invoice","amount":50}}}}'
    # amount 5000: denied by Cedar; skill refund: held until approved in Slack, then sent once
  Policy tests: node dist/cli.js test examples/a2a/billing.test.yaml

MSG
node dist/cli.js sidecar --config examples/a2a/thoughtgate.yaml
