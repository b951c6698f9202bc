#!/usr/bin/env bash
# A real, single-node Kubernetes control plane on loopback for development and e2e tests:
# etcd + kube-apiserver + kube-controller-manager (no scheduler, no kubelet), built by
# scripts/k8s-tools.sh from the pinned e2e/cluster/go.mod.
#
#   cluster.sh start <stateDir>              start (or resume) a cluster; returns when it is usable
#   cluster.sh stop <stateDir>               stop the processes `start` started; idempotent
#   cluster.sh restart-apiserver <stateDir>  restart kube-apiserver (same flags and port), then
#                                            kube-controller-manager
#   cluster.sh status <stateDir>             print process/readiness state; exit 3 if not running
#
# stateDir layout (kept after stop, so a later `start` resumes with the same data and credentials):
#   kubeconfig        admin kubeconfig (x509 client cert, O=system:masters)
#   env               shell-sourceable: KUBECONFIG, THOUGHTGATE_K8S_SERVER, ..._CA_FILE, ports
#   pki/              CA, serving cert, client certs, service-account key pair
#   etcd/             etcd data
#   logs/<name>.log   one log per component (appended across restarts)
#   pids/<name>       pid of each running component
#
# Everything listens on 127.0.0.1 and only talks to 127.0.0.1.
#
# Environment:
#   THOUGHTGATE_K8S_BIN_DIR       directory with the three binaries (default: scripts/k8s-tools.sh install)
#   KUBECTL                       kubectl to use (default: kubectl.1.33 from the Cloud SDK, else kubectl)
#   CLUSTER_START_TIMEOUT         seconds to wait for readiness (default 180)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
components=(etcd kube-apiserver kube-controller-manager)
# The ClusterIP range for Services. Nothing routes it (no kube-proxy); it only has to exist and
# must not overlap anything the tests use. The `kubernetes` Service gets its first address.
service_cidr="10.96.0.0/16"
service_ip="10.96.0.1"
# Tokens from TokenRequest (`kubectl create token`, projected volumes) carry this issuer; it is the
# conventional in-cluster one so tokens look like those of a real cluster.
sa_issuer="https://kubernetes.default.svc.cluster.local"

die() { echo "cluster.sh: $*" >&2; exit 1; }
log() { echo "cluster.sh: $*" >&2; }

pick_kubectl() {
  if [[ -n "${KUBECTL:-}" ]]; then echo "$KUBECTL"
  elif [[ -x /usr/lib/google-cloud-sdk/bin/kubectl.1.33 ]]; then echo /usr/lib/google-cloud-sdk/bin/kubectl.1.33
  elif command -v kubectl >/dev/null; then command -v kubectl
  else die "kubectl not found (set KUBECTL)"
  fi
}

# ---------------------------------------------------------------------------------------------
# State directory
# ---------------------------------------------------------------------------------------------

init_state() {
  local dir="${1:?stateDir required}"
  [[ "$dir" != *"'"* && "$dir" != *$'\n'* ]] || die "stateDir must not contain quotes or newlines"
  mkdir -p "$dir"
  state="$(cd "$dir" && pwd)"
  pki="$state/pki"
  logs="$state/logs"
  pids="$state/pids"
}

bin_dir() {
  if [[ -n "${THOUGHTGATE_K8S_BIN_DIR:-}" ]]; then echo "$THOUGHTGATE_K8S_BIN_DIR"; return; fi
  # install prints build chatter on stderr and the bin dir on the last stdout line; instant when built.
  "$repo_root/scripts/k8s-tools.sh" install | tail -n1
}

# Free TCP ports on 127.0.0.1, chosen by the kernel (bind to port 0), all distinct.
free_ports() {
  local n="$1"
  if command -v node >/dev/null; then
    node -e '
      const net = require("node:net"); const n = Number(process.argv[1]); const servers = []; const ports = [];
      (async () => {
        for (let i = 0; i < n; i++) {
          const s = net.createServer(); servers.push(s);
          await new Promise((res, rej) => { s.once("error", rej); s.listen(0, "127.0.0.1", res); });
          ports.push(s.address().port);
        }
        servers.forEach((s) => s.close()); console.log(ports.join(" "));
      })().catch((e) => { console.error(e); process.exit(1); });' "$n"
  elif command -v python3 >/dev/null; then
    python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$n"
  else
    die "need node or python3 to pick free ports"
  fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Reuse the ports of a previous run of this stateDir when still free (keeps the kubeconfig stable
# across stop/start), otherwise take new ones.
choose_ports() {
  local old_etcd="" old_peer="" old_api="" old_kcm="" fresh
  if [[ -f "$state/env" ]]; then
    old_etcd="$(env_value THOUGHTGATE_K8S_ETCD_PORT)" old_peer="$(env_value THOUGHTGATE_K8S_ETCD_PEER_PORT)"
    old_api="$(env_value THOUGHTGATE_K8S_APISERVER_PORT)" old_kcm="$(env_value THOUGHTGATE_K8S_KCM_PORT)"
  fi
  read -r -a fresh <<<"$(free_ports 4)"
  etcd_port="$old_etcd"; [[ -n "$etcd_port" ]] && port_free "$etcd_port" || etcd_port="${fresh[0]}"
  etcd_peer_port="$old_peer"; [[ -n "$etcd_peer_port" ]] && port_free "$etcd_peer_port" || etcd_peer_port="${fresh[1]}"
  apiserver_port="$old_api"; [[ -n "$apiserver_port" ]] && port_free "$apiserver_port" || apiserver_port="${fresh[2]}"
  kcm_port="$old_kcm"; [[ -n "$kcm_port" ]] && port_free "$kcm_port" || kcm_port="${fresh[3]}"
  local all="$etcd_port $etcd_peer_port $apiserver_port $kcm_port"
  [[ "$(tr ' ' '\n' <<<"$all" | sort -u | wc -l)" == 4 ]] || {
    etcd_port="${fresh[0]}" etcd_peer_port="${fresh[1]}" apiserver_port="${fresh[2]}" kcm_port="${fresh[3]}"
  }
}

env_value() { sed -n "s/^export $1='\(.*\)'\$/\1/p" "$state/env"; }

load_env() {
  [[ -f "$state/env" ]] || die "$state/env not found: was the cluster started?"
  etcd_port="$(env_value THOUGHTGATE_K8S_ETCD_PORT)"
  etcd_peer_port="$(env_value THOUGHTGATE_K8S_ETCD_PEER_PORT)"
  apiserver_port="$(env_value THOUGHTGATE_K8S_APISERVER_PORT)"
  kcm_port="$(env_value THOUGHTGATE_K8S_KCM_PORT)"
  bin="$(env_value THOUGHTGATE_K8S_BIN_DIR)"
}

write_env() {
  local tmp="$state/env.tmp"
  {
    echo "# Written by e2e/cluster/cluster.sh; source it to talk to this cluster."
    echo "export KUBECONFIG='$state/kubeconfig'"
    echo "export THOUGHTGATE_K8S_SERVER='https://127.0.0.1:$apiserver_port'"
    echo "export THOUGHTGATE_K8S_CA_FILE='$pki/ca.crt'"
    echo "export THOUGHTGATE_K8S_CA_KEY_FILE='$pki/ca.key'"
    echo "export THOUGHTGATE_K8S_ADMIN_CERT_FILE='$pki/admin.crt'"
    echo "export THOUGHTGATE_K8S_ADMIN_KEY_FILE='$pki/admin.key'"
    echo "export THOUGHTGATE_K8S_SA_ISSUER='$sa_issuer'"
    echo "export THOUGHTGATE_K8S_SERVICE_CIDR='$service_cidr'"
    echo "export THOUGHTGATE_K8S_APISERVER_PORT='$apiserver_port'"
    echo "export THOUGHTGATE_K8S_ETCD_PORT='$etcd_port'"
    echo "export THOUGHTGATE_K8S_ETCD_PEER_PORT='$etcd_peer_port'"
    echo "export THOUGHTGATE_K8S_KCM_PORT='$kcm_port'"
    echo "export THOUGHTGATE_K8S_BIN_DIR='$bin'"
    echo "export THOUGHTGATE_K8S_STATE_DIR='$state'"
  } >"$tmp"
  mv "$tmp" "$state/env"
}

# ---------------------------------------------------------------------------------------------
# PKI (openssl). EC P-256 for TLS (fast to generate); RSA 2048 for the service-account signing key
# (RS256 is what every JWT verifier accepts). Generated once per stateDir and reused.
# ---------------------------------------------------------------------------------------------

new_ca() { # name CN
  [[ -f "$pki/$1.crt" ]] && return
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/$1.key" 2>/dev/null
  openssl req -x509 -new -key "$pki/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$pki/$1.crt" 2>/dev/null
}

new_cert() { # name ca subject extensions
  local name="$1" ca="$2" subj="$3" ext="$4"
  [[ -f "$pki/$name.crt" ]] && return
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/$name.key" 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

# Creates what is missing, so a stateDir keeps its credentials across stop/start.
ensure_pki() {
  mkdir -p "$pki"; chmod 700 "$pki"
  local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
  new_ca ca thoughtgate-e2e-ca
  # Serving cert: loopback for us, plus the in-cluster names/ClusterIP of the `kubernetes` Service
  # so the cluster's own view of itself (kube-root-ca.crt, in-cluster config) is a real one's.
  new_cert apiserver ca "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:$service_ip,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # Admin: O=system:masters is bound to cluster-admin by the built-in RBAC policy.
  new_cert admin ca "/O=system:masters/CN=thoughtgate-e2e-admin" "$client"
  # Controller manager: the user the bootstrap RBAC policy grants system:kube-controller-manager.
  new_cert kube-controller-manager ca "/CN=system:kube-controller-manager" "$client"
  # Front proxy (request-header authentication), as kubeadm sets it up: its own CA, so that only
  # the apiserver's proxy client cert can assert X-Remote-User. The apiserver publishes this CA in
  # kube-system/extension-apiserver-authentication; delegated authenticators (the controller
  # manager's own endpoint, aggregated/extension API servers) need it there.
  new_ca front-proxy-ca thoughtgate-e2e-front-proxy-ca
  new_cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" "$client"
  [[ -f "$pki/sa.key" ]] || {
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  }
  chmod 600 "$pki"/*.key
}

write_kubeconfig() { # file user cert key
  local file="$1" user="$2" cert="$3" key="$4"
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: thoughtgate-e2e
  cluster:
    server: https://127.0.0.1:$apiserver_port
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$cert")
    client-key-data: $(base64 -w0 <"$key")
contexts:
- name: thoughtgate-e2e
  context:
    cluster: thoughtgate-e2e
    user: $user
    namespace: default
current-context: thoughtgate-e2e
EOF
  chmod 600 "$file.tmp"
  mv "$file.tmp" "$file"
}

# ---------------------------------------------------------------------------------------------
# Flags. The only place each component's command line is defined.
# ---------------------------------------------------------------------------------------------

etcd_args() {
  args=(
    --name=thoughtgate-e2e
    --data-dir="$state/etcd"
    # Client and peer listeners on loopback only; plain HTTP is fine on 127.0.0.1.
    --listen-client-urls="http://127.0.0.1:$etcd_port"
    --advertise-client-urls="http://127.0.0.1:$etcd_port"
    --listen-peer-urls="http://127.0.0.1:$etcd_peer_port"
    --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port"
    --initial-cluster="thoughtgate-e2e=http://127.0.0.1:$etcd_peer_port"
    # Test/dev data: skip fsync (as controller-runtime's envtest does); a clean stop still
    # persists everything, and it makes writes an order of magnitude faster on slow disks.
    --unsafe-no-fsync=true
    # Keep the log to warnings; etcd's info level is very chatty.
    --log-level=warn
  )
}

apiserver_args() {
  # shellcheck disable=SC2054 # the commas are inside flag values (--authorization-mode=Node,RBAC)
  args=(
    --etcd-servers="http://127.0.0.1:$etcd_port"
    # Listen on loopback only, on a port picked per cluster so several can run side by side.
    --bind-address=127.0.0.1
    --secure-port="$apiserver_port"
    # The address the apiserver advertises for itself; loopback, so it never picks a real interface.
    --advertise-address=127.0.0.1
    # The `kubernetes` Service is still created, but its Endpoints are not maintained: Endpoints
    # validation rejects loopback addresses, so the default (lease) reconciler would log
    # "may not be in the loopback range" every 10 s. Nothing here routes to Service IPs anyway.
    --endpoint-reconciler-type=none
    # On SIGTERM, end open watches (the controller manager always has some) and wait at most 2 s
    # for them. Without it the apiserver waits out its 60 s shutdown timeout for the watch streams,
    # which made restart-apiserver take over 30 s.
    --shutdown-watch-termination-grace-period=2s
    --tls-cert-file="$pki/apiserver.crt"
    --tls-private-key-file="$pki/apiserver.key"
    # Where a self-signed cert would go if no cert were given; never the default /var/run/kubernetes.
    --cert-dir="$state/apiserver"
    # x509 client certs signed by our CA authenticate the admin and the controller manager.
    --client-ca-file="$pki/ca.crt"
    # Same authorizers as a production cluster: RBAC decides what ServiceAccounts may do.
    --authorization-mode=Node,RBAC
    # Default admission plugins (which include ServiceAccount, MutatingAdmissionWebhook,
    # ValidatingAdmissionWebhook, ValidatingAdmissionPolicy, PodSecurity, ResourceQuota) plus
    # NodeRestriction, as kubeadm enables it.
    --enable-admission-plugins=NodeRestriction
    # Bound ServiceAccount tokens: TokenRequest (`kubectl create token`, projected tokens) signs
    # with sa.key, and tokens are verified with sa.pub.
    --service-account-issuer="$sa_issuer"
    --service-account-signing-key-file="$pki/sa.key"
    --service-account-key-file="$pki/sa.pub"
    --service-cluster-ip-range="$service_cidr"
    # Pods asking for privileged containers are admitted, as on kubeadm clusters.
    --allow-privileged=true
    # Request-header (front proxy) authentication, as kubeadm configures it; see ensure_pki.
    --requestheader-client-ca-file="$pki/front-proxy-ca.crt"
    --requestheader-allowed-names=front-proxy-client
    --requestheader-username-headers=X-Remote-User
    --requestheader-group-headers=X-Remote-Group
    --requestheader-extra-headers-prefix=X-Remote-Extra-
    --proxy-client-cert-file="$pki/front-proxy-client.crt"
    --proxy-client-key-file="$pki/front-proxy-client.key"
  )
}

kcm_args() {
  args=(
    --kubeconfig="$state/kube-controller-manager.kubeconfig"
    # Delegated authn/authz for its own /healthz,/metrics endpoint, as in kubeadm.
    --authentication-kubeconfig="$state/kube-controller-manager.kubeconfig"
    --authorization-kubeconfig="$state/kube-controller-manager.kubeconfig"
    --bind-address=127.0.0.1
    --secure-port="$kcm_port"
    # Its self-signed serving cert goes here, not /var/run/kubernetes.
    --cert-dir="$state/kube-controller-manager"
    # The flexvolume probe creates this directory if missing; the default is /usr/libexec/...
    --flex-volume-plugin-dir="$state/kube-controller-manager/flexvolume"
    # One instance: no leader election (saves the Lease traffic and the startup wait).
    --leader-elect=false
    # All default controllers: namespace (deletion), serviceaccount (the `default` SA in every
    # namespace), root-ca-cert-publisher (kube-root-ca.crt), garbage collector (ownerReferences),
    # endpoints, replicaset/deployment, etc. Node/cloud controllers find no nodes and stay idle.
    --controllers=*
    # Each controller uses its own ServiceAccount token and RBAC role, as in kubeadm clusters.
    --use-service-account-credentials=true
    # Signs legacy ServiceAccount token Secrets (kubernetes.io/service-account-token) and puts
    # the CA into them and into kube-root-ca.crt ConfigMaps.
    --service-account-private-key-file="$pki/sa.key"
    --root-ca-file="$pki/ca.crt"
    # CertificateSigningRequests for kubernetes.io/* signers get signed by the cluster CA.
    --cluster-signing-cert-file="$pki/ca.crt"
    --cluster-signing-key-file="$pki/ca.key"
  )
}

# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------

# Prints the pid of component $1 if the pid file names a live process running our binary.
running_pid() {
  local name="$1" pid exe
  [[ -f "$pids/$name" ]] || return 1
  read -r pid <"$pids/$name" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  # A zombie or an exited process has no exe link; a reused pid points at another binary.
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  # " (deleted)": the binary was rebuilt/replaced while the process kept running; still ours.
  [[ "${exe% (deleted)}" == "$(expected_exe "$name")" ]] || return 1
  echo "$pid"
}

expected_exe() {
  local b="${bin:-}"
  [[ -n "$b" ]] || b="$(env_value THOUGHTGATE_K8S_BIN_DIR 2>/dev/null || true)"
  readlink -f "$b/$1" 2>/dev/null || echo "$b/$1"
}

start_component() {
  local name="$1"
  case "$name" in
    etcd) etcd_args ;;
    kube-apiserver) apiserver_args ;;
    kube-controller-manager) kcm_args ;;
  esac
  mkdir -p "$logs" "$pids"
  echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) starting $name" >>"$logs/$name.log"
  # Not a child we wait for: the process outlives this script and is stopped via its pid file.
  # stdin from /dev/null so it never holds the caller's terminal or pipe.
  "$bin/$name" "${args[@]}" </dev/null >>"$logs/$name.log" 2>&1 &
  echo "$!" >"$pids/$name"
  disown "$!" 2>/dev/null || true
}

stop_component() {
  local name="$1" pid i
  if pid="$(running_pid "$name")"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do # 30 s for a graceful exit
      running_pid "$name" >/dev/null || break
      sleep 0.1
    done
    if running_pid "$name" >/dev/null; then
      log "$name (pid $pid) did not exit after SIGTERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do running_pid "$name" >/dev/null || break; sleep 0.1; done
    fi
  fi
  rm -f "$pids/$name"
}

fail_with_log() { # message component...
  local msg="$1"; shift
  local c
  echo "cluster.sh: $msg" >&2
  for c in "$@"; do
    echo "---- last lines of $logs/$c.log" >&2
    tail -n 40 "$logs/$c.log" >&2 2>/dev/null || true
  done
  return 1
}

kubectl_admin() { "$kubectl" --kubeconfig="$state/kubeconfig" --request-timeout=5s "$@"; }

# wait_until <deadline> <description> <components that must stay up> -- <command...>
wait_until() {
  local deadline="$1" what="$2"; shift 2
  local watch=()
  while [[ "$1" != "--" ]]; do watch+=("$1"); shift; done
  shift
  local c
  while true; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    for c in "${watch[@]}"; do
      running_pid "$c" >/dev/null || { fail_with_log "$c exited while waiting for $what" "$c"; return 1; }
    done
    if ((SECONDS >= deadline)); then
      fail_with_log "timed out after ${CLUSTER_START_TIMEOUT:-180}s waiting for $what" "${watch[@]}"
      return 1
    fi
    sleep 0.25
  done
}

apiserver_ready() { [[ "$(kubectl_admin get --raw /readyz 2>/dev/null)" == "ok" ]]; }
# shellcheck disable=SC2317,SC2329 # called by name through wait_until
default_sa_exists() { kubectl_admin get serviceaccount default --namespace default -o name; }

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

cmd_start() {
  init_state "$1"
  local c all_running=1
  for c in "${components[@]}"; do [[ -f "$pids/$c" ]] && running_pid "$c" >/dev/null || all_running=0; done
  kubectl="$(pick_kubectl)"
  if ((all_running)); then
    load_env
    log "already running ($state)"
    return 0
  fi
  # A partly running cluster (e.g. a crashed component) is restarted as a whole.
  cmd_stop_quiet
  bin="$(bin_dir)"
  [[ -d "$bin" ]] || die "no binaries in '$bin'"
  for c in "${components[@]}"; do [[ -x "$bin/$c" ]] || die "missing $bin/$c"; done
  command -v openssl >/dev/null || die "openssl is required"

  local t0=$SECONDS
  local deadline=$((SECONDS + ${CLUSTER_START_TIMEOUT:-180}))
  ensure_pki
  choose_ports
  write_kubeconfig "$state/kubeconfig" thoughtgate-e2e-admin "$pki/admin.crt" "$pki/admin.key"
  write_kubeconfig "$state/kube-controller-manager.kubeconfig" system:kube-controller-manager \
    "$pki/kube-controller-manager.crt" "$pki/kube-controller-manager.key"
  write_env

  # If anything below fails or we are interrupted, stop whatever was started: nothing may leak.
  trap 'cmd_stop_quiet' EXIT
  trap 'exit 130' INT TERM
  start_component etcd
  # The apiserver retries etcd itself, so it can start right away.
  start_component kube-apiserver
  wait_until "$deadline" "kube-apiserver /readyz" etcd kube-apiserver -- apiserver_ready
  # The controller manager gives up if the apiserver is not healthy within 10 s of its start,
  # so it starts only once the apiserver is ready.
  start_component kube-controller-manager
  # The `default` ServiceAccount is created by the controller manager's serviceaccount controller:
  # its existence proves the controller manager is up, authenticated and authorized.
  wait_until "$deadline" "ServiceAccount default/default (created by kube-controller-manager)" \
    etcd kube-apiserver kube-controller-manager -- default_sa_exists
  trap - EXIT INT TERM
  log "ready in $((SECONDS - t0))s: https://127.0.0.1:$apiserver_port (source $state/env)"
}

cmd_stop_quiet() {
  local c i
  # Reverse order: clients first, etcd last, so nothing logs storms of connection errors.
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do
    c="${components[$i]}"
    stop_component "$c"
  done
}

cmd_stop() {
  init_state "$1"
  [[ -f "$state/env" ]] && bin="$(env_value THOUGHTGATE_K8S_BIN_DIR)"
  cmd_stop_quiet
  log "stopped ($state)"
}

cmd_restart_apiserver() {
  init_state "$1"
  load_env
  kubectl="$(pick_kubectl)"
  running_pid etcd >/dev/null || die "etcd is not running; use start"
  local deadline=$((SECONDS + ${CLUSTER_START_TIMEOUT:-180})) t0=$SECONDS
  stop_component kube-apiserver
  start_component kube-apiserver
  wait_until "$deadline" "kube-apiserver /readyz after restart" etcd kube-apiserver -- apiserver_ready
  # The controller manager does not always come back from API server restarts by itself (seen on
  # 1.33 after a few: the deployment controller created no ReplicaSets any more), and the control
  # plane outlives many restarts now that one serves a whole e2e run: restart it too.
  if running_pid kube-controller-manager >/dev/null; then
    stop_component kube-controller-manager
    restart_kcm
  fi
  log "kube-apiserver restarted in $((SECONDS - t0))s"
}

# Starts the controller manager again. Its old port may be taken meanwhile: an outgoing
# connection can get it as its local (ephemeral) port, and then the bind fails at once ("address
# already in use"). The port only serves its own /healthz, so a fresh one is fine.
restart_kcm() {
  local try
  for try in 1 2 3; do
    start_component kube-controller-manager
    sleep 2
    running_pid kube-controller-manager >/dev/null && return 0
    log "kube-controller-manager exited at start (attempt $try); retrying on a fresh port"
    kcm_port="$(free_ports 1)"
  done
  fail_with_log "kube-controller-manager did not stay up after the apiserver restart" kube-controller-manager
  return 1
}

cmd_status() {
  init_state "$1"
  [[ -f "$state/env" ]] || { echo "not started ($state)"; return 3; }
  load_env
  kubectl="$(pick_kubectl)"
  local c pid rc=0
  for c in "${components[@]}"; do
    if pid="$(running_pid "$c")"; then echo "$c: running (pid $pid)"; else echo "$c: stopped"; rc=3; fi
  done
  echo "server: https://127.0.0.1:$apiserver_port"
  if ((rc == 0)) && apiserver_ready; then echo "readyz: ok"; else echo "readyz: not ready"; rc=3; fi
  echo "kubeconfig: $state/kubeconfig"
  return "$rc"
}

# Everything runs from main, called on the last line: bash reads a script as it runs, so a
# script edited (or checked out) while it runs would otherwise execute a mix of old and new text.
main() {
  case "${1:-}" in
    start) cmd_start "${2:?usage: $0 start <stateDir>}" ;;
    stop) cmd_stop "${2:?usage: $0 stop <stateDir>}" ;;
    restart-apiserver) cmd_restart_apiserver "${2:?usage: $0 restart-apiserver <stateDir>}" ;;
    status) cmd_status "${2:?usage: $0 status <stateDir>}" ;;
    *) echo "usage: $0 start|stop|restart-apiserver|status <stateDir>" >&2; exit 2 ;;
  esac
}

main "$@"; exit $?
