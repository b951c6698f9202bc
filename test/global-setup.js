// Tests that run the real `thoughtgate` binary need dist/ built from the current sources.
import { execFileSync } from 'node:child_process';
export default function globalSetup() {
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
}
