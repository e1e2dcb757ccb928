// Manifest reading: YAML (multi-document) or JSON text into JSON documents,
// with `kind: List` expanded into its items. Used by `ipguard check` and for
// kubeconfig files.
//
// Pure: works on text already read. Never throws; yaml-cpp and nlohmann
// exceptions are caught here and become errors that name the document.
#ifndef IPGUARD_CORE_MANIFEST_H_
#define IPGUARD_CORE_MANIFEST_H_

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace ipguard {

struct Document {
  std::string source;  // file name or "-"
  int index = 0;       // 1-based document number within the source
  nlohmann::json json;
};

// Appends the documents of `text` to `out`. On error nothing is appended and
// the message names `source` and the document number.
Status ParseManifests(std::string_view text, const std::string& source, std::vector<Document>* out);

}  // namespace ipguard

#endif  // IPGUARD_CORE_MANIFEST_H_
