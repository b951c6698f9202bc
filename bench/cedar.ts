// Gate 3 benchmark: prints numbers, asserts nothing. Budget (DESIGN.md): Cedar evaluation,
// 20 policies, median ≤ 100 µs; issue 11: ≤ 50 µs added per governed call.
// `*_wasm` lines force cedar-wasm (compilePolicies(…, { engine: 'wasm' })), the path every call
// took before the direct evaluator (policy/cedar/direct/); the plain lines are what the proxy runs.
//   npx esbuild bench/cedar.ts --bundle --platform=node --format=esm \
//     --external:@cedar-policy/cedar-wasm --outfile=/tmp/cedar-bench/cedar-bench.mjs && node /tmp/cedar-bench/cedar-bench.mjs
// cedar-wasm stays external (it reads its .wasm beside itself), so the bundle must be able to
// resolve it: write it inside the repo, or first `ln -s "$PWD/node_modules" /tmp/cedar-bench/`.
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { compilePolicies } from '../policy/cedar/policies.js';
import { buildRequest, evaluate, type CedarInput } from '../policy/cedar/evaluate.js';
import { normaliseArguments } from '../policy/cedar/normalise.js';
import { project } from '../policy/cedar/projection.js';
import { decideDirect, directRequest } from '../policy/cedar/direct/decide.js';

const POLICIES = `
@id("small-transfers") @approve("finance")
permit(principal, action == ThoughtGate::Action::"tools/call", resource)
  when { resource.name like "transfer_*" && context.arguments.amount < 1000 };
@id("no-large-transfers")
forbid(principal, action == ThoughtGate::Action::"tools/call", resource)
  when { resource.name like "transfer_*" && context.arguments has amount && context.arguments.amount >= 100000 };
@id("payments-team-transfers")
permit(principal in ThoughtGate::Namespace::"prod", action == ThoughtGate::Action::"tools/call", resource in ThoughtGate::Source::"bank")
  when { principal.hasTag("team") && principal.getTag("team") == "payments" && resource.name like "transfer_*" };
@id("eur-only")
forbid(principal, action, resource in ThoughtGate::Source::"bank")
  when { context.arguments has currency && !(["EUR", "USD", "GBP"].contains(context.arguments.currency)) };
@id("read-docs")
permit(principal, action == ThoughtGate::Action::"resources/read", resource)
  when { resource.name like "file:///docs/*" };
@id("no-secrets")
forbid(principal, action == ThoughtGate::Action::"resources/read", resource)
  when { resource.name like "*secret*" || resource.name like "*.pem" };
@id("prompts")
permit(principal, action == ThoughtGate::Action::"prompts/get", resource);
@id("github-read")
permit(principal, action == ThoughtGate::Action::"tools/call", resource in ThoughtGate::Source::"github")
  when { resource.name like "get_*" || resource.name like "search_*" || resource.name like "list_*" };
@id("github-issues") @approve("oncall")
permit(principal, action == ThoughtGate::Action::"tools/call", resource == ThoughtGate::Tool::"github/create_issue");
@id("no-prod-deletes")
forbid(principal in ThoughtGate::Namespace::"prod", action, resource)
  when { resource.name like "delete_*" };
@id("business-hours")
forbid(principal, action == ThoughtGate::Action::"tools/call", resource in ThoughtGate::Source::"bank")
  when { context.time.toTime() < duration("6h") || context.time.toTime() > duration("22h") };
@id("freeze")
forbid(principal, action, resource in ThoughtGate::Source::"deploy")
  when { context.time > datetime("2026-12-20") && context.time < datetime("2027-01-05") };
@id("deploy-staging")
permit(principal, action == ThoughtGate::Action::"tools/call", resource == ThoughtGate::Tool::"deploy/rollout")
  when { context.arguments has env && context.arguments.env == "staging" };
@id("rate-limit-ratio")
forbid(principal, action, resource in ThoughtGate::Source::"bank")
  when { context.arguments has fee && context.arguments.fee.greaterThan(decimal("25.00")) };
@id("ops-sa")
permit(principal == ThoughtGate::Workload::"ops/ops-agent", action, resource);
@id("no-recursive-rm")
forbid(principal, action, resource == ThoughtGate::Tool::"fs/remove")
  when { context.arguments has options && context.arguments.options has recursive && context.arguments.options.recursive };
@id("fs-read")
permit(principal, action == ThoughtGate::Action::"tools/call", resource in ThoughtGate::Source::"fs")
  when { resource.name like "read_*" && context.arguments has path && context.arguments.path like "/workspace/*" };
@id("tagged-ml")
permit(principal, action, resource in ThoughtGate::Source::"ml")
  when { principal.hasTag("team") && principal.getTag("team") == "ml" };
@id("no-external-email")
forbid(principal, action == ThoughtGate::Action::"tools/call", resource == ThoughtGate::Tool::"mail/send")
  when { context.arguments has to && !(context.arguments.to like "*@example.com") };
@id("mail") @approve("comms")
permit(principal, action == ThoughtGate::Action::"tools/call", resource in ThoughtGate::Source::"mail");
`;

const input: CedarInput = {
  identity: {
    namespace: 'prod',
    serviceAccount: 'payments-agent',
    pod: 'payments-agent-7d9f8c6b5-x2x9q',
    labels: { team: 'payments', app: 'agent', 'app.kubernetes.io/name': 'payments-agent', 'pod-template-hash': '7d9f8c6b5' },
  },
  method: 'tools/call',
  source: 'bank',
  target: { kind: 'tool', name: 'transfer_funds' },
  arguments: {
    amount: 250,
    currency: 'EUR',
    fee: 1.25,
    rate: 1.0825,
    memo: null,
    from: { iban: 'DE89370400440532013000', holder: 'ACME GmbH', verified: true },
    to: { iban: 'FR1420041010050500013M02606', holder: null, tags: ['supplier', 'eu', null] },
    lines: [
      { sku: 'A-1', qty: 2, price: 99.99 },
      { sku: 'B-7', qty: 1, price: 50.02, discount: null },
    ],
    __entity: { type: 'ThoughtGate::Workload', id: 'ops/ops-agent' },
  },
  now: new Date('2026-11-21T10:00:00Z'),
};

const WARMUP = 1000;
const N = 10_000;

function stats(name: string, samples: number[], cpuUs?: number): void {
  samples.sort((a, b) => a - b);
  const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
  for (const [label, v] of [
    ['median', q(0.5)],
    ['p90', q(0.9)],
    ['p99', q(0.99)],
  ] as const) {
    console.log(`${name}.${label}_us ${v.toFixed(1)}`);
  }
  // CPU time per call: less disturbed than wall time when other processes share the CPUs.
  if (cpuUs !== undefined) console.log(`${name}.cpu_mean_us ${(cpuUs / samples.length).toFixed(1)}`);
}

function run(name: string, n: number, f: () => unknown): void {
  for (let i = 0; i < WARMUP; i++) f();
  const out = new Array<number>(n);
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    f();
    out[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const cpu = process.cpuUsage(cpu0);
  stats(name, out, cpu.user + cpu.system);
}

// Compile: split, annotations, literal checks, context/entity needs, preparse. Once per reload.
const compiled = compilePolicies(POLICIES);
if (!compiled.ok) throw new Error(compiled.errors.join('\n'));
const set = compiled.policies;
console.log(`cedar.policies ${set.policies.length}`);
// Each compile releases its preparsed sets, as a sidecar does one reload later.
run('cedar.compile', 50, () => {
  const c = compilePolicies(POLICIES);
  if (c.ok) c.policies.dispose();
});

const wasmOnly = compilePolicies(POLICIES, { engine: 'wasm' });
if (!wasmOnly.ok) throw new Error(wasmOnly.errors.join('\n'));
const wasmSet = wasmOnly.policies;
console.log(`cedar.needs_wasm_to_evaluate ${set.needsWasmToEvaluate} (forced: ${wasmSet.needsWasmToEvaluate})`);

const d = evaluate(set, input);
console.log(`cedar.evaluate.decision ${d.decision} (${d.reason})`);

// Gate 3 as the proxy calls it: normalise + (direct closures | project + statefulIsAuthorized) + interpret.
run('cedar.evaluate', N, () => evaluate(set, input));
run('cedar.evaluate_wasm', N, () => evaluate(wasmSet, input));

// A lean call for contrast: a resource read without arguments, matched by fewer policies.
const lean: CedarInput = {
  ...input,
  method: 'resources/read',
  source: 'docs',
  target: { kind: 'resource', name: 'file:///docs/guide.md' },
  arguments: undefined,
};
console.log(`cedar.evaluate_lean.decision ${evaluate(set, lean).decision} (${evaluate(set, lean).reason})`);
run('cedar.evaluate_lean', N, () => evaluate(set, lean));
run('cedar.evaluate_lean_wasm', N, () => evaluate(wasmSet, lean));

// Many fractional numbers (decimals cost wasm ~13 µs each to convert), one of them read by a policy.
const fractions: CedarInput = {
  ...input,
  arguments: {
    ...(input.arguments as object),
    lines: Array.from({ length: 40 }, (_, i) => ({ sku: `S-${i}`, qty: i, price: 10 + i / 100, tax: { rate: 0.19, amount: (10 + i / 100) * 0.19 } })),
    fee: 1.25,
  },
};
console.log(`cedar.evaluate_fractions.decision ${evaluate(set, fractions).decision}`);
run('cedar.evaluate_fractions', N, () => evaluate(set, fractions));
run('cedar.evaluate_fractions_wasm', N, () => evaluate(wasmSet, fractions));

// A set the direct evaluator does not model (`ip(…)`) stays on wasm: only calls to its source pay.
const withIp = compilePolicies(`${POLICIES}
@id("internal-only")
forbid(principal, action, resource in ThoughtGate::Source::"net")
  when { context.arguments has host && !ip(context.arguments.host).isLoopback() };`);
if (!withIp.ok) throw new Error(withIp.errors.join('\n'));
const fallback: CedarInput = { ...input, source: 'net', target: { kind: 'tool', name: 'fetch' }, arguments: { host: '127.0.0.1' } };
const fallbackSet = withIp.policies.setFor(fallback.method, fallback.source);
console.log(
  `cedar.evaluate_fallback.decision ${evaluate(withIp.policies, fallback).decision} (wasm set: ${fallbackSet.direct === null}; bank call direct: ${withIp.policies.setFor(input.method, input.source).direct !== null})`,
);
run('cedar.evaluate_fallback', N, () => evaluate(withIp.policies, fallback));

// Cold: the first decision after a compile (a reload), each on a fresh compile; median of 30.
function cold(name: string, options: Parameters<typeof compilePolicies>[1]): void {
  const samples: number[] = [];
  for (let i = 0; i < 30; i++) {
    const c = compilePolicies(POLICIES, options);
    if (!c.ok) throw new Error('unreachable');
    const t0 = process.hrtime.bigint();
    evaluate(c.policies, input);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
    c.policies.dispose();
  }
  stats(name, samples);
}
cold('cedar.evaluate_cold', {});
cold('cedar.evaluate_cold_wasm', { engine: 'wasm' });

// Would a decision cache keyed by the projected request pay on top of the direct path? Its key
// alone (project what the set reads, encode it) against the whole direct decision after normalising.
// (Measured, not built: this call's set reads context.time, so no key could be exact anyway.)
const subsetForCache = set.setFor(input.method, input.source);
const normalised = normaliseArguments(input.arguments);
if (!normalised.ok) throw new Error('unreachable');
const iso = input.now.toISOString();
run('cedar.direct_decide_only', N, () => decideDirect(subsetForCache.direct!, directRequest(input, normalised.value, iso)!));
const leanSet = set.setFor(lean.method, lean.source);
run('cedar.direct_decide_only_lean', N, () => decideDirect(leanSet.direct!, directRequest(lean, {}, iso)!));
const cacheKeys = new Map<string, unknown>();
run('cedar.cache_key_and_lookup', N, () => {
  const key = JSON.stringify([
    input.identity.namespace,
    input.identity.serviceAccount,
    input.identity.labels['team'] ?? null,
    input.method,
    input.source,
    input.target.kind,
    input.target.name,
    project({ arguments: normalised.value, source: input.source, method: input.method }, subsetForCache.needs.context),
  ]);
  return cacheKeys.get(key) ?? cacheKeys.set(key, d);
});

// Parts, to see where the time goes.
run('cedar.normalise', N, () => normaliseArguments(input.arguments));

const full = buildRequest(input);
const subset = set.setFor(input.method, input.source);
const projectedAll = buildRequest(input, set.needs);
const projected = buildRequest(input, subset.needs);
if (!full.ok || !projected.ok || !projectedAll.ok) throw new Error('unreachable: the bench arguments normalise');
const whole = compilePolicies(POLICIES, { partition: false });
if (!whole.ok) throw new Error(whole.errors.join('\n'));
const wholeId = whole.policies.sets[0]!.id;
console.log(`cedar.sets ${set.sets.length} (this call runs ${subset.policies.length} of ${set.policies.length} policies)`);
const fullCall = { ...full.request, preparsedPolicySetId: wholeId };
const projectedCall = { ...projectedAll.request, preparsedPolicySetId: wholeId };
const evaluateCall = { ...projected.request, preparsedPolicySetId: subset.id };
// Raw cedar as a straightforward caller uses it: every argument, attribute and tag, all 20 policies.
run('cedar.raw_stateful_full', N, () => cedar.statefulIsAuthorized(fullCall));
// Only what the policies observe (projection.ts), all 20 policies.
run('cedar.raw_stateful_projected', N, () => cedar.statefulIsAuthorized(projectedCall));
// What evaluate sends: projected, and only the policies whose scope can match (partition.ts).
run('cedar.raw_stateful_evaluate', N, () => cedar.statefulIsAuthorized(evaluateCall));
// The floor: one empty policy set, no context, no entities.
const empty = compilePolicies('');
if (!empty.ok) throw new Error('unreachable');
const floor = { ...projectedCall, context: {}, entities: [], preparsedPolicySetId: empty.policies.sets[0]!.id };
run('cedar.raw_stateful_floor', N, () => cedar.statefulIsAuthorized(floor));

console.log(`cedar.request_json_bytes.full ${JSON.stringify(fullCall).length}`);
console.log(`cedar.request_json_bytes.projected ${JSON.stringify(projectedCall).length}`);
console.log(`cedar.request_json_bytes.evaluate ${JSON.stringify(evaluateCall).length}`);
console.log(`cedar.rss_mib ${(process.memoryUsage().rss / 1048576).toFixed(1)}`);
