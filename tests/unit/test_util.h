// Helpers shared by the unit tests: objects from YAML text.
#ifndef IPGUARD_TESTS_UNIT_TEST_UTIL_H_
#define IPGUARD_TESTS_UNIT_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <string>

#include "core/manifest.h"
#include "core/objects.h"

namespace ipguard::testing_util {

inline nlohmann::json Yaml(const std::string& text) {
  std::vector<Document> docs;
  Status s = ParseManifests(text, "test", &docs);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(docs.size(), 1u);
  return docs.empty() ? nlohmann::json() : docs[0].json;
}

inline Object Obj(const std::string& text) {
  auto o = ParseObject(Yaml(text));
  EXPECT_TRUE(o.ok()) << o.error();
  return o.ok() ? *o : Object();
}

inline std::string Network(const std::string& name, int vlan, const std::string& prefix,
                           const std::string& gw, const std::string& pool_start,
                           const std::string& pool_end) {
  return "apiVersion: ipguard.io/v1alpha1\nkind: LogicalNetwork\nmetadata: {name: " + name +
         "}\nspec: {vmSwitchName: sw, ipAllocationMethod: Static, vlanId: " + std::to_string(vlan) +
         ", addressPrefix: " + prefix + ", gateway: " + gw + ", dnsServers: [" + gw +
         "], ipPools: [{start: " + pool_start + ", end: " + pool_end + "}]}\n";
}

inline std::string Cluster(const std::string& ns, const std::string& name, const std::string& net,
                           const std::string& cp, int nodes = 3,
                           const std::string& created = "") {
  return "apiVersion: ipguard.io/v1alpha1\nkind: WorkloadCluster\nmetadata: {name: " + name +
         ", namespace: " + ns +
         (created.empty() ? "" : ", creationTimestamp: \"" + created + "\"") +
         "}\nspec: {logicalNetworkName: " + net + ", controlPlaneIP: " + cp +
         ", nodePools: [{name: np1, count: " + std::to_string(nodes) + "}]}\n";
}

}  // namespace ipguard::testing_util

#endif  // IPGUARD_TESTS_UNIT_TEST_UTIL_H_
