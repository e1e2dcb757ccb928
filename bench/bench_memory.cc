// Heap bytes per stored object in the engine, the figure behind the
// manager's peak RSS (docs/performance.md, issue #3): loads the plan of
// bench_manager (1k LogicalNetworks, 10k WorkloadClusters, 100k LoadBalancer
// Services, with the uid, resourceVersion and creationTimestamp the API
// server adds) into an Engine and reads glibc's heap-in-use before and after
// each kind.
//
//   build/bench/bench_memory [services] [claims]
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/plan_objects.h"
#include "core/engine.h"

namespace {

using ipguard::Engine;
using ipguard::Object;
using ipguard::ParseObject;
using nlohmann::json;

size_t HeapInUse() {
  ::malloc_trim(0);
  return mallinfo2().uordblks;
}

// What the API server adds to every object.
json Served(json obj, int n) {
  auto& meta = obj["metadata"];
  char uid[40];
  std::snprintf(uid, sizeof uid, "%08x-1d2c-4b5a-9e8f-%012x", n, n * 7919);
  meta["uid"] = uid;
  meta["resourceVersion"] = std::to_string(1000000 + n);
  meta["creationTimestamp"] = "2026-01-01T00:00:00Z";
  meta["generation"] = 1;
  return obj;
}

template <typename MakeJson>
double Load(Engine* engine, int count, MakeJson make) {
  size_t before = HeapInUse();
  for (int i = 0; i < count; ++i) {
    auto obj = ParseObject(Served(make(i), i));
    if (!obj.ok()) {
      std::fprintf(stderr, "bad object %d: %s\n", i, obj.error().c_str());
      std::exit(1);
    }
    engine->Upsert(obj.value());
  }
  return static_cast<double>(HeapInUse() - before) / count;
}

}  // namespace

int main(int argc, char** argv) {
  const int services = argc > 1 ? std::atoi(argv[1]) : 100000;
  // The ledger of an estate whose Services live in 10 workload clusters:
  // their claims, and those of the control-plane IPs.
  const int claims = argc > 2 ? std::atoi(argv[2]) : 100000;
  const int networks = 1000, clusters = 10000;
  Engine engine;
  double per_network = Load(&engine, networks, [](int n) { return ipguard::bench::NetworkJson(n); });
  double per_cluster = Load(&engine, clusters, [&](int c) {
    return ipguard::bench::ClusterJson(c, networks, "team-" + std::to_string(c % 100));
  });
  double per_service = Load(&engine, services, [](int s) { return ipguard::bench::ServiceJson(s); });
  double per_claim = Load(&engine, claims, [](int s) { return ipguard::bench::ServiceClaimJson(s, 10); });
  std::printf("engine bytes per object: LogicalNetwork %.0f, WorkloadCluster %.0f, Service %.0f",
              per_network, per_cluster, per_service);
  // A kind loaded zero times has no bytes per object.
  if (claims > 0) std::printf(", IPClaim %.0f", per_claim);
  std::printf("\n");
  std::printf("engine total: %.1f MB for %zu objects (index %.1f MB)\n",
              static_cast<double>(HeapInUse()) / 1e6, engine.size(),
              static_cast<double>(engine.IndexMemoryBytes()) / 1e6);
  return 0;
}
