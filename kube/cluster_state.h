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
// What one requester (the review's userInfo.username) holds at once is
// bounded: past the bound its oldest hold is released (as if its TTL had
// passed), so whoever reaches the webhook port cannot squat more than that
// many addresses with forged reviews; writes are never refused for it.
//
// Thread-safe. Reads and judgements take a shared lock and never wait on the
// network; holding takes the exclusive lock for the length of one hold (and
// of one Review, when something was written since the shared judgement).
#ifndef IPGUARD_KUBE_CLUSTER_STATE_H_
#define IPGUARD_KUBE_CLUSTER_STATE_H_

#include <deque>
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
               Clock::Duration pending_ttl = std::chrono::seconds(30),
               size_t max_holds_per_requester = 256);

  // The informers' side: `obj` as the API server stores it (kind and
  // apiVersion present). Objects of kinds ipguard does not know, and
  // Services that are not of type LoadBalancer, are not kept. Returns the
  // keys whose status may have changed: the object and its neighbours
  // before and after the change, and the stored IPClaims it needed before
  // and after (whose holder changed).
  // With `collect` false the neighbours are not looked up and nothing is
  // returned (while the informers first list, nobody reconciles them).
  std::vector<std::string> Apply(EventType type, const nlohmann::json& obj, bool collect = true);

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
  // `requester` names who asked (userInfo.username; may be empty).
  // When `held` is given, it is set to the hold's number (0 when nothing
  // was held), for ReleaseHold().
  Verdict JudgeAndHold(const std::function<Verdict(const Engine&)>& judge, Object* hold,
                       const std::string& requester = "", uint64_t* held = nullptr);

  // Lets go of the hold numbered `seq` of `key` at once (its admission was
  // refused after all: its address was claimed elsewhere), restoring what
  // the watch showed; nothing when the key is no longer held under that
  // number. The keys affected come with the next ExpirePending().
  void ReleaseHold(const std::string& key, uint64_t seq);

  // Drops the pending objects whose TTL has passed, restoring what the
  // watches showed; returns the keys affected (as Apply does), those of
  // holds released over the requester bound since the last call included.
  std::vector<std::string> ExpirePending();
  size_t pending() const;
  // Holds released because their requester held too many.
  uint64_t holds_released_over_bound() const;

 private:
  struct Pending {
    Clock::TimePoint deadline;
    std::optional<Object> shown;  // what the watch showed before, if anything
    std::string requester;
    uint64_t seq = 0;  // tells this hold from a later one of the same key
  };
  void Collect(const std::string& key, std::vector<std::string>* out) const;
  // The keys of the stored IPClaims the object at `key` needs (so that the
  // leader looks at them again when their holder changes or goes).
  void CollectClaims(const std::string& key, std::vector<std::string>* out) const;
  // Removes a pending entry, keeping the per-requester counts; `restore`
  // puts back what the watch showed.
  std::map<std::string, Pending>::iterator DropPendingLocked(
      std::map<std::string, Pending>::iterator it, bool restore, std::vector<std::string>* affected);
  // Releases `requester`'s oldest hold.
  void ReleaseOldestLocked(const std::string& requester);

  Clock* clock_;
  Clock::Duration ttl_;
  mutable std::shared_mutex mu_;
  Engine engine_;
  std::map<std::string, Pending> pending_;
  size_t max_per_requester_;
  // Per requester: its holds in the order they were made (key and seq; an
  // entry whose hold is gone is skipped and dropped when met) and how many
  // are live.
  struct Holds {
    std::deque<std::pair<std::string, uint64_t>> order;
    size_t live = 0;
  };
  std::map<std::string, Holds> holds_;
  uint64_t hold_seq_ = 0;
  uint64_t released_over_bound_ = 0;
  std::vector<std::string> released_keys_;  // for the next ExpirePending()
  // Counts changes to engine_ (under the exclusive lock), so a hold can tell
  // whether its judgement under the shared lock still stands.
  uint64_t writes_ = 0;
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_CLUSTER_STATE_H_
