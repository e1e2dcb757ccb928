// AdmissionReview decoding and judging: any body gets a JSON response that
// echoes what it could, never a crash or a hang. And the projecting parser
// DecodeReview uses agrees with nlohmann/json: it takes nothing nlohmann
// refuses, declines valid JSON only for non-ASCII, deep nesting or a kept key
// written twice (which ParseJsonText then reports), and what
// it keeps equals nlohmann's document with the projection applied. And the
// in-place Service reader reads whatever it takes as the document reader does.
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/engine.h"
#include "core/json_projection.h"
#include "core/json_text.h"
#include "tests/json_projection_reference.h"
#include "tests/review_summary.h"
#include "webhook/admission.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ipguard::Engine* engine = [] {
    auto* e = new ipguard::Engine();
    auto net = ipguard::ParseObject(nlohmann::json::parse(R"({"apiVersion":"ipguard.io/v1alpha1",
      "kind":"LogicalNetwork","metadata":{"name":"lnet"},"spec":{"vmSwitchName":"s",
      "ipAllocationMethod":"Static","addressPrefix":"10.0.0.0/24","gateway":"10.0.0.1",
      "dnsServers":["10.0.0.2"],"ipPools":[{"start":"10.0.0.50","end":"10.0.0.99"}]}})"));
    e->Upsert(*net);
    return e;
  }();
  std::string_view body(reinterpret_cast<const char*>(data), size);
  const ipguard::JsonProjection& projection = ipguard::AdmissionReviewProjection();
  auto projected = ipguard::ParseProjected(body, projection);
  auto full = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  const bool repeats_kept_key =
      !ipguard::ParseJsonText(body, std::numeric_limits<int>::max(), projection).duplicates.empty();
  if (projected) {
    if (full.is_discarded()) std::abort();  // took what is not JSON
    if (repeats_kept_key) std::abort();     // took a kept key written twice
    if (!ipguard::testing_util::SameJson(*projected, ipguard::Project(full, projection))) {
      std::abort();  // kept something else than nlohmann reads
    }
  } else if (!full.is_discarded()) {
    bool ascii = true;
    for (unsigned char c : body) ascii = ascii && c < 0x80;
    if (ascii && !repeats_kept_key &&
        ipguard::testing_util::Depth(full, ipguard::kMaxScanDepth + 1) <= ipguard::kMaxScanDepth) {
      std::abort();  // declined JSON it should take
    }
  }
  if (auto fast = ipguard::DecodeServiceReview(body)) {
    ipguard::DecodedReview doc = ipguard::DecodeReviewDocument(body, {true});
    if (ipguard::testing_util::ReviewSummary(*fast) != ipguard::testing_util::ReviewSummary(doc)) {
      std::abort();  // the two readers disagree
    }
  }
  ipguard::AdmissionOutcome out = ipguard::Admit(body, *engine, {true});
  auto response = nlohmann::json::parse(out.body, nullptr, false);
  if (response.is_discarded() || !response.contains("response")) std::abort();
  return 0;
}
