// A decoded AdmissionReview written out field by field, so tests and the
// fuzz target can hold DecodeReview's two readers to the same answer.
#ifndef IPGUARD_TESTS_REVIEW_SUMMARY_H_
#define IPGUARD_TESTS_REVIEW_SUMMARY_H_

#include <string>

#include "webhook/admission.h"

namespace ipguard::testing_util {

inline std::string ObjectSummary(const Object& o) {
  std::string s = o.Key() + " api=" + o.ApiVersion() + " uid=" + o.meta.uid +
                  " rv=" + o.meta.resource_version + " ts=" + o.meta.creation_timestamp +
                  " gen=" + std::to_string(o.meta.generation);
  for (const auto& [k, v] : o.meta.annotations) s += " ann[" + k + "]=" + v;
  for (const auto& e : o.errors) s += " error:" + e;
  if (o.kind == Kind::kService) {
    const ServiceSpec& svc = *o.svc;
    s += " type=" + svc.type + " sharing=" + svc.sharing_key;
    for (const auto& b : svc.requested) s += " asks:" + b.field.str() + "=" + b.block.ToString();
    for (const auto& b : svc.held) s += " holds:" + b.field.str() + "=" + b.block.ToString();
    for (const auto& p : svc.ports) s += " port:" + std::to_string(p.port) + "/" + p.protocol;
  }
  return s;
}

inline std::string ReviewSummary(const DecodedReview& d) {
  const AdmissionOutcome& o = d.outcome;
  std::string s = "uid=" + o.uid + " kind=" + o.kind + " op=" + o.operation + " by=" + o.requester +
                  " dry=" + std::to_string(o.dry_run) + " answered=" + std::to_string(d.answered) +
                  " verdict=" + o.verdict + " message=" + o.message + " body=" + o.body;
  if (d.answered) return s;
  s += " named=" + std::to_string(d.named) + " opcode=" + std::to_string(static_cast<int>(d.op));
  s += "\n  obj: " + (d.obj ? ObjectSummary(*d.obj) : "none");
  s += "\n  old: " + (d.old_obj ? ObjectSummary(*d.old_obj) : "none");
  for (const auto& p : d.problems) s += "\n  problem: " + p;
  return s;
}

}  // namespace ipguard::testing_util

#endif  // IPGUARD_TESTS_REVIEW_SUMMARY_H_
