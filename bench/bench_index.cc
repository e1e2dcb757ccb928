// Index build and overlap query at 1k..1M blocks, against a linear scan of
// the same data as the baseline.
//
//   build/bench/bench_index --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/index.h"

namespace ipguard {
namespace {

// A plan-like data set: mostly single addresses and small ranges, spread over
// 64 VLANs, with one block in 16 living in every domain.
std::vector<Index::Item> MakeItems(size_t n, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::vector<Index::Item> items;
  items.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    uint32_t start = 0x0a000000u + static_cast<uint32_t>(rng() % (n * 8 + 1024));
    uint32_t len = rng() % 4 == 0 ? rng() % 64 : 0;
    Domain d = rng() % 16 == 0 ? kEveryDomain : static_cast<Domain>(rng() % 64);
    items.push_back({d, Block::Range(IpAddr::V4(start), IpAddr::V4(start + len)),
                     static_cast<uint32_t>(i)});
  }
  return items;
}

std::vector<std::pair<Domain, Block>> MakeQueries(size_t n, size_t count) {
  std::mt19937 rng(99);
  std::vector<std::pair<Domain, Block>> q;
  for (size_t i = 0; i < count; ++i) {
    uint32_t a = 0x0a000000u + static_cast<uint32_t>(rng() % (n * 8 + 1024));
    q.push_back({static_cast<Domain>(rng() % 64), Block::Single(IpAddr::V4(a))});
  }
  return q;
}

void BM_IndexBuild(benchmark::State& state) {
  auto items = MakeItems(state.range(0));
  size_t bytes = 0;
  for (auto _ : state) {
    Index index;
    index.Build(items);
    bytes = index.MemoryBytes();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["blocks"] = static_cast<double>(items.size());
  state.counters["bytes_per_block"] = static_cast<double>(bytes) / items.size();
}
BENCHMARK(BM_IndexBuild)->Arg(1000)->Arg(10000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);

void BM_IndexInsertOneByOne(benchmark::State& state) {
  auto items = MakeItems(state.range(0));
  for (auto _ : state) {
    Index index;
    for (const auto& it : items) index.Insert(it.domain, it.block, it.payload);
    benchmark::DoNotOptimize(index.size());
  }
  state.counters["per_insert_us"] = benchmark::Counter(
      static_cast<double>(items.size()), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_IndexInsertOneByOne)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);

void BM_IndexQuery(benchmark::State& state) {
  size_t n = state.range(0);
  Index index;
  index.Build(MakeItems(n));
  auto queries = MakeQueries(n, 4096);
  size_t i = 0, hits = 0;
  for (auto _ : state) {
    const auto& q = queries[i++ & 4095];
    index.Query(q.first, q.second, [&](uint32_t, uint32_t p) { hits += p; });
  }
  benchmark::DoNotOptimize(hits);
  state.counters["blocks"] = static_cast<double>(n);
}
BENCHMARK(BM_IndexQuery)->Arg(1000)->Arg(10000)->Arg(100000)->Arg(1000000);

// The baseline: every block checked in turn.
void BM_LinearScan(benchmark::State& state) {
  size_t n = state.range(0);
  auto items = MakeItems(n);
  auto queries = MakeQueries(n, 4096);
  size_t i = 0, hits = 0;
  for (auto _ : state) {
    const auto& q = queries[i++ & 4095];
    for (const auto& it : items) {
      bool meets = it.domain == kEveryDomain || it.domain == q.first;
      if (meets && it.block.Overlaps(q.second)) hits += it.payload;
    }
  }
  benchmark::DoNotOptimize(hits);
  state.counters["blocks"] = static_cast<double>(n);
}
BENCHMARK(BM_LinearScan)->Arg(1000)->Arg(10000)->Arg(100000)->Arg(1000000);

}  // namespace
}  // namespace ipguard

BENCHMARK_MAIN();
