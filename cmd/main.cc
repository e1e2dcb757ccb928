// ipguard: wiring only. Every command lives in its own library.
#include <iostream>
#include <string>
#include <vector>

#include "cmd/check.h"
#include "cmd/huge_pages.h"
#include "cmd/import.h"
#include "cmd/live_plan.h"
#include "cmd/manager.h"

namespace {

const char kUsage[] =
    "usage: ipguard <command> [flags]\n"
    "  check PATH...   check manifests against the address rules (see ipguard check --help)\n"
    "  import PATH...  print the ipguard objects read from Azure resources, as YAML\n"
    "                  (see ipguard import --help)\n"
    "  manager         run the operator and webhook (see ipguard manager --help)\n"
    "  agent           run in a workload cluster against the management cluster's plan\n"
    "                  (see ipguard agent --help)\n"
    "  version         print the version\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  if (cmd == "check" || cmd == "import") ipguard::StartAgainWithHugePages(argv);
  if (cmd == "check") {
    return ipguard::CheckMain(args, std::cin, std::cout, std::cerr, ipguard::ReadLivePlanFrom);
  }
  if (cmd == "import") return ipguard::ImportMain(args, std::cin, std::cout, std::cerr);
  if (cmd == "manager") return ipguard::RunManager(args, std::cerr);
  if (cmd == "agent") return ipguard::RunAgent(args, std::cerr);
  if (cmd == "version" || cmd == "--version") {
    std::cout << "ipguard " << IPGUARD_VERSION << "\n";
    return 0;
  }
  if (cmd == "help" || cmd == "-h" || cmd == "--help") {
    std::cout << kUsage;
    return 0;
  }
  std::cerr << "ipguard: unknown command \"" << cmd << "\"\n" << kUsage;
  return 2;
}
