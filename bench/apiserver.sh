#!/usr/bin/env bash
# Benchmarks of ipguard against a real kube-apiserver (figures in docs/performance.md):
# starts a fresh control plane of ../shared/k8s in a network namespace of its own
# (tests/e2e/cluster.sh), applies crds/, then runs build/bench/bench_apiserver:
#   race      1,000 concurrent creates of one control-plane IP through the API server
#   latency   creates at 200/s: the webhook's share as the API server measures it
#             (IPGUARD_BENCH_FLAGS=--floor: a responder that only allows, instead of the manager;
#             --floor-claims: one that first writes each create's IPClaim, then allows;
#             --warm-connections N: N creates at once before the clock, so that the API server
#             holds its idle connections to the webhook when the run starts)
#             After every mode: how long etcd waited on its disk for the writes the mode made
#   load      1k LogicalNetworks, 10k WorkloadClusters, 100k LoadBalancer Services
#   startup   the manager on that plan: time to ready and peak RSS, three runs
#   peer      a client-go peer on the same plan: kube-controller-manager restarted with
#             only its endpoint controller, timed from its start to its log line
#             "Caches are synced for endpoint" (its Service, Pod and Endpoints informers)
#   peer-gc   the same with only its garbage collector, whose metadata informers list every
#             kind the API server serves (ipguard's custom resources and IPClaims included),
#             timed to "all resource monitors have synced": the peer of a plan of claims
#
#   bench/apiserver.sh [MODE...]     default: race latency load startup
# Build first: scripts/build.sh -DIPGUARD_TESTS=ON -DIPGUARD_BENCH=ON
set -euo pipefail
shopt -s extglob
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
# times with only one controller (endpoint, or garbagecollector), then as it was.
peer() {
  local controller=${1:-endpoint} synced='Caches are synced for endpoint$'
  [ "$controller" = endpoint ] || synced='all resource monitors have synced'
  local state=${IPGUARD_E2E_K8S_STATE:?peer needs the control plane of tests/e2e/cluster.sh}
  local pid cmd i log start
  pid=$(cat "$state/controller-manager.pid")
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline")
  # Its own --controllers list goes: a second one would be appended to it, not replace it.
  local only=${cmd//--controllers=+([^ ]) /}
  kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  for i in 1 2 3; do
    log=$(mktemp)
    start=$EPOCHREALTIME
    $only --controllers="$controller" >"$log" 2>&1 &
    pid=$!
    until grep -q "$synced" "$log"; do
      sleep 0.05
      if awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a > 300) }'; then
        echo "run $i: not synced in 300 s; its log:"; tail -20 "$log"; break
      fi
    done
    echo "run $i: synced in $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s"
    kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$log"
  done
  $cmd >>"$state/logs/controller-manager.log" 2>&1 &
  echo $! >"$state/controller-manager.pid"
}
# etcd's own histograms of its disk waits (WAL fsync, backend commit), as counts
# per bucket: read before and after a mode, their difference says what the disk
# added to every write the run made (a write is acknowledged after its fsync).
etcd_disk() {
  curl -s "http://127.0.0.1:${K8S_ETCD_PORT:-23790}/metrics" |
    grep -E '^etcd_disk_(wal_fsync|backend_commit)_duration_seconds_(bucket|count)' || true
}
etcd_disk_report() {  # before after
  awk '
    FNR == NR { before[$1] = $2; next }
    { delta[$1] = $2 - before[$1] }
    END {
      for (m = 1; m <= 2; m++) {
        name = m == 1 ? "etcd_disk_wal_fsync_duration_seconds" : "etcd_disk_backend_commit_duration_seconds"
        total = delta[name "_count"]
        if (total <= 0) continue
        line = sprintf("%s in the run: %d", m == 1 ? "etcd WAL fsyncs" : "etcd backend commits", total)
        split("0.001 0.002 0.004 0.008 0.016 0.032 0.064 0.128", les, " ")
        for (i = 1; i <= 8; i++) {
          key = name "_bucket{le=\"" les[i] "\"}"
          if (key in delta) line = line sprintf(", %.1f%% under %g ms", 100 * delta[key] / total, les[i] * 1000)
        }
        print line
      }
    }' "$1" "$2"
}
for mode in "${modes[@]}"; do
  echo "== $mode"
  if [ "$mode" = peer ]; then peer; continue; fi
  if [ "$mode" = peer-gc ]; then peer garbagecollector; continue; fi
  before=$(mktemp); after=$(mktemp)
  etcd_disk >"$before"
  "$BENCH" --kubeconfig "$KUBECONFIG" "$mode" ${IPGUARD_BENCH_FLAGS:-}
  etcd_disk >"$after"
  etcd_disk_report "$before" "$after"
  rm -f "$before" "$after"
done
