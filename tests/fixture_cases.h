// The rule fixtures (tests/fixtures/rules/*.yaml) as test cases, for the
// engine's table-driven tests and for the webhook's replay of the same cases
// through AdmissionReviews over TLS.
#ifndef IPGUARD_TESTS_FIXTURE_CASES_H_
#define IPGUARD_TESTS_FIXTURE_CASES_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/files.h"

namespace ipguard::testing_util {

using nlohmann::json;

struct RuleCase {
  std::string file;
  std::string name;
  json spec;
};

inline void PrintTo(const RuleCase& c, std::ostream* os) { *os << c.file << "/" << c.name; }

inline std::vector<RuleCase> LoadCases() {
  std::vector<RuleCase> cases;
  for (const ManifestFile& f :
       ReadManifestDir(std::filesystem::path(IPGUARD_SOURCE_DIR) / "tests" / "fixtures" / "rules")) {
    const std::string file = f.path.stem().string();
    if (!f.status.ok() || f.docs.empty() || !f.docs[0].json.contains("cases")) {
      cases.push_back({file, "unreadable", json{{"error", f.status.message()}}});
      continue;
    }
    for (const auto& c : f.docs[0].json["cases"]) cases.push_back({file, c.value("name", "unnamed"), c});
  }
  return cases;
}

// Every object a case names, in the order it comes: those that exist, then
// the object under review and its old version.
inline std::vector<json> CaseObjects(const json& c) {
  std::vector<json> docs;
  for (const auto& e : c.value("existing", json::array())) docs.push_back(e);
  for (const char* key : {"object", "oldObject"}) {
    if (c.contains(key)) docs.push_back(c[key]);
  }
  return docs;
}

inline std::string TestName(const testing::TestParamInfo<RuleCase>& info) {
  std::string n = info.param.file + "__" + info.param.name;
  for (char& c : n) {
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return n;
}

}  // namespace ipguard::testing_util

#endif  // IPGUARD_TESTS_FIXTURE_CASES_H_
