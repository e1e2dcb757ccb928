// AdmissionHandler: POST /validate on the webhook server. Decodes the
// AdmissionReview outside any lock, judges it and (when admitted, not a dry
// run) holds the object as pending in the ClusterState under one exclusive
// lock, so two conflicting requests cannot both pass, then encodes the
// answer outside the lock. Counts requests and latency in Metrics.
//
// Thread-safe.
#ifndef IPGUARD_WEBHOOK_HANDLER_H_
#define IPGUARD_WEBHOOK_HANDLER_H_

#include <functional>

#include "kube/cluster_state.h"
#include "kube/metrics.h"
#include "webhook/admission.h"
#include "webhook/server.h"

namespace ipguard::webhook {

// Declares the admission metrics (requests by kind, operation and verdict;
// latency) in `metrics`.
void DescribeAdmissionMetrics(kube::Metrics* metrics);

class AdmissionHandler {
 public:
  // `metrics` and `on_verdict` may be null/empty; on_verdict sees each
  // denial and error (for logs).
  AdmissionHandler(kube::ClusterState* state, kube::Metrics* metrics, AdmissionOptions options,
                   std::function<void(const AdmissionOutcome&)> on_verdict = {});
  ServerResponse operator()(const ServerRequest& request) const;

 private:
  kube::ClusterState* state_;
  kube::Metrics* metrics_;
  AdmissionOptions options_;
  std::function<void(const AdmissionOutcome&)> on_verdict_;
};

}  // namespace ipguard::webhook

#endif  // IPGUARD_WEBHOOK_HANDLER_H_
