// AdmissionReview admission.k8s.io/v1 in and out, judged by the core Engine.
//
// Pure: takes the request body as text and returns the response body. Never
// throws; a body that cannot be read gets allowed=false with code 400 and a
// reason, and the response echoes request.uid whenever one could be read.
// The HTTPS server (issue #4) and the metrics around it live elsewhere.
#ifndef IPGUARD_WEBHOOK_ADMISSION_H_
#define IPGUARD_WEBHOOK_ADMISSION_H_

#include <optional>
#include <string>
#include <string_view>

#include "core/engine.h"
#include "core/json_projection.h"

namespace ipguard {

struct AdmissionOptions {
  // Judge MetalLB IPAddressPools (manager flag --metallb); otherwise they are
  // admitted untouched.
  bool metallb = false;
};

struct AdmissionOutcome {
  std::string body;       // the AdmissionReview response, JSON
  std::string uid;        // request.uid, empty when unreadable
  std::string kind;       // "LogicalNetwork", ..., or "" when unreadable
  std::string operation;  // "CREATE", "UPDATE", "DELETE", ...
  // "allowed", "denied" (403) or "error" (400), for metrics and logs.
  std::string verdict;
  std::string message;  // the denial or error message
  bool dry_run = false;
  std::string requester;  // request.userInfo.username, as the review says
};

AdmissionOutcome Admit(std::string_view body, const Engine& engine,
                       const AdmissionOptions& options);

// Admit in three steps, for a caller that judges under a lock and wants
// neither decoding nor encoding inside it.
struct DecodedReview {
  AdmissionOutcome outcome;  // uid, kind, operation, dry_run; complete when answered
  // True when no judgement is needed: the body could not be read (400), or
  // the request is admitted untouched (a kind ipguard does not judge).
  bool answered = false;
  Operation op = Operation::kCreate;
  std::optional<Object> obj;  // CREATE, UPDATE
  // Whether the object came with metadata.name; without one (generateName)
  // it is judged under a placeholder name the API server will replace.
  bool named = false;
  std::optional<Object> old_obj;  // UPDATE (when sent), DELETE
  // What was read of the object but is not clean ("duplicate key
  // spec.vlanId"): violations ahead of the rules'.
  std::vector<std::string> problems;
};
DecodedReview DecodeReview(std::string_view body, const AdmissionOptions& options);

// The two readers DecodeReview tries, in turn; exposed so tests can hold
// them to the same answers. DecodeServiceReview reads the review of a core
// Service in place (JsonScanner, ParseServiceText), the webhook's hot path,
// and declines (nullopt) anything else or anything unusual: another kind, a
// field of a type the rules would report, an address that does not parse,
// an object without a name, any text JsonScanner leaves to nlohmann/json.
// DecodeReviewDocument reads any review from a document (ParseProjected, or
// nlohmann/json for what that declines) and words every error.
std::optional<DecodedReview> DecodeServiceReview(std::string_view body);
DecodedReview DecodeReviewDocument(std::string_view body, const AdmissionOptions& options);

// The parts of an AdmissionReview that DecodeReview reads (the request's
// uid, kind, operation, namespace, dryRun, userInfo.username, and of its objects what
// ObjectProjection names): DecodeReview parses a body with ParseProjected
// and this, and only what that declines with nlohmann/json whole.
const JsonProjection& AdmissionReviewProjection();
Verdict JudgeReview(const DecodedReview& review, const Engine& engine);
AdmissionOutcome AnswerReview(DecodedReview review, const Verdict& verdict);

}  // namespace ipguard

#endif  // IPGUARD_WEBHOOK_ADMISSION_H_
