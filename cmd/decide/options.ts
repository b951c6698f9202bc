// `thoughtgate approve|reject` flags → DecideOptions (pure; cli.ts parses argv), its --help, and
// the sentences it prints.
import { parseDuration } from '../../api/duration.js';
import type { DecisionVerb } from '../../api/approval-decision.js';
import { EXEC_INTERACTIVE_TIMEOUT_MS, EXEC_TIMEOUT_MS } from './exec-credential.js';
import type { Impersonation } from './impersonation.js';

export const DEFAULT_DECIDE_TIMEOUT = '30s';

export const decideHelp = (verb: 'approve' | 'reject') => `Usage: thoughtgate ${verb} NAME [-n NAMESPACE] [--reason TEXT] [options]

${verb === 'approve' ? 'Approves' : 'Rejects'} the pending ApprovalRequest NAME from the command line, without Slack
(break-glass when Slack is down, or for teams that do not use it). It creates an
ApprovalDecision as you: the API server records who you are, and the operator
counts it when you (or one of your groups) are listed in the request's
ApprovalChannel under approvers.kubernetes. ${
  verb === 'approve'
    ? 'With approvers.required: N, N distinct\napprovers (Slack and kubectl together) must approve; any reject wins.'
    : 'A reject ends the request at once: the\ncall is not run.'
}

  -n, --namespace <ns>   the request's namespace (default: the kubeconfig
                         context's namespace, else "default")
  --reason <text>        why (shown in the request's status and in Slack)
  --kubeconfig <file>    default: $KUBECONFIG, else ~/.kube/config
  --context <name>       a kubeconfig context other than the current one
  --as <user>            act as this user (impersonation, as kubectl --as;
                         overrides the kubeconfig user's "as")
  --as-group <group>     a group of that user (repeat for more; overrides
                         "as-groups")
  --as-uid <uid>         that user's uid (overrides "as-uid")
  --timeout <duration>   how long to wait for the operator to count it
                         (default ${DEFAULT_DECIDE_TIMEOUT})
  --no-wait              create the decision and exit
  -h, --help             show this help

Your RBAC needs create (and get, to wait) on approvaldecisions.thoughtgate.io
in the namespace, and get on approvalrequests (the decision is then owned by
the request: deleting the request deletes it); docs/approvals.md has a Role.
With --as (or "as" in the kubeconfig) the decision is the impersonated user's,
and you need the impersonate verb. An exec credential plugin of the kubeconfig
gets the terminal only when its interactiveMode allows it, and must answer
within ${EXEC_TIMEOUT_MS / 1000}s (${EXEC_INTERACTIVE_TIMEOUT_MS / 1000}s when it may prompt).

Exit status: 0 counted (or created, with --no-wait), 1 not counted (the message
says why: not an approver, already decided, expired, ...) or refused, 2 bad
options, kubeconfig or credentials, no API server or not one that answers
Kubernetes JSON, 130 interrupted (Ctrl-C; the message says whether the decision
was created).
`;

export interface DecideFlags {
  namespace?: string;
  reason?: string;
  kubeconfig?: string;
  context?: string;
  timeout?: string;
  'no-wait'?: boolean;
  as?: string;
  'as-group'?: string[];
  'as-uid'?: string;
}

export interface DecideOptions {
  decision: DecisionVerb;
  /** The ApprovalRequest. */
  name: string;
  /** Undefined: the kubeconfig context's namespace, else "default". */
  namespace?: string;
  reason?: string;
  kubeconfig?: string;
  context?: string;
  /** --as, --as-group, --as-uid: over the kubeconfig user's own impersonation fields. */
  impersonate?: Impersonation;
  /** 0: do not wait for the operator. */
  waitMs: number;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Throws an Error with the usage problem. */
export function decideOptions(verb: 'approve' | 'reject', positionals: string[], f: DecideFlags): DecideOptions {
  if (positionals.length !== 1)
    throw new Error(
      positionals.length === 0 ? 'name the ApprovalRequest (kubectl get approvalrequests -n NS)' : `one ApprovalRequest at a time, got ${positionals.length}`,
    );
  const name = positionals[0]!;
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) throw new Error(`"${name}" is not an ApprovalRequest name`);
  if (f.namespace !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(f.namespace))
    throw new Error(`--namespace: "${f.namespace}" is not a namespace name`);
  if (f.reason !== undefined && f.reason.length > 1024) throw new Error('--reason: at most 1024 characters');
  for (const [flag, v] of [['--as', f.as], ['--as-uid', f['as-uid']], ...(f['as-group'] ?? []).map((g) => ['--as-group', g])] as const)
    if (v !== undefined && v.trim() === '') throw new Error(`${flag}: empty`);
  const impersonate: Impersonation = {
    ...(f.as !== undefined ? { user: f.as } : {}),
    ...(f['as-uid'] !== undefined ? { uid: f['as-uid'] } : {}),
    ...(f['as-group']?.length ? { groups: f['as-group'] } : {}),
  };
  let waitMs = 0;
  if (!f['no-wait']) {
    const d = parseDuration(f.timeout ?? DEFAULT_DECIDE_TIMEOUT);
    if (typeof d !== 'number') throw new Error(`--timeout: ${d.error}`);
    if (d <= 0) throw new Error('--timeout must be greater than zero (or use --no-wait)');
    waitMs = d;
  } else if (f.timeout !== undefined) throw new Error('--timeout and --no-wait together make no sense');
  return {
    decision: verb === 'approve' ? 'Approve' : 'Reject',
    name,
    ...(f.namespace !== undefined ? { namespace: f.namespace } : {}),
    ...(f.reason ? { reason: f.reason } : {}),
    ...(f.kubeconfig !== undefined ? { kubeconfig: f.kubeconfig } : {}),
    ...(f.context !== undefined ? { context: f.context } : {}),
    ...(Object.keys(impersonate).length ? { impersonate } : {}),
    waitMs,
  };
}

/** The generateName of a decision on `request`: readable in `kubectl get approvaldecisions`. */
export function decisionGenerateName(request: string): string {
  const head = request.slice(0, 40).replace(/[-.]+$/, '');
  return `${head || 'decision'}-`;
}
