#include "core/shared_text.h"

#include <memory>
#include <mutex>
#include <unordered_map>

namespace ipguard {
namespace {

struct Pool {
  std::mutex mu;
  // Each text on the heap, where its address stays; the key is a view of
  // it, so a lookup builds no string.
  std::unordered_map<std::string_view, std::unique_ptr<const std::string>> texts;
};

Pool& ThePool() {
  // Never destroyed: SharedTexts in static objects may outlive any order of
  // destruction.
  static Pool* pool = new Pool;
  return *pool;
}

}  // namespace

const std::string& SharedText::Empty() {
  static const std::string* empty = new std::string;
  return *empty;
}

uintptr_t SharedText::Own(std::string_view s) {
  if (s.empty()) return 0;
  return reinterpret_cast<uintptr_t>(new std::string(s)) | 1;
}

uintptr_t SharedText::Make(std::string_view s) {
  if (s.empty()) return 0;
  Pool& pool = ThePool();
  std::lock_guard<std::mutex> l(pool.mu);
  auto it = pool.texts.find(s);
  if (it == pool.texts.end()) {
    if (pool.texts.size() >= kMaxSharedTexts) return Own(s);
    auto text = std::make_unique<const std::string>(s);
    const std::string_view key = *text;
    it = pool.texts.emplace(key, std::move(text)).first;
  }
  return reinterpret_cast<uintptr_t>(it->second.get());
}

size_t SharedText::SharedCount() {
  Pool& pool = ThePool();
  std::lock_guard<std::mutex> l(pool.mu);
  return pool.texts.size();
}

}  // namespace ipguard
