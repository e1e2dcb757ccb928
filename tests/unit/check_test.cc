#include "cmd/check.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/unit/test_util.h"

namespace ipguard {
namespace {

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

CliRun Check(std::vector<std::string> args, const std::string& stdin_text = "",
             const ClusterReader& cluster = nullptr) {
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  int code = CheckMain(args, in, out, err, cluster);
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
  CliRun missing = Check({"/nonexistent/file.yaml"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("no such file or directory"), std::string::npos);
}

// A directory of a repository holds more than manifests: a CI workflow or a values file is
// skipped and counted, in every output format alike, and the rest is still checked.
TEST(Check, DocumentsThatAreNotKubernetesObjectsAreSkippedAndCounted) {
  const std::string input =
      "name: ci\non: [push]\njobs: {build: {runs-on: ubuntu-latest}}\n---\njust a string\n---\n"
      "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: r}\n"
      "spec: {addresses: [10.0.0.0/24]}\n";
  CliRun table = Check({"-"}, input);
  EXPECT_EQ(table.code, 0) << table.out << table.err;
  EXPECT_NE(table.out.find("1 object, 2 skipped (2 not Kubernetes objects)"), std::string::npos)
      << table.out;
  CliRun j = Check({"-ojson", "-"}, input);
  EXPECT_EQ(j.code, 0) << j.err;
  auto report = nlohmann::json::parse(j.out);
  EXPECT_EQ(report["summary"]["skipped"], 2);
  EXPECT_EQ(report["summary"]["notKubernetesObjects"],
            (nlohmann::json{"-: document 1", "-: document 2"}));
  EXPECT_EQ(report["summary"]["objects"], 1);
  CliRun strict = Check({"--strict", "-"}, input);
  EXPECT_EQ(strict.code, 1) << "--strict counts skipped documents";
}

// Unreadable text next to readable files: the readable ones are checked and reported in
// table mode too, the unreadable named, and the exit status is 2.
TEST(Check, UnreadableFileDoesNotHideTheRest) {
  CliRun r = Check({"-", "/nonexistent/file.yaml"},
                   "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: r}\n"
                   "spec: {addresses: [10.0.0.0/24]}\n");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("1 object"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("UNREADABLE (1)"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("/nonexistent/file.yaml: no such file or directory"), std::string::npos);
}

// Documents are read into objects as the reader goes; a file that turns out
// unreadable after some of its documents were read adds none of them.
TEST(Check, AFileUnreadableAfterItsFirstDocumentsAddsNothing) {
  const std::string reservation =
      "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: NAME}\n"
      "spec: {addresses: [10.0.0.0/24]}\n";
  auto named = [&](const std::string& name) {
    std::string r = reservation;
    r.replace(r.find("NAME"), 4, name);
    return r;
  };
  const std::string dir = ::testing::TempDir() + "/ipguard-check-streamed";
  std::filesystem::create_directories(dir);
  const std::string broken = dir + "/a-broken.yaml", good = dir + "/b-good.yaml";
  std::ofstream(broken) << named("first") + "---\n" + named("second") + "---\nkey: [unclosed\n";
  std::ofstream(good) << named("third");
  CliRun r = Check({"-ojson", broken, good});
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.code, 2) << r.err;
  auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["summary"]["objects"], 1) << r.out;
  const std::string reservations = report["everyDomain"]["reservations"].dump();
  EXPECT_NE(reservations.find("third"), std::string::npos) << reservations;
  EXPECT_EQ(reservations.find("first"), std::string::npos) << reservations;
  EXPECT_EQ(reservations.find("second"), std::string::npos) << reservations;
  EXPECT_NE(r.err.find("a-broken.yaml: document 3"), std::string::npos) << r.err;
}

TEST(Check, OutputFlagSpellings) {
  for (std::vector<std::string> args : {std::vector<std::string>{"-o", "json", "-"},
                                        {"-ojson", "-"}, {"--output=json", "-"},
                                        {"--output", "json", "-"}, {"-o=json", "-"}}) {
    CliRun r = Check(args, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
    EXPECT_EQ(r.code, 0) << args[0] << r.err;
    EXPECT_TRUE(nlohmann::json::accept(r.out)) << args[0] << ": " << r.out;
  }
  EXPECT_EQ(Check({"-oxml", "-"}).code, 2);
}

// Two files whose objects collide: the violation names where the other side came from.
TEST(Check, AViolationNamesTheOtherSidesFileAndDocument) {
  std::string dir = ::testing::TempDir() + "/ipguard-check-sides";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/a.yaml")
      << "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: infra}\n"
         "spec: {addresses: [10.0.0.0/24]}\n";
  std::ofstream(dir + "/b.yaml")
      << "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"
         "apiVersion: ipguard.io/v1alpha1\nkind: LoadBalancerPool\nmetadata: {name: lb}\n"
         "spec: {addresses: [10.0.0.10-10.0.0.20]}\n";
  CliRun table = Check({dir});
  EXPECT_EQ(table.code, 1);
  EXPECT_NE(table.out.find(dir + "/b.yaml #2 LoadBalancerPool lb: addresses[0] 10.0.0.10-10.0.0.20 "
                                 "of LoadBalancerPool lb overlaps addresses[0] 10.0.0.0/24 of "
                                 "IPReservation infra (other side: " + dir + "/a.yaml #1)"),
            std::string::npos)
      << table.out;
  CliRun j = Check({"-o", "json", dir});
  auto v = nlohmann::json::parse(j.out)["violations"][0];
  EXPECT_EQ(v["source"], dir + "/b.yaml");
  EXPECT_EQ(v["document"], 2);
  EXPECT_EQ(v["other"], (nlohmann::json{{"source", dir + "/a.yaml"}, {"document", 1},
                                        {"object", "IPReservation infra"}}));
  std::filesystem::remove_all(dir);
}

// "Input is read strictly": a key written twice is a violation naming its
// path, and the value kept is the last one (as kubectl would send it).
TEST(Check, ARepeatedKeyIsAViolationNamingItsPath) {
  CliRun r = Check({"-o", "json", "-"},
                   "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: r}\n"
                   "spec:\n  addresses: [10.0.0.1]\n  addresses: [10.0.0.2]\n");
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["violations"].size(), 1u) << r.out;
  EXPECT_EQ(j["violations"][0]["message"], "duplicate key spec.addresses");
  EXPECT_EQ(j["violations"][0]["object"], "IPReservation r");
  EXPECT_EQ(j["summary"]["violations"], 1);

  CliRun clean = Check({"-"}, "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\n"
                              "metadata: {name: r}\nspec:\n  addresses: [10.0.0.1]\n");
  EXPECT_EQ(clean.code, 0) << clean.out;
}

// A plan written with a merge key is the plan kubectl would apply: valid,
// not "vmSwitchName is required".
TEST(Check, MergeKeysAreMergedAsKubectlMergesThem) {
  const std::string base =
      "apiVersion: ipguard.io/v1alpha1\nkind: LogicalNetwork\nmetadata: {name: lnet-a}\n"
      "spec:\n  <<: &base\n    ipAllocationMethod: Static\n    vmSwitchName: sw\n"
      "    dnsServers: [10.0.0.2]\n    gateway: 10.0.0.1\n  vlanId: 10\n"
      "  addressPrefix: 10.0.0.0/24\n  ipPools: [{start: 10.0.0.10, end: 10.0.0.50}]\n";
  CliRun r = Check({"-o", "json", "-"}, base);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["networks"][0]["vlanId"], 10);
  EXPECT_EQ(j["networks"][0]["ipAllocationMethod"], "Static");
}

// A <Kind>List is read item by item, and each message says which item.
TEST(Check, AKindListIsReadItemByItemAndItemsAreNamed) {
  std::string dir = ::testing::TempDir() + "/ipguard-check-list";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/plan.yaml")
      << "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: infra}\n"
         "spec: {addresses: [10.0.0.0/24]}\n---\n"
         "apiVersion: ipguard.io/v1alpha1\nkind: LoadBalancerPoolList\nitems:\n"
         "- apiVersion: ipguard.io/v1alpha1\n  kind: LoadBalancerPool\n  metadata: {name: ok}\n"
         "  spec: {addresses: [10.1.0.10-10.1.0.20]}\n"
         "- apiVersion: ipguard.io/v1alpha1\n  kind: LoadBalancerPool\n  metadata: {name: bad}\n"
         "  spec: {addresses: [10.0.0.10-10.0.0.20]}\n"
         "- apiVersion: ipguard.io/v1alpha1\n  kind: LoadBalancerPool\n  metadata: {name: ok}\n"
         "  spec: {addresses: [10.2.0.10-10.2.0.20]}\n";
  CliRun table = Check({dir});
  EXPECT_EQ(table.code, 1) << table.out;
  EXPECT_NE(table.out.find("ipguard check: 4 objects"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(dir + "/plan.yaml #2 item 2 LoadBalancerPool bad: addresses[0] "
                                 "10.0.0.10-10.0.0.20 of LoadBalancerPool bad overlaps "
                                 "addresses[0] 10.0.0.0/24 of IPReservation infra (other side: " +
                                 dir + "/plan.yaml #1)"),
            std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("LoadBalancerPool ok is defined more than once (first in " + dir +
                           "/plan.yaml: document 2, item 1)"),
            std::string::npos)
      << table.out;
  auto j = nlohmann::json::parse(Check({"-o", "json", dir}).out);
  ASSERT_EQ(j["violations"].size(), 2u) << j.dump(1);
  EXPECT_EQ(j["violations"][0]["item"], 2);
  EXPECT_EQ(j["violations"][0]["document"], 2);
  EXPECT_EQ(j["violations"][1]["item"], 3);
  std::string junit = Check({"-o", "junit", dir}).out;
  EXPECT_NE(junit.find("name=\"LoadBalancerPool bad (document 2, item 2)\""), std::string::npos)
      << junit;
  std::filesystem::remove_all(dir);
}

// The JSON report is written part by part; it is byte for byte what
// nlohmann/json would print for the whole document, non-UTF-8 included.
TEST(Check, StreamedJsonIsWhatDumpWouldWrite) {
  for (const std::string& input :
       {Example("broken"), Example("clean"), std::string(IPGUARD_SOURCE_DIR) + "/tests/fixtures"}) {
    SCOPED_TRACE(input);
    CliRun r = Check({"-o", "json", input});
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(r.out, j.dump(2) + "\n");
  }
  CliRun empty = Check({"-o", "json", "-"}, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
  EXPECT_EQ(empty.out, nlohmann::json::parse(empty.out).dump(2) + "\n");
  // Items of a List, quotes, control characters, UTF-8 and bytes that are
  // not UTF-8 in what the entries quote.
  CliRun items = Check({"-o", "json", "-"},
                       "apiVersion: v1\nkind: List\nitems:\n"
                       "- {apiVersion: ipguard.io/v1alpha1, kind: IPReservation, metadata: {name: a},"
                       " spec: {addresses: [10.0.0.0/24]}}\n"
                       "- {apiVersion: ipguard.io/v1alpha1, kind: IPReservation, metadata: {name: \"b\\\"\\t\"},"
                       " spec: {addresses: [\"10.0.0.1\\xe9\"], vlanId: \"caf\xc3\xa9\"}}\n"
                       "- {apiVersion: ipguard.io/v1alpha1, kind: LoadBalancerPool, metadata: {name: c},"
                       " spec: {addresses: [10.0.0.5]}}\n");
  EXPECT_NE(items.out.find("\"item\": 3"), std::string::npos) << items.out;
  EXPECT_EQ(items.out, nlohmann::json::parse(items.out).dump(2) + "\n");
  std::string raw = "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: r}\n"
                    "spec: {addresses: [\"10.0.0.1\xff\"]}\n";
  CliRun invalid = Check({"-o", "json", "-"}, raw);
  EXPECT_EQ(invalid.out, nlohmann::json::parse(invalid.out).dump(2) + "\n");
  CliRun bad = Check({"-o", "json", "-"},
                     "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: \"r\\xff\"}\n"
                     "spec: {addresses: [10.0.0.1]}\n");
  auto j = nlohmann::json::parse(bad.out);
  EXPECT_EQ(bad.out, j.dump(2) + "\n");
}

// ipguard check writes each object's lines as it is judged (ReportWriter);
// the result is what the report, judged whole and written after, reads.
TEST(Check, TheStreamedReportIsTheStoredOne) {
  const std::string dir = Example("broken");
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<Document> docs;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_TRUE(ParseManifests(text, f.string(), &docs).ok());
  }
  CheckReport report = RunRules(docs, Options());
  EXPECT_GT(report.violations, 0);
  EXPECT_EQ(Check({dir}).out, RenderTable(report));
  EXPECT_EQ(Check({"-q", dir}).out, RenderTable(report, true));
  EXPECT_EQ(Check({"-o", "json", dir}).out, RenderJson(report).dump(2) + "\n");
  EXPECT_EQ(Check({"-o", "junit", dir}).out, RenderJunit(report));
  EXPECT_EQ(Check({"-o", "junit", "--strict", dir}).out, RenderJunit(report, true));
  // Handed out as judged, stored without messages, counted the same.
  int seen = 0;
  CheckReport streamed = RunRules(docs, Options(), nullptr, [&](const CheckReport&, const ObjectResult& r) {
    seen += static_cast<int>(r.verdict.ViolationCount());
  });
  EXPECT_EQ(seen, report.violations);
  EXPECT_EQ(streamed.violations, report.violations);
  EXPECT_EQ(streamed.warnings, report.warnings);
  for (const auto& r : streamed.results) EXPECT_TRUE(r.verdict.violations.empty());
}

// A report larger than what is held in memory (8 MB) goes to a temporary
// file as records and comes back line for line: every violation the rules
// found, with its place and other side, in order.
TEST(Check, AReportLargerThanMemoryComesBackLineForLine) {
  std::string text;
  for (int i = 0; i < 2500; ++i) {
    text += "apiVersion: v1\nkind: Service\nmetadata: {name: svc-" + std::to_string(i) +
            ", namespace: team-a}\nspec: {type: LoadBalancer, loadBalancerIP: 10.0.0.5, "
            "ports: [{port: 80}]}\n---\n";
  }
  const std::string dir = ::testing::TempDir() + "/ipguard-check-large";
  std::filesystem::create_directories(dir);
  const std::string file = dir + "/services.yaml";
  std::ofstream(file) << text;
  std::vector<Document> docs;
  ASSERT_TRUE(ParseManifests(text, file, &docs).ok());
  CheckReport report = RunRules(docs, Options());  // stored: every message kept
  std::string expected;
  for (const ObjectResult& r : report.results) {
    for (size_t i = 0; i < r.verdict.violations.size(); ++i) {
      expected += "  " + file + " #" + std::to_string(r.document) + " " + r.object + ": " +
                  r.verdict.violations[i];
      for (const auto& [index, origin] : r.others) {
        if (index == i) expected += " (other side: " + file + " #" +
                                    std::to_string(report.results[origin.result].document) + ")";
      }
      expected += "\n";
    }
  }
  ASSERT_GT(expected.size(), size_t{10} << 20);
  CliRun r = Check({"-q", file});
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.code, 1);
  const std::string head = "VIOLATIONS (" + std::to_string(report.violations) + ")\n";
  ASSERT_EQ(r.out.rfind(head, 0), 0u) << r.out.substr(0, 200);
  const std::string listed = r.out.substr(head.size(), expected.size());
  EXPECT_TRUE(listed == expected) << "the report differs from the rules' messages";
  EXPECT_EQ(r.out.substr(head.size() + expected.size(), 8), "\nResult:");
}

TEST(Check, QuietPrintsOnlyViolationsAndTheResult) {
  CliRun r = Check({"-q", Example("broken")});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out.find("NETWORK"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("WARNINGS"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.rfind("VIOLATIONS (", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\nResult: "), std::string::npos) << r.out;
  CliRun clean = Check({"-q", Example("clean")});
  EXPECT_EQ(clean.code, 0);
  EXPECT_EQ(clean.out.rfind("Result: 0 violations", 0), 0u) << clean.out;
}

TEST(Check, StrictCountsWarnings) {
  const std::string dhcp =
      "apiVersion: ipguard.io/v1alpha1\nkind: LogicalNetwork\nmetadata: {name: lab}\n"
      "spec: {vmSwitchName: sw, ipAllocationMethod: DHCP}\n";
  EXPECT_EQ(Check({"-"}, dhcp).code, 0) << "a DHCP network is admitted with a warning";
  EXPECT_EQ(Check({"--strict", "-"}, dhcp).code, 1);
  CliRun j = Check({"--strict", "-o", "json", "-"}, dhcp);
  EXPECT_EQ(nlohmann::json::parse(j.out)["summary"]["exitCode"], 1);
}

// JUnit XML: one test case per object; the broken ones fail with their violations.
TEST(Check, JunitReportsOneCasePerObject) {
  CliRun r = Check({"-o", "junit", Example("broken")});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("<testsuite name=\"ipguard check\""), std::string::npos);
  size_t cases = 0, failures = 0;
  for (size_t at = 0; (at = r.out.find("<testcase ", at)) != std::string::npos; ++at) ++cases;
  for (size_t at = 0; (at = r.out.find("<failure ", at)) != std::string::npos; ++at) ++failures;
  CliRun j = Check({"-o", "json", Example("broken")});
  auto report = nlohmann::json::parse(j.out);
  EXPECT_EQ(cases, report["summary"]["objects"].get<size_t>());
  EXPECT_GT(failures, 0u);
  EXPECT_NE(r.out.find("failures=\"" + std::to_string(failures) + "\""), std::string::npos);
  EXPECT_EQ(r.out.find("<failure message=\"\""), std::string::npos) << "every failure says why";
  // Text with markup characters is escaped.
  CliRun odd = Check({"-o", "junit", "-"},
                     "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: r}\n"
                     "spec: {addresses: [\"<b>&x\"]}\n");
  EXPECT_EQ(odd.code, 1);
  EXPECT_NE(odd.out.find("&lt;b&gt;&amp;x"), std::string::npos) << odd.out;
  EXPECT_EQ(odd.out.find("<b>"), std::string::npos) << odd.out;
}

// One of ipguard's kinds at a version it does not serve is a violation, not a skipped kind.
TEST(Check, AnUnservedVersionOfAnIpguardKindIsAViolation) {
  CliRun r = Check({"-"}, "apiVersion: ipguard.io/v9\nkind: LogicalNetwork\nmetadata: {name: x}\n"
                          "spec: {vmSwitchName: sw, ipAllocationMethod: DHCP}\n");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("apiVersion \"ipguard.io/v9\" is not served: LogicalNetwork is ipguard.io/v1alpha1"),
            std::string::npos)
      << r.out;
}

TEST(Check, UsageErrorsExit2) {
  EXPECT_EQ(Check({}).code, 2);
  EXPECT_EQ(Check({"-o", "xml", "x"}).code, 2);
  EXPECT_EQ(Check({"--platform=aws", "x"}).code, 2);
  EXPECT_EQ(Check({"--capacity-policy", "Maybe", "x"}).code, 2);
  EXPECT_EQ(Check({"--bogus", "x"}).code, 2);
  // A flag that ends the line without its value says so.
  CliRun missing = Check({"x", "--platform"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("--platform needs a value"), std::string::npos) << missing.err;
  EXPECT_NE(Check({"-o"}).err.find("-o needs a value"), std::string::npos);
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
  // A violation (no such name is a Kubernetes name), in a report that stays JSON.
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(nlohmann::json::accept(r.out)) << r.out;
}

}  // namespace
}  // namespace ipguard

namespace ipguard {
namespace {

using testing_util::Cluster;
using testing_util::Network;
using testing_util::Yaml;

// A cluster holding lnet-prod (pool 10.20.0.50-99, gateway .1) and
// team-a/prod (control plane 10.20.0.10), as --from-cluster reads it.
struct FakeCluster {
  std::vector<std::string> objects = {
      Network("lnet-prod", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"),
      Cluster("team-a", "prod", "lnet-prod", "10.20.0.10"),
      "apiVersion: v1\nkind: Service\nmetadata: {name: internal, namespace: shop}\n"
      "spec: {type: ClusterIP, clusterIP: 10.96.0.5}\n"};
  std::string kubeconfig, context;
  int reads = 0;
  ClusterReader Reader() {
    return [this](const std::string& k, const std::string& c,
                  const std::function<void(nlohmann::json&)>& on_object) {
      ++reads;
      kubeconfig = k;
      context = c;
      for (const auto& o : objects) {
        nlohmann::json j = Yaml(o);
        on_object(j);
      }
      return Status::Ok();
    };
  }
};

// Checking only the file a change touches: judged against the live plan,
// not an empty cluster where its network would be "not found".
TEST(CheckFromCluster, AChangedFileIsJudgedAgainstTheLivePlan) {
  FakeCluster cluster;
  const std::string change = Cluster("team-b", "dev", "lnet-prod", "10.20.0.11");
  CliRun alone = Check({"-"}, change);
  EXPECT_EQ(alone.code, 1) << alone.out;
  EXPECT_NE(alone.out.find("not found"), std::string::npos) << alone.out;

  CliRun live = Check({"--from-cluster", "-"}, change, cluster.Reader());
  EXPECT_EQ(live.code, 0) << live.out << live.err;
  EXPECT_NE(live.out.find("ipguard check: 1 object over 2 in the cluster"), std::string::npos)
      << live.out;
  EXPECT_NE(live.out.find("CLUSTERS"), std::string::npos);
  EXPECT_EQ(cluster.reads, 1);
  EXPECT_EQ(cluster.kubeconfig, "");
  EXPECT_EQ(cluster.context, "");
}

TEST(CheckFromCluster, ACollisionWithALiveObjectNamesItAsInTheCluster) {
  FakeCluster cluster;
  const std::string change = Cluster("team-b", "dev", "lnet-prod", "10.20.0.10");
  CliRun table = Check({"--from-cluster", "--kubeconfig", "/k/config", "--context=prod", "-"},
                       change, cluster.Reader());
  EXPECT_EQ(table.code, 1) << table.out << table.err;
  EXPECT_NE(table.out.find("equals controlPlaneIP 10.20.0.10 of WorkloadCluster team-a/prod "
                           "(other side: in the cluster)"),
            std::string::npos)
      << table.out;
  EXPECT_EQ(cluster.kubeconfig, "/k/config");
  EXPECT_EQ(cluster.context, "prod");
  const std::string text = Check({"-o", "json", "--from-cluster", "-"}, change, cluster.Reader()).out;
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(text, j.dump(2) + "\n");
  ASSERT_EQ(j["violations"].size(), 1u) << j.dump(1);
  EXPECT_EQ(j["violations"][0]["other"],
            (nlohmann::json{{"inCluster", true}, {"object", "WorkloadCluster team-a/prod"}}));
  EXPECT_EQ(j["summary"]["fromCluster"], 2);
}

// An object of the input with the identity of a live one replaces it, and
// is judged as its update: an immutable field may not change, and the old
// version is not a collision with the new.
TEST(CheckFromCluster, TheInputReplacesLiveObjectsAndIsJudgedAsAnUpdate) {
  FakeCluster cluster;
  CliRun same = Check({"--from-cluster", "-"}, Cluster("team-a", "prod", "lnet-prod", "10.20.0.10"),
                      cluster.Reader());
  EXPECT_EQ(same.code, 0) << same.out;
  EXPECT_NE(same.out.find("1 object over 1 in the cluster"), std::string::npos) << same.out;

  CliRun moved = Check({"--from-cluster", "-"}, Cluster("team-a", "prod", "lnet-prod", "10.20.0.12"),
                       cluster.Reader());
  EXPECT_EQ(moved.code, 1) << moved.out;
  EXPECT_NE(moved.out.find("immutable"), std::string::npos) << moved.out;

  // The network changed so that the live cluster's control plane falls in its pool.
  CliRun net = Check({"--from-cluster", "-"},
                     Network("lnet-prod", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.5", "10.20.0.99"),
                     cluster.Reader());
  EXPECT_EQ(net.code, 1) << net.out;
  EXPECT_NE(net.out.find("(other side: in the cluster)"), std::string::npos) << net.out;
}

TEST(CheckFromCluster, ErrorsAndMisuseExit2) {
  FakeCluster cluster;
  CliRun no_flag = Check({"--kubeconfig", "/k", "-"}, "", cluster.Reader());
  EXPECT_EQ(no_flag.code, 2);
  EXPECT_NE(no_flag.err.find("--kubeconfig is read only with --from-cluster"), std::string::npos);
  EXPECT_EQ(Check({"--context", "x", "-"}, "", cluster.Reader()).code, 2);
  CliRun unwired = Check({"--from-cluster", "-"}, "");
  EXPECT_EQ(unwired.code, 2);
  EXPECT_NE(unwired.err.find("not available"), std::string::npos);
  CliRun down = Check({"--from-cluster", "-"}, "",
                      [](const std::string&, const std::string&,
                         const std::function<void(nlohmann::json&)>&) {
                        return Status::Error("cannot list ipguard.io/v1alpha1 logicalnetworks: 403 Forbidden");
                      });
  EXPECT_EQ(down.code, 2);
  EXPECT_EQ(down.out, "");
  EXPECT_NE(down.err.find("ipguard check: --from-cluster: cannot list ipguard.io/v1alpha1 "
                          "logicalnetworks: 403 Forbidden"),
            std::string::npos)
      << down.err;
}

}  // namespace
}  // namespace ipguard
