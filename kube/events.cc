#include "kube/events.h"

#include <cstdio>

#include "core/json_util.h"

namespace ipguard::kube {
namespace {

using nlohmann::json;

constexpr size_t kMaxNote = 1024;

}  // namespace

const Resource kEvents{"events.k8s.io", "v1", "events", true};

EventRecorder::EventRecorder(Client* client, Clock* clock, std::string controller,
                             std::string instance)
    : client_(client),
      clock_(clock),
      controller_(std::move(controller)),
      instance_(std::move(instance)) {}

ApiResult<json> EventRecorder::Emit(const json& regarding, const std::string& type,
                                    const std::string& reason, const std::string& note) {
  std::string name = JsonString(regarding, "metadata", "name");
  std::string ns = JsonString(regarding, "metadata", "namespace");
  std::string event_ns = ns.empty() ? "default" : ns;
  std::string micro = clock_->NowMicroTime();
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), ".%llx", static_cast<unsigned long long>(++seq_));
  std::string text = note.size() > kMaxNote ? note.substr(0, kMaxNote - 3) + "..." : note;
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
                {"metadata", {{"name", name + suffix + "-" + instance_}, {"namespace", event_ns}}},
                {"eventTime", micro},
                {"reportingController", controller_},
                {"reportingInstance", instance_},
                {"action", "Reconcile"},
                {"reason", reason},
                {"note", text},
                {"type", type},
                {"regarding", ref}};
  return client_->Create(kEvents, event_ns, event);
}

}  // namespace ipguard::kube
