#include "webhook/admission.h"

#include <gtest/gtest.h>

#include "tests/unit/test_util.h"

namespace ipguard {
namespace {

using nlohmann::json;
using testing_util::Cluster;
using testing_util::Network;
using testing_util::Obj;
using testing_util::Yaml;

json Review(const std::string& op, const std::string& object_yaml, const std::string& old_yaml = "",
            bool dry_run = false, const std::string& uid = "uid-1") {
  json obj = object_yaml.empty() ? json(nullptr) : Yaml(object_yaml);
  json old = old_yaml.empty() ? json(nullptr) : Yaml(old_yaml);
  const json& any = obj.is_null() ? old : obj;
  std::string api = any["apiVersion"];
  std::string group = api.find('/') == std::string::npos ? "" : api.substr(0, api.find('/'));
  std::string version = api.substr(api.find('/') + 1);
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", uid},
            {"kind", {{"group", group}, {"version", version}, {"kind", any["kind"]}}},
            {"operation", op},
            {"dryRun", dry_run},
            {"object", obj},
            {"oldObject", old}}}};
}

class AdmissionTest : public testing::Test {
 protected:
  void SetUp() override {
    engine_.Upsert(Obj(Network("lnet-prod", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99")));
    engine_.Upsert(Obj(Cluster("team-a", "prod", "lnet-prod", "10.20.0.10")));
  }
  json Send(const json& review, AdmissionOutcome* outcome = nullptr) {
    AdmissionOutcome o = Admit(review.dump(), engine_, options_);
    if (outcome) *outcome = o;
    return json::parse(o.body);
  }
  json SendText(const std::string& body) { return json::parse(Admit(body, engine_, options_).body); }
  Engine engine_;
  AdmissionOptions options_;
};

TEST_F(AdmissionTest, AllowsAndEchoesUid) {
  json r = Send(Review("CREATE", Cluster("team-b", "dev", "lnet-prod", "10.20.0.11"), "", false, "abc-123"));
  EXPECT_EQ(r["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ(r["kind"], "AdmissionReview");
  EXPECT_EQ(r["response"]["uid"], "abc-123");
  EXPECT_EQ(r["response"]["allowed"], true);
  EXPECT_FALSE(r["response"].contains("status"));
}

TEST_F(AdmissionTest, DeniesWith403NamingBothSides) {
  AdmissionOutcome o;
  json r = Send(Review("CREATE", Cluster("team-b", "dev", "lnet-prod", "10.20.0.60")), &o);
  EXPECT_EQ(r["response"]["allowed"], false);
  EXPECT_EQ(r["response"]["status"]["code"], 403);
  EXPECT_EQ(r["response"]["status"]["message"],
            "controlPlaneIP 10.20.0.60 of WorkloadCluster team-b/dev is inside ipPools[0] "
            "10.20.0.50-10.20.0.99 of LogicalNetwork lnet-prod");
  EXPECT_EQ(o.verdict, "denied");
  EXPECT_EQ(o.kind, "WorkloadCluster");
  EXPECT_EQ(o.operation, "CREATE");
}

TEST_F(AdmissionTest, DryRunIsJudgedTheSame) {
  AdmissionOutcome o;
  json r = Send(Review("CREATE", Cluster("team-b", "dev", "lnet-prod", "10.20.0.10"), "", true), &o);
  EXPECT_EQ(r["response"]["allowed"], false);
  EXPECT_TRUE(o.dry_run);
}

TEST_F(AdmissionTest, WarningsGoToResponseWarnings) {
  json r = Send(Review("CREATE",
                       "apiVersion: ipguard.io/v1alpha1\nkind: LogicalNetwork\nmetadata: {name: lab}\n"
                       "spec: {vmSwitchName: s, ipAllocationMethod: DHCP, vlanId: 30}\n"));
  EXPECT_EQ(r["response"]["allowed"], true);
  ASSERT_EQ(r["response"]["warnings"].size(), 1u);
  EXPECT_NE(r["response"]["warnings"][0].get<std::string>().find("DHCP is not recommended for production"),
            std::string::npos);
}

TEST_F(AdmissionTest, UpdateImmutabilityAndDeleteProtection) {
  std::string before = Cluster("team-a", "prod", "lnet-prod", "10.20.0.10");
  std::string after = Cluster("team-a", "prod", "lnet-prod", "10.20.0.12");
  json r = Send(Review("UPDATE", after, before));
  EXPECT_EQ(r["response"]["allowed"], false);
  EXPECT_EQ(r["response"]["status"]["message"],
            "spec.controlPlaneIP is immutable: cannot change 10.20.0.10 to 10.20.0.12");
  json d = Send(Review("DELETE", "", Network("lnet-prod", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99")));
  EXPECT_EQ(d["response"]["allowed"], false);
  EXPECT_NE(d["response"]["status"]["message"].get<std::string>().find("still used by WorkloadCluster team-a/prod"),
            std::string::npos);
  json c = Send(Review("DELETE", "", before));
  EXPECT_EQ(c["response"]["allowed"], true);
}

TEST_F(AdmissionTest, ServicesAndMetalLB) {
  std::string cluster_ip =
      "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: d}\n"
      "spec: {type: ClusterIP, loadBalancerIP: 10.20.0.1}\n";
  EXPECT_EQ(Send(Review("CREATE", cluster_ip))["response"]["allowed"], true);
  std::string lb =
      "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: d}\n"
      "spec: {type: LoadBalancer, loadBalancerIP: 10.20.0.1}\n";
  json r = Send(Review("CREATE", lb));
  EXPECT_EQ(r["response"]["allowed"], false);
  EXPECT_NE(r["response"]["status"]["message"].get<std::string>().find("equals gateway 10.20.0.1"),
            std::string::npos);
  std::string pool =
      "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\n"
      "spec: {addresses: [10.20.0.0/26]}\n";
  EXPECT_EQ(Send(Review("CREATE", pool))["response"]["allowed"], true);  // --metallb off
  options_.metallb = true;
  json m = Send(Review("CREATE", pool));
  EXPECT_EQ(m["response"]["allowed"], false);
  EXPECT_NE(m["response"]["status"]["message"].get<std::string>().find("of IPAddressPool metallb-system/p"),
            std::string::npos);
}

TEST_F(AdmissionTest, NamespaceAndGeneratedNameComeFromTheRequest) {
  json review = Review("CREATE",
                       "apiVersion: ipguard.io/v1alpha1\nkind: WorkloadCluster\nmetadata: {generateName: c-}\n"
                       "spec: {logicalNetworkName: lnet-prod, controlPlaneIP: 10.20.0.10}\n");
  review["request"]["namespace"] = "team-z";
  json r = Send(review);
  EXPECT_EQ(r["response"]["allowed"], false);
  EXPECT_NE(r["response"]["status"]["message"].get<std::string>().find("WorkloadCluster team-z/c-(generated)"),
            std::string::npos);
}

// Every malformed request gets allowed=false, code 400 and a reason, and the
// uid whenever there is one.
TEST_F(AdmissionTest, BadInputGets400) {
  struct Case {
    std::string body;
    std::string reason;
    std::string uid;
  };
  json good = Review("CREATE", Cluster("team-b", "dev", "lnet-prod", "10.20.0.11"));
  auto with = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    return j.dump();
  };
  std::vector<Case> cases = {
      {"", "not JSON", ""},
      {"{", "not JSON", ""},
      {"[1,2]", "not an AdmissionReview object", ""},
      {"\"text\"", "not an AdmissionReview object", ""},
      {with([](json& j) { j["apiVersion"] = "admission.k8s.io/v1beta1"; }), "expected apiVersion", "uid-1"},
      {with([](json& j) { j["kind"] = "Pod"; }), "expected apiVersion", "uid-1"},
      {with([](json& j) { j.erase("request"); }), "request is missing", ""},
      {with([](json& j) { j["request"] = "x"; }), "request is missing", ""},
      {with([](json& j) { j["request"].erase("uid"); }), "request.uid is missing", ""},
      {with([](json& j) { j["request"]["uid"] = 5; }), "request.uid is missing", ""},
      {with([](json& j) { j["request"].erase("kind"); }), "request.kind is missing", "uid-1"},
      {with([](json& j) { j["request"]["operation"] = "PATCH"; }), "is not CREATE, UPDATE or DELETE", "uid-1"},
      {with([](json& j) { j["request"].erase("object"); }), "request.object is missing", "uid-1"},
      {with([](json& j) { j["request"]["object"] = "x"; }), "request.object is not an object", "uid-1"},
      {with([](json& j) { j["request"]["object"].erase("kind"); }), "kind is missing", "uid-1"},
      {with([](json& j) { j["request"]["object"]["spec"] = 7; }), "", "uid-1"},  // a field error: 403
  };
  for (const auto& c : cases) {
    json r = SendText(c.body);
    EXPECT_EQ(r["response"]["allowed"], false) << c.body;
    EXPECT_EQ(r["response"]["uid"], c.uid) << c.body;
    if (c.reason.empty()) {
      EXPECT_EQ(r["response"]["status"]["code"], 403) << c.body;
      continue;
    }
    EXPECT_EQ(r["response"]["status"]["code"], 400) << c.body;
    EXPECT_NE(r["response"]["status"]["message"].get<std::string>().find(c.reason), std::string::npos)
        << c.body << " -> " << r.dump();
  }
}

// "Input is read strictly": a key of the object under review written twice
// is a violation naming its path, ahead of what the rules find, whether the
// body reached the projecting reader or (non-ASCII) nlohmann/json's.
TEST_F(AdmissionTest, AKeyWrittenTwiceIsAViolationNamingItsPath) {
  std::string body = Review("CREATE", Cluster("team-b", "dev", "lnet-prod", "10.20.0.11")).dump();
  auto repeat = [&](const std::string& text, const std::string& key, const std::string& value) {
    std::string out = text;
    size_t at = out.find("\"" + key + "\":");
    EXPECT_NE(at, std::string::npos) << key;
    out.insert(at, "\"" + key + "\":" + value + ",");
    return out;
  };
  // Non-ASCII bytes, which the projecting reader leaves to nlohmann/json.
  auto non_ascii = [](const std::string& text) { return "{\"note\":\"caf\xc3\xa9\"," + text.substr(1); };
  // The first value is the colliding one; the last, which the rules read, is clean.
  std::string twice = repeat(body, "controlPlaneIP", "\"10.20.0.10\"");
  for (const std::string& text : {twice, non_ascii(twice)}) {
    SCOPED_TRACE(text);
    json r = SendText(text);
    EXPECT_EQ(r["response"]["allowed"], false);
    EXPECT_EQ(r["response"]["status"]["code"], 403);
    EXPECT_EQ(r["response"]["status"]["message"], "duplicate key spec.controlPlaneIP");
  }
  // A key repeated outside the object (the review's own) keeps the last, as
  // nlohmann/json does; the object is judged as usual.
  json r = SendText(repeat(body, "operation", "\"DELETE\""));
  EXPECT_EQ(r["response"]["allowed"], true) << r.dump();

  // A Service: only what the rules read counts.
  const std::string svc =
      "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
      "spec: {type: LoadBalancer, loadBalancerIP: 10.30.0.5, selector: {app: web}}\n";
  std::string svc_body = Review("CREATE", svc).dump();
  for (const std::string& text : {repeat(svc_body, "loadBalancerIP", "\"10.30.0.6\""),
                                  non_ascii(repeat(svc_body, "loadBalancerIP", "\"10.30.0.6\""))}) {
    json lb = SendText(text);
    EXPECT_EQ(lb["response"]["allowed"], false);
    EXPECT_EQ(lb["response"]["status"]["message"], "duplicate key spec.loadBalancerIP");
  }
  for (const std::string& text :
       {repeat(svc_body, "app", "\"api\""), non_ascii(repeat(svc_body, "app", "\"api\""))}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(SendText(text)["response"]["allowed"], true);
  }
}

// The response body is written by hand; it must be the JSON nlohmann/json
// would print for the same answer, byte for byte, whatever the strings hold.
TEST_F(AdmissionTest, ResponseBodyIsCanonicalJsonForAnyStrings) {
  const std::vector<std::string> uids = {
      "plain-uid", "quote\"and\\backslash", "tab\tnewline\n", std::string("nul\0x", 5),
      "caf\xc3\xa9", "bad\xff\xfeutf8", ""};
  for (const std::string& uid : uids) {
    // Allowed, denied (the message quotes the name), and a 400.
    json ok = Review("CREATE", Cluster("team-b", "dev", "lnet-prod", "10.20.0.11"), "", false, uid);
    json bad = Review("CREATE", Cluster("team-b", "dev\"\xff", "lnet-prod", "10.20.0.60"), "", false, uid);
    json dhcp = Review("CREATE",
                       "apiVersion: ipguard.io/v1alpha1\nkind: LogicalNetwork\nmetadata: {name: lab}\n"
                       "spec: {vmSwitchName: s, ipAllocationMethod: DHCP, vlanId: 30}\n",
                       "", false, uid);
    json broken = ok;
    broken["request"].erase("object");
    for (const json* review : {&ok, &bad, &dhcp, &broken}) {
      std::string body = Admit(review->dump(-1, ' ', false, json::error_handler_t::replace), engine_,
                               options_)
                             .body;
      json parsed = json::parse(body, nullptr, false);
      ASSERT_FALSE(parsed.is_discarded()) << body;
      EXPECT_EQ(body, parsed.dump(-1, ' ', false, json::error_handler_t::replace));
      EXPECT_EQ(parsed["response"]["uid"],
                json::parse(json(uid).dump(-1, ' ', false, json::error_handler_t::replace)))
          << "the uid is echoed (invalid UTF-8 replaced)";
    }
  }
}


// A bad value of megabytes is quoted cut to 253 bytes, so the denial (and the
// log line made from it) stays small whatever the input.
TEST_F(AdmissionTest, AHugeBadValueIsQuotedCut) {
  const std::string huge(2900000, '7');
  for (const auto& [kind, yaml] : std::vector<std::pair<std::string, std::string>>{
           {"IPReservation", "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: r}\n"
                             "spec: {addresses: ['" + huge + "']}\n"},
           {"Service", "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: a\n"
                       "  annotations: {metallb.io/loadBalancerIPs: '10.1.1.1," + huge + "'}\n"
                       "spec: {type: LoadBalancer, ports: [{port: 80}]}\n"},
           {"LogicalNetwork", "apiVersion: ipguard.io/v1alpha1\nkind: LogicalNetwork\nmetadata: {name: n}\n"
                              "spec: {vmSwitchName: s, ipAllocationMethod: Static, addressPrefix: '" + huge +
                                  "', gateway: 10.0.0.1, dnsServers: [10.0.0.2], ipPools: [{start: 10.0.0.5, end: 10.0.0.9}]}\n"}}) {
    AdmissionOutcome o;
    json r = Send(Review("CREATE", yaml), &o);
    EXPECT_EQ(r["response"]["allowed"], false) << kind;
    EXPECT_LT(o.body.size(), 4096u) << kind;
    std::string msg = r["response"]["status"]["message"];
    EXPECT_NE(msg.find("...\" (2900000 bytes)"), std::string::npos) << kind << ": " << msg.substr(0, 600);
  }
}

}  // namespace
}  // namespace ipguard
