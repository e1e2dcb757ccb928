// The projection applied to a document nlohmann/json parsed whole: what
// ParseProjected must give, written the plain way. For the tests and the
// fuzz target only.
#ifndef IPGUARD_TESTS_JSON_PROJECTION_REFERENCE_H_
#define IPGUARD_TESTS_JSON_PROJECTION_REFERENCE_H_

#include <nlohmann/json.hpp>

#include "core/json_projection.h"

namespace ipguard::testing_util {

inline nlohmann::json Project(const nlohmann::json& v, const JsonProjection& p) {
  if (v.is_object() && p.NarrowsObjects()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (const JsonProjection* child = p.Member(it.key())) out[it.key()] = Project(*it, *child);
    }
    return out;
  }
  if (v.is_array() && p.ItemProjection()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : v) out.push_back(Project(item, *p.ItemProjection()));
    return out;
  }
  return v;
}

// Equal values of equal types: nlohmann's == alone takes 5 and 5.0 as equal.
inline bool SameJson(const nlohmann::json& a, const nlohmann::json& b) {
  return a == b && a.dump() == b.dump();
}

// Nesting depth of a document (a scalar is 0), counting no further than cap.
inline int Depth(const nlohmann::json& v, int cap) {
  if (cap <= 0 || !v.is_structured()) return 0;
  int deepest = 0;
  for (const auto& child : v) deepest = std::max(deepest, Depth(child, cap - 1));
  return 1 + deepest;
}

}  // namespace ipguard::testing_util

#endif  // IPGUARD_TESTS_JSON_PROJECTION_REFERENCE_H_
