// Reading the API server's answers safely (pure): every body is parsed here, so an answer that is
// not Kubernetes JSON (a proxy's or a login page's HTML with status 200) is a clear setup error,
// never an uncaught SyntaxError.
import type { Response } from '../../kube/transport.js';

/** Cannot go on: bad kubeconfig, API server unreachable, refusing the credentials, or answering nonsense (exit 2). */
export class DecideSetupError extends Error {}

const header = (r: Response, name: string): string => {
  const v = r.headers[name];
  return (Array.isArray(v) ? v[0] : v) ?? '';
};

/** The start of a body, on one line, for messages. */
export const bodyStart = (body: string, n = 120): string => {
  const s = body.replace(/\s+/g, ' ').trim();
  return s.length > n ? `${s.slice(0, n)}...` : s;
};

/** The body as a JSON object; a DecideSetupError saying what came instead. */
export function jsonAnswer<T extends object>(r: Response, server: string, what: string): T {
  let v: unknown;
  try {
    v = JSON.parse(r.body);
  } catch {
    v = undefined;
  }
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as T;
  const type = header(r, 'content-type') || 'no content-type';
  throw new DecideSetupError(
    `the API server at ${server} answered ${r.status} with a non-JSON body (${type}${r.body ? `: ${JSON.stringify(bodyStart(r.body, 80))}` : ', empty'}) to ${what}; ` +
      'is the kubeconfig pointing at a proxy or a login page instead of the Kubernetes API?',
  );
}

/** The Status message of an error answer, else the body's start. */
export function apiMessage(r: Response): string {
  try {
    const m = (JSON.parse(r.body) as { message?: unknown } | null)?.message;
    if (typeof m === 'string' && m) return m;
  } catch {
    // not a Status (a proxy's page): its start below
  }
  return `HTTP ${r.status}${r.body ? `: ${bodyStart(r.body, 200)}` : ''}`;
}
