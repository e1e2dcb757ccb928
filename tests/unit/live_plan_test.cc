// ReadLivePlan, what `ipguard check --from-cluster` starts from, against
// scripted API answers: every kind read page by page with its apiVersion
// and kind set, MetalLB's pools only where served, and every refusal named.
#include "cmd/live_plan.h"

#include <gtest/gtest.h>

#include "tests/unit/fake_transport.h"

namespace ipguard {
namespace {

using kube::FakeTransport;
using nlohmann::json;

std::string List(const std::string& items, const std::string& cont = "") {
  return R"({"metadata":{"resourceVersion":"1")" +
         (cont.empty() ? std::string() : R"(,"continue":")" + cont + "\"") + R"(},"items":[)" +
         items + "]}";
}

void ScriptEmpty(FakeTransport* t, const std::string& path) { t->Script({"GET", path, 200, List("")}); }

TEST(LivePlan, EveryKindIsReadPageByPageWithItsApiVersionAndKind) {
  FakeTransport t;
  t.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=500", 200,
            List(R"({"metadata":{"name":"a"}})", "next")});
  t.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=500&continue=next", 200,
            List(R"({"metadata":{"name":"b"}})")});
  ScriptEmpty(&t, "/apis/ipguard.io/v1alpha1/ipreservations");
  ScriptEmpty(&t, "/apis/ipguard.io/v1alpha1/loadbalancerpools");
  t.Script({"GET", "/apis/metallb.io/v1beta1/ipaddresspools", 200,
            List(R"({"metadata":{"name":"p","namespace":"metallb-system"}})")});
  ScriptEmpty(&t, "/apis/ipguard.io/v1alpha1/workloadclusters");
  t.Script({"GET", "/api/v1/services", 200,
            List(R"({"metadata":{"name":"web","namespace":"shop"}},"not an object")")});
  t.Script({"GET", "/apis/ipguard.io/v1alpha1/ipclaims", 200,
            List(R"({"metadata":{"name":"vlan10-10.0.0.5"}})")});
  kube::Client client(&t);
  std::vector<std::string> seen;
  Status s = ReadLivePlan(client, [&](json& o) {
    seen.push_back(o["apiVersion"].get<std::string>() + " " + o["kind"].get<std::string>() + " " +
                   o["metadata"]["name"].get<std::string>());
  });
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "ipguard.io/v1alpha1 LogicalNetwork a", "ipguard.io/v1alpha1 LogicalNetwork b",
                      "v1 Service web", "metallb.io/v1beta1 IPAddressPool p",
                      "ipguard.io/v1alpha1 IPClaim vlan10-10.0.0.5"}));
}

TEST(LivePlan, MetalLBPoolsAreReadOnlyWhereServed) {
  FakeTransport t;
  for (const char* plural : {"logicalnetworks", "ipreservations", "loadbalancerpools", "workloadclusters"}) {
    ScriptEmpty(&t, std::string("/apis/ipguard.io/v1alpha1/") + plural);
  }
  t.Script({"GET", "/apis/metallb.io/v1beta1/ipaddresspools", 404,
            R"({"kind":"Status","reason":"NotFound","message":"the server could not find the requested resource","code":404})"});
  ScriptEmpty(&t, "/api/v1/services");
  ScriptEmpty(&t, "/apis/ipguard.io/v1alpha1/ipclaims");
  kube::Client client(&t);
  EXPECT_TRUE(ReadLivePlan(client, [](json&) {}).ok());
}

TEST(LivePlan, ARefusalOrAMissingKindIsAnErrorNamingTheResource) {
  {
    FakeTransport t;
    t.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks", 404,
              R"({"kind":"Status","reason":"NotFound","code":404})"});
    kube::Client client(&t);
    Status s = ReadLivePlan(client, [](json&) {});
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.message(),
              "the cluster does not serve ipguard.io/v1alpha1 logicalnetworks (are ipguard's CRDs installed?)");
  }
  {
    FakeTransport t;
    ScriptEmpty(&t, "/apis/ipguard.io/v1alpha1/logicalnetworks");
    t.Script({"GET", "/apis/ipguard.io/v1alpha1/workloadclusters", 403,
              R"({"kind":"Status","reason":"Forbidden","message":"workloadclusters.ipguard.io is forbidden: User \"dev\" cannot list resource","code":403})"});
    kube::Client client(&t);
    Status s = ReadLivePlan(client, [](json&) {});
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("cannot list ipguard.io/v1alpha1 workloadclusters: "), std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find("cannot list resource"), std::string::npos) << s.message();
  }
  {
    FakeTransport t;
    t.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks", 200, "", {}, false, /*no_answer=*/true});
    kube::Client client(&t);
    Status s = ReadLivePlan(client, [](json&) {});
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("cannot list ipguard.io/v1alpha1 logicalnetworks"), std::string::npos)
        << s.message();
  }
}

TEST(LivePlan, AKubeconfigThatCannotBeReadIsAnError) {
  Status s = ReadLivePlanFrom("/nonexistent/kubeconfig", "", [](json&) {});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/kubeconfig"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ipguard
