// Hot reload: a valid change applies without restart; an invalid one is logged and counted and the
// last good config keeps serving; a request in flight finishes on the snapshot it started with.
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { createLogger } from '../lib/log.js';
import { startSidecar, type ConfigUpdate } from '../sidecar/sidecar.js';
import { IdentitySchema, PolicyDocumentSchema } from '../api/config.js';
import { connectClient, rawPost, startTestSidecar } from './support/sidecar.js';
import { startUpstream, type TestUpstream } from './support/upstream.js';

const config = (url: string, deny: string) => `
sources:
  - name: up
    url: ${url}
rules:
  - name: deny-one
    match: { tool: "${deny}" }
    action: deny
defaultAction: forward
`;

async function metric(admin: string, name: string): Promise<string[]> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name));
}

describe('hot reload', () => {
  let upstream: TestUpstream;
  beforeAll(async () => {
    upstream = await startUpstream({ stateful: true });
  });
  afterAll(async () => {
    await upstream.close();
  });

  test('a valid change applies without restart, on the same client session', async () => {
    const tg = await startTestSidecar(config(upstream.url, 'echo'));
    try {
      const { client } = await connectClient(tg.mcpUrl('up'));
      await expect(client.callTool({ name: 'echo', arguments: { message: 'a' } })).rejects.toThrow(McpError);
      const gen = tg.sidecar.snapshot()!.generation;
      tg.writeConfig(config(upstream.url, 'add'));
      await tg.waitFor(() => tg.sidecar.snapshot()!.generation > gen, 'the reload');
      expect((await client.callTool({ name: 'echo', arguments: { message: 'a' } })).content).toEqual([{ type: 'text', text: 'echo: a' }]);
      await expect(client.callTool({ name: 'add', arguments: { a: 1, b: 1 } })).rejects.toThrow(McpError);
      expect(await metric(tg.admin, 'thoughtgate_sidecar_config_reloads_total{result="success"}')).toEqual([
        'thoughtgate_sidecar_config_reloads_total{result="success"} 2',
      ]);
      const hash = tg.sidecar.snapshot()!.hash;
      expect(await metric(tg.admin, 'thoughtgate_sidecar_config_info')).toContainEqual(`thoughtgate_sidecar_config_info{hash="${hash}",policy="none"} 1`);
      expect(tg.logs().some((l) => l['msg'] === 'config reloaded' && l['hash'] === hash)).toBe(true);
      await client.close();
    } finally {
      await tg.close();
    }
  });

  test('an invalid change is rejected with a log line and a metric; the last good config keeps serving', async () => {
    const tg = await startTestSidecar(config(upstream.url, 'echo'));
    try {
      const good = tg.sidecar.snapshot()!;
      const rejections = () => tg.logs().filter((l) => l['msg'] === 'config rejected; the last good config keeps serving').length;
      for (const broken of [
        'sources: [ {', // YAML syntax
        config(upstream.url, 'echo').replace('action: deny', 'action: block'), // schema
        `${config(upstream.url, 'echo')}cedar:\n  policies: "permit(principal, action, resource"\n`, // Cedar
      ]) {
        const before = rejections();
        tg.writeConfig(broken);
        await tg.waitFor(() => rejections() > before, 'the rejection');
      }
      expect(tg.sidecar.snapshot()).toBe(good);
      const rejected = tg.logs().filter((l) => l['msg'] === 'config rejected; the last good config keeps serving');
      expect(rejected.map((l) => (l['errors'] as string[])[0])).toEqual([
        expect.stringMatching(/thoughtgate\.yaml:1:\d+: /),
        expect.stringMatching(/rules\[0\]\.action: expected one of forward, deny, approve, policy/),
        expect.stringMatching(/cedar/),
      ]);
      expect(rejected.every((l) => l['servingHash'] === good.hash)).toBe(true);
      expect(await metric(tg.admin, 'thoughtgate_sidecar_config_reloads_total{result="error"}')).toEqual([
        'thoughtgate_sidecar_config_reloads_total{result="error"} 3',
      ]);
      // Still enforcing the good config: echo is denied here…
      const denied = await rawPost(tg.mcpUrl('up'), '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}');
      expect(JSON.parse(denied.text).error.code).toBe(-32003);
      // …and add is forwarded (the stateful upstream then refuses a call without a session).
      const forwarded = await rawPost(tg.mcpUrl('up'), '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}');
      expect(forwarded.status).toBe(400);
      expect(upstream.requests.at(-1)!.body).toContain('"add"');
      const ready: any = await (await fetch(`${tg.admin}/ready`)).json();
      expect(ready.lastError.errors[0]).toMatch(/cedar/);
    } finally {
      await tg.close();
    }
  });

  test('each snapshot owns its Cedar policies: a failed compile leaves them alone, a replaced one is released one swap later', async () => {
    const withCedar = (id: string) =>
      `${config(upstream.url, 'delete_file').replace('defaultAction: forward', 'defaultAction: policy')}cedar:\n  policies: '@id("${id}") permit(principal, action, resource);'\n`;
    const tg = await startTestSidecar(withCedar('first'));
    try {
      const reload = async (text: string) => {
        const gen = tg.sidecar.snapshot()!.generation;
        tg.writeConfig(text);
        await tg.waitFor(() => tg.sidecar.snapshot()!.generation > gen, 'the reload');
        return tg.sidecar.snapshot()!;
      };
      const first = tg.sidecar.snapshot()!;
      const rejections = () => tg.logs().filter((l) => l['msg'] === 'config rejected; the last good config keeps serving').length;
      tg.writeConfig(`${config(upstream.url, 'delete_file')}cedar:\n  policies: "permit(principal, action, resource"\n`);
      await tg.waitFor(() => rejections() > 0, 'the rejection');
      expect(first.gates.cedar!.disposed).toBe(false);
      const second = await reload(withCedar('second'));
      // A request that took `first` before the swap may still evaluate with it.
      expect([first.gates.cedar!.disposed, second.gates.cedar!.disposed]).toEqual([false, false]);
      const third = await reload(withCedar('third'));
      expect([first.gates.cedar!.disposed, second.gates.cedar!.disposed, third.gates.cedar!.disposed]).toEqual([true, false, false]);
      // The ids first held went back to the pool and serve a later snapshot, which decides with its own policies.
      const fourth = await reload(withCedar('fourth'));
      expect(fourth.gates.cedar!.sets.map((x) => x.id)).toEqual(first.gates.cedar!.sets.map((x) => x.id));
      expect(second.gates.cedar!.disposed).toBe(true);
      // Cedar permits echo with fourth's policy in the reused ids: forwarded (the stateful upstream
      // then refuses a call without a session), not denied by an emptied set (-32004).
      const r = await rawPost(tg.mcpUrl('up'), '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}');
      expect(r.status).toBe(400);
      expect(upstream.requests.at(-1)!.body).toContain('"echo"');
    } finally {
      await tg.close();
    }
  });

  test('a call in flight during a reload finishes on the old snapshot', async () => {
    const tg = await startTestSidecar(config(upstream.url, 'delete_file'));
    try {
      const { client } = await connectClient(tg.mcpUrl('up'));
      const pending = client.callTool({ name: 'wait_for_release', arguments: {} });
      await upstream.waiting();
      // The new config would deny the call that is already running.
      const gen = tg.sidecar.snapshot()!.generation;
      tg.writeConfig(config(upstream.url, 'wait_for_release'));
      await tg.waitFor(() => tg.sidecar.snapshot()!.generation > gen, 'the reload');
      upstream.release();
      expect((await pending).content).toEqual([{ type: 'text', text: 'released' }]);
      // A new call sees the new config.
      await expect(client.callTool({ name: 'wait_for_release', arguments: {} })).rejects.toThrow(/-32003/);
      await client.close();
    } finally {
      await tg.close();
    }
  });
});

describe('no configuration', () => {
  test('with no config at all, governed calls are denied with a clear error and /ready is false', async () => {
    const lines: string[] = [];
    const sc = await startSidecar({
      port: 0,
      adminPort: 0,
      bind: '127.0.0.1',
      log: createLogger('debug', (l) => lines.push(l)),
      provider: { description: 'nothing (test)', start: () => undefined, close: () => undefined },
    });
    try {
      const r = await rawPost(
        `http://127.0.0.1:${sc.port}/mcp/any`,
        '[{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x"}},{"jsonrpc":"2.0","method":"notifications/initialized"}]',
      );
      expect(r.status).toBe(200);
      const msgs = JSON.parse(r.text);
      expect(msgs).toHaveLength(1);
      expect(msgs[0]).toMatchObject({ id: 'a', error: { code: -32011, data: { reason: 'no configuration has been loaded yet' } } });
      const ready = await fetch(`http://127.0.0.1:${sc.adminPort}/ready`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as any).config.loaded).toBe(false);
      expect((await fetch(`http://127.0.0.1:${sc.adminPort}/health`)).status).toBe(200);
    } finally {
      await sc.close();
    }
  });

  test('a config withdrawn after a good one (e.g. ConfigMap deleted) leaves the sidecar denying, not serving stale rules', async () => {
    const upstream = await startUpstream({ stateful: false, json: true });
    let emit: (u: ConfigUpdate) => void = () => undefined;
    const sc = await startSidecar({
      port: 0,
      adminPort: 0,
      bind: '127.0.0.1',
      log: createLogger('error', () => undefined),
      provider: {
        description: 'test provider',
        start: (cb) => {
          emit = cb;
        },
        close: () => undefined,
      },
    });
    try {
      const doc = PolicyDocumentSchema.parse({ sources: [{ name: 'up', url: upstream.url }], defaultAction: 'forward' });
      emit({ ok: true, doc, identity: IdentitySchema.parse({}), hash: 'h1', origin: 'test' });
      const call = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}';
      expect(JSON.parse((await rawPost(`http://127.0.0.1:${sc.port}/mcp/up`, call)).text).result.content[0].text).toBe('echo: x');
      emit({ ok: 'none', reason: 'ConfigMap team-a/thoughtgate-config was deleted', origin: 'test' });
      const denied = JSON.parse((await rawPost(`http://127.0.0.1:${sc.port}/mcp/up`, call)).text);
      expect(denied.error).toMatchObject({ code: -32011, data: { reason: expect.not.stringContaining('thoughtgate-config') } });
      expect((await fetch(`http://127.0.0.1:${sc.adminPort}/ready`)).status).toBe(503);
    } finally {
      await sc.close();
      await upstream.close();
    }
  });
});
