// cedar-wasm, loaded the first time a config has policies. Loading it compiles a 4 MB wasm module
// (~30 ms, and tens of MiB of compiled code once policies run); a sidecar whose config has no
// cedar section never pays that (docs/performance.md).
import { createRequire } from 'node:module';
import { liftoffOnlyWasm } from '../../lib/wasm-liftoff.js';
import type * as CedarModule from '@cedar-policy/cedar-wasm/nodejs';

export type Cedar = typeof CedarModule;

// cedar-wasm is compiled with Liftoff only (lib/wasm-liftoff.ts): measured with 20 policies,
// 19–23 MiB less private memory and ~90 ms less CPU before ready, for wasm decisions ~1.8× slower.

let loaded: Cedar | null = null;

export function cedarEngine(): Cedar {
  if (!loaded) {
    liftoffOnlyWasm();
    loaded = createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as Cedar;
  }
  return loaded;
}

/** Whether cedar-wasm has been loaded in this process (tests: a compile from JSON must not load it). */
export function cedarLoaded(): boolean {
  return loaded !== null;
}
