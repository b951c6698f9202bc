#!/usr/bin/env bash
# The network tools the capture tests use, from Debian's packages: iptables (both backends,
# nft and legacy), ip (network namespaces, veth), setpriv (run as another uid), dnsmasq (the e2e
# pods' DNS server). nft itself is optional (nftables): iptables-nft talks to the kernel without it.
#
#   scripts/net-tools.sh install   install what is missing (apt-get; needs root), then check
#   scripts/net-tools.sh check     list what is missing; exit 1 if anything is
set -euo pipefail

die() { echo "net-tools: $*" >&2; exit 1; }

# command → the Debian package that provides it.
declare -A package_of=(
  [iptables-nft]=iptables
  [iptables-legacy]=iptables
  [iptables-nft-restore]=iptables
  [iptables-legacy-restore]=iptables
  [ip6tables-nft-restore]=iptables
  [ip6tables-legacy-restore]=iptables
  [ip]=iproute2
  [setpriv]=util-linux
  [dnsmasq]=dnsmasq-base
)

# The sbin directories are not on every user's PATH; the tools live there. -x: bash's `command -v`
# names a file it cannot execute when it finds no other.
found() {
  local path
  path="$(PATH="$PATH:/usr/sbin:/sbin" command -v "$1" 2>/dev/null)" && [[ -x "$path" ]]
}

missing_packages() {
  local cmd
  for cmd in "${!package_of[@]}"; do
    found "$cmd" || echo "${package_of[$cmd]}"
  done | sort -u
}

cmd_check() {
  local missing
  missing="$(missing_packages)"
  if [[ -n "$missing" ]]; then
    echo "net-tools: missing packages: $(paste -sd " " <<<"$missing")" >&2
    return 1
  fi
  found nft || echo "net-tools: nft (package nftables) is not installed; optional" >&2
  echo "net-tools: iptables (nft, legacy), ip, setpriv, dnsmasq present" >&2
}

cmd_install() {
  local -a missing
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]} == 0)); then
    cmd_check
    return
  fi
  [[ "$(id -u)" == 0 ]] || die "missing packages: ${missing[*]}; installing them needs root: sudo $0 install"
  found apt-get || die "missing packages: ${missing[*]}; no apt-get here: install them with this system's package manager"
  echo "net-tools: installing ${missing[*]}" >&2
  apt-get update -qq >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    die "apt-get install ${missing[*]} failed"
  cmd_check
}

case "${1:-}" in
  install) cmd_install ;;
  check) cmd_check ;;
  *) die "usage: $0 install|check" ;;
esac
