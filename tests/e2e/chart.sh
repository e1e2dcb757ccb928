#!/usr/bin/env bash
# End-to-end test of the Helm chart as installed (see tests/e2e/README.md, "chart.sh").
#
# A user's path through charts/ipguard against a real API server: `helm install` (with
# metallb.enabled=true, after a MetalLB IPAddressPool CRD), the manager run exactly as the
# rendered Deployment runs it (two replicas, leader election, the chart's ServiceAccount
# and RBAC, the webhook reached by the API server through the chart's own
# ValidatingWebhookConfigurations and Service), the shipped examples, failover, `helm
# upgrade` (a value and a CRD), `helm rollback` and `helm uninstall`. Each check prints
# one PASS or FAIL line. Exit status: 0 when every check passed, 1 when one failed, 77
# (skipped) when KUBECONFIG is not set or the cluster's Service ClusterIPs are out of reach.
#
#   tests/e2e/cluster.sh chart.sh          a fresh control plane of ../shared/k8s
#   KUBECONFIG=... tests/e2e/chart.sh      a test cluster whose Service ClusterIPs are
#                                          loopback addresses of this machine (see below)
#
# There is no kubelet and no kube-proxy: the Deployment's pods stay Pending, and this
# script plays both. It reads the Deployment back from the API server and starts
# IPGUARD_BIN with the container's args and env, adjusted only where a pod would differ:
#   - the kubeconfig (--kubeconfig, added): the chart's ServiceAccount token from
#     `kubectl create token`, the API server's address and CA; every request the manager
#     makes goes through the chart's RBAC, as in a pod;
#   - the pod IP: each replica has its own loopback address (127.1.0.1, 127.1.0.2), passed
#     as --webhook-bind and --probe-bind (added); the container ports stay the
#     Deployment's own, as on a pod network;
#   - the certificate directory (--cert-dir): a temporary directory per replica instead of
#     the pod's emptyDir;
#   - ConfigMap volumes (webhook.clientCA): the kubelet's part, done once at start: the
#     ConfigMap is read from the API server and its items written to a directory per
#     replica, and args under the volume's mountPath point there instead;
#   - the pod name: the hostname of the process (a UTS namespace of its own, where the
#     machine allows one), since the manager names its Lease identity after the hostname;
#     $(POD_NAMESPACE) and $(POD_NAME) in args and the fieldRef env are expanded as the
#     kubelet does;
#   - the environment: only the container's env (and PATH, HOME), as in a container.
# tests/e2e/service_proxy.py stands in for kube-proxy: it listens on the Service's
# ClusterIP:443 and spreads connections round-robin over the ready replicas' pod IP and
# container port (the Service's targetPort), skipping one that refuses. After `helm
# upgrade` and `helm rollback` the replicas are restarted one at a time with the new
# Deployment's args, as the rolling update would.
#
# Environment:
#   KUBECONFIG                 the cluster (required; cluster-admin)
#   IPGUARD_BIN                the ipguard binary (default: build/cmd/ipguard)
#   IPGUARD_HELM               helm (default: helm on PATH; tests/e2e/cluster.sh puts .tools first)
#   IPGUARD_E2E_CHART_NAMESPACE  the release namespace (default ipguard-system)
#   IPGUARD_E2E_TIMEOUT        seconds to wait each time (default 60)
#   IPGUARD_E2E_KEEP=1         keep the work directory (logs, rendered values) on success
#   IPGUARD_E2E_CLIENT_CA      a CA file (tests/e2e/cluster.sh sets it: its API server presents
#                              a client certificate of that CA to webhooks): installed as the
#                              ConfigMap of webhook.clientCA, so the replicas run with
#                              --client-ca; IPGUARD_E2E_CLIENT_CERT and _KEY, a certificate of
#                              the same CA, for this script's own requests. Unset: no client
#                              certificate is required and those checks are skipped.
#
# Needs the Service ClusterIP range on this machine's loopback (as ../shared/k8s sets it:
# 127.64.0.0/12) and root, or a network namespace of one's own, to listen on port 443.
# What it touches: the release `ipguard` in the namespace above, the CRDs of the chart
# (created by the install; deleted at the end only if this script created them), a
# stand-in MetalLB IPAddressPool CRD (tests/e2e/metallb-ipaddresspool-crd.yaml) unless
# MetalLB's is there, the objects of examples/ and their namespaces (team-a ... team-e,
# lab, metallb-system: deleted at the end when this script created them). Their addresses
# are the examples' own (10.x, 172.16.x, 192.168.x): nothing ever connects to them. Use a
# test cluster, not production.

set -uo pipefail

if [ -z "${KUBECONFIG:-}" ]; then
  echo "e2e chart: SKIPPED (set KUBECONFIG to run against a real cluster, or run tests/e2e/cluster.sh chart.sh)"
  exit 77
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/e2e"
IPGUARD_BIN=${IPGUARD_BIN:-$ROOT/build/cmd/ipguard}
HELM=${IPGUARD_HELM:-helm}
NS=${IPGUARD_E2E_CHART_NAMESPACE:-ipguard-system}
TIMEOUT=${IPGUARD_E2E_TIMEOUT:-60}
RELEASE=ipguard
CHART="$ROOT/charts/ipguard"
POD_IPS=(127.1.0.1 127.1.0.2)
EXAMPLE_NAMESPACES=(team-a team-b team-c team-d team-e lab metallb-system)
IPGUARD_CRDS=(logicalnetworks.ipguard.io workloadclusters.ipguard.io loadbalancerpools.ipguard.io
              ipreservations.ipguard.io ipclaims.ipguard.io)
METALLB_CRD=ipaddresspools.metallb.io
CLIENT_CA=${IPGUARD_E2E_CLIENT_CA:-}
CLIENT_CA_CONFIGMAP=ipguard-webhook-client-ca
# openssl s_client and curl present the test's client certificate when one is required.
S_CLIENT_CERT=()
CURL_CERT=()
if [ -n "$CLIENT_CA" ]; then
  S_CLIENT_CERT=(-cert "${IPGUARD_E2E_CLIENT_CERT:-}" -key "${IPGUARD_E2E_CLIENT_KEY:-}")
  CURL_CERT=(--cert "${IPGUARD_E2E_CLIENT_CERT:-}" --key "${IPGUARD_E2E_CLIENT_KEY:-}")
fi

WORK=""
INSTALLED=0
CREATED_CLIENT_CA=0
CREATED_CRDS=()
CREATED_NAMESPACES=()
PROXY_PID=""
declare -A REPLICA_PID=() REPLICA_POD=() REPLICA_LOG=()
REPLICA_STARTS=0
source "$HERE/lib.sh"

# ---------------------------------------------------------------------------------------
# Reporting and waiting (lib.sh)
# ---------------------------------------------------------------------------------------

die() { echo "e2e chart: $*" >&2; exit 1; }
e2e_wait() { poll "$@"; }

condition_message_has() {  # condition_message_has RESOURCE TYPE SUBSTRING [kubectl flags...]
  local msg
  msg=$(kubectl get "$1" "${@:4}" -o "jsonpath={.status.conditions[?(@.type==\"$2\")].message}" 2>/dev/null)
  [[ $msg == *"$3"* ]]
}

# expect_denied NAME SUBSTRING [kubectl apply flags...], the manifest on stdin: refused by
# the webhook (not by the CRD's schema or CEL) with SUBSTRING in the message.
expect_denied() {
  local name=$1 want=$2 out
  shift 2
  if out=$(kubectl apply "$@" -f - 2>&1); then
    fail "$name" "admitted; expected a denial containing \"$want\""
  elif [[ $out == *"denied the request"*"$want"* ]]; then
    pass "$name"
  else
    fail "$name" "refused, but not by the webhook with \"$want\": $out"
  fi
}

# ---------------------------------------------------------------------------------------
# Manifests
# ---------------------------------------------------------------------------------------

wlc() {  # wlc NAMESPACE NAME NETWORK CONTROL_PLANE_IP NODES
  cat <<EOF
apiVersion: ipguard.io/v1alpha1
kind: WorkloadCluster
metadata: {name: $2, namespace: $1}
spec:
  logicalNetworkName: $3
  controlPlaneIP: $4
  nodePools: [{name: default, count: $5}]
EOF
}

ipres() {  # ipres NAME BLOCK
  cat <<EOF
apiVersion: ipguard.io/v1alpha1
kind: IPReservation
metadata: {name: $1}
spec:
  addresses: ["$2"]
  description: ipguard chart e2e test
EOF
}

lb_service() {  # lb_service NAMESPACE NAME ADDRESS
  cat <<EOF
apiVersion: v1
kind: Service
metadata:
  name: $2
  namespace: $1
  annotations: {metallb.io/loadBalancerIPs: "$3"}
spec:
  type: LoadBalancer
  loadBalancerClass: ipguard.io/e2e-none
  selector: {app: ipguard-chart-e2e}
  ports: [{name: https, port: 443, protocol: TCP}]
EOF
}

metallb_pool() {  # metallb_pool NAME BLOCK
  cat <<EOF
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: $1, namespace: metallb-system}
spec:
  addresses: ["$2"]
  autoAssign: false
EOF
}

# The probe: an IPReservation whose address has a leading zero. The CRD's schema admits it
# and the webhook always refuses it; it is only ever dry-run.
probe() { ipres chart-e2e-probe 198.18.9.010 | kubectl apply --dry-run=server -f - 2>&1; }
webhook_judges() { [[ $(probe) == *"denied the request"* ]]; }
webhook_bypassed() { probe >/dev/null; }

# ---------------------------------------------------------------------------------------
# The pods: the Deployment's container run as a process
# ---------------------------------------------------------------------------------------

deployment_json() { kubectl -n "$NS" get deployment "$RELEASE" -o json; }

# The pod-template-hash of the Deployment's newest ReplicaSet: part of the pod names, so a
# replica started after an upgrade has a new name, as a rolled pod has.
template_hash() {
  kubectl -n "$NS" get replicasets -l "app.kubernetes.io/instance=$RELEASE" \
    --sort-by=.metadata.creationTimestamp -o jsonpath='{range .items[*]}{.metadata.labels.pod-template-hash}{"\n"}{end}' \
    2>/dev/null | tail -n 1
}

# pod_spec POD_NAME POD_IP CERT_DIR KUBECONFIG OUT_PREFIX: writes OUT_PREFIX.argv and
# OUT_PREFIX.env (NUL-separated) from the Deployment read from the API server, adjusted as
# the header says, and prints "WEBHOOK_PORT METRICS_PORT PROBE_PORT READYZ_PATH".
pod_spec() {
  deployment_json | python3 -c '
import base64, json, os, re, subprocess, sys
pod_name, pod_ip, cert_dir, kubeconfig, out, binary = sys.argv[1:7]
d = json.load(sys.stdin)
spec = d["spec"]["template"]["spec"]
if len(spec["containers"]) != 1:
    sys.exit("expected one container")
c = spec["containers"][0]
if c.get("command"):
    sys.exit("the container sets command; this test runs the image entrypoint (ipguard)")
fields = {"metadata.namespace": d["metadata"]["namespace"], "metadata.name": pod_name,
          "status.podIP": pod_ip}
env = {}
def expand(s):  # the kubelet: $(VAR) of a defined variable is replaced, $$ is a $
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), s)
for e in c.get("env", []):
    if "value" in e:
        env[e["name"]] = expand(e["value"])
    elif "fieldRef" in e.get("valueFrom", {}):
        env[e["name"]] = fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
    else:
        sys.exit("unsupported env source in " + json.dumps(e))
args = [expand(a) for a in c.get("args", [])]
# ConfigMap volumes, as the kubelet mounts them (read from the API server with the
# credentials of this script, as the kubelet uses its own; written once, never updated).
volumes = {v["name"]: v for v in spec.get("volumes", [])}
local_mounts = []
for m in c.get("volumeMounts", []):
    cm = volumes.get(m["name"], {}).get("configMap")
    if cm is None:
        continue
    if m.get("subPath"):
        sys.exit("a subPath mount of a ConfigMap is not supported here: " + json.dumps(m))
    r = subprocess.run(["kubectl", "-n", d["metadata"]["namespace"], "get", "configmap", cm["name"], "-o", "json"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        if cm.get("optional"):
            continue
        sys.exit("the pod cannot start (the kubelet waits): ConfigMap " + cm["name"] + ": " + r.stderr.strip())
    obj = json.loads(r.stdout)
    data = {k: v.encode() for k, v in obj.get("data", {}).items()}
    data.update({k: base64.b64decode(v) for k, v in obj.get("binaryData", {}).items()})
    items = cm.get("items") or [{"key": k, "path": k} for k in data]
    local = os.path.join(os.path.dirname(out), "volumes", m["name"])
    os.makedirs(local, exist_ok=True)
    for item in items:
        if item["key"] not in data:
            sys.exit("the pod cannot start (the kubelet waits): ConfigMap " + cm["name"] + " has no key " + item["key"])
        path = os.path.join(local, item["path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            os.chmod(path, 0o600)
        with open(path, "wb") as f:
            f.write(data[item["key"]])
        os.chmod(path, item.get("mode", cm.get("defaultMode", 0o644)))
    local_mounts.append((m["mountPath"].rstrip("/"), local))
def localize(a):  # a path under a ConfigMap volume mount, or --flag=such a path
    flag, eq, value = a.partition("=") if a.startswith("--") else ("", "", a)
    for mount, local in local_mounts:
        if value == mount or value.startswith(mount + "/"):
            return flag + eq + local + value[len(mount):]
    return a
args = [localize(a) for a in args]
def set_flag(flag, value):
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args.extend([flag, value])
set_flag("--cert-dir", cert_dir)        # the pod: an emptyDir volume
set_flag("--webhook-bind", pod_ip)      # the pod: 0.0.0.0 (the default), on the pod IP
set_flag("--probe-bind", pod_ip)        # the pod: 0.0.0.0 (the default), on the pod IP
args += ["--kubeconfig", kubeconfig]    # the pod: in-cluster config with the same token
open(out + ".argv", "w").write("\0".join([binary] + args) + "\0")
open(out + ".env", "w").write("".join(f"{k}={v}\0" for k, v in env.items()))
ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
probe = c["readinessProbe"]["httpGet"]
probe_port = probe["port"] if isinstance(probe["port"], int) else ports[probe["port"]]
print(ports["webhook"], ports["metrics"], probe_port, probe["path"])
' "$@" "$IPGUARD_BIN"
}

# The process gets the pod name as its hostname where a UTS namespace can be had.
UTS=0
unshare --uts true 2>/dev/null && UTS=1

# start_replica N: starts replica N (1 or 2) as the current Deployment describes it.
start_replica() {
  local n=$1 ip=${POD_IPS[$(($1 - 1))]} hash pod spec
  hash=$(template_hash)
  pod="$RELEASE-${hash:-nohash}-r$n"
  REPLICA_STARTS=$((REPLICA_STARTS + 1))
  local dir="$WORK/pods/$pod"
  mkdir -p "$dir/serving-certs"
  if ! spec=$(pod_spec "$pod" "$ip" "$dir/serving-certs" "$WORK/sa.kubeconfig" "$dir/pod"); then
    fail "replica $n: the Deployment's container can be run" "$spec"
    return 1
  fi
  read -r WEBHOOK_PORT METRICS_PORT PROBE_PORT READYZ_PATH <<<"$spec"
  local argv=() env=()
  mapfile -d '' -t argv <"$dir/pod.argv"
  mapfile -d '' -t env <"$dir/pod.env"
  REPLICA_LOG[$n]="$dir/manager.log"
  REPLICA_POD[$n]=$pod
  echo "---- $pod (replica $n, pod IP $ip) started $(date -u +%FT%TZ): ${argv[*]:1}" >>"${REPLICA_LOG[$n]}"
  if [ "$UTS" = 1 ]; then
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp "${env[@]}" \
      unshare --uts sh -c 'hostname "$0" && exec "$@"' "$pod" "${argv[@]}" >>"${REPLICA_LOG[$n]}" 2>&1 &
  else
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp "${env[@]}" "${argv[@]}" >>"${REPLICA_LOG[$n]}" 2>&1 &
  fi
  REPLICA_PID[$n]=$!
}

replica_alive() { [ -n "${REPLICA_PID[$1]:-}" ] && kill -0 "${REPLICA_PID[$1]}" 2>/dev/null; }

# stop_replica N [SIGNAL]: SIGTERM (the kubelet) waits up to the pod's grace period (30 s),
# then SIGKILL; SIGKILL is a crash.
stop_replica() {
  local n=$1 sig=${2:-TERM} pid=${REPLICA_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill "-$sig" "$pid" 2>/dev/null
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  echo "---- stopped with SIG$sig $(date -u +%FT%TZ)" >>"${REPLICA_LOG[$n]}"
  REPLICA_PID[$n]=""
}

replica_ip() { echo "${POD_IPS[$(($1 - 1))]}"; }
ready() { curl -fsS --max-time 2 "http://$(replica_ip "$1"):$PROBE_PORT$READYZ_PATH"; }
metrics() { curl -fsS --max-time 5 "http://$(replica_ip "$1"):$METRICS_PORT/metrics"; }
# (The output is read whole first: grep -q stops reading early, and under pipefail the
# writer's SIGPIPE would turn a match into a failure.)
is_leader() { grep -Eq '^ipguard_leader(\{\})? 1$' <<<"$(metrics "$1")"; }
both_ready() { ready 1 && ready 2; }

# leader: the replica (1 or 2) whose ipguard_leader is 1, when exactly one is.
leader() {
  local l=() n
  for n in 1 2; do replica_alive "$n" && is_leader "$n" && l+=("$n"); done
  [ ${#l[@]} -eq 1 ] && echo "${l[0]}"
}
lease_holder() { kubectl -n "$NS" get lease "$RELEASE-manager" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }

# one_leader: exactly one live replica says it leads, and the Lease names that replica
# (its pod name, when the replicas have their own hostnames).
one_leader() {
  local l holder
  l=$(leader) || return 1
  holder=$(lease_holder)
  [ -n "$holder" ] || return 1
  [ "$UTS" = 0 ] || [[ $holder == "${REPLICA_POD[$l]}"* ]]
}

# roll_replicas: the rolling update after a change of the pod template, one replica at a
# time (maxUnavailable 0): the new one is ready before the next old one goes.
roll_replicas() {
  local n
  for n in 1 2; do
    stop_replica "$n" TERM
    start_replica "$n" || return 1
    poll "$TIMEOUT" ready "$n" || return 1
  done
}

# running_args N: the command line of replica N's process.
running_args() { tr '\0' ' ' <"/proc/${REPLICA_PID[$1]}/cmdline" 2>/dev/null; }

start_proxy() {
  local targets=() n
  for n in 1 2; do
    targets+=("$(replica_ip "$n"):$SERVICE_TARGET_PORT,http://$(replica_ip "$n"):$PROBE_PORT$READYZ_PATH")
  done
  local lines
  lines=$(grep -c '^listening on' "$WORK/service-proxy.log" 2>/dev/null)
  python3 "$HERE/service_proxy.py" "$CLUSTER_IP:$SERVICE_PORT" "${targets[@]}" >>"$WORK/service-proxy.log" 2>&1 &
  PROXY_PID=$!
  # Listening on port 443 needs root, or a network namespace of one's own.
  if ! poll 10 bash -c "[ \$(grep -c '^listening on' '$WORK/service-proxy.log') -gt ${lines:-0} ]"; then
    fail "the stand-in for kube-proxy listens on $CLUSTER_IP:$SERVICE_PORT" "$(tail -n 5 "$WORK/service-proxy.log")"
    die "cannot go on without it (root, or tests/e2e/cluster.sh, which gives a network namespace)"
  fi
}
stop_proxy() {
  [ -n "$PROXY_PID" ] || return 0
  kill -TERM "$PROXY_PID" 2>/dev/null
  wait "$PROXY_PID" 2>/dev/null
  PROXY_PID=""
}

# ---------------------------------------------------------------------------------------
# Set-up and clean-up
# ---------------------------------------------------------------------------------------

helm_() { "$HELM" "$@"; }

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  echo
  echo "== clean-up"
  stop_proxy
  local n
  for n in 1 2; do stop_replica "$n" TERM 2>/dev/null; done
  if [ "$INSTALLED" = 1 ]; then helm_ uninstall "$RELEASE" -n "$NS" >/dev/null 2>&1; fi
  # If helm could not remove them, no webhook may stay behind that nobody answers.
  kubectl delete validatingwebhookconfiguration "$RELEASE-resources" "$RELEASE-services" --ignore-not-found >/dev/null 2>&1
  if [ "$CREATED_CLIENT_CA" = 1 ]; then
    kubectl -n "$NS" delete configmap "$CLIENT_CA_CONFIGMAP" --ignore-not-found >/dev/null 2>&1
  fi
  local ns
  for ns in "${CREATED_NAMESPACES[@]}"; do
    kubectl delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1
  done
  if [ ${#CREATED_CRDS[@]} -gt 0 ]; then
    # Deleting a CRD deletes its objects (the examples' networks, pools, reservations).
    kubectl delete crd "${CREATED_CRDS[@]}" --ignore-not-found --timeout=60s >/dev/null 2>&1
  fi
  kubectl delete events -n default --field-selector reason=IPConflict --ignore-not-found >/dev/null 2>&1
  if [ -n "$WORK" ]; then
    if [ "$FAILED" -gt 0 ] || [ "$status" -ne 0 ] || [ "${IPGUARD_E2E_KEEP:-0}" = 1 ]; then
      echo "e2e chart: replica logs, proxy log and rendered files kept in $WORK"
    else
      rm -rf "$WORK"
    fi
  fi
  exit "$status"
}

preflight() {
  local tool
  for tool in kubectl python3 curl openssl base64; do
    command -v "$tool" >/dev/null || die "$tool is not on PATH (see tests/e2e/README.md)"
  done
  command -v "$HELM" >/dev/null || die "no helm ($HELM): run scripts/setup.sh, or set IPGUARD_HELM"
  if [ -n "$CLIENT_CA" ]; then
    local f
    for f in "$CLIENT_CA" "${IPGUARD_E2E_CLIENT_CERT:-}" "${IPGUARD_E2E_CLIENT_KEY:-}"; do
      [ -r "$f" ] || die "IPGUARD_E2E_CLIENT_CA is set, so IPGUARD_E2E_CLIENT_CA, _CERT and _KEY must be readable files ('$f' is not)"
    done
  fi
  [ -x "$IPGUARD_BIN" ] || die "no ipguard binary at $IPGUARD_BIN: build it (scripts/build.sh) or set IPGUARD_BIN"
  kubectl version >/dev/null 2>&1 || die "cannot reach the cluster of KUBECONFIG=$KUBECONFIG"
  if helm_ status "$RELEASE" -n "$NS" >/dev/null 2>&1; then
    die "a release $RELEASE already exists in $NS; this test installs its own (helm uninstall it, or set IPGUARD_E2E_CHART_NAMESPACE)"
  fi
  local kind
  for kind in "${IPGUARD_CRDS[@]}"; do
    if kubectl get crd "$kind" >/dev/null 2>&1 && [ -n "$(kubectl get "$kind" -A -o name 2>/dev/null)" ]; then
      die "the cluster already holds $kind objects; this test applies examples/ and needs an empty plan"
    fi
  done
}

# ---------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------

# The messages `ipguard check examples/broken` prints, as "Kind namespace/name<TAB>message".
broken_violations() {
  "$IPGUARD_BIN" check -o json "$ROOT/examples/broken" 2>/dev/null | python3 -c '
import json, sys
report = json.load(sys.stdin)
for v in report["violations"]:
    print(v["object"] + "\t" + v["message"])
' 2>/dev/null
}

# apply_crds DIR: docs/install.md, Upgrading, step 1: server-side apply, and again with
# --force-conflicts when kubectl reports conflicts with another field manager (Helm's, for
# CRDs it created). Prints the command that succeeded, or kubectl's output.
apply_crds() {
  local out
  if out=$(kubectl apply --server-side -f "$1" 2>&1); then
    echo "kubectl apply --server-side -f crds/"
  elif [[ $out == *"onflict"* ]] && out=$(kubectl apply --server-side --force-conflicts -f "$1" 2>&1); then
    echo "kubectl apply --server-side -f crds/ reported conflicts; again with --force-conflicts"
  else
    echo "$out"
    return 1
  fi
}

# tls_refused NAME ADDRESS PORT DNS [curl flags...]: PASS when a POST to /validate at
# ADDRESS:PORT (the server's certificate verified for DNS with the caBundle) gets no HTTP
# answer because the TLS handshake is refused.
tls_refused() {
  local name=$1 address=$2 port=$3 dns=$4 code rc err
  shift 4
  code=$(curl -sS --max-time 5 --cacert "$WORK/ca.pem" --resolve "$dns:$port:$address" "$@" \
           -H 'Content-Type: application/json' --data '{}' -o /dev/null -w '%{http_code}' \
           "https://$dns:$port/validate" 2>"$WORK/curl.err")
  rc=$?
  err=$(tr '\n' ' ' <"$WORK/curl.err")
  # 35: the handshake failed (TLS 1.2); 56: the server's alert arrived on the first read
  # (TLS 1.3, where the client's certificate is checked after the client's Finished).
  if [ "$rc" -ne 0 ] && [ "$code" = 000 ] && [[ $err == *alert* || $err == *handshake* ]]; then
    pass "$name (curl exit $rc: ${err:0:160})"
  else
    fail "$name" "curl exit $rc, HTTP $code: $err"
  fi
}

handshake_failures() {  # handshake_failures N: ipguard_webhook_tls_handshake_failures_total of replica N
  metrics "$1" | awk '$1 == "ipguard_webhook_tls_handshake_failures_total" {print $2}'
}

# client_certificate_checks DNS: with IPGUARD_E2E_CLIENT_CA, only a client with a
# certificate of that CA (the API server, through the chart's configurations, which the
# checks before and after this one show) gets past the TLS handshake.
client_certificate_checks() {
  local dns=$1 n file before=() after
  section "only the API server may call the webhook (webhook.clientCA)"
  if [ -z "$CLIENT_CA" ]; then
    skip "client certificates: IPGUARD_E2E_CLIENT_CA is not set (tests/e2e/cluster.sh sets it)"
    return 0
  fi
  local dargs
  dargs=$(kubectl -n "$NS" get deployment "$RELEASE" -o jsonpath='{.spec.template.spec.containers[0].args}')
  if deployment_json | python3 -c '
import json, sys
cm = sys.argv[1]
spec = json.load(sys.stdin)["spec"]["template"]["spec"]
c = spec["containers"][0]
args = c["args"]
path = args[args.index("--client-ca") + 1]
mount = next(m for m in c["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/"))
volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
assert mount.get("readOnly") is True and volume["configMap"]["name"] == cm, (mount, volume)
' "$CLIENT_CA_CONFIGMAP" 2>"$WORK/client-ca-check.err"; then
    pass "the Deployment runs --client-ca from ConfigMap $NS/$CLIENT_CA_CONFIGMAP, mounted read-only"
  else
    fail "the Deployment runs --client-ca from ConfigMap $NS/$CLIENT_CA_CONFIGMAP, mounted read-only" "$dargs $(cat "$WORK/client-ca-check.err")"
  fi
  for n in 1 2; do
    file=$(running_args "$n" | grep -o -- '--client-ca [^ ]*' | cut -d' ' -f2)
    if [ -n "$file" ] && cmp -s "$file" "$CLIENT_CA"; then
      pass "replica $n runs with --client-ca (the ConfigMap's CA, the API server's)"
    else
      fail "replica $n runs with --client-ca and the ConfigMap's CA" "$(running_args "$n")"
    fi
    before[$n]=$(handshake_failures "$n")
  done
  tls_refused "a client without a certificate is refused at the handshake (through the Service, $CLUSTER_IP:$SERVICE_PORT)" \
    "$CLUSTER_IP" "$SERVICE_PORT" "$dns"
  for n in 1 2; do
    tls_refused "a client without a certificate is refused at the handshake (replica $n directly, $(replica_ip "$n"):$SERVICE_TARGET_PORT)" \
      "$(replica_ip "$n")" "$SERVICE_TARGET_PORT" "$dns"
  done
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=not-the-apiserver -keyout "$WORK/other.key" \
    -out "$WORK/other.crt" -addext extendedKeyUsage=clientAuth >/dev/null 2>&1
  tls_refused "a client with a certificate of another CA is refused at the handshake (replica 1 directly)" \
    "$(replica_ip 1)" "$SERVICE_TARGET_PORT" "$dns" --cert "$WORK/other.crt" --key "$WORK/other.key"
  local code
  code=$(curl -sS --max-time 5 --cacert "$WORK/ca.pem" --resolve "$dns:$SERVICE_PORT:$CLUSTER_IP" "${CURL_CERT[@]}" \
           -H 'Content-Type: application/json' --data 'this is not an AdmissionReview' -o "$WORK/bad-review.json" \
           -w '%{http_code}' "https://$dns:$SERVICE_PORT/validate" 2>&1)
  if [ "$code" = 400 ] || { [ "$code" = 200 ] && grep -q 400 "$WORK/bad-review.json"; }; then
    pass "a client with a certificate of the API server's CA is answered (HTTP 400 for an unreadable review)"
  else
    fail "a client with a certificate of the API server's CA is answered" "HTTP $code: $(head -c 300 "$WORK/bad-review.json" 2>/dev/null)"
  fi
  for n in 1 2; do
    after=$(handshake_failures "$n")
    if [ -n "$after" ] && [ "${after%.*}" -gt "${before[$n]:-0}" ] 2>/dev/null; then
      pass "replica $n counts the refused handshakes: ipguard_webhook_tls_handshake_failures_total ${before[$n]:-0} -> $after"
    else
      fail "replica $n counts the refused handshakes in ipguard_webhook_tls_handshake_failures_total" "before ${before[$n]:-?}, after ${after:-?}"
    fi
  done
}

main() {
  preflight
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/ipguard-e2e-chart.XXXXXX")
  export HELM_CACHE_HOME="$WORK/helm/cache" HELM_CONFIG_HOME="$WORK/helm/config" HELM_DATA_HOME="$WORK/helm/data"
  mkdir -p "$WORK/pods"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  local out started=$SECONDS
  echo "e2e chart: cluster $(kubectl config current-context), release $RELEASE in $NS, binary $IPGUARD_BIN, $(helm_ version --short)"

  section "install"
  local crd ns
  for crd in "${IPGUARD_CRDS[@]}"; do kubectl get crd "$crd" >/dev/null 2>&1 || CREATED_CRDS+=("$crd"); done
  for ns in "${EXAMPLE_NAMESPACES[@]}" "$NS"; do kubectl get namespace "$ns" >/dev/null 2>&1 || CREATED_NAMESPACES+=("$ns"); done
  # MetalLB's CRD first, as in a cluster that runs MetalLB (its own, when it is there).
  if kubectl get crd "$METALLB_CRD" >/dev/null 2>&1; then
    pass "MetalLB's IPAddressPool CRD is installed (the cluster's own)"
  elif out=$(kubectl apply -f "$HERE/metallb-ipaddresspool-crd.yaml" 2>&1) &&
       kubectl wait --for=condition=Established --timeout="${TIMEOUT}s" "crd/$METALLB_CRD" >/dev/null 2>&1; then
    CREATED_CRDS+=("$METALLB_CRD")
    pass "MetalLB IPAddressPool CRD (stand-in, tests/e2e/metallb-ipaddresspool-crd.yaml) is installed"
  else
    fail "MetalLB IPAddressPool CRD is installed" "$out"
    die "cannot go on without it"
  fi
  local install_flags=(--set metallb.enabled=true)
  if [ -n "$CLIENT_CA" ]; then
    # docs/install.md, "Only the API server may call the webhook": the CA of the API
    # server's client certificate in a ConfigMap of the release namespace, then the value.
    if out=$(kubectl get namespace "$NS" >/dev/null 2>&1 || kubectl create namespace "$NS" 2>&1) &&
       out=$(kubectl -n "$NS" create configmap "$CLIENT_CA_CONFIGMAP" --from-file=ca.crt="$CLIENT_CA" 2>&1); then
      CREATED_CLIENT_CA=1
      pass "the CA of the API server's client certificate is in ConfigMap $NS/$CLIENT_CA_CONFIGMAP (key ca.crt)"
    else
      fail "the CA of the API server's client certificate is in ConfigMap $NS/$CLIENT_CA_CONFIGMAP" "$out"
      die "cannot go on without it"
    fi
    install_flags+=(--set "webhook.clientCA.configMap=$CLIENT_CA_CONFIGMAP")
  fi
  if out=$(helm_ install "$RELEASE" "$CHART" -n "$NS" --create-namespace "${install_flags[@]}" 2>&1); then
    INSTALLED=1
    pass "helm install $RELEASE charts/ipguard -n $NS ${install_flags[*]}"
  else
    fail "helm install $RELEASE charts/ipguard -n $NS ${install_flags[*]}" "$out"
    die "cannot go on without the release"
  fi
  echo "$out" >"$WORK/helm-install.out"
  check "the chart's CRDs are Established" kubectl wait --for=condition=Established --timeout="${TIMEOUT}s" \
    "${IPGUARD_CRDS[@]/#/crd/}"
  kubectl -n "$NS" get deployment "$RELEASE" -o yaml >"$WORK/deployment-rev1.yaml" 2>&1
  local selector
  for v in resources services; do
    selector=$(kubectl get validatingwebhookconfiguration "$RELEASE-$v" \
      -o jsonpath='{.webhooks[0].namespaceSelector.matchExpressions[?(@.key=="kubernetes.io/metadata.name")].values}' 2>/dev/null)
    if [[ $selector == *'"kube-system"'* && $selector == *"\"$NS\""* ]] &&
       jsonpath_is "validatingwebhookconfiguration/$RELEASE-$v" \
         '{.webhooks[0].namespaceSelector.matchExpressions[?(@.key=="kubernetes.io/metadata.name")].operator}' NotIn; then
      pass "webhook configuration $RELEASE-$v skips the namespaces kube-system and $NS"
    else
      fail "webhook configuration $RELEASE-$v skips the namespaces kube-system and $NS" "namespaceSelector values: $selector"
    fi
  done

  # The Service the configurations name, and where its port leads.
  local svc_name svc_ns
  svc_name=$(kubectl get validatingwebhookconfiguration "$RELEASE-resources" -o jsonpath='{.webhooks[0].clientConfig.service.name}')
  svc_ns=$(kubectl get validatingwebhookconfiguration "$RELEASE-resources" -o jsonpath='{.webhooks[0].clientConfig.service.namespace}')
  SERVICE_PORT=$(kubectl get validatingwebhookconfiguration "$RELEASE-resources" -o jsonpath='{.webhooks[0].clientConfig.service.port}')
  CLUSTER_IP=$(kubectl -n "$svc_ns" get service "$svc_name" -o jsonpath='{.spec.clusterIP}' 2>/dev/null)
  local target
  target=$(kubectl -n "$svc_ns" get service "$svc_name" -o jsonpath="{.spec.ports[?(@.port==$SERVICE_PORT)].targetPort}")
  SERVICE_TARGET_PORT=$(deployment_json | python3 -c '
import json, sys
target = sys.argv[1]
ports = json.load(sys.stdin)["spec"]["template"]["spec"]["containers"][0]["ports"]
print(target if target.isdigit() else next(p["containerPort"] for p in ports if p["name"] == target))' "$target")
  if [[ $CLUSTER_IP == 127.* ]]; then
    pass "the webhooks call Service $svc_ns/$svc_name:$SERVICE_PORT (ClusterIP $CLUSTER_IP, targetPort $target = $SERVICE_TARGET_PORT)"
  else
    # Not a failure of ipguard: this cluster's Services are out of this machine's reach.
    echo "SKIP the chart as installed: the Service's ClusterIP '$CLUSTER_IP' is not a loopback address of this machine (needs a Service CIDR on loopback, as ../shared/k8s has: tests/e2e/cluster.sh chart.sh)"
    exit 77
  fi

  # The chart's ServiceAccount, as a pod would carry it.
  local sa token server ca
  sa=$(deployment_json | python3 -c 'import json,sys; print(json.load(sys.stdin)["spec"]["template"]["spec"]["serviceAccountName"])')
  token=$(kubectl -n "$NS" create token "$sa" --duration=2h 2>&1) || { fail "a token of ServiceAccount $NS/$sa" "$token"; die "no token"; }
  server=$(kubectl config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(kubectl config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  cat >"$WORK/sa.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: cluster
    cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
  - name: $sa
    user: {token: "$token"}
contexts:
  - name: $sa
    context: {cluster: cluster, user: $sa, namespace: $NS}
current-context: $sa
EOF
  chmod 600 "$WORK/sa.kubeconfig"
  if [ "$(KUBECONFIG=$WORK/sa.kubeconfig kubectl auth can-i update "leases/$RELEASE-manager" -n "$NS" 2>/dev/null)" = yes ] &&
     [ "$(KUBECONFIG=$WORK/sa.kubeconfig kubectl auth can-i list secrets -n "$NS" 2>/dev/null)" = no ] &&
     [ "$(KUBECONFIG=$WORK/sa.kubeconfig kubectl auth can-i update workloadclusters.ipguard.io -A 2>/dev/null)" = no ]; then
    pass "the manager's kubeconfig carries ServiceAccount $NS/$sa: its Lease yes, listing Secrets or changing a spec no"
  else
    fail "the manager's kubeconfig carries ServiceAccount $NS/$sa with the chart's RBAC"
  fi

  section "two replicas, run as the Deployment runs them"
  start_replica 1 && start_replica 2 || die "cannot start the replicas"
  echo "     replica args: $(running_args 1)"
  start_proxy
  if poll "$TIMEOUT" both_ready; then
    pass "both replicas are ready (/readyz on ${POD_IPS[0]}:$PROBE_PORT and ${POD_IPS[1]}:$PROBE_PORT)"
  else
    fail "both replicas are ready" "$(for n in 1 2; do echo "replica $n: $(ready "$n" 2>&1)"; tail -n 15 "${REPLICA_LOG[$n]}"; done)"
    die "see $WORK"
  fi
  check_eventually "exactly one replica holds the Lease $RELEASE-manager (holder: the pod name with a suffix)" one_leader
  echo "     Lease holder: $(lease_holder)"
  check_eventually "the manager created its certificate Secret $RELEASE-webhook-cert" kubectl -n "$NS" get secret "$RELEASE-webhook-cert"
  for v in resources services; do
    check_eventually "the manager wrote the caBundle of $RELEASE-$v" \
      bash -c "[ -n \"\$(kubectl get validatingwebhookconfiguration $RELEASE-$v -o jsonpath='{.webhooks[0].clientConfig.caBundle}')\" ]"
  done
  CA_BUNDLE=$(kubectl get validatingwebhookconfiguration "$RELEASE-resources" -o jsonpath='{.webhooks[0].clientConfig.caBundle}')
  echo "$CA_BUNDLE" | base64 -d >"$WORK/ca.pem" 2>/dev/null
  local dns="$svc_name.$svc_ns.svc"
  if out=$(openssl s_client -connect "$CLUSTER_IP:$SERVICE_PORT" -servername "$dns" -CAfile "$WORK/ca.pem" \
             "${S_CLIENT_CERT[@]}" -verify_return_error -verify_hostname "$dns" </dev/null 2>&1) &&
     [[ $out == *"Verify return code: 0 (ok)"* ]]; then
    pass "the Service's ClusterIP serves a certificate for $dns that the caBundle verifies"
  else
    fail "the Service's ClusterIP serves a certificate for $dns that the caBundle verifies" "$(echo "$out" | grep -i verify | head -n 3)"
  fi
  check_eventually "the API server calls the webhook through the chart's configuration and Service" webhook_judges
  client_certificate_checks "$dns"

  section "the shipped examples"
  # examples/broken on the empty plan: each object `ipguard check` reports is refused with
  # the message it prints; every other object is admitted. Then examples/clean, the plan
  # with the mistakes fixed, applied over it, is admitted whole.
  local violations line object message applied
  violations=$(broken_violations)
  if [ "$(printf '%s\n' "$violations" | grep -c .)" -ne 6 ]; then
    fail "ipguard check examples/broken reports the six mistakes" "$violations"
  fi
  applied=$(kubectl apply -f "$ROOT/examples/broken/" 2>&1)
  echo "$applied" >"$WORK/apply-broken.out"
  # A field error is refused by the CRD's own CEL rule, which the API server runs before
  # any webhook, with the same words; a collision by the webhook.
  local errors
  errors=$(grep '^Error from server' <<<"$applied")
  while IFS=$'\t' read -r object message; do
    [ -n "$object" ] || continue
    local name=${object#* }
    name=${name#*/}
    if line=$(grep -F "$message" <<<"$errors" | grep -F "denied the request"); then
      pass "examples/broken: $object is refused by the webhook: $message"
    elif line=$(grep -F "$message" <<<"$errors" | grep -F "\"$name\" is invalid"); then
      pass "examples/broken: $object is refused by its CRD's CEL rule: $message"
    else
      fail "examples/broken: $object is refused with: $message" "$(grep -iF "$name" <<<"$applied")"
    fi
  done <<<"$violations"
  if [ "$(grep -c . <<<"$errors")" -eq 6 ]; then
    pass "examples/broken: nothing else is refused (6 errors)"
  else
    fail "examples/broken: nothing else is refused" "$errors"
  fi
  check "examples/broken: the objects without a mistake are created (lnet-prod, team-b/payments, storefront-https)" \
    bash -c "kubectl get lnet lnet-prod && kubectl -n team-b get wlc payments && kubectl -n team-a get service storefront-https"
  check "examples/broken: the refused objects are not stored" \
    bash -c "! kubectl -n team-e get wlc reporting && ! kubectl get lbpool lbpool-batch && ! kubectl -n team-d get wlc analytics"
  if out=$(kubectl apply -f "$ROOT/examples/clean/" 2>&1); then
    if [[ $out == *"Warning:"*"DHCP is not recommended for production"* ]]; then
      pass "examples/clean is admitted whole (with the one DHCP warning)"
    else
      fail "examples/clean is admitted with the DHCP warning" "$out"
    fi
  else
    fail "examples/clean is admitted whole" "$out"
  fi
  check_eventually "every ipguard object becomes Ready=True" bash -c \
    "kubectl get ipguard -A -o jsonpath='{range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}' | sort -u | tr -d '\\n' | grep -qx True"
  check_eventually "LogicalNetwork lnet-prod: total 100, requiredByNodes 34, free 66" \
    jsonpath_is lnet/lnet-prod '{.status.addresses.total}/{.status.addresses.requiredByNodes}/{.status.addresses.free}' 100/34/66
  check_eventually "MetalLB IPAddressPool metallb-system/edge-pool is in the index (a Service from it holds no conflict)" \
    bash -c "kubectl -n team-a get service edge-ingress"

  section "two replicas, one ledger (IPClaims)"
  check "each control-plane IP of the examples is claimed, naming its cluster" \
    jsonpath_is ipclaim/vlan10-10.10.0.20 '{.spec.holder.kind}/{.spec.holder.namespace}/{.spec.holder.name}' WorkloadCluster/team-a/prod
  check "storefront-https and storefront-http share 10.10.0.200: one claim, held by one of them" \
    bash -c "kubectl get ipclaim vlan10-10.10.0.200 -o jsonpath='{.spec.holder.name}' | grep -Eqx 'storefront-https?'"
  local i admitted
  admitted=$(for i in $(seq 1 30); do
    (wlc team-a "chart-e2e-race-$i" lnet-prod 10.10.0.30 1 | kubectl create -f - >/dev/null 2>&1 && echo ok) &
  done | grep -c ok; wait)
  if [ "$admitted" = 1 ]; then
    pass "of 30 WorkloadClusters created at once for one control-plane IP, spread over both replicas, exactly one is admitted"
  else
    fail "of 30 WorkloadClusters created at once for one control-plane IP, exactly one is admitted" "$admitted admitted"
  fi
  if grep -q '^ipguard_admission_requests_total{kind="WorkloadCluster",operation="CREATE"' <<<"$(metrics 1)" &&
     grep -q '^ipguard_admission_requests_total{kind="WorkloadCluster",operation="CREATE"' <<<"$(metrics 2)"; then
    pass "both replicas judged some of them"
  else
    fail "both replicas judged some of them" "$(metrics 1 | grep '^ipguard_admission_requests_total'; metrics 2 | grep '^ipguard_admission_requests_total')"
  fi
  check "the one admitted holds the claim" \
    bash -c "kubectl get ipclaim vlan10-10.10.0.30 -o jsonpath='{.spec.holder.name}' | grep -q '^chart-e2e-race-'"
  for i in $(seq 1 30); do echo "chart-e2e-race-$i"; done | xargs kubectl -n team-a delete wlc --ignore-not-found >/dev/null 2>&1

  section "the agent's role in the management cluster"
  kubectl -n "$NS" create serviceaccount e2e-agent >/dev/null 2>&1 || true
  kubectl create clusterrolebinding e2e-agent --clusterrole="$RELEASE-agent" \
    --serviceaccount="$NS:e2e-agent" >/dev/null 2>&1 || true
  local as="system:serviceaccount:$NS:e2e-agent" verb_res ok=1 denied_ok=1
  for verb_res in "list logicalnetworks.ipguard.io" "watch workloadclusters.ipguard.io" \
                  "create ipclaims.ipguard.io" "delete ipclaims.ipguard.io" "watch ipclaims.ipguard.io" \
                  "create loadbalancerpools.ipguard.io" "update loadbalancerpools.ipguard.io" "delete loadbalancerpools.ipguard.io"; do
    # shellcheck disable=SC2086
    [ "$(kubectl auth can-i $verb_res --as="$as" 2>/dev/null)" = yes ] || { ok=0; echo "     cannot $verb_res"; }
  done
  for verb_res in "update logicalnetworks.ipguard.io" "update workloadclusters.ipguard.io --subresource=status" \
                  "get secrets -n $NS" "list services" "update ipclaims.ipguard.io"; do
    # shellcheck disable=SC2086
    [ "$(kubectl auth can-i $verb_res --as="$as" 2>/dev/null)" = no ] || { denied_ok=0; echo "     can $verb_res"; }
  done
  if [ "$ok" = 1 ]; then pass "bound to the agent role, an identity reads the plan, keeps IPClaims and writes LoadBalancerPools"; else fail "the agent role grants what the agent needs"; fi
  if [ "$denied_ok" = 1 ]; then pass "and changes nothing else, reads no Secret and no Service"; else fail "the agent role grants nothing more"; fi
  kubectl delete clusterrolebinding e2e-agent --ignore-not-found >/dev/null 2>&1

  section "ipguard check --from-cluster with the chart's plan-reader role"
  # A pipeline's identity: a ServiceAccount bound to the ClusterRole the chart ships for it.
  kubectl -n "$NS" create serviceaccount e2e-plan-check >/dev/null 2>&1 || true
  kubectl create clusterrolebinding e2e-plan-check --clusterrole="$RELEASE-plan-reader" \
    --serviceaccount="$NS:e2e-plan-check" >/dev/null 2>&1 || true
  local reader_token
  reader_token=$(kubectl -n "$NS" create token e2e-plan-check --duration=1h 2>&1) || fail "a token of ServiceAccount $NS/e2e-plan-check" "$reader_token"
  sed -e "s|token: \"[^\"]*\"|token: \"$reader_token\"|" "$WORK/sa.kubeconfig" >"$WORK/reader.kubeconfig"
  chmod 600 "$WORK/reader.kubeconfig"
  printf '%s\n' "apiVersion: ipguard.io/v1alpha1" "kind: WorkloadCluster" \
    "metadata: {name: e2e-from-cluster, namespace: team-b}" "spec:" \
    "  logicalNetworkName: lnet-prod" "  controlPlaneIP: 10.10.0.150" \
    "  nodePools: [{name: default, count: 1}]" >"$WORK/new-cluster.yaml"
  local out rc
  out=$("$IPGUARD_BIN" check --from-cluster --kubeconfig "$WORK/reader.kubeconfig" "$WORK/new-cluster.yaml" 2>&1)
  rc=$?
  if [ "$rc" = 1 ] && [[ $out == *"is inside ipPools[0] 10.10.0.100-10.10.0.199 of LogicalNetwork lnet-prod (other side: in the cluster)"* ]]; then
    pass "the plan-reader role reads the live plan: a change is judged against it"
  else
    fail "the plan-reader role reads the live plan: a change is judged against it" "exit $rc: $out"
  fi
  if [ "$(KUBECONFIG=$WORK/reader.kubeconfig kubectl auth can-i update logicalnetworks.ipguard.io 2>/dev/null)" = no ] &&
     [ "$(KUBECONFIG=$WORK/reader.kubeconfig kubectl auth can-i list secrets -A 2>/dev/null)" = no ]; then
    pass "the plan-reader role changes nothing and reads no Secret"
  else
    fail "the plan-reader role changes nothing and reads no Secret"
  fi
  kubectl delete clusterrolebinding e2e-plan-check >/dev/null 2>&1 || true

  section "dry run, server-side apply, MetalLB"
  expect_denied "--dry-run=server is judged" \
    "controlPlaneIP 10.10.0.150 of WorkloadCluster team-a/reporting is inside ipPools[0] 10.10.0.100-10.10.0.199 of LogicalNetwork lnet-prod" \
    --dry-run=server <<<"$(wlc team-a reporting lnet-prod 10.10.0.150 2)"
  expect_allowed "--dry-run=server of a valid object is admitted" --dry-run=server <<<"$(wlc team-a dryrun lnet-prod 10.10.0.23 1)"
  check "a dry run stores nothing" bash -c "! kubectl -n team-a get wlc dryrun && ! kubectl -n team-a get wlc reporting"
  expect_allowed "server-side apply of a valid object is admitted" --server-side --field-manager=chart-e2e \
    <<<"$(ipres chart-e2e-ssa 10.10.0.8)"
  expect_denied "server-side apply is judged" \
    "addresses[0] 10.10.0.120 of IPReservation chart-e2e-ssa-bad is inside ipPools[0] 10.10.0.100-10.10.0.199 of LogicalNetwork lnet-prod" \
    --server-side --field-manager=chart-e2e <<<"$(ipres chart-e2e-ssa-bad 10.10.0.120)"
  expect_denied "a MetalLB IPAddressPool overlapping a network's pool is refused" \
    "addresses[0] 10.10.0.128/25 of IPAddressPool metallb-system/chart-e2e-bad overlaps ipPools[0] 10.10.0.100-10.10.0.199 of LogicalNetwork lnet-prod" \
    <<<"$(metallb_pool chart-e2e-bad 10.10.0.128/25)"

  section "objects that get in through a namespace the webhooks skip"
  expect_allowed "a WorkloadCluster colliding with lnet-prod's pool is admitted in $NS (not judged)" \
    <<<"$(wlc "$NS" chart-e2e-sneaky lnet-prod 10.10.0.151 1)"
  check_eventually "the controller reports it: Conflicting=True" condition_is wlc/chart-e2e-sneaky Conflicting True -n "$NS"
  check "its Conflicting message names both sides" condition_message_has wlc/chart-e2e-sneaky Conflicting \
    "controlPlaneIP 10.10.0.151 of WorkloadCluster $NS/chart-e2e-sneaky is inside ipPools[0] 10.10.0.100-10.10.0.199 of LogicalNetwork lnet-prod" -n "$NS"
  expect_allowed "a LoadBalancer Service asking for team-b/payments-api's address is admitted in kube-system" \
    <<<"$(lb_service kube-system chart-e2e-sneaky 10.10.0.201)"
  check_eventually "the controller reports it with a Warning event IPConflict on the Service" bash -c \
    "kubectl -n kube-system get events --field-selector involvedObject.name=chart-e2e-sneaky,reason=IPConflict -o jsonpath='{.items[*].type}' | grep -q Warning"
  check "the event names both sides" bash -c \
    "kubectl -n kube-system get events --field-selector involvedObject.name=chart-e2e-sneaky,reason=IPConflict -o jsonpath='{.items[*].message}' | grep -qF 'of Service team-b/payments-api'"
  check "the event is named <object>.<16 hex>" bash -c \
    "kubectl -n kube-system get events --field-selector involvedObject.name=chart-e2e-sneaky,reason=IPConflict -o name | grep -Eq '/chart-e2e-sneaky\\.[0-9a-f]{16}\$'"

  section "the webhook unreachable, as the API server counts it"
  # kube-proxy gone (or a NetworkPolicy, or no endpoint): nothing answers on the ClusterIP.
  stop_proxy
  local metrics_out
  out=$(ipres chart-e2e-unreachable 10.99.0.1 | kubectl apply -f - 2>&1)
  if [[ $out == *"failed calling webhook \"resources.ipguard.io\""* ]]; then
    pass "while the Service is unreachable, a write of an ipguard kind is refused (failurePolicy Fail)"
  else
    fail "while the Service is unreachable, a write of an ipguard kind is refused (failurePolicy Fail)" "$out"
  fi
  expect_allowed "while the Service is unreachable, a LoadBalancer Service is admitted unchecked (failurePolicy Ignore)" \
    <<<"$(lb_service team-c chart-e2e-unchecked 10.20.0.215)"
  metrics_out=$(kubectl get --raw /metrics 2>/dev/null | grep '^apiserver_admission_webhook_')
  if grep -E '^apiserver_admission_webhook_rejection_count\{' <<<"$metrics_out" | grep 'name="resources.ipguard.io"' |
       grep -q 'error_type="calling_webhook_error"'; then
    pass "the API server counts it: apiserver_admission_webhook_rejection_count{name=\"resources.ipguard.io\",error_type=\"calling_webhook_error\"} (IPGuardWebhookUnreachable)"
  else
    fail "the API server counts the refused call in apiserver_admission_webhook_rejection_count" "$(grep ipguard <<<"$metrics_out")"
  fi
  if grep -E '^apiserver_admission_webhook_fail_open_count\{' <<<"$metrics_out" | grep -q 'name="services.ipguard.io"'; then
    pass "the API server counts it: apiserver_admission_webhook_fail_open_count{name=\"services.ipguard.io\"} (IPGuardServiceWebhookUnreachable)"
  else
    fail "the API server counts the call that failed open in apiserver_admission_webhook_fail_open_count" "$(grep ipguard <<<"$metrics_out")"
  fi
  echo "$metrics_out" >"$WORK/apiserver-admission-metrics.txt"
  start_proxy
  check_eventually "the webhook judges again once the Service answers" webhook_judges
  # Its claim could not be written while nothing answered (on 1.26 the manager's own claims
  # go through its webhook too): the leader writes it once the webhook answers.
  check_eventually "the Service admitted unchecked gets its claim from the leader" \
    jsonpath_is ipclaim/any-10.20.0.215 '{.spec.holder.namespace}/{.spec.holder.name}' team-c/chart-e2e-unchecked
  kubectl -n team-c delete service chart-e2e-unchecked --ignore-not-found >/dev/null 2>&1

  section "leader failover"
  local old new
  old=$(leader)
  if [ -z "$old" ]; then
    fail "a leader to kill" "no single leader: $(lease_holder)"
  else
    new=$((3 - old))
    stop_replica "$old" KILL
    pass "the leader, replica $old (${REPLICA_POD[$old]}), is killed (SIGKILL: it cannot release the Lease)"
    local t0=$SECONDS
    if poll 60 is_leader "$new" && poll 10 bash -c "[[ \$(kubectl -n $NS get lease $RELEASE-manager -o jsonpath='{.spec.holderIdentity}') == ${REPLICA_POD[$new]}* ]] || [ $UTS = 0 ]"; then
      pass "replica $new takes the Lease once it expires ($((SECONDS - t0)) s; holder $(lease_holder))"
    else
      fail "replica $new takes the Lease" "holder: $(lease_holder); replica $new: $(metrics "$new" | grep '^ipguard_leader')"
    fi
    check "the surviving replica still judges (connections to the dead one are skipped)" webhook_judges
    expect_allowed "a new colliding WorkloadCluster gets in through $NS" <<<"$(wlc "$NS" chart-e2e-after-failover lnet-prod 10.10.0.20 1)"
    check_eventually "the new leader writes its status: Conflicting=True, naming team-a/prod" condition_message_has \
      wlc/chart-e2e-after-failover Conflicting "equals controlPlaneIP 10.10.0.20 of WorkloadCluster team-a/prod" -n "$NS"
    # The kubelet restarts the container.
    start_replica "$old"
    check_eventually "the killed replica is started again and is ready" ready "$old"
    check "the restarted replica does not take the Lease back" bash -c "! curl -fsS --max-time 5 http://$(replica_ip "$old"):$METRICS_PORT/metrics | grep -Eq '^ipguard_leader(\\{\\})? 1$'"
  fi

  section "helm upgrade: a value and a CRD"
  # A copy of the chart whose IPReservation CRD shows its Description column by default
  # (priority 0 instead of 1): harmless and visible in `kubectl get ipres`.
  mkdir -p "$WORK/chart-next"
  cp -r "$CHART" "$WORK/chart-next/"
  local next="$WORK/chart-next/ipguard" crdfile="$WORK/chart-next/ipguard/crds/ipguard.io_ipreservations.yaml"
  python3 - "$crdfile" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
old = "        - name: Description\n          type: string\n          priority: 1\n"
assert text.count(old) == 1, "the Description column of the IPReservation CRD is not where this test expects it"
open(path, "w").write(text.replace(old, old.replace("priority: 1", "priority: 0")))
PY
  check "before the upgrade, kubectl get ipres has no DESCRIPTION column" bash -c "! kubectl get ipres | head -n 1 | grep -q DESCRIPTION"
  # docs/install.md, Upgrading: "CRDs first", server-side, --force-conflicts when kubectl
  # reports conflicts with another field manager (Helm created them).
  if out=$(apply_crds "$next/crds/"); then
    pass "the new CRDs apply ($out)"
  else
    fail "the new CRDs apply as docs/install.md says" "$out"
  fi
  check_eventually "the API server serves the changed CRD (kubectl get ipres shows DESCRIPTION)" bash -c \
    "kubectl get ipres | head -n 1 | grep -q DESCRIPTION && kubectl get ipres chart-e2e-ssa --no-headers | grep -q 'ipguard chart e2e test'"
  # Also the NetworkPolicy, so that the API server validates what the chart renders (no
  # network plugin enforces it here): the API server calls from loopback.
  local upgrade_flags=(--reuse-values --set capacityPolicy=Warn --set networkPolicy.enabled=true
                       --set 'networkPolicy.webhookFrom={127.0.0.0/8}')
  if out=$(helm_ upgrade "$RELEASE" "$next" -n "$NS" "${upgrade_flags[@]}" 2>&1); then
    pass "helm upgrade ${upgrade_flags[*]}"
  else
    fail "helm upgrade ${upgrade_flags[*]}" "$out"
  fi
  check "the API server took the chart's NetworkPolicy (the webhook port from 127.0.0.0/8)" bash -c \
    "kubectl -n $NS get networkpolicy $RELEASE -o jsonpath='{.spec.ingress[0].from[0].ipBlock.cidr}' | grep -qx 127.0.0.0/8"
  check "the new Deployment runs --capacity-policy Warn" bash -c \
    "kubectl -n $NS get deployment $RELEASE -o jsonpath='{.spec.template.spec.containers[0].args}' | grep -q '\"--capacity-policy\",\"Warn\"'"
  check "helm upgrade keeps the caBundle the manager wrote" \
    jsonpath_is "validatingwebhookconfiguration/$RELEASE-resources" '{.webhooks[0].clientConfig.caBundle}' "$CA_BUNDLE"
  if roll_replicas; then pass "the replicas roll to the new pod template, one at a time, and are ready"; else fail "the replicas roll to the new pod template" "$(tail -n 20 "${REPLICA_LOG[1]}" "${REPLICA_LOG[2]}")"; fi
  check "the running replicas have --capacity-policy Warn" bash -c "[[ \"$(running_args 1)\" == *'--capacity-policy Warn '* && \"$(running_args 2)\" == *'--capacity-policy Warn '* ]]"
  if [ -n "$CLIENT_CA" ]; then
    check "the rolled replicas keep --client-ca (helm upgrade --reuse-values)" bash -c \
      "[[ \"$(running_args 1)\" == *'--client-ca '* && \"$(running_args 2)\" == *'--client-ca '* ]]"
  fi
  check_eventually "one leader after the roll" one_leader
  check_eventually "the webhook judges after the roll" webhook_judges
  expect_warning "with capacityPolicy=Warn a cluster that does not fit is admitted with a warning" \
    "capacity exceeded on LogicalNetwork lnet-dev" <<<"$(wlc team-c chart-e2e-big lnet-dev 10.20.0.21 100)"
  check_eventually "lnet-dev shows it: CapacityExceeded=True" condition_is lnet/lnet-dev CapacityExceeded True
  kubectl -n team-c delete wlc chart-e2e-big --ignore-not-found >/dev/null 2>&1

  section "helm rollback"
  if out=$(helm_ rollback "$RELEASE" 1 -n "$NS" 2>&1); then pass "helm rollback $RELEASE 1"; else fail "helm rollback $RELEASE 1" "$out"; fi
  check "the Deployment runs --capacity-policy Enforce again" bash -c \
    "kubectl -n $NS get deployment $RELEASE -o jsonpath='{.spec.template.spec.containers[0].args}' | grep -q '\"--capacity-policy\",\"Enforce\"'"
  check "the NetworkPolicy is gone with the rollback" bash -c "! kubectl -n $NS get networkpolicy $RELEASE"
  check "helm rollback keeps the caBundle the manager wrote" \
    jsonpath_is "validatingwebhookconfiguration/$RELEASE-resources" '{.webhooks[0].clientConfig.caBundle}' "$CA_BUNDLE"
  if roll_replicas; then pass "the replicas roll back, one at a time, and are ready"; else fail "the replicas roll back" "$(tail -n 20 "${REPLICA_LOG[1]}" "${REPLICA_LOG[2]}")"; fi
  check "the running replicas have --capacity-policy Enforce" bash -c "[[ \"$(running_args 1)\" == *'--capacity-policy Enforce '* && \"$(running_args 2)\" == *'--capacity-policy Enforce '* ]]"
  if [ -n "$CLIENT_CA" ]; then
    check "the rolled-back replicas keep --client-ca (revision 1 had it)" bash -c \
      "[[ \"$(running_args 1)\" == *'--client-ca '* && \"$(running_args 2)\" == *'--client-ca '* ]]"
  fi
  check_eventually "the webhook judges after the rollback" webhook_judges
  expect_denied "with capacityPolicy=Enforce again a cluster that does not fit is refused" \
    "capacity exceeded on LogicalNetwork lnet-dev" <<<"$(wlc team-c chart-e2e-big lnet-dev 10.20.0.21 100)"
  check_eventually "lnet-dev: CapacityExceeded=False again" condition_is lnet/lnet-dev CapacityExceeded False
  # Helm never touches crds/: the CRD stays as applied until the old files are applied.
  check "helm rollback leaves the CRD as it was applied (DESCRIPTION still shown)" bash -c "kubectl get ipres | head -n 1 | grep -q DESCRIPTION"
  if out=$(apply_crds "$CHART/crds/"); then
    pass "the release's own CRDs apply again ($out; docs/install.md, Rolling back)"
  else
    fail "the release's own CRDs apply again" "$out"
  fi
  check_eventually "the CRD change is undone (no DESCRIPTION column)" bash -c "! kubectl get ipres | head -n 1 | grep -q DESCRIPTION"

  section "what the replicas logged"
  # Every write the API server refuses is logged with "failed:" (and counted in
  # ipguard_api_write_errors_total); a read refused by RBAC fails the informer. Neither
  # may happen with the chart's RBAC. (An "info denied" line is a webhook verdict.)
  local forbidden
  forbidden=$(cat "$WORK"/pods/*/manager.log | grep -Ev '^[^ ]+ info denied ' | grep -E '\b403\b|[Ff]orbidden')
  if [ -z "$forbidden" ]; then
    pass "no 403/Forbidden in the logs of any replica ($REPLICA_STARTS starts)"
  else
    fail "no 403/Forbidden in the logs of any replica" "$forbidden"
  fi
  local n
  for n in 1 2; do
    if grep -E '^ipguard_api_write_errors_total\{' <<<"$(metrics "$n")" | grep -q 'code="403"'; then
      fail "replica $n: ipguard_api_write_errors_total has no code=\"403\"" "$(metrics "$n" | grep '^ipguard_api_write_errors_total')"
    else
      pass "replica $n: ipguard_api_write_errors_total has no code=\"403\""
    fi
  done
  # Except the claim the leader could not write while the test made the Service unreachable
  # (above): refused by the API server for want of the webhook, and written after.
  out=$(cat "$WORK"/pods/*/manager.log | grep -E '^[^ ]+ (error|critical) |failed:' |
    grep -Ev 'POST /apis/ipguard.io/v1alpha1/ipclaims failed: 500 .*failed calling webhook .*connection refused' |
    head -n 20)
  if [ -z "$out" ]; then pass "no error and no failed write in the logs"; else fail "no error and no failed write in the logs" "$out"; fi

  section "helm uninstall"
  if out=$(helm_ uninstall "$RELEASE" -n "$NS" 2>&1); then
    INSTALLED=0
    pass "helm uninstall $RELEASE"
  else
    fail "helm uninstall $RELEASE" "$out"
  fi
  # The Deployment is gone: the kubelet stops the pods, kube-proxy drops the Service.
  stop_replica 1 TERM
  stop_replica 2 TERM
  stop_proxy
  local gone=() kind
  for kind in "validatingwebhookconfiguration/$RELEASE-resources" "validatingwebhookconfiguration/$RELEASE-services" \
              "clusterrole/$RELEASE-manager" "clusterrolebinding/$RELEASE-manager"; do
    kubectl get "$kind" >/dev/null 2>&1 && gone+=("$kind")
  done
  for kind in "deployment/$RELEASE" "service/$svc_name" "serviceaccount/$sa" "role/$RELEASE-manager" \
              "rolebinding/$RELEASE-manager" "poddisruptionbudget/$RELEASE"; do
    kubectl -n "$NS" get "$kind" >/dev/null 2>&1 && gone+=("$NS/$kind")
  done
  if [ ${#gone[@]} -eq 0 ]; then
    pass "the webhook configurations, RBAC, Deployment, Service, ServiceAccount and PodDisruptionBudget are gone"
  else
    fail "everything the chart made is gone" "still there: ${gone[*]}"
  fi
  check "the CRDs stay (Helm never deletes them)" kubectl get crd "${IPGUARD_CRDS[@]}"
  check "the address plan stays (lnet-prod, team-a/prod)" bash -c "kubectl get lnet lnet-prod && kubectl -n team-a get wlc prod"
  check "what the manager made at run time stays: the Lease and the certificate Secret" \
    bash -c "kubectl -n $NS get lease $RELEASE-manager && kubectl -n $NS get secret $RELEASE-webhook-cert"
  if [ -n "$CLIENT_CA" ]; then
    check "the client CA ConfigMap stays (it is the administrator's, not the release's)" \
      kubectl -n "$NS" get configmap "$CLIENT_CA_CONFIGMAP"
  fi
  # The API server drops the configurations through an informer, a moment late.
  if poll 30 bash -c "$(declare -f ipres); ipres chart-e2e-unjudged 10.10.0.160 | kubectl apply -f -"; then
    pass "writes are no longer judged (a reservation inside lnet-prod's pool is admitted)"
  else
    fail "writes are no longer judged" "$(ipres chart-e2e-unjudged 10.10.0.160 | kubectl apply -f - 2>&1)"
  fi

  echo
  echo "e2e chart: $PASSED passed, $FAILED failed, $SKIPPED skipped ($((SECONDS - started)) s)"
  [ "$FAILED" -eq 0 ]
}

# One line, read whole before it runs: an edit of this file during a run cannot change it.
main "$@"; exit $?
