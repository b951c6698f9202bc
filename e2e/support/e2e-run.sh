#!/usr/bin/env bash
# The machine-wide bookkeeping of e2e runs: each jest run owns a directory under $runs_root
# (its pid, the shared control plane's stateDir, its pod network namespaces), and pod sandboxes
# (a network namespace plus a veth pair to the host, as a real pod has) named after the run.
#
#   e2e-run.sh gc                    end every run whose jest process is gone (a crash, a kill -9)
#   e2e-run.sh end <runDir>          stop the run's control plane, delete its sandboxes and its dir
#   e2e-run.sh pod-add <runDir>      create a sandbox; prints "<netns> <hostIP> <podIP>"
#   e2e-run.sh pod-del <netns>       delete a sandbox (the veth goes with the namespace)
#
# Names: netns "tg<run>-<n>", veths "tg<run>-<n>h" (host) and "…c" (pod): under 15 characters.
# Addresses: one /30 per pod from 10.213.0.0/16 (host .1, pod .2), the first one no interface on
# the machine holds, chosen under a machine-wide lock so concurrent runs never share one.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cluster_sh="$here/../cluster/cluster.sh"
runs_root="${THOUGHTGATE_E2E_RUNS:-/tmp/thoughtgate-e2e}"

die() { echo "e2e-run.sh: $*" >&2; exit 1; }

run_sandboxes() { # run id → its netns names
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^tg$1-[0-9]+$" || true
}

end_run() {
  local dir="$1" id ns
  id="$(basename "$dir")"
  [[ "$id" =~ ^[a-z0-9]{4}$ ]] || die "not a run directory: $dir"
  for ns in $(run_sandboxes "$id"); do ip netns del "$ns" 2>/dev/null || true; done
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
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^tg[a-z0-9]{4}-[0-9]+$' || true); do
    id="${ns#tg}"; id="${id%%-*}"
    [[ -d "$runs_root/$id" ]] || ip netns del "$ns" 2>/dev/null || true
  done
}

cmd_pod_add() {
  local dir="$1" id n ns host pod slot used
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
  echo "$ns $host $pod"
}

case "${1:-}" in
  gc) cmd_gc ;;
  end) end_run "${2:?usage: $0 end <runDir>}" ;;
  pod-add) cmd_pod_add "${2:?usage: $0 pod-add <runDir>}" ;;
  pod-del) ip netns del "${2:?usage: $0 pod-del <netns>}" 2>/dev/null || true ;;
  *) echo "usage: $0 gc | end <runDir> | pod-add <runDir> | pod-del <netns>" >&2; exit 2 ;;
esac
