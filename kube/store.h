// Store: the informer cache of one resource, keyed "namespace/name" (or
// "name"), fed by a Reflector. HasSynced() turns true after the first full
// list. Handlers run after each change, outside the store's lock, in the
// reflector's thread.
//
// Thread-safe.
#ifndef IPGUARD_KUBE_STORE_H_
#define IPGUARD_KUBE_STORE_H_

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ipguard::kube {

enum class EventType { kAdded, kModified, kDeleted };

// "namespace/name", or "name" for cluster-scoped objects.
std::string KeyOf(const nlohmann::json& obj);

class Store {
 public:
  // obj is the new object (for kDeleted, the last known one).
  using Handler = std::function<void(EventType type, const nlohmann::json& obj)>;

  void AddHandler(Handler h);
  // Applied to every object before it is stored (and handed to handlers),
  // to drop what nobody reads, as client-go's SetTransform does. Set before
  // the first Replace.
  using Transform = std::function<nlohmann::json(const nlohmann::json&)>;
  void SetTransform(Transform t) { transform_ = std::move(t); }
  // Replaces the whole content with a fresh list: emits kAdded or kModified
  // for what is new or changed and kDeleted for what vanished.
  void Replace(const std::vector<nlohmann::json>& items);
  void Apply(EventType type, const nlohmann::json& obj);

  std::optional<nlohmann::json> Get(const std::string& key) const;
  std::vector<nlohmann::json> List() const;
  size_t size() const;
  bool HasSynced() const;

 private:
  void Emit(const std::vector<std::pair<EventType, nlohmann::json>>& events);

  mutable std::mutex mu_;
  std::map<std::string, nlohmann::json> items_;
  bool synced_ = false;
  std::vector<Handler> handlers_;
  Transform transform_;
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_STORE_H_
