#include "core/shared_text.h"

#include <mutex>
#include <unordered_set>

namespace ipguard {
namespace {

struct Pool {
  std::mutex mu;
  // Nodes: a text's address stays while the set grows.
  std::unordered_set<std::string> texts;
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
  auto it = pool.texts.find(std::string(s));
  if (it == pool.texts.end()) {
    if (pool.texts.size() >= kMaxSharedTexts) return Own(s);
    it = pool.texts.emplace(s).first;
  }
  return reinterpret_cast<uintptr_t>(&*it);
}

size_t SharedText::SharedCount() {
  Pool& pool = ThePool();
  std::lock_guard<std::mutex> l(pool.mu);
  return pool.texts.size();
}

}  // namespace ipguard
