#include "kube/events.h"

#include <cstdio>
#include <random>

#include "core/address.h"
#include "core/json_util.h"

namespace ipguard::kube {
namespace {

using nlohmann::json;

constexpr size_t kMaxNote = 1024;
constexpr size_t kMaxName = 253;

}  // namespace

const Resource kEvents{"events.k8s.io", "v1", "events", true};

void DescribeEventMetrics(Metrics* metrics) {
  metrics->Describe("ipguard_events_total", Metrics::Type::kCounter,
                    "Events written about objects, by type, reason and result (written, failed).");
}

std::string EventName(const std::string& name, uint64_t unique) {
  char suffix[20];
  std::snprintf(suffix, sizeof(suffix), ".%016llx", static_cast<unsigned long long>(unique));
  std::string base = name.substr(0, kMaxName - 17);
  // A cut name must still end in an alphanumeric character.
  while (!base.empty() && !std::isalnum(static_cast<unsigned char>(base.back()))) base.pop_back();
  if (base.empty()) base = "object";
  return base + suffix;
}

EventRecorder::EventRecorder(Client* client, Clock* clock, std::string controller,
                             std::string instance, Metrics* metrics)
    : client_(client),
      clock_(clock),
      controller_(std::move(controller)),
      instance_(std::move(instance)),
      metrics_(metrics),
      base_((static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()) {}

ApiResult<json> EventRecorder::Emit(const json& regarding, const std::string& type,
                                    const std::string& reason, const std::string& note) {
  std::string name = JsonString(regarding, "metadata", "name");
  std::string ns = JsonString(regarding, "metadata", "namespace");
  std::string event_ns = ns.empty() ? "default" : ns;
  json ref = {{"apiVersion", JsonString(regarding, "apiVersion")},
              {"kind", JsonString(regarding, "kind")},
              {"name", name}};
  if (!ns.empty()) ref["namespace"] = ns;
  for (const char* k : {"uid", "resourceVersion"}) {
    std::string v = JsonString(regarding, "metadata", k);
    if (!v.empty()) ref[k] = v;
  }
  json event = {{"apiVersion", "events.k8s.io/v1"},
                {"kind", "Event"},
                {"metadata", {{"name", EventName(name, base_ + ++seq_)}, {"namespace", event_ns}}},
                {"eventTime", clock_->NowMicroTime()},
                {"reportingController", controller_},
                {"reportingInstance", CutUtf8(instance_, 128)},
                {"action", "Reconcile"},
                {"reason", reason},
                {"note", CutUtf8(note, kMaxNote)},
                {"type", type},
                {"regarding", ref}};
  auto result = client_->Create(kEvents, event_ns, event);
  if (metrics_) {
    metrics_->Add("ipguard_events_total",
                  {{"type", type}, {"reason", reason}, {"result", result.ok() ? "written" : "failed"}});
  }
  return result;
}

}  // namespace ipguard::kube
