// The kind registry, and what derives from it: KindOf and KindName, what the
// informer caches keep (TrimObject), what the webhook's projection keeps
// (ObjectProjection) and what the engine's stored copy keeps. The registry
// against the CRDs is in crd_test.cc.
#include "core/kinds.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/engine.h"
#include "core/objects.h"
#include "tests/fixture_cases.h"
#include "tests/review_summary.h"
#include "tests/unit/test_util.h"

namespace ipguard {
namespace {

using nlohmann::json;

TEST(KindRegistry, OneEntryPerKindInOrder) {
  ASSERT_EQ(Kinds().size(), static_cast<size_t>(kKindCount));
  std::set<std::string> names;
  for (size_t i = 0; i < Kinds().size(); ++i) {
    const KindInfo& info = Kinds()[i];
    EXPECT_EQ(static_cast<size_t>(info.kind), i) << info.name;
    EXPECT_EQ(&InfoOf(info.kind), &info);
    EXPECT_STREQ(KindName(info.kind), info.name);
    EXPECT_EQ(IsNamespaced(info.kind), info.namespaced);
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
  }
}

TEST(KindRegistry, KindOfAcceptsOnlyTheServedVersion) {
  EXPECT_EQ(InfoOf(Kind::kService).ApiVersion(), "v1");
  EXPECT_EQ(InfoOf(Kind::kLogicalNetwork).ApiVersion(), "ipguard.io/v1alpha1");
  EXPECT_EQ(InfoOf(Kind::kIPAddressPool).ApiVersion(), "metallb.io/v1beta1");
  for (const KindInfo& info : Kinds()) {
    SCOPED_TRACE(info.name);
    EXPECT_EQ(KindOf(info.ApiVersion(), info.name), info.kind);
    const std::string group = *info.group ? std::string(info.group) + "/" : "";
    for (const std::string& api :
         {group + "v1", group + "v2", group + info.version + "x", group + "/" + info.version,
          "/" + info.ApiVersion(), info.ApiVersion() + "/", "other.io/" + std::string(info.version),
          std::string(info.version)}) {
      if (api == info.ApiVersion()) continue;
      EXPECT_FALSE(KindOf(api, info.name)) << api;
    }
    EXPECT_FALSE(KindOf(info.ApiVersion(), std::string(info.name) + "List"));
    EXPECT_FALSE(KindOf(info.ApiVersion(), info.plural));
  }
  // A kind of one group is not served by another's version.
  EXPECT_FALSE(KindOf("ipguard.io/v1alpha1", "Service"));
  EXPECT_FALSE(KindOf("v1", "LogicalNetwork"));
  EXPECT_FALSE(KindOf("metallb.io/v1beta1", "LoadBalancerPool"));
}

TEST(KindRegistry, AnnotationsAreExactAndLabelled) {
  for (const KindInfo& info : Kinds()) {
    std::set<std::string> keys;
    for (const AnnotationInfo& a : info.annotations) {
      SCOPED_TRACE(std::string(info.name) + " " + a.key);
      EXPECT_TRUE(keys.insert(a.key).second) << "listed twice";
      EXPECT_EQ(std::string(a.key).find('*'), std::string::npos);
      if (a.use == AnnotationUse::kRequestsAddresses) {
        ASSERT_NE(a.label, nullptr);
        EXPECT_EQ(a.label, "annotations[" + std::string(a.key) + "]");
      } else {
        EXPECT_EQ(a.label, nullptr);
      }
    }
  }
  // The ones the rules name, where they read them.
  auto lists = [](Kind k, const char* key, AnnotationUse use) {
    for (const AnnotationInfo& a : InfoOf(k).annotations) {
      if (std::string(a.key) == key) return a.use == use;
    }
    return false;
  };
  EXPECT_TRUE(
      lists(Kind::kLogicalNetwork, kAllowDeleteAnnotation, AnnotationUse::kReadFromMetadata));
  EXPECT_TRUE(lists(Kind::kService, kLogicalNetworkAnnotation, AnnotationUse::kReadFromMetadata));
  // ipguard's mark on its claims matters at admission only: the engine keeps none.
  EXPECT_TRUE(lists(Kind::kIPClaim, kWrittenByAnnotation, AnnotationUse::kAtAdmission));
}

// An object of `info`'s kind carrying every annotation the registry names
// for it, the look-alikes the caches once kept by prefix, and a few more.
json Annotated(const KindInfo& info) {
  json annotations = {{"example.com/owner", "team-a"},
                      {"metallb.universe.tf/address-pool", "pool-a"},
                      {"metallb.io/ip-allocated-from-pool", "pool-a"},
                      {"kube-vip.io/vipHost", "node-1"},
                      {"lbipam.cilium.io/sharing-cross-namespace", "*"},
                      {"ipguard.io/note", "x"},
                      {"kubectl.kubernetes.io/last-applied-configuration", "{}"}};
  for (const AnnotationInfo& a : info.annotations) annotations[a.key] = "10.0.0.5";
  json obj = {{"apiVersion", info.ApiVersion()},
              {"kind", info.name},
              {"metadata",
               {{"name", "x"},
                {"uid", "u-1"},
                {"resourceVersion", "7"},
                {"labels", {{"app", "web"}}},
                {"managedFields", json::array({{{"manager", "kubectl"}}})},
                {"annotations", annotations}}},
              {"spec", json::object()}};
  if (info.namespaced) obj["metadata"]["namespace"] = "apps";
  return obj;
}

TEST(KindRegistry, EveryListedAnnotationSurvivesTrimAndProjection) {
  for (const KindInfo& info : Kinds()) {
    SCOPED_TRACE(info.name);
    const json obj = Annotated(info);
    const json trimmed = TrimObject(info.kind, obj);
    const json projected = *ParseProjected(obj.dump(), ObjectProjection());
    std::set<std::string> listed;
    for (const AnnotationInfo& a : info.annotations) {
      listed.insert(a.key);
      EXPECT_EQ(trimmed["metadata"]["annotations"][a.key], "10.0.0.5") << a.key;
      EXPECT_EQ(projected["metadata"]["annotations"][a.key], "10.0.0.5") << a.key;
    }
    // Trim keeps nothing else; the projection keeps every annotation, since
    // ParseObject checks each one.
    std::set<std::string> kept;
    const json annotations = trimmed["metadata"].value("annotations", json::object());
    for (auto it = annotations.begin(); it != annotations.end(); ++it) kept.insert(it.key());
    EXPECT_EQ(kept, listed);
    EXPECT_EQ(projected["metadata"]["annotations"], obj["metadata"]["annotations"]);
    EXPECT_FALSE(trimmed["metadata"].contains("labels"));
    EXPECT_FALSE(trimmed["metadata"].contains("managedFields"));
    EXPECT_EQ(trimmed["metadata"]["resourceVersion"], "7");
    EXPECT_EQ(trimmed["metadata"]["uid"], "u-1");
  }
}

TEST(KindRegistry, TrimKeepsOnlyWhatIsRead) {
  const json svc = json::parse(R"({"apiVersion":"v1","kind":"Service",
    "metadata":{"name":"web","namespace":"apps","generation":2,"creationTimestamp":"t",
      "finalizers":["f"],"ownerReferences":[{"name":"o"}]},
    "spec":{"type":"LoadBalancer","loadBalancerIP":"10.0.0.5","selector":{"app":"web"},
      "ports":[{"name":"https","port":443,"protocol":"TCP","targetPort":8443}],
      "clusterIP":"10.96.0.10"},
    "status":{"loadBalancer":{"ingress":[{"ip":"10.0.0.5","ipMode":"VIP"},"odd"]},"conditions":[]}})");
  EXPECT_EQ(TrimObject(Kind::kService, svc), json::parse(R"({"apiVersion":"v1","kind":"Service",
    "metadata":{"name":"web","namespace":"apps","generation":2,"creationTimestamp":"t"},
    "spec":{"type":"LoadBalancer","loadBalancerIP":"10.0.0.5",
      "ports":[{"port":443,"protocol":"TCP"}]},
    "status":{"loadBalancer":{"ingress":[{"ip":"10.0.0.5"},"odd"]}}})"));
  // ipguard's own kinds: spec whole (undeclared fields are reported) and
  // status whole (written back).
  const json lnet = json::parse(R"({"apiVersion":"ipguard.io/v1alpha1","kind":"LogicalNetwork",
    "metadata":{"name":"n","deletionTimestamp":"t"},
    "spec":{"vlanId":5,"typo":1},"status":{"conditions":[{"type":"Ready"}],"extra":1}})");
  json want = lnet;
  want["metadata"].erase("deletionTimestamp");
  EXPECT_EQ(TrimObject(Kind::kLogicalNetwork, lnet), want);
  // MetalLB's kind: its addresses only; its status is MetalLB's.
  const json pool = json::parse(R"({"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPool",
    "metadata":{"name":"p","namespace":"m"},
    "spec":{"addresses":["10.0.0.0/28"],"autoAssign":false},"status":{"assignedIPv4":3}})");
  EXPECT_EQ(TrimObject(Kind::kIPAddressPool, pool),
            json::parse(R"({"apiVersion":"metallb.io/v1beta1",
    "kind":"IPAddressPool","metadata":{"name":"p","namespace":"m"},
    "spec":{"addresses":["10.0.0.0/28"]}})"));
  // What is not an object where one is expected stays, for ParseObject to report.
  json odd = svc;
  odd["spec"] = "text";
  odd["metadata"]["annotations"] = json::array({1});
  json trimmed = TrimObject(Kind::kService, odd);
  EXPECT_EQ(trimmed["spec"], "text");
  EXPECT_EQ(trimmed["metadata"]["annotations"], json::array({1}));
  // A store names an object it dropped from its key alone.
  EXPECT_EQ(TrimObject(Kind::kService, json{{"metadata", {{"name", "a"}}}}),
            (json{{"metadata", {{"name", "a"}}}}));
}

// Every object of every rule fixture, read from its trimmed form and from the
// whole one: the same object (but for the annotations no rule reads) and the
// same verdict.
TEST(KindRegistry, ParseObjectReadsTheSameFromTrimmedObjects) {
  int objects = 0;
  for (const auto& rc : testing_util::LoadCases()) {
    const json& c = rc.spec;
    ASSERT_FALSE(c.contains("error")) << rc.file;
    Engine engine;
    for (const json& doc : testing_util::CaseObjects(c)) {
      SCOPED_TRACE(rc.file + "/" + rc.name + ": " + doc.dump());
      auto parsed = ParseObject(doc);
      if (!parsed.ok()) continue;
      Object whole = *parsed;
      auto trimmed_parsed = ParseObject(TrimObject(whole.kind, doc));
      ASSERT_TRUE(trimmed_parsed.ok()) << trimmed_parsed.error();
      Object trimmed = *trimmed_parsed;
      ++objects;
      const std::vector<AnnotationInfo>& listed = InfoOf(whole.kind).annotations;
      for (auto it = whole.meta.annotations.begin(); it != whole.meta.annotations.end();) {
        bool read = false;
        for (const AnnotationInfo& a : listed) read = read || it->first == a.key;
        it = read ? std::next(it) : whole.meta.annotations.erase(it);
      }
      EXPECT_EQ(testing_util::ObjectSummary(whole), testing_util::ObjectSummary(trimmed));
      auto uses = [&](const Object& o) {
        std::string s;
        for (const Use& u : engine.UsesOf(o)) s += u.field.str() + "=" + u.block.ToString() + " ";
        return s;
      };
      EXPECT_EQ(uses(whole), uses(trimmed));
      Verdict a = engine.Review(Operation::kCreate, nullptr, &whole);
      Verdict b = engine.Review(Operation::kCreate, nullptr, &trimmed);
      EXPECT_EQ(a.Message(), b.Message());
      EXPECT_EQ(a.warnings, b.warnings);
      engine.Upsert(std::move(trimmed));
    }
  }
  EXPECT_GT(objects, 300);
}

TEST(KindRegistry, EngineKeepsTheAnnotationsReadFromMetadata) {
  for (const KindInfo& info : Kinds()) {
    SCOPED_TRACE(info.name);
    json obj = Annotated(info);
    if (info.kind == Kind::kService) obj["spec"]["type"] = "LoadBalancer";
    auto parsed = ParseObject(obj);
    ASSERT_TRUE(parsed.ok()) << parsed.error();
    Engine engine;
    const std::string key = parsed->Key();
    engine.Upsert(std::move(*parsed));
    const Object* stored = engine.Find(key);
    ASSERT_NE(stored, nullptr);
    std::map<std::string, std::string> want;
    for (const AnnotationInfo& a : info.annotations) {
      if (a.use == AnnotationUse::kReadFromMetadata) want[a.key] = "10.0.0.5";
    }
    EXPECT_EQ(stored->meta.annotations, want);
  }
}

}  // namespace
}  // namespace ipguard
