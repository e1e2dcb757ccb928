// Table-driven rule tests: every case in tests/fixtures/rules/*.yaml is one
// test. A case stores `existing` objects, then judges `object` (or the
// DELETE of `oldObject`) and compares the verdict with `expect`.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cmd/check.h"
#include "controller/status.h"
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

// The same fixtures through the two other front doors. A fixture judges a CREATE of
// `object` against `existing`; those that judge an update or a delete are the webhook's
// alone (the controller and `ipguard check` see no transition).
struct FrontDoorCase {
  Options options;
  std::vector<json> existing;
  std::optional<Object> object;
  json object_json;
  json expect;
};

std::optional<FrontDoorCase> CreateCase(const json& c) {
  if (c.contains("error") || c.value("operation", "CREATE") != "CREATE" || !c.contains("object"))
    return std::nullopt;
  FrontDoorCase f;
  if (c.contains("platform")) f.options.platform = *ParsePlatform(c["platform"].get<std::string>());
  if (c.contains("capacityPolicy"))
    f.options.capacity_policy = *ParseCapacityPolicy(c["capacityPolicy"].get<std::string>());
  for (const auto& e : c.value("existing", json::array())) f.existing.push_back(e);
  auto o = ParseObject(c["object"]);
  if (!o.ok()) return std::nullopt;
  f.object = *o;
  f.object_json = c["object"];
  f.expect = c["expect"];
  return f;
}

// The controller: the object stored (the youngest) after the existing ones. What
// Validate finds shows as Ready=False, reason InvalidSpec, with the webhook's messages;
// a create the webhook refuses for anything else is not Ready either.
TEST_P(RuleFixture, TheControllerAgrees) {
  auto f = CreateCase(GetParam().spec);
  if (!f) GTEST_SKIP() << "not a create";
  Object obj = *f->object;
  if (!InfoOf(obj.kind).owns_status) GTEST_SKIP() << "no status of this kind";
  Engine engine(f->options);
  for (const auto& e : f->existing) {
    Object stored = *ParseObject(e);
    stored.meta.creation_timestamp = "2026-01-01T00:00:00Z";
    engine.Upsert(stored);
  }
  Verdict review = engine.Review(Operation::kCreate, nullptr, &obj);
  Verdict fields = Validate(obj, f->options);
  for (const auto& m : fields.violations) {
    EXPECT_NE(std::find(review.violations.begin(), review.violations.end(), m),
              review.violations.end())
        << "Validate found \"" << m << "\" but the webhook did not";
  }
  obj.meta.creation_timestamp = "2026-06-01T00:00:00Z";
  engine.Upsert(obj);
  json status = DesiredStatus(engine, obj, json(), "2026-06-01T00:00:01Z");
  json ready;
  for (const auto& cond : status["conditions"]) {
    if (cond["type"] == "Ready") ready = cond;
  }
  ASSERT_TRUE(ready.is_object()) << status.dump();
  if (!fields.violations.empty()) {
    EXPECT_EQ(ready["status"], "False") << status.dump();
    EXPECT_EQ(ready["reason"], "InvalidSpec") << status.dump();
    for (const auto& m : fields.violations) {
      EXPECT_NE(ready["message"].get<std::string>().find(m), std::string::npos)
          << "Ready's message lacks \"" << m << "\": " << ready["message"];
    }
  } else if (f->expect.value("allowed", true)) {
    // Admitted: Ready, unless over capacity (admitted with a warning under Warn).
    if (ready["reason"] != "CapacityExceeded") {
      EXPECT_EQ(ready["status"], "True") << status.dump();
    }
  } else {
    EXPECT_EQ(ready["status"], "False") << "refused at admission, yet Ready: " << status.dump();
  }
}

// `ipguard check`: the existing objects and the object as one input, when applying them
// in check's order (networks, reservations, pools, clusters, Services) keeps the object
// last: the object's result is the webhook's verdict.
TEST_P(RuleFixture, CheckAgrees) {
  auto f = CreateCase(GetParam().spec);
  if (!f) GTEST_SKIP() << "not a create";
  std::vector<Document> docs;
  int n = 0;
  Engine engine(f->options);
  for (const auto& e : f->existing) {
    Object stored = *ParseObject(e);
    if (ApplyRank(stored.kind) > ApplyRank(f->object->kind)) GTEST_SKIP() << "check would apply it later";
    if (stored.Key() == f->object->Key()) GTEST_SKIP() << "the same object twice";
    engine.Upsert(stored);
    docs.push_back({"existing.yaml", ++n, e});
  }
  docs.push_back({"object.yaml", 1, f->object_json});
  Verdict review = engine.Review(Operation::kCreate, nullptr, &*f->object);
  CheckReport report = RunRules(docs, f->options);
  const ObjectResult* mine = nullptr;
  for (const auto& r : report.results) {
    if (r.source == "object.yaml") mine = &r;
  }
  ASSERT_NE(mine, nullptr);
  auto have = mine->verdict.violations, want = review.violations;
  std::sort(have.begin(), have.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(have, want);
  auto hw = mine->verdict.warnings, ww = review.warnings;
  std::sort(hw.begin(), hw.end());
  std::sort(ww.begin(), ww.end());
  EXPECT_EQ(hw, ww);
}

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
