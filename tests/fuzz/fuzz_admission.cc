// AdmissionReview decoding and judging: any body gets a JSON response that
// echoes what it could, never a crash or a hang.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/engine.h"
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
  ipguard::AdmissionOutcome out = ipguard::Admit(body, *engine, {true});
  auto response = nlohmann::json::parse(out.body, nullptr, false);
  if (response.is_discarded() || !response.contains("response")) std::abort();
  return 0;
}
