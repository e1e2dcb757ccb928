#!/usr/bin/env bash
# Runs end-to-end scenarios (tests/e2e/*.sh) against a real Kubernetes API server.
#
#   tests/e2e/cluster.sh SCENARIO...        e.g. tests/e2e/cluster.sh run.sh chart.sh
#   tests/e2e/cluster.sh --run CMD ARGS...  any command against that cluster (bench/apiserver.sh)
#
# Which cluster:
#   - KUBECONFIG set: that cluster, as it is (nothing is started or stopped).
#   - otherwise the control plane of IPGUARD_K8S_DIR, or of ../shared/k8s beside the
#     checkout when it exists (kube-apiserver and kube-controller-manager v1.26.1 with
#     etcd; see its README): started fresh for this run in a network namespace of its own
#     where the machine allows one (unshare -n as root, else unshare -rn), so that it, the
#     manager and the tests share a private loopback; stopped afterwards whatever happened.
#     Its API server restart command is handed to the scenarios
#     (IPGUARD_E2E_APISERVER_RESTART), and its API server presents a client certificate to
#     webhooks (an AdmissionConfiguration): the CA, and a certificate of the same CA for the
#     tests' own requests, are handed on as IPGUARD_E2E_CLIENT_CA, _CERT and _KEY.
#   - neither: every scenario is reported as skipped (exit 77).
#
# The control plane's logs are kept (their directory is printed) when a scenario failed,
# or always with IPGUARD_E2E_KEEP_LOGS=1.
# kubectl and helm come from .tools/ (scripts/setup.sh) when present, else from PATH.
# Exit status: 0 when every scenario passed, 77 when skipped, 1 otherwise.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/e2e"
[ $# -ge 1 ] || { echo "usage: tests/e2e/cluster.sh SCENARIO... | --run CMD ARGS..." >&2; exit 2; }
RUN_COMMAND=0
if [ "$1" = --run ]; then
  RUN_COMMAND=1
  shift
  [ $# -ge 1 ] || { echo "usage: tests/e2e/cluster.sh --run CMD ARGS..." >&2; exit 2; }
else
  for s in "$@"; do
    [ -f "$HERE/$s" ] || { echo "e2e: no scenario $HERE/$s" >&2; exit 2; }
  done
fi
[ -d "$ROOT/.tools" ] && export PATH="$ROOT/.tools:$PATH"

run_scenarios() {
  if [ $RUN_COMMAND = 1 ]; then
    "$@"
    return $?
  fi
  local rc=0 s r
  for s in "$@"; do
    echo "==== scenario $s ($(kubectl config current-context 2>/dev/null || echo '?'))"
    bash "$HERE/$s"
    r=$?
    echo "==== scenario $s: exit $r"
    if [ $r -ne 0 ] && [ $r -ne 77 ]; then rc=1; fi
    if [ $r -eq 77 ] && [ $rc -eq 0 ]; then rc=77; fi
  done
  return $rc
}

if [ -n "${KUBECONFIG:-}" ]; then
  run_scenarios "$@"
  exit $?
fi

K8S=${IPGUARD_K8S_DIR:-}
if [ -z "$K8S" ] && [ -x "$ROOT/../shared/k8s/up.sh" ]; then K8S=$(cd "$ROOT/../shared/k8s" && pwd); fi
if [ -z "$K8S" ]; then
  echo "e2e: SKIPPED (set KUBECONFIG to a test cluster, or IPGUARD_K8S_DIR to a control plane like ../shared/k8s)"
  exit 77
fi
[ -x "$K8S/up.sh" ] || { echo "e2e: $K8S/up.sh not found (IPGUARD_K8S_DIR)" >&2; exit 1; }

# Into a private network namespace, once: loopback only, nothing reachable but itself.
if [ -z "${IPGUARD_E2E_NETNS:-}" ]; then
  for how in "unshare -n" "unshare -rn"; do
    if $how true 2>/dev/null && command -v ip >/dev/null; then
      export IPGUARD_E2E_NETNS="$how"
      [ $RUN_COMMAND = 1 ] && set -- --run "$@"
      exec $how bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
    fi
  done
  echo "e2e: no private network namespace here (unshare -n refused); using this machine's loopback"
  export IPGUARD_E2E_NETNS=none
fi

STATE=$(mktemp -d "${TMPDIR:-/tmp}/ipguard-k8s.XXXXXX")
stop_cluster() {
  local status=$?
  trap - EXIT INT TERM
  "$K8S/down.sh" "$STATE" >/dev/null 2>&1
  if { [ "$status" -eq 0 ] || [ "$status" -eq 77 ]; } && [ -z "${IPGUARD_E2E_KEEP_LOGS:-}" ]; then
    rm -rf "$STATE"
  else
    # Only the logs are worth keeping; the binaries and etcd data are large.
    rm -rf "$STATE/bin" "$STATE/etcd"
    echo "e2e: control-plane logs kept in $STATE/logs"
  fi
  exit "$status"
}
trap stop_cluster EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The API server presents a client certificate to every webhook it calls, as
# docs/install.md ("Client certificates") tells an administrator to configure it: an
# AdmissionConfiguration whose kubeconfig names the certificate for any webhook host ("*";
# the docs name ipguard's Service, but run.sh's webhook is reached by URL). The scenarios
# start the webhook with --client-ca (chart.sh: webhook.clientCA), so a client without
# that certificate is refused.
make_webhook_client_cert() {
  local d=$STATE/webhook-client
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.crt" -days 2 \
    -subj /CN=ipguard-e2e-webhook-client-ca 2>/dev/null || return 1
  printf '[ext]\nextendedKeyUsage=clientAuth\n' >"$d/client.cnf"
  local who
  for who in apiserver test; do
    openssl req -newkey rsa:2048 -nodes -keyout "$d/$who.key" -out "$d/$who.csr" \
      -subj "/CN=ipguard-e2e-$who" 2>/dev/null &&
      openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -out "$d/$who.crt" -days 2 -extfile "$d/client.cnf" -extensions ext 2>/dev/null || return 1
  done
  cat >"$d/kubeconfig" <<EOF
apiVersion: v1
kind: Config
users:
- name: "*"
  user:
    client-certificate: $d/apiserver.crt
    client-key: $d/apiserver.key
EOF
  cat >"$d/admission.yaml" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ValidatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $d/kubeconfig
EOF
}
if ! make_webhook_client_cert; then echo "e2e: cannot make the webhook client certificate" >&2; exit 1; fi
export K8S_APISERVER_FLAGS="${K8S_APISERVER_FLAGS:-} --admission-control-config-file=$STATE/webhook-client/admission.yaml"

echo "e2e: starting the control plane of $K8S (network namespace: $IPGUARD_E2E_NETNS)"
started=$SECONDS
if ! kubeconfig=$("$K8S/up.sh" "$STATE" 2>"$STATE/up.err"); then
  echo "e2e: the control plane did not start:" >&2
  cat "$STATE/up.err" >&2
  tail -n 20 "$STATE"/logs/*.log >&2 2>/dev/null
  exit 1
fi
echo "e2e: control plane ready in $((SECONDS - started)) s (kube-apiserver $(kubectl --kubeconfig "$kubeconfig" get --raw /version 2>/dev/null | grep -o '"gitVersion": *"[^"]*"' | cut -d'"' -f4))"
export KUBECONFIG=$kubeconfig
export IPGUARD_E2E_APISERVER_RESTART="$K8S/restart-apiserver.sh $STATE"
export IPGUARD_E2E_K8S_STATE=$STATE
export IPGUARD_E2E_K8S_DIR=$K8S  # agent.sh starts a second control plane with it
export IPGUARD_E2E_CLIENT_CA=$STATE/webhook-client/ca.crt
export IPGUARD_E2E_CLIENT_CERT=$STATE/webhook-client/test.crt
export IPGUARD_E2E_CLIENT_KEY=$STATE/webhook-client/test.key
run_scenarios "$@"
