// Manifest text through the whole `ipguard check` pipeline: YAML/JSON
// parsing, typed objects, every rule and the plan. Must never crash or hang.
#include <cstdint>
#include <string>

#include "cmd/check.h"
#include "core/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<ipguard::Document> docs;
  if (!ipguard::ParseManifests(text, "fuzz", &docs).ok()) return 0;
  ipguard::CheckReport report = ipguard::RunRules(docs, {});
  (void)ipguard::RenderTable(report);
  (void)ipguard::RenderJson(report).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return 0;
}
