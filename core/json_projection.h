// ParseProjected: parses JSON text into a nlohmann/json document that keeps
// only the parts a JsonProjection names, without building the rest.
//
// An AdmissionReview carries much that no rule reads (userInfo, managedFields,
// labels, the request's resource, ...), and building all of it as a DOM was
// the largest single cost of answering one (docs/performance.md). The
// projected document holds, at every kept path, exactly what
// nlohmann::json::parse would hold there: the same types, the same numbers,
// the same decoded strings. An object or list
// that is kept but narrowed keeps its type even when nothing in it is kept.
//
// The parser takes a strict subset of what nlohmann/json takes. Whatever it
// does not take it declines (nullopt) rather than judges: text that is not
// JSON, but also valid JSON it leaves to nlohmann/json (non-ASCII bytes,
// nesting deeper than kMaxScanDepth, a kept key written twice in one object,
// which the caller reports: see core/json_text.h). The caller then parses with nlohmann/json,
// which gives the one answer for both. tests/fuzz/fuzz_admission.cc checks
// both halves of this promise against nlohmann/json.
//
// Pure; thread-compatible.
#ifndef IPGUARD_CORE_JSON_PROJECTION_H_
#define IPGUARD_CORE_JSON_PROJECTION_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/json_scan.h"

namespace ipguard {

// What to keep of one value. A default-constructed projection keeps the value
// whole. Keep() narrows an object to the named members (each under its own
// projection); Items() narrows every item of a list. A value the projection
// does not narrow (a string or a list where Keep() expected an object) is
// kept as it is, so the reader still sees and reports it.
class JsonProjection {
 public:
  JsonProjection() = default;
  JsonProjection& Keep(std::string key, JsonProjection child = JsonProjection());
  JsonProjection& Items(JsonProjection child);
  // Keeps one dotted path besides what is kept already: "spec" keeps the
  // member whole, "spec.type" one member of it, "ports[].port" one member
  // of every item of a list. A path never narrows what another kept whole,
  // so paths of several kinds can be joined in one projection.
  JsonProjection& KeepPath(std::string_view path);

  // Whether an object value keeps only the members Keep() named.
  bool NarrowsObjects() const { return !members_.empty(); }
  // The projection of member `key`, or nullptr when the member is not kept.
  const JsonProjection* Member(std::string_view key) const;
  // The projection of a list's items; nullptr keeps the list whole.
  const JsonProjection* ItemProjection() const { return items_.empty() ? nullptr : &items_[0]; }

 private:
  std::vector<std::pair<std::string, JsonProjection>> members_;
  std::vector<JsonProjection> items_;  // none, or one for every item
};

std::optional<nlohmann::json> ParseProjected(std::string_view text,
                                             const JsonProjection& projection);

// `value` narrowed as ParseProjected narrows its text: for a document that is
// parsed already (an informer's transform).
nlohmann::json Project(const nlohmann::json& value, const JsonProjection& projection);

}  // namespace ipguard

#endif  // IPGUARD_CORE_JSON_PROJECTION_H_
