// Table-driven rule tests: every case in tests/fixtures/rules/*.yaml is one
// test. A case stores `existing` objects, then judges `object` (or the
// DELETE of `oldObject`) and compares the verdict with `expect`.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/engine.h"
#include "core/manifest.h"
#include "tests/fixture_cases.h"

namespace ipguard {
namespace {

using nlohmann::json;
using testing_util::LoadCases;
using testing_util::RuleCase;
using testing_util::TestName;

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += "\n    " + s;
  return out.empty() ? " (none)" : out;
}

class RuleFixture : public testing::TestWithParam<RuleCase> {};

TEST_P(RuleFixture, Verdict) {
  const RuleCase& rc = GetParam();
  const json& c = rc.spec;
  ASSERT_FALSE(c.contains("error")) << "fixture file does not parse: " << c["error"];
  Options options;
  if (c.contains("platform")) {
    auto p = ParsePlatform(c["platform"].get<std::string>());
    ASSERT_TRUE(p) << "bad platform in fixture";
    options.platform = *p;
  }
  if (c.contains("capacityPolicy")) {
    auto p = ParseCapacityPolicy(c["capacityPolicy"].get<std::string>());
    ASSERT_TRUE(p) << "bad capacityPolicy in fixture";
    options.capacity_policy = *p;
  }
  Engine engine(options);
  for (const auto& e : c.value("existing", json::array())) {
    auto obj = ParseObject(e);
    ASSERT_TRUE(obj.ok()) << "existing object does not parse: " << obj.error();
    engine.Upsert(*obj);
  }
  auto op = ParseOperation(c.value("operation", "CREATE"));
  ASSERT_TRUE(op) << "bad operation in fixture";
  std::optional<Object> old_obj, obj;
  if (c.contains("oldObject")) {
    auto o = ParseObject(c["oldObject"]);
    ASSERT_TRUE(o.ok()) << o.error();
    old_obj = *o;
  }
  if (c.contains("object")) {
    auto o = ParseObject(c["object"]);
    ASSERT_TRUE(o.ok()) << o.error();
    obj = *o;
  }
  ASSERT_TRUE(*op == Operation::kDelete ? old_obj.has_value() : obj.has_value())
      << "fixture lacks the object to judge";
  Verdict v = engine.Review(*op, old_obj ? &*old_obj : nullptr, obj ? &*obj : nullptr);
  const json& expect = c["expect"];
  std::string got = "\n  violations:" + Join(v.violations) + "\n  warnings:" + Join(v.warnings);
  EXPECT_EQ(v.allowed(), expect.value("allowed", true)) << got;
  if (expect.contains("violations")) {
    auto want = expect["violations"].get<std::vector<std::string>>();
    auto have = v.violations;
    std::sort(want.begin(), want.end());
    std::sort(have.begin(), have.end());
    EXPECT_EQ(have, want) << got;
  }
  for (const auto& sub : expect.value("contains", json::array())) {
    std::string s = sub.get<std::string>();
    bool found = std::any_of(v.violations.begin(), v.violations.end(),
                             [&](const std::string& m) { return m.find(s) != std::string::npos; });
    EXPECT_TRUE(found) << "no violation contains \"" << s << "\"" << got;
  }
  if (expect.contains("warnings")) {
    const json& w = expect["warnings"];
    if (w.empty()) {
      EXPECT_TRUE(v.warnings.empty()) << got;
    }
    for (const auto& sub : w) {
      std::string s = sub.get<std::string>();
      bool found = std::any_of(v.warnings.begin(), v.warnings.end(), [&](const std::string& m) {
        return m.find(s) != std::string::npos;
      });
      EXPECT_TRUE(found) << "no warning contains \"" << s << "\"" << got;
    }
  }
  if (expect.contains("violationCount")) {
    EXPECT_EQ(v.violations.size(), expect["violationCount"].get<size_t>()) << got;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RuleFixture, testing::ValuesIn(LoadCases()), TestName);

// Every rule file carries both outcomes, so no rule is tested only one way.
TEST(RuleFixtures, EachFileHasPassingAndFailingCases) {
  std::map<std::string, std::pair<int, int>> counts;
  for (const auto& c : LoadCases()) {
    bool allowed = c.spec.contains("expect") && c.spec["expect"].value("allowed", true);
    (allowed ? counts[c.file].first : counts[c.file].second)++;
  }
  EXPECT_GE(counts.size(), 10u);
  for (const auto& [file, n] : counts) {
    EXPECT_GT(n.first, 0) << file << " has no passing case";
    EXPECT_GT(n.second, 0) << file << " has no failing case";
  }
}

}  // namespace
}  // namespace ipguard
