// Rate limits against an agent that varies names (security review of issue 10): a limit protects
// the upstream from load, so new tool names and new query strings on one resource must not buy
// more calls. The oracle is what server-everything received through the recording relay: every
// tools/call, resources/read and prompts/get it was sent, whatever the sidecar answered.
import { readFileSync } from 'node:fs';
import type { TestSidecar } from '../support/sidecar.js';
import { closeGuarded, openSession, post, startGuard, startGuarded, type RecordedEverything } from './harness.js';

let up: RecordedEverything;
let tg: TestSidecar;

beforeAll(async () => {
  ({ up, tg } = await startGuarded(`
sources:
  - name: vary
    url: \${UPSTREAM}
  - name: each
    url: \${UPSTREAM}
defaultAction: forward
rateLimits:
  - { name: vary-tools, match: { source: vary, tool: "*" }, perMinute: 1, burst: 3 }
  - { name: vary-reads, match: { source: vary, resource: "demo://resource/*" }, perMinute: 1, burst: 3 }
  - { name: each-tool, match: { source: each, tool: "*" }, per: target, perMinute: 1, burst: 2 }
  - { name: each-total, match: { source: each, tool: "*" }, perMinute: 1, burst: 5 }
  - { name: each-read, match: { source: each, resource: "demo://resource/*" }, per: target, perMinute: 1, burst: 2 }
`));
}, 60_000);
afterAll(() => closeGuarded(tg, up));

/** A session on `source`, opened before the upstream's record is cleared (the counts start after it). */
async function freshSession(source: string): Promise<Record<string, string>> {
  const h = await openSession(tg.mcpUrl(source));
  up.clear();
  return h;
}

type Msg = { id?: number; method?: string; params?: { name?: string; uri?: string }; error?: { code: number; data?: { rule?: string } } };

/** The messages of `method` the upstream received since the last clear. */
function received(method: string): Msg[] {
  return up
    .bodies()
    .flatMap((b) => (Array.isArray(b) ? b : [b]))
    .filter((m): m is Msg => (m as Msg)?.method === method);
}

const callTool = (id: number, name: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: { message: 'x' } } });
const readUri = (id: number, uri: string) => ({ jsonrpc: '2.0', id, method: 'resources/read', params: { uri } });
const getPrompt = (id: number, name: string) => ({ jsonrpc: '2.0', id, method: 'prompts/get', params: { name } });

/** The `rule` of each -32026 answer, by id. */
function refusals(messages: unknown[]): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of messages as Msg[]) if (m.error?.code === -32026) out.set(m.id!, m.error.data!.rule!);
  return out;
}

describe('per: limit (the default): varying names gets no more calls', () => {
  let h: Record<string, string>;
  beforeAll(async () => {
    h = await freshSession('vary');
  });

  test('50 tool names in a batch and 20 more one by one: the upstream gets the burst (3) in all', async () => {
    const names = ['echo', 'get-sum', 'Echo', 'echo ', ...Array.from({ length: 46 }, (_, i) => `tool-${i}`)];
    const r = await post(
      tg.mcpUrl('vary'),
      h,
      names.map((n, i) => callTool(i + 1, n)),
    );
    const refused = refusals(r.messages);
    expect(refused.size).toBe(47);
    for (const rule of refused.values()) expect(rule).toBe('vary-tools');
    for (let i = 0; i < 20; i++) {
      const one = await post(tg.mcpUrl('vary'), h, callTool(100 + i, `single-${i}`));
      expect(refusals(one.messages).get(100 + i)).toBe('vary-tools');
    }
    expect(received('tools/call').map((m) => m.params!.name)).toEqual(['echo', 'get-sum', 'Echo']);
  });

  test('1000 query strings on one resource: the upstream gets the burst (3) in all, and the sidecar keeps one bucket per limit', async () => {
    const uri = (i: number) => `demo://resource/dynamic/text/1?n=${i}`;
    let refused = 0;
    for (let batch = 0; batch < 10; batch++) {
      const r = await post(
        tg.mcpUrl('vary'),
        h,
        Array.from({ length: 100 }, (_, i) => readUri(batch * 100 + i + 1, uri(batch * 100 + i))),
      );
      for (const rule of refusals(r.messages).values()) {
        expect(rule).toBe('vary-reads');
        refused++;
      }
    }
    expect(refused).toBe(997);
    expect(received('resources/read').map((m) => m.params!.uri)).toEqual([uri(0), uri(1), uri(2)]);
    const metrics = await (await fetch(`${tg.admin}/metrics`)).text();
    expect(metrics).toMatch(/thoughtgate_sidecar_rate_limit_buckets 2\n/);
  });
});

describe('per: target: each name its own bucket, a limit-wide limit beside it the total', () => {
  let h: Record<string, string>;
  beforeAll(async () => {
    h = await freshSession('each');
  });

  test('two tools are isolated from each other; the limit-wide bucket still caps the names together', async () => {
    const order = ['echo', 'echo', 'echo', 'get-sum', 'get-sum', 'get-tiny-image', 'get-annotated-message', 'tool-x'];
    const answers: (string | null)[] = [];
    for (const [i, name] of order.entries()) {
      const r = await post(tg.mcpUrl('each'), h, callTool(i + 1, name));
      answers.push(refusals(r.messages).get(i + 1) ?? null);
    }
    // echo's third call waits for echo's bucket; get-sum still has its own two; the sixth name
    // passes as the fifth call in all, then each-total (burst 5) refuses every name.
    expect(answers).toEqual([null, null, 'each-tool', null, null, null, 'each-total', 'each-total']);
    expect(received('tools/call').map((m) => m.params!.name)).toEqual(['echo', 'echo', 'get-sum', 'get-sum', 'get-tiny-image']);
  });

  test('a resource is one target whatever its query string; another resource has its own bucket', async () => {
    const r = await post(tg.mcpUrl('each'), h, [
      ...Array.from({ length: 10 }, (_, i) => readUri(i + 1, `demo://resource/dynamic/text/1?n=${i}`)),
      readUri(11, 'demo://resource/dynamic/text/2'),
    ]);
    const refused = refusals(r.messages);
    expect([...refused.keys()].sort((a, b) => a - b)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    for (const rule of refused.values()) expect(rule).toBe('each-read');
    expect(received('resources/read').map((m) => m.params!.uri)).toEqual([
      'demo://resource/dynamic/text/1?n=0',
      'demo://resource/dynamic/text/1?n=1',
      'demo://resource/dynamic/text/2',
    ]);
  });
});

describe("the docs' rateLimits example behaves as docs/configuration.md says", () => {
  let docs: TestSidecar;
  let h: Record<string, string>;
  beforeAll(async () => {
    const md = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const section = md.slice(md.indexOf('## `rateLimits`'));
    const example = section.slice(section.indexOf('```yaml\n') + 8, section.indexOf('```\n', section.indexOf('```yaml\n') + 8));
    expect(example).toMatch(/^rateLimits:\n[\s\S]*name: any-call/);
    docs = await startGuard(up, `sources:\n  - name: github\n    url: \${UPSTREAM}\ndefaultAction: forward\n${example}`);
    h = await openSession(docs.mcpUrl('github'));
    up.clear();
  }, 60_000);
  afterAll(() => docs?.close());

  test('github-search-each is per search tool, github-writes 3 at once over all write tools, any-call 20 at once over every name, tool, resource and prompt', async () => {
    const searches = ['search_code', 'search_code', 'search_code', 'search_code', 'search_code', 'search_code', 'search_issues'];
    const writes = ['create_issue', 'update_issue', 'delete_branch', 'create_pull_request'];
    const tools = Array.from({ length: 50 }, (_, i) => `tool_${i}`);
    const batch = [
      ...searches.map((n, i) => callTool(10 + i, n)),
      ...writes.map((n, i) => callTool(i + 1, n)),
      ...tools.map((n, i) => callTool(100 + i, n)),
      ...Array.from({ length: 10 }, (_, i) => readUri(200 + i, `demo://resource/dynamic/text/1?n=${i}`)),
      ...Array.from({ length: 10 }, (_, i) => getPrompt(300 + i, `prompt-${i}`)),
    ];
    const r = await post(docs.mcpUrl('github'), h, batch);
    const refused = refusals(r.messages);
    // search_code's own bucket holds 5; search_issues has its own.
    expect(refused.get(15)).toBe('github-search-each');
    expect(refused.has(16)).toBe(false);
    // The fourth write waits for github-writes (and so takes no any-call token).
    expect(refused.get(4)).toBe('github-writes');
    // 6 searches + 3 writes + 11 other tools make any-call's burst of 20; every later name, read and prompt waits.
    const forwardedTools = tools.filter((_, i) => !refused.has(100 + i));
    expect(forwardedTools).toEqual(tools.slice(0, 11));
    for (const [id, rule] of refused) if (id !== 4 && id !== 15) expect(rule).toBe('any-call');
    expect(refused.size).toBe(2 + 39 + 10 + 10);
    const sent = [...received('tools/call'), ...received('resources/read'), ...received('prompts/get')];
    expect(sent.map((m) => m.params!.name)).toEqual([...searches.slice(0, 5), 'search_issues', ...writes.slice(0, 3), ...tools.slice(0, 11)]);
  });
});
