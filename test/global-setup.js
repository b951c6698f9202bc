// Tests that run the real `thoughtgate` binary need dist/ built from the current sources.
// The e2e tier shares one control plane per jest run: this only reserves the run's directory
// (machine-wide, so crashed runs of any worktree are cleaned up here); the first e2e file that
// needs the cluster starts it (e2e/support/k8s.ts), and global-teardown.js stops it.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const runsRoot = process.env.THOUGHTGATE_E2E_RUNS ?? '/tmp/thoughtgate-e2e';

export default function globalSetup() {
  // scripts/run-tests.sh builds once for its two lanes and says so.
  if (process.env.THOUGHTGATE_TEST_BUILT !== '1') execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  execFileSync('e2e/support/e2e-run.sh', ['gc'], { stdio: 'inherit' });
  mkdirSync(runsRoot, { recursive: true });
  let dir;
  for (;;) {
    const id = [...randomBytes(4)].map((b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('');
    dir = join(runsRoot, id);
    try {
      mkdirSync(dir); // fails if another run has this id
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
  }
  writeFileSync(join(dir, 'pid'), String(process.pid));
  // Jest starts its workers after this, so they inherit it.
  process.env.THOUGHTGATE_E2E_RUN = dir;
}
