// The rule fixtures (tests/fixtures/rules/*.yaml) as test cases, for the
// engine's table-driven tests and for the webhook's replay of the same cases
// through AdmissionReviews over TLS.
#ifndef IPGUARD_TESTS_FIXTURE_CASES_H_
#define IPGUARD_TESTS_FIXTURE_CASES_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/manifest.h"

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
  namespace fs = std::filesystem;
  fs::path dir = fs::path(IPGUARD_SOURCE_DIR) / "tests" / "fixtures" / "rules";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f);
    std::stringstream ss;
    ss << in.rdbuf();
    std::vector<Document> docs;
    Status s = ParseManifests(ss.str(), f.string(), &docs);
    if (!s.ok() || docs.empty() || !docs[0].json.contains("cases")) {
      cases.push_back({f.stem().string(), "unreadable", json{{"error", s.message()}}});
      continue;
    }
    for (const auto& c : docs[0].json["cases"]) {
      cases.push_back({f.stem().string(), c.value("name", "unnamed"), c});
    }
  }
  return cases;
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
