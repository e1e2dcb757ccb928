#include "cmd/check.h"

#include <gtest/gtest.h>

#include <sstream>

namespace ipguard {
namespace {

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

CliRun Check(std::vector<std::string> args, const std::string& stdin_text = "") {
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  int code = CheckMain(args, in, out, err);
  return {code, out.str(), err.str()};
}

std::string Example(const char* name) { return std::string(IPGUARD_SOURCE_DIR) + "/examples/" + name; }

TEST(Check, CleanExamplePassesWithAPlan) {
  CliRun r = Check({Example("clean")});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("NETWORK"), std::string::npos);
  EXPECT_NE(r.out.find("Result: 0 violations"), std::string::npos) << r.out;
}

TEST(Check, BrokenExampleReportsEveryCommonMistake) {
  CliRun r = Check({"-o", "json", Example("broken")});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  std::vector<std::string> messages;
  for (const auto& v : j["violations"]) messages.push_back(v["message"].get<std::string>());
  auto has = [&](const std::string& a, const std::string& b) {
    for (const auto& m : messages) {
      if (m.find(a) != std::string::npos && m.find(b) != std::string::npos) return true;
    }
    return false;
  };
  std::string all;
  for (const auto& m : messages) all += "\n  " + m;
  EXPECT_TRUE(has("controlPlaneIP", "is inside ipPools")) << all;
  EXPECT_TRUE(has("controlPlaneIP", "equals controlPlaneIP")) << all;
  EXPECT_TRUE(has("of LoadBalancerPool", "ipPools")) << all;
  EXPECT_TRUE(has("of Service", "equals gateway")) << all;
  EXPECT_TRUE(has("capacity exceeded", "(needed")) << all;
  EXPECT_TRUE(has("spec.addressPrefix is not allowed for a DHCP network", "")) << all;
  EXPECT_EQ(j["summary"]["violations"], messages.size());
}

TEST(Check, StdinAndSkippedKinds) {
  CliRun r = Check({"-"},
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"
                "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: r}\n"
                "spec: {addresses: [10.0.0.0/24]}\n");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("1 object, 1 skipped (1 v1 ConfigMap)"), std::string::npos) << r.out;
}

TEST(Check, BadFieldIsAViolationNotUnreadable) {
  CliRun r = Check({"-"},
                "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: r}\n"
                "spec: {addresses: [010.0.0.0/24]}\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("spec.addresses[0] \"010.0.0.0/24\" is not a valid address block"),
            std::string::npos)
      << r.out;
}

TEST(Check, UnreadableInputNamesFileAndDocumentAndExits2) {
  CliRun r = Check({"-"}, "apiVersion: v1\nkind: ConfigMap\n---\nkey: [unclosed\n");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("-: document 2: not YAML"), std::string::npos) << r.err;
  CliRun not_object = Check({"-"}, "just a string\n");
  EXPECT_EQ(not_object.code, 2);
  EXPECT_NE(not_object.err.find("-: document 1: not a Kubernetes object"), std::string::npos)
      << not_object.err;
  CliRun missing = Check({"/nonexistent/file.yaml"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("no such file or directory"), std::string::npos);
}

TEST(Check, UsageErrorsExit2) {
  EXPECT_EQ(Check({}).code, 2);
  EXPECT_EQ(Check({"-o", "xml", "x"}).code, 2);
  EXPECT_EQ(Check({"--platform=aws", "x"}).code, 2);
  EXPECT_EQ(Check({"--capacity-policy", "Maybe", "x"}).code, 2);
  EXPECT_EQ(Check({"--bogus", "x"}).code, 2);
}

TEST(Check, DuplicateObjectsAreReported) {
  std::string r = "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: r}\n"
                  "spec: {addresses: [10.0.0.0/24]}\n";
  CliRun run = Check({"-"}, r + "---\n" + r);
  EXPECT_EQ(run.code, 1);
  EXPECT_NE(run.out.find("IPReservation r is defined more than once (first in -: document 1)"),
            std::string::npos)
      << run.out;
}

TEST(Check, PlatformAndCapacityFlags) {
  std::string net =
      "apiVersion: ipguard.io/v1alpha1\nkind: LogicalNetwork\nmetadata: {name: n}\n"
      "spec: {vmSwitchName: s, ipAllocationMethod: Static, addressPrefix: 10.0.0.0/24, gateway: "
      "10.0.0.1, dnsServers: [10.0.0.1], ipPools: [{start: 10.0.0.10, end: 10.0.0.12}]}\n";
  std::string big =
      "---\napiVersion: ipguard.io/v1alpha1\nkind: WorkloadCluster\nmetadata: {name: c}\n"
      "spec: {logicalNetworkName: n, controlPlaneIP: 10.0.0.100, nodePools: [{name: a, count: 5}]}\n";
  EXPECT_EQ(Check({"-"}, net + big).code, 1);
  CliRun warn = Check({"--capacity-policy=Warn", "-"}, net + big);
  EXPECT_EQ(warn.code, 0) << warn.out;
  EXPECT_NE(warn.out.find("(needed 7, available 3)"), std::string::npos) << warn.out;
  CliRun vmware = Check({"--platform", "vmware", "-"}, net);
  EXPECT_EQ(vmware.code, 1);
  EXPECT_NE(vmware.out.find("only DHCP logical networks are supported on VMware"), std::string::npos);
}

}  // namespace
}  // namespace ipguard

namespace ipguard {
namespace {

// Found by fuzz_manifest: a name that is not UTF-8 must not break -o json.
TEST(Check, JsonOutputSurvivesInvalidUtf8) {
  CliRun r = Check({"-o", "json", "-"},
                   "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: \"r\xe7\"}\n"
                   "spec: {addresses: [10.0.0.0/24]}\n");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::accept(r.out)) << r.out;
}

}  // namespace
}  // namespace ipguard
