// Ends this jest run's e2e resources: the shared control plane (if an e2e file started it), the
// pods' network namespaces, the run directory.
import { execFileSync } from 'node:child_process';

export default function globalTeardown() {
  const dir = process.env.THOUGHTGATE_E2E_RUN;
  if (dir) execFileSync('e2e/support/e2e-run.sh', ['end', dir], { stdio: 'inherit' });
}
