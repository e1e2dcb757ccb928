// The claim writer against scripted API answers: a claim created, one the
// holder has already, one another holder has, a claim that goes between the
// create and the read, API errors and the deadline; and the small parsers
// the webhook's claims need (the call's timeout, who ipguard is).
#include "webhook/claims.h"

#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>

#include "core/objects.h"
#include "kube/config.h"
#include "tests/unit/fake_transport.h"
#include "webhook/certs.h"
#include "webhook/handler.h"

namespace ipguard::webhook {
namespace {

using nlohmann::json;

constexpr char kClaims[] = "/apis/ipguard.io/v1alpha1/ipclaims";

WantedClaim Wanted(const std::string& address, const std::string& holder_name,
                   const std::string& cluster = "") {
  auto ip = ParseIp(address);
  EXPECT_TRUE(ip.ok());
  WantedClaim c;
  c.address = *ip;
  c.vlan_id = 10;
  c.name = ClaimName(c.vlan_id, c.address);
  c.field = FieldLabel("controlPlaneIP");
  c.holder = {cluster, "ipguard.io/v1alpha1", "WorkloadCluster", "team-a", holder_name, "u-1"};
  return c;
}

std::string Stored(const WantedClaim& c) {
  json obj = ClaimObject(c);
  obj["metadata"]["resourceVersion"] = "7";
  return obj.dump();
}

class ClaimWriterTest : public testing::Test {
 protected:
  kube::FakeTransport transport_;
  kube::Client client_{&transport_};
  kube::FakeClock clock_;
  kube::Metrics metrics_;
  ClaimWriter writer_{&client_, &clock_, &metrics_};

  void SetUp() override { DescribeClaimMetrics(&metrics_); }
  kube::Clock::TimePoint Soon() { return clock_.Now() + std::chrono::seconds(2); }
  double Count(const std::string& result) {
    return metrics_.Value("ipguard_claim_writes_total", {{"result", result}});
  }
};

TEST_F(ClaimWriterTest, ACreatedClaimIsTheHoldersAndCarriesItsHolder) {
  WantedClaim c = Wanted("10.10.0.20", "prod");
  transport_.Script({"POST", kClaims, 201, Stored(c)});
  ClaimOutcome o = writer_.Write({c}, Soon());
  EXPECT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.created, 1);
  auto reqs = transport_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  json body = json::parse(reqs[0].body);
  EXPECT_EQ(body["metadata"]["name"], "vlan10-10.10.0.20");
  EXPECT_EQ(body["spec"]["address"], "10.10.0.20");
  EXPECT_EQ(body["spec"]["vlanId"], 10);
  EXPECT_EQ(body["spec"]["holder"]["name"], "prod");
  EXPECT_EQ(body["spec"]["holder"]["uid"], "u-1");
  // The request may not outlast the admission's deadline.
  EXPECT_LE(reqs[0].timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(Count("created"), 1);
}

TEST_F(ClaimWriterTest, AClaimTheHolderHasAlreadyIsFine) {
  WantedClaim c = Wanted("10.10.0.20", "prod");
  transport_.Script({"POST", kClaims, 409, R"({"kind":"Status","reason":"AlreadyExists"})"});
  // Another uid (the object was deleted and made again) is the same holder.
  WantedClaim earlier = c;
  earlier.holder.uid = "u-0";
  transport_.Script({"GET", std::string(kClaims) + "/vlan10-10.10.0.20", 200, Stored(earlier)});
  ClaimOutcome o = writer_.Write({c}, Soon());
  EXPECT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.existing, 1);
  EXPECT_EQ(Count("existing"), 1);
}

TEST_F(ClaimWriterTest, AClaimOfAnotherHolderRefusesNamingIt) {
  WantedClaim c = Wanted("10.10.0.20", "prod");
  WantedClaim theirs = Wanted("10.10.0.20", "payments", "edge-1");
  theirs.holder.kind = "Service";
  theirs.holder.ns = "shop";
  transport_.Script({"POST", kClaims, 409, R"({"kind":"Status","reason":"AlreadyExists"})"});
  transport_.Script({"GET", std::string(kClaims) + "/vlan10-10.10.0.20", 200, Stored(theirs)});
  ClaimOutcome o = writer_.Write({c}, Soon());
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.message,
            "controlPlaneIP 10.10.0.20 of WorkloadCluster team-a/prod is claimed by Service "
            "shop/payments in cluster edge-1 (IPClaim vlan10-10.10.0.20)");
  EXPECT_EQ(Count("taken"), 1);
}

TEST_F(ClaimWriterTest, AClaimThatGoesBetweenCreateAndReadIsCreatedAgain) {
  WantedClaim c = Wanted("10.10.0.20", "prod");
  transport_.Script({"POST", kClaims, 409, R"({"kind":"Status","reason":"AlreadyExists"})"});
  transport_.Script({"GET", std::string(kClaims) + "/vlan10-10.10.0.20", 404,
                     R"({"kind":"Status","reason":"NotFound"})"});
  transport_.Script({"POST", kClaims, 201, Stored(c)});
  ClaimOutcome o = writer_.Write({c}, Soon());
  EXPECT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.created, 1);
}

TEST_F(ClaimWriterTest, AnApiErrorRefusesAndGivesBackWhatWasCreated) {
  WantedClaim first = Wanted("10.10.0.20", "prod");
  WantedClaim second = Wanted("10.10.0.21", "prod");
  transport_.Script({"POST", kClaims, 201, Stored(first)});
  transport_.Script({"POST", kClaims, 403,
                     R"({"kind":"Status","reason":"Forbidden","message":"ipclaims is forbidden"})"});
  transport_.Script({"DELETE", std::string(kClaims) + "/vlan10-10.10.0.20", 200, "{}"});
  ClaimOutcome o = writer_.Write({first, second}, Soon());
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.message.find("controlPlaneIP 10.10.0.21 of WorkloadCluster team-a/prod: IPClaim "
                           "vlan10-10.10.0.21 could not be written ("),
            std::string::npos)
      << o.message;
  EXPECT_NE(o.message.find("forbidden"), std::string::npos) << o.message;
  EXPECT_NE(o.message.find("no address is admitted unclaimed"), std::string::npos);
  EXPECT_EQ(transport_.CountRequests("/ipclaims/vlan10-10.10.0.20"), 1u);  // the DELETE
}

TEST_F(ClaimWriterTest, NoAnswerAndNoTimeLeftBothRefuse) {
  WantedClaim c = Wanted("10.10.0.20", "prod");
  transport_.Script({"POST", kClaims, 0, "", {}, false, true});  // connection reset
  ClaimOutcome broken = writer_.Write({c}, Soon());
  EXPECT_FALSE(broken.ok);
  EXPECT_EQ(Count("timeout"), 1);
  ClaimOutcome late = writer_.Write({c}, clock_.Now());
  EXPECT_FALSE(late.ok);
  EXPECT_NE(late.message.find("no time left of the admission's deadline"), std::string::npos);
  EXPECT_EQ(transport_.requests().size(), 1u);  // the late one wrote nothing
}

TEST_F(ClaimWriterTest, ClaimAnswersFromItsOwnThreadAndRefusesOnceStopped) {
  WantedClaim c = Wanted("10.10.0.20", "prod");
  transport_.Script({"POST", kClaims, 201, Stored(c)});
  writer_.Start();
  std::promise<std::pair<ClaimOutcome, std::thread::id>> got;
  writer_.Claim({c}, Soon(), [&](ClaimOutcome o) {
    got.set_value({std::move(o), std::this_thread::get_id()});
  });
  auto [o, thread] = got.get_future().get();
  EXPECT_TRUE(o.ok) << o.message;
  EXPECT_NE(thread, std::this_thread::get_id());
  writer_.Stop();
  std::optional<ClaimOutcome> after;
  writer_.Claim({c}, Soon(), [&](ClaimOutcome x) { after = std::move(x); });
  ASSERT_TRUE(after.has_value());  // at once, on this thread
  EXPECT_FALSE(after->ok);
  EXPECT_NE(after->message.find("shutting down"), std::string::npos);
}

TEST(CallTimeoutTest, ReadsTheApiServersTimeout) {
  EXPECT_EQ(CallTimeout("/validate?timeout=10s"), std::chrono::milliseconds(10000));
  EXPECT_EQ(CallTimeout("/validate?x=1&timeout=1m30s"), std::chrono::milliseconds(90000));
  EXPECT_EQ(CallTimeout("/validate?timeout=500ms"), std::chrono::milliseconds(500));
  EXPECT_EQ(CallTimeout("/validate"), std::nullopt);
  EXPECT_EQ(CallTimeout("/validate?timeout=ten"), std::nullopt);
  EXPECT_EQ(CallTimeout("/validate?timeout=-5s"), std::nullopt);
  EXPECT_EQ(CallTimeout("/validate?timeout=99999h"), std::nullopt);
  EXPECT_EQ(kube::ParseDuration("2s"), std::chrono::milliseconds(2000));
  EXPECT_EQ(kube::ParseDuration(""), std::nullopt);
  EXPECT_EQ(kube::ParseDuration("5"), std::nullopt);
  EXPECT_EQ(kube::ParseRfc3339("2026-01-01T00:00:00Z"), 1767225600);
  EXPECT_EQ(kube::ParseRfc3339("2026-01-01T00:01:00.123456Z"), 1767225660);
  EXPECT_EQ(kube::ParseRfc3339(kube::FormatRfc3339(1767225601)), 1767225601);
  EXPECT_EQ(kube::ParseRfc3339("yesterday"), std::nullopt);
  EXPECT_EQ(kube::ParseRfc3339("2026-01-01 00:00:00Z"), std::nullopt);
}

TEST(UsernameTest, AServiceAccountTokenOrAClientCertificateNamesTheUser) {
  auto b64url = [](const std::string& s) {
    static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    int val = 0, bits = -6;
    for (unsigned char ch : s) {
      val = (val << 8) + ch;
      bits += 8;
      while (bits >= 0) {
        out.push_back(a[(val >> bits) & 0x3F]);
        bits -= 6;
      }
    }
    if (bits > -6) out.push_back(a[((val << 8) >> (bits + 8)) & 0x3F]);
    return out;
  };
  kube::RestConfig token;
  token.token = b64url(R"({"alg":"RS256"})") + "." +
                b64url(R"({"iss":"https://kubernetes.default.svc","sub":"system:serviceaccount:ipguard-system:ipguard"})") +
                ".c2ln";
  EXPECT_EQ(kube::UsernameOf(token), "system:serviceaccount:ipguard-system:ipguard");
  kube::RestConfig opaque;
  opaque.token = "0123456789abcdef";
  EXPECT_EQ(kube::UsernameOf(opaque), "");

  auto ca = certs::GenerateCA("ca", std::chrono::hours(1));
  ASSERT_TRUE(ca.ok());
  auto client = certs::GenerateClient(*ca, "admin", std::chrono::hours(1));
  ASSERT_TRUE(client.ok()) << client.error();
  kube::RestConfig cert;
  cert.client_cert_pem = client->cert_pem;
  EXPECT_EQ(kube::UsernameOf(cert), "admin");
  EXPECT_EQ(kube::UsernameOf(kube::RestConfig{}), "");
}

}  // namespace
}  // namespace ipguard::webhook
