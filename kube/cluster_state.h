// ClusterState: the core Engine as this replica sees the cluster, shared by
// the informers (writers), the webhook and the controller (readers).
//
// It holds what the watches show, plus objects this replica's webhook has
// admitted that no watch has shown yet ("pending"). Holding them closes the
// window in which two conflicting writes could both be admitted: the second
// is judged against the first even before the API server has stored it.
// A pending object leaves when the watch shows its key, or after a short TTL
// (the API server may have failed to store it; it must not block the
// address for ever), when what the watch showed before comes back.
//
// Thread-safe. Reads and judgements take a shared lock and never wait on the
// network; holding takes the exclusive lock for the length of one hold (and
// of one Review, when something was written since the shared judgement).
#ifndef IPGUARD_KUBE_CLUSTER_STATE_H_
#define IPGUARD_KUBE_CLUSTER_STATE_H_

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/engine.h"
#include "kube/clock.h"
#include "kube/store.h"

namespace ipguard::kube {

class ClusterState {
 public:
  ClusterState(Options options, Clock* clock,
               Clock::Duration pending_ttl = std::chrono::seconds(30));

  // The informers' side: `obj` as the API server stores it (kind and
  // apiVersion present). Objects of kinds ipguard does not know, and
  // Services that are not of type LoadBalancer, are not kept. Returns the
  // keys whose status may have changed: the object and its neighbours
  // before and after the change.
  std::vector<std::string> Apply(EventType type, const nlohmann::json& obj);

  // Runs `fn` on the engine under the shared lock.
  template <typename Fn>
  auto Read(Fn&& fn) const {
    std::shared_lock<std::shared_mutex> l(mu_);
    return fn(static_cast<const Engine&>(engine_));
  }

  // The webhook's side: judges with `judge` and, when the verdict allows
  // and `hold` is given, keeps *hold as pending (moved from: `judge` is not
  // called again after that). A verdict that holds nothing is reached under
  // the shared lock; one that holds is held under the exclusive lock, judged
  // again there if anything was written since, so two conflicting writes
  // cannot both pass.
  Verdict JudgeAndHold(const std::function<Verdict(const Engine&)>& judge, Object* hold);

  // Drops the pending objects whose TTL has passed, restoring what the
  // watches showed; returns the keys affected (as Apply does).
  std::vector<std::string> ExpirePending();
  size_t pending() const;

 private:
  struct Pending {
    Clock::TimePoint deadline;
    std::optional<Object> shown;  // what the watch showed before, if anything
  };
  void Collect(const std::string& key, std::vector<std::string>* out) const;

  Clock* clock_;
  Clock::Duration ttl_;
  mutable std::shared_mutex mu_;
  Engine engine_;
  std::map<std::string, Pending> pending_;
  // Counts changes to engine_ (under the exclusive lock), so a hold can tell
  // whether its judgement under the shared lock still stands.
  uint64_t writes_ = 0;
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_CLUSTER_STATE_H_
