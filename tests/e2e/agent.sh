#!/usr/bin/env bash
# End-to-end test of the ledger across clusters: a management cluster (KUBECONFIG, the
# control plane tests/e2e/cluster.sh started) with two manager replicas, and a workload
# cluster (a second control plane of the same kind, started here) with `ipguard agent`.
#
#   tests/e2e/cluster.sh agent.sh
#
# Needs what cluster.sh hands on: IPGUARD_E2E_K8S_DIR (the control plane's scripts, to
# start the second one), IPGUARD_E2E_K8S_STATE and IPGUARD_E2E_APISERVER_RESTART (the
# management cluster's); without them the scenario is skipped (77).
#
# What it checks, each with real API servers and real kubectl:
#   - the agent, with the chart's ClusterRole ipguard-agent as its only grant in the
#     management cluster, judges the workload cluster's Services against the plan: a
#     control-plane IP of the plan is refused naming its WorkloadCluster; a free address is
#     admitted and claimed in the management cluster with holder.cluster edge-1, in the
#     VLAN of the cluster's network (--cluster-ref); the managers then refuse that address;
#   - its MetalLB pool is mirrored as LoadBalancerPool edge-1-<pool>, which the managers
#     then hold a control-plane IP out of; the mirror goes with the pool;
#   - 1,000 concurrent requests for one address to each manager replica (through the
#     management API server) and 1,000 to the agent (through the workload API server), at
#     once: exactly one admitted in the estate;
#   - the management cluster's API server down for a minute: the agent keeps judging (a
#     control-plane IP is still refused, a free address admitted with a warning), says so
#     in /readyz and ipguard_plan_reachable, and writes the claim when it is back;
#   - IPGUARD_E2E_CYCLES (10,000) Service create/delete cycles leave no claim behind;
#   - restarts of a manager, of the agent and of the management API server lose no claim.
#
# Addresses come from 198.18.0.0/15 (RFC 2544, benchmarking). Everything runs on loopback.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/e2e"
IPGUARD_BIN=${IPGUARD_BIN:-$ROOT/build/cmd/ipguard}
TIMEOUT=${IPGUARD_E2E_TIMEOUT:-60}
CYCLES=${IPGUARD_E2E_CYCLES:-10000}
RACE=${IPGUARD_E2E_RACE:-1000}
K8S=${IPGUARD_E2E_K8S_DIR:-}
MGMT_STATE=${IPGUARD_E2E_K8S_STATE:-}
MGMT_RESTART=${IPGUARD_E2E_APISERVER_RESTART:-}
CLIENT_CA=${IPGUARD_E2E_CLIENT_CA:-}
NS=e2e-agent
VWC=e2e-agent
CLUSTER=edge-1

if [ -z "${KUBECONFIG:-}" ] || [ -z "$K8S" ] || [ -z "$MGMT_STATE" ] || [ -z "$MGMT_RESTART" ]; then
  echo "e2e: SKIPPED (agent.sh runs under tests/e2e/cluster.sh, which starts the control planes)"
  exit 77
fi

source "$HERE/lib.sh"
e2e_wait() { poll "$@"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ipguard-e2e-agent.XXXXXX")
WL_STATE=$WORK/workload
MGMT=$KUBECONFIG
PIDS=()

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  "$K8S/down.sh" "$WL_STATE" >/dev/null 2>&1
  if [ "$FAILED" -eq 0 ] && [ "$status" -eq 0 ]; then
    rm -rf "$WORK"
  else
    rm -rf "$WL_STATE/bin" "$WL_STATE/etcd"
    echo "e2e: logs kept in $WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kmgmt() { kubectl --kubeconfig "$MGMT" "$@"; }
kwl() { kubectl --kubeconfig "$WL_KUBECONFIG" "$@"; }


# ---------------------------------------------------------------------------------------
# The processes: two manager replicas (A, B) and the agent
# ---------------------------------------------------------------------------------------

declare -A PID WEBHOOK METRICS PROBE
for who in a b agent; do
  free_port "WEBHOOK[$who]" && free_port "METRICS[$who]" && free_port "PROBE[$who]" || {
    echo "e2e: no free ports" >&2
    exit 1
  }
done
ca_flags=()
[ -n "$CLIENT_CA" ] && ca_flags=(--client-ca "$CLIENT_CA")

start_manager() {  # start_manager a|b
  local who=$1
  echo "---- start $(date -u +%FT%TZ)" >>"$WORK/manager-$who.log"
  "$IPGUARD_BIN" manager --kubeconfig "$MGMT" --namespace "$NS" \
    --leader-elect=true --lease-name e2e-agent-managers \
    --self-signed --cert-dir "$WORK/certs-$who" --webhook-config "$VWC" --webhook-ip 127.0.0.1 \
    --webhook-bind 127.0.0.1 --webhook-port "${WEBHOOK[$who]}" \
    --metrics-port "${METRICS[$who]}" --probe-port "${PROBE[$who]}" --probe-bind 127.0.0.1 \
    --claim-grace 5s "${ca_flags[@]}" >>"$WORK/manager-$who.log" 2>&1 &
  PID[$who]=$!
  PIDS+=("${PID[$who]}")
}

# The agent runs as the chart's ServiceAccount in the workload cluster (its token, so the
# chart's agent-mode RBAC decides) and as the ServiceAccount bound to ipguard-agent in the
# management cluster.
start_agent() {
  echo "---- start $(date -u +%FT%TZ)" >>"$WORK/agent.log"
  "$IPGUARD_BIN" agent --kubeconfig "$WORK/workload-agent.kubeconfig" --plan-kubeconfig "$WORK/plan.kubeconfig" \
    --cluster-name "$CLUSTER" --cluster-ref "$NS/$CLUSTER" --metallb --namespace ipguard-system \
    --self-signed --cert-dir "$WORK/certs-agent" --webhook-config ipguard-services \
    --webhook-config ipguard-resources --webhook-ip 127.0.0.1 \
    --webhook-bind 127.0.0.1 --webhook-port "${WEBHOOK[agent]}" \
    --metrics-port "${METRICS[agent]}" --probe-port "${PROBE[agent]}" --probe-bind 127.0.0.1 \
    --claim-grace 5s "${ca_flags[@]}" >>"$WORK/agent.log" 2>&1 &
  PID[agent]=$!
  PIDS+=("${PID[agent]}")
}

stop_process() {  # stop_process a|b|agent: SIGTERM; true when it exited by itself in 20 s
  local p=${PID[$1]}
  kill -TERM "$p" 2>/dev/null
  for _ in $(seq 1 40); do
    kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null; return 0; }
    sleep 0.5
  done
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  return 1
}

ready() { curl -fsS --max-time 2 "http://127.0.0.1:${PROBE[$1]}/readyz"; }

# restart_mgmt: restarts the management API server and waits until it is ready; the
# interval (UTC, as the logs write time; 2 s more for a refusal logged as it arrives) goes
# to RESTART_WINDOWS.
RESTART_WINDOWS=""
restart_mgmt() {
  local from rc
  from=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
  bash -c "$MGMT_RESTART" >>"$WORK/apiserver-restart.log" 2>&1
  rc=$?
  RESTART_WINDOWS="$RESTART_WINDOWS $from $(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%S.%3NZ)"
  return $rc
}

readyz_says() { curl -sS --max-time 2 "http://127.0.0.1:${PROBE[$1]}/readyz" | grep -q "$2"; }
metric_is() {  # metric_is WHO NAME VALUE
  curl -fsS --max-time 5 "http://127.0.0.1:${METRICS[$1]}/metrics" | grep -qx "$2 $3"
}

# ---------------------------------------------------------------------------------------
# Objects
# ---------------------------------------------------------------------------------------

wlc() {  # wlc NAME CONTROL_PLANE_IP [LABEL_VALUE]
  cat <<EOF
apiVersion: ipguard.io/v1alpha1
kind: WorkloadCluster
metadata:
  name: $1
  namespace: $NS
  labels: {replica: "${3:-a}"}
spec:
  logicalNetworkName: e2e-lnet
  controlPlaneIP: $2
  nodePools: [{name: p, count: 1}]
EOF
}

svc() {  # svc NAME IP: a LoadBalancer Service of the workload cluster asking for IP
  cat <<EOF
apiVersion: v1
kind: Service
metadata:
  name: $1
  namespace: $NS
spec:
  type: LoadBalancer
  loadBalancerClass: ipguard.io/e2e-none
  loadBalancerIP: $2
  ports: [{port: 443, protocol: TCP}]
EOF
}

claim_field() {  # claim_field NAME JSONPATH
  kmgmt get ipclaim "$1" -o "jsonpath=$2" 2>/dev/null
}
claim_held_by() {  # claim_held_by NAME CLUSTER HOLDER_NAME
  [ "$(claim_field "$1" '{.spec.holder.cluster}/{.spec.holder.name}')" = "$2/$3" ]
}
claim_absent() { ! kmgmt get ipclaim "$1" >/dev/null 2>&1; }
claims_of() {  # claims_of CLUSTER: names of the claims held by that cluster, sorted
  kmgmt get ipclaim -o jsonpath='{range .items[*]}{.metadata.name} {.spec.holder.cluster}{"\n"}{end}' 2>/dev/null |
    awk -v c="$1" '$2 == c { print $1 }' | sort
}
cycle_claims() {
  kmgmt get ipclaim -o jsonpath='{range .items[*]}{.spec.holder.name}{"\n"}{end}' 2>/dev/null | grep -c '^cycle-'
}
no_cycle_claims() { [ "$(cycle_claims)" = 0 ]; }

# expect_apply NAME VERDICT SUBSTRING KUBECTL...: the manifest on stdin; VERDICT is
# denied or allowed; SUBSTRING must be in kubectl's output either way.
expect_apply() {
  local name=$1 verdict=$2 want=$3 out rc
  shift 3
  out=$("$@" apply -f - 2>&1)
  rc=$?
  if [ "$verdict" = denied ] && [ $rc -eq 0 ]; then
    fail "$name" "admitted; expected a denial containing \"$want\""
  elif [ "$verdict" = allowed ] && [ $rc -ne 0 ]; then
    fail "$name" "refused: $out"
  elif [[ $out != *"$want"* ]]; then
    fail "$name" "the output lacks \"$want\": $out"
  else
    pass "$name"
  fi
}

main() {
  section "two control planes"
  echo "e2e: starting the workload cluster's control plane"
  if ! WL_KUBECONFIG=$(K8S_API_PORT=16643 K8S_ETCD_PORT=23990 K8S_KCM_PORT=10457 "$K8S/up.sh" "$WL_STATE" 2>"$WORK/up.err"); then
    fail "the workload cluster's control plane starts" "$(cat "$WORK/up.err")"
    return
  fi
  pass "the workload cluster's control plane starts (API on 127.0.0.1:16643)"

  # The management cluster: the CRDs, the plan, the agent's identity with the chart's role.
  kmgmt apply --server-side -f "$ROOT/crds/" >/dev/null || { fail "CRDs applied" ""; return; }
  check_eventually "the CRDs are established" kmgmt wait --for condition=established --timeout=5s \
    crd/logicalnetworks.ipguard.io crd/workloadclusters.ipguard.io crd/loadbalancerpools.ipguard.io \
    crd/ipreservations.ipguard.io crd/ipclaims.ipguard.io
  kmgmt create namespace "$NS" >/dev/null
  kmgmt create namespace ipguard-agents >/dev/null
  kmgmt apply -f - >/dev/null <<EOF
apiVersion: ipguard.io/v1alpha1
kind: LogicalNetwork
metadata: {name: e2e-lnet}
spec:
  vmSwitchName: s
  ipAllocationMethod: Static
  vlanId: 10
  addressPrefix: 198.18.0.0/24
  gateway: 198.18.0.1
  dnsServers: [198.18.0.2]
  ipPools: [{start: 198.18.0.100, end: 198.18.0.199}]
EOF
  wlc "$CLUSTER" 198.18.0.10 | kmgmt apply -f - >/dev/null
  wlc edge-2 198.18.0.11 | kmgmt apply -f - >/dev/null
  # The chart's ClusterRole ipguard-agent, and nothing else, for the agent's identity.
  helm template ipguard "$ROOT/charts/ipguard" -n ipguard-system --show-only templates/rbac.yaml |
    python3 -c 'import sys; docs = sys.stdin.read().split("\n---"); print("\n---".join(d for d in docs if "kind: ClusterRole\n" in d and "name: ipguard-agent\n" in d))' |
    kmgmt apply -f - >/dev/null
  check "the chart's ClusterRole ipguard-agent is applied" kmgmt get clusterrole ipguard-agent
  kmgmt -n ipguard-agents create serviceaccount "$CLUSTER" >/dev/null
  kmgmt create clusterrolebinding "ipguard-agent-$CLUSTER" --clusterrole=ipguard-agent \
    --serviceaccount="ipguard-agents:$CLUSTER" >/dev/null
  local token
  token=$(kmgmt -n ipguard-agents create token "$CLUSTER" --duration=6h)
  cat >"$WORK/plan.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mgmt
  cluster: {server: "https://127.0.0.1:$(cat "$MGMT_STATE/apiserver.port")", certificate-authority: $MGMT_STATE/pki/ca.crt}
users:
- name: $CLUSTER
  user: {token: $token}
contexts:
- name: mgmt
  context: {cluster: mgmt, user: $CLUSTER}
current-context: mgmt
EOF
  check "the agent's identity may keep claims and may not write the plan" bash -c "
    kubectl --kubeconfig '$WORK/plan.kubeconfig' auth can-i create ipclaims.ipguard.io | grep -qx yes &&
    ! kubectl --kubeconfig '$WORK/plan.kubeconfig' auth can-i create workloadclusters.ipguard.io >/dev/null"

  # The management cluster's webhooks: replica A judges what is not labelled replica=b
  # (IPClaims and mirrored pools included), replica B what is.
  kmgmt apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: $VWC}
webhooks:
$(for who in a b; do
    if [ $who = a ]; then op=NotIn; else op=In; fi
    cat <<HOOK
  - name: $who.e2e-agent.ipguard.io
    clientConfig: {url: "https://127.0.0.1:${WEBHOOK[$who]}/validate"}
    rules:
      - apiGroups: ["ipguard.io"]
        apiVersions: ["v1alpha1"]
        operations: ["CREATE", "UPDATE"]
        resources: [logicalnetworks, workloadclusters, loadbalancerpools, ipreservations, ipclaims]
        scope: "*"
    objectSelector:
      matchExpressions: [{key: replica, operator: $op, values: [b]}]
    failurePolicy: Fail
    sideEffects: None
    admissionReviewVersions: ["v1"]
    timeoutSeconds: 10
HOOK
  done)
EOF
  start_manager a
  start_manager b

  # The workload cluster: MetalLB's CRD, the namespaces, the chart's ServiceAccount and
  # RBAC of mode: agent (its token is the agent's only grant there), and the agent's two
  # webhook configurations under the chart's names (its RBAC patches only those).
  kwl apply -f "$HERE/metallb-ipaddresspool-crd.yaml" >/dev/null
  kwl create namespace "$NS" >/dev/null
  kwl create namespace ipguard-system >/dev/null
  check_eventually "the MetalLB CRD is established in the workload cluster" \
    kwl wait --for condition=established --timeout=5s crd/ipaddresspools.metallb.io
  helm template ipguard "$ROOT/charts/ipguard" -n ipguard-system --skip-crds --set mode=agent \
    --set agent.clusterName="$CLUSTER" --set agent.planKubeconfig.secretName=ipguard-plan \
    --set metallb.enabled=true --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml |
    kwl apply -f - >/dev/null
  check "the chart's agent-mode RBAC is applied in the workload cluster" kwl get clusterrole ipguard-agent
  local agent_token
  agent_token=$(kwl -n ipguard-system create token ipguard --duration=6h)
  cat >"$WORK/workload-agent.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: workload
  cluster: {server: "https://127.0.0.1:16643", certificate-authority: $WL_STATE/pki/ca.crt}
users:
- name: ipguard
  user: {token: $agent_token}
contexts:
- name: workload
  context: {cluster: workload, user: ipguard}
current-context: workload
EOF
  check "in its own cluster the agent reads Services and MetalLB pools, and no Secret but its own" bash -c "
    kubectl --kubeconfig '$WORK/workload-agent.kubeconfig' auth can-i watch services -A | grep -qx yes &&
    kubectl --kubeconfig '$WORK/workload-agent.kubeconfig' auth can-i watch ipaddresspools.metallb.io -A | grep -qx yes &&
    ! kubectl --kubeconfig '$WORK/workload-agent.kubeconfig' auth can-i get secrets -n default >/dev/null"
  local config rule
  for config in services resources; do
    if [ $config = services ]; then
      rule='{apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: [services], scope: Namespaced}'
    else
      rule='{apiGroups: ["metallb.io"], apiVersions: ["v1beta1"], operations: ["CREATE", "UPDATE"], resources: [ipaddresspools], scope: Namespaced}'
    fi
    kwl apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: ipguard-$config}
webhooks:
  - name: $config.e2e-agent.ipguard.io
    clientConfig: {url: "https://127.0.0.1:${WEBHOOK[agent]}/validate"}
    rules: [$rule]
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: $NS}
    failurePolicy: Fail
    sideEffects: None
    admissionReviewVersions: ["v1"]
    timeoutSeconds: 10
EOF
  done
  start_agent
  check_eventually "manager A is ready" ready a
  check_eventually "manager B is ready" ready b
  check_eventually "the agent is ready (it has listed the plan in the management cluster)" ready agent
  check_eventually "the managers wrote the CA into both of their webhooks" bash -c \
    "[ -n \"\$(kubectl --kubeconfig '$MGMT' get validatingwebhookconfiguration $VWC -o jsonpath='{.webhooks[1].clientConfig.caBundle}')\" ]"
  check_eventually "the agent wrote the CA into its two webhook configurations" bash -c \
    "[ -n \"\$(kubectl --kubeconfig '$WL_KUBECONFIG' get validatingwebhookconfiguration ipguard-services -o jsonpath='{.webhooks[0].clientConfig.caBundle}')\" ] &&
     [ -n \"\$(kubectl --kubeconfig '$WL_KUBECONFIG' get validatingwebhookconfiguration ipguard-resources -o jsonpath='{.webhooks[0].clientConfig.caBundle}')\" ]"

  section "a workload cluster's Services judged against the plan"
  # The API server may take a moment to pick up the caBundle.
  poll "$TIMEOUT" bash -c "kubectl --kubeconfig '$WL_KUBECONFIG' apply --dry-run=server -f - <<<'$(svc probe 198.18.0.11)' 2>&1 | grep -q 'denied the request'"
  svc api 198.18.0.11 | expect_apply "a control-plane IP of the plan is refused, naming its WorkloadCluster" denied \
    "WorkloadCluster $NS/edge-2" kwl
  svc web 198.18.0.60 | expect_apply "a free address is admitted" allowed "created" kwl
  check "its claim is in the management cluster, in VLAN 10 (--cluster-ref), held by $CLUSTER" \
    claim_held_by vlan10-198.18.0.60 "$CLUSTER" web
  wlc late 198.18.0.60 | expect_apply "the managers refuse the address a workload cluster's Service holds" denied \
    "Service $NS/web in cluster $CLUSTER" kmgmt

  section "MetalLB pools mirrored into the plan"
  kwl apply -f - >/dev/null 2>"$WORK/pool.err" <<EOF
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: edge-vips, namespace: $NS}
spec:
  addresses: [198.18.0.240/29]
EOF
  check "a free MetalLB pool is admitted" test ! -s "$WORK/pool.err"
  check_eventually "it is mirrored as LoadBalancerPool $CLUSTER-edge-vips in the cluster's network" bash -c \
    "[ \"\$(kubectl --kubeconfig '$MGMT' get lbpool $CLUSTER-edge-vips -o jsonpath='{.metadata.labels.ipguard\.io/cluster}/{.spec.logicalNetworkName}/{.spec.addresses[0]}')\" = '$CLUSTER/e2e-lnet/198.18.0.240/29' ]"
  check_eventually "the managers know the mirror" bash -c \
    "kubectl --kubeconfig '$MGMT' apply --dry-run=server -f - <<<'$(wlc inside 198.18.0.241)' 2>&1 | grep -q 'LoadBalancerPool $CLUSTER-edge-vips'"
  kwl -n "$NS" delete ipaddresspool edge-vips >/dev/null
  check_eventually "the mirror goes with the pool" bash -c "! kubectl --kubeconfig '$MGMT' get lbpool $CLUSTER-edge-vips >/dev/null 2>&1"

  section "$RACE concurrent requests for one address to each replica and to the agent"
  local wlc_json svc_json
  wlc_json='{"apiVersion":"ipguard.io/v1alpha1","kind":"WorkloadCluster","metadata":{"name":"race-R-{i}","labels":{"replica":"R"}},"spec":{"logicalNetworkName":"e2e-lnet","controlPlaneIP":"198.18.0.50","nodePools":[{"name":"p","count":1}]}}'
  svc_json='{"apiVersion":"v1","kind":"Service","metadata":{"name":"race-{i}"},"spec":{"type":"LoadBalancer","loadBalancerClass":"ipguard.io/e2e-none","loadBalancerIP":"198.18.0.50","ports":[{"port":443}]}}'
  python3 "$HERE/api_load.py" race "$MGMT_STATE" "$RACE" "/apis/ipguard.io/v1alpha1/namespaces/$NS/workloadclusters" "${wlc_json//R/a}" >"$WORK/race-a" &
  local ra=$!
  python3 "$HERE/api_load.py" race "$MGMT_STATE" "$RACE" "/apis/ipguard.io/v1alpha1/namespaces/$NS/workloadclusters" "${wlc_json//R/b}" >"$WORK/race-b" &
  local rb=$!
  python3 "$HERE/api_load.py" race "$WL_STATE" "$RACE" "/api/v1/namespaces/$NS/services" "$svc_json" >"$WORK/race-agent"
  wait $ra $rb
  local admitted
  admitted=$(( $(head -1 "$WORK/race-a") + $(head -1 "$WORK/race-b") + $(head -1 "$WORK/race-agent") ))
  echo "     admitted: replica A $(head -1 "$WORK/race-a"), replica B $(head -1 "$WORK/race-b"), agent $(head -1 "$WORK/race-agent")"
  for f in race-a race-b race-agent; do sed -n '2,3p' "$WORK/$f"; done | cut -c1-240 | sed 's/^/     /'
  if [ "$admitted" = 1 ]; then pass "exactly one of $((3 * RACE)) admitted in the estate"; else fail "exactly one of $((3 * RACE)) admitted in the estate" "$admitted admitted"; fi
  local stored
  stored=$(( $(kmgmt get wlc -n "$NS" -o jsonpath='{range .items[*]}{.spec.controlPlaneIP}{"\n"}{end}' | grep -cx 198.18.0.50) +
             $(kwl get svc -n "$NS" -o jsonpath='{range .items[*]}{.spec.loadBalancerIP}{"\n"}{end}' | grep -cx 198.18.0.50) ))
  if [ "$stored" = 1 ]; then pass "one object holds 198.18.0.50"; else fail "one object holds 198.18.0.50" "$stored stored"; fi
  check "one claim, vlan10-198.18.0.50" kmgmt get ipclaim vlan10-198.18.0.50

  section "the management cluster away for a minute"
  local down_at=$SECONDS
  kill "$(cat "$MGMT_STATE/apiserver.pid")"
  check_eventually "the agent says so in /readyz, and stays ready" readyz_says agent "management cluster is unreachable"
  check_eventually "ipguard_plan_reachable is 0" metric_is agent ipguard_plan_reachable 0
  svc still-refused 198.18.0.11 | expect_apply "a control-plane IP is still refused (the plan last seen)" denied \
    "WorkloadCluster $NS/edge-2" kwl
  svc offline 198.18.0.61 | expect_apply "a free address is admitted, with a warning" allowed \
    "the management cluster is unreachable" kwl
  sleep $((60 - (SECONDS - down_at) > 0 ? 60 - (SECONDS - down_at) : 0))
  if restart_mgmt; then
    pass "the management API server is back after $((SECONDS - down_at)) s"
  else
    fail "the management API server is back" "$(tail -5 "$WORK/apiserver-restart.log")"
  fi
  check_eventually "the claim admitted meanwhile is written" claim_held_by vlan10-198.18.0.61 "$CLUSTER" offline
  check_eventually "ipguard_plan_reachable is 1" metric_is agent ipguard_plan_reachable 1
  check_eventually "the managers are ready again" bash -c "curl -fs http://127.0.0.1:${PROBE[a]}/readyz && curl -fs http://127.0.0.1:${PROBE[b]}/readyz"

  section "$CYCLES Service create/delete cycles"
  local started=$SECONDS out
  out=$(python3 "$HERE/api_load.py" cycles "$WL_STATE" "$CYCLES" 8 "/api/v1/namespaces/$NS/services" \
    '{"apiVersion":"v1","kind":"Service","metadata":{"name":"cycle-{i}"},"spec":{"type":"LoadBalancer","loadBalancerClass":"ipguard.io/e2e-none","loadBalancerIP":"198.19.{a}.{b}","ports":[{"port":443}]}}')
  echo "     $out ($((SECONDS - started)) s)" | head -6
  if [[ $out == "created $CYCLES deleted $CYCLES failed 0"* ]]; then pass "every cycle created and deleted its Service"; else fail "every cycle created and deleted its Service" "$out"; fi
  TIMEOUT=300 check_eventually "no claim is left behind" no_cycle_claims
  echo "     claims left of cycle Services: $(cycle_claims) ($((SECONDS - started)) s since the first create)"

  section "restarts lose no claim"
  local before
  before=$(claims_of "$CLUSTER")
  echo "     $CLUSTER holds: $(echo $before)"
  check "a manager stops cleanly on SIGTERM" stop_process a
  start_manager a
  check "the agent stops cleanly on SIGTERM" stop_process agent
  start_agent
  restart_mgmt
  check_eventually "the agent is ready again" ready agent
  check_eventually "manager A is ready again" ready a
  sleep 10  # a grace and more: a wrongly released claim would be gone by now
  if [ "$(claims_of "$CLUSTER")" = "$before" ] && [ -n "$before" ]; then
    pass "the cluster's claims are the same after the restarts"
  else
    fail "the cluster's claims are the same after the restarts" "before: $before; after: $(claims_of "$CLUSTER")"
  fi
  check "the race's winner still has its claim" kmgmt get ipclaim vlan10-198.18.0.50
  svc web-again 198.18.0.60 | expect_apply "a second Service still cannot take web's address" denied "Service $NS/web" kwl

  section "logs"
  # RBAC refusals read 'is forbidden: User "..." cannot <verb> resource ...'; a webhook's
  # denial of a claim (the race's losers) is a 403 too, and is not one of them. A restarted
  # API server refuses everyone until its authorizer has read the RBAC objects (before it
  # is ready): refusals logged while it was starting are not the chart's.
  local refused
  refused=$(grep -E 'is forbidden: User|cannot (get|list|watch|create|update|patch|delete) resource' "$WORK/agent.log" |
    awk -v windows="$RESTART_WINDOWS" 'BEGIN { n = split(windows, w, " ") }
      { for (i = 1; i < n; i += 2) if ($1 >= w[i] && $1 <= w[i + 1]) next; print }')
  if [ -n "$refused" ]; then
    fail "the chart's RBAC let the agent make every request, in both clusters" "$(echo "$refused" | head -5)"
  else
    pass "the chart's RBAC let the agent make every request, in both clusters"
  fi
  if grep -E '\b(error|critical)\b' "$WORK/agent.log" | grep -v "connection refused\|Connection refused\|unreachable\|no answer" | grep -q .; then
    fail "the agent logged no unexpected error" "$(grep -E '\b(error|critical)\b' "$WORK/agent.log" | head -5)"
  else
    pass "the agent logged no unexpected error"
  fi
}

main
echo
echo "e2e agent: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
