// The operator side of the approval e2e files (approvals, approvals-buttons): operators started in
// process against the shared control plane, with short leases and fast Slack timings, their logs
// kept (prefixed by identity) for a timeout's detail and TG_E2E_LOG, and until() that shows them.
import * as k8s from '@kubernetes/client-node';
import { createLogger, type Logger } from '../../lib/log.js';
import { startOperator, type ApprovalOptions, type Operator } from '../../operator/operator.js';
import { cluster, until as poll } from './k8s.js';

export interface ApprovalOperators {
  /** Every log line of the operators ([identity] first) and of `log`. */
  lines: string[];
  /** A logger into `lines` (the sidecar side of a test). */
  log: Logger;
  /** Operators running now. */
  operators: Operator[];
  /** until() with the last 30 log lines on a timeout. */
  until<T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, limitMs?: number): Promise<T>;
  /** Starts an operator (lease 3 s) in `namespace`, Slack at slackUrl(); `approvals` over the fast defaults. */
  operator(identity: string, approvals?: ApprovalOptions): Promise<Operator>;
  stop(op: Operator): Promise<void>;
}

export function approvalOperators(namespace: string, slackUrl: () => string): ApprovalOperators {
  const lines: string[] = [];
  const operators: Operator[] = [];
  return {
    lines,
    log: createLogger('debug', (l) => lines.push(l)),
    operators,
    until: (what, fn, limitMs = 30_000) => poll(what, fn, limitMs, { detail: () => lines.slice(-30).join('') }),
    async operator(identity, approvals = {}) {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(cluster().kubeconfig);
      const op = await startOperator({
        kc,
        namespace,
        identity,
        log: createLogger('debug', (l) => lines.push(`[${identity}] ${l}`)),
        metricsPort: 0,
        metricsBind: '127.0.0.1',
        leaseDurationSec: 3,
        resyncMs: 60_000,
        approvals: { slackApiUrls: [slackUrl()], postGraceMs: 3000, expiryGraceMs: 1000, secretPollMs: 1000, ...approvals },
      });
      operators.push(op);
      return op;
    },
    async stop(op) {
      await op.close();
      operators.splice(operators.indexOf(op), 1);
    },
  };
}
