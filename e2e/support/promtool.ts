// promtool (Prometheus's rule checker) for the chart tests, as scripts/promtool-tools.sh builds it
// from the Go module proxy into the tool cache.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../cluster/cluster.js';
import { ROOT } from '../../test/support/processes.js';

const PROMTOOL_TOOLS = join(ROOT, 'scripts', 'promtool-tools.sh');

/** The cached promtool's path. Not built here: `make k8s-tools` (a part of `make test`) builds it once, in minutes. */
export async function builtPromtool(): Promise<string> {
  const bin = await run(PROMTOOL_TOOLS, ['bin']);
  const path = bin.stdout.trim();
  if (bin.code !== 0 || !existsSync(path))
    throw new Error(`promtool is not built (${path || bin.stderr}): run \`make k8s-tools\` or \`scripts/promtool-tools.sh install\` first`);
  return path;
}
