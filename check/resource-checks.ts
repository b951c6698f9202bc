// What the operator reports on the custom resources: labelled namespaces and their policies,
// every GovernancePolicy Valid, reconciled and rendered, every ApprovalChannel Ready, pending
// ApprovalRequests and their age, the ApprovalDecision identity policy, and the capture report of
// namespaces that require capture.
import { parse as parseYaml } from 'yaml';
import { CAPTURE_ANNOTATIONS } from '../api/capture.js';
import { CONFIGMAP_KEY, CONFIGMAP_NAME, INJECT_ENABLED, LABELS } from '../api/wellknown.js';
import { CAPTURE_REQUIRED } from '../webhook/capture.js';
import { DECISION_POLICY_NAME } from '../api/approval-decision.js';
import { policyState } from '../operator/approval-decision-plan.js';
import { boundText } from './bounded-text.js';
import type { CheckResult, CheckSettings, ConfigMap, Custom, Namespace, Read } from './model.js';
import { readFailure, skipped } from './read.js';

const key = (o: { metadata: { name: string; namespace?: string } }) => `${o.metadata.namespace}/${o.metadata.name}`;
const cond = (o: Custom, type: string) => o.status?.conditions?.find((c) => c.type === type);

export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

export function checkNamespaces(namespaces: Read<Namespace[]>, policies: Read<Custom[]>): CheckResult[] {
  const group = 'namespaces';
  const selector = `${LABELS.inject}=${INJECT_ENABLED}`;
  if (!namespaces.ok) return [readFailure('namespaces/labelled', group, `namespaces (${selector})`, namespaces)];
  const names = namespaces.value.map((n) => n.metadata.name).sort();
  if (!names.length)
    return [
      {
        id: 'namespaces/labelled',
        group,
        status: 'warn',
        message: `no namespace is labelled ${selector}: no pod gets a sidecar`,
        hint: `kubectl label namespace <ns> ${selector}`,
      },
    ];
  const out: CheckResult[] = [{ id: 'namespaces/labelled', group, status: 'ok', message: `${names.length} namespace(s) labelled ${selector}`, items: names }];
  if (!policies.ok) return out;
  const governed = new Set(policies.value.map((p) => p.metadata.namespace));
  const bare = names.filter((n) => !governed.has(n));
  out.push(
    bare.length
      ? {
          id: 'namespaces/policies',
          group,
          status: 'warn',
          message: `${bare.length} labelled namespace(s) have no GovernancePolicy: their sidecars deny every governed call`,
          items: bare,
          hint: 'kubectl apply -n <ns> -f a GovernancePolicy (examples/crds/governancepolicy.yaml), or remove the label',
        }
      : { id: 'namespaces/policies', group, status: 'ok', message: 'every labelled namespace has a GovernancePolicy' },
  );
  return out;
}

interface RenderedView {
  policies?: Array<{ name?: string; generation?: number; hash?: string }>;
}

function rendered(cm: ConfigMap | undefined): RenderedView | null {
  const text = cm?.data?.[CONFIGMAP_KEY];
  if (!text) return null;
  try {
    return parseYaml(text) as RenderedView;
  } catch {
    return null;
  }
}

/** One policy: Valid, reconciled at its generation, Ready, and in its namespace's ConfigMap at that generation and hash. */
export function checkPolicy(p: Custom, configMaps: ConfigMap[]): CheckResult {
  const id = `policies/${key(p)}`;
  const group = 'policies';
  const describe = `kubectl -n ${p.metadata.namespace} describe governancepolicy ${p.metadata.name}`;
  const gen = p.metadata.generation;
  const valid = cond(p, 'Valid');
  const ready = cond(p, 'Ready');
  const observed = p.status?.observedGeneration;
  if (valid?.status === 'False')
    return {
      id,
      group,
      status: 'fail',
      message: `GovernancePolicy ${key(p)} is invalid: ${valid.message ?? valid.reason}`,
      hint: `fix the policy and apply it again (sidecars keep its last valid version meanwhile); ${describe}`,
    };
  if (!valid || observed === undefined || (gen !== undefined && observed !== gen))
    return {
      id,
      group,
      status: 'fail',
      message: `GovernancePolicy ${key(p)} is not reconciled (generation ${gen ?? '?'}, observed ${observed ?? 'none'})`,
      hint: 'the operator leader has not processed it: see the operator checks above',
    };
  if (ready?.status !== 'True')
    return {
      id,
      group,
      status: 'fail',
      message: `GovernancePolicy ${key(p)} is not Ready: ${ready?.message ?? ready?.reason ?? 'no Ready condition'}`,
      hint: describe,
    };
  const cmName = (p.status?.configMap as string | undefined) ?? CONFIGMAP_NAME;
  const cm = configMaps.find((c) => c.metadata.namespace === p.metadata.namespace && c.metadata.name === cmName);
  const entry = rendered(cm)?.policies?.find((x) => x.name === p.metadata.name);
  const hash = p.status?.renderedHash as string | undefined;
  const where = `ConfigMap ${p.metadata.namespace}/${cmName}`;
  const repair = 'the operator re-renders it on its next reconcile; if this stays, see the operator logs';
  if (!cm) return { id, group, status: 'fail', message: `GovernancePolicy ${key(p)} is Ready but ${where} is missing`, hint: repair };
  if (!entry) return { id, group, status: 'fail', message: `${where} does not hold GovernancePolicy ${p.metadata.name}`, hint: repair };
  if ((gen !== undefined && entry.generation !== gen) || entry.hash !== hash)
    return {
      id,
      group,
      status: 'fail',
      message: `${where} holds ${p.metadata.name} at generation ${entry.generation} hash ${entry.hash}, the policy says generation ${gen} hash ${hash}`,
      hint: repair,
    };
  // In force, but the operator found something that probably does not mean what was written.
  const warnings = cond(p, 'Warnings');
  if (warnings?.status === 'True')
    return {
      id,
      group,
      status: 'warn',
      message: `GovernancePolicy ${key(p)} is in force with warnings: ${warnings.message ?? warnings.reason}`,
      hint: `each names the rule, limit or Cedar policy to look at; ${describe}`,
    };
  return { id, group, status: 'ok', message: `${key(p)} Valid and rendered (generation ${gen}, hash ${hash?.slice(0, 12)})` };
}

export function checkPolicies(policies: Read<Custom[]>, configMaps: Read<ConfigMap[]>): CheckResult[] {
  if (!policies.ok) return [readFailure('policies', 'policies', 'GovernancePolicies', policies)];
  if (!configMaps.ok) return [readFailure('policies', 'policies', `ConfigMaps ${CONFIGMAP_NAME}`, configMaps)];
  if (!policies.value.length) return [skipped('policies', 'policies', 'no GovernancePolicy in the cluster')];
  return [...policies.value].sort((a, b) => key(a).localeCompare(key(b))).map((p) => checkPolicy(p, configMaps.value));
}

export function checkChannels(channels: Read<Custom[]>): CheckResult[] {
  const group = 'approval-channels';
  if (!channels.ok) return [readFailure('approval-channels', group, 'ApprovalChannels', channels)];
  if (!channels.value.length) return [skipped('approval-channels', group, 'no ApprovalChannel in the cluster')];
  return [...channels.value]
    .sort((a, b) => key(a).localeCompare(key(b)))
    .map((c): CheckResult => {
      const id = `approval-channels/${key(c)}`;
      const ready = cond(c, 'Ready');
      const describe = `kubectl -n ${c.metadata.namespace} describe approvalchannel ${c.metadata.name}`;
      if (ready?.status === 'True') return { id, group, status: 'ok', message: `ApprovalChannel ${key(c)} Ready` };
      if (!ready)
        return {
          id,
          group,
          status: 'fail',
          message: `ApprovalChannel ${key(c)} has not been checked yet`,
          hint: 'the operator leader checks it within a minute: see the operator checks above',
        };
      return {
        id,
        group,
        status: 'fail',
        message: `ApprovalChannel ${key(c)} is not Ready (${ready.reason}): ${ready.message ?? ''}`.trim(),
        hint: `approvals sent to it fail; check the Slack token Secret (spec.slack.tokenSecretRef), that the operator may read it (docs/approvals.md), and the channel; ${describe}`,
      };
    });
}

const PENDING = new Set([undefined, 'Pending', 'Posted']);
/** An agent-written field in an ApprovalRequest line. */
const MAX_FIELD = 64;

export function checkRequests(requests: Read<Custom[]>, now: Date, s: CheckSettings): CheckResult {
  const id = 'approval-requests/pending';
  const group = 'approval-requests';
  if (!requests.ok) return readFailure(id, group, 'ApprovalRequests', requests);
  const pending = requests.value
    .filter((r) => PENDING.has(r.status?.phase as string | undefined))
    .map((r) => ({ r, age: now.getTime() - Date.parse(r.metadata.creationTimestamp ?? '') }))
    .sort((a, b) => b.age - a.age);
  if (!pending.length) return { id, group, status: 'ok', message: 'no pending ApprovalRequest' };
  const old = pending.filter((p) => p.age > s.approvalWarnMs);
  // spec (and a missing status) is written by the agent's ServiceAccount: bounded here, escaped when printed.
  const field = (v: unknown) => boundText(String(v ?? '?'), MAX_FIELD, false);
  const describe = (p: (typeof pending)[number]) =>
    `${key(p.r)}: ${duration(p.age)}, ${field(p.r.status?.phase ?? 'Pending')}, tool ${field(p.r.spec?.tool)}, channel ${field(p.r.spec?.channel)}`;
  if (old.length)
    return {
      id,
      group,
      status: 'warn',
      message: `${old.length} of ${pending.length} pending ApprovalRequest(s) waited longer than ${duration(s.approvalWarnMs)}`,
      items: old.map(describe),
      hint: 'the approvers have not reacted in Slack: remind them, or check the channel (approval-channels above) and the operator logs; expiresAt ends each one',
    };
  return {
    id,
    group,
    status: 'ok',
    message: `${pending.length} pending ApprovalRequest(s), the oldest ${duration(pending[0]!.age)}`,
    items: pending.map(describe),
  };
}

interface Capture {
  notCapturedPods?: string[];
  bypassablePods?: string[];
}

/** The capture report (GovernancePolicy status.capture): uncaptured pods in namespaces that require capture. */
export function checkCapture(policies: Read<Custom[]>, namespaces: Read<Namespace[]>): CheckResult {
  const id = 'capture/required';
  const group = 'capture';
  if (!policies.ok || !namespaces.ok) return skipped(id, group, 'needs GovernancePolicies and namespaces (see above)');
  const required = new Set(namespaces.value.filter((n) => n.metadata.labels?.[CAPTURE_ANNOTATIONS.capture] === CAPTURE_REQUIRED).map((n) => n.metadata.name));
  const reports = new Map<string, Capture>();
  for (const p of policies.value) {
    const c = p.status?.capture as Capture | undefined;
    if (c && p.metadata.namespace && !reports.has(p.metadata.namespace)) reports.set(p.metadata.namespace, c);
  }
  if (!reports.size) return skipped(id, group, 'no capture report (no injected pod, or no policy)');
  const uncaptured: string[] = [];
  const bypassable: string[] = [];
  for (const [ns, c] of [...reports].sort(([a], [b]) => a.localeCompare(b))) {
    if (required.has(ns)) uncaptured.push(...(c.notCapturedPods ?? []).map((p) => `${ns}/${p}`));
    bypassable.push(...(c.bypassablePods ?? []).map((p) => `${ns}/${p}`));
  }
  if (uncaptured.length)
    return {
      id,
      group,
      status: 'fail',
      message: `${uncaptured.length} pod(s) run uncaptured in namespaces labelled ${CAPTURE_ANNOTATIONS.capture}=${CAPTURE_REQUIRED}`,
      items: uncaptured,
      hint: 'they started before the label or while the webhook was bypassed: restart them (kubectl rollout restart) so the webhook captures or refuses them',
    };
  if (bypassable.length)
    return {
      id,
      group,
      status: 'warn',
      message: `${bypassable.length} captured pod(s) have a container that could walk around capture (admitted with --allow-bypassable-pods)`,
      items: bypassable,
      hint: 'run their containers as non-root with another uid than the sidecar (docs/security.md)',
    };
  return { id, group, status: 'ok', message: `capture reported for ${reports.size} namespace(s); none required-and-uncaptured` };
}

/**
 * The ApprovalDecision identity policy and binding the chart installs: without them (or changed)
 * the operator counts no decision made from kubectl (fail closed), so approvers must use Slack.
 */
export function checkDecisionPolicy(r: Read<{ policy: unknown | null; binding: unknown | null }>): CheckResult {
  const id = 'approvals/decision-policy';
  const group = 'approval-channels';
  if (!r.ok) return readFailure(id, group, `the ValidatingAdmissionPolicy ${DECISION_POLICY_NAME}`, r);
  const state = policyState(r.value.policy, r.value.binding);
  if (state.ok)
    return {
      id,
      group,
      status: 'ok',
      message: `ValidatingAdmissionPolicy ${DECISION_POLICY_NAME} and its binding as shipped: decisions from kubectl can count`,
    };
  return {
    id,
    group,
    status: 'warn',
    message: `decisions from kubectl (thoughtgate approve|reject) do not count: ${state.message}`,
    hint: 'install it with the chart (helm upgrade) or kubectl apply --server-side -f deploy/thoughtgate.yaml; docs/approvals.md, "Deciding from kubectl"',
  };
}
