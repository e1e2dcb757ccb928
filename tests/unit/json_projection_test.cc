// ParseProjected: the projected document equals nlohmann/json's document
// with the projection applied, it declines rather than accepts what is not
// JSON, and ParseObject reads the same object from ObjectProjection() as
// from the whole document for every rule fixture.
#include "core/json_projection.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/engine.h"
#include "tests/fixture_cases.h"
#include "tests/json_projection_reference.h"
#include "core/json_text.h"
#include "webhook/admission.h"

namespace ipguard {
namespace {

using nlohmann::json;
using testing_util::SameJson;

// Parses `text` both ways and checks they agree.
void ExpectSameAsNlohmann(const std::string& text, const JsonProjection& p) {
  SCOPED_TRACE(text);
  json full = json::parse(text);
  auto projected = ParseProjected(text, p);
  ASSERT_TRUE(projected.has_value());
  EXPECT_TRUE(SameJson(*projected, Project(full, p)))
      << projected->dump() << " vs " << Project(full, p).dump();
}

TEST(JsonProjectionTest, KeepsOnlyTheNamedMembers) {
  JsonProjection meta;
  meta.Keep("name");
  JsonProjection p;
  p.Keep("kind").Keep("metadata", std::move(meta));
  auto out = ParseProjected(
      R"({"kind":"Service","metadata":{"name":"web","managedFields":[{"f:spec":{}}],"labels":{"a":"b"}},"status":{"x":1}})",
      p);
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, json::parse(R"({"kind":"Service","metadata":{"name":"web"}})"));
}

// Paths join: a member kept whole by one path stays whole, whichever comes
// first; paths through list items narrow every item.
TEST(JsonProjectionTest, KeepPathJoinsPaths) {
  const json doc = json::parse(R"({"kind":"K","spec":{"type":"A","other":1},
    "status":{"lb":{"ingress":[{"ip":"1","mode":"x"},{"host":"h"}],"more":2},"c":[]},"x":0})");
  JsonProjection narrow;
  narrow.KeepPath("kind").KeepPath("spec.type").KeepPath("status.lb.ingress[].ip");
  EXPECT_EQ(Project(doc, narrow), json::parse(R"({"kind":"K","spec":{"type":"A"},
    "status":{"lb":{"ingress":[{"ip":"1"},{}]}}})"));
  ExpectSameAsNlohmann(doc.dump(), narrow);
  for (const auto& paths : std::vector<std::vector<std::string>>{
           {"spec", "spec.type", "status.lb", "status.lb.ingress[].ip"},
           {"spec.type", "spec", "status.lb.ingress[].ip", "status.lb"},
           {"spec.type", "spec.other", "spec", "status.lb.ingress[]", "status.lb.ingress[].ip",
            "status.lb.more"}}) {
    JsonProjection p;
    for (const std::string& path : paths) p.KeepPath(path);
    EXPECT_EQ(Project(doc, p), json::parse(R"({"spec":{"type":"A","other":1},
      "status":{"lb":{"ingress":[{"ip":"1","mode":"x"},{"host":"h"}],"more":2}}})"))
        << ::testing::PrintToString(paths);
  }
}

TEST(JsonProjectionTest, WholeValuesAreThoseNlohmannReads) {
  const JsonProjection whole;
  // nlohmann/json ends the input at a NUL after the value.
  ExpectSameAsNlohmann(std::string("[1] \0garbage", 13), whole);
  for (const char* text : {
           R"({"a":1,"b":-1,"c":0,"d":-0,"e":1.5,"f":-2.5e-3,"g":1E5,"h":1e+2})",
           R"([18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809])",
           R"(["plain", "\"\\\/\b\f\n\r\t", "\u0041\u00e9\u20ac", "\ud83d\ude00", "\u0000x", ""])",
           " \t\r\n[true, false, null, {}, [], [[]], {\"\":\"\"}] \n",
           R"("top-level string")",
           R"(12345)",
       }) {
    ExpectSameAsNlohmann(text, whole);
  }
}

TEST(JsonProjectionTest, NarrowedValuesAreThoseNlohmannReads) {
  JsonProjection item;
  item.Keep("ip");
  JsonProjection p;
  p.Keep("spec").Keep("list", JsonProjection().Items(item)).Keep("obj", JsonProjection().Keep("a"));
  for (const char* text : {
           R"({"spec":{"x":[1,{"y":"\u00e9"}]},"list":[{"ip":"1.2.3.4","other":1},{"other":2},"str",7],"obj":{"a":1,"b":2}})",
           // A projection meeting another type keeps the value as it is.
           R"({"list":{"ip":"1.2.3.4"},"obj":[{"a":1}],"spec":"text"})",
           R"({"list":null,"obj":"x","spec":null,"other":{"deep":[[[]]]}})",
           // A key written twice where nothing is kept: the last, as nlohmann.
           R"({"obj":{"a":1,"b":2,"b":3},"other":1,"other":{"x":2}})",
           R"({"k\u0069nd":"escaped key","spec":{"\"quoted\"":1}})",
       }) {
    ExpectSameAsNlohmann(text, p);
  }
}

TEST(JsonProjectionTest, DeclinesWhatIsNotJson) {
  const JsonProjection whole;
  JsonProjection narrow;
  narrow.Keep("a");
  for (const std::string& text : std::vector<std::string>{
           "", " ", "{", "}", "[1,]", "[,1]", R"({"a":1,})", R"({"a" 1})", R"({a:1})", "{'a':1}",
           "01", "-", "1.", "1e400", "[-1e999]", R"({"a":1,"skipped":1e400})",
           std::string(400, '9'), ".5", "1e", "1e+", "+1", "0x10", "NaN", "Infinity", "tru", "nul",
           "\"unterminated", "\"bad \\x escape\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"",
           "\"\\ud800\\u0041\"", "\"raw\ttab\"", std::string("\"nul\0\"", 6), "[1] 2", "{} x",
           std::string("[1,\0 2]", 7), R"({"a":[1,2})", R"({"b":{"c":[}})",
       }) {
    SCOPED_TRACE(::testing::PrintToString(text));
    EXPECT_TRUE(json::parse(text, nullptr, false).is_discarded()) << "nlohmann takes it";
    EXPECT_FALSE(ParseProjected(text, whole).has_value());
    EXPECT_FALSE(ParseProjected(text, narrow).has_value());
  }
}

// A kept key written twice is declined, so that the caller reads the text
// with ParseJsonText, which names the key; ParseJsonText names only keys the
// projection keeps.
TEST(JsonProjectionTest, AKeptKeyWrittenTwiceIsDeclinedAndNamed) {
  JsonProjection item;
  item.Keep("ip");
  JsonProjection p;
  p.Keep("spec").Keep("list", JsonProjection().Items(item)).Keep("obj", JsonProjection().Keep("a"));
  for (const auto& [text, path] : std::vector<std::pair<std::string, std::string>>{
           {R"({"spec":{"x":1,"x":2}})", "spec.x"},
           {R"({"spec":{"x":{"y":[{"z":1,"z":1}]}}})", "spec.x.y[0].z"},
           {R"({"list":[{"ip":"a"},{"ip":"b","ip":"c"}]})", "list[1].ip"},
           {R"({"obj":{"a":1,"b":2,"a":3}})", "obj.a"},
           {R"({"obj":1,"obj":2})", "obj"},
       }) {
    SCOPED_TRACE(text);
    EXPECT_FALSE(ParseProjected(text, p).has_value());
    JsonText parsed = ParseJsonText(text, 64, p);
    ASSERT_TRUE(parsed.ok);
    EXPECT_EQ(parsed.duplicates, std::vector<std::string>{path});
    EXPECT_EQ(parsed.value, json::parse(text));  // the whole document, the last of each key
    EXPECT_EQ(ParseJsonText(text, 64).duplicates, std::vector<std::string>{path});
  }
  // Keys no projection keeps: taken, and not named.
  const std::string unkept = R"({"list":[{"ip":"a","other":1,"other":2}],"obj":{"b":1,"b":2},"x":1,"x":2})";
  EXPECT_TRUE(ParseProjected(unkept, p).has_value());
  EXPECT_TRUE(ParseJsonText(unkept, 64, p).duplicates.empty());
  EXPECT_EQ(ParseJsonText(unkept, 64).duplicates,
            (std::vector<std::string>{"list[0].other", "obj.b", "x"}));
  // Depth is bounded as asked, and text that is not JSON is refused.
  JsonText deep = ParseJsonText(std::string(65, '[') + std::string(65, ']'), 64);
  EXPECT_FALSE(deep.ok);
  EXPECT_TRUE(deep.too_deep);
  EXPECT_TRUE(ParseJsonText(std::string(64, '[') + std::string(64, ']'), 64).ok);
  EXPECT_FALSE(ParseJsonText(R"({"a":)", 64).ok);
  EXPECT_FALSE(ParseJsonText(R"({"a":)", 64).too_deep);
}

TEST(JsonProjectionTest, LeavesNonAsciiAndDeepNestingToNlohmann) {
  // Valid JSON all the same: the caller parses it with nlohmann/json.
  const JsonProjection whole;
  for (const std::string& text : {std::string("{\"name\":\"caf\xC3\xA9\"}"),
                                 std::string("\xEF\xBB\xBF{}"),
                                 std::string(200, '[') + std::string(200, ']')}) {
    EXPECT_FALSE(json::parse(text, nullptr, false).is_discarded());
    EXPECT_FALSE(ParseProjected(text, whole).has_value());
  }
  std::string nested = std::string(kMaxScanDepth, '[') + std::string(kMaxScanDepth, ']');
  EXPECT_TRUE(ParseProjected(nested, whole).has_value());
}

// What the rules see of an object: everything ParseObject fills that a
// rule or a message reads, written out.
std::string Summary(const Engine& engine, const Object& o) {
  std::string s = o.Key() + " " + o.ApiVersion() + " uid=" + o.meta.uid +
                  " rv=" + o.meta.resource_version + " ts=" + o.meta.creation_timestamp +
                  " gen=" + std::to_string(o.meta.generation);
  for (const auto& [k, v] : o.meta.annotations) s += " ann[" + k + "]=" + v;
  for (const auto& e : o.errors) s += " error:" + e;
  for (const Use& u : engine.UsesOf(o)) {
    s += " use:" + std::to_string(static_cast<int>(u.role)) + ":" + u.field.str() + "=" +
         u.block.ToString();
  }
  if (o.kind == Kind::kWorkloadCluster) s += " required=" + std::to_string(RequiredAddresses(*o.wlc));
  return s;
}

// Every object of every rule fixture, read from the projected document and
// from the whole one: the same object, the same verdict.
TEST(JsonProjectionTest, ParseObjectReadsTheSameFromObjectProjection) {
  int objects = 0;
  for (const auto& rc : testing_util::LoadCases()) {
    const json& c = rc.spec;
    ASSERT_FALSE(c.contains("error")) << rc.file;
    Engine engine;
    for (const json& doc : testing_util::CaseObjects(c)) {
      SCOPED_TRACE(rc.file + "/" + rc.name + ": " + doc.dump());
      const std::string text = doc.dump();
      auto whole = ParseObject(json::parse(text));
      auto projected_doc = ParseProjected(text, ObjectProjection());
      ASSERT_TRUE(projected_doc.has_value());
      auto projected = ParseObject(*projected_doc);
      ASSERT_EQ(whole.ok(), projected.ok());
      if (!whole.ok()) {
        EXPECT_EQ(whole.error(), projected.error());
        continue;
      }
      ++objects;
      EXPECT_EQ(Summary(engine, *whole), Summary(engine, *projected));
      Verdict a = engine.Review(Operation::kCreate, nullptr, &*whole);
      Verdict b = engine.Review(Operation::kCreate, nullptr, &*projected);
      EXPECT_EQ(a.Message(), b.Message());
      EXPECT_EQ(a.warnings, b.warnings);
      engine.Upsert(std::move(*whole));
    }
  }
  EXPECT_GT(objects, 300);
}

// The AdmissionReview projection keeps what DecodeReview reads and drops
// the rest (userInfo, managedFields, labels).
TEST(JsonProjectionTest, AdmissionReviewProjectionDropsWhatNoRuleReads) {
  const std::string body = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
    "request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Service"},"operation":"CREATE",
    "namespace":"apps","dryRun":false,"userInfo":{"username":"alice","groups":["x"]},
    "object":{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","labels":{"app":"web"},
      "managedFields":[{"manager":"kubectl","fieldsV1":{"f:spec":{"k:{\"port\":443}":{}}}}],
      "annotations":{"metallb.io/loadBalancerIPs":"10.0.0.5"}},
      "spec":{"type":"LoadBalancer","ports":[{"port":443}]},
      "status":{"loadBalancer":{"ingress":[{"ip":"10.0.0.5","ipMode":"VIP"}]},"conditions":[]}},
    "oldObject":null}})";
  ExpectSameAsNlohmann(body, AdmissionReviewProjection());
  auto out = ParseProjected(body, AdmissionReviewProjection());
  ASSERT_TRUE(out);
  const json& obj = (*out)["request"]["object"];
  EXPECT_EQ((*out)["request"]["userInfo"], json::parse(R"({"username":"alice"})"))
      << "only the requester's name is kept";
  EXPECT_FALSE(obj["metadata"].contains("managedFields"));
  EXPECT_FALSE(obj["metadata"].contains("labels"));
  EXPECT_EQ(obj["status"], json::parse(R"({"loadBalancer":{"ingress":[{"ip":"10.0.0.5"}]}})"));
  EXPECT_EQ(obj["spec"], json::parse(R"({"type":"LoadBalancer","ports":[{"port":443}]})"));
  EXPECT_TRUE((*out)["request"]["oldObject"].is_null());
}

}  // namespace
}  // namespace ipguard
