// The built `thoughtgate sidecar` with approvalChannels in its file: the CLI wires the standalone
// Slack backend (token from the environment) and a held call waits for a real reaction.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALICE, approvalConfig, CHANNEL, startApprovalUpstream, TOKEN } from './approvals-harness.js';
import { startFakeSlack } from './fakes/slack-server.js';
import { connectClient } from './support/sidecar.js';
import { startCliSidecar } from './support/processes.js';

test('the CLI runs approvals standalone: a held call proceeds once an approver reacts in Slack', async () => {
  const fake = await startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT' } },
    channels: [{ id: CHANNEL, name: 'approvals' }],
    users: [{ id: ALICE, name: 'alice' }],
  });
  const upstream = await startApprovalUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'tg-approvals-cli-'));
  const file = join(dir, 'thoughtgate.yaml');
  writeFileSync(file, approvalConfig(upstream.url, fake.url));
  const tg = await startCliSidecar(file, { TG_TEST_SLACK_TOKEN: TOKEN });
  try {
    const { client } = await connectClient(`${tg.base}/mcp/up`);
    const call = client.callTool({ name: 'deploy', arguments: { service: 'api', version: '1.2.3' } }, undefined, { timeout: 60_000 });
    let ts: string | undefined;
    while (!ts) {
      ts = fake.messages(CHANNEL)[0]?.ts;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(upstream.calls).toHaveLength(0); // held: nothing forwarded before the decision
    fake.addReaction(CHANNEL, ts, 'white_check_mark', ALICE);
    const r = await call;
    expect(JSON.stringify(r.content)).toContain('api');
    expect(upstream.calls.map((c) => [c.tool, c.args])).toEqual([['deploy', { service: 'api', version: '1.2.3' }]]);
    await client.close();
  } finally {
    await tg.proc.stop();
    await upstream.close();
    await fake.close();
  }
}, 60_000);
