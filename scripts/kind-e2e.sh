#!/usr/bin/env bash
# `make kind-e2e`: ThoughtGate on a real kubelet. Builds both images, loads them into a kind
# cluster, installs charts/thoughtgate with helm, runs server-everything in the cluster, creates a
# namespace labelled thoughtgate.io/inject=enabled with a GovernancePolicy that denies one tool, and
# a real agent pod; then checks that the webhook injected a native sidecar (an init container with
# restartPolicy: Always) that started before the app, that its startup, readiness and liveness
# probes pass, and that it enforces the policy: the denied tool is refused (-32003), an allowed
# one answers. Everything it created is removed on exit (trap), the cluster too if it made it.
#
# Needs: docker (a running engine), kind, helm 3, kubectl; network access for the image builds
# (node:24-bookworm-slim, kindest/node and `npm ci`). Nothing inside the cluster reaches the
# internet: server-everything and the agent run in the "tools" image, the Dockerfiles' build stage
# (the repository with its dev dependencies under /src).
#
# Variables:
#   KIND_CLUSTER=thoughtgate-e2e  cluster name; an existing cluster of that name is reused (and kept)
#   KIND_NODE_IMAGE=              node image for a new cluster (default: kind's; needs Kubernetes >= 1.30)
#   IMAGE_TAG=kind-e2e            tag of the three images built and loaded
#   KIND_E2E_SKIP_BUILD=1         use the images already built with that tag
#   KIND_E2E_KEEP=1               leave everything in place for a look (kubeconfig path printed)
#
# Not run on the machine it was written on (no Docker engine there): written against the chart's
# values, the webhook's names (api/wellknown.ts, webhook/mutate.ts) and the CRDs, and shellchecked.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CLUSTER="${KIND_CLUSTER:-thoughtgate-e2e}"
TAG="${IMAGE_TAG:-kind-e2e}"
OPERATOR_REPO=thoughtgate/thoughtgate-operator
SIDECAR_REPO=thoughtgate/thoughtgate-sidecar
TOOLS_IMAGE="thoughtgate/thoughtgate-e2e-tools:$TAG"
RELEASE=thoughtgate
OPNS=thoughtgate-system
MCPNS=kind-e2e-mcp
NS=kind-e2e-agents
# api/wellknown.ts and webhook/mutate.ts
SIDECAR=thoughtgate
ADMIN_PORT=7469
DENIED_BY_RULE=-32003

say() { printf '\n== %s\n' "$*"; }
die() { printf 'kind-e2e: FAIL: %s\n' "$*" >&2; exit 1; }
for tool in docker kind helm kubectl; do
  command -v "$tool" >/dev/null || die "$tool is not installed (needs docker, kind, helm and kubectl)"
done
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info)"

work="$(mktemp -d)"
export KUBECONFIG="$work/kubeconfig"
created_cluster=0
installed=0

diagnose() {
  say "diagnostics"
  kubectl get pods -A -o wide || true
  kubectl describe pod agent -n "$NS" || true
  kubectl logs agent -n "$NS" -c "$SIDECAR" --tail=50 || true
  kubectl logs agent -n "$NS" -c agent --tail=20 || true
  kubectl logs -n "$OPNS" -l app.kubernetes.io/component=operator --tail=80 || true
  kubectl get events -n "$NS" --sort-by=.lastTimestamp || true
  kubectl get governancepolicy -n "$NS" -o yaml || true
}

cleanup() {
  local code=$?
  trap - EXIT
  if [[ $code -ne 0 && -s "$KUBECONFIG" ]]; then diagnose; fi
  if [[ "${KIND_E2E_KEEP:-}" == 1 ]]; then
    echo "kind-e2e: kept; KUBECONFIG=$KUBECONFIG"
    exit "$code"
  fi
  if [[ $created_cluster == 1 ]]; then
    kind delete cluster --name "$CLUSTER" || true
  elif [[ -s "$KUBECONFIG" ]]; then
    kubectl delete namespace "$NS" "$MCPNS" --ignore-not-found --wait=false || true
    if [[ $installed == 1 ]]; then helm uninstall "$RELEASE" -n "$OPNS" --wait || true; fi
  fi
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT

# until <seconds> <description> <command...>: retries the command every second.
until_ok() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after waiting for: $what"
    sleep 1
  done
}

if [[ "${KIND_E2E_SKIP_BUILD:-}" != 1 ]]; then
  say "building images ($TAG)"
  docker build -f Dockerfile.sidecar -t "$SIDECAR_REPO:$TAG" .
  docker build -f Dockerfile.operator -t "$OPERATOR_REPO:$TAG" .
  # The build stage: node, the source tree and every dependency (server-everything, the MCP SDK).
  docker build -f Dockerfile.sidecar --target build -t "$TOOLS_IMAGE" .
fi

say "kind cluster $CLUSTER"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind get kubeconfig --name "$CLUSTER" >"$KUBECONFIG"
else
  kind create cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG" --wait 120s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
  created_cluster=1
fi
minor="$(kubectl version -o json | sed -n '/serverVersion/,/}/s/.*"minor": *"\([0-9]*\).*/\1/p')"
# The chart's kubeVersion: ValidatingAdmissionPolicy v1 (the ApprovalDecision identity check) and native sidecars.
[[ -n "$minor" && "$minor" -ge 30 ]] || die "the cluster runs Kubernetes 1.${minor:-?}; ThoughtGate needs 1.30 or later (ValidatingAdmissionPolicy v1, native sidecars)"
for image in "$OPERATOR_REPO:$TAG" "$SIDECAR_REPO:$TAG" "$TOOLS_IMAGE"; do
  kind load docker-image --name "$CLUSTER" "$image"
done

say "helm install $RELEASE (chart charts/thoughtgate)"
# pullPolicy Never: a pod can only use the images just loaded, never a stale pull of the same tag.
installed=1
helm upgrade --install "$RELEASE" charts/thoughtgate -n "$OPNS" --create-namespace \
  --set replicaCount=1 \
  --set image.repository="$OPERATOR_REPO" --set image.tag="$TAG" --set image.pullPolicy=Never \
  --set sidecar.image.repository="$SIDECAR_REPO" --set sidecar.image.tag="$TAG" --set sidecar.pullPolicy=Never \
  --set sidecar.injectionMode=native --set logLevel=debug \
  --wait --timeout 5m
# The operator writes its CA into the webhook configuration; until then pod creates in an injected
# namespace fail (failurePolicy Fail).
has_ca_bundle() { [[ -n "$(kubectl get mutatingwebhookconfiguration "$RELEASE" -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" ]]; }
until_ok 120 "the webhook's caBundle" has_ca_bundle

say "server-everything in $MCPNS"
kubectl create namespace "$MCPNS" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -n "$MCPNS" -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: { name: everything }
spec:
  selector: { matchLabels: { app: everything } }
  template:
    metadata: { labels: { app: everything } }
    spec:
      containers:
        - name: everything
          image: $TOOLS_IMAGE
          imagePullPolicy: Never
          command: [node, /src/node_modules/@modelcontextprotocol/server-everything/dist/index.js, streamableHttp]
          env: [{ name: PORT, value: "3001" }]
          ports: [{ name: mcp, containerPort: 3001 }]
          readinessProbe: { tcpSocket: { port: mcp }, periodSeconds: 1 }
---
apiVersion: v1
kind: Service
metadata: { name: everything }
spec:
  selector: { app: everything }
  ports: [{ name: mcp, port: 3001, targetPort: mcp }]
YAML
kubectl rollout status -n "$MCPNS" deployment/everything --timeout=180s

say "namespace $NS (thoughtgate.io/inject=enabled) and its GovernancePolicy"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace "$NS" thoughtgate.io/inject=enabled --overwrite
kubectl apply -n "$NS" -f - <<YAML
apiVersion: thoughtgate.io/v1alpha1
kind: GovernancePolicy
metadata: { name: kind-e2e }
spec:
  sources:
    - name: everything
      url: http://everything.$MCPNS.svc.cluster.local:3001/mcp
  rules:
    - name: no-env
      match: { tool: get-env, source: everything }
      action: deny
      reason: the agent must not read the server's environment
  defaultAction: forward
YAML
kubectl wait -n "$NS" governancepolicy/kind-e2e --for=condition=Ready --timeout=60s
until_ok 60 "ConfigMap $NS/thoughtgate-config" kubectl get configmap thoughtgate-config -n "$NS"

say "the agent pod"
kubectl apply -n "$NS" -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: agent
  labels: { app: agent }
spec:
  terminationGracePeriodSeconds: 5
  containers:
    - name: agent
      image: $TOOLS_IMAGE
      imagePullPolicy: Never
      workingDir: /src
      command: [node, /src/scripts/kind-agent.mjs, app]
YAML
kubectl wait -n "$NS" pod/agent --for=condition=Ready --timeout=180s
ready_at=$SECONDS

say "checks"
jp() { kubectl get pod agent -n "$NS" -o jsonpath="$1"; }
status() { jp "{.status.initContainerStatuses[?(@.name==\"$SIDECAR\")]$1}"; }

# Injected as a native sidecar: the first init container, restartPolicy Always.
[[ "$(jp '{.spec.initContainers[0].name}')" == "$SIDECAR" ]] || die "the first init container is not $SIDECAR: $(jp '{.spec.initContainers[*].name}')"
[[ "$(jp '{.spec.initContainers[0].restartPolicy}')" == Always ]] || die "$SIDECAR is not a native sidecar (restartPolicy: $(jp '{.spec.initContainers[0].restartPolicy}'))"
[[ -n "$(jp '{.metadata.annotations.thoughtgate\.io/injected}')" ]] || die "no thoughtgate.io/injected annotation"
echo "ok: native sidecar (initContainers[0], restartPolicy Always)"

# Started before the app: the app's first act is one /health request to the sidecar, and the
# kubelet's timestamps agree (RFC 3339 in UTC compare as strings).
until_ok 30 "the agent's first log line" bash -c "kubectl logs agent -n '$NS' -c agent | grep -q kind-agent:"
first="$(kubectl logs agent -n "$NS" -c agent | grep -m1 kind-agent:)"
[[ "$first" == *"answered /health before the app started"* ]] || die "the sidecar was not up when the app started: $first"
sidecar_started="$(status '.state.running.startedAt')"
app_started="$(jp '{.status.containerStatuses[?(@.name=="agent")].state.running.startedAt}')"
[[ -n "$sidecar_started" && -n "$app_started" && ! "$sidecar_started" > "$app_started" ]] \
  || die "sidecar started at '$sidecar_started', the app at '$app_started'"
echo "ok: sidecar up before the app ($sidecar_started <= $app_started; $first)"

# Probes: startup passed (started), readiness passes (ready; the pod is Ready).
[[ "$(status '.started')" == true && "$(status '.ready')" == true ]] || die "sidecar started=$(status '.started') ready=$(status '.ready')"
echo "ok: startup and readiness probes pass"

# The policy, enforced between the agent and the real server.
call() { kubectl exec agent -n "$NS" -c agent -- node /src/scripts/kind-agent.mjs call everything "$@"; }
if allowed="$(call echo '{"message":"hello from kind"}')"; then :; else die "the allowed call failed (exit $?): $allowed"; fi
[[ "$allowed" == *'Echo: hello from kind'* ]] || die "unexpected answer to echo: $allowed"
echo "ok: allowed tool answers: $allowed"
if denied="$(call get-env)"; then die "the denied tool was forwarded: $denied"; else rc=$?; fi
[[ $rc == 3 && "$denied" == *"\"code\":$DENIED_BY_RULE"* && "$denied" == *'"rule":"no-env"'* ]] \
  || die "get-env was not refused by rule no-env (exit $rc): $denied"
echo "ok: denied tool refused: $denied"
# The admin port answers on the pod IP, where the kubelet's probes reach it.
pod_ip="$(jp '{.status.podIP}')"
kubectl exec agent -n "$NS" -c agent -- node -e "fetch('http://$pod_ip:$ADMIN_PORT/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))" \
  || die "/ready on $pod_ip:$ADMIN_PORT does not answer 200"

# Liveness (every 10 s, 3 failures to restart): give it 35 s past the pod's Ready, then no restart
# and not one failed liveness probe. (A failed startup probe in the first second, before node
# listens, is expected: the probe runs every second from the container's start.)
while ((SECONDS < ready_at + 35)); do sleep 1; done
[[ "$(status '.restartCount')" == 0 ]] || die "the sidecar restarted $(status '.restartCount') times"
probe_failures="$(kubectl get events -n "$NS" --field-selector involvedObject.name=agent,reason=Unhealthy \
  -o jsonpath='{range .items[*]}{.message}{"\n"}{end}')"
if grep -q '^Liveness probe failed' <<<"$probe_failures"; then die "liveness probe failures: $probe_failures"; fi
echo "ok: liveness passes (no restart, no failed liveness probe 35 s after Ready)"

say "kind-e2e: all checks passed"
