// How a read that failed becomes a check result: the category of the API server's answer picks
// the hint (a 403 is the user's permissions, anything else is the connection or the server).
import type { CheckResult, Read } from './model.js';

export function readFailure(id: string, group: string, what: string, r: Extract<Read<unknown>, { ok: false }>): CheckResult {
  // A custom resource whose CRD is missing or not served: the CRD check already says so.
  if (r.category === 'not-found') return { id, group, status: 'skip', message: `cannot read ${what}: the API server does not serve them (see the CRD checks)` };
  const hint =
    r.category === 'forbidden' || r.category === 'unauthorized'
      ? `your credentials may not read ${what}: run the check as a cluster administrator (--kubeconfig/--context)`
      : `the API server did not answer the read of ${what}; retry, or look at the API server's health`;
  return { id, group, status: 'fail', message: `cannot read ${what}: ${r.error}`, hint };
}

export const skipped = (id: string, group: string, message: string): CheckResult => ({ id, group, status: 'skip', message });
