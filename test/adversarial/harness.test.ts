// The oracle itself: what the recording relay reports is what server-everything received.
import { openSession, post, type RecordedEverything, closeGuarded, startGuarded } from './harness.js';
import type { TestSidecar } from '../support/sidecar.js';

let up: RecordedEverything;
let tg: TestSidecar;

beforeAll(async () => {
  ({ up, tg } = await startGuarded(`
sources:
  - name: e
    url: \${UPSTREAM}
    expose: { mode: blocklist, tools: ["get-env"] }
defaultAction: forward
`));
}, 60_000);
afterAll(() => closeGuarded(tg, up));

test('a forwarded call is recorded byte for byte; a hidden one never names its tool upstream', async () => {
  const h = await openSession(tg.mcpUrl('e'));
  up.clear();
  const echo = await post(tg.mcpUrl('e'), h, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'seen' } } });
  expect(JSON.stringify(echo.messages)).toContain('Echo: seen');
  expect(up.bodies()).toContainEqual({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'seen' } } });
  up.clear();
  await post(tg.mcpUrl('e'), h, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get-env', arguments: {} } });
  expect(up.received).toHaveLength(1);
  expect(up.everything()).not.toContain('get-env');
}, 30_000);
