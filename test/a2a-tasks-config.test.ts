// `a2a.tasks` (the A2A task owner table's bounds) in the three carriers: thoughtgate.yaml, a
// GovernancePolicy spec (validated and rendered by the operator) and the rendered ConfigMap, then
// compiled into the sidecar's snapshot with defaults filled in.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigFileSchema, PolicyDocumentSchema } from '../api/config.js';
import { formatIssues } from '../api/issues.js';
import { parseRendered, renderNamespace, validatePolicy } from '../operator/render.js';
import { createLogger } from '../lib/log.js';
import { TASK_OWNER_DEFAULTS } from '../sidecar/a2a/task-bounds.js';
import { openTaskOwnerStore } from '../sidecar/a2a/task-store.js';
import { TaskOwners } from '../sidecar/a2a/tasks.js';
import { compileSnapshot } from '../sidecar/snapshot.js';
import { configHash } from '../policy/config/load.js';
import { startTestSidecar } from './support/sidecar.js';

const errors = (doc: unknown): string[] => {
  const r = ConfigFileSchema.safeParse(doc);
  return r.success ? [] : formatIssues(r.error);
};
const identity = { namespace: 'default', serviceAccount: 'default', pod: 'standalone', labels: {} };
const tasks = { ttl: '2h', maxEntries: 1000, maxPerOwner: 100, maxOwners: 20, contextTombstone: '3d', maxTombstones: 500, rate: { perMinute: 30, burst: 5 } };

describe('config: a2a.tasks', () => {
  test('absent: nothing appears in the parsed document (it hashes as before) and the sidecar uses the defaults', () => {
    const parsed = ConfigFileSchema.parse({
      sources: [{ name: 'github', url: 'https://api.example.com/mcp', expose: { mode: 'allowlist', tools: ['get_*'] } }],
      rules: [{ match: { tool: 'delete_*' }, action: 'deny' }],
    });
    expect(Object.keys(parsed)).not.toContain('a2a');
    expect(configHash(parsed)).toBe('c4611ddef3d4a1c6');
    const r = compileSnapshot(PolicyDocumentSchema.parse({}), identity, { hash: 'h', generation: 1 });
    expect(r.ok && r.snapshot.a2aTasks).toEqual(TASK_OWNER_DEFAULTS);
    expect(TASK_OWNER_DEFAULTS).toEqual({
      maxEntries: 50_000,
      maxPerOwner: 5_000,
      maxOwners: 1_000,
      ttlMs: 86_400_000,
      contextTombstoneMs: 7 * 86_400_000,
      maxTombstones: 50_000,
      rate: { perMinute: 600, burst: 120 },
    });
  });

  test('set: compiled to the table bounds; unset keys keep their defaults', () => {
    const r = compileSnapshot(PolicyDocumentSchema.parse({ a2a: { tasks } }), identity, { hash: 'h', generation: 1 });
    expect(r.ok && r.snapshot.a2aTasks).toEqual({
      maxEntries: 1000,
      maxPerOwner: 100,
      maxOwners: 20,
      ttlMs: 7_200_000,
      contextTombstoneMs: 3 * 86_400_000,
      maxTombstones: 500,
      rate: { perMinute: 30, burst: 5 },
    });
    const partial = compileSnapshot(PolicyDocumentSchema.parse({ a2a: { tasks: { ttl: '30m' } } }), identity, { hash: 'h', generation: 1 });
    expect(partial.ok && partial.snapshot.a2aTasks).toEqual({ ...TASK_OWNER_DEFAULTS, ttlMs: 1_800_000 });
  });

  test.each([
    [{ a2a: { tasks: { ttl: '0s' } } }, /^a2a\.tasks\.ttl: must be greater than zero/],
    [{ a2a: { tasks: { ttl: 24 } } }, /^a2a\.tasks\.ttl: /],
    [
      { a2a: { tasks: { maxEntrys: 5 } } },
      /^a2a\.tasks: unknown key "maxEntrys" \(allowed: ttl, maxEntries, maxPerOwner, maxOwners, contextTombstone, maxTombstones, rate\)/,
    ],
    [{ a2a: { taskTtl: '1h' } }, /^a2a: unknown key "taskTtl" \(allowed: tasks\)/],
    [{ a2a: { tasks: { maxEntries: 100, maxPerOwner: 200 } } }, /^a2a\.tasks\.maxPerOwner: maxPerOwner \(200\) must not exceed maxEntries \(100\)/],
    [
      { a2a: { tasks: { maxEntries: 100 } } },
      /^a2a\.tasks\.maxEntries: maxPerOwner \(5000\) must not exceed maxEntries \(100\) \(maxPerOwner is 5000 unless set\)/,
    ],
    [{ a2a: { tasks: { rate: { perMinute: 10 } } } }, /^a2a\.tasks\.rate\.burst: /],
    [{ a2a: { tasks: { maxOwners: 0 } } }, /^a2a\.tasks\.maxOwners: /],
  ])('refuses %j with a clear error', (doc, message) => {
    expect(errors(doc)).toEqual(expect.arrayContaining([expect.stringMatching(message)]));
  });

  test('a GovernancePolicy spec carries it: validated like the file, rendered into the ConfigMap as written', () => {
    const meta = { name: 'p', namespace: 'ns', generation: 1, uid: 'uid-p' };
    const bad = validatePolicy({ metadata: meta, spec: { a2a: { tasks: { maxEntries: 10, maxPerOwner: 10, maxOwners: 20 } } } }, new Set());
    expect(bad).toEqual({ valid: false, errors: [expect.stringMatching(/^spec\.a2a\.tasks\.maxOwners: maxOwners \(20\) must not exceed maxEntries \(10\)/)] });
    const r = renderNamespace([{ metadata: meta, spec: { defaultAction: 'forward', a2a: { tasks } } }], new Set(), null);
    const rendered = parseRendered(r.text!);
    expect(rendered!.policies[0]!.spec).toMatchObject({ a2a: { tasks } });
    // What the sidecar in the pod reads from the ConfigMap.
    expect(PolicyDocumentSchema.parse(rendered!.policies[0]!.spec).a2a).toEqual({ tasks });
  });
});

describe('a2a.tasks across a restart (--state-dir)', () => {
  test('the journal is replayed within the configured bounds, not the defaults: an owner past the default maxOwners keeps its context', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-a2a-tasks-restart-'));
    const lines: string[] = [];
    const log = createLogger('debug', (l) => lines.push(l));
    try {
      const first = await openTaskOwnerStore(dir, { log });
      const table = new TaskOwners({ maxOwners: 1200, record: first.write });
      await first.attach(table);
      // One more client than the default maxOwners (1000), each with its context.
      for (let i = 0; i <= TASK_OWNER_DEFAULTS.maxOwners; i++) expect(table.learn('agent1', `client${i}`, 'context', `c${i}`)).toBe('recorded');
      await first.close();
      const tg = await startTestSidecar(
        'sources:\n  - { name: agent1, protocol: a2a, url: "http://127.0.0.1:9/", a2a: { jsonrpc: /a2a } }\na2a:\n  tasks: { maxOwners: 1200 }\n',
        {},
        { taskStore: await openTaskOwnerStore(dir, { log }) },
      );
      await tg.close();
      const restored = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'A2A task owners survive a restart');
      expect(restored.map((l) => [l['ids'], l['tombstones']])).toEqual([
        [0, 0],
        [TASK_OWNER_DEFAULTS.maxOwners + 1, 0],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
