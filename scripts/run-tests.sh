#!/usr/bin/env bash
# Runs jest and ends with one plain summary line ("N passed, N failed[, N skipped]"), which CI reads.
#
# With no arguments (`make test`): two lanes at once, because the e2e tier spends most of its time
# waiting (for the API server, for Slack polling) on one control plane its files take in turn:
#   unit + integration   everything outside e2e/, one jest worker
#   e2e                  e2e/, one jest worker (the files share one control plane)
# Each lane's log is printed when both have ended (.dev/jest-<lane>.log). With arguments: one jest
# run with them (e.g. `scripts/run-tests.sh --testPathIgnorePatterns=/e2e/`).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
mkdir -p .dev

summary() { # result files...
  # shellcheck disable=SC2016 # the ${…} below are JavaScript's
  node -e '
    const fs = require("fs");
    let passed = 0, failed = 0, skipped = 0, broken = 0, missing = 0;
    for (const f of process.argv.slice(1)) {
      if (!fs.existsSync(f)) { missing++; continue; }
      const r = JSON.parse(fs.readFileSync(f, "utf8"));
      passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
      if (r.numFailedTestSuites > 0 && r.numFailedTests === 0) broken += r.numFailedTestSuites;
    }
    if (missing) failed += missing; // a lane that wrote no results did not pass
    console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
    if (broken) console.log(`(${broken} test suites failed to run)`);
  ' "$@"
}

export NODE_OPTIONS=--experimental-vm-modules

if [ "$#" -gt 0 ]; then
  results=.dev/jest-results.json
  rm -f "$results"
  npx jest --json --outputFile="$results" "$@"
  code=$?
  summary "$results"
  exit $code
fi

# One build for both lanes (test/global-setup.js skips its own when told).
node scripts/build.mjs || exit 1
export THOUGHTGATE_TEST_BUILT=1
e2e="^$PWD/e2e/"
rm -f .dev/jest-unit.json .dev/jest-e2e.json
npx jest --maxWorkers=1 --json --outputFile=.dev/jest-unit.json \
  --testPathIgnorePatterns /node_modules/ /dist/ /.dev/ "$e2e" >.dev/jest-unit.log 2>&1 &
unit=$!
npx jest --maxWorkers=1 --json --outputFile=.dev/jest-e2e.json "$e2e" >.dev/jest-e2e.log 2>&1 &
e2e_pid=$!
wait "$unit"
unit_code=$?
wait "$e2e_pid"
e2e_code=$?
echo "==== unit + integration (.dev/jest-unit.log)"
cat .dev/jest-unit.log
echo "==== e2e (.dev/jest-e2e.log)"
cat .dev/jest-e2e.log
summary .dev/jest-unit.json .dev/jest-e2e.json
[ "$unit_code" -eq 0 ] && [ "$e2e_code" -eq 0 ]
