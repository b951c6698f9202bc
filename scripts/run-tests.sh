#!/usr/bin/env bash
# Runs jest and ends with one plain summary line ("N passed, N failed[, N skipped]"), which CI reads.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
mkdir -p .dev
results=.dev/jest-results.json
rm -f "$results"
NODE_OPTIONS=--experimental-vm-modules npx jest --json --outputFile="$results" "$@"
code=$?
if [ -f "$results" ]; then
  # shellcheck disable=SC2016 # the ${…} below are JavaScript's
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
    if (r.numFailedTestSuites > 0 && r.numFailedTests === 0) console.log(`(${r.numFailedTestSuites} test suites failed to run)`);
  ' "$results"
else
  echo "0 passed, 1 failed"
fi
exit $code
