#include "core/index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

namespace ipguard {
namespace {

Block V4(uint32_t a, uint32_t b) { return Block::Range(IpAddr::V4(a), IpAddr::V4(b)); }

bool Meets(Domain a, Domain b) { return a == kEveryDomain || b == kEveryDomain || a == b; }

// The index against a brute-force model under random inserts, removals and
// queries, across domains and both families, long enough to force many
// delta merges and compactions.
TEST(Index, MatchesLinearScanUnderChurn) {
  std::mt19937 rng(42);
  Index index;
  struct Live {
    Domain domain;
    Block block;
    uint32_t payload;
  };
  std::map<uint32_t, Live> live;  // entry -> what it holds
  auto random_block = [&]() {
    bool v6 = rng() % 5 == 0;
    uint32_t start = rng() % 5000;
    uint32_t len = rng() % 10 == 0 ? rng() % 400 : rng() % 4;
    if (v6) {
      u128 base = static_cast<u128>(0x20010db8) << 96;
      return Block::Range(IpAddr::V6(base + start), IpAddr::V6(base + start + len));
    }
    return V4(start, start + len);
  };
  auto random_domain = [&]() -> Domain { return rng() % 4 == 0 ? kEveryDomain : static_cast<Domain>(rng() % 3); };
  uint32_t next_payload = 0;
  for (int step = 0; step < 20000; ++step) {
    int op = rng() % 10;
    if (op < 5 || live.empty()) {
      Live l{random_domain(), random_block(), next_payload++};
      uint32_t e = index.Insert(l.domain, l.block, l.payload);
      ASSERT_EQ(live.count(e), 0u) << "entry id reused while alive";
      live[e] = l;
    } else if (op < 8) {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      index.Remove(it->first);
      live.erase(it);
    } else {
      Domain d = random_domain();
      Block q = random_block();
      std::set<uint32_t> got, want;
      index.Query(d, q, [&](uint32_t entry, uint32_t payload) {
        EXPECT_TRUE(got.insert(entry).second) << "reported twice";
        EXPECT_EQ(live.at(entry).payload, payload);
      });
      for (const auto& [e, l] : live) {
        if (Meets(d, l.domain) && l.block.Overlaps(q)) want.insert(e);
      }
      ASSERT_EQ(got, want) << "step " << step << " query " << q.ToString() << " domain " << d;
    }
  }
  EXPECT_EQ(index.size(), live.size());
}

TEST(Index, BuildMatchesInsert) {
  std::mt19937 rng(7);
  std::vector<Index::Item> items;
  for (uint32_t i = 0; i < 5000; ++i) {
    uint32_t s = rng() % 100000;
    items.push_back({static_cast<Domain>(rng() % 3), V4(s, s + rng() % 50), i});
  }
  Index built;
  auto ids = built.Build(items);
  ASSERT_EQ(ids.size(), items.size());
  Index inserted;
  for (const auto& it : items) inserted.Insert(it.domain, it.block, it.payload);
  for (int q = 0; q < 500; ++q) {
    uint32_t s = rng() % 100000;
    Block b = V4(s, s + rng() % 200);
    Domain d = static_cast<Domain>(rng() % 3);
    std::set<uint32_t> a, c;
    built.Query(d, b, [&](uint32_t, uint32_t p) { a.insert(p); });
    inserted.Query(d, b, [&](uint32_t, uint32_t p) { c.insert(p); });
    ASSERT_EQ(a, c);
  }
}

TEST(Index, DomainsAndFamilies) {
  Index index;
  Block ten = *ParseBlock("10.0.0.0/24");
  index.Insert(10, ten, 1);
  index.Insert(20, ten, 2);
  index.Insert(kEveryDomain, *ParseBlock("10.0.0.5"), 3);
  index.Insert(10, *ParseBlock("::a00:5"), 4);  // IPv6 with the same low bits
  auto hits = [&](Domain d, const char* block) {
    std::set<uint32_t> out;
    index.Query(d, *ParseBlock(block), [&](uint32_t, uint32_t p) { out.insert(p); });
    return out;
  };
  EXPECT_EQ(hits(10, "10.0.0.5"), (std::set<uint32_t>{1, 3}));
  EXPECT_EQ(hits(20, "10.0.0.5"), (std::set<uint32_t>{2, 3}));
  EXPECT_EQ(hits(30, "10.0.0.5"), (std::set<uint32_t>{3}));
  EXPECT_EQ(hits(kEveryDomain, "10.0.0.5"), (std::set<uint32_t>{1, 2, 3}));
  EXPECT_EQ(hits(kEveryDomain, "10.0.0.6"), (std::set<uint32_t>{1, 2}));
  EXPECT_EQ(hits(10, "::a00:0-::a00:ff"), (std::set<uint32_t>{4}));
  EXPECT_EQ(hits(10, "10.0.1.0"), (std::set<uint32_t>{}));
}

TEST(Index, MemoryPerBlockIsSmall) {
  std::vector<Index::Item> items;
  for (uint32_t i = 0; i < 100000; ++i) items.push_back({0, V4(i * 4, i * 4 + 1), i});
  Index index;
  index.Build(items);
  // 16 bytes in its domain's set, 16 in the every-domain set and 8 of entry
  // table per IPv4 block.
  EXPECT_LE(index.MemoryBytes() / items.size(), 48u);
}

}  // namespace
}  // namespace ipguard
