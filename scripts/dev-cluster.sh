#!/usr/bin/env bash
# `make dev-cluster` / `make dev-cluster-down`: the local development loop on a real API server.
#   up:   etcd + kube-apiserver + kube-controller-manager (e2e/cluster/cluster.sh, state in
#         .dev/cluster), the CRDs, and the operator (this tree's dist/cli.js) in the background with
#         its webhook registered by URL; returns once everything is ready.
#   down: stops exactly what `up` started.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dev="$root/.dev"
state="$dev/cluster"
pidfile="$dev/operator.pid"
webhook_port=${DEV_WEBHOOK_PORT:-9443}
metrics_port=${DEV_METRICS_PORT:-8080}
kubectl_bin=$(command -v /usr/lib/google-cloud-sdk/bin/kubectl.1.33 || command -v kubectl)

operator_running() {
  [ -f "$pidfile" ] || return 1
  local pid; pid=$(cat "$pidfile")
  # The pid must still be our operator, not a recycled pid.
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "dist/cli.js operator"
}

up() {
  mkdir -p "$dev"
  THOUGHTGATE_K8S_BIN_DIR=$(scripts/k8s-tools.sh install | tail -n 1) e2e/cluster/cluster.sh start "$state" >&2
  ln -sf "$state/kubeconfig" "$dev/kubeconfig"
  local k=("$kubectl_bin" --kubeconfig "$dev/kubeconfig")
  "${k[@]}" apply -f crds/ >/dev/null
  "${k[@]}" wait --for=condition=Established crd/governancepolicies.thoughtgate.io crd/approvalchannels.thoughtgate.io --timeout=30s >/dev/null
  "${k[@]}" get namespace thoughtgate-system >/dev/null 2>&1 || "${k[@]}" create namespace thoughtgate-system >/dev/null
  if ! operator_running; then
    nohup node dist/cli.js operator --kubeconfig "$dev/kubeconfig" --namespace thoughtgate-system --identity dev-operator \
      --metrics-port "$metrics_port" --metrics-bind 127.0.0.1 \
      --webhook-port "$webhook_port" --webhook-bind 127.0.0.1 --webhook-url "https://127.0.0.1:$webhook_port" --webhook-san 127.0.0.1 \
      --manage-webhook-config --sidecar-image ghcr.io/thoughtgate/thoughtgate:dev >"$dev/operator.log" 2>&1 &
    echo $! >"$pidfile"
  fi
  for _ in $(seq 1 150); do
    if curl -fs "http://127.0.0.1:$metrics_port/readyz" >/dev/null 2>&1; then break; fi
    if ! operator_running; then echo "the operator exited; last lines of $dev/operator.log:" >&2; tail -n 20 "$dev/operator.log" >&2; exit 1; fi
    sleep 0.2
  done
  curl -fs "http://127.0.0.1:$metrics_port/readyz" >/dev/null || { echo "operator not ready; see $dev/operator.log" >&2; exit 1; }
  cat <<MSG
dev cluster ready.
  export KUBECONFIG=$dev/kubeconfig
  operator: pid $(cat "$pidfile"), log $dev/operator.log, http://127.0.0.1:$metrics_port/metrics
  try:
    kubectl create namespace demo && kubectl label namespace demo thoughtgate.io/inject=enabled
    kubectl apply -n demo -f examples/crds/governancepolicy.yaml
    kubectl get gp -n demo                 # Ready, hash
    kubectl run agent -n demo --image=busybox --labels=app=agent -- sleep 1d
    kubectl get pod agent -n demo -o yaml  # the injected sidecar (no kubelet runs: it stays Pending)
    node dist/scripts/run-sidecar.js demo agent   # run that sidecar here, as the kubelet would
  stop with: make dev-cluster-down
MSG
}

down() {
  if operator_running; then
    local pid; pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 1 50); do [ -d "/proc/$pid" ] && grep -q zombie "/proc/$pid/status" 2>/dev/null && break; [ -d "/proc/$pid" ] || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
  if [ -d "$state" ]; then e2e/cluster/cluster.sh stop "$state" >&2; fi
  echo "dev cluster stopped (state kept in $state; rm -rf .dev to start afresh)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
