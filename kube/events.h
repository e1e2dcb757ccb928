// EventRecorder: writes events.k8s.io/v1 Events about an object, such as
// IPConflict (Warning) and ConflictResolved (Normal). Events of
// cluster-scoped objects go to the "default" namespace, as kubectl looks
// for them there. A failed write is returned, never retried here: events are
// best effort and the next reconcile writes again if the condition holds.
//
// Thread-safe.
#ifndef IPGUARD_KUBE_EVENTS_H_
#define IPGUARD_KUBE_EVENTS_H_

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>

#include "kube/client.h"
#include "kube/clock.h"

namespace ipguard::kube {

extern const Resource kEvents;

class EventRecorder {
 public:
  EventRecorder(Client* client, Clock* clock, std::string controller, std::string instance);

  // type is "Normal" or "Warning"; `note` is cut to the 1 kB the API allows.
  ApiResult<nlohmann::json> Emit(const nlohmann::json& regarding, const std::string& type,
                                 const std::string& reason, const std::string& note);

 private:
  Client* client_;
  Clock* clock_;
  std::string controller_;
  std::string instance_;
  std::atomic<uint64_t> seq_{0};
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_EVENTS_H_
