// `thoughtgate check` flags → CheckOptions (pure; cli.ts parses argv and wires it), and its --help.
import { parseDuration } from '../api/duration.js';
import { DEFAULT_NAMESPACE } from './installation.js';
import type { CheckOptions } from './run.js';

/**
 * The certificate alert's threshold with cert-manager (prometheusRule.thresholds.certificateExpiryDays).
 * Without it the alert watches the operator's week-long serving certificates (under 2 days) while
 * check reads the operator's CA (a year, rotated with a third left): 14 days says the rotation failed.
 */
export const DEFAULT_CERT_WARN = '14d';
/** The alert's threshold (prometheusRule.thresholds.approvalWaitSeconds: 1800). */
export const DEFAULT_APPROVAL_WARN = '30m';
/** --wait without a value. */
export const DEFAULT_WAIT = '5m';

export const CHECK_HELP = `Usage: thoughtgate check [--pre] [options]

Checks a ThoughtGate installation, or with --pre whether a cluster and your
credentials can take one, and prints each check with ✔ (passed), ‼ (warning)
or ✖ (failed, with a hint saying what to do). docs/check.md lists every check.

  --pre                    before installing: the API server's version (1.30 or
                           later: ValidatingAdmissionPolicy v1, native sidecars),
                           your permissions for what the chart creates and
                           grants, no ThoughtGate webhook registered yet, no CRD
                           of ours at another version; names (without asking)
                           what the optional values prometheusRule,
                           metrics.serviceMonitor and webhook.certManager also
                           create
  (default)                after installing: CRDs served and stored at this
                           release's version, the operator Deployment available
                           and a replica leading (fresh Lease), the webhook's
                           configuration, certificate and caBundle, labelled
                           namespaces, every GovernancePolicy Valid and rendered,
                           every ApprovalChannel Ready, the ApprovalDecision
                           identity policy as shipped and enforced (a dry-run
                           decision in another user's name is refused), pending
                           ApprovalRequests and their age, the capture report
  -n, --namespace <ns>     where ThoughtGate is (or will be) installed
                           (default ${DEFAULT_NAMESPACE})
  --kubeconfig <file>      default: $KUBECONFIG, else ~/.kube/config
  --context <name>         a kubeconfig context other than the current one
  -o, --output <format>    human (default) | json (one document, docs/check.md)
  --wait [<duration>]      re-check every 2s until nothing fails, at most this
                           long (default ${DEFAULT_WAIT} when given without a value)
  --cert-expiry-warning <d>  warn when the webhook certificate expires sooner
                           (default ${DEFAULT_CERT_WARN}: with cert-manager the certificate
                           alert's threshold; without it check reads the operator's
                           CA, which the operator rotates with months left)
  --approval-age-warning <d> warn about ApprovalRequests pending longer
                           (default ${DEFAULT_APPROVAL_WARN}, as the approvals alert)
  -h, --help               show this help

Exit status: 0 every check passed (warnings allowed), 1 a check failed,
2 bad options, or the API server cannot be reached or refuses the credentials.
`;

export interface CheckFlags {
  pre?: boolean;
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  output?: string;
  wait?: string | boolean;
  'cert-expiry-warning'?: string;
  'approval-age-warning'?: string;
}

function duration(flag: string, text: string): number {
  const d = parseDuration(text);
  if (typeof d !== 'number') throw new Error(`--${flag}: ${d.error}`);
  return d;
}

/** Throws an Error with the message for a usage error. */
export function checkOptions(f: CheckFlags): CheckOptions {
  const output = f.output ?? 'human';
  if (output !== 'human' && output !== 'json') throw new Error(`--output must be human or json, got "${output}"`);
  const wait = f.wait === undefined || f.wait === false ? 0 : duration('wait', f.wait === true ? DEFAULT_WAIT : f.wait);
  return {
    pre: f.pre === true,
    namespace: f.namespace ?? DEFAULT_NAMESPACE,
    ...(f.kubeconfig ? { kubeconfig: f.kubeconfig } : {}),
    ...(f.context ? { context: f.context } : {}),
    output,
    waitMs: wait,
    settings: {
      certWarnMs: duration('cert-expiry-warning', f['cert-expiry-warning'] ?? DEFAULT_CERT_WARN),
      approvalWarnMs: duration('approval-age-warning', f['approval-age-warning'] ?? DEFAULT_APPROVAL_WARN),
    },
  };
}

/** `--wait` takes an optional value, which node's parseArgs cannot say: a bare one becomes `--wait=<default>`. */
export function withWaitDefault(args: readonly string[]): string[] {
  return args.map((a, i) => (a === '--wait' && (i + 1 >= args.length || args[i + 1]!.startsWith('-')) ? `--wait=${DEFAULT_WAIT}` : a));
}
