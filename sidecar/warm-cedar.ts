// One Cedar evaluation shortly after a snapshot whose policies need cedar-wasm starts serving, off
// the request path. The first wasm evaluation in a process compiles cedar-wasm's evaluator functions
// (V8 compiles wasm lazily): measured 35–90 ms on Node 24 with the 20-policy set, which the first
// governed call would otherwise wait for. A set the direct evaluator decides whole compiles nothing
// in wasm, so it is not warmed (warming would load cedar-wasm for nothing). The decision is
// discarded; nothing is logged or counted.
import { evaluate, type CedarDecision } from '../policy/cedar/evaluate.js';
import type { Snapshot } from './snapshot.js';

/**
 * How long after the listeners are bound (or a reload is applied) the warm-up runs: the ~20–90 ms it
 * blocks the event loop then falls after the first readiness probe, not inside it.
 */
export const WARM_DELAY_MS = 100;

/** A tool name no configuration can rely on: the warm-up's decision means nothing. */
export const WARM_TOOL = 'thoughtgate-warm-up';

/** The warm-up's decision (for tests), null when there was nothing to warm (no set, or no wasm in it). */
export function warmCedar(snap: Snapshot): CedarDecision | null {
  const cedar = snap.gates.cedar;
  if (!cedar || cedar.disposed || !cedar.needsWasmToEvaluate) return null;
  const source = snap.sources.keys().next().value ?? 'warm-up';
  return evaluate(cedar, {
    identity: snap.gates.identity,
    method: 'tools/call',
    source,
    target: { kind: 'tool', name: WARM_TOOL },
    arguments: {},
    now: new Date(),
  });
}
