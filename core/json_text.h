// ParseJsonText: JSON text parsed as nlohmann::json::parse parses it, and
// also the path of every key written twice in one object, which
// nlohmann::json::parse keeps the last of without a word.
//
// "Input is read strictly": `ipguard check` reports a repeated key of a
// manifest, and the webhook one of the object under review, as a violation
// naming its path. The webhook asks only about what it reads (a projection);
// a key repeated where no rule looks changes no verdict.
//
// Pure; thread-safe; never throws.
#ifndef IPGUARD_CORE_JSON_TEXT_H_
#define IPGUARD_CORE_JSON_TEXT_H_

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/json_projection.h"

namespace ipguard {

struct JsonText {
  bool ok = false;        // the text is JSON, nested at most max_depth deep
  bool too_deep = false;  // it nests more than max_depth objects and lists
  nlohmann::json value;
  // "spec.ipPools[0].start", in the order met; only keys `keep` keeps.
  std::vector<std::string> duplicates;
};

// Everything kept: a projection that narrows nothing.
const JsonProjection& KeepAll();

JsonText ParseJsonText(std::string_view text, int max_depth,
                       const JsonProjection& keep = KeepAll());

}  // namespace ipguard

#endif  // IPGUARD_CORE_JSON_TEXT_H_
