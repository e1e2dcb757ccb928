#!/usr/bin/env bash
# End-to-end test of ipguard against a real Kubernetes cluster (see tests/e2e/README.md).
#
# The manager runs here, out of cluster; the API server reaches its webhook by URL
# (https://$IPGUARD_E2E_HOST:<port>/validate). Every check drives the cluster with kubectl
# exactly as a user would and prints one PASS or FAIL line. Exit status: 0 when every check
# passed, 1 when one failed, 77 (skipped) when KUBECONFIG is not set.
#
#   KUBECONFIG=~/.kube/kind.yaml IPGUARD_E2E_HOST=172.18.0.1 tests/e2e/run.sh
#
# Environment:
#   KUBECONFIG               the cluster (required; its current context is used)
#   IPGUARD_BIN              the ipguard binary (default: build/cmd/ipguard)
#   IPGUARD_E2E_HOST         an address of this machine that the API server can reach
#                            (default 127.0.0.1: only when the API server runs on this host)
#   IPGUARD_E2E_NAMESPACE    namespace for the test's namespaced objects (default ipguard-e2e)
#   IPGUARD_E2E_TIMEOUT      seconds to wait for the controller each time (default 60)
#   IPGUARD_E2E_METALLB=1    also test MetalLB IPAddressPools (needs the MetalLB CRDs)
#   IPGUARD_E2E_METALLB_NAMESPACE  where MetalLB accepts pools (default metallb-system)
#   IPGUARD_E2E_APISERVER_RESTART  a shell command that restarts the cluster's API server
#                            (found by itself for kind; without one that check is skipped)
#   IPGUARD_E2E_KEEP=1       keep the work directory (manager log, certificates) on success
#   IPGUARD_E2E_CLIENT_CA    a CA file: the manager runs with --client-ca, because the API
#                            server presents a certificate of that CA to webhooks; with
#                            IPGUARD_E2E_CLIENT_CERT and _KEY for the test's own requests
#
# What it touches: the CRDs in crds/ (applied; deleted at the end only if this script
# created them), the namespace above, a ValidatingWebhookConfiguration named ipguard-e2e,
# and cluster-scoped ipguard objects named e2e-* and labelled
# app.kubernetes.io/created-by=ipguard-e2e. All of it is removed on exit, even after a
# failure or Ctrl-C. Addresses come from 198.18.0.0/15 (RFC 2544, benchmarking), which no
# real network should use. Use a test cluster, not production.

set -uo pipefail

if [ -z "${KUBECONFIG:-}" ]; then
  echo "e2e: SKIPPED (set KUBECONFIG to run against a real cluster)"
  exit 77
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IPGUARD_BIN=${IPGUARD_BIN:-$ROOT/build/cmd/ipguard}
HOST=${IPGUARD_E2E_HOST:-127.0.0.1}
NS=${IPGUARD_E2E_NAMESPACE:-ipguard-e2e}
TIMEOUT=${IPGUARD_E2E_TIMEOUT:-60}
METALLB=${IPGUARD_E2E_METALLB:-0}
METALLB_NS=${IPGUARD_E2E_METALLB_NAMESPACE:-metallb-system}
APISERVER_RESTART=${IPGUARD_E2E_APISERVER_RESTART:-}
CLIENT_CA=${IPGUARD_E2E_CLIENT_CA:-}
CLIENT_CERT_ARGS=()
[ -n "$CLIENT_CA" ] && CLIENT_CERT_ARGS=(--cert "${IPGUARD_E2E_CLIENT_CERT:-}" --key "${IPGUARD_E2E_CLIENT_KEY:-}")
VWC=ipguard-e2e
LABEL_KEY=app.kubernetes.io/created-by
LABEL_VALUE=ipguard-e2e
CRDS=(logicalnetworks.ipguard.io workloadclusters.ipguard.io loadbalancerpools.ipguard.io
      ipreservations.ipguard.io ipclaims.ipguard.io)

CREATED_CRDS=()
MANAGER_PID=""
WORK=""

# ---------------------------------------------------------------------------------------
# Reporting and waiting
# ---------------------------------------------------------------------------------------

die() { echo "e2e: $*" >&2; exit 1; }

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# eventually SECONDS CMD...: runs CMD every second until it succeeds; false after SECONDS,
# or at once when the manager has exited.
eventually() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    manager_alive || return 1
    sleep 1
  done
}
e2e_wait() { eventually "$@"; }

# observed_generation_current RESOURCE [kubectl flags...]: status.observedGeneration is set
# and equals metadata.generation.
observed_generation_current() {
  local v
  v=$(kubectl get "$@" -o 'jsonpath={.status.observedGeneration}/{.metadata.generation}' 2>/dev/null)
  [[ $v =~ ^([0-9]+)/([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]
}

# ---------------------------------------------------------------------------------------
# kubectl apply with an expected verdict; the manifest comes on stdin
# ---------------------------------------------------------------------------------------

# expect_denied NAME SUBSTRING [kubectl apply flags...]: refused, the message has SUBSTRING.
expect_denied() {
  local name=$1 want=$2 out
  shift 2
  if out=$(kubectl apply "$@" -f - 2>&1); then
    fail "$name" "admitted; expected a denial containing \"$want\""
  elif [[ $out == *"$want"* ]]; then
    pass "$name"
  else
    fail "$name" "refused, but the message lacks \"$want\": $out"
  fi
}

# expect_cmd_denied NAME SUBSTRING CMD...: like expect_denied for any kubectl command.
expect_cmd_denied() {
  local name=$1 want=$2 out
  shift 2
  if out=$("$@" 2>&1); then
    fail "$name" "succeeded; expected a denial containing \"$want\""
  elif [[ $out == *"$want"* ]]; then
    pass "$name"
  else
    fail "$name" "refused, but the message lacks \"$want\": $out"
  fi
}

# ---------------------------------------------------------------------------------------
# Manifests (every object carries the e2e label so that only the test's objects are judged
# by the test's webhook configuration and cleanup finds them)
# ---------------------------------------------------------------------------------------

meta() {  # meta NAME [NAMESPACE]
  echo "metadata:"
  echo "  name: $1"
  [ -n "${2:-}" ] && echo "  namespace: $2"
  echo "  labels:"
  echo "    $LABEL_KEY: $LABEL_VALUE"
}

# lnet_static NAME VLAN PREFIX GATEWAY DNS POOL_START POOL_END
lnet_static() {
  cat <<EOF
apiVersion: ipguard.io/v1alpha1
kind: LogicalNetwork
$(meta "$1")
spec:
  vmSwitchName: "ConvergedSwitch(compute_management)"
  ipAllocationMethod: Static
  vlanId: $2
  addressPrefix: $3
  gateway: $4
  dnsServers: [$5]
  ipPools:
    - start: $6
      end: $7
EOF
}

# lnet_dhcp NAME VLAN SCOPE_START SCOPE_END
lnet_dhcp() {
  cat <<EOF
apiVersion: ipguard.io/v1alpha1
kind: LogicalNetwork
$(meta "$1")
spec:
  vmSwitchName: "ConvergedSwitch(compute_management)"
  ipAllocationMethod: DHCP
  vlanId: $2
  dhcpScope:
    - start: $3
      end: $4
EOF
}

# wlc NAME NETWORK CONTROL_PLANE_IP NODES  (in $NS; one control-plane node, surge 1)
wlc() {
  cat <<EOF
apiVersion: ipguard.io/v1alpha1
kind: WorkloadCluster
$(meta "$1" "$NS")
spec:
  logicalNetworkName: $2
  controlPlaneIP: $3
  nodePools:
    - name: default
      count: $4
EOF
}

# lbpool NAME NETWORK|- BLOCK
lbpool() {
  cat <<EOF
apiVersion: ipguard.io/v1alpha1
kind: LoadBalancerPool
$(meta "$1")
spec:
$( [ "$2" != "-" ] && echo "  logicalNetworkName: $2" )
  addresses: ["$3"]
EOF
}

# ipres NAME VLAN|- BLOCK
# ipclaim NAME ADDRESS VLAN HOLDER_KIND HOLDER_NAME: a claim written by hand.
ipclaim() {
  cat <<EOF
apiVersion: ipguard.io/v1alpha1
kind: IPClaim
$(meta "$1")
spec:
  address: $2
  vlanId: $3
  holder: {kind: $4, name: $5}
EOF
}

# race_creates N IP: N WorkloadClusters asking for one control-plane IP, created at once;
# prints how many were admitted.
race_creates() {
  local n=$1 ip=$2 i
  for i in $(seq 1 "$n"); do
    (wlc "e2e-wlc-race-$i" e2e-lnet-a "$ip" 1 | kubectl create -f - >/dev/null 2>&1 && echo ok) &
  done | grep -c ok
  wait
}

ipres() {
  cat <<EOF
apiVersion: ipguard.io/v1alpha1
kind: IPReservation
$(meta "$1")
spec:
$( [ "$2" != "-" ] && echo "  vlanId: $2" )
  addresses: ["$3"]
  description: ipguard e2e test
EOF
}

# svc NAME TYPE IP|- NETWORK|- [SHARING_KEY]  (in $NS, port 443)
# loadBalancerClass names no real controller, so no load balancer acts on these Services.
svc() {
  echo "apiVersion: v1"
  echo "kind: Service"
  meta "$1" "$NS"
  if [ "$3" != "-" ] || [ "$4" != "-" ] || [ -n "${5:-}" ]; then
    echo "  annotations:"
    [ "$3" != "-" ] && echo "    metallb.io/loadBalancerIPs: \"$3\""
    [ "$4" != "-" ] && echo "    ipguard.io/logical-network: $4"
    [ -n "${5:-}" ] && echo "    metallb.io/allow-shared-ip: $5"
  fi
  echo "spec:"
  echo "  type: $2"
  [ "$2" = "LoadBalancer" ] && echo "  loadBalancerClass: ipguard.io/e2e-none"
  cat <<EOF
  selector:
    app: ipguard-e2e
  ports:
    - name: https
      port: 443
      protocol: TCP
EOF
}

# The webhook configuration: ipguard kinds and Services, by URL, failurePolicy Fail, only
# for objects with the e2e label (so the test never judges anyone else's objects).
webhook_config() {  # webhook_config [CA_BUNDLE]
  local ca=""
  [ -n "${1:-}" ] && ca=$'\n'"      caBundle: $1"
  local url_host=$HOST
  [[ $HOST == *:* ]] && url_host="[$HOST]"
  local metallb_rule=""
  if [ "$METALLB" = 1 ]; then
    metallb_rule='
      - apiGroups: ["metallb.io"]
        apiVersions: ["v1beta1"]
        operations: ["CREATE", "UPDATE"]
        resources: ["ipaddresspools"]
        scope: Namespaced'
  fi
  cat <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
$(meta "$VWC")
webhooks:
  - name: resources.e2e.ipguard.io
    clientConfig:
      url: https://$url_host:$WEBHOOK_PORT/validate$ca
    rules:
      - apiGroups: ["ipguard.io"]
        apiVersions: ["v1alpha1"]
        operations: ["CREATE", "UPDATE"]
        resources: [logicalnetworks, workloadclusters, loadbalancerpools, ipreservations, ipclaims]
        scope: "*"
      - apiGroups: ["ipguard.io"]
        apiVersions: ["v1alpha1"]
        operations: ["DELETE"]
        resources: [logicalnetworks]
        scope: Cluster$metallb_rule
    objectSelector:
      matchLabels:
        $LABEL_KEY: $LABEL_VALUE
    failurePolicy: Fail
    sideEffects: None
    admissionReviewVersions: ["v1"]
    timeoutSeconds: 10
  - name: services.e2e.ipguard.io
    clientConfig:
      url: https://$url_host:$WEBHOOK_PORT/validate$ca
    rules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE"]
        resources: [services]
        scope: Namespaced
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: $NS
    objectSelector:
      matchLabels:
        $LABEL_KEY: $LABEL_VALUE
    failurePolicy: Fail
    sideEffects: None
    admissionReviewVersions: ["v1"]
    timeoutSeconds: 10
EOF
}

ca_bundle() {  # ca_bundle INDEX: the caBundle of webhook INDEX of the configuration
  kubectl get validatingwebhookconfiguration "$VWC" -o "jsonpath={.webhooks[$1].clientConfig.caBundle}" 2>/dev/null
}

both_ca_bundles_set() { [ -n "$(ca_bundle 0)" ] && [ -n "$(ca_bundle 1)" ]; }

# Deletes the webhook configuration (remembering its CA) so that writes are not judged.
SAVED_CA=""
webhook_off() {
  SAVED_CA=$(ca_bundle 0)
  kubectl delete validatingwebhookconfiguration "$VWC" --ignore-not-found >/dev/null
}
webhook_on() { webhook_config "$SAVED_CA" | kubectl apply -f - >/dev/null; }

# The probe: an IPReservation whose address has a leading zero. The CRD's schema admits
# it and the webhook always refuses it, whatever else exists; it is only ever dry-run.
probe() { ipres e2e-ipres-probe 3909 198.18.9.010 | kubectl apply --dry-run=server -f - 2>&1; }

# webhook_judges: the API server has picked up the configuration (with its caBundle) and
# the manager's webhook refuses the probe.
webhook_judges() { [[ $(probe) == *"denied the request"* ]]; }

# webhook_bypassed: the API server no longer calls the webhook (its configuration is gone
# from the API server's cache), so the probe is admitted.
webhook_bypassed() { probe >/dev/null; }

# A LoadBalancerPool that overlaps e2e-lnet-a's pool (created while the webhook is off).
apply_conflicting_pool() { lbpool e2e-lbpool-conflict e2e-lnet-a 198.18.0.176/28 | kubectl apply -f -; }
apply_invalid_cluster() { wlc e2e-wlc-invalid e2e-lnet-a 203.0.113.5 1 | kubectl apply -f -; }

# check_from_cluster CODE TEXT FILE [FLAGS...]: ipguard check --from-cluster on FILE
# exits CODE and prints TEXT.
check_from_cluster() {
  local code=$1 text=$2 file=$3 out rc
  shift 3
  out=$("$IPGUARD_BIN" check --from-cluster --kubeconfig "$KUBECONFIG" "$@" "$file" 2>&1)
  rc=$?
  [ "$rc" = "$code" ] && [[ $out == *"$text"* ]]
}

# import_azure_example: ipguard import of examples/azure, applied with kubectl (labelled as
# the test's, so the test's webhook judges it), then a collision with it through the
# webhook, which names the Azure resource; everything removed again.
AZURE_NS=azure
import_azure_example() {
  local out rc azure_ns_ours=0
  out=$("$IPGUARD_BIN" import --parameters "$ROOT/examples/azure/main.parameters.json" \
    "$ROOT/examples/azure" 2>"$WORK/import.err" >"$WORK/imported.yaml"; echo $?)
  rc=${out##*$'\n'}
  if [ "$rc" = 0 ] && [ "$(grep -c '^kind:' "$WORK/imported.yaml")" = 5 ]; then
    pass "ipguard import prints the five objects of examples/azure (exit 0)"
  else
    fail "ipguard import prints the five objects of examples/azure (exit 0)" "exit $rc: $(cat "$WORK/import.err")"
  fi
  if ! kubectl get namespace "$AZURE_NS" >/dev/null 2>&1; then
    kubectl create namespace "$AZURE_NS" >/dev/null && azure_ns_ours=1
    kubectl label namespace "$AZURE_NS" "$LABEL_KEY=$LABEL_VALUE" >/dev/null
  fi
  kubectl label --local -f "$WORK/imported.yaml" "$LABEL_KEY=$LABEL_VALUE" -o json >"$WORK/imported-labelled.json" 2>"$WORK/label.err"
  expect_allowed "kubectl apply takes what ipguard import printed, through the webhook" \
    <"$WORK/imported-labelled.json"
  check "the imported cluster keeps its Azure id" \
    jsonpath_is "wlc/aks-edge-01" '{.metadata.annotations.ipguard\.io/azure-id}' \
    "/subscriptions/3f2a9c4e-6b1d-4e8a-9c7f-2d5e8a1b0c93/resourceGroups/rg-edge-lab/providers/Microsoft.Kubernetes/connectedClusters/aks-edge-01/providers/Microsoft.HybridContainerService/provisionedClusterInstances/default" \
    -n "$AZURE_NS"
  expect_denied "a collision with an imported cluster names its Azure resource" \
    "equals controlPlaneIP 192.168.200.20 of WorkloadCluster azure/aks-edge-01 (Azure /subscriptions/3f2a9c4e-6b1d-4e8a-9c7f-2d5e8a1b0c93/" \
    < <(wlc e2e-wlc-azure-clash lnet-edge-200 192.168.200.20 1)
  check "ipguard check --from-cluster reads the imported plan back clean" \
    check_from_cluster 0 "Result: 0 violations" "$WORK/imported.yaml"
  kubectl delete -f "$WORK/imported.yaml" --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1
  delete_claims_of "$AZURE_NS"
  [ "$azure_ns_ours" = 1 ] && kubectl delete namespace "$AZURE_NS" --wait=false >/dev/null 2>&1
  return 0
}

# delete_claims_of NAMESPACE: the claims whose holder is in NAMESPACE.
delete_claims_of() {
  local claims
  kubectl get crd ipclaims.ipguard.io >/dev/null 2>&1 || return 0
  claims=$(kubectl get ipclaims -o jsonpath="{range .items[?(@.spec.holder.namespace==\"$1\")]}{.metadata.name}{' '}{end}" 2>/dev/null)
  # shellcheck disable=SC2086
  [ -n "$claims" ] && kubectl delete ipclaims $claims --ignore-not-found >/dev/null 2>&1
  return 0
}

# ---------------------------------------------------------------------------------------
# The manager
# ---------------------------------------------------------------------------------------


# "<run's shell PID> <manager PID>", kept where the next run against the same cluster and
# namespace looks for a manager that a hard-killed run left behind (it would keep
# rewriting this configuration's caBundle with its own CA). Set in main, once the cluster
# is known.
PIDFILE=""

# stop_orphan: stops the manager of an earlier run whose shell is gone; a run that is
# still going keeps its manager.
stop_orphan() {
  local owner pid
  read -r owner pid <"$PIDFILE" 2>/dev/null || return 0
  # The owner is alive only if its PID still runs this script (PIDs are reused).
  if [[ $owner =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$owner/cmdline" 2>/dev/null | grep -q "run\.sh"; then
    rm -rf "$WORK"
    die "another e2e run (PID $owner) is using this cluster and namespace; wait for it or set IPGUARD_E2E_NAMESPACE"
  fi
  if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "manager .*--webhook-config $VWC"; then
    echo "e2e: stopping the manager $pid that an earlier run left running"
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$PIDFILE"
}

start_manager() {
  local extra=()
  [ "$METALLB" = 1 ] && extra+=(--metallb)
  [ -n "$CLIENT_CA" ] && extra+=(--client-ca "$CLIENT_CA")
  echo "---- manager start $(date -u +%FT%TZ)" >>"$LOG"
  "$IPGUARD_BIN" manager \
    --kubeconfig "$KUBECONFIG" \
    --namespace "$NS" \
    --leader-elect=false \
    --self-signed \
    --cert-dir "$WORK/certs" \
    --webhook-config "$VWC" \
    --webhook-ip "$HOST" \
    --webhook-port "$WEBHOOK_PORT" \
    --metrics-port "$METRICS_PORT" \
    --probe-port "$PROBE_PORT" \
    --log-level debug \
    --claim-grace 5s \
    "${extra[@]}" >>"$LOG" 2>&1 &
  MANAGER_PID=$!
  echo "$$ $MANAGER_PID" >"$PIDFILE"
}

manager_alive() { [ -n "$MANAGER_PID" ] && kill -0 "$MANAGER_PID" 2>/dev/null; }

# stop_manager: SIGTERM, then SIGKILL after 20 s. False when it had to be killed.
stop_manager() {
  manager_alive || { MANAGER_PID=""; rm -f "$PIDFILE"; return 0; }
  kill -TERM "$MANAGER_PID" 2>/dev/null
  for _ in $(seq 1 40); do
    manager_alive || { wait "$MANAGER_PID" 2>/dev/null; MANAGER_PID=""; rm -f "$PIDFILE"; return 0; }
    sleep 0.5
  done
  kill -KILL "$MANAGER_PID" 2>/dev/null
  wait "$MANAGER_PID" 2>/dev/null
  MANAGER_PID=""
  rm -f "$PIDFILE"
  return 1
}

ready() { curl -fsS --max-time 2 "http://127.0.0.1:$PROBE_PORT/readyz"; }
metrics() { curl -fsS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics"; }

wait_manager_ready() {
  if eventually "$TIMEOUT" ready; then
    return 0
  fi
  manager_alive || echo "e2e: the manager exited; the end of its log:" >&2
  tail -n 30 "$LOG" >&2
  return 1
}

# watch_restarts: the manager's ipguard_watch_restarts_total, summed over resources.
watch_restarts() { metrics | awk '/^ipguard_watch_restarts_total/ { s += $NF } END { print s + 0 }'; }
watch_restarts_above() { [ "$(watch_restarts)" -gt "$1" ]; }

# The command that restarts the API server: IPGUARD_E2E_APISERVER_RESTART, or for a kind
# cluster (context kind-NAME, node NAME-control-plane) stopping the kube-apiserver
# container, which the kubelet starts again as it does any static pod.
restart_command() {
  if [ -n "$APISERVER_RESTART" ]; then echo "$APISERVER_RESTART"; return; fi
  local ctx node
  ctx=$(kubectl config current-context 2>/dev/null)
  [[ $ctx == kind-* ]] && command -v docker >/dev/null || return 0
  node="${ctx#kind-}-control-plane"
  docker inspect "$node" >/dev/null 2>&1 || return 0
  echo "docker exec $node sh -c 'crictl stop \$(crictl ps -q --name kube-apiserver)'"
}

apiserver_up() { kubectl get --raw /readyz >/dev/null 2>&1; }

# apiserver_instance: restart count and start time of the kube-apiserver pods (static pods
# on kubeadm and kind); empty where the API server runs as no pod (k3s, managed clusters).
# With the control plane of tests/e2e/cluster.sh (no pods): the API server's process ID.
apiserver_instance() {
  if [ -n "${IPGUARD_E2E_K8S_STATE:-}" ]; then
    echo "pid/$(cat "$IPGUARD_E2E_K8S_STATE/apiserver.pid" 2>/dev/null) "
    return
  fi
  kubectl get pods -n kube-system -l component=kube-apiserver -o \
    jsonpath='{range .items[*]}{.status.containerStatuses[0].restartCount}/{.status.containerStatuses[0].state.running.startedAt} {end}' 2>/dev/null
}
apiserver_instance_changed() {  # apiserver_instance_changed BEFORE
  local now
  now=$(apiserver_instance)
  [ -n "$now" ] && [ "$now" != "$1" ] && [[ $now != */\ * ]]
}

# The manager keeps running while the API server restarts, its watches resume, and both
# the controller and the webhook work afterwards.
apiserver_restart() {
  local cmd before instance
  cmd=$(restart_command)
  if [ -z "$cmd" ]; then
    skip "the manager survives an API server restart (not a kind cluster: set IPGUARD_E2E_APISERVER_RESTART to a command that restarts the API server)"
    return
  fi
  instance=$(apiserver_instance)
  before=$(watch_restarts)
  echo "---- API server restart $(date -u +%FT%TZ): $cmd" >>"$LOG"
  if bash -c "$cmd" >>"$LOG" 2>&1; then
    pass "the API server is restarted ($cmd)"
  else
    fail "the API server is restarted ($cmd)" "the command failed; see $LOG"
    return
  fi
  # Proof that it did go down: its pod's restart count or start time changes.
  if [ -z "$instance" ]; then
    echo "     (no kube-apiserver pod to watch here: the restart is taken on the command's word)"
  elif poll 180 apiserver_instance_changed "$instance"; then
    pass "the kube-apiserver process started again ($instance -> $(apiserver_instance))"
  else
    fail "the kube-apiserver process started again" "restart count, process ID and start time still $instance after 180 s"
  fi
  if poll 180 apiserver_up; then pass "the API server is back"; else fail "the API server is back" "not ready after 180 s"; return; fi
  check "the manager kept running through the restart" manager_alive
  check_eventually "the manager is ready" ready
  check_eventually "the manager's watches started again (ipguard_watch_restarts_total grew from $before)" \
    watch_restarts_above "$before"
  check_eventually "the webhook judges after the API server restart" webhook_judges
  check "the claims survive the API server restart (and the manager's)" \
    jsonpath_is ipclaim/vlan3901-198.18.0.20 '{.spec.holder.name}' e2e-wlc-a
  expect_allowed "a change after the API server restart is admitted" <<<"$(wlc e2e-wlc-a e2e-lnet-a 198.18.0.20 7)"
  check_eventually "the controller sees that change (free 91)" jsonpath_is lnet/e2e-lnet-a '{.status.addresses.free}' 91
}

# ---------------------------------------------------------------------------------------
# Set-up and clean-up
# ---------------------------------------------------------------------------------------

# webhook_gone: deletes the webhook configuration and waits until the API server stops
# calling it (its informer lags), so that the deletes below are not refused by a webhook
# that no longer answers.
webhook_gone() {
  kubectl delete validatingwebhookconfiguration "$VWC" --ignore-not-found >/dev/null 2>&1
  if kubectl get crd ipreservations.ipguard.io >/dev/null 2>&1; then poll 60 webhook_bypassed; fi
}

# leftovers: an earlier run left something behind.
leftovers() {
  kubectl get validatingwebhookconfiguration "$VWC" >/dev/null 2>&1 && return 0
  kubectl get namespace "$NS" >/dev/null 2>&1 && return 0
  local kind
  for kind in logicalnetworks.ipguard.io ipreservations.ipguard.io loadbalancerpools.ipguard.io ipclaims.ipguard.io; do
    kubectl get crd "$kind" >/dev/null 2>&1 || continue
    [ -n "$(kubectl get "$kind" -l "$LABEL_KEY=$LABEL_VALUE" -o name 2>/dev/null)" ] && return 0
  done
  return 1
}

# delete_test_objects: everything the test made, the namespaced objects (WorkloadClusters
# and Services, with the namespace) before the networks they name. Call webhook_gone first.
delete_test_objects() {
  local kind
  if kubectl get namespace "$NS" >/dev/null 2>&1; then
    kubectl delete namespace "$NS" --ignore-not-found --timeout=120s >/dev/null 2>&1
  fi
  if [ "$METALLB" = 1 ] && kubectl get crd ipaddresspools.metallb.io >/dev/null 2>&1; then
    kubectl delete ipaddresspools.metallb.io -n "$METALLB_NS" -l "$LABEL_KEY=$LABEL_VALUE" --ignore-not-found >/dev/null 2>&1
  fi
  # The claims the manager wrote for the test's objects carry no label of the test's.
  delete_claims_of "$NS"
  # The namespace of the imported Azure example, when the test made it.
  if [ "$(kubectl get namespace "$AZURE_NS" -o "jsonpath={.metadata.labels.${LABEL_KEY//./\\.}}" 2>/dev/null)" = "$LABEL_VALUE" ]; then
    kubectl delete wlc -n "$AZURE_NS" --all --ignore-not-found >/dev/null 2>&1
    delete_claims_of "$AZURE_NS"
    kubectl delete namespace "$AZURE_NS" --ignore-not-found --wait=false >/dev/null 2>&1
  fi
  for kind in ipclaims.ipguard.io loadbalancerpools.ipguard.io ipreservations.ipguard.io logicalnetworks.ipguard.io; do
    kubectl get crd "$kind" >/dev/null 2>&1 || continue
    for _ in 1 2 3; do
      kubectl delete "$kind" -l "$LABEL_KEY=$LABEL_VALUE" --ignore-not-found --timeout=60s >/dev/null 2>&1 && break
      sleep 5
    done
  done
  # Events of cluster-scoped objects are in "default"; remove the test's.
  local name
  for name in e2e-lbpool-conflict e2e-lnet-a vlan3901-198.18.0.26; do
    kubectl delete events -n default --field-selector "involvedObject.name=$name" --ignore-not-found >/dev/null 2>&1
  done
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  echo
  echo "== clean-up"
  webhook_gone
  stop_manager >/dev/null
  delete_test_objects
  local crd
  for crd in "${CREATED_CRDS[@]}"; do
    kubectl delete crd "$crd" --ignore-not-found --timeout=60s >/dev/null 2>&1
  done
  if [ -n "$WORK" ]; then
    if [ "$FAILED" -gt 0 ] || [ "$status" -ne 0 ] || [ "${IPGUARD_E2E_KEEP:-0}" = 1 ]; then
      echo "e2e: manager log and certificates kept in $WORK"
    else
      rm -rf "$WORK"
    fi
  fi
  exit "$status"
}

preflight() {
  local tool
  for tool in kubectl openssl curl base64; do
    command -v "$tool" >/dev/null || die "$tool is not on PATH (see tests/e2e/README.md)"
  done
  [ -x "$IPGUARD_BIN" ] || die "no ipguard binary at $IPGUARD_BIN: build it (scripts/build.sh) or set IPGUARD_BIN"
  kubectl version >/dev/null 2>&1 || die "cannot reach the cluster of KUBECONFIG=$KUBECONFIG: $(kubectl version 2>&1 | tail -n 1)"
}

# ---------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------

main() {
  preflight
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/ipguard-e2e.XXXXXX")
  LOG=$WORK/manager.log
  mkdir -p "$WORK/certs"
  # One self-contained kubeconfig with the current context, for kubectl and the manager.
  kubectl config view --raw --minify --flatten >"$WORK/kubeconfig" || die "cannot read KUBECONFIG"
  export KUBECONFIG=$WORK/kubeconfig
  # Before the clean-up trap: a run that is still going must keep its objects.
  PIDFILE="${TMPDIR:-/tmp}/ipguard-e2e-$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}' | cksum | cut -d' ' -f1)-$NS.pid"
  stop_orphan
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  echo "e2e: cluster $(kubectl config current-context), webhook on $HOST, namespace $NS, binary $IPGUARD_BIN"
  if ! { free_port WEBHOOK_PORT && free_port METRICS_PORT && free_port PROBE_PORT; }; then
    die "no free local port"
  fi

  section "set-up"
  if leftovers; then
    echo "e2e: removing what an earlier run left behind"
    webhook_gone
    delete_test_objects
  fi
  local crd
  for crd in "${CRDS[@]}"; do
    kubectl get crd "$crd" >/dev/null 2>&1 || CREATED_CRDS+=("$crd")
  done
  local out
  if out=$(kubectl apply --server-side --field-manager=ipguard-e2e -f "$ROOT/crds/" 2>&1); then
    pass "CRDs from crds/ apply (server-side)"
  else
    fail "CRDs from crds/ apply (server-side)" "$out"
    die "cannot go on without the CRDs (another field manager owns them? apply them by hand)"
  fi
  check "CRDs are Established" kubectl wait --for=condition=Established --timeout="${TIMEOUT}s" \
    "${CRDS[@]/#/crd/}"
  if [ "$METALLB" = 1 ]; then
    kubectl get crd ipaddresspools.metallb.io >/dev/null 2>&1 ||
      die "IPGUARD_E2E_METALLB=1 but the MetalLB CRDs are not installed"
    kubectl get namespace "$METALLB_NS" >/dev/null 2>&1 ||
      die "IPGUARD_E2E_METALLB=1 but there is no namespace $METALLB_NS (set IPGUARD_E2E_METALLB_NAMESPACE)"
  fi
  # A namespace an earlier run deleted may still be Terminating.
  poll 300 bash -c "! kubectl get namespace '$NS'" || die "namespace $NS is still there (Terminating?)"
  kubectl create namespace "$NS" >/dev/null || die "cannot create namespace $NS"
  webhook_config | kubectl apply -f - >/dev/null || die "cannot create ValidatingWebhookConfiguration $VWC"

  start_manager
  check_eventually "manager serves /healthz" curl -fsS --max-time 2 "http://127.0.0.1:$PROBE_PORT/healthz"
  if wait_manager_ready; then pass "manager becomes ready (/readyz)"; else fail "manager becomes ready (/readyz)"; die "see $LOG"; fi
  check_eventually "manager writes the caBundle of both webhooks (--self-signed)" both_ca_bundles_set
  # The API server picks the caBundle up through an informer, a moment later.
  check_eventually "the API server calls the webhook with that caBundle" webhook_judges
  ca_bundle 0 | base64 -d >"$WORK/ca.pem" 2>/dev/null
  local hostport="$HOST:$WEBHOOK_PORT"
  [[ $HOST == *:* ]] && hostport="[$HOST]:$WEBHOOK_PORT"
  local s_client_args=()
  [ -n "$CLIENT_CA" ] && s_client_args=(-cert "${IPGUARD_E2E_CLIENT_CERT:-}" -key "${IPGUARD_E2E_CLIENT_KEY:-}")
  if out=$(openssl s_client -connect "$hostport" -CAfile "$WORK/ca.pem" "${s_client_args[@]}" -verify_return_error \
             -verify_ip "$HOST" </dev/null 2>&1) && [[ $out == *"Verify return code: 0 (ok)"* ]]; then
    pass "webhook certificate verifies against the caBundle, with IP SAN $HOST"
  else
    fail "webhook certificate verifies against the caBundle, with IP SAN $HOST" "$(echo "$out" | grep -i verify | head -n 3)"
  fi
  local code
  if [ -n "$CLIENT_CA" ]; then
    # The webhook takes only clients with a certificate of the API server's CA.
    if out=$(curl -sS --max-time 5 --cacert "$WORK/ca.pem" -H 'Content-Type: application/json' \
               --data '{}' "https://$hostport/validate" 2>&1); then
      fail "a client without the API server's certificate is refused (--client-ca)" "answered: $out"
    else
      pass "a client without the API server's certificate is refused (--client-ca)"
    fi
    check "the refused handshake is counted" \
      bash -c "curl -fsS --max-time 5 http://127.0.0.1:$METRICS_PORT/metrics | grep -Eq '^ipguard_webhook_tls_handshake_failures_total [1-9]'"
  fi
  code=$(curl -sS --max-time 5 --cacert "$WORK/ca.pem" "${CLIENT_CERT_ARGS[@]}" -o "$WORK/bad-review.json" -w '%{http_code}' \
           -H 'Content-Type: application/json' --data 'this is not an AdmissionReview' \
           "https://$hostport/validate" 2>/dev/null)
  if [[ $code == 400 ]] || { [[ $code == 200 ]] && grep -q '400' "$WORK/bad-review.json"; }; then
    pass "an unreadable AdmissionReview gets code 400"
  else
    fail "an unreadable AdmissionReview gets code 400" "HTTP $code: $(head -c 300 "$WORK/bad-review.json" 2>/dev/null)"
  fi
  check "manager is still running after the bad request" manager_alive

  # ---- The address plan used below (VLAN 3901 unless said otherwise):
  #   e2e-lnet-a       198.18.0.0/24, gateway .1, DNS .10, pool .100-.199 (100 addresses)
  #   e2e-ipres-infra  198.18.0.5-198.18.0.7
  #   e2e-wlc-a        control plane .20, 3 nodes (needs 1 + 3 + 1 = 5)
  #   e2e-lbpool-a     198.18.0.200-198.18.0.219
  #   e2e-svc-a        Service asking for .201
  #   e2e-lnet-b       the same addresses as e2e-lnet-a on VLAN 3902

  section "address syntax"
  expect_allowed "IPReservation with a valid range is admitted" <<<"$(ipres e2e-ipres-infra 3901 198.18.0.5-198.18.0.7)"
  expect_denied "address with a leading zero is refused" 'spec.addresses[0]' <<<"$(ipres e2e-ipres-bad 3901 198.18.1.010)"
  expect_denied "CIDR with host bits set is refused, naming the network" '198.18.1.0/24' <<<"$(ipres e2e-ipres-bad 3901 198.18.1.5/24)"

  section "LogicalNetwork fields"
  expect_allowed "Static LogicalNetwork is admitted" \
    <<<"$(lnet_static e2e-lnet-a 3901 198.18.0.0/24 198.18.0.1 198.18.0.10 198.18.0.100 198.18.0.199)"
  expect_denied "gateway outside addressPrefix is refused" 'spec.gateway 198.18.2.1 is outside addressPrefix 198.18.3.0/24' \
    <<<"$(lnet_static e2e-lnet-bad 3909 198.18.3.0/24 198.18.2.1 198.18.3.10 198.18.3.100 198.18.3.199)"
  expect_warning "DHCP LogicalNetwork is admitted with the production warning" 'DHCP is not recommended for production' \
    <<<"$(lnet_dhcp e2e-lnet-dhcp 3903 198.18.4.100 198.18.4.199)"

  section "LogicalNetwork collisions and domains"
  expect_denied "pool overlapping another network's pool on the same VLAN is refused" \
    'ipPools[0] 198.18.0.150-198.18.0.249 of LogicalNetwork e2e-lnet-overlap overlaps ipPools[0] 198.18.0.100-198.18.0.199 of LogicalNetwork e2e-lnet-a' \
    <<<"$(lnet_static e2e-lnet-overlap 3901 198.18.0.0/24 198.18.0.1 198.18.0.10 198.18.0.150 198.18.0.249)"
  expect_allowed "the same addresses on another VLAN are admitted" \
    <<<"$(lnet_static e2e-lnet-b 3902 198.18.0.0/24 198.18.0.1 198.18.0.10 198.18.0.100 198.18.0.199)"
  expect_denied "a reservation without vlanId collides on every VLAN" \
    'addresses[0] 198.18.0.150 of IPReservation e2e-ipres-everywhere is inside ipPools[0] 198.18.0.100-198.18.0.199 of LogicalNetwork e2e-lnet-' \
    <<<"$(ipres e2e-ipres-everywhere - 198.18.0.150)"

  section "WorkloadCluster control-plane IP and capacity"
  expect_allowed "WorkloadCluster with its control-plane IP outside the pool is admitted" \
    <<<"$(wlc e2e-wlc-a e2e-lnet-a 198.18.0.20 3)"
  expect_denied "control-plane IP inside the network's pool is refused" \
    "controlPlaneIP 198.18.0.150 of WorkloadCluster $NS/e2e-wlc-inpool is inside ipPools[0] 198.18.0.100-198.18.0.199 of LogicalNetwork e2e-lnet-a" \
    <<<"$(wlc e2e-wlc-inpool e2e-lnet-a 198.18.0.150 3)"
  expect_denied "a control-plane IP used by another cluster is refused" \
    "controlPlaneIP 198.18.0.20 of WorkloadCluster $NS/e2e-wlc-dup equals controlPlaneIP 198.18.0.20 of WorkloadCluster $NS/e2e-wlc-a" \
    <<<"$(wlc e2e-wlc-dup e2e-lnet-a 198.18.0.20 3)"
  expect_denied "a WorkloadCluster on a missing network is refused" 'LogicalNetwork "e2e-lnet-missing" not found' \
    <<<"$(wlc e2e-wlc-lost e2e-lnet-missing 198.18.0.21 3)"
  expect_denied "a cluster that does not fit the pool is refused with the numbers" '(needed 207, available 100)' \
    <<<"$(wlc e2e-wlc-big e2e-lnet-a 198.18.0.21 200)"

  section "updates"
  expect_allowed "scaling a node pool up within capacity is admitted" <<<"$(wlc e2e-wlc-a e2e-lnet-a 198.18.0.20 4)"
  # The CRD's CEL rule refuses this before the webhook is asked; both say the same words.
  expect_denied "changing controlPlaneIP is refused (by the CRD's CEL rule)" 'spec.controlPlaneIP is immutable' \
    <<<"$(wlc e2e-wlc-a e2e-lnet-a 198.18.0.22 4)"

  section "LoadBalancerPool"
  expect_allowed "LoadBalancerPool inside the prefix and outside the pool is admitted" \
    <<<"$(lbpool e2e-lbpool-a e2e-lnet-a 198.18.0.200-198.18.0.219)"
  expect_denied "LoadBalancerPool overlapping the network's pool is refused" \
    'addresses[0] 198.18.0.176/28 of LoadBalancerPool e2e-lbpool-bad overlaps ipPools[0] 198.18.0.100-198.18.0.199 of LogicalNetwork e2e-lnet-a' \
    <<<"$(lbpool e2e-lbpool-bad e2e-lnet-a 198.18.0.176/28)"

  section "IPReservation"
  expect_allowed "reservations may overlap each other" <<<"$(ipres e2e-ipres-overlap 3901 198.18.0.7)"
  expect_denied "nothing else may overlap a reservation" \
    'addresses[0] 198.18.0.6 of LoadBalancerPool e2e-lbpool-onres is inside addresses[0] 198.18.0.5-198.18.0.7 of IPReservation e2e-ipres-infra' \
    <<<"$(lbpool e2e-lbpool-onres e2e-lnet-a 198.18.0.6)"

  section "Services"
  expect_allowed "LoadBalancer Service asking for an address of a LoadBalancerPool is admitted" \
    <<<"$(svc e2e-svc-a LoadBalancer 198.18.0.201 e2e-lnet-a)"
  expect_denied "LoadBalancer Service asking for an address in a node pool is refused" \
    "annotations[metallb.io/loadBalancerIPs] 198.18.0.150 of Service $NS/e2e-svc-inpool is inside ipPools[0] 198.18.0.100-198.18.0.199 of LogicalNetwork e2e-lnet-" \
    <<<"$(svc e2e-svc-inpool LoadBalancer 198.18.0.150 -)"
  expect_denied "two Services on one address without a sharing key are refused" \
    'and the two do not carry the same sharing key' \
    <<<"$(svc e2e-svc-dup LoadBalancer 198.18.0.201 e2e-lnet-a)"
  expect_warning "an address in no LoadBalancerPool is admitted with a warning" 'is in no LoadBalancerPool' \
    <<<"$(svc e2e-svc-free LoadBalancer 198.19.0.5 -)"
  expect_allowed "a ClusterIP Service is admitted untouched" <<<"$(svc e2e-svc-clusterip ClusterIP - -)"

  if [ "$METALLB" = 1 ]; then
    section "MetalLB IPAddressPool"
    local pool
    pool=$(printf 'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\n%s\nspec:\n  addresses: ["%s"]\n  autoAssign: false\n' \
      "$(meta e2e-metallb-ok "$METALLB_NS")" 198.19.1.0/28)
    expect_allowed "MetalLB IPAddressPool on free addresses is admitted" <<<"$pool"
    pool=$(printf 'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\n%s\nspec:\n  addresses: ["%s"]\n  autoAssign: false\n' \
      "$(meta e2e-metallb-bad "$METALLB_NS")" 198.18.0.128/25)
    expect_denied "MetalLB IPAddressPool overlapping a node pool is refused" \
      "addresses[0] 198.18.0.128/25 of IPAddressPool $METALLB_NS/e2e-metallb-bad overlaps ipPools[0] 198.18.0.100-198.18.0.199 of LogicalNetwork e2e-lnet-" <<<"$pool"
  else
    echo "SKIP MetalLB IPAddressPool checks (set IPGUARD_E2E_METALLB=1 with MetalLB's CRDs installed)"
  fi

  section "dry run and server-side apply"
  expect_denied "--dry-run=server is refused with the same message" \
    "controlPlaneIP 198.18.0.150 of WorkloadCluster $NS/e2e-wlc-inpool is inside ipPools[0]" \
    --dry-run=server <<<"$(wlc e2e-wlc-inpool e2e-lnet-a 198.18.0.150 3)"
  expect_allowed "--dry-run=server of a valid object is admitted" --dry-run=server \
    <<<"$(wlc e2e-wlc-dry e2e-lnet-a 198.18.0.23 1)"
  check "a dry run stores nothing" bash -c "! kubectl get wlc -n '$NS' e2e-wlc-dry e2e-wlc-inpool 2>/dev/null | grep -q e2e-"
  expect_allowed "server-side apply of a valid object works" --server-side --field-manager=ipguard-e2e \
    <<<"$(ipres e2e-ipres-ssa 3901 198.18.0.8)"
  expect_allowed "server-side apply of a change works" --server-side --field-manager=ipguard-e2e \
    <<<"$(ipres e2e-ipres-ssa 3901 198.18.0.9)"
  expect_denied "server-side apply is judged too" 'e2e-ipres-ssa-bad is inside ipPools[0]' \
    --server-side --field-manager=ipguard-e2e <<<"$(ipres e2e-ipres-ssa-bad 3901 198.18.0.120)"

  section "status written by the controller"
  check_eventually "LogicalNetwork e2e-lnet-a becomes Ready=True" condition_is lnet/e2e-lnet-a Ready True
  check_eventually "LogicalNetwork status.addresses: total 100, requiredByNodes 6, free 94" \
    jsonpath_is lnet/e2e-lnet-a '{.status.addresses.total}/{.status.addresses.requiredByNodes}/{.status.addresses.free}' 100/6/94
  check_eventually "LogicalNetwork status.clusters is 1" jsonpath_is lnet/e2e-lnet-a '{.status.clusters}' 1
  check_eventually "LogicalNetwork status.observedGeneration follows metadata.generation" \
    observed_generation_current lnet/e2e-lnet-a
  check_eventually "WorkloadCluster becomes Ready=True with status.requiredAddresses 6" \
    bash -c "kubectl get wlc -n '$NS' e2e-wlc-a -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}/{.status.requiredAddresses}' | grep -qx 'True/6'"
  check_eventually "IPReservation becomes Ready=True" condition_is ipres/e2e-ipres-infra Ready True
  check_eventually "LoadBalancerPool becomes Ready=True" condition_is lbpool/e2e-lbpool-a Ready True
  check_eventually "LoadBalancerPool status.addresses.total is 20" \
    jsonpath_is lbpool/e2e-lbpool-a '{.status.addresses.total}' 20
  if kubectl patch service -n "$NS" e2e-svc-a --subresource=status --type=merge \
       -p '{"status":{"loadBalancer":{"ingress":[{"ip":"198.18.0.201"}]}}}' >/dev/null 2>&1; then
    check_eventually "LoadBalancerPool status.addresses.assigned counts the Service address it holds" \
      jsonpath_is lbpool/e2e-lbpool-a '{.status.addresses.assigned}' 1
  else
    fail "LoadBalancerPool status.addresses.assigned counts the Service address it holds" \
      "could not set the Service's status (kubectl patch --subresource=status)"
  fi
  check_eventually "DHCP LogicalNetwork becomes Ready=True" condition_is lnet/e2e-lnet-dhcp Ready True
  check_eventually "kubectl get lnet prints TOTAL and FREE" \
    bash -c "kubectl get lnet e2e-lnet-a | head -n 1 | grep -q 'TOTAL.*FREE' && kubectl get lnet e2e-lnet-a --no-headers | grep -Eq '[[:space:]]100[[:space:]]+94[[:space:]]'"
  check "kubectl get wlc prints NETWORK and CONTROL-PLANE-IP" \
    bash -c "kubectl get wlc -n '$NS' e2e-wlc-a | grep -q 'NETWORK.*CONTROL-PLANE-IP' && kubectl get wlc -n '$NS' e2e-wlc-a --no-headers | grep -q 'e2e-lnet-a.*198.18.0.20'"
  check "kubectl get lbpool prints ASSIGNED" bash -c "kubectl get lbpool e2e-lbpool-a | head -n 1 | grep -q ASSIGNED"
  check "kubectl get ipguard lists every kind" \
    bash -c "kubectl get ipguard -A -o name | grep -q logicalnetwork && kubectl get ipguard -A -o name | grep -q workloadcluster && kubectl get ipguard -A -o name | grep -q loadbalancerpool && kubectl get ipguard -A -o name | grep -q ipreservation"
  check "metrics: ipguard_admission_requests_total counts denials" \
    bash -c "curl -fsS --max-time 5 http://127.0.0.1:$METRICS_PORT/metrics | grep -E '^ipguard_admission_requests_total\\{.*verdict=\"denied\".*\\} [1-9]'"
  check "metrics: ipguard_informers_synced is 1" \
    bash -c "curl -fsS --max-time 5 http://127.0.0.1:$METRICS_PORT/metrics | grep -Eq '^ipguard_informers_synced(\\{[^}]*\\})? 1'"

  section "the ledger (IPClaims)"
  check "an admitted WorkloadCluster's control-plane IP is claimed, naming it" \
    jsonpath_is ipclaim/vlan3901-198.18.0.20 '{.spec.address}/{.spec.holder.kind}/{.spec.holder.namespace}/{.spec.holder.name}' \
    "198.18.0.20/WorkloadCluster/$NS/e2e-wlc-a"
  check "kubectl get ipclaim prints ADDRESS, VLAN and HOLDER" \
    bash -c "kubectl get ipclaim vlan3901-198.18.0.20 | head -n 1 | grep -q 'ADDRESS.*VLAN.*HOLDER'"
  check "the manager knows who it is, so its own claims are admitted at once" \
    grep -q 'claims: written at admission as ' "$LOG"
  check "a dry run claims nothing" bash -c "! kubectl get ipclaim vlan3901-198.18.0.23 >/dev/null 2>&1"
  expect_allowed "a claim written by hand is admitted" \
    <<<"$(ipclaim vlan3901-198.18.0.25 198.18.0.25 3901 Host backup-appliance)"
  expect_denied "a WorkloadCluster asking for a hand-claimed address is refused, naming its holder" \
    "IPClaim vlan3901-198.18.0.25 (held by Host backup-appliance)" <<<"$(wlc e2e-wlc-onclaim e2e-lnet-a 198.18.0.25 1)"
  expect_denied "a claim written by hand inside a node pool is refused" \
    "address 198.18.0.150 of IPClaim vlan3901-198.18.0.150 (held by Host lab) is inside ipPools[0]" \
    <<<"$(ipclaim vlan3901-198.18.0.150 198.18.0.150 3901 Host lab)"
  expect_denied "a claim named for another address is refused" "must be vlan3901-198.18.0.28" \
    <<<"$(ipclaim e2e-claim-misnamed 198.18.0.28 3901 Host lab)"
  expect_allowed "a WorkloadCluster for 198.18.0.26 is admitted" <<<"$(wlc e2e-wlc-brief e2e-lnet-a 198.18.0.26 1)"
  check "its claim exists" kubectl get ipclaim vlan3901-198.18.0.26
  kubectl delete wlc -n "$NS" e2e-wlc-brief >/dev/null 2>&1
  check_eventually "deleting it releases its claim" bash -c "! kubectl get ipclaim vlan3901-198.18.0.26 >/dev/null 2>&1"
  check_eventually "a Normal event ClaimReleased says why (namespace default)" \
    bash -c "kubectl get events -n default --field-selector involvedObject.name=vlan3901-198.18.0.26,reason=ClaimReleased -o jsonpath='{.items[*].message}' | grep -q 'e2e-wlc-brief does not exist'"
  local admitted
  admitted=$(race_creates 20 198.18.0.27)
  if [ "$admitted" = 1 ]; then
    pass "of 20 WorkloadClusters created at once for one control-plane IP, exactly one is admitted"
  else
    fail "of 20 WorkloadClusters created at once for one control-plane IP, exactly one is admitted" "$admitted admitted"
  fi
  check "the one admitted holds the claim" \
    bash -c "kubectl get ipclaim vlan3901-198.18.0.27 -o jsonpath='{.spec.holder.name}' | grep -q '^e2e-wlc-race-'"
  # The winner goes again: the network's counts below leave it out.
  kubectl delete wlc -n "$NS" $(seq -f 'e2e-wlc-race-%g' 1 20) --ignore-not-found >/dev/null 2>&1
  check "metrics: ipguard_claims counts the claims of VLAN 3901" \
    bash -c "curl -fsS --max-time 5 http://127.0.0.1:$METRICS_PORT/metrics | grep -Eq '^ipguard_claims\\{cluster=\"\",vlan=\"3901\"\\} [1-9]'"

  section "ipguard check --from-cluster"
  wlc e2e-wlc-change e2e-lnet-a 198.18.0.24 1 >"$WORK/change.yaml"
  wlc e2e-wlc-change e2e-lnet-a 198.18.0.150 1 >"$WORK/change-bad.yaml"
  wlc e2e-wlc-a e2e-lnet-a 198.18.0.21 4 >"$WORK/change-live.yaml"
  check "alone, a change naming a live network reports it not found" \
    bash -c "'$IPGUARD_BIN' check '$WORK/change.yaml' | grep -qF 'LogicalNetwork \"e2e-lnet-a\" not found'"
  check "with --from-cluster, the same change is judged against the live plan and passes" \
    check_from_cluster 0 "in the cluster" "$WORK/change.yaml"
  check "with --from-cluster, a collision with a live object names it as in the cluster" \
    check_from_cluster 1 "is inside ipPools[0] 198.18.0.100-198.18.0.199 of LogicalNetwork e2e-lnet-a (other side: in the cluster)" \
    "$WORK/change-bad.yaml"
  check "with --from-cluster, a changed live object is judged as its update" \
    check_from_cluster 1 "immutable" "$WORK/change-live.yaml"
  check "with --from-cluster, an unknown context is exit 2" \
    check_from_cluster 2 "ipguard check: --from-cluster:" "$WORK/change.yaml" --context no-such-context

  section "ipguard import: Azure's resources applied with kubectl"
  import_azure_example
  section "collisions that get in anyway"
  webhook_off
  # The API server may still call the webhook for a moment after the configuration is gone.
  if eventually 30 apply_conflicting_pool; then
    pass "a colliding LoadBalancerPool is created while the webhook configuration is deleted"
  else
    fail "a colliding LoadBalancerPool is created while the webhook configuration is deleted"
  fi
  webhook_on
  check_eventually "the webhook configuration is back in force" webhook_judges
  check_eventually "the later object gets Conflicting=True" condition_is lbpool/e2e-lbpool-conflict Conflicting True
  check_eventually "its Ready is False" condition_is lbpool/e2e-lbpool-conflict Ready False
  check "the Conflicting message names both sides" \
    bash -c "kubectl get lbpool e2e-lbpool-conflict -o jsonpath='{.status.conditions[?(@.type==\"Conflicting\")].message}' | grep -qF 'ipPools[0] 198.18.0.100-198.18.0.199 of LogicalNetwork e2e-lnet-a'"
  check "the older object keeps Conflicting=False" condition_is lnet/e2e-lnet-a Conflicting False
  check_eventually "a Warning event IPConflict is recorded (namespace default)" \
    bash -c "kubectl get events -n default --field-selector involvedObject.name=e2e-lbpool-conflict,reason=IPConflict -o jsonpath='{.items[*].type}' | grep -q Warning"
  check_eventually "metrics: ipguard_conflicts counts it" \
    bash -c "curl -fsS --max-time 5 http://127.0.0.1:$METRICS_PORT/metrics | grep -E '^ipguard_conflicts\\{[^}]*LoadBalancerPool[^}]*\\} [1-9]'"
  # A field the webhook would refuse, stored while it was away: the controller
  # runs the same rules and says so in Ready.
  webhook_off
  if eventually 30 apply_invalid_cluster; then
    pass "a WorkloadCluster with its control-plane IP outside its network is created while the webhook configuration is deleted"
  else
    fail "a WorkloadCluster with its control-plane IP outside its network is created while the webhook configuration is deleted"
  fi
  webhook_on
  check_eventually "the webhook configuration is back in force" webhook_judges
  check_eventually "the invalid WorkloadCluster gets Ready=False, reason InvalidSpec" \
    jsonpath_is wlc/e2e-wlc-invalid '{.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}' False/InvalidSpec -n "$NS"
  check "its Ready message is the webhook's" \
    bash -c "kubectl get wlc -n '$NS' e2e-wlc-invalid -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].message}' | grep -qF 'controlPlaneIP 203.0.113.5 of WorkloadCluster $NS/e2e-wlc-invalid is outside addressPrefix'"
  kubectl delete wlc -n "$NS" e2e-wlc-invalid --wait=false >/dev/null 2>&1 || true
  expect_allowed "moving the pool to free addresses is admitted" <<<"$(lbpool e2e-lbpool-conflict e2e-lnet-a 198.18.0.224/28)"
  check_eventually "Conflicting turns False" condition_is lbpool/e2e-lbpool-conflict Conflicting False
  check_eventually "a Normal event ConflictResolved is recorded" \
    bash -c "kubectl get events -n default --field-selector involvedObject.name=e2e-lbpool-conflict,reason=ConflictResolved -o name | grep -q ."

  section "restart and resync"
  # The configuration goes first, and the API server must have dropped it before the
  # manager stops: with failurePolicy Fail it would refuse the writes below otherwise.
  webhook_off
  check_eventually "the API server stops calling the webhook once its configuration is deleted" webhook_bypassed
  if stop_manager; then pass "manager stops on SIGTERM"; else fail "manager stops on SIGTERM" "killed after 20 s"; fi
  local offline_ok=1
  ipres e2e-ipres-offline 3901 198.18.0.30 | kubectl apply -f - >/dev/null 2>&1 || offline_ok=0
  wlc e2e-wlc-a e2e-lnet-a 198.18.0.20 6 | kubectl apply -f - >/dev/null 2>&1 || offline_ok=0
  webhook_on
  if [ "$offline_ok" = 1 ]; then pass "changes are made while the manager is down"; else fail "changes are made while the manager is down"; fi
  start_manager
  if wait_manager_ready; then pass "manager is ready again after the restart"; else fail "manager is ready again after the restart"; die "see $LOG"; fi
  check_eventually "the webhook answers again" webhook_judges
  check_eventually "an object created while it was down becomes Ready=True" condition_is ipres/e2e-ipres-offline Ready True
  check_eventually "a scale-up made while it was down shows in status (free 92)" \
    jsonpath_is lnet/e2e-lnet-a '{.status.addresses.free}' 92
  check "the resolved pool stays Conflicting=False" condition_is lbpool/e2e-lbpool-conflict Conflicting False
  expect_denied "the webhook judges again after the restart" \
    "controlPlaneIP 198.18.0.150 of WorkloadCluster $NS/e2e-wlc-inpool is inside ipPools[0]" \
    <<<"$(wlc e2e-wlc-inpool e2e-lnet-a 198.18.0.150 3)"
  check "the CA survives the restart (kept in the Secret)" bash -c "[ \"\$(kubectl get validatingwebhookconfiguration $VWC -o jsonpath='{.webhooks[0].clientConfig.caBundle}')\" = '$SAVED_CA' ]"

  section "API server restart"
  apiserver_restart

  section "deleting a LogicalNetwork"
  expect_cmd_denied "deleting a network that a WorkloadCluster names is refused, naming it" \
    "is still used by WorkloadCluster $NS/e2e-wlc-a" kubectl delete lnet e2e-lnet-a --wait=false
  check "deleting a network that no cluster names is admitted" kubectl delete lnet e2e-lnet-b
  check "the annotation ipguard.io/allow-delete=true is admitted" \
    kubectl annotate lnet e2e-lnet-a ipguard.io/allow-delete=true --overwrite
  check "with the annotation the delete is admitted" kubectl delete lnet e2e-lnet-a

  echo
  echo "e2e: $PASSED passed, $FAILED failed, $SKIPPED skipped"
  [ "$FAILED" -eq 0 ]
}

main "$@"
