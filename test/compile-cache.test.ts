// The sidecar image's compile cache (Dockerfile.sidecar runs scripts/warm-compile-cache.mjs): one
// start fills it, and a later start with the same flags takes its code from it. Node ≥ 22.1 has the
// cache; on Node 20 the same commands run and nothing is cached. Runs on BENCH_NODE (the sidecar's
// Node 24) when set, else this node.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT } from './support/processes.js';

const NODE = process.env['BENCH_NODE'] || process.execPath;
const major = Number(/^v(\d+)/.exec(execFileSync(NODE, ['--version'], { encoding: 'utf8' }))![1]);
/** `thoughtgate version` with the cache traced: what Node says about it (stderr) and the output. */
function traced(args: string[], dir: string): string {
  const r = spawnSync(NODE, [...args, CLI, 'version'], {
    encoding: 'utf8',
    env: { ...process.env, NODE_COMPILE_CACHE: dir, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' },
  });
  expect(r.status).toBe(0);
  return r.stdout + r.stderr;
}
const files = (dir: string) => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;

describe('compile cache', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tg-compile-cache-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('one start of the sidecar fills it; a start with the same flags reads its code from it', () => {
    const out = execFileSync(NODE, [join(ROOT, 'scripts/warm-compile-cache.mjs'), dir, CLI], {
      encoding: 'utf8',
      env: { ...process.env, NODE_COMPILE_CACHE: undefined },
    });
    expect(out).toMatch(/^warm-compile-cache: \d+ entries in /);
    if (major < 22) {
      expect(files(dir)).toBe(0);
      return;
    }
    // The sidecar's chunks, cedar-wasm's glue and more (the exact count depends on the bundle's chunking).
    expect(files(dir)).toBeGreaterThan(10);
    expect(traced([], dir)).toMatch(/V8 code cache for ESM file:\/\/\S+\/dist\/cli\.js was accepted/);
  }, 60_000);

  test('with other V8 flags than it was filled with, a start compiles as before and does not fail', () => {
    // Node 20 has no enableCompileCache: the command runs as before.
    if (major < 22) return void expect(traced([], dir)).toContain('0.1.0');
    execFileSync(NODE, [join(ROOT, 'scripts/warm-compile-cache.mjs'), dir, CLI], { env: { ...process.env, NODE_COMPILE_CACHE: undefined } });
    const trace = traced(['--liftoff-only'], dir);
    expect(trace).toContain('0.1.0');
    // Node looked in the directory of this flag set, found nothing, and compiled.
    expect(trace).toMatch(/\[compile cache\]/);
    expect(trace).not.toMatch(/dist\/cli\.js was accepted/);
  }, 60_000);
});
