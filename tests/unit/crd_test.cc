// The CRDs in crds/ against API.md (names, scope, category, status
// subresource, printer columns, and a description on every schema field so
// that `kubectl explain` teaches the API) and against the kind registry.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>

#include "core/kinds.h"
#include "core/manifest.h"
#include "core/objects.h"
#include "tests/files.h"

namespace ipguard {
namespace {

using nlohmann::json;

// A CRD of crds/, or of another directory of the source tree.
json LoadCrd(const std::string& file, const std::string& dir = "crds") {
  std::vector<Document> docs;
  Status s = ParseManifests(
      testing_util::ReadFile(std::string(IPGUARD_SOURCE_DIR) + "/" + dir + "/" + file), file,
      &docs);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(docs.size(), 1u) << file;
  return docs.empty() ? json() : docs[0].json;
}

// Paths of schema properties that lack a description.
void Undescribed(const json& schema, const std::string& path, std::vector<std::string>* out) {
  if (!schema.is_object()) return;
  if (path != "root" && path != "root.metadata" && !schema.contains("description")) out->push_back(path);
  if (schema.contains("properties")) {
    for (auto it = schema["properties"].begin(); it != schema["properties"].end(); ++it) {
      Undescribed(*it, path + "." + it.key(), out);
    }
  }
  if (schema.contains("items")) Undescribed(schema["items"], path + "[]", out);
}

struct Expected {
  const char* file;
  const char* kind;
  const char* short_name;
  const char* scope;
  std::vector<std::string> columns;
};

TEST(Crds, MatchTheContract) {
  const Expected all[] = {
      {"ipguard.io_logicalnetworks.yaml", "LogicalNetwork", "lnet", "Cluster",
       {"METHOD", "PREFIX", "VLAN", "TOTAL", "FREE", "CLUSTERS", "READY"}},
      {"ipguard.io_workloadclusters.yaml", "WorkloadCluster", "wlc", "Namespaced",
       {"NETWORK", "CONTROL-PLANE-IP", "NODES", "READY"}},
      {"ipguard.io_loadbalancerpools.yaml", "LoadBalancerPool", "lbpool", "Cluster",
       {"ADDRESSES", "ASSIGNED", "FREE", "READY"}},
      {"ipguard.io_ipreservations.yaml", "IPReservation", "ipres", "Cluster", {}},
  };
  for (const auto& e : all) {
    SCOPED_TRACE(e.file);
    json crd = LoadCrd(e.file);
    ASSERT_TRUE(crd.is_object());
    EXPECT_EQ(crd["apiVersion"], "apiextensions.k8s.io/v1");
    EXPECT_EQ(crd["kind"], "CustomResourceDefinition");
    const json& spec = crd["spec"];
    EXPECT_EQ(spec["group"], "ipguard.io");
    EXPECT_EQ(spec["names"]["kind"], e.kind);
    EXPECT_EQ(spec["names"]["shortNames"], json::array({e.short_name}));
    EXPECT_EQ(spec["names"]["categories"], json::array({"ipguard"}));
    EXPECT_EQ(spec["scope"], e.scope);
    ASSERT_EQ(spec["versions"].size(), 1u);
    const json& v = spec["versions"][0];
    EXPECT_EQ(v["name"], "v1alpha1");
    EXPECT_TRUE(v["subresources"].contains("status"));
    std::vector<std::string> columns;
    for (const auto& c : v["additionalPrinterColumns"]) {
      std::string name = c["name"];
      for (char& ch : name) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
      if (name != "AGE" && !(c.contains("priority") && c["priority"] != 0)) columns.push_back(name);
    }
    if (!e.columns.empty()) {
      EXPECT_EQ(columns, e.columns);
    }
    std::vector<std::string> missing;
    Undescribed(v["schema"]["openAPIV3Schema"], "root", &missing);
    EXPECT_TRUE(missing.empty()) << "no description: " << missing.front();
  }
}

TEST(Crds, DefaultsFromTheContract) {
  json lnet = LoadCrd("ipguard.io_logicalnetworks.yaml");
  const json& ls = lnet["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
  EXPECT_EQ(ls["vlanId"]["default"], 0);
  EXPECT_EQ(ls["vlanId"]["maximum"], 4094);
  json wlc = LoadCrd("ipguard.io_workloadclusters.yaml");
  const json& ws = wlc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
  EXPECT_EQ(ws["controlPlane"]["properties"]["count"]["default"], 1);
  EXPECT_EQ(ws["upgradeSurge"]["default"], 1);
  EXPECT_EQ(ws["nodePools"]["x-kubernetes-list-type"], "map");
  EXPECT_EQ(ws["controlPlaneIP"]["x-kubernetes-validations"][0]["rule"], "self == oldSelf");
}

// The fields ParseObject accepts under spec are the ones each CRD declares: a field added
// to one and not the other would be refused by one front door and pruned by the other.
TEST(Crds, DeclareTheFieldsTheParserAccepts) {
  const std::pair<const char*, Kind> kinds[] = {
      {"ipguard.io_logicalnetworks.yaml", Kind::kLogicalNetwork},
      {"ipguard.io_workloadclusters.yaml", Kind::kWorkloadCluster},
      {"ipguard.io_loadbalancerpools.yaml", Kind::kLoadBalancerPool},
      {"ipguard.io_ipreservations.yaml", Kind::kIPReservation}};
  for (const auto& [file, kind] : kinds) {
    json crd = LoadCrd(file);
    const json& spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    std::vector<std::string> declared;
    std::function<void(const nlohmann::json&, const std::string&)> walk =
        [&](const nlohmann::json& s, const std::string& path) {
          const nlohmann::json* obj = &s;
          if (s.value("type", "") == "array" && s.contains("items")) obj = &s["items"];
          if (!obj->contains("properties")) return;
          for (auto it = (*obj)["properties"].begin(); it != (*obj)["properties"].end(); ++it) {
            declared.push_back(path + "." + it.key());
            walk(it.value(), path + "." + it.key());
          }
        };
    walk(spec, "spec");
    std::vector<std::string> accepted = DeclaredSpecFields(kind);
    std::sort(declared.begin(), declared.end());
    std::sort(accepted.begin(), accepted.end());
    EXPECT_EQ(accepted, declared) << file;
  }
}

// A registry entry against the CRD that defines its kind: what the manager
// watches and KindOf accepts is what the API server serves.
void ExpectEntryMatches(const KindInfo& info, const json& crd) {
  const json& spec = crd["spec"];
  EXPECT_EQ(spec["group"], info.group);
  EXPECT_EQ(spec["names"]["kind"], info.name);
  EXPECT_EQ(spec["names"]["plural"], info.plural);
  EXPECT_EQ(spec["scope"], info.namespaced ? "Namespaced" : "Cluster");
  std::vector<std::string> served;
  for (const auto& v : spec["versions"]) {
    if (v.value("served", false)) served.push_back(v["name"]);
  }
  EXPECT_EQ(served, std::vector<std::string>{info.version});
}

TEST(Crds, AgreeWithTheKindRegistry) {
  std::set<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(std::string(IPGUARD_SOURCE_DIR) + "/crds")) {
    files.insert(e.path().filename().string());
  }
  for (const KindInfo& info : Kinds()) {
    if (std::string(info.group) != kGroup) continue;
    SCOPED_TRACE(info.name);
    // controller-gen's names: <group>_<plural>.yaml.
    const std::string file = std::string(info.group) + "_" + info.plural + ".yaml";
    ASSERT_EQ(files.erase(file), 1u) << "no CRD " << file;
    json crd = LoadCrd(file);
    ExpectEntryMatches(info, crd);
    EXPECT_EQ(crd["metadata"]["name"], std::string(info.plural) + "." + info.group);
    // ipguard writes the status of the kinds it defines (but the ledger's
    // claims, which have none), through the status subresource.
    EXPECT_EQ(info.owns_status, info.kind != Kind::kIPClaim);
    EXPECT_EQ(crd["spec"]["versions"][0].contains("subresources") &&
                  crd["spec"]["versions"][0]["subresources"].contains("status"),
              info.owns_status);
  }
  EXPECT_TRUE(files.empty()) << "a CRD of a kind the registry does not list: " << *files.begin();
  // MetalLB's kind, against the stand-in of its CRD the e2e suite installs.
  ExpectEntryMatches(InfoOf(Kind::kIPAddressPool),
                     LoadCrd("metallb-ipaddresspool-crd.yaml", "tests/e2e"));
  EXPECT_FALSE(InfoOf(Kind::kIPAddressPool).owns_status);
}

}  // namespace
}  // namespace ipguard
