#!/usr/bin/env bash
# Benchmarks of ipguard against a real kube-apiserver (figures in docs/performance.md):
# starts a fresh control plane of ../shared/k8s in a network namespace of its own
# (tests/e2e/cluster.sh), applies crds/, then runs build/bench/bench_apiserver:
#   race      1,000 concurrent creates of one control-plane IP through the API server
#   latency   creates at 200/s: the webhook's share as the API server measures it
#             (IPGUARD_BENCH_FLAGS=--floor: a responder that only allows, instead of the manager)
#   load      1k LogicalNetworks, 10k WorkloadClusters, 100k LoadBalancer Services
#   startup   the manager on that plan: time to ready and peak RSS, three runs
#   peer      a client-go peer on the same plan: kube-controller-manager restarted with
#             only its endpoint controller, timed from its start to its log line
#             "Caches are synced for endpoint" (its Service, Pod and Endpoints informers)
#
#   bench/apiserver.sh [MODE...]     default: race latency load startup
# Build first: scripts/build.sh -DIPGUARD_TESTS=ON -DIPGUARD_BENCH=ON
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${IPGUARD_BENCH_INSIDE:-}" ]; then
  export IPGUARD_BENCH_INSIDE=1
  exec "$ROOT/tests/e2e/cluster.sh" --run bash "$ROOT/bench/apiserver.sh" "$@"
fi
cd "$ROOT"
BENCH=${IPGUARD_BENCH_BIN:-build/bench/bench_apiserver}
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(race latency load startup peer)
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s -f crds/ >/dev/null
echo "bench: $(nproc) cores; kube-apiserver $(kubectl get --raw /version | grep -o '"gitVersion": *"[^"]*"' | cut -d'"' -f4)"
# peer: the controller-manager of tests/e2e/cluster.sh's control plane, started again three
# times with only the endpoint controller, then as it was.
peer() {
  local state=${IPGUARD_E2E_K8S_STATE:?peer needs the control plane of tests/e2e/cluster.sh}
  local pid cmd i log start
  pid=$(cat "$state/controller-manager.pid")
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline")
  kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  for i in 1 2 3; do
    log=$(mktemp)
    start=$EPOCHREALTIME
    $cmd --controllers=endpoint >"$log" 2>&1 &
    pid=$!
    until grep -q 'Caches are synced for endpoint$' "$log"; do sleep 0.05; done
    echo "run $i: synced in $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s"
    kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$log"
  done
  $cmd >>"$state/logs/controller-manager.log" 2>&1 &
  echo $! >"$state/controller-manager.pid"
}
for mode in "${modes[@]}"; do
  echo "== $mode"
  if [ "$mode" = peer ]; then peer; continue; fi
  "$BENCH" --kubeconfig "$KUBECONFIG" "$mode" ${IPGUARD_BENCH_FLAGS:-}
done
