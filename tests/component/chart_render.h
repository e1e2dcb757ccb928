// The chart as the real helm renders it, for the component tests that run
// what it renders (scripts/setup.sh puts helm in .tools/; IPGUARD_HELM names
// another).
#ifndef IPGUARD_TESTS_COMPONENT_CHART_RENDER_H_
#define IPGUARD_TESTS_COMPONENT_CHART_RENDER_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/manifest.h"

namespace ipguard::testing_util {

// `helm template ipguard charts/ipguard -n ipguard-system FLAGS`, parsed;
// empty when helm fails.
inline std::vector<nlohmann::json> RenderChart(const std::string& flags) {
  const char* env = std::getenv("IPGUARD_HELM");
  std::string helm = env ? env : std::string(IPGUARD_SOURCE_DIR) + "/.tools/helm";
  std::string cmd = helm + " template ipguard " + IPGUARD_SOURCE_DIR +
                    "/charts/ipguard -n ipguard-system " + flags + " 2>/dev/null";
  std::string text;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
    if (::pclose(p) != 0) text.clear();
  }
  std::vector<Document> docs;
  if (text.empty() || !ParseManifests(text, "chart", &docs).ok()) return {};
  std::vector<nlohmann::json> out;
  for (auto& d : docs) out.push_back(std::move(d.json));
  return out;
}

}  // namespace ipguard::testing_util

#endif  // IPGUARD_TESTS_COMPONENT_CHART_RENDER_H_
