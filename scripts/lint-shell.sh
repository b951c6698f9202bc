#!/usr/bin/env bash
# `make lint`, shell part: shellcheck over every shell script under scripts/ and e2e/. -x with
# source-path SCRIPTDIR follows the `source`d scripts/lib files, so variables set for them count.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v shellcheck >/dev/null || {
  echo "lint-shell: shellcheck is not installed (apt-get install shellcheck, brew install shellcheck)" >&2
  exit 1
}
mapfile -t files < <(find scripts e2e -name node_modules -prune -o -name '*.sh' -print | sort)
shellcheck -x -P SCRIPTDIR "${files[@]}"
echo "lint-shell: ${#files[@]} scripts clean"
