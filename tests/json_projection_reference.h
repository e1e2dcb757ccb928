// Helpers for holding ParseProjected to nlohmann/json (whose document,
// narrowed by Project(), is what ParseProjected must give). For the tests
// and the fuzz target only.
#ifndef IPGUARD_TESTS_JSON_PROJECTION_REFERENCE_H_
#define IPGUARD_TESTS_JSON_PROJECTION_REFERENCE_H_

#include <nlohmann/json.hpp>

#include "core/json_projection.h"

namespace ipguard::testing_util {

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
