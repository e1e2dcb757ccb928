#include "kube/store.h"

#include <set>

namespace ipguard::kube {

using nlohmann::json;

std::string KeyOf(const json& obj) {
  if (!obj.is_object() || !obj.contains("metadata") || !obj["metadata"].is_object()) return "";
  const json& m = obj["metadata"];
  std::string name = m.contains("name") && m["name"].is_string() ? m["name"].get<std::string>() : "";
  std::string ns = m.contains("namespace") && m["namespace"].is_string() ? m["namespace"].get<std::string>() : "";
  return ns.empty() ? name : ns + "/" + name;
}

void Store::AddHandler(Handler h) {
  std::lock_guard<std::mutex> l(mu_);
  handlers_.push_back(std::move(h));
}

void Store::Emit(const std::vector<std::pair<EventType, json>>& events) {
  std::vector<Handler> handlers;
  {
    std::lock_guard<std::mutex> l(mu_);
    handlers = handlers_;
  }
  for (const auto& [type, obj] : events) {
    for (const auto& h : handlers) h(type, obj);
  }
}

void Store::Replace(const std::vector<json>& items) {
  std::vector<std::pair<EventType, json>> events;
  {
    std::lock_guard<std::mutex> l(mu_);
    std::map<std::string, json> fresh;
    for (const json& raw : items) {
      const json item = transform_ ? transform_(raw) : raw;
      std::string key = KeyOf(item);
      if (key.empty()) continue;
      auto old = items_.find(key);
      if (old == items_.end()) {
        events.emplace_back(EventType::kAdded, item);
      } else if (old->second != item) {
        events.emplace_back(EventType::kModified, item);
      }
      fresh[key] = item;
    }
    for (auto& [key, obj] : items_) {
      if (!fresh.count(key)) events.emplace_back(EventType::kDeleted, obj);
    }
    items_.swap(fresh);
    synced_ = true;
  }
  Emit(events);
}

void Store::Apply(EventType type, const json& raw) {
  const json obj = transform_ ? transform_(raw) : raw;
  std::string key = KeyOf(obj);
  if (key.empty()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (type == EventType::kDeleted) {
      items_.erase(key);
    } else {
      items_[key] = obj;
    }
  }
  Emit({{type, obj}});
}

std::optional<json> Store::Get(const std::string& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = items_.find(key);
  if (it == items_.end()) return std::nullopt;
  return it->second;
}

std::vector<json> Store::List() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<json> out;
  out.reserve(items_.size());
  for (const auto& [k, v] : items_) out.push_back(v);
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
