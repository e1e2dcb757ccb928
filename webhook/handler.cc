#include "webhook/handler.h"

#include <cstdlib>
#include <future>
#include <memory>

namespace ipguard::webhook {

namespace {

// The warning of an object admitted while the ledger is known to be away.
std::string Unclaimed(size_t claims) {
  return "the management cluster is unreachable: admitted on the plan last seen; the " +
         std::string(claims == 1 ? "claim of its address is" : "claims of its addresses are") +
         " written when it is back";
}

}  // namespace

void DescribeAdmissionMetrics(kube::Metrics* metrics) {
  metrics->Describe(
      "ipguard_admission_requests_total", kube::Metrics::Type::kCounter,
      "AdmissionReview requests by kind, operation and verdict (allowed, denied, error).");
  metrics->Describe("ipguard_admission_duration_seconds", kube::Metrics::Type::kHistogram,
                    "Time to answer one AdmissionReview.");
}

std::optional<std::chrono::milliseconds> CallTimeout(const std::string& target) {
  size_t q = target.find('?');
  if (q == std::string::npos) return std::nullopt;
  std::string query = target.substr(q + 1);
  for (size_t at = 0; at <= query.size();) {
    size_t end = query.find('&', at);
    if (end == std::string::npos) end = query.size();
    std::string pair = query.substr(at, end - at);
    at = end + 1;
    if (pair.rfind("timeout=", 0) != 0) continue;
    // A Go duration as the API server writes it: "10s".
    return kube::ParseDuration(pair.substr(8));
  }
  return std::nullopt;
}

AdmissionHandler::AdmissionHandler(kube::ClusterState* state, kube::Metrics* metrics,
                                   AdmissionOptions options,
                                   std::function<void(const AdmissionOutcome&)> on_verdict,
                                   ClaimSettings claims)
    : state_(state),
      metrics_(metrics),
      options_(options),
      on_verdict_(std::move(on_verdict)),
      claims_(std::move(claims)) {}

ServerResponse AdmissionHandler::operator()(const ServerRequest& req) const {
  auto answer = std::make_shared<std::promise<ServerResponse>>();
  auto got = answer->get_future();
  Serve(req, [answer](ServerResponse r) { answer->set_value(std::move(r)); });
  return got.get();
}

void AdmissionHandler::Serve(const ServerRequest& req, Reply reply) const {
  std::string path = req.target.substr(0, req.target.find('?'));
  if (path != "/validate") return reply({404, "text/plain; charset=utf-8", "not found\n"});
  if (req.method != "POST") {
    return reply({405, "text/plain; charset=utf-8", "only POST\n", {{"Allow", "POST"}}});
  }
  auto start = std::chrono::steady_clock::now();
  DecodedReview d = DecodeReview(req.body, options_);
  Verdict v;
  if (d.answered) return Answer(std::move(d), v, start, reply);
  // A claim ipguard writes while an admission waits on it: judged with its
  // holder already, and the writer is waiting for this answer. Both its
  // identity and its mark: a person who shares ipguard's identity (out of
  // cluster, an admin's kubeconfig) still has a claim written by hand judged.
  if (claims_.ledger && !claims_.self_username.empty() &&
      d.outcome.requester == claims_.self_username && d.obj && d.obj->kind == Kind::kIPClaim &&
      d.obj->meta.annotations.count(kWrittenByAnnotation)) {
    return Answer(std::move(d), v, start, reply);
  }
  // Hold what the API server is about to store. Not for a dry run, a
  // delete, a name the server has yet to generate, or a Service that
  // claims no load-balancer address.
  Object* hold = nullptr;
  if (!d.outcome.dry_run && d.op != Operation::kDelete && d.obj && d.named &&
      (d.obj->kind != Kind::kService || d.obj->svc->is_load_balancer())) {
    hold = &*d.obj;
  }
  const bool claim = claims_.ledger && hold;
  std::vector<WantedClaim> wanted;
  std::string key;
  if (claim) key = d.obj->Key();
  uint64_t seq = 0;
  // A held object is moved into the state; d is only answered after.
  v = state_->JudgeAndHold(
      [&](const Engine& e) {
        Verdict judged = JudgeReview(d, e);
        wanted.clear();
        if (claim && judged.allowed()) wanted = e.MissingClaims(*d.obj, claims_.cluster);
        return judged;
      },
      hold, d.outcome.requester, &seq);
  if (!v.allowed() || wanted.empty()) return Answer(std::move(d), v, start, reply);
  if (claims_.offline && claims_.offline()) {
    v.warnings.push_back(Unclaimed(wanted.size()));
    if (claims_.on_deferred) claims_.on_deferred();
    return Answer(std::move(d), v, start, reply);
  }

  auto wait = claims_.timeout;
  if (auto t = CallTimeout(req.target)) wait = std::min(wait, *t / 3);
  auto deadline = claims_.clock->Now() + wait;
  auto waiting = std::make_shared<DecodedReview>(std::move(d));
  // The object itself now lives in the state (held); the ledger asks about
  // sharing with the copy the engine keeps.
  kube::ClusterState* state = state_;
  auto shares = [state, key](const ClaimHolder& holder) {
    return state->Read([&](const Engine& e) {
      const Object* self = e.Find(key);
      return self && e.SharesWith(*self, holder);
    });
  };
  claims_.ledger->Claim(
      std::move(wanted), deadline,
      [self = *this, waiting, v, start, reply, key, seq](ClaimOutcome o) mutable {
        if (!o.ok) {
          if (o.unanswered && self.claims_.on_unanswered) self.claims_.on_unanswered();
          self.state_->ReleaseHold(key, seq);
          v.violations.push_back(std::move(o.message));
        }
        self.Answer(std::move(*waiting), v, start, reply);
      },
      shares);
}

void AdmissionHandler::Answer(DecodedReview d, const Verdict& v,
                              std::chrono::steady_clock::time_point start,
                              const Reply& reply) const {
  AdmissionOutcome out = AnswerReview(std::move(d), v);
  if (metrics_) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics_->Add("ipguard_admission_requests_total",
                  {{"kind", out.kind}, {"operation", out.operation}, {"verdict", out.verdict}});
    metrics_->Observe("ipguard_admission_duration_seconds", {}, seconds);
  }
  if (on_verdict_ && out.verdict != "allowed") on_verdict_(out);
  reply({200, "application/json", std::move(out.body)});
}

}  // namespace ipguard::webhook
