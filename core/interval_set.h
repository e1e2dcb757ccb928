// IntervalSet<K>: a dynamic set of closed intervals [start, end] over an
// unsigned key type, each carrying a 32-bit id, answering "which intervals
// overlap [a, b]".
//
// Layout: a large immutable sorted array with an implicit augmented binary
// tree (each midpoint node stores the maximum end of its subtree), plus a small
// delta of the same shape that takes inserts. When the delta grows past
// ~sqrt(n) it is merged into the base. Removal is lazy: the caller's `alive`
// predicate filters dead ids and the caller asks for Compact() when enough of
// them piled up. A query visits O(log n) nodes plus the ones it reports.
//
// Each interval is one node of start, end, subtree max and id: 16 bytes for
// IPv4 keys, 64 for IPv6 (128-bit keys are 16-byte aligned).
//
// Thread-compatible: concurrent const calls are safe; writers need exclusion.
#ifndef IPGUARD_CORE_INTERVAL_SET_H_
#define IPGUARD_CORE_INTERVAL_SET_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ipguard {

template <typename K>
struct Interval {
  K start;
  K end;
  uint32_t id;
};

template <typename K>
class IntervalArray {
 public:
  // Takes intervals in any order.
  void Build(std::vector<Interval<K>> items) {
    std::sort(items.begin(), items.end(), [](const Interval<K>& x, const Interval<K>& y) {
      return x.start < y.start;
    });
    Assign(items);
  }

  // Inserts in start order without a max tree: an array built this way is
  // only scanned (the delta of an IntervalSet, which stays small), so an
  // insert is a binary search and a move, not a rebuild of the tree.
  void Insert(const Interval<K>& item) {
    auto pos = std::upper_bound(nodes_.begin(), nodes_.end(), item.start,
                                [](const K& s, const Node& n) { return s < n.start; });
    nodes_.insert(pos, Node{item.start, item.end, item.end, item.id});
    max_len_ = std::max<K>(max_len_, item.end - item.start);
    tree_ = false;
  }

  // Calls fn(id) for each overlapping interval while fn returns true;
  // returns false when fn stopped it.
  template <typename Fn>
  bool Query(K a, K b, Fn&& fn) const {
    if (nodes_.empty() || b < nodes_.front().start) return true;
    // Every overlap starts in [a - max_len_, b]. When that window holds few
    // intervals (the common case: plans are mostly single addresses and
    // small pools), scanning it beats walking the tree. Without a tree the
    // window is always scanned.
    K from = a > max_len_ ? a - max_len_ : K(0);
    auto lo = std::lower_bound(nodes_.begin(), nodes_.end(), from,
                               [](const Node& n, const K& v) { return n.start < v; });
    auto end = tree_ && nodes_.end() - lo > kWindowScan ? lo + kWindowScan : nodes_.end();
    auto it = lo;
    while (it != end && it->start <= b) ++it;
    if (it == nodes_.end() || it->start > b) {
      for (auto j = lo; j != it; ++j) {
        if (j->end >= a && !fn(j->id)) return false;
      }
      return true;
    }
    struct Range {
      uint32_t lo, hi;
    };
    Range stack[64];
    int top = 0;
    stack[top++] = {0, static_cast<uint32_t>(nodes_.size())};
    while (top > 0) {
      Range r = stack[--top];
      if (r.lo >= r.hi) continue;
      uint32_t mid = r.lo + (r.hi - r.lo) / 2;
      const Node& m = nodes_[mid];
      if (m.max < a) continue;  // nothing below reaches a
      if (r.hi - r.lo <= kLeafSize) {
        for (uint32_t i = r.lo; i < r.hi && nodes_[i].start <= b; ++i) {
          if (nodes_[i].end >= a && !fn(nodes_[i].id)) return false;
        }
        continue;
      }
      stack[top++] = {r.lo, mid};
      if (m.start <= b) {
        if (m.end >= a && !fn(m.id)) return false;
        stack[top++] = {mid + 1, r.hi};
      }
    }
    return true;
  }

  // Becomes the merge of itself and `other` (both in start order; equal
  // starts keep this array's first), without the intervals whose id is no
  // longer alive (`dropped` is told of each, in merge order): one pass in
  // place, then the max tree. The array grows by half its size when it must,
  // so that inserting one interval after another does not allocate (and
  // touch) a new array at every merge.
  template <typename Alive, typename Dropped>
  void MergeFrom(const IntervalArray& other, const Alive& alive, const Dropped& dropped) {
    const size_t n = nodes_.size(), m = other.nodes_.size();
    if (n + m > nodes_.capacity()) nodes_.reserve(std::max(n + m, nodes_.capacity() + nodes_.capacity() / 2));
    // This array moves up by m; the merge writes from the front, never
    // past what it has still to read.
    nodes_.resize(n + m);
    std::move_backward(nodes_.begin(), nodes_.begin() + static_cast<std::ptrdiff_t>(n), nodes_.end());
    const auto& b = other.nodes_;
    size_t i = m, j = 0, k = 0;
    K max_len = 0;
    while (i < n + m || j < m) {
      const Node next = (j == m || (i < n + m && !(b[j].start < nodes_[i].start))) ? nodes_[i++] : b[j++];
      if (!alive(next.id)) {
        dropped(next.id);
        continue;
      }
      nodes_[k++] = {next.start, next.end, next.end, next.id};
      max_len = std::max<K>(max_len, next.end - next.start);
    }
    nodes_.resize(k);
    max_len_ = max_len;
    BuildMax(0, nodes_.size());
    tree_ = true;
  }

  size_t size() const { return nodes_.size(); }
  size_t MemoryBytes() const { return nodes_.capacity() * sizeof(Node); }
  // Empties it, keeping its memory for what is inserted next.
  void Clear() {
    nodes_.clear();
    max_len_ = 0;
    tree_ = true;
  }

 private:
  static constexpr uint32_t kLeafSize = 8;
  static constexpr std::ptrdiff_t kWindowScan = 32;

  // One node per interval, in start order, so a visit touches one cache line
  // rather than one per field.
  struct Node {
    K start;
    K end;
    K max;  // largest end in the subtree this node is the midpoint of
    uint32_t id;
  };

  void Assign(const std::vector<Interval<K>>& sorted) {
    std::vector<Node> nodes;
    nodes.reserve(sorted.size());
    K max_len = 0;
    for (const auto& it : sorted) {
      nodes.push_back({it.start, it.end, it.end, it.id});
      max_len = std::max<K>(max_len, it.end - it.start);
    }
    nodes_.swap(nodes);
    max_len_ = max_len;
    BuildMax(0, nodes_.size());
    tree_ = true;
  }

  // Returns the max end over [lo, hi) and stores it at the range's midpoint,
  // matching the midpoints Query() computes.
  K BuildMax(size_t lo, size_t hi) {
    if (lo >= hi) return K(0);
    size_t mid = lo + (hi - lo) / 2;
    K m = nodes_[mid].end;
    if (hi - lo <= kLeafSize) {
      for (size_t i = lo; i < hi; ++i) m = std::max(m, nodes_[i].end);
    } else {
      m = std::max(m, BuildMax(lo, mid));
      m = std::max(m, BuildMax(mid + 1, hi));
    }
    nodes_[mid].max = m;
    return m;
  }

  std::vector<Node> nodes_;
  K max_len_ = 0;     // largest end - start
  bool tree_ = true;  // the max fields are valid (false after Insert)
};

template <typename K>
class IntervalSet {
 public:
  void Build(std::vector<Interval<K>> items) {
    base_.Build(std::move(items));
    delta_.Clear();
    dead_ = 0;
  }

  // `alive(id)` tells live ids from dead ones; `dropped(id)` is called for
  // each dead id a compaction removes, after which the caller may reuse it.
  template <typename Alive, typename Dropped>
  void Insert(const Interval<K>& item, const Alive& alive, const Dropped& dropped) {
    delta_.Insert(item);
    if (delta_.size() > DeltaLimit()) Compact(alive, dropped);
  }

  // Records that one id stored here is now dead; compacts when dead ones
  // outnumber live ones.
  template <typename Alive, typename Dropped>
  void NoteRemoved(const Alive& alive, const Dropped& dropped) {
    if (++dead_ > 64 && dead_ * 2 > size()) Compact(alive, dropped);
  }

  // Calls fn(id) for each live overlapping interval while fn returns true;
  // returns false when fn stopped it.
  template <typename Alive, typename Fn>
  bool Query(K a, K b, const Alive& alive, Fn&& fn) const {
    auto filtered = [&](uint32_t id) { return !alive(id) || fn(id); };
    return base_.Query(a, b, filtered) && delta_.Query(a, b, filtered);
  }

  template <typename Alive, typename Dropped>
  void Compact(const Alive& alive, const Dropped& dropped) {
    base_.MergeFrom(delta_, alive, dropped);
    delta_.Clear();
    dead_ = 0;
  }

  // Stored intervals, dead ones included until compaction.
  size_t size() const { return base_.size() + delta_.size(); }
  size_t MemoryBytes() const { return base_.MemoryBytes() + delta_.MemoryBytes(); }

 private:
  size_t DeltaLimit() const {
    // Inserting costs O(delta) and a merge O(n) every delta inserts, so the
    // delta grows with sqrt(n). A query scans the part of the delta whose
    // starts fall in its window: at most the whole delta (4096) when a large
    // range sits in it, usually a handful.
    size_t root = static_cast<size_t>(2 * std::sqrt(static_cast<double>(base_.size())));
    return std::clamp<size_t>(root, 64, 4096);
  }

  IntervalArray<K> base_;
  IntervalArray<K> delta_;
  size_t dead_ = 0;
};

}  // namespace ipguard

#endif  // IPGUARD_CORE_INTERVAL_SET_H_
