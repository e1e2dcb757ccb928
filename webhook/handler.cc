#include "webhook/handler.h"

#include <chrono>

namespace ipguard::webhook {

void DescribeAdmissionMetrics(kube::Metrics* metrics) {
  metrics->Describe(
      "ipguard_admission_requests_total", kube::Metrics::Type::kCounter,
      "AdmissionReview requests by kind, operation and verdict (allowed, denied, error).");
  metrics->Describe("ipguard_admission_duration_seconds", kube::Metrics::Type::kHistogram,
                    "Time to answer one AdmissionReview.");
}

AdmissionHandler::AdmissionHandler(kube::ClusterState* state, kube::Metrics* metrics,
                                   AdmissionOptions options,
                                   std::function<void(const AdmissionOutcome&)> on_verdict)
    : state_(state), metrics_(metrics), options_(options), on_verdict_(std::move(on_verdict)) {}

ServerResponse AdmissionHandler::operator()(const ServerRequest& req) const {
  std::string path = req.target.substr(0, req.target.find('?'));
  if (path != "/validate") return {404, "text/plain; charset=utf-8", "not found\n"};
  if (req.method != "POST") {
    return {405, "text/plain; charset=utf-8", "only POST\n", {{"Allow", "POST"}}};
  }
  auto start = std::chrono::steady_clock::now();
  DecodedReview d = DecodeReview(req.body, options_);
  Verdict v;
  if (!d.answered) {
    // Hold what the API server is about to store. Not for a dry run, a
    // delete, a name the server has yet to generate, or a Service that
    // claims no load-balancer address.
    Object* hold = nullptr;
    if (!d.outcome.dry_run && d.op != Operation::kDelete && d.obj && d.named &&
        (d.obj->kind != Kind::kService || d.obj->svc->is_load_balancer())) {
      hold = &*d.obj;
    }
    // A held object is moved into the state; d is only answered after.
    v = state_->JudgeAndHold([&](const Engine& e) { return JudgeReview(d, e); }, hold,
                             d.outcome.requester);
  }
  AdmissionOutcome out = AnswerReview(std::move(d), v);
  if (metrics_) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics_->Add("ipguard_admission_requests_total",
                  {{"kind", out.kind}, {"operation", out.operation}, {"verdict", out.verdict}});
    metrics_->Observe("ipguard_admission_duration_seconds", {}, seconds);
  }
  if (on_verdict_ && out.verdict != "allowed") on_verdict_(out);
  return {200, "application/json", std::move(out.body)};
}

}  // namespace ipguard::webhook
