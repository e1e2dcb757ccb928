#include "core/index.h"

#include <cassert>

namespace ipguard {

Index::Index() : sets_(static_cast<size_t>(kMaxVlan) + 2) {}
Index::~Index() = default;

Index::Sets& Index::SetsFor(Domain d) {
  assert(d >= kEveryDomain && d <= kMaxVlan);
  auto& slot = sets_[Slot(d)];
  if (!slot) slot = std::make_unique<Sets>();
  return *slot;
}

void Index::Dropped(uint32_t id) {
  if (--entries_[id].refs == 0) free_.push_back(id);
}

void Index::InsertInto(Sets& s, const Block& block, uint32_t id) {
  auto alive = [this](uint32_t i) { return Alive(i); };
  auto dropped = [this](uint32_t i) { Dropped(i); };
  if (block.family() == Family::kV4) {
    s.v4.Insert({static_cast<uint32_t>(block.first().value()),
                 static_cast<uint32_t>(block.last().value()), id},
                alive, dropped);
  } else {
    s.v6.Insert({block.first().value(), block.last().value(), id}, alive, dropped);
  }
}

void Index::NoteRemovedFrom(Sets& s, Family family) {
  auto alive = [this](uint32_t i) { return Alive(i); };
  auto dropped = [this](uint32_t i) { Dropped(i); };
  if (family == Family::kV4) {
    s.v4.NoteRemoved(alive, dropped);
  } else {
    s.v6.NoteRemoved(alive, dropped);
  }
}

uint32_t Index::Insert(Domain domain, const Block& block, uint32_t payload) {
  Entry entry{payload, static_cast<int16_t>(domain), static_cast<uint8_t>(block.family()), 2, 1};
  uint32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
    entries_[id] = entry;
  } else {
    id = static_cast<uint32_t>(entries_.size());
    entries_.push_back(entry);
  }
  ++live_;
  InsertInto(SetsFor(domain), block, id);
  InsertInto(all_, block, id);
  return id;
}

void Index::Remove(uint32_t entry) {
  assert(entry < entries_.size() && entries_[entry].alive);
  Entry& e = entries_[entry];
  e.alive = 0;
  --live_;
  Family family = static_cast<Family>(e.family);
  NoteRemovedFrom(SetsFor(e.domain), family);
  NoteRemovedFrom(all_, family);
}

std::vector<uint32_t> Index::Build(const std::vector<Item>& items) {
  entries_.clear();
  free_.clear();
  for (auto& s : sets_) s.reset();
  std::vector<std::vector<Interval<uint32_t>>> v4(sets_.size());
  std::vector<std::vector<Interval<u128>>> v6(sets_.size());
  std::vector<Interval<uint32_t>> all_v4;
  std::vector<Interval<u128>> all_v6;
  std::vector<uint32_t> ids;
  ids.reserve(items.size());
  entries_.reserve(items.size());
  for (const Item& it : items) {
    uint32_t id = static_cast<uint32_t>(entries_.size());
    entries_.push_back({it.payload, static_cast<int16_t>(it.domain),
                        static_cast<uint8_t>(it.block.family()), 2, 1});
    ids.push_back(id);
    size_t slot = Slot(it.domain);
    if (it.block.family() == Family::kV4) {
      Interval<uint32_t> iv{static_cast<uint32_t>(it.block.first().value()),
                            static_cast<uint32_t>(it.block.last().value()), id};
      v4[slot].push_back(iv);
      all_v4.push_back(iv);
    } else {
      Interval<u128> iv{it.block.first().value(), it.block.last().value(), id};
      v6[slot].push_back(iv);
      all_v6.push_back(iv);
    }
  }
  for (size_t slot = 0; slot < sets_.size(); ++slot) {
    if (v4[slot].empty() && v6[slot].empty()) continue;
    sets_[slot] = std::make_unique<Sets>();
    sets_[slot]->v4.Build(std::move(v4[slot]));
    sets_[slot]->v6.Build(std::move(v6[slot]));
  }
  all_.v4.Build(std::move(all_v4));
  all_.v6.Build(std::move(all_v6));
  live_ = items.size();
  return ids;
}

size_t Index::MemoryBytes() const {
  size_t bytes = entries_.capacity() * sizeof(Entry) + free_.capacity() * sizeof(uint32_t) +
                 sets_.capacity() * sizeof(sets_[0]);
  for (const auto& s : sets_) {
    if (s) bytes += sizeof(Sets) + s->v4.MemoryBytes() + s->v6.MemoryBytes();
  }
  bytes += all_.v4.MemoryBytes() + all_.v6.MemoryBytes();
  return bytes;
}

}  // namespace ipguard
