// Bundles the thoughtgate command into dist/ with esbuild. Why a bundle: measured on Node 24, the
// sidecar idles ~13 MiB lower in RSS bundled than loading the same modules from node_modules
// (docs/performance.md), and every agent pod runs one. Type checking is `npm run typecheck`.
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bench = readdirSync(new URL('../bench/', import.meta.url))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .map((f) => `bench/${f}`);
// Peers the benchmarks start as their own processes.
bench.push('bench/support/floor-relay.ts');

// `import … from 'node:http'` makes Node 24 evaluate every export of the built-in, including the
// lazy getter that loads Node's own bundled undici (~35 ms before the sidecar is ready, measured in
// docs/performance.md); require() reads only what is used. The same holds, less dearly, for every
// built-in (the ESM facade reads all exports: node:crypto's loads WebCrypto, and so on). So the
// bundle require()s every node: built-in it imports; our bundled undici (CommonJS) already does.
const requireBuiltins = {
  name: 'require-node-builtins',
  setup(b) {
    b.onResolve({ filter: /^node:|^https?$/ }, (a) =>
      a.namespace === 'require-node-builtins' ? { path: a.path, external: true } : { path: a.path.replace(/^node:/, ''), namespace: 'require-node-builtins' },
    );
    b.onLoad({ filter: /.*/, namespace: 'require-node-builtins' }, (a) => ({ contents: `module.exports = require('node:${a.path}');`, loader: 'js' }));
  },
};

// prom-client's index requires its Pushgateway (node:https, so TLS, and zlib), its cluster
// aggregator (node:cluster) and its default metrics; ThoughtGate uses only Counter, Gauge, Histogram
// and Registry. Requiring those four files alone takes ~10 ms of CPU off the sidecar's start
// (docs/performance.md, "Start to ready"). Code that imports another name fails the build.
const promClientCore = {
  name: 'prom-client-core',
  setup(b) {
    b.onResolve({ filter: /^prom-client$/ }, () => ({ path: 'prom-client', namespace: 'prom-client-core' }));
    b.onLoad({ filter: /.*/, namespace: 'prom-client-core' }, () => ({
      contents: ['Registry', 'Counter', 'Gauge', 'Histogram'].map((n) => `export { default as ${n} } from 'prom-client/lib/${n.toLowerCase()}.js';`).join('\n'),
      resolveDir: root,
      loader: 'js',
    }));
  },
};

// The command is built apart from the scripts and benchmarks: built together, esbuild splits the
// sidecar's code into more, smaller chunks shared with them, and each chunk is a module Node must
// resolve and link before the sidecar is ready (docs/performance.md, "Start to ready"). For the same
// reason the sidecar's start path (sidecar/main.ts) is a build of its own, which cli.js imports at
// run time: inside one build, code shared with the other commands' dynamic imports is split into
// a chunk per combination of importers (~38 modules before the sidecar was ready, 8 of them a
// one-line chunk re-exporting a node: built-in).
const options = {
  absWorkingDir: root,
  outdir: 'dist',
  outbase: '.',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  sourcemap: 'linked',
  minifySyntax: true,
  minifyWhitespace: true,
  // cedar-wasm reads its .wasm next to itself; client-node and @slack/web-api load optional parts
  // at run time. They stay in node_modules.
  external: ['@cedar-policy/cedar-wasm', '@kubernetes/client-node', '@slack/web-api'],
  // Bundled CommonJS (undici, prom-client) calls require() for Node built-ins.
  banner: { js: "import { createRequire as __tgCreateRequire } from 'node:module'; const require = __tgCreateRequire(import.meta.url);" },
  plugins: [requireBuiltins, promClientCore],
  logLevel: 'warning',
  metafile: true,
};
// dist/sidecar-main.js, next to cli.js: the images copy dist/*.js (scripts/image-layout.sh).
const sidecarMainApart = {
  name: 'sidecar-main-apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/sidecar\/main\.js$/ }, (a) =>
      a.importer === path.join(root, 'cli.ts') ? { path: './sidecar-main.js', external: true } : undefined,
    );
  },
};
const results = await Promise.all([
  build({ ...options, entryPoints: ['cli.ts'], plugins: [...options.plugins, sidecarMainApart] }),
  build({ ...options, entryPoints: { 'sidecar-main': 'sidecar/main.ts' } }),
  build({ ...options, entryPoints: ['scripts/gen-crds.ts', 'scripts/run-sidecar.ts', ...bench] }),
]);

// Stale chunks from earlier builds go; dist/ is never empty in between (tests may be running it).
const produced = new Set(results.flatMap((r) => Object.keys(r.metafile.outputs)).map((f) => path.resolve(root, f)));
for (const f of walk(path.join(root, 'dist'))) if (!produced.has(f)) rmSync(f);

function* walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}
console.log(`built dist/cli.js, dist/scripts/ and ${bench.length} benchmarks`);
