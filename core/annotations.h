// Annotations: an object's metadata.annotations, sorted by key, as a
// std::map reads them, in 8 bytes: the map is on the heap only once an
// annotation is written. The engine's stored copy of an object keeps only
// the annotations the rules read, so most of 100k stored objects keep none,
// and an empty std::map took 48 bytes in each.
//
// Reads give const iterators only, so reading never makes a map; writes are
// operator[], emplace, erase and clear.
//
// Pure value type: no I/O, thread-compatible.
#ifndef IPGUARD_CORE_ANNOTATIONS_H_
#define IPGUARD_CORE_ANNOTATIONS_H_

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <utility>

namespace ipguard {

class Annotations {
 public:
  using Map = std::map<std::string, std::string>;
  using const_iterator = Map::const_iterator;

  Annotations() = default;
  Annotations(const Map& m) { *this = m; }  // NOLINT: reads as the map it holds
  Annotations(const Annotations& o) : map_(o.map_ ? std::make_unique<Map>(*o.map_) : nullptr) {}
  Annotations(Annotations&&) noexcept = default;
  Annotations& operator=(const Annotations& o) {
    map_ = o.map_ ? std::make_unique<Map>(*o.map_) : nullptr;
    return *this;
  }
  Annotations& operator=(Annotations&&) noexcept = default;
  Annotations& operator=(const Map& m) {
    map_ = m.empty() ? nullptr : std::make_unique<Map>(m);
    return *this;
  }

  const Map& map() const { return map_ ? *map_ : Empty(); }
  const_iterator begin() const { return map().begin(); }
  const_iterator end() const { return map().end(); }
  const_iterator find(const std::string& key) const { return map().find(key); }
  size_t count(const std::string& key) const { return map().count(key); }
  const std::string& at(const std::string& key) const { return map().at(key); }
  bool empty() const { return !map_ || map_->empty(); }
  size_t size() const { return map_ ? map_->size() : 0; }

  std::string& operator[](const std::string& key) { return Made()[key]; }
  template <typename K, typename V>
  void emplace(K&& key, V&& value) {
    Made().emplace(std::forward<K>(key), std::forward<V>(value));
  }
  // Returns the annotation after the one erased; the map goes with the last.
  const_iterator erase(const_iterator it) {
    const_iterator next = map_->erase(it);
    if (map_->empty()) {
      map_.reset();
      return end();
    }
    return next;
  }
  void clear() { map_.reset(); }

  friend bool operator==(const Annotations& a, const Annotations& b) { return a.map() == b.map(); }
  friend bool operator==(const Annotations& a, const Map& b) { return a.map() == b; }
  friend std::ostream& operator<<(std::ostream& os, const Annotations& a) {
    os << "{";
    for (const auto& [k, v] : a.map()) os << " " << k << "=" << v;
    return os << " }";
  }

 private:
  static const Map& Empty() {
    static const Map empty;
    return empty;
  }
  Map& Made() {
    if (!map_) map_ = std::make_unique<Map>();
    return *map_;
  }
  std::unique_ptr<Map> map_;
};

}  // namespace ipguard

#endif  // IPGUARD_CORE_ANNOTATIONS_H_
