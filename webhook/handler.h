// AdmissionHandler: POST /validate on the webhook server. Decodes the
// AdmissionReview outside any lock, judges it and (when admitted, not a dry
// run) holds the object as pending in the ClusterState under one exclusive
// lock, so two conflicting requests to this replica cannot both pass, then
// encodes the answer outside the lock. With a ClaimLedger, an admitted
// object's single addresses are claimed in the ledger before the answer
// goes out, so two requests to different replicas (or clusters) cannot both
// pass either; the answer comes from the ledger's thread, and no server
// thread waits. Counts requests and latency in Metrics.
//
// Thread-safe.
#ifndef IPGUARD_WEBHOOK_HANDLER_H_
#define IPGUARD_WEBHOOK_HANDLER_H_

#include <chrono>
#include <functional>
#include <optional>

#include "kube/cluster_state.h"
#include "kube/metrics.h"
#include "webhook/admission.h"
#include "webhook/claims.h"
#include "webhook/server.h"

namespace ipguard::webhook {

// Declares the admission metrics (requests by kind, operation and verdict;
// latency) in `metrics`.
void DescribeAdmissionMetrics(kube::Metrics* metrics);

// What the webhook needs to claim addresses at admission.
struct ClaimSettings {
  ClaimLedger* ledger = nullptr;  // null: no claims are written
  kube::Clock* clock = nullptr;
  // Who ipguard is at the API server (userInfo.username): a review of an
  // IPClaim written by it is admitted at once (the claim was judged with its
  // holder, and its writer is waiting for this answer). Empty: judged.
  std::string self_username;
  std::string cluster;  // holder.cluster of the claims ("" in the management cluster)
  // The longest an admission waits on its claims; never more than a third of
  // the timeout the API server gives the call (`?timeout=10s`).
  std::chrono::milliseconds timeout{5000};
  // An agent's choice (API.md: it keeps judging without the management
  // cluster): while `offline()` says the ledger is known to be away, an
  // admitted object is admitted with a warning, its claims left to the
  // backfill once the ledger is back (`on_deferred` hears of each). A
  // single claim write that gets no answer still refuses the write (the
  // ledger may only be slow, and two clusters would then both admit one
  // address); `on_unanswered` hears of it, so the agent can ask at once
  // whether the ledger is away. The manager leaves these unset: it never
  // admits unclaimed.
  std::function<bool()> offline;
  std::function<void()> on_deferred;
  std::function<void()> on_unanswered;
};

// The timeout in a webhook call's target ("/validate?timeout=10s"), or
// nullopt when it has none that parses.
std::optional<std::chrono::milliseconds> CallTimeout(const std::string& target);

class AdmissionHandler {
 public:
  // `metrics` and `on_verdict` may be null/empty; on_verdict sees each
  // denial and error (for logs).
  AdmissionHandler(kube::ClusterState* state, kube::Metrics* metrics, AdmissionOptions options,
                   std::function<void(const AdmissionOutcome&)> on_verdict = {},
                   ClaimSettings claims = {});
  // Answers through `reply`, at once or (when claims are written) from the
  // ledger's thread.
  void Serve(const ServerRequest& request, Reply reply) const;
  // Serve(), waiting for the answer (tests and benchmarks).
  ServerResponse operator()(const ServerRequest& request) const;

 private:
  void Answer(DecodedReview d, const Verdict& v, std::chrono::steady_clock::time_point start,
              const Reply& reply) const;

  kube::ClusterState* state_;
  kube::Metrics* metrics_;
  AdmissionOptions options_;
  std::function<void(const AdmissionOutcome&)> on_verdict_;
  ClaimSettings claims_;
};

}  // namespace ipguard::webhook

#endif  // IPGUARD_WEBHOOK_HANDLER_H_
