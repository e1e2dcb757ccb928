// `ipguard agent` against two fake API servers over real HTTPS on
// 127.0.0.1: the management cluster (the plan and the ledger) and a
// workload cluster (its Services and MetalLB pools). Its Service webhook
// judges against the plan and claims with its cluster name in the domain of
// its WorkloadCluster; the claims follow its Services; it keeps judging
// while the management cluster is away and catches up when it is back; its
// MetalLB pools are mirrored as LoadBalancerPools.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "cmd/manager.h"
#include "kube/http_transport.h"
#include "kube/kept_transport.h"
#include "tests/component/chart_render.h"
#include "tests/component/eventually.h"
#include "tests/component/fake_cluster.h"
#include "tests/component/tls_client.h"

namespace ipguard {
namespace {

using fakeapi::FakeApiServer;
using nlohmann::json;
using testing_util::Eventually;

class AgentTest : public testing::Test {
 protected:
  void SetUp() override {
    ca_ = *certs::GenerateCA("fake-apiserver-ca", std::chrono::hours(24));
    plan_ = testing_util::StartFakeApi(ca_);
    // The plan: ipguard's kinds of the example (networks, clusters, pools,
    // reservations); the workload cluster starts empty.
    testing_util::LoadExamples(plan_.get(), [](Kind k) {
      return k != Kind::kService && k != Kind::kIPAddressPool;
    });
    local_ = testing_util::StartFakeApi(ca_);
    char tmpl[] = "/tmp/ipguard-agent-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto serving = *certs::GenerateServing(ca_, "ipguard-webhook", {"localhost"}, {"127.0.0.1"},
                                           std::chrono::hours(24));
    std::ofstream(dir_ + "/tls.crt") << serving.cert_pem;
    std::ofstream(dir_ + "/tls.key") << serving.key_pem;
  }
  void TearDown() override {
    if (agent_) agent_->Stop();
    agent_.reset();
    local_->Stop();
    plan_->Stop();
    std::system(("rm -rf " + dir_).c_str());
  }

  // An agent for the workload cluster "edge-1", whose WorkloadCluster is
  // team-a/prod (lnet-prod, VLAN 10).
  ManagerOptions Options() const {
    auto parsed = ParseAgentFlags({"--plan-kubeconfig", "unused", "--cluster-name", "edge-1",
                                   "--cluster-ref", "team-a/prod"});
    EXPECT_TRUE(parsed.ok()) << parsed.error();
    ManagerOptions o = *parsed;
    o.ns = "ipguard-system";
    o.leader_elect = false;
    o.webhook_port = 0;
    o.webhook_bind = "127.0.0.1";
    o.cert_dir = dir_;
    o.metrics_port = -1;
    o.probe_port = 0;
    o.probe_bind = "127.0.0.1";
    o.watch_timeout_seconds = 5;
    o.claim_grace_ms = 1500;
    o.pending_ttl_seconds = 2;  // an admitted Service that is never stored is let go soon
    o.plan_probe_interval = std::chrono::milliseconds(200);
    return o;
  }

  Manager* Start(ManagerOptions o, bool wait_ready = true) {
    auto local = kube::NewHttpTransport(testing_util::ConfigOf(*local_, ca_), kube::RealClock::Get());
    auto plan = kube::NewHttpTransport(testing_util::ConfigOf(*plan_, ca_), kube::RealClock::Get());
    EXPECT_TRUE(local.ok() && plan.ok());
    auto claims = kube::NewKeptTransport(testing_util::ConfigOf(*plan_, ca_), kube::RealClock::Get(),
                                         plan.value().get());
    EXPECT_TRUE(claims.ok()) << claims.error();
    agent_ = std::make_unique<Manager>(o, std::move(local).value(), std::move(plan).value(),
                                       std::move(claims).value());
    Status s = agent_->Start();
    EXPECT_TRUE(s.ok()) << s.message();
    if (wait_ready) {
      EXPECT_TRUE(Eventually([&] { return agent_->Ready(); }));
    }
    return agent_.get();
  }

  json Review(const json& obj, const std::string& op = "CREATE") const {
    testing_util::TestClient client(agent_->webhook_port(), true, ca_.cert_pem);
    EXPECT_EQ(client.Connect(), "");
    auto reply = client.Request("POST", "/validate?timeout=10s",
                                testing_util::ReviewOf("u", op, obj).dump());
    EXPECT_TRUE(reply.ok) << reply.error;
    return json::parse(reply.body, nullptr, false)["response"];
  }
  static bool Allowed(const json& response) { return response.value("allowed", false); }
  static std::string Message(const json& response) {
    return response.contains("status") ? response["status"].value("message", "") : "";
  }

  std::optional<json> Claim(const std::string& name) const {
    return plan_->Get("ipclaims", "", name);
  }
  std::string ClaimCluster(const std::string& name) const {
    auto c = Claim(name);
    return c ? (*c)["spec"]["holder"].value("cluster", "(none)") : "(absent)";
  }

  testing_util::HttpReply Probe(const std::string& path) const {
    testing_util::TestClient c(agent_->probe_port(), false);
    EXPECT_EQ(c.Connect(), "");
    return c.Request("GET", path, "");
  }

  size_t Events(FakeApiServer* where, const std::string& reason, const std::string& name) const {
    size_t n = 0;
    for (const json& e : where->List("events")) {
      n += e.value("reason", "") == reason && e["regarding"].value("name", "") == name;
    }
    return n;
  }

  json Pool(const std::string& name, std::vector<std::string> addresses) const {
    return {{"apiVersion", "metallb.io/v1beta1"},
            {"kind", "IPAddressPool"},
            {"metadata", {{"name", name}, {"namespace", "metallb-system"}}},
            {"spec", {{"addresses", addresses}}}};
  }

  certs::KeyPair ca_;
  std::unique_ptr<FakeApiServer> plan_, local_;
  std::string dir_;
  std::unique_ptr<Manager> agent_;
};

TEST_F(AgentTest, ServicesAreJudgedAgainstThePlanAndClaimedWithTheClusterName) {
  Start(Options());

  // A control-plane IP of the management cluster's plan.
  json refused = Review(testing_util::LbService("api", "10.10.0.20"));
  EXPECT_FALSE(Allowed(refused));
  EXPECT_NE(Message(refused).find("WorkloadCluster team-a/prod"), std::string::npos)
      << Message(refused);

  // A free address: claimed in the management cluster, in VLAN 10 (the
  // network of team-a/prod), held by this cluster's Service.
  ASSERT_TRUE(Allowed(Review(testing_util::LbService("web", "10.10.0.201"))));
  ASSERT_TRUE(Claim("vlan10-10.10.0.201"));
  EXPECT_EQ(ClaimCluster("vlan10-10.10.0.201"), "edge-1");
  EXPECT_EQ((*Claim("vlan10-10.10.0.201"))["spec"]["holder"]["name"], "web");

  // An address another workload cluster's Service holds: refused, naming it.
  json other = {{"apiVersion", "ipguard.io/v1alpha1"},
                {"kind", "IPClaim"},
                {"metadata", {{"name", "vlan10-10.10.0.202"}}},
                {"spec",
                 {{"address", "10.10.0.202"},
                  {"vlanId", 10},
                  {"holder",
                   {{"cluster", "edge-2"}, {"kind", "Service"}, {"namespace", "shop"}, {"name", "cart"}}}}}};
  ASSERT_FALSE(plan_->Upsert("ipclaims", other).is_null());
  ASSERT_TRUE(Eventually([&] {
    return Message(Review(testing_util::LbService("db", "10.10.0.202")))
               .find("Service shop/cart in cluster edge-2") != std::string::npos;
  }));

  // A Service stored behind the webhook's back gets its claim from the
  // agent; one on edge-2's address is reported on the Service, in this
  // cluster, and claims nothing.
  ASSERT_FALSE(local_->Upsert("services", testing_util::LbService("stored", "10.10.0.203")).is_null());
  ASSERT_FALSE(local_->Upsert("services", testing_util::LbService("late", "10.10.0.202")).is_null());
  ASSERT_TRUE(Eventually([&] { return ClaimCluster("vlan10-10.10.0.203") == "edge-1"; }));
  ASSERT_TRUE(Eventually([&] { return Events(local_.get(), "IPConflict", "late") == 1; }));
  EXPECT_EQ((*Claim("vlan10-10.10.0.202"))["spec"]["holder"]["name"], "cart");
  EXPECT_TRUE(plan_->List("events").empty()) << "the agent writes no event in the management cluster";

  // The stored Service goes, and the admitted one never came: both claims
  // are released after the grace; edge-2's stays.
  ASSERT_TRUE(local_->Remove("services", "default", "stored"));
  ASSERT_TRUE(Eventually([&] { return !Claim("vlan10-10.10.0.203") && !Claim("vlan10-10.10.0.201"); },
                         std::chrono::seconds(10)));
  EXPECT_TRUE(Claim("vlan10-10.10.0.202"));
}

// A leader that has not listed the whole plan writes nothing: its Services'
// networks are not known yet, and a claim in every domain would be wrong.
TEST_F(AgentTest, NothingIsWrittenBeforeThePlanIsListed) {
  ASSERT_FALSE(local_->Upsert("services", testing_util::LbService("stored", "10.10.0.203")).is_null());
  plan_->FailMatching("GET", "/logicalnetworks", 500, "InternalError", "etcd is away");
  ManagerOptions o = Options();
  o.leader_elect = true;
  Manager* agent = Start(o, /*wait_ready=*/false);
  ASSERT_TRUE(Eventually([&] { return agent->IsLeader(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  EXPECT_FALSE(agent->Ready());
  EXPECT_TRUE(plan_->List("ipclaims").empty()) << plan_->List("ipclaims")[0].dump();
  EXPECT_EQ(Events(local_.get(), "IPConflict", "stored"), 0u);
}

TEST_F(AgentTest, ItKeepsJudgingWhileTheManagementClusterIsAwayAndCatchesUp) {
  Start(Options());
  EXPECT_EQ(Probe("/readyz").body, "ok\n");

  // Only slow (a claim write outlasts the admission's deadline, a third of
  // the call's 3 s): the write is refused, never admitted unclaimed, and
  // the management cluster is not taken for gone.
  plan_->SetDelay(std::chrono::milliseconds(1500));
  {
    testing_util::TestClient client(agent_->webhook_port(), true, ca_.cert_pem);
    ASSERT_EQ(client.Connect(), "");
    auto reply = client.Request(
        "POST", "/validate?timeout=3s",
        testing_util::ReviewOf("u", "CREATE", testing_util::LbService("slow", "10.10.0.205")).dump());
    json slow = json::parse(reply.body, nullptr, false)["response"];
    EXPECT_FALSE(Allowed(slow)) << slow.dump();
    EXPECT_NE(Message(slow).find("could not be written"), std::string::npos) << Message(slow);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  EXPECT_TRUE(agent_->PlanReachable());
  plan_->SetDelay(std::chrono::milliseconds(0));
  ASSERT_TRUE(Eventually([&] { return !Claim("vlan10-10.10.0.205"); }));

  // The management cluster goes away; its data are kept to bring it back.
  const int port = plan_->port();
  std::map<std::string, std::vector<json>> saved;
  for (const char* plural :
       {"logicalnetworks", "workloadclusters", "loadbalancerpools", "ipreservations", "ipclaims"}) {
    saved[plural] = plan_->List(plural);
  }
  plan_->Stop();
  ASSERT_TRUE(Eventually([&] { return !agent_->PlanReachable(); }));
  auto ready = Probe("/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_NE(ready.body.find("management cluster is unreachable"), std::string::npos) << ready.body;
  EXPECT_NE(Probe("/metrics").body.find("ipguard_plan_reachable 0"), std::string::npos);

  // Judged on the plan last seen: a control-plane IP is still refused; a
  // free address is admitted, with a warning, and claimed later.
  EXPECT_FALSE(Allowed(Review(testing_util::LbService("bad", "10.10.0.20"))));
  json admitted = Review(testing_util::LbService("offline", "10.10.0.204"));
  ASSERT_TRUE(Allowed(admitted)) << admitted.dump();
  ASSERT_TRUE(admitted.contains("warnings"));
  EXPECT_NE(admitted["warnings"][0].get<std::string>().find("management cluster is unreachable"), std::string::npos);
  ASSERT_FALSE(local_->Upsert("services", testing_util::LbService("offline", "10.10.0.204")).is_null());

  // Back (a fresh server on the same port, with the same objects).
  plan_ = testing_util::StartFakeApi(ca_, port);
  for (auto& [plural, items] : saved) {
    for (json& o : items) ASSERT_FALSE(plan_->Upsert(plural, o).is_null());
  }
  ASSERT_TRUE(Eventually([&] { return ClaimCluster("vlan10-10.10.0.204") == "edge-1"; },
                         std::chrono::seconds(20)));
  EXPECT_TRUE(Eventually([&] { return agent_->PlanReachable(); }));
  EXPECT_EQ(Probe("/readyz").body, "ok\n");
  std::string metrics = Probe("/metrics").body;
  EXPECT_NE(metrics.find("ipguard_plan_reachable 1"), std::string::npos);
  EXPECT_NE(metrics.find("ipguard_claims_deferred_total 1"), std::string::npos) << metrics;
}

TEST_F(AgentTest, MetalLBPoolsAreMirroredIntoThePlan) {
  // A mirror whose pool went while no agent ran, and a pool of that name
  // written by someone else.
  json stale = {{"apiVersion", "ipguard.io/v1alpha1"},
                {"kind", "LoadBalancerPool"},
                {"metadata",
                 {{"name", "edge-1-gone"},
                  {"labels", {{"ipguard.io/cluster", "edge-1"}}},
                  {"annotations", {{"ipguard.io/mirror-of", "metallb-system/gone"}}}}},
                {"spec", {{"addresses", {"10.10.0.240-10.10.0.241"}}}}};
  json foreign = {{"apiVersion", "ipguard.io/v1alpha1"},
                  {"kind", "LoadBalancerPool"},
                  {"metadata", {{"name", "edge-1-other"}}},
                  {"spec", {{"addresses", {"10.10.0.242/32"}}}}};
  ASSERT_FALSE(plan_->Upsert("loadbalancerpools", stale).is_null());
  ASSERT_FALSE(plan_->Upsert("loadbalancerpools", foreign).is_null());
  ManagerOptions o = Options();
  o.metallb = true;
  Start(o);
  ASSERT_TRUE(Eventually([&] { return !plan_->Get("loadbalancerpools", "", "edge-1-gone"); }));

  // A pool that overlaps the plan's lbpool-prod is refused; a free one is
  // admitted and mirrored in the cluster's network.
  json overlapping = Review(Pool("edge-pool", {"10.10.0.215-10.10.0.225"}));
  EXPECT_FALSE(Allowed(overlapping));
  EXPECT_NE(Message(overlapping).find("lbpool-prod"), std::string::npos) << Message(overlapping);
  json pool = Pool("edge-pool", {"10.10.0.230-10.10.0.235"});
  ASSERT_TRUE(Allowed(Review(pool)));
  ASSERT_FALSE(local_->Upsert("ipaddresspools", pool).is_null());
  auto mirror = [&] { return plan_->Get("loadbalancerpools", "", "edge-1-edge-pool"); };
  ASSERT_TRUE(Eventually([&] { return mirror().has_value(); }));
  EXPECT_EQ((*mirror())["metadata"]["labels"]["ipguard.io/cluster"], "edge-1");
  EXPECT_EQ((*mirror())["spec"]["logicalNetworkName"], "lnet-prod");
  EXPECT_EQ((*mirror())["spec"]["addresses"], json({"10.10.0.230-10.10.0.235"}));

  // The pool grows: so does its mirror. The mirror is the pool's own, never
  // a collision with it.
  pool["spec"]["addresses"] = {"10.10.0.230-10.10.0.239"};
  ASSERT_FALSE(local_->Upsert("ipaddresspools", pool).is_null());
  ASSERT_TRUE(Eventually([&] {
    auto m = mirror();
    return m && (*m)["spec"]["addresses"] == json({"10.10.0.230-10.10.0.239"});
  }));
  ASSERT_TRUE(Allowed(Review(testing_util::LbService("in-pool", "10.10.0.231"))));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(Events(local_.get(), "IPConflict", "edge-pool"), 0u);

  // Someone else's pool of the mirror's name is left alone.
  ASSERT_FALSE(local_->Upsert("ipaddresspools", Pool("other", {"10.10.0.250/32"})).is_null());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ((*plan_->Get("loadbalancerpools", "", "edge-1-other"))["spec"]["addresses"],
            json({"10.10.0.242/32"}));

  // The pool goes: its mirror goes.
  ASSERT_TRUE(local_->Remove("ipaddresspools", "metallb-system", "edge-pool"));
  ASSERT_TRUE(Eventually([&] { return !mirror().has_value(); }));
  EXPECT_TRUE(plan_->Get("loadbalancerpools", "", "edge-1-other"));
}

// While the agent's webhook is busy (a burst of Service reviews), the changes of its
// Services are held, but a MetalLB pool's mirror follows the pool at once: the
// management cluster judges the plan against it.
TEST_F(AgentTest, APoolsMirrorFollowsItWhileTheWebhookIsBusy) {
  ManagerOptions o = Options();
  o.metallb = true;
  Start(o);
  testing_util::BusyReviewer reviewer(
      agent_->webhook_port(), ca_.cert_pem,
      testing_util::ReviewOf("u", "CREATE", testing_util::LbService("probe", "10.10.0.231"), true)
          .dump(),
      std::chrono::seconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // busy by now
  // Held ahead of the pool: a Service's change each.
  for (int i = 0; i < 6; ++i) {
    ASSERT_FALSE(
        local_
            ->Upsert("services", testing_util::LbService("s" + std::to_string(i),
                                                         "10.10.0." + std::to_string(100 + i)))
            .is_null());
  }
  ASSERT_FALSE(
      local_->Upsert("ipaddresspools", Pool("edge-pool", {"10.10.0.230-10.10.0.235"})).is_null());
  auto mirror = [&] { return plan_->Get("loadbalancerpools", "", "edge-1-edge-pool"); };
  bool mirrored = Eventually([&] { return mirror().has_value(); }, std::chrono::milliseconds(2000));
  std::string metrics = Probe("/metrics").body;
  reviewer.Stop();
  EXPECT_TRUE(mirrored) << "the pool's mirror waited for the burst";
  // Busy indeed: the Services' changes were held.
  double held = testing_util::Counter(metrics, "ipguard_status_writes_deferred_total");
  ASSERT_GE(held, 0) << metrics;
  EXPECT_GE(held, 6);
}

TEST(AgentFlags, TheManagementClusterAndAClusterNameAreRequiredAndChecked) {
  auto missing = ParseAgentFlags({"--cluster-name", "edge-1"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("--plan-kubeconfig"), std::string::npos);
  auto bad_name = ParseAgentFlags({"--plan-kubeconfig", "k", "--cluster-name", "Edge_1"});
  ASSERT_FALSE(bad_name.ok());
  EXPECT_NE(bad_name.error().find("DNS-1123"), std::string::npos);
  auto bad_ref = ParseAgentFlags(
      {"--plan-kubeconfig", "k", "--cluster-name", "edge-1", "--cluster-ref", "prod"});
  ASSERT_FALSE(bad_ref.ok());
  EXPECT_NE(bad_ref.error().find("NAMESPACE/NAME"), std::string::npos);
  auto unknown = ParseAgentFlags({"--plan-kubeconfig=k", "--cluster-name=edge-1", "--nope"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().find("--nope"), std::string::npos);

  auto ok = ParseAgentFlags({"--plan-kubeconfig=k", "--cluster-name=edge-1", "--cluster-ref",
                             "team-a/prod", "--metallb", "--claim-timeout", "2s"});
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_TRUE(ok->agent);
  EXPECT_EQ(ok->engine.cluster, "edge-1");
  EXPECT_EQ(ok->engine.cluster_ref, "team-a/prod");
  EXPECT_EQ(ok->lease_name, "ipguard-agent");
  EXPECT_TRUE(ok->metallb);
  EXPECT_EQ(ok->claim_timeout.count(), 2000);
  EXPECT_EQ(ParseAgentFlags({"--plan-kubeconfig=k", "--cluster-name=e", "--lease-name=x"})->lease_name,
            "x");
}

// The chart's Deployment in agent mode runs flags the agent takes, with the
// values it was given.
TEST(AgentFlags, TheChartsAgentDeploymentRunsFlagsTheAgentTakes) {
  auto chart = testing_util::RenderChart(
      "--set mode=agent --set agent.clusterName=edge-7 --set agent.clusterRef=clusters/edge-7 "
      "--set agent.planKubeconfig.secretName=plan --set metallb.enabled=true");
  ASSERT_FALSE(chart.empty()) << "helm template failed (run scripts/setup.sh)";
  json args;
  for (const json& d : chart) {
    if (d["kind"] == "Deployment") args = d["spec"]["template"]["spec"]["containers"][0]["args"];
  }
  ASSERT_TRUE(args.is_array() && !args.empty());
  EXPECT_EQ(args[0], "agent");
  std::vector<std::string> flags;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string a = args[i];
    flags.push_back(a == "$(POD_NAMESPACE)" ? "ipguard-system" : a);
  }
  auto parsed = ParseAgentFlags(flags);
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_TRUE(parsed->agent);
  EXPECT_EQ(parsed->engine.cluster, "edge-7");
  EXPECT_EQ(parsed->engine.cluster_ref, "clusters/edge-7");
  EXPECT_EQ(parsed->plan_kubeconfig, "/etc/ipguard/plan/kubeconfig");
  EXPECT_EQ(parsed->lease_name, "ipguard-agent");
  EXPECT_TRUE(parsed->metallb);
  EXPECT_TRUE(parsed->self_signed);
  EXPECT_EQ(parsed->webhook_configs, (std::vector<std::string>{"ipguard-resources", "ipguard-services"}));
}

}  // namespace
}  // namespace ipguard
