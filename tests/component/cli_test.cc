// The built ipguard binary run as a user runs it: `ipguard check` and
// `ipguard import` start themselves again once to have glibc back their heap
// with huge pages (cmd/huge_pages.h); what they read and print is the same
// either way, standard input included.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

struct CliRun {
  int code = -1;
  std::string out;
};

// Runs the binary under `env` (env(1) words: VAR=value, -u VAR) with
// `args`, `input` on standard input.
CliRun RunIpguard(const std::string& env, const std::string& args, const std::string& input) {
  const std::string dir = ::testing::TempDir() + "/ipguard-cli";
  std::filesystem::create_directories(dir);
  // A file of this process and call: ctest runs the tests of this file in
  // processes of their own at the same time.
  static int calls = 0;
  const std::string in =
      dir + "/stdin-" + std::to_string(::getpid()) + "-" + std::to_string(++calls);
  std::ofstream(in) << input;
  const std::string command = "env " + env + " '" + IPGUARD_BINARY + "' " + args + " < '" + in + "'";
  CliRun r;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::filesystem::remove(in);
  return r;
}

const char kPlan[] =
    "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: infra}\n"
    "spec: {addresses: [10.0.0.0/24]}\n---\n"
    "apiVersion: ipguard.io/v1alpha1\nkind: LoadBalancerPool\nmetadata: {name: lb}\n"
    "spec: {addresses: [10.0.0.10-10.0.0.20]}\n";

TEST(Cli, CheckReadsStandardInputTheSameWhetherItStartsAgainOrNot) {
  CliRun plain = RunIpguard("IPGUARD_HUGE_PAGES=0", "check -o json -", kPlan);
  ASSERT_EQ(plain.code, 1) << plain.out;
  EXPECT_NE(plain.out.find("LoadBalancerPool lb"), std::string::npos) << plain.out;
  // As the machine decides (started again where its kernel's setting is madvise).
  CliRun restarted = RunIpguard("-u IPGUARD_HUGE_PAGES -u GLIBC_TUNABLES", "check -o json -", kPlan);
  EXPECT_EQ(restarted.code, plain.code);
  EXPECT_EQ(restarted.out, plain.out);
  // The user's own tunables are kept, and one that names hugetlb is left alone.
  CliRun given = RunIpguard("GLIBC_TUNABLES=glibc.malloc.tcache_count=0", "check -o json -", kPlan);
  EXPECT_EQ(given.out, plain.out);
  CliRun off = RunIpguard("GLIBC_TUNABLES=glibc.malloc.hugetlb=0", "check -o json -", kPlan);
  EXPECT_EQ(off.out, plain.out);
}

TEST(Cli, ImportAndUsageErrorsAreTheSameWhenStartedAgain) {
  const std::string lnet =
      "{\"type\": \"Microsoft.AzureStackHCI/logicalNetworks\", \"name\": \"lnet-a\", "
      "\"id\": \"/subscriptions/s/resourceGroups/g/providers/Microsoft.AzureStackHCI/logicalNetworks/lnet-a\", "
      "\"properties\": {\"vmSwitchName\": \"sw\", \"subnets\": [{\"properties\": {"
      "\"ipAllocationMethod\": \"Dynamic\", \"addressPrefix\": \"10.1.0.0/24\"}}]}}";
  CliRun plain = RunIpguard("IPGUARD_HUGE_PAGES=0", "import -", lnet);
  CliRun restarted = RunIpguard("-u IPGUARD_HUGE_PAGES -u GLIBC_TUNABLES", "import -", lnet);
  EXPECT_EQ(restarted.code, plain.code);
  EXPECT_EQ(restarted.out, plain.out);
  EXPECT_NE(plain.out.find("lnet-a"), std::string::npos) << plain.out;
  EXPECT_EQ(RunIpguard("-u GLIBC_TUNABLES", "check --no-such-flag", "").code, 2);
}

}  // namespace
