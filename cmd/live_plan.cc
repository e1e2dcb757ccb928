#include "cmd/live_plan.h"

#include <memory>
#include <vector>

#include "core/objects.h"
#include "kube/clock.h"
#include "kube/config.h"
#include "kube/http_transport.h"

namespace ipguard {
namespace {

using nlohmann::json;

struct LiveKind {
  Kind kind;
  kube::Resource resource;
  bool optional;  // a cluster without this CRD has none of it
};

std::vector<LiveKind> LiveKinds() {
  return {
      {Kind::kLogicalNetwork, {kGroup, kVersion, "logicalnetworks", false}, false},
      {Kind::kIPReservation, {kGroup, kVersion, "ipreservations", false}, false},
      {Kind::kLoadBalancerPool, {kGroup, kVersion, "loadbalancerpools", false}, false},
      {Kind::kIPAddressPool, {"metallb.io", "v1beta1", "ipaddresspools", true}, true},
      {Kind::kWorkloadCluster, {kGroup, kVersion, "workloadclusters", true}, false},
      {Kind::kService, {"", "v1", "services", true}, false},
  };
}

}  // namespace

Status ReadLivePlan(kube::Client& client, const LiveObjectFn& on_object) {
  for (const LiveKind& k : LiveKinds()) {
    const std::string api_version = k.resource.ApiVersion();
    const std::string kind = KindName(k.kind);
    auto rv = client.ListPages(k.resource, "", {}, [&](json& page) {
      for (json& item : page["items"]) {
        if (!item.is_object()) continue;
        item["apiVersion"] = api_version;
        item["kind"] = kind;
        on_object(item);
      }
    });
    if (rv.ok()) continue;
    const kube::ApiError& e = rv.error();
    if (e.IsNotFound()) {
      if (k.optional) continue;
      return Status::Error("the cluster does not serve " + api_version + " " + k.resource.plural +
                           " (are ipguard's CRDs installed?)");
    }
    return Status::Error("cannot list " + api_version + " " + k.resource.plural + ": " +
                         e.ToString());
  }
  return Status::Ok();
}

Status ReadLivePlanFrom(const std::string& kubeconfig, const std::string& context,
                        const LiveObjectFn& on_object) {
  auto config = kube::LoadKubeconfig(kubeconfig, context);
  if (!config.ok()) return Status::Error(config.error());
  auto transport = kube::NewHttpTransport(*config, kube::RealClock::Get(), {/*pool_threads=*/2});
  if (!transport.ok()) return Status::Error(transport.error());
  kube::Client client(transport->get());
  return ReadLivePlan(client, on_object);
}

}  // namespace ipguard
