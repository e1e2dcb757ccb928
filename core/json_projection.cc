#include "core/json_projection.h"

#include "core/json_scan.h"

namespace ipguard {

using nlohmann::json;

JsonProjection& JsonProjection::Keep(std::string key, JsonProjection child) {
  members_.emplace_back(std::move(key), std::move(child));
  return *this;
}

JsonProjection& JsonProjection::Items(JsonProjection child) {
  items_.assign(1, std::move(child));
  return *this;
}

const JsonProjection* JsonProjection::Member(std::string_view key) const {
  for (const auto& [name, child] : members_) {
    if (name == key) return &child;
  }
  return nullptr;
}

namespace {

const JsonProjection kWhole;

// Builds the value at the scanner's position into *out, as `proj` narrows
// it; `depth` counts the objects and lists around it.
bool Build(JsonScanner& s, const JsonProjection& proj, json* out, int depth) {
  switch (s.Peek()) {
    case '{': {
      if (depth >= kMaxScanDepth) return false;
      *out = json::object();
      return s.Members([&](std::string_view key) {
        const JsonProjection* child = proj.NarrowsObjects() ? proj.Member(key) : &kWhole;
        if (!child) return s.Skip(depth + 1);
        // A kept key written twice is declined: the caller's parser
        // records repeated keys (ParseJsonText), which are violations.
        auto [it, fresh] = out->get_ref<json::object_t&>().try_emplace(std::string(key));
        if (!fresh) return false;
        return Build(s, *child, &it->second, depth + 1);
      });
    }
    case '[': {
      if (depth >= kMaxScanDepth) return false;
      *out = json::array();
      auto& items = out->get_ref<json::array_t&>();
      const JsonProjection& item = proj.ItemProjection() ? *proj.ItemProjection() : kWhole;
      return s.Items([&] {
        items.emplace_back();
        return Build(s, item, &items.back(), depth + 1);
      });
    }
    case '"': {
      std::string_view text;
      if (!s.String(&text)) return false;
      *out = std::string(text);
      return true;
    }
    case 't':
    case 'f': {
      bool b = false;
      if (!s.Bool(&b)) return false;
      *out = b;
      return true;
    }
    case 'n':
      if (!s.Null()) return false;
      *out = nullptr;
      return true;
    default:
      return s.Number(out);
  }
}

}  // namespace

std::optional<json> ParseProjected(std::string_view text, const JsonProjection& projection) {
  json out;
  JsonScanner s(text);
  if (!Build(s, projection, &out, 0) || !s.AtDocumentEnd()) return std::nullopt;
  return out;
}

}  // namespace ipguard
