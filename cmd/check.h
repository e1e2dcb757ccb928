// `ipguard check`: the rules of API.md applied offline to manifests.
//
// RunRules() is pure: it applies documents to an empty Engine in apply order
// (LogicalNetworks, IPReservations, LoadBalancerPools, IPAddressPools,
// WorkloadClusters, Services; input order within a kind), judging each
// object as the webhook would judge its CREATE against those before it.
// CheckMain() adds the command line, file reading and output.
#ifndef IPGUARD_CMD_CHECK_H_
#define IPGUARD_CMD_CHECK_H_

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/manifest.h"
#include "core/engine.h"
#include "core/plan.h"

namespace ipguard {

struct ObjectResult {
  std::string source;
  int document = 0;
  std::string object;  // "WorkloadCluster team-a/prod"
  Verdict verdict;
};

struct CheckReport {
  std::vector<ObjectResult> results;  // in apply order
  int objects = 0;
  std::map<std::string, int> skipped;  // "apps/v1 Deployment" -> count
  std::vector<std::string> unreadable;  // documents that are not Kubernetes objects
  Plan plan;
  int violations = 0;
  int warnings = 0;

  // 0 clean, 1 violations, 2 unreadable input.
  int ExitCode() const { return !unreadable.empty() ? 2 : violations > 0 ? 1 : 0; }
};

CheckReport RunRules(const std::vector<Document>& docs, const Options& options);

std::string RenderTable(const CheckReport& report);
nlohmann::json RenderJson(const CheckReport& report);

// args excludes "check" itself. Reads files and `-` (stdin from `in`).
int CheckMain(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
              std::ostream& err);

}  // namespace ipguard

#endif  // IPGUARD_CMD_CHECK_H_
