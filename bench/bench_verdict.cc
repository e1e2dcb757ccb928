// A full verdict for one new object against 100k stored objects (1k
// LogicalNetworks, 10k WorkloadClusters, 89k LoadBalancer Services), and the
// same verdict computed by a linear scan of every stored address as the
// baseline. And the status the controller computes for a cluster and for its
// network when the network's prefix holds many claims (an estate's Services).
//
//   build/bench/bench_verdict
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include "controller/status.h"
#include "core/engine.h"

namespace ipguard {
namespace {

using nlohmann::json;

std::string Ip4(uint32_t v) { return IpAddr::V4(v).ToString(); }

json Network(int i) {
  uint32_t base = 0x0a000000u + (static_cast<uint32_t>(i) << 8);  // 10.x.y.0/24
  return {{"apiVersion", "ipguard.io/v1alpha1"},
          {"kind", "LogicalNetwork"},
          {"metadata", {{"name", "lnet-" + std::to_string(i)}}},
          {"spec",
           {{"vmSwitchName", "sw"},
            {"ipAllocationMethod", "Static"},
            {"vlanId", 1 + i % 4094},
            {"addressPrefix", Ip4(base) + "/24"},
            {"gateway", Ip4(base + 1)},
            {"dnsServers", {Ip4(base + 2)}},
            {"ipPools", {{{"start", Ip4(base + 50)}, {"end", Ip4(base + 199)}}}}}}};
}

json Cluster(int net, int j) {
  uint32_t base = 0x0a000000u + (static_cast<uint32_t>(net) << 8);
  return {{"apiVersion", "ipguard.io/v1alpha1"},
          {"kind", "WorkloadCluster"},
          {"metadata", {{"name", "c" + std::to_string(j)}, {"namespace", "ns-" + std::to_string(net)}}},
          {"spec",
           {{"logicalNetworkName", "lnet-" + std::to_string(net)},
            {"controlPlaneIP", Ip4(base + 10 + static_cast<uint32_t>(j))},
            {"nodePools", {{{"name", "np"}, {"count", 3}}}}}}};
}

json Service(int k) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", "svc-" + std::to_string(k)}, {"namespace", "apps"}}},
          {"spec",
           {{"type", "LoadBalancer"},
            {"loadBalancerIP", Ip4(0xac100000u + static_cast<uint32_t>(k))},
            {"ports", {{{"port", 443}}}}}}};
}

struct World {
  Engine engine;
  std::vector<std::tuple<Domain, Role, Block>> flat;  // for the baseline
  World() {
    auto add = [this](const json& j) {
      Object o = *ParseObject(j);
      engine.Upsert(o);
    };
    for (int i = 0; i < 1000; ++i) add(Network(i));
    for (int i = 0; i < 1000; ++i) {
      for (int j = 0; j < 10; ++j) add(Cluster(i, j));
    }
    for (int k = 0; k < 89000; ++k) add(Service(k));
    for (Kind kind : {Kind::kLogicalNetwork, Kind::kWorkloadCluster, Kind::kService}) {
      engine.ForEach(kind, [this](const Object& o) {
        for (const Use& u : engine.UsesOf(o)) flat.emplace_back(engine.DomainOf(o), u.role, u.block);
      });
    }
  }
};

World& TheWorld() {
  static World* w = new World();
  return *w;
}

Object NewCluster() { return *ParseObject(Cluster(500, 20)); }
Object NewService() { return *ParseObject(Service(95000)); }

void BM_VerdictNewCluster(benchmark::State& state) {
  World& w = TheWorld();
  Object o = NewCluster();
  for (auto _ : state) {
    Verdict v = w.engine.Review(Operation::kCreate, nullptr, &o);
    if (!v.allowed()) state.SkipWithError(v.Message().c_str());
    benchmark::DoNotOptimize(v);
  }
  state.counters["objects"] = static_cast<double>(w.engine.size());
}
BENCHMARK(BM_VerdictNewCluster);

void BM_VerdictNewService(benchmark::State& state) {
  World& w = TheWorld();
  Object o = NewService();
  for (auto _ : state) {
    Verdict v = w.engine.Review(Operation::kCreate, nullptr, &o);
    if (!v.allowed()) state.SkipWithError(v.Message().c_str());
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_VerdictNewService);

void BM_VerdictNewClusterFromJson(benchmark::State& state) {
  World& w = TheWorld();
  json j = Cluster(500, 20);
  for (auto _ : state) {
    Object o = *ParseObject(j);
    Verdict v = w.engine.Review(Operation::kCreate, nullptr, &o);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_VerdictNewClusterFromJson);

// Baseline: the collisions of the new cluster's control-plane IP found by
// checking every stored address in turn.
void BM_LinearVerdictNewCluster(benchmark::State& state) {
  World& w = TheWorld();
  Object o = NewCluster();
  Domain d = w.engine.DomainOf(o);
  Block cp = Block::Single(*o.wlc->control_plane_ip);
  for (auto _ : state) {
    size_t hits = 0;
    for (const auto& [domain, role, block] : w.flat) {
      bool meets = domain == kEveryDomain || d == kEveryDomain || domain == d;
      if (meets && block.Overlaps(cp) && Collides(Role::kControlPlane, role)) ++hits;
    }
    benchmark::DoNotOptimize(hits);
  }
  state.counters["addresses"] = static_cast<double>(w.flat.size());
}
BENCHMARK(BM_LinearVerdictNewCluster);

// One /14 network with 1,000 clusters, and `claims` IPClaims inside its prefix
// (the Services of its workload clusters, as their agents claim them).
struct BusyNetwork {
  Engine engine;
  explicit BusyNetwork(int claims) {
    auto add = [this](const json& j) { engine.Upsert(*ParseObject(j)); };
    add({{"apiVersion", "ipguard.io/v1alpha1"},
         {"kind", "LogicalNetwork"},
         {"metadata", {{"name", "busy"}}},
         {"spec",
          {{"vmSwitchName", "sw"},
           {"ipAllocationMethod", "Static"},
           {"vlanId", 7},
           {"addressPrefix", "10.60.0.0/14"},
           {"gateway", "10.60.0.1"},
           {"ipPools", {{{"start", "10.60.1.0"}, {"end", "10.60.63.255"}}}}}}});
    for (int j = 0; j < 1000; ++j) {
      add({{"apiVersion", "ipguard.io/v1alpha1"},
           {"kind", "WorkloadCluster"},
           {"metadata", {{"name", "c" + std::to_string(j)}, {"namespace", "busy"}}},
           {"spec",
            {{"logicalNetworkName", "busy"},
             {"controlPlaneIP", Ip4(0x0a3c4000u + static_cast<uint32_t>(j))},  // 10.60.64.0 +
             {"nodePools", {{{"name", "np"}, {"count", 3}}}}}}});
    }
    for (int k = 0; k < claims; ++k) {
      std::string ip = Ip4(0x0a3d0000u + static_cast<uint32_t>(k));  // 10.61.0.0 +
      add({{"apiVersion", "ipguard.io/v1alpha1"},
           {"kind", "IPClaim"},
           {"metadata", {{"name", "vlan7-" + ip}}},
           {"spec",
            {{"address", ip},
             {"vlanId", 7},
             {"holder",
              {{"kind", "Service"}, {"cluster", "edge"}, {"namespace", "apps"}, {"name", "s" + std::to_string(k)}}}}}});
    }
  }
};

// A cluster's status reads its network's capacity: the same cost whatever
// the number of claims in the network's prefix.
void BM_StatusOfClusterInBusyNetwork(benchmark::State& state) {
  BusyNetwork w(static_cast<int>(state.range(0)));
  const Object* o = w.engine.Find(ObjectKey(Kind::kWorkloadCluster, "busy", "c500"));
  if (!o) return state.SkipWithError("no cluster");
  for (auto _ : state) benchmark::DoNotOptimize(DesiredStatus(w.engine, *o, json(), "2026-01-01T00:00:00Z"));
  state.counters["claims"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_StatusOfClusterInBusyNetwork)->Arg(1000)->Arg(10000)->Arg(100000);

// The network's own status counts the claims in its prefix: one walk of them.
void BM_StatusOfBusyNetwork(benchmark::State& state) {
  BusyNetwork w(static_cast<int>(state.range(0)));
  const Object* o = w.engine.Find(ObjectKey(Kind::kLogicalNetwork, "", "busy"));
  if (!o) return state.SkipWithError("no network");
  for (auto _ : state) {
    json s = DesiredStatus(w.engine, *o, json(), "2026-01-01T00:00:00Z");
    if (s["claims"] != state.range(0)) state.SkipWithError("wrong claim count");
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_StatusOfBusyNetwork)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMicrosecond);

void BM_EngineLoad100k(benchmark::State& state) {
  std::vector<Object> objs;
  for (int i = 0; i < 1000; ++i) objs.push_back(*ParseObject(Network(i)));
  for (int i = 0; i < 1000; ++i) {
    for (int j = 0; j < 10; ++j) objs.push_back(*ParseObject(Cluster(i, j)));
  }
  for (int k = 0; k < 89000; ++k) objs.push_back(*ParseObject(Service(k)));
  for (auto _ : state) {
    Engine e;
    for (const auto& o : objs) e.Upsert(o);
    benchmark::DoNotOptimize(e.size());
    state.counters["index_bytes_per_block"] =
        static_cast<double>(e.IndexMemoryBytes()) / static_cast<double>(e.IndexSize());
  }
}
BENCHMARK(BM_EngineLoad100k)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
}  // namespace ipguard

BENCHMARK_MAIN();
