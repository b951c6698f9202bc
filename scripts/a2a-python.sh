#!/usr/bin/env bash
# The Python A2A client the tests drive (test/a2a-py/client.py): a venv with the official a2a-sdk
# (PyPI), pinned with every file's hash in scripts/a2a-python-requirements.txt and installed with
# pip --require-hashes, once, into the tool cache.
#
#   scripts/a2a-python.sh install   create the venv unless it is current; last stdout line = its python
#   scripts/a2a-python.sh path      print the venv's python (no install; exit 1 when not installed)
#
# Cache: ${THOUGHTGATE_CACHE:-$HOME/.cache/thoughtgate}/a2a-sdk-<version>. A stamp file holds the
# requirements file's hash; a change reinstalls. Needs python3 >= 3.10 (the SDK's floor).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/a2a-python-requirements.txt"
cache_root="${THOUGHTGATE_CACHE:-$HOME/.cache/thoughtgate}"

die() { echo "a2a-python: $*" >&2; exit 1; }

version="$(sed -n 's/^a2a-sdk==\([^ ]*\).*/\1/p' "$requirements")"
[[ -n "$version" ]] || die "no a2a-sdk pin in $requirements"
venv="$cache_root/a2a-sdk-$version"
python="$venv/bin/python"

stamp_value() { sha256sum "$requirements" | cut -d' ' -f1; }

is_installed() {
  [[ -f "$venv/stamp" && "$(cat "$venv/stamp")" == "$(stamp_value)" && -x "$python" ]]
}

build() {
  command -v python3 >/dev/null || die "python3 (>= 3.10) is required for the Python A2A client"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "python3 >= 3.10 is required for a2a-sdk $version (found $(python3 --version 2>&1))"
  local start=$SECONDS
  echo "a2a-python: installing a2a-sdk $version into $venv" >&2
  # A fresh venv each time: pip never upgrades in place into a mix of old and new pins.
  rm -rf "${venv:?}"
  python3 -m venv "$venv" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$python" -m pip install -q --disable-pip-version-check --require-hashes -r "$requirements" >&2 ||
    die "pip could not install $requirements into $venv"
  "$python" -c 'import a2a.client' || die "the venv cannot import a2a.client"
  stamp_value > "$venv/stamp"
  echo "a2a-python: installed in $((SECONDS - start))s" >&2
}

install() {
  if ! is_installed; then
    mkdir -p "$cache_root"
    # Parallel callers: one installs, the others wait and reuse.
    exec 9>"$venv.lock"
    flock 9
    is_installed || build
    flock -u 9
  fi
  echo "$python"
}

path() {
  is_installed || die "not installed ($venv): run \`make a2a-peers\` or \`scripts/a2a-python.sh install\`"
  echo "$python"
}

# Everything runs from main, called on the last line: bash reads a script as it runs, so a
# script edited (or checked out) while it runs would otherwise execute a mix of old and new text.
main() {
  case "${1:-}" in
    install) install ;;
    path) path ;;
    *) echo "usage: $0 install|path" >&2; exit 2 ;;
  esac
}

main "$@"; exit $?
