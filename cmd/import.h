// `ipguard import`: the ipguard objects read from Azure input, printed as
// YAML that `kubectl apply` and `ipguard check` both take.
//
// Reads what `ipguard check` reads (core/azure.h); prints every resource of
// the three types it reads, in the order kubectl apply of the output needs
// (ApplyRank: networks before the clusters that name them; input order
// within a kind), each with the annotation
// ipguard.io/azure-id, one YAML document each. Resources of other types and
// Kubernetes manifests in the input are skipped and counted on stderr; a
// resource of the three types that cannot be read (an expression it cannot
// resolve, a field of the wrong type) is not printed and is named on stderr.
// Exit status: 0 everything of the three types printed, 1 something of them
// not printed, 2 unreadable input or bad usage.
#ifndef IPGUARD_CMD_IMPORT_H_
#define IPGUARD_CMD_IMPORT_H_

#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ipguard {

// `v` as block YAML (strings double-quoted, as JSON writes them), for
// `kubectl apply`: what nlohmann reads back from it is `v`.
std::string ToYaml(const nlohmann::json& v);

// args excludes "import" itself.
int ImportMain(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
               std::ostream& err);

}  // namespace ipguard

#endif  // IPGUARD_CMD_IMPORT_H_
