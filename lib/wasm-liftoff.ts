// V8 compiles wasm compiled after this with its baseline compiler (Liftoff) only, never with the
// optimising one. Two wasm modules run in ThoughtGate: cedar-wasm and undici's HTTP parser (llhttp).
// Optimising llhttp's big parser function, which V8 does after a few dozen responses, takes a
// ~22 MiB compile zone that malloc keeps: ~10 MiB private per sidecar, for ~10 µs more CPU per
// parsed response on Liftoff (docs/performance.md, "Memory").
import v8 from 'node:v8';

/** --liftoff-only's implications are applied only at start, so they are spelled out. */
const LIFTOFF_ONLY = '--liftoff-only --no-wasm-tier-up --no-wasm-dynamic-tiering';

let applied = false;

/**
 * Set here, not on the command line: a flag there changes V8's flag hash and so costs every start
 * Node's own code cache (~40 ms). Call before the wasm is compiled (the flags are read then).
 * THOUGHTGATE_CEDAR_WASM_TIERING=1 keeps V8's default tiering (faster wasm, more memory).
 */
export function liftoffOnlyWasm(env: NodeJS.ProcessEnv = process.env): void {
  if (applied || env['THOUGHTGATE_CEDAR_WASM_TIERING'] === '1') return;
  applied = true;
  v8.setFlagsFromString(LIFTOFF_ONLY);
}
