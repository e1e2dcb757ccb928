#include "core/kinds.h"

#include <cassert>

namespace ipguard {
namespace {

std::vector<KindInfo> MakeKinds() {
  using U = AnnotationUse;
  std::vector<KindInfo> kinds = {
      // ipguard's own kinds: spec read whole (ParseObject reports a field the
      // CRD does not declare), status written by the controller.
      {Kind::kLogicalNetwork, kGroup, kVersion, "LogicalNetwork", "logicalnetworks",
       /*namespaced=*/false, /*opt_in=*/false, /*owns_status=*/true,
       {{kAllowDeleteAnnotation, U::kReadFromMetadata}, {kAzureIdAnnotation, U::kReadFromMetadata}},
       {"spec"}},
      {Kind::kWorkloadCluster, kGroup, kVersion, "WorkloadCluster", "workloadclusters",
       /*namespaced=*/true, /*opt_in=*/false, /*owns_status=*/true,
       {{kAzureIdAnnotation, U::kReadFromMetadata}}, {"spec"}},
      {Kind::kLoadBalancerPool, kGroup, kVersion, "LoadBalancerPool", "loadbalancerpools",
       /*namespaced=*/false, /*opt_in=*/false, /*owns_status=*/true,
       {{kAzureIdAnnotation, U::kReadFromMetadata}}, {"spec"}},
      {Kind::kIPReservation, kGroup, kVersion, "IPReservation", "ipreservations",
       /*namespaced=*/false, /*opt_in=*/false, /*owns_status=*/true, {}, {"spec"}},
      // The annotations of MetalLB, kube-vip and Cilium LB-IPAM that ask for
      // an address or share one; the fields a LoadBalancer Service is judged
      // by and the addresses its load balancer gave it.
      {Kind::kService, "", "v1", "Service", "services",
       /*namespaced=*/true, /*opt_in=*/false, /*owns_status=*/false,
       {{"metallb.io/loadBalancerIPs", U::kRequestsAddresses,
         "annotations[metallb.io/loadBalancerIPs]"},
        {"metallb.universe.tf/loadBalancerIPs", U::kRequestsAddresses,
         "annotations[metallb.universe.tf/loadBalancerIPs]"},
        {"kube-vip.io/loadbalancerIPs", U::kRequestsAddresses,
         "annotations[kube-vip.io/loadbalancerIPs]"},
        {"lbipam.cilium.io/ips", U::kRequestsAddresses, "annotations[lbipam.cilium.io/ips]"},
        {"metallb.io/allow-shared-ip", U::kSharingKey},
        {"metallb.universe.tf/allow-shared-ip", U::kSharingKey},
        {"lbipam.cilium.io/sharing-key", U::kSharingKey},
        {kLogicalNetworkAnnotation, U::kReadFromMetadata}},
       {"spec.type", "spec.loadBalancerIP", "spec.ports[].port", "spec.ports[].protocol",
        "status.loadBalancer.ingress[].ip"}},
      // MetalLB's own kind: its spec has more than ipguard judges, and
      // MetalLB's CRD, not ipguard, says what is declared.
      {Kind::kIPAddressPool, "metallb.io", "v1beta1", "IPAddressPool", "ipaddresspools",
       /*namespaced=*/true, /*opt_in=*/true, /*owns_status=*/false, {}, {"spec.addresses"}},
      // The ledger: one claim per single address an object asks for, named
      // by its domain and address so that the API server's uniqueness of
      // names decides between concurrent requests. No status of its own.
      {Kind::kIPClaim, kGroup, kVersion, "IPClaim", "ipclaims",
       /*namespaced=*/false, /*opt_in=*/false, /*owns_status=*/false,
       {{kWrittenByAnnotation, U::kAtAdmission}}, {"spec"}},
  };
  for (size_t i = 0; i < kinds.size(); ++i) assert(static_cast<size_t>(kinds[i].kind) == i);
  assert(kinds.size() == kKindCount);
  return kinds;
}

}  // namespace

std::string KindInfo::ApiVersion() const {
  return *group ? std::string(group) + "/" + version : std::string(version);
}

bool KindInfo::Serves(std::string_view api_version) const {
  std::string_view g(group), v(version);
  if (g.empty()) return api_version == v;
  return api_version.size() == g.size() + 1 + v.size() && api_version.substr(0, g.size()) == g &&
         api_version[g.size()] == '/' && api_version.substr(g.size() + 1) == v;
}

const std::vector<KindInfo>& Kinds() {
  static const std::vector<KindInfo>* const kKinds = new std::vector<KindInfo>(MakeKinds());
  return *kKinds;
}

const KindInfo& InfoOf(Kind k) { return Kinds()[static_cast<size_t>(k)]; }

const char* KindName(Kind k) { return InfoOf(k).name; }

bool IsNamespaced(Kind k) { return InfoOf(k).namespaced; }

std::optional<Kind> KindOf(std::string_view api_version, std::string_view kind) {
  for (const KindInfo& info : Kinds()) {
    if (kind == info.name && info.Serves(api_version)) return info.kind;
  }
  return std::nullopt;
}

}  // namespace ipguard
