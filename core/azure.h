// Azure Resource Manager JSON read as ipguard objects (docs/reference.md,
// "Azure resources"; docs/azure.md for the user's side).
//
// Three Azure types are read, each into one of ipguard's kinds:
//   Microsoft.AzureStackHCI/logicalNetworks                  -> LogicalNetwork
//   Microsoft.HybridContainerService/provisionedClusterInstances
//                                                            -> WorkloadCluster azure/<cluster>
//   Microsoft.KubernetesRuntime/loadBalancers                -> LoadBalancerPool <cluster>-<name>
// from one resource (`az ... show -o json`), an array of them
// (`az ... list -o json`, read element by element by ParseManifests), or an
// ARM template's `resources` (a list, or the object of symbolic names that
// Bicep writes with languageVersion 2.0). Types compare without regard to
// case, as Azure compares them.
//
// Template expressions: a value written `[parameters('x')]` is taken from
// the parameters (ARM parameters files, then the template's defaultValue).
// Fields that hold a resource id (a cluster's `scope`, vnetSubnetIds) may
// also be written as Bicep writes ids: resourceId(), extensionResourceId(),
// format() and concat() of literals and parameters. Any other expression in a
// field ipguard reads leaves the resource unread, with a warning naming the
// field and the expression; expressions in fields it does not read (a
// location, tags) are never looked at.
//
// Pure: works on parsed JSON, no I/O; thread-compatible.
#ifndef IPGUARD_CORE_AZURE_H_
#define IPGUARD_CORE_AZURE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/objects.h"
#include "core/status.h"

namespace ipguard {

// The namespace of the WorkloadClusters read from Azure.
inline constexpr char kAzureNamespace[] = "azure";

// Values of template parameters, from ARM parameters files.
class ArmParameters {
 public:
  // Adds the values of a parameters file (`{"$schema": ...deploymentParameters.json#,
  // "parameters": {"x": {"value": ...}}}`, the `$schema` optional); a later
  // file's value wins. A Key Vault `reference` is kept as a value that cannot
  // be resolved. Errors name what is wrong; nothing is added then.
  Status Add(const nlohmann::json& file);
  // The value of `name` (compared without regard to case, as ARM does), or
  // nullptr. `*why` says why a parameter that is present has no value.
  const nlohmann::json* Find(const std::string& name, std::string* why) const;
  // A value given otherwise (a nested deployment's parameters).
  void Set(const std::string& name, nlohmann::json value);
  // A parameter that is given but has no value ipguard can read, and why.
  void SetUnresolvable(const std::string& name, std::string why);
  bool empty() const { return values_.empty(); }

 private:
  struct Value {
    nlohmann::json value;
    std::string unresolvable;  // non-empty: no value, and why
  };
  std::map<std::string, Value> values_;  // lowercase name
};

// Whether `doc` is read as Azure input: a `type` of the form
// `Provider/resource` and no `kind` (a null kind counts as none), or an ARM
// template (`$schema` and `resources`).
bool IsAzureInput(const nlohmann::json& doc);

// Whether `doc` is an ARM parameters file (given to `--parameters`, not read
// as input).
bool IsArmParametersFile(const nlohmann::json& doc);

// One resource of Azure input, read.
struct AzureRead {
  enum class Outcome {
    kRead,       // `object` holds the ipguard object
    kBroken,     // one of the three types, but a field is wrong: `errors` say which
    kUnread,     // one of the three types, left unread: `warnings` say why
    kOtherType,  // a type ipguard does not read: skipped and counted
    kSkipped,    // a resource that a template only refers to (`existing`) or does not deploy
  };
  Outcome outcome = Outcome::kOtherType;
  std::string type;  // as written
  std::string id;    // the resource id, or its type and name when the input has no id
  // "LogicalNetwork lnet-prod (Azure <id>)": what messages call it.
  std::string description;
  // The kind and name it reads (or would read) as, when one of the three
  // types.
  std::optional<Kind> kind;
  std::string name;
  int index = 0;  // 1-based position in a template's resources; 0 otherwise
  nlohmann::json object;  // kRead: the ipguard object, annotated with kAzureIdAnnotation
  std::vector<std::string> errors;    // kBroken: one per wrong field
  std::vector<std::string> warnings;  // kRead: read with a warning; kUnread: why
};

// How `ipguard check` and `ipguard import` count what they skip: an ARM
// parameters file among the inputs, and a resource that is kOtherType
// ("Azure <type>") or kSkipped.
inline constexpr char kArmParametersSkipped[] = "ARM parameters files (read with --parameters)";
std::string SkippedAs(const AzureRead& read);

// Every resource of `doc` (one resource, or a template's resources), read.
// `doc` must be IsAzureInput().
std::vector<AzureRead> ReadAzure(const nlohmann::json& doc, const ArmParameters& params);

// What differs between an object of the plan and the Azure resource read as
// the same kind and name: one violation per address field (the addresses
// and what places them in a domain), and a warning per other field that
// ipguard reads (counts, the switch).
struct AzureDrift {
  std::vector<std::string> violations;
  std::vector<std::string> warnings;
};
AzureDrift CompareWithAzure(const Object& plan, const Object& azure, const std::string& azure_id);

}  // namespace ipguard

#endif  // IPGUARD_CORE_AZURE_H_
