// The webhook end to end over real TLS on 127.0.0.1: every rule fixture
// replayed as an AdmissionReview through the HTTPS server and the admission
// handler the manager uses, dry runs, a bad-input corpus, and 1,000
// concurrent creates that claim one address.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "kube/clock.h"
#include "tests/component/tls_client.h"
#include "tests/fixture_cases.h"
#include "webhook/certs.h"
#include "webhook/handler.h"
#include "webhook/server.h"

namespace ipguard::webhook {
namespace {

using nlohmann::json;
using testing_util::HttpReply;
using testing_util::LoadCases;
using testing_util::RuleCase;
using testing_util::TestClient;
using testing_util::TestName;

// A TLS webhook server whose ClusterState a test can swap.
class WebhookServer {
 public:
  WebhookServer() {
    char tmpl[] = "/tmp/ipguard-webhook-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ca_ = *certs::GenerateCA("test-ca", std::chrono::hours(24));
    auto serving = *certs::GenerateServing(ca_, "ipguard-webhook", {"localhost"}, {"127.0.0.1"},
                                           std::chrono::hours(24));
    std::ofstream(dir_ + "/tls.crt") << serving.cert_pem;
    std::ofstream(dir_ + "/tls.key") << serving.key_pem;
    DescribeAdmissionMetrics(&metrics_);
    ServerOptions o;
    o.tls = true;
    o.cert_file = dir_ + "/tls.crt";
    o.key_file = dir_ + "/tls.key";
    o.threads = 2;
    server_ = std::make_unique<HttpServer>(o, [this](const ServerRequest& r) {
      std::lock_guard<std::mutex> l(mu_);  // only guards the swap; judging is the state's own lock
      return handler_->operator()(r);
    });
    Reset(Options{}, false);
    EXPECT_TRUE(server_->Start().ok());
  }
  ~WebhookServer() {
    server_->Stop();
    std::system(("rm -rf " + dir_).c_str());
  }

  kube::ClusterState* Reset(Options options, bool metallb) {
    std::lock_guard<std::mutex> l(mu_);
    state_ = std::make_unique<kube::ClusterState>(options, &clock_);
    handler_ =
        std::make_unique<AdmissionHandler>(state_.get(), &metrics_, AdmissionOptions{metallb});
    return state_.get();
  }

  int port() const { return server_->port(); }
  const std::string& ca() const { return ca_.cert_pem; }
  kube::Metrics& metrics() { return metrics_; }

 private:
  std::string dir_;
  certs::KeyPair ca_;
  kube::FakeClock clock_;
  kube::Metrics metrics_;
  std::mutex mu_;
  std::unique_ptr<kube::ClusterState> state_;
  std::unique_ptr<AdmissionHandler> handler_;
  std::unique_ptr<HttpServer> server_;
};

json Review(const std::string& uid, const std::string& op, const json* obj, const json* old_obj,
            bool dry_run = false) {
  const json& any = obj ? *obj : *old_obj;
  std::string api_version = any.value("apiVersion", "");
  size_t slash = api_version.find('/');
  std::string group = slash == std::string::npos ? "" : api_version.substr(0, slash);
  std::string version = slash == std::string::npos ? api_version : api_version.substr(slash + 1);
  json request = {
      {"uid", uid},
      {"kind", {{"group", group}, {"version", version}, {"kind", any.value("kind", "")}}},
      {"operation", op},
      {"dryRun", dry_run}};
  if (any.contains("metadata") && any["metadata"].contains("namespace")) {
    request["namespace"] = any["metadata"]["namespace"];
  }
  if (obj) request["object"] = *obj;
  if (old_obj) request["oldObject"] = *old_obj;
  return {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"request", request}};
}

class WebhookTest : public testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new WebhookServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static json Post(TestClient& c, const std::string& body) {
    HttpReply r = c.Request("POST", "/validate", body);
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
    json j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
    return j;
  }
  static WebhookServer* server_;
};
WebhookServer* WebhookTest::server_ = nullptr;

class WebhookFixture : public WebhookTest, public testing::WithParamInterface<RuleCase> {};

TEST_P(WebhookFixture, SameVerdictThroughTls) {
  const json& c = GetParam().spec;
  ASSERT_FALSE(c.contains("error"));
  Options options;
  if (c.contains("platform")) options.platform = *ParsePlatform(c["platform"].get<std::string>());
  if (c.contains("capacityPolicy")) {
    options.capacity_policy = *ParseCapacityPolicy(c["capacityPolicy"].get<std::string>());
  }
  kube::ClusterState* state = server_->Reset(options, true);
  for (const auto& e : c.value("existing", json::array())) state->Apply(kube::EventType::kAdded, e);
  const json* obj = c.contains("object") ? &c["object"] : nullptr;
  const json* old_obj = c.contains("oldObject") ? &c["oldObject"] : nullptr;
  std::string uid = "uid-" + GetParam().file + "-" + GetParam().name;
  TestClient client(server_->port(), true, server_->ca());
  ASSERT_EQ(client.Connect(), "");
  json reply = Post(client, Review(uid, c.value("operation", "CREATE"), obj, old_obj).dump());
  const json& resp = reply["response"];
  EXPECT_EQ(resp["uid"], uid);
  const json& expect = c["expect"];
  bool allowed = expect.value("allowed", true);
  ASSERT_EQ(resp["allowed"], allowed) << reply.dump(2);
  std::string message = resp.contains("status") ? resp["status"].value("message", "") : "";
  if (!allowed) {
    EXPECT_EQ(resp["status"]["code"], 403);
    EXPECT_EQ(resp["status"]["reason"], "Forbidden");
    for (const auto& v : expect.value("violations", json::array())) {
      EXPECT_NE(message.find(v.get<std::string>()), std::string::npos)
          << "missing: " << v << "\nin: " << message;
    }
    for (const auto& v : expect.value("contains", json::array())) {
      EXPECT_NE(message.find(v.get<std::string>()), std::string::npos)
          << "missing: " << v << "\nin: " << message;
    }
  }
  std::string warnings = resp.contains("warnings") ? resp["warnings"].dump() : "";
  for (const auto& w : expect.value("warnings", json::array())) {
    EXPECT_NE(warnings.find(w.get<std::string>()), std::string::npos) << "missing warning: " << w;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, WebhookFixture, testing::ValuesIn(LoadCases()), TestName);

json Lnet() {
  return {{"apiVersion", "ipguard.io/v1alpha1"},
          {"kind", "LogicalNetwork"},
          {"metadata", {{"name", "lnet"}, {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
          {"spec",
           {{"vmSwitchName", "sw"},
            {"ipAllocationMethod", "Static"},
            {"vlanId", 10},
            {"addressPrefix", "10.20.0.0/24"},
            {"gateway", "10.20.0.1"},
            {"dnsServers", {"10.20.0.1"}},
            {"ipPools", {{{"start", "10.20.0.50"}, {"end", "10.20.0.99"}}}}}}};
}

json Wlc(const std::string& name, const std::string& ip) {
  return {{"apiVersion", "ipguard.io/v1alpha1"},
          {"kind", "WorkloadCluster"},
          {"metadata", {{"name", name}, {"namespace", "team-a"}}},
          {"spec",
           {{"logicalNetworkName", "lnet"},
            {"controlPlaneIP", ip},
            {"nodePools", {{{"name", "np1"}, {"count", 1}}}}}}};
}

TEST_F(WebhookTest, DryRunIsJudgedTheSameAndHoldsNothing) {
  kube::ClusterState* state = server_->Reset(Options{}, false);
  state->Apply(kube::EventType::kAdded, Lnet());
  TestClient c(server_->port(), true, server_->ca());
  ASSERT_EQ(c.Connect(), "");
  json bad = Wlc("x", "10.20.0.60");  // inside the pool
  json r = Post(c, Review("u1", "CREATE", &bad, nullptr, true).dump());
  EXPECT_EQ(r["response"]["allowed"], false);
  EXPECT_NE(r["response"]["status"]["message"].get<std::string>().find("is inside ipPools[0]"),
            std::string::npos);
  json good = Wlc("y", "10.20.0.10");
  r = Post(c, Review("u2", "CREATE", &good, nullptr, true).dump());
  EXPECT_EQ(r["response"]["allowed"], true);
  EXPECT_EQ(state->pending(), 0u) << "a dry run changes nothing";
  json same = Wlc("z", "10.20.0.10");
  r = Post(c, Review("u3", "CREATE", &same, nullptr, true).dump());
  EXPECT_EQ(r["response"]["allowed"], true) << "the dry run held no address";
}

TEST_F(WebhookTest, OnlyNamedAdmittedObjectsAreHeld) {
  kube::ClusterState* state = server_->Reset(Options{}, false);
  state->Apply(kube::EventType::kAdded, Lnet());
  TestClient c(server_->port(), true, server_->ca());
  ASSERT_EQ(c.Connect(), "");
  json generated = Wlc("", "10.20.0.10");
  generated["metadata"].erase("name");
  generated["metadata"]["generateName"] = "auto-";
  json r = Post(c, Review("g", "CREATE", &generated, nullptr).dump());
  EXPECT_EQ(r["response"]["allowed"], true);
  EXPECT_EQ(state->pending(), 0u) << "the API server has yet to name it: nothing to hold";
  json named = Wlc("named", "10.20.0.11");
  r = Post(c, Review("n", "CREATE", &named, nullptr).dump());
  EXPECT_EQ(r["response"]["allowed"], true);
  EXPECT_EQ(state->pending(), 1u);
}

TEST_F(WebhookTest, BadInputGetsA400VerdictAndTheServerGoesOn) {
  server_->Reset(Options{}, false);
  json wlc = Wlc("ok", "10.20.0.10");
  std::vector<std::pair<std::string, std::string>> corpus = {
      {"{", "not JSON"},
      {"[]", "not an AdmissionReview object"},
      {R"({"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"a"}})",
       "expected apiVersion"},
      {R"({"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"a"}})",
       "expected apiVersion"},
      {R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"})", "request is missing"},
      {R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{}}})",
       "request.uid is missing"},
      {R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","operation":"CREATE","kind":{"group":"ipguard.io","version":"v1alpha1","kind":"WorkloadCluster"}}})",
       "request.object is missing"},
      {R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","operation":"CREATE","kind":{"group":"ipguard.io","version":"v1alpha1","kind":"WorkloadCluster"},"object":"text"}})",
       "not an object"},
      {R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}})",
       "uid"},
      {R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","operation":"EXPLODE","kind":{"group":"","version":"v1","kind":"Service"}}})",
       "is not CREATE, UPDATE or DELETE"},
      {std::string("\x00\xff\xfe", 3), "not JSON"},
  };
  TestClient c(server_->port(), true, server_->ca());
  ASSERT_EQ(c.Connect(), "");
  for (const auto& [body, why] : corpus) {
    json r = Post(c, body);
    ASSERT_TRUE(r.contains("response")) << body;
    EXPECT_EQ(r["response"]["allowed"], false) << body;
    EXPECT_EQ(r["response"]["status"]["code"], 400) << body;
    EXPECT_EQ(r["response"]["status"]["reason"], "BadRequest") << body;
    EXPECT_NE(r["response"]["status"]["message"].get<std::string>().find(why), std::string::npos)
        << body << " -> " << r.dump();
    // The next good request on the same connection is served.
    json ok = Post(c, Review("good", "CREATE", &wlc, nullptr, true).dump());
    EXPECT_EQ(ok["response"]["uid"], "good");
  }
  {
    TestClient big(server_->port(), true, server_->ca());
    ASSERT_EQ(big.Connect(), "");
    HttpReply r = big.Request("POST", "/validate", std::string(10 * 1024 * 1024, ' '));
    if (r.ok) {
      EXPECT_EQ(r.status, 413);
    }
  }
  EXPECT_GT(server_->metrics().Value("ipguard_admission_requests_total",
                                     {{"kind", ""}, {"operation", ""}, {"verdict", "error"}}),
            0);
  json after = Post(c, Review("after", "CREATE", &wlc, nullptr, true).dump());
  EXPECT_EQ(after["response"]["uid"], "after");
  EXPECT_NE(after["response"].value("status", json::object()).value("code", 0), 400);
}

TEST_F(WebhookTest, AThousandConcurrentCreatesOfOneAddressAdmitExactlyOne) {
  kube::ClusterState* state = server_->Reset(Options{}, false);
  state->Apply(kube::EventType::kAdded, Lnet());
  constexpr int kThreads = 20, kEach = 50;
  std::atomic<int> admitted{0}, denied{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      TestClient c(server_->port(), true, server_->ca());
      if (!c.Connect().empty()) {
        failed += kEach;
        return;
      }
      for (int i = 0; i < kEach; ++i) {
        json wlc = Wlc("c-" + std::to_string(t) + "-" + std::to_string(i), "10.20.0.10");
        HttpReply r = c.Request("POST", "/validate", Review("u", "CREATE", &wlc, nullptr).dump());
        json j = json::parse(r.body, nullptr, false);
        if (!r.ok || j.is_discarded()) {
          ++failed;
        } else if (j["response"]["allowed"] == true) {
          ++admitted;
        } else {
          ++denied;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(admitted.load(), 1);
  EXPECT_EQ(denied.load(), kThreads * kEach - 1);
}

}  // namespace
}  // namespace ipguard::webhook
