// The generated CRDs against a real kube-apiserver 1.33: they install and become Established (so
// the schemas are structural and the CEL rules fit the cost budget), the examples apply, the
// server fills in the same defaults zod does, every invalid sample is refused with a message
// naming its mistake, and kubectl shows the printer columns.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { ApprovalChannelSpecSchema, GovernancePolicySpecSchema, KINDS } from '../api/crds.js';
import { GROUP } from '../api/wellknown.js';
import { e2eCluster, getJson, kubectl as mustKubectl, kubectlResult } from './support/k8s.js';

const STEP_TIMEOUT = 3 * 60_000;

const root = fileURLToPath(new URL('..', import.meta.url));
const crdsDir = path.join(root, 'crds');
const examplesDir = path.join(root, 'examples', 'crds');
const invalidDir = path.join(examplesDir, 'invalid');
const e2e = e2eCluster('crds');
const NS = e2e.ns('examples');
const SSA = e2e.ns('ssa');

/** Each invalid sample with the stderr substring its first comment line promises. */
const invalidSamples = readdirSync(invalidDir)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((file) => {
    const expected = /^# expect: (.+)$/m.exec(readFileSync(path.join(invalidDir, file), 'utf8'))?.[1]?.trim();
    if (!expected) throw new Error(`examples/crds/invalid/${file} has no "# expect: …" line`);
    return [file, expected] as const;
  });

/** The specs of examples/crds as written, by kind and name. */
function exampleSpec(kind: string, name: string): unknown {
  for (const f of readdirSync(examplesDir).filter((x) => x.endsWith('.yaml'))) {
    for (const d of parseAllDocuments(readFileSync(path.join(examplesDir, f), 'utf8'))) {
      const o = d.toJS() as { kind?: string; metadata?: { name?: string }; spec?: unknown };
      if (o.kind === kind && o.metadata?.name === name) return o.spec;
    }
  }
  throw new Error(`no ${kind} ${name} in examples/crds`);
}

describe('CRDs on a real kube-apiserver', () => {
  // The run's control plane has crds/ applied once (e2e/support/k8s.ts); applying them again must
  // be as clean, and they must be Established.
  it(
    'installs crds/ and both CRDs become Established',
    async () => {
      const r = await kubectlResult(['apply', '-f', crdsDir]);
      expect(r.stderr).toBe(''); // no warnings either
      expect(r.code).toBe(0);
      const names = Object.values(KINDS).map((k) => `crd/${k.plural}.${GROUP}`);
      await mustKubectl(['wait', '--for=condition=Established', '--timeout=60s', ...names]);
      for (const n of names) {
        const crd = await getJson(['get', n]);
        const cond = (t: string) => crd.status.conditions.find((c: { type: string }) => c.type === t)?.status;
        expect([n, cond('NamesAccepted'), cond('Established')]).toEqual([n, 'True', 'True']);
      }
    },
    STEP_TIMEOUT,
  );

  it(
    'applies examples/crds/ to a namespace',
    async () => {
      await e2e.namespace('examples');
      const out = await mustKubectl(['apply', '-n', NS, '-f', examplesDir]);
      expect(out).toContain('governancepolicy.thoughtgate.io/everything created');
      expect(out).toContain('governancepolicy.thoughtgate.io/research-agents created');
      expect(out).toContain('approvalchannel.thoughtgate.io/platform-approvals created');
      expect(out).toContain('approvalrequest.thoughtgate.io/6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b created');
    },
    STEP_TIMEOUT,
  );

  it(
    'fills in the same defaults as zod',
    async () => {
      const selected = await getJson(['get', '-n', NS, 'gp', 'research-agents']);
      expect(selected.spec.defaultAction).toBe('deny');
      expect(selected.spec.sources[0].timeouts).toEqual({ connect: '5s', response: '60s' });
      expect(selected.spec.sources[0].expose).toEqual({ mode: 'all' });
      expect(selected.spec.egress).toEqual({ allow: ['*.internal.example.com'], deny: [] });
      // The whole stored spec is what the operator's zod parse makes of the example as written.
      expect(selected.spec).toEqual(GovernancePolicySpecSchema.parse(exampleSpec('GovernancePolicy', 'research-agents')));

      const everything = await getJson(['get', '-n', NS, 'gp', 'everything']);
      expect(everything.spec.priority).toBe(0);
      expect(everything.spec).toEqual(GovernancePolicySpecSchema.parse(exampleSpec('GovernancePolicy', 'everything')));

      // An A2A agent: the a2a block's versions default as in zod.
      const agents = await getJson(['get', '-n', NS, 'gp', 'billing-agents']);
      expect(agents.spec.sources[0].a2a.versions).toEqual(['1.0', '0.3']);
      expect(agents.spec).toEqual(GovernancePolicySpecSchema.parse(exampleSpec('GovernancePolicy', 'billing-agents')));

      const channel = await getJson(['get', '-n', NS, 'ac', 'platform-approvals']);
      expect(channel.spec.reactions).toEqual({ approve: ['white_check_mark'], reject: ['x'] });
      expect(channel.spec.onTimeout).toBe('reject');
      expect(channel.spec.slack.tokenSecretRef).toEqual({ name: 'slack-bot-token', key: 'token' });
      expect(channel.spec).toEqual(ApprovalChannelSpecSchema.parse(exampleSpec('ApprovalChannel', 'platform-approvals')));
    },
    STEP_TIMEOUT,
  );

  it.each(invalidSamples)(
    'refuses invalid/%s with "%s"',
    async (file, expected) => {
      const r = await kubectlResult(['apply', '-n', NS, '-f', path.join(invalidDir, file)]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(expected);
    },
    STEP_TIMEOUT,
  );

  it(
    'stored nothing from the invalid samples',
    async () => {
      const names = (await getJson(['get', '-n', NS, 'thoughtgate'])).items.map((i: { metadata: { name: string } }) => i.metadata.name).sort();
      expect(names).toEqual([
        '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b',
        'billing-agents',
        'everything',
        'platform-approvals',
        'research-agents',
        'tgh-4c1e9b0a7d2f4e8a9b3c5d6e7f8a9b0c',
        'writers-rollout',
      ]);
    },
    STEP_TIMEOUT,
  );

  it(
    'takes the examples by server-side apply too (untyped glob lists included)',
    async () => {
      await e2e.namespace('ssa');
      await mustKubectl(['apply', '--server-side', '--field-manager=e2e', '-n', SSA, '-f', examplesDir]);
      const p = await getJson(['get', '-n', SSA, 'gp', 'research-agents']);
      expect(p.spec.rules[0].match.tool).toEqual(['trigger-long-running-*', '*-delete']);
      expect(p.spec.rules[1].match.method).toBe('resources/*');
    },
    STEP_TIMEOUT,
  );

  it(
    'shows the printer columns, read from spec and status',
    async () => {
      const header = (out: string) => out.split('\n')[0]!.trim().split(/\s+/);
      expect(header(await mustKubectl(['get', '-n', NS, 'gp']))).toEqual(['NAME', 'PRIORITY', 'READY', 'HASH', 'CAPTURED', 'AGE']);
      expect(header(await mustKubectl(['get', '-n', NS, 'ac']))).toEqual(['NAME', 'CHANNEL', 'READY', 'AGE']);
      expect(header(await mustKubectl(['get', '-n', NS, 'ar']))).toEqual(['NAME', 'PHASE', 'TOOL', 'CHANNEL', 'POD', 'DECIDEDBY', 'APPROVALS', 'AGE']);

      // Status goes through the status subresource, as the operator writes it.
      const status = {
        status: {
          renderedHash: 'sha256-0123abcd',
          conditions: [
            { type: 'Ready', status: 'True', reason: 'Rendered', message: 'rendered into thoughtgate-config', lastTransitionTime: '2026-01-01T00:00:00Z' },
          ],
        },
      };
      await mustKubectl(['patch', '-n', NS, 'gp', 'research-agents', '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
      const row = (await mustKubectl(['get', '-n', NS, 'gp', 'research-agents', '--no-headers'])).trim().split(/\s+/);
      expect(row.slice(0, 4)).toEqual(['research-agents', '100', 'True', 'sha256-0123abcd']);
      const ac = (await mustKubectl(['get', '-n', NS, 'ac', 'platform-approvals', '--no-headers'])).trim().split(/\s+/);
      expect(ac.slice(0, 2)).toEqual(['platform-approvals', 'C0123ABCDEF']);

      // The short names and the category work too.
      expect(await mustKubectl(['get', '-n', NS, 'gpol', '-o', 'name'])).toContain('governancepolicy.thoughtgate.io/everything');
      expect(await mustKubectl(['get', '-n', NS, 'thoughtgate', '-o', 'name'])).toContain('approvalchannel.thoughtgate.io/platform-approvals');
    },
    STEP_TIMEOUT,
  );

  it(
    'kubectl explain says how a header takes its value from a Secret',
    async () => {
      const out = (await mustKubectl(['explain', 'governancepolicies.spec.sources.headers'])).replace(/\s+/g, ' ');
      expect(out).toContain('{valueFrom: {secretKeyRef: {name, key}}, prefix: "Bearer "}');
      expect(out).toContain('valueFrom.file and valueFrom.env are refused here');
    },
    STEP_TIMEOUT,
  );
});
