// What the proxy benchmarks read from their environment: the build and node binary under test and
// how long to measure. `benchUrl`: the benchmark's own import.meta.url (its dist/bench/ directory;
// a shared chunk's own URL would point elsewhere).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function benchSettings(benchUrl: string) {
  const here = fileURLToPath(new URL('.', benchUrl));
  return {
    // BENCH_CLI: another build's dist/cli.js (e.g. the commit before a change), measured by this bench.
    cli: process.env['BENCH_CLI'] || join(here, '..', 'cli.js'),
    floor: join(here, 'support', 'floor-relay.js'),
    node: process.env['BENCH_NODE'] || process.execPath,
    seconds: Number(process.env['BENCH_SECONDS'] || 3),
    rounds: Math.max(1, Number(process.env['BENCH_ROUNDS'] || 2)),
    /** Load before measuring a process, so JIT and connection pools are in their steady state. */
    warmSeconds: 2,
  };
}
