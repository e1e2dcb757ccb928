// Index: the domain-scoped interval index of every address block ipguard
// knows, answering "what overlaps this block in this domain" in O(log n + k).
//
// A domain is a VLAN id (0..4094) or kEveryDomain. A block in domain d meets
// blocks in d and in kEveryDomain; a block in kEveryDomain meets every block.
// IPv4 and IPv6 live in separate sets, so families never meet.
//
// Each stored block carries a 32-bit payload chosen by the caller (the engine
// stores an index into its table of address uses). Entry ids returned by
// Insert() are stable until Remove().
//
// Thread-compatible: concurrent const calls are safe; writers need exclusion.
#ifndef IPGUARD_CORE_INDEX_H_
#define IPGUARD_CORE_INDEX_H_

#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/address.h"
#include "core/interval_set.h"

namespace ipguard {

using Domain = int32_t;
inline constexpr Domain kEveryDomain = -1;
inline constexpr Domain kMaxVlan = 4094;

class Index {
 public:
  Index();
  ~Index();
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;

  // Stores `block` in `domain` (kEveryDomain or 0..kMaxVlan) and returns its
  // entry id.
  uint32_t Insert(Domain domain, const Block& block, uint32_t payload);
  void Remove(uint32_t entry);

  // Bulk load, much faster than Insert() one by one. Replaces the content.
  struct Item {
    Domain domain;
    Block block;
    uint32_t payload;
  };
  // Returns the entry ids in the order of `items`.
  std::vector<uint32_t> Build(const std::vector<Item>& items);

  // Calls fn(entry, payload) for every stored block that overlaps `block`
  // and whose domain meets `domain`. fn may return bool: false stops the
  // query (then Query returns false).
  template <typename Fn>
  bool Query(Domain domain, const Block& block, Fn&& fn) const {
    auto alive = [this](uint32_t id) { return entries_[id].alive; };
    auto report = [&](uint32_t id) -> bool {
      if constexpr (std::is_void_v<std::invoke_result_t<Fn&, uint32_t, uint32_t>>) {
        fn(id, entries_[id].payload);
        return true;
      } else {
        return fn(id, entries_[id].payload);
      }
    };
    auto query_one = [&](const Sets& s) {
      if (block.family() == Family::kV4) {
        return s.v4.Query(static_cast<uint32_t>(block.first().value()),
                          static_cast<uint32_t>(block.last().value()), alive, report);
      }
      return s.v6.Query(block.first().value(), block.last().value(), alive, report);
    };
    if (domain == kEveryDomain) return query_one(all_);
    if (const Sets* s = sets_[Slot(domain)].get()) {
      if (!query_one(*s)) return false;
    }
    if (const Sets* s = sets_[Slot(kEveryDomain)].get()) return query_one(*s);
    return true;
  }

  size_t size() const { return live_; }
  // Bytes held by the interval sets and the entry table.
  size_t MemoryBytes() const;

 private:
  struct Entry {
    uint32_t payload;
    int16_t domain;
    uint8_t family : 4;
    uint8_t refs : 3;  // interval sets that still hold this id (0..2)
    uint8_t alive : 1;
  };
  bool Alive(uint32_t id) const { return entries_[id].alive; }
  struct Sets {
    IntervalSet<uint32_t> v4;
    IntervalSet<u128> v6;
  };
  static size_t Slot(Domain d) { return static_cast<size_t>(d + 1); }
  Sets& SetsFor(Domain d);
  void InsertInto(Sets& s, const Block& block, uint32_t id);
  void NoteRemovedFrom(Sets& s, Family family);
  // Called when a set drops a dead id; the id is free once no set holds it.
  void Dropped(uint32_t id);
  std::vector<Entry> entries_;
  // Dead entry ids that no interval set refers to any more, ready for reuse.
  std::vector<uint32_t> free_;
  // One set per domain, and one holding every block for kEveryDomain queries,
  // so those stay O(log n + k) however many VLANs exist.
  std::vector<std::unique_ptr<Sets>> sets_;
  Sets all_;
  size_t live_ = 0;
};

}  // namespace ipguard

#endif  // IPGUARD_CORE_INDEX_H_
