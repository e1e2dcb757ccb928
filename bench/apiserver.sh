#!/usr/bin/env bash
# Benchmarks of ipguard against a real kube-apiserver (figures in docs/performance.md):
# starts a fresh control plane of ../shared/k8s in a network namespace of its own
# (tests/e2e/cluster.sh), applies crds/, then runs build/bench/bench_apiserver:
#   race      1,000 concurrent creates of one control-plane IP through the API server
#   latency   creates at 200/s: the webhook's share as the API server measures it
#   load      1k LogicalNetworks, 10k WorkloadClusters, 100k LoadBalancer Services
#   startup   the manager on that plan: time to ready and peak RSS, three runs
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
[ ${#modes[@]} -gt 0 ] || modes=(race latency load startup)
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s -f crds/ >/dev/null
echo "bench: $(nproc) cores; kube-apiserver $(kubectl get --raw /version | grep -o '"gitVersion": *"[^"]*"' | cut -d'"' -f4)"
for mode in "${modes[@]}"; do
  echo "== $mode"
  "$BENCH" --kubeconfig "$KUBECONFIG" "$mode" ${IPGUARD_BENCH_FLAGS:-}
done
