#include "core/json_text.h"

#include <exception>
#include <utility>

namespace ipguard {
namespace {

using nlohmann::json;

// nlohmann/json's SAX interface, building what json::parse builds, and also
// recording repeated keys that `keep` keeps and refusing deep nesting before
// it is built.
class Builder {
 public:
  Builder(int max_depth, const JsonProjection& keep) : max_depth_(max_depth), keep_(&keep) {}

  bool too_deep() const { return too_deep_; }
  json& root() { return root_; }
  std::vector<std::string>& duplicates() { return duplicates_; }

  bool null() { return Put(nullptr); }
  bool boolean(bool v) { return Put(v); }
  bool number_integer(json::number_integer_t v) { return Put(v); }
  bool number_unsigned(json::number_unsigned_t v) { return Put(v); }
  bool number_float(json::number_float_t v, const json::string_t&) { return Put(v); }
  bool string(json::string_t& v) { return Put(std::move(v)); }
  bool binary(json::binary_t& v) { return Put(json::binary(std::move(v))); }

  bool start_object(std::size_t) { return Open(json::object()); }
  bool start_array(std::size_t) { return Open(json::array()); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }

  bool key(json::string_t& k) {
    Frame& top = stack_.back();
    // What the projection keeps of this member: nothing (nullptr), or how.
    const JsonProjection* child = nullptr;
    if (top.keep) child = top.keep->NarrowsObjects() ? top.keep->Member(k) : &KeepAll();
    auto [it, fresh] = top.value->get_ref<json::object_t&>().try_emplace(std::move(k));
    if (!fresh && child) duplicates_.push_back(PathWith(it->first));
    top.key = &it->first;
    member_keep_ = child;
    slot_ = &it->second;  // the value replaces whatever an earlier same key left
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

 private:
  struct Frame {
    json* value;
    const std::string* key;      // a mapping: the key being read
    const JsonProjection* keep;  // what is kept of this value; nullptr for nothing
  };

  // What is kept of the value about to be placed.
  const JsonProjection* NextKeep() const {
    if (stack_.empty()) return keep_;
    const Frame& top = stack_.back();
    if (!top.value->is_array()) return member_keep_;
    if (!top.keep) return nullptr;
    return top.keep->ItemProjection() ? top.keep->ItemProjection() : &KeepAll();
  }

  template <typename V>
  json* Place(V&& v) {
    if (stack_.empty()) {
      root_ = json(std::forward<V>(v));
      return &root_;
    }
    json* container = stack_.back().value;
    if (container->is_array()) {
      auto& arr = container->get_ref<json::array_t&>();
      arr.emplace_back(std::forward<V>(v));
      return &arr.back();
    }
    *slot_ = json(std::forward<V>(v));
    return slot_;
  }

  template <typename V>
  bool Put(V&& v) {
    Place(std::forward<V>(v));
    return true;
  }

  bool Open(json container) {
    if (stack_.size() >= static_cast<size_t>(max_depth_)) {
      too_deep_ = true;
      return false;
    }
    const JsonProjection* keep = NextKeep();
    json* v = Place(std::move(container));
    stack_.push_back({v, nullptr, keep});
    return true;
  }

  bool Close() {
    stack_.pop_back();
    return true;
  }

  // "spec.ipPools[0].start" for `key` in the innermost mapping.
  std::string PathWith(const std::string& key) const {
    std::string s;
    for (size_t i = 0; i + 1 < stack_.size(); ++i) {
      if (stack_[i].value->is_object()) {
        if (!s.empty()) s += '.';
        s += *stack_[i].key;
      } else {
        s += '[' + std::to_string(stack_[i].value->size() - 1) + ']';
      }
    }
    if (!s.empty()) s += '.';
    return s + key;
  }

  int max_depth_;
  const JsonProjection* keep_;
  json root_;
  std::vector<Frame> stack_;
  json* slot_ = nullptr;
  const JsonProjection* member_keep_ = nullptr;
  bool too_deep_ = false;
  std::vector<std::string> duplicates_;
};

}  // namespace

const JsonProjection& KeepAll() {
  static const JsonProjection* const kAll = new JsonProjection();
  return *kAll;
}

JsonText ParseJsonText(std::string_view text, int max_depth, const JsonProjection& keep) {
  JsonText out;
  Builder builder(max_depth, keep);
  try {
    out.ok = json::sax_parse(text.begin(), text.end(), &builder);
  } catch (const std::exception&) {
    out.ok = false;
  }
  out.too_deep = builder.too_deep();
  if (out.too_deep) out.ok = false;
  if (!out.ok) return out;
  out.value = std::move(builder.root());
  out.duplicates = std::move(builder.duplicates());
  return out;
}

}  // namespace ipguard
