#include "controller/status.h"
#include "controller/controller.h"

#include <gtest/gtest.h>

#include "tests/unit/test_util.h"

namespace ipguard {
namespace {

using nlohmann::json;
using testing_util::Cluster;
using testing_util::Network;
using testing_util::Obj;

const json* Cond(const json& status, const std::string& type) {
  for (const auto& c : status["conditions"]) {
    if (c["type"] == type) return &c;
  }
  return nullptr;
}

class StatusTest : public testing::Test {
 protected:
  Object Store(const std::string& yaml) {
    Object o = Obj(yaml);
    engine_.Upsert(o);
    return o;
  }
  Engine engine_;
};

// The claims of the ledger inside a network's prefix in its VLAN (or in every
// VLAN) are counted in its status; those of another VLAN or outside the
// prefix are not.
TEST_F(StatusTest, NetworkCountsTheClaimsInsideIt) {
  Object net = Store(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.59"));
  auto claim = [&](const std::string& address, const std::string& vlan) {
    std::string name = (vlan.empty() ? "any-" : "vlan" + vlan + "-") + address;
    Store("apiVersion: ipguard.io/v1alpha1\nkind: IPClaim\nmetadata: {name: " + name +
          "}\nspec: {address: " + address + (vlan.empty() ? "" : ", vlanId: " + vlan) +
          ", holder: {kind: Service, namespace: a, name: " + name + "}}\n");
  };
  claim("10.20.0.10", "10");
  claim("10.20.0.11", "");    // every domain
  claim("10.20.0.12", "20");  // another VLAN
  claim("10.30.0.1", "10");   // outside the prefix
  json s = DesiredStatus(engine_, net, json(), "2026-11-24T10:00:00Z");
  EXPECT_EQ(s["claims"], 2);
}

TEST_F(StatusTest, NetworkCountsAndCapacity) {
  Object net = Store(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.59"));
  Store(Cluster("t", "a", "lnet", "10.20.0.10", 3));  // needs 5
  json s = DesiredStatus(engine_, net, json(), "2026-11-24T10:00:00Z");
  EXPECT_EQ(s["addresses"], (json{{"total", 10}, {"requiredByNodes", 5}, {"free", 5}}));
  EXPECT_EQ(s["clusters"], 1);
  EXPECT_EQ(s["claims"], 0);
  EXPECT_EQ((*Cond(s, "Ready"))["status"], "True");
  EXPECT_EQ((*Cond(s, "CapacityExceeded"))["status"], "False");
  Store(Cluster("t", "b", "lnet", "10.20.0.11", 8));  // needs 10: 15 > 10
  json over = DesiredStatus(engine_, net, s, "2026-11-24T11:00:00Z");
  const json& cap = *Cond(over, "CapacityExceeded");
  EXPECT_EQ(cap["status"], "True");
  EXPECT_NE(cap["message"].get<std::string>().find("(needed 15, available 10)"), std::string::npos);
  EXPECT_EQ(cap["lastTransitionTime"], "2026-11-24T11:00:00Z");
  EXPECT_EQ((*Cond(over, "Ready"))["status"], "False");
  // Conflicting did not change, so it keeps its first transition time.
  EXPECT_EQ((*Cond(over, "Conflicting"))["lastTransitionTime"], "2026-11-24T10:00:00Z");
}

TEST_F(StatusTest, SameInputSameStatus) {
  Object net = Store(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.59"));
  json first = DesiredStatus(engine_, net, json(), "2026-11-24T10:00:00Z");
  json again = DesiredStatus(engine_, net, first, "2026-11-24T12:00:00Z");
  EXPECT_EQ(first, again);  // nothing to write
}

TEST_F(StatusTest, OldestWinsTheConflict) {
  Store(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  Object old_one = Store(Cluster("t", "old", "lnet", "10.20.0.10", 1, "2026-01-01T00:00:00Z"));
  Object new_one = Store(Cluster("t", "new", "lnet", "10.20.0.10", 1, "2026-02-01T00:00:00Z"));
  json s_old = DesiredStatus(engine_, old_one, json(), "2026-11-24T10:00:00Z");
  json s_new = DesiredStatus(engine_, new_one, json(), "2026-11-24T10:00:00Z");
  EXPECT_EQ((*Cond(s_old, "Conflicting"))["status"], "False");
  EXPECT_EQ((*Cond(s_old, "Ready"))["status"], "True");
  const json& c = *Cond(s_new, "Conflicting");
  EXPECT_EQ(c["status"], "True");
  EXPECT_EQ(c["reason"], "IPConflict");
  EXPECT_EQ(c["message"],
            "controlPlaneIP 10.20.0.10 of WorkloadCluster t/new equals controlPlaneIP 10.20.0.10 of "
            "WorkloadCluster t/old");
  EXPECT_EQ((*Cond(s_new, "Ready"))["status"], "False");
  EXPECT_EQ(s_new["requiredAddresses"], 3);
  EXPECT_EQ(s_new["nodes"], 2);
}

TEST_F(StatusTest, ConflictMessageStaysUnderTheConditionLimit) {
  Store("apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: old, creationTimestamp: "
        "\"2026-01-01T00:00:00Z\"}\nspec: {addresses: [10.0.0.0/16]}\n");
  std::string many = "apiVersion: ipguard.io/v1alpha1\nkind: LoadBalancerPool\nmetadata: {name: wide, "
                     "creationTimestamp: \"2026-02-01T00:00:00Z\"}\nspec: {addresses: [";
  for (int i = 0; i < 600; ++i) many += (i ? ", " : "") + std::string("10.0.") + std::to_string(i / 256) + "." + std::to_string(i % 256);
  many += "]}\n";
  Object wide = Store(many);
  json s = DesiredStatus(engine_, wide, json(), "2026-11-24T10:00:00Z");
  std::string msg = (*Cond(s, "Conflicting"))["message"];
  EXPECT_LE(msg.size(), 32768u);
  EXPECT_NE(msg.find(" more"), std::string::npos);
}

TEST_F(StatusTest, PoolAssignedAndServicesHaveNoStatus) {
  Object pool = Store(
      "apiVersion: ipguard.io/v1alpha1\nkind: LoadBalancerPool\nmetadata: {name: lb}\n"
      "spec: {addresses: [10.9.0.0/29, 10.9.1.0-10.9.1.1]}\n");
  Object svc = Store(
      "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: d}\n"
      "spec: {type: LoadBalancer}\nstatus: {loadBalancer: {ingress: [{ip: 10.9.0.3}]}}\n");
  json s = DesiredStatus(engine_, pool, json(), "2026-11-24T10:00:00Z");
  EXPECT_EQ(s["addresses"], (json{{"total", 10}, {"assigned", 1}, {"free", 9}}));
  EXPECT_EQ(Cond(s, "CapacityExceeded"), nullptr);
  EXPECT_TRUE(DesiredStatus(engine_, svc, json(), "2026-11-24T10:00:00Z").is_null());
  Object metallb = Store(
      "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: m}\n"
      "spec: {addresses: [10.9.2.0/29]}\n");
  EXPECT_TRUE(DesiredStatus(engine_, metallb, json(), "2026-11-24T10:00:00Z").is_null())
      << "an IPAddressPool's status is MetalLB's";
}

TEST_F(StatusTest, MissingNetworkIsNotReady) {
  Object c = Store(Cluster("t", "orphan", "gone", "10.20.0.10"));
  json s = DesiredStatus(engine_, c, json(), "2026-11-24T10:00:00Z");
  const json& ready = *Cond(s, "Ready");
  EXPECT_EQ(ready["status"], "False");
  EXPECT_EQ(ready["reason"], "InvalidSpec");
  EXPECT_NE(ready["message"].get<std::string>().find("LogicalNetwork \"gone\" not found"), std::string::npos);
}

}  // namespace
}  // namespace ipguard

namespace ipguard {
namespace {

TEST(CacheFormTest, KeepsIdentityAndStatusAsOneStringAndDropsTheRest) {
  nlohmann::json obj = {
      {"apiVersion", "ipguard.io/v1alpha1"},
      {"kind", "WorkloadCluster"},
      {"metadata",
       {{"name", "prod"},
        {"namespace", "team-a"},
        {"uid", "u-1"},
        {"resourceVersion", "42"},
        {"generation", 3},
        {"creationTimestamp", "2026-01-01T00:00:00Z"},
        {"labels", {{"app", "x"}}},
        {"annotations", {{"note", "long text nobody reads"}}}}},
      {"spec", {{"logicalNetworkName", "lnet-prod"}, {"controlPlaneIP", "10.0.0.5"}}},
      {"status", {{"observedGeneration", 3}, {"requiredAddresses", 5}}}};
  nlohmann::json kept = Controller::CacheForm(obj);
  ASSERT_TRUE(kept.is_string());
  nlohmann::json back = nlohmann::json::parse(kept.get<std::string>());
  EXPECT_EQ(back["metadata"],
            (nlohmann::json{{"name", "prod"},
                            {"namespace", "team-a"},
                            {"uid", "u-1"},
                            {"resourceVersion", "42"},
                            {"generation", 3},
                            {"creationTimestamp", "2026-01-01T00:00:00Z"}}));
  EXPECT_EQ(back["status"], obj["status"]);
  EXPECT_FALSE(back.contains("spec")) << "the engine holds the spec";

  // The cache must see every change: a new resourceVersion changes the form.
  nlohmann::json later = obj;
  later["metadata"]["resourceVersion"] = "43";
  EXPECT_NE(Controller::CacheForm(later), kept);
  // Without status or metadata there is still a well-formed form.
  EXPECT_EQ(nlohmann::json::parse(Controller::CacheForm({{"kind", "X"}}).get<std::string>()),
            nlohmann::json::object());
  EXPECT_EQ(nlohmann::json::parse(Controller::CacheForm(nlohmann::json(5)).get<std::string>()),
            nlohmann::json::object());
}

}  // namespace
}  // namespace ipguard
