// cedar-wasm, loaded the first time a config has policies. Loading it compiles a 4 MB wasm module
// (~30 ms, and tens of MiB of compiled code once policies run); a sidecar whose config has no
// cedar section never pays that (docs/performance.md).
import { createRequire } from 'node:module';
import type * as CedarModule from '@cedar-policy/cedar-wasm/nodejs';

export type Cedar = typeof CedarModule;

let loaded: Cedar | null = null;

export function cedarEngine(): Cedar {
  loaded ??= createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as Cedar;
  return loaded;
}
