// What each image contains (scripts/image-layout.sh, which the Dockerfiles run) is enough to run
// it: the binary is started from such a directory, away from this repository's node_modules.
// (No Docker engine runs here; this is the part of an image build that can be tested.)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectClient } from './support/sidecar.js';
import { freePort, ROOT, run } from './support/processes.js';
import { startUpstream } from './support/upstream.js';

function layout(kind: 'sidecar' | 'operator'): string {
  const dir = mkdtempSync(join(tmpdir(), `tg-image-${kind}-`));
  execFileSync(join(ROOT, 'scripts/image-layout.sh'), [kind, dir], { cwd: ROOT, stdio: 'pipe' });
  return dir;
}

describe('image contents', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('the sidecar image runs the sidecar with Cedar, and carries no client-node', async () => {
    const dir = layout('sidecar');
    dirs.push(dir);
    expect(existsSync(join(dir, 'node_modules/@kubernetes'))).toBe(false);
    expect(existsSync(join(dir, 'node_modules/@cedar-policy/cedar-wasm/nodejs'))).toBe(true);
    const upstream = await startUpstream({ stateful: false, json: true });
    const config = join(dir, 'thoughtgate.yaml');
    writeFileSync(
      config,
      `sources: [{ name: up, url: "${upstream.url}" }]\nrules: [{ match: { tool: add }, action: policy }]\ndefaultAction: forward\ncedar:\n  policies: 'permit(principal, action, resource) when { context.arguments.a < 10 };'\n`,
    );
    const port = await freePort();
    const admin = await freePort();
    const p = run(process.execPath, [join(dir, 'dist/cli.js'), 'sidecar', '--config', config, '--port', String(port), '--admin-port', String(admin)], {
      NODE_PATH: undefined,
    });
    try {
      while ((await fetch(`http://127.0.0.1:${admin}/ready`).catch(() => null))?.status !== 200) {
        if (p.child.exitCode !== null) throw new Error(p.err());
        await new Promise((r) => setTimeout(r, 50));
      }
      const { client } = await connectClient(`http://127.0.0.1:${port}/mcp/up`);
      expect((await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).structuredContent).toEqual({ sum: 3 });
      await expect(client.callTool({ name: 'add', arguments: { a: 100, b: 2 } })).rejects.toThrow(/-32004/);
      await client.close();
    } finally {
      await p.stop();
      await upstream.close();
    }
  }, 120_000);

  test('the operator image runs the operator command', async () => {
    const dir = layout('operator');
    dirs.push(dir);
    const help = run(process.execPath, [join(dir, 'dist/cli.js'), 'operator', '--help']);
    expect(await help.exited).toBe(0);
    // Loading the operator (client-node, @peculiar/x509) and failing on the missing cluster proves the
    // modules are there: a missing module would be an import error, not this message.
    const start = run(process.execPath, [join(dir, 'dist/cli.js'), 'operator', '--kubeconfig', join(dir, 'missing-kubeconfig')]);
    expect(await start.exited).toBe(1);
    expect(start.err()).toContain('cannot start: ENOENT');
  }, 120_000);
});
