// The kind registry: one entry for every kind ipguard judges, saying where it
// lives in the API (group, version, plural, scope) and what of it ipguard
// reads (the annotations and the parts of spec and status). Whoever needs to
// know a kind asks here: ParseObject and KindOf, the manager's watch list and
// its cache trim, the webhook's projection and its Service fast path, the
// engine's stored copy and the controller's status writes. A unit test holds
// the entries of ipguard's own kinds to the CRDs in crds/.
//
// Static data: no I/O; thread-safe (the table is built once, then only read).
#ifndef IPGUARD_CORE_KINDS_H_
#define IPGUARD_CORE_KINDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipguard {

enum class Kind : uint8_t {
  kLogicalNetwork,
  kWorkloadCluster,
  kLoadBalancerPool,
  kIPReservation,
  kService,
  kIPAddressPool,
  kIPClaim,
};
inline constexpr int kKindCount = 7;

// ipguard's own API group and the one version it serves.
inline constexpr char kGroup[] = "ipguard.io";
inline constexpr char kVersion[] = "v1alpha1";
inline constexpr char kAllowDeleteAnnotation[] = "ipguard.io/allow-delete";
inline constexpr char kLogicalNetworkAnnotation[] = "ipguard.io/logical-network";
// On the IPClaims ipguard writes: with the writer's identity, it tells the
// webhook that the claim was judged with its holder.
inline constexpr char kWrittenByAnnotation[] = "ipguard.io/written-by";
// On every object read from Azure (`ipguard check`, `ipguard import`): the
// resource id it was read from. Messages name the Azure resource by it.
inline constexpr char kAzureIdAnnotation[] = "ipguard.io/azure-id";

// What ipguard makes of an annotation; it decides who keeps it.
enum class AnnotationUse : uint8_t {
  // Comma-separated addresses a Service asks for. ParseObject reads them
  // into ServiceSpec::requested, so the engine need not keep the text.
  kRequestsAddresses,
  // A Service's sharing key (the first that is set, in registry order).
  // ParseObject reads it into ServiceSpec::sharing_key.
  kSharingKey,
  // Read by the rules from the metadata of the stored object (the network a
  // Service is on, the consent to delete a network in use): the engine keeps
  // it.
  kReadFromMetadata,
  // Read only from the object under review (ipguard's mark on the claims it
  // writes, which its webhook admits at once): nothing stored needs it, so
  // the engine does not keep it (100k claims would each carry it).
  kAtAdmission,
};

struct AnnotationInfo {
  const char* key;  // exact
  AnnotationUse use;
  // For kRequestsAddresses, the label of its addresses in messages,
  // "annotations[<key>]"; static storage, as FieldLabel wants.
  const char* label = nullptr;
};

struct KindInfo {
  Kind kind;
  const char* group;  // "" for the core group
  const char* version;
  const char* name;    // "LogicalNetwork"
  const char* plural;  // "logicalnetworks"
  bool namespaced;
  // Watched and judged only when the manager is asked to (--metallb): the
  // kind belongs to a product the cluster may not run.
  bool opt_in;
  // ipguard writes the status of this kind (its own kinds, whose CRDs have a
  // status subresource); the caches keep the status to write it back.
  bool owns_status;
  // Every annotation ipguard reads, in the order it reads them (a Service's
  // requested addresses are labelled, and its sharing key chosen, in this
  // order). Annotations not listed are dropped by the caches and the engine.
  std::vector<AnnotationInfo> annotations;
  // The paths of spec and status ParseObject reads: "spec" for all of it (a
  // kind whose undeclared fields are reported), "spec.type" for one member
  // whole, "status.loadBalancer.ingress[].ip" through the items of a list.
  std::vector<std::string> reads;

  // "v1" for the core group, "group/version" otherwise.
  std::string ApiVersion() const;
  // Whether `api_version` is the one this entry serves.
  bool Serves(std::string_view api_version) const;
};

// Every entry, in the order of Kind.
const std::vector<KindInfo>& Kinds();
const KindInfo& InfoOf(Kind k);

const char* KindName(Kind k);
bool IsNamespaced(Kind k);
// Maps apiVersion and kind to a Kind; nullopt for kinds ipguard does not
// judge, and for a kind it judges at a version it does not serve.
std::optional<Kind> KindOf(std::string_view api_version, std::string_view kind);

}  // namespace ipguard

#endif  // IPGUARD_CORE_KINDS_H_
