// `thoughtgate approve|reject` in the e2e files: the built binary run as a person would (their
// kubeconfig, a HOME of their own), and the ApprovalRequests it decides, written as a sidecar
// writes them (for the cases that need no held call).
import { execFile } from 'node:child_process';
import { CLI } from '../../test/support/processes.js';
import { kubectl } from './k8s.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** Runs the CLI with `args`, HOME `home` and only PATH from this environment. */
export const decideCli = (home: string, args: string[]): Promise<CliResult> =>
  new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env['PATH'] ?? '', HOME: home } }, (error, out, err) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });

/** An ApprovalRequest `name` in `ns` for channel `channel`, pending until `expiresInMs` from now. */
export async function createApprovalRequest(ns: string, name: string, expiresInMs = 300_000, channel = 'approvals'): Promise<void> {
  await kubectl(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({
      apiVersion: 'thoughtgate.io/v1alpha1',
      kind: 'ApprovalRequest',
      metadata: { name },
      spec: {
        channel,
        workload: { namespace: ns, serviceAccount: 'agent', pod: 'agent' },
        source: 'up',
        method: 'tools/call',
        tool: 'deploy',
        arguments: { service: name },
        requestHash: 'a'.repeat(64),
        taskId: name,
        reason: 'deploys need approval',
        expiresAt: new Date(Date.now() + expiresInMs).toISOString(),
      },
    }),
  );
}
