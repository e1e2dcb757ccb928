// Small, non-throwing readers for JSON objects from outside (API answers,
// AdmissionReviews, kubeconfigs).
#ifndef IPGUARD_CORE_JSON_UTIL_H_
#define IPGUARD_CORE_JSON_UTIL_H_

#include <string>

#include <nlohmann/json.hpp>

namespace ipguard {

// obj[key] (or obj[key][key2]) when it is a string; "" otherwise, whatever
// the types along the way.
inline std::string JsonString(const nlohmann::json& obj, const char* key, const char* key2 = nullptr) {
  const nlohmann::json* v = &obj;
  for (const char* k : {key, key2}) {
    if (!k) break;
    if (!v->is_object()) return "";
    auto it = v->find(k);
    if (it == v->end()) return "";
    v = &*it;
  }
  return v->is_string() ? v->get<std::string>() : "";
}

// "a string", "a list", "null": a value's type as messages name it ("must be
// an integer, not a string").
inline std::string TypeName(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "a list";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_float:
      return "a decimal number";
    default:
      return "a number";
  }
}

}  // namespace ipguard

#endif  // IPGUARD_CORE_JSON_UTIL_H_
