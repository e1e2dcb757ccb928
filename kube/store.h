// Store: the informer cache of one resource, keyed "namespace/name" (or
// "name"), fed by a Reflector. HasSynced() turns true after the first full
// list. Handlers run after each change, outside the store's lock, in the
// reflector's thread.
//
// Thread-safe.
#ifndef IPGUARD_KUBE_STORE_H_
#define IPGUARD_KUBE_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ipguard::kube {

enum class EventType { kAdded, kModified, kDeleted };

// "namespace/name", or "name" for cluster-scoped objects.
std::string KeyOf(const nlohmann::json& obj);

class Store {
 public:
  // obj is the new object (for kDeleted, the last known one).
  using Handler = std::function<void(EventType type, const nlohmann::json& obj)>;

  void AddHandler(Handler h);
  // Applied to every object before handlers see it, to drop what nobody
  // reads, as client-go's SetTransform does. Set before the first Replace.
  using Transform = std::function<nlohmann::json(const nlohmann::json&)>;
  void SetTransform(Transform t) { transform_ = std::move(t); }
  // What the cache keeps of a transformed object, when that is less than
  // what handlers need (for Services, only the metadata: 100k of them must
  // fit in a small cache). What it keeps must change whenever the object
  // does (the resourceVersion does); the key (namespace/name) is kept
  // apart, and objects the cache drops are named from it. Default: the
  // transformed object.
  void SetKeep(Transform k) { keep_ = std::move(k); }
  nlohmann::json Transformed(const nlohmann::json& raw) const {
    return transform_ ? transform_(raw) : raw;
  }

  // A fresh list, streamed: BeginReplace(), then ReplaceAdd() for each
  // object (already Transformed), then EndReplace(), which emits kDeleted
  // for what the list no longer holds and marks the store synced. Memory
  // stays at one object beyond the cache, however long the list.
  void BeginReplace();
  void ReplaceAdd(const nlohmann::json& obj);
  void EndReplace();
  // Replaces the whole content with a fresh list of raw objects: emits
  // kAdded or kModified for what is new or changed and kDeleted for what
  // vanished.
  void Replace(const std::vector<nlohmann::json>& items);
  void Apply(EventType type, const nlohmann::json& obj);

  std::optional<nlohmann::json> Get(const std::string& key) const;
  std::vector<nlohmann::json> List() const;
  // Every key ("namespace/name" or "name").
  std::vector<std::string> Keys() const;
  size_t size() const;
  bool HasSynced() const;

 private:
  void Emit(EventType type, const nlohmann::json& obj);
  // Stores `obj` under `key`, as shown by the list `epoch` (0: by a watch
  // event); the event to emit, if any.
  std::optional<EventType> PutLocked(const std::string& key, const nlohmann::json& obj,
                                     uint32_t epoch);

  struct Item {
    nlohmann::json kept;
    // The list (replace_epoch_) that last showed the object; what the
    // current list has not shown when it ends is gone. A flag in the item,
    // where a set of the keys seen would hold a second copy of every key
    // until the list ends and then leave a hole in the heap for each.
    uint32_t epoch = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, Item> items_;
  bool synced_ = false;
  std::vector<Handler> handlers_;
  Transform transform_;
  Transform keep_;
  uint32_t replace_epoch_ = 0;  // of the list under way, or the last one
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_STORE_H_
