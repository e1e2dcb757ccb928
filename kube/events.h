// EventRecorder: writes events.k8s.io/v1 Events about an object, such as
// IPConflict (Warning) and ConflictResolved (Normal). Events of
// cluster-scoped objects go to the "default" namespace, as kubectl looks
// for them there. Event names are `<object name>.<16 hex digits>`, as
// client-go names them: a valid DNS subdomain whatever the reporting
// instance is called. A failed write is returned and counted, never retried
// here: events are best effort and the next transition writes again.
//
// Thread-safe.
#ifndef IPGUARD_KUBE_EVENTS_H_
#define IPGUARD_KUBE_EVENTS_H_

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>

#include "kube/client.h"
#include "kube/clock.h"
#include "kube/metrics.h"

namespace ipguard::kube {

extern const Resource kEvents;

// Declares ipguard_events_total (events by type, reason and result) in
// `metrics`.
void DescribeEventMetrics(Metrics* metrics);

// The name of an event about the object `name`: `name.<hex>`, with `name`
// cut so that the whole stays within the 253 characters of a DNS subdomain.
std::string EventName(const std::string& name, uint64_t unique);

class EventRecorder {
 public:
  // `metrics` may be null.
  EventRecorder(Client* client, Clock* clock, std::string controller, std::string instance,
                Metrics* metrics = nullptr);

  // type is "Normal" or "Warning"; `note` is cut to the 1 kB the API allows.
  ApiResult<nlohmann::json> Emit(const nlohmann::json& regarding, const std::string& type,
                                 const std::string& reason, const std::string& note);

 private:
  Client* client_;
  Clock* clock_;
  std::string controller_;
  std::string instance_;
  Metrics* metrics_;
  // Names are base_ + a sequence number: unique within this process, and
  // across processes (base_ is random), like client-go's UnixNano suffix.
  uint64_t base_;
  std::atomic<uint64_t> seq_{0};
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_EVENTS_H_
