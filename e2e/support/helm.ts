// The chart tests' shared pieces: the helm binary (built once from the Go module proxy into the
// tool cache) and the shape of a rendered object.
import { join } from 'node:path';
import { run } from '../cluster/cluster.js';
import { ROOT } from '../../test/support/processes.js';

export const HELM_TOOLS = join(ROOT, 'scripts', 'helm-tools.sh');
export const CHART = join(ROOT, 'charts', 'thoughtgate');

/** An object rendered by the chart. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: any;
}

/** Builds helm into the tool cache unless it is there (cold: a minute or two); its path. */
export async function installHelm(): Promise<string> {
  const r = await run(HELM_TOOLS, ['install'], { streamStderr: true });
  if (r.code !== 0) throw new Error(`helm-tools.sh install: ${r.stderr}`);
  return r.stdout.trim().split('\n').pop()!;
}
