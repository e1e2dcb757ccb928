#include "cmd/live_plan.h"

#include "core/kinds.h"
#include "kube/clock.h"
#include "kube/config.h"
#include "kube/http_transport.h"

namespace ipguard {

using nlohmann::json;

Status ReadLivePlan(kube::Client& client, const LiveObjectFn& on_object) {
  // Every kind ipguard judges, MetalLB's pools included: a cluster without
  // an opt-in kind's CRD simply has none of it.
  for (const KindInfo& k : Kinds()) {
    const kube::Resource resource = kube::ResourceOf(k);
    const std::string api_version = k.ApiVersion();
    const std::string kind = k.name;
    auto rv = client.ListPages(resource, "", {}, [&](json& page) {
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
      if (k.opt_in) continue;
      return Status::Error("the cluster does not serve " + api_version + " " + k.plural +
                           " (are ipguard's CRDs installed?)");
    }
    return Status::Error("cannot list " + api_version + " " + k.plural + ": " +
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
