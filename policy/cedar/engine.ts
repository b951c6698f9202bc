// cedar-wasm, loaded the first time a config has policies. Loading it compiles a 4 MB wasm module
// (~30 ms, and tens of MiB of compiled code once policies run); a sidecar whose config has no
// cedar section never pays that (docs/performance.md).
import { createRequire } from 'node:module';
import v8 from 'node:v8';
import type * as CedarModule from '@cedar-policy/cedar-wasm/nodejs';

export type Cedar = typeof CedarModule;

/**
 * V8 compiles cedar-wasm, and any wasm compiled after it, with its baseline compiler (Liftoff) only,
 * never with the optimising one: measured with 20 policies, 19–23 MiB less private memory and ~90 ms
 * less CPU before ready, for wasm decisions ~1.8× slower (docs/performance.md, "Memory"). Set here,
 * not on the command line, because the flag on the command line changes V8's flag hash and so costs
 * every start, with or without Cedar, Node's own code cache (~40 ms). --liftoff-only's implications
 * are applied only at start, so they are spelled out. THOUGHTGATE_CEDAR_WASM_TIERING=1 keeps V8's
 * default tiering (faster wasm decisions, more memory).
 */
const LIFTOFF_ONLY = '--liftoff-only --no-wasm-tier-up --no-wasm-dynamic-tiering';

let loaded: Cedar | null = null;

export function cedarEngine(): Cedar {
  if (!loaded) {
    if (process.env['THOUGHTGATE_CEDAR_WASM_TIERING'] !== '1') v8.setFlagsFromString(LIFTOFF_ONLY);
    loaded = createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as Cedar;
  }
  return loaded;
}

/** Whether cedar-wasm has been loaded in this process (tests: a compile from JSON must not load it). */
export function cedarLoaded(): boolean {
  return loaded !== null;
}
