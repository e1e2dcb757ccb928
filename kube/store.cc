#include "kube/store.h"

#include <set>

namespace ipguard::kube {

using nlohmann::json;

std::string KeyOf(const json& obj) {
  if (!obj.is_object() || !obj.contains("metadata") || !obj["metadata"].is_object()) return "";
  const json& m = obj["metadata"];
  std::string name =
      m.contains("name") && m["name"].is_string() ? m["name"].get<std::string>() : "";
  std::string ns = m.contains("namespace") && m["namespace"].is_string()
                       ? m["namespace"].get<std::string>()
                       : "";
  return ns.empty() ? name : ns + "/" + name;
}

void Store::AddHandler(Handler h) {
  std::lock_guard<std::mutex> l(mu_);
  handlers_.push_back(std::move(h));
}

void Store::Emit(EventType type, const json& obj) {
  std::vector<Handler> handlers;
  {
    std::lock_guard<std::mutex> l(mu_);
    handlers = handlers_;
  }
  for (const auto& h : handlers) h(type, obj);
}

std::optional<EventType> Store::PutLocked(const std::string& key, const json& obj, uint32_t epoch) {
  json kept = keep_ ? keep_(obj) : obj;
  auto old = items_.find(key);
  if (old == items_.end()) {
    items_.emplace(key, Item{std::move(kept), epoch});
    return EventType::kAdded;
  }
  if (epoch != 0) old->second.epoch = epoch;
  if (old->second.kept == kept) return std::nullopt;
  old->second.kept = std::move(kept);
  return EventType::kModified;
}

void Store::BeginReplace() {
  std::lock_guard<std::mutex> l(mu_);
  // 0 stays for "shown by a watch only"; a wrap skips it.
  if (++replace_epoch_ == 0) ++replace_epoch_;
}

void Store::ReplaceAdd(const json& obj) {
  std::string key = KeyOf(obj);
  if (key.empty()) return;
  std::optional<EventType> event;
  {
    std::lock_guard<std::mutex> l(mu_);
    event = PutLocked(key, obj, replace_epoch_);
  }
  if (event) Emit(*event, obj);
}

void Store::EndReplace() {
  std::vector<json> gone;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = items_.begin(); it != items_.end();) {
      if (it->second.epoch == replace_epoch_) {
        ++it;
        continue;
      }
      json obj = std::move(it->second.kept);
      if (keep_) {
        // The cache kept less than the object: name it again from its key,
        // and pass it through the transform as every other event is, so
        // handlers can read what went.
        json named = {{"metadata", json::object()}};
        size_t slash = it->first.find('/');
        if (slash == std::string::npos) {
          named["metadata"]["name"] = it->first;
        } else {
          named["metadata"]["namespace"] = it->first.substr(0, slash);
          named["metadata"]["name"] = it->first.substr(slash + 1);
        }
        obj = Transformed(named);
      }
      gone.push_back(std::move(obj));
      it = items_.erase(it);
    }
    synced_ = true;
  }
  for (const json& obj : gone) Emit(EventType::kDeleted, obj);
}

void Store::Replace(const std::vector<json>& items) {
  BeginReplace();
  for (const json& raw : items) ReplaceAdd(Transformed(raw));
  EndReplace();
}

void Store::Apply(EventType type, const json& raw) {
  const json obj = Transformed(raw);
  std::string key = KeyOf(obj);
  if (key.empty()) return;
  std::optional<EventType> event = type;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (type == EventType::kDeleted) {
      items_.erase(key);
    } else {
      // An object equal to the cached one (a relist raced the watch) needs
      // no second event.
      event = PutLocked(key, obj, 0);
    }
  }
  if (event) Emit(*event, obj);
}

std::optional<json> Store::Get(const std::string& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = items_.find(key);
  if (it == items_.end()) return std::nullopt;
  return it->second.kept;
}

std::vector<json> Store::List() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<json> out;
  out.reserve(items_.size());
  for (const auto& [k, v] : items_) out.push_back(v.kept);
  return out;
}

std::vector<std::string> Store::Keys() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> out;
  out.reserve(items_.size());
  for (const auto& [k, v] : items_) out.push_back(k);
  return out;
}

size_t Store::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return items_.size();
}

bool Store::HasSynced() const {
  std::lock_guard<std::mutex> l(mu_);
  return synced_;
}

}  // namespace ipguard::kube
