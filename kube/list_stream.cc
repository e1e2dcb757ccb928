#include "kube/list_stream.h"

namespace ipguard::kube {
namespace {

constexpr int kMaxDepth = 512;

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

}  // namespace

ListSplitter::ListSplitter(std::function<bool(std::string_view)> on_item)
    : on_item_(std::move(on_item)) {}

bool ListSplitter::Fail(const std::string& why) {
  if (error_.empty()) error_ = why;
  return false;
}

bool ListSplitter::Feed(std::string_view chunk) {
  if (!error_.empty()) return false;
  constexpr size_t kNone = std::string_view::npos;
  // Where the capture in progress (an item, or the metadata) starts in this chunk.
  size_t seg = in_item_ || in_metadata_ ? 0 : kNone;
  const size_t n = chunk.size();
  for (size_t i = 0; i < n; ++i) {
    const char c = chunk[i];
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
        reading_key_ = false;
      } else if (reading_key_ && key_.size() < 64) {
        key_ += c;
      }
      continue;
    }
    if (IsSpace(c)) continue;
    if (done_) return Fail("text after the end of the list");
    switch (c) {
      case '"':
        if (depth_ == 0) return Fail("the answer is not a JSON object");
        if (depth_ == 2 && in_items_) return Fail("an item of the list is not an object");
        in_string_ = true;
        if (depth_ == 1 && expect_key_) {
          reading_key_ = true;
          key_.clear();
        }
        break;
      case '{':
      case '[':
        if (depth_ == 0) {
          if (c != '{') return Fail("the answer is not a JSON object");
          expect_key_ = true;
        } else if (depth_ == 1) {
          if (key_ == "items" && c == '[') {
            in_items_ = true;
          } else if (key_ == "metadata" && c == '{') {
            in_metadata_ = true;
            metadata_.clear();
            seg = i;
          }
        } else if (depth_ == 2 && in_items_) {
          if (c != '{') return Fail("an item of the list is not an object");
          in_item_ = true;
          item_.clear();
          seg = i;
        }
        if (++depth_ > kMaxDepth) return Fail("the list is nested too deeply");
        break;
      case '}':
      case ']':
        if (--depth_ < 0) return Fail("unbalanced brackets");
        if (depth_ == 0) {
          done_ = true;
        } else if (depth_ == 1) {
          if (in_metadata_) {
            metadata_.append(chunk.data() + seg, i + 1 - seg);
            seg = kNone;
            in_metadata_ = false;
          }
          in_items_ = false;
        } else if (depth_ == 2 && in_item_) {
          item_.append(chunk.data() + seg, i + 1 - seg);
          seg = kNone;
          in_item_ = false;
          ++items_;
          if (!on_item_(item_)) return Fail("stopped while reading the list");
        }
        break;
      case ':':
        if (depth_ == 1) {
          expect_key_ = false;
          if (key_ == "items") saw_items_ = true;
        }
        break;
      case ',':
        if (depth_ == 1) expect_key_ = true;
        break;
      default:
        if (depth_ == 0) return Fail("the answer is not a JSON object");
        if (depth_ == 2 && in_items_) return Fail("an item of the list is not an object");
        break;
    }
  }
  if (seg != kNone) (in_item_ ? item_ : metadata_).append(chunk.data() + seg, n - seg);
  return true;
}

bool ListSplitter::Finish() {
  if (!error_.empty()) return false;
  if (!done_) return Fail("the list ended early");
  if (!saw_items_) return Fail("the answer has no items");
  return true;
}

}  // namespace ipguard::kube
