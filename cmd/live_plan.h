// The live plan for `ipguard check --from-cluster`: every object of the
// kinds ipguard judges, read from a cluster's API server page by page.
//
// ReadLivePlan never holds a whole list: each item goes to the caller as its
// page arrives, with apiVersion and kind set (list items of the core group
// come without them). IPAddressPools are read when the cluster serves
// MetalLB's CRD; a cluster that does not serve ipguard's kinds, or refuses
// the reads, is an error naming the resource and the API server's answer.
#ifndef IPGUARD_CMD_LIVE_PLAN_H_
#define IPGUARD_CMD_LIVE_PLAN_H_

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "kube/client.h"

namespace ipguard {

using LiveObjectFn = std::function<void(nlohmann::json& object)>;

Status ReadLivePlan(kube::Client& client, const LiveObjectFn& on_object);

// The same from a kubeconfig (empty path: $KUBECONFIG, then ~/.kube/config)
// and context (empty: its current-context), as kubectl finds them.
Status ReadLivePlanFrom(const std::string& kubeconfig, const std::string& context,
                        const LiveObjectFn& on_object);

}  // namespace ipguard

#endif  // IPGUARD_CMD_LIVE_PLAN_H_
