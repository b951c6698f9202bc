// Fills Node's module compile cache for the sidecar at image build time (Dockerfile.sidecar): starts
// `<cli.js> sidecar` with a small config that has a Cedar policy, waits until its admin port answers
// /health (every module loaded before ready is then compiled), stops it, and the sidecar writes the
// cache into <dir> (its NODE_COMPILE_CACHE). Run it as the uid and with the node flags the sidecar
// runs with: the cache is kept per uid and per V8 flag set, and a start that finds none compiles as
// before.
//
//   node scripts/warm-compile-cache.mjs <dir> <cli.js> [node flag ...]
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [cache, cli, ...nodeFlags] = process.argv.slice(2);
if (!cache || !cli) {
  process.stderr.write('usage: node scripts/warm-compile-cache.mjs <dir> <cli.js> [node flag ...]\n');
  process.exit(2);
}
const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const dir = mkdtempSync(path.join(tmpdir(), 'tg-warm-'));
const config = path.join(dir, 'thoughtgate.yaml');
writeFileSync(
  config,
  'sources:\n  - name: warm\n    url: http://127.0.0.1:9/mcp\nrules:\n  - name: p\n    match: { tool: "*" }\n    action: policy\ncedar:\n  policies: |\n    permit(principal, action, resource) when { context.arguments has a && context.arguments.a < 1 };\n',
);
const [port, admin] = [await freePort(), await freePort()];
const child = spawn(
  process.execPath,
  [...nodeFlags, cli, 'sidecar', '--config', config, '--port', String(port), '--admin-port', String(admin), '--log-level', 'warn'],
  {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, NODE_COMPILE_CACHE: cache },
  },
);
const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
let up = false;
for (let i = 0; i < 600 && !up && child.exitCode === null; i++) {
  up = await fetch(`http://127.0.0.1:${admin}/health`).then(
    (r) => r.ok,
    () => false,
  );
  if (!up) await new Promise((r) => setTimeout(r, 100));
}
child.kill('SIGTERM');
const { code } = await exited;
rmSync(dir, { recursive: true, force: true });
if (!up || code !== 0) {
  process.stderr.write(`warm-compile-cache: the sidecar did not come up and stop cleanly (up ${up}, exit ${code})\n`);
  process.exit(1);
}
const entries = readdirSync(cache, { recursive: true }).length;
process.stdout.write(`warm-compile-cache: ${entries} entries in ${cache}\n`);
