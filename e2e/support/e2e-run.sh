#!/usr/bin/env bash
# The machine-wide bookkeeping of e2e runs: each jest run owns a directory under $runs_root
# (its pid, the shared control plane's stateDir, its pod network namespaces), and pod sandboxes
# (a network namespace plus a veth pair to the host, as a real pod has) named after the run.
#
#   e2e-run.sh gc                    end every run whose jest process is gone (a crash, a kill -9)
#   e2e-run.sh end <runDir>          stop the run's control plane, delete its sandboxes and its dir
#   e2e-run.sh pod-add <runDir> [upstream]
#                                    create a sandbox; prints "<netns> <hostIP> <podIP>", and with
#                                    "upstream" also "<upNetns> <up4> <up6> <pod4> <pod6> <alt4> <alt6>"
#   e2e-run.sh pod-del <netns>       delete a sandbox (the veth goes with the namespace), its
#                                    upstream namespace, their processes and its resolv.conf
#
# Names: netns "tg<run>-<n>", veths "tg<run>-<n>h" (host) and "…c" (pod): under 15 characters.
# Addresses: one /30 per pod from 10.213.0.0/16 (host .1, pod .2), the first one no interface on
# the machine holds, chosen under a machine-wide lock so concurrent runs never share one.
#
# "upstream" plays the world outside the pod (captured pods, e2e/capture.test.ts): a second
# namespace "tg<run>-<n>u" joined to the pod by veths "…p" (pod) and "…q" (upstream), with the
# pod's default routes (IPv4 and IPv6) through it. Addresses derive from the pod's /30 slot, so
# they are as unique as it is: 10.214.<slot>/30 (pod .1, upstream .2) and fd74:0:0:<slot>::/64
# (pod ::1, upstream ::2; no DAD, so both are usable at once), and a second address of each family
# on the upstream's loopback, 10.215.<slot>/32 and fd75:0:0:<slot>::1 (other servers than the
# first address's, as far as the pod can tell), reached by the default routes. The pod's resolv.conf
# (/etc/netns/<netns>/resolv.conf, which `ip netns exec` bind-mounts over /etc/resolv.conf) names
# the upstream's two addresses: the test runs a DNS server there. The host veth stays: the pod
# still reaches the API server through it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cluster_sh="$here/../cluster/cluster.sh"
runs_root="${THOUGHTGATE_E2E_RUNS:-/tmp/thoughtgate-e2e}"

die() { echo "e2e-run.sh: $*" >&2; exit 1; }

run_sandboxes() { # run id → its pod netns names (also of an upstream netns left alone)
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^tg$1-[0-9]+u?$" | sed 's/u$//' | sort -u || true
}

# Deletes a pod netns, its upstream netns and resolv.conf. Processes the test left in them (a
# crashed run's sidecar, DNS server, MCP servers) are ended first: a namespace lives on while a
# process is in it.
del_sandbox() {
  local ns="$1" n pid
  for n in "$ns" "${ns}u"; do
    ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$n" || continue
    for pid in $(ip netns pids "$n" 2>/dev/null || true); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$n" 2>/dev/null || true
  done
  rm -rf "/etc/netns/$ns"
}

end_run() {
  local dir="$1" id ns
  id="$(basename "$dir")"
  [[ "$id" =~ ^[a-z0-9]{4}$ ]] || die "not a run directory: $dir"
  for ns in $(run_sandboxes "$id"); do del_sandbox "$ns"; done
  if [[ -f "$dir/cluster/env" ]]; then "$cluster_sh" stop "$dir/cluster" >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
}

cmd_gc() {
  mkdir -p "$runs_root"
  local dir pid id ns
  for dir in "$runs_root"/*/; do
    [[ -d "$dir" ]] || continue
    dir="${dir%/}"
    pid="$(cat "$dir/pid" 2>/dev/null || true)"
    if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then end_run "$dir"; fi
  done
  # Sandboxes of runs that left no directory at all.
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^tg[a-z0-9]{4}-[0-9]+u?$' || true); do
    id="${ns#tg}"; id="${id%%-*}"
    [[ -d "$runs_root/$id" ]] || del_sandbox "${ns%u}"
  done
}

cmd_pod_add() {
  local dir="$1" upstream="${2:-}" id n ns host pod slot used
  id="$(basename "$dir")"
  [[ -d "$dir" ]] || die "no run directory $dir"
  exec 9>"$runs_root/.net.lock"
  flock 9
  n=0
  while ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "tg$id-$n"; do n=$((n + 1)); done
  ns="tg$id-$n"
  used="$(ip -4 -o addr show | grep -oE '10\.213\.[0-9]+\.[0-9]+' || true)"
  for ((slot = 0; slot < 16384; slot++)); do
    host="10.213.$((slot / 64)).$(((slot % 64) * 4 + 1))"
    grep -qx "$host" <<<"$used" || break
  done
  ((slot < 16384)) || die "no free /30 left in 10.213.0.0/16"
  pod="${host%.*}.$((${host##*.} + 1))"
  ip netns add "$ns"
  if ! {
    ip link add "${ns}h" type veth peer name "${ns}c" &&
      ip link set "${ns}c" netns "$ns" &&
      ip addr add "$host/30" dev "${ns}h" && ip link set "${ns}h" up &&
      ip -n "$ns" addr add "$pod/30" dev "${ns}c" && ip -n "$ns" link set "${ns}c" up &&
      ip -n "$ns" link set lo up && ip -n "$ns" route add default via "$host"
  }; then
    ip netns del "$ns" 2>/dev/null || true
    ip link del "${ns}h" 2>/dev/null || true
    die "could not set up the network of $ns"
  fi
  if [[ "$upstream" != upstream ]]; then
    echo "$ns $host $pod"
    return
  fi
  local up="${ns}u" p4 u4 p6 u6 a4 a6
  p4="10.214.$((slot / 64)).$(((slot % 64) * 4 + 1))"
  u4="${p4%.*}.$((${p4##*.} + 1))"
  p6="fd74:0:0:$(printf %x "$slot")::1"
  u6="${p6%::1}::2"
  a4="10.215.${p4#10.214.}"
  a6="fd75:0:0:$(printf %x "$slot")::1"
  if ! {
    ip netns add "$up" &&
      ip link add "${ns}p" netns "$ns" type veth peer name "${ns}q" netns "$up" &&
      ip -n "$up" link set lo up &&
      ip -n "$ns" addr add "$p4/30" dev "${ns}p" && ip -n "$up" addr add "$u4/30" dev "${ns}q" &&
      ip -n "$ns" -6 addr add "$p6/64" dev "${ns}p" nodad && ip -n "$up" -6 addr add "$u6/64" dev "${ns}q" nodad &&
      ip -n "$ns" link set "${ns}p" up && ip -n "$up" link set "${ns}q" up &&
      ip -n "$up" addr add "$a4/32" dev lo && ip -n "$up" -6 addr add "$a6/128" dev lo nodad &&
      ip -n "$ns" route replace default via "$u4" && ip -n "$ns" -6 route add default via "$u6" &&
      mkdir -p "/etc/netns/$ns" &&
      printf 'nameserver %s\nnameserver %s\noptions timeout:1 attempts:2\n' "$u4" "$u6" >"/etc/netns/$ns/resolv.conf"
  }; then
    del_sandbox "$ns"
    die "could not set up the upstream network of $ns"
  fi
  echo "$ns $host $pod $up $u4 $u6 $p4 $p6 $a4 $a6"
}

case "${1:-}" in
  gc) cmd_gc ;;
  end) end_run "${2:?usage: $0 end <runDir>}" ;;
  pod-add) cmd_pod_add "${2:?usage: $0 pod-add <runDir> [upstream]}" "${3:-}" ;;
  pod-del) del_sandbox "${2:?usage: $0 pod-del <netns>}" ;;
  *) echo "usage: $0 gc | end <runDir> | pod-add <runDir> [upstream] | pod-del <netns>" >&2; exit 2 ;;
esac
