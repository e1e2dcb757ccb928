// WorkQueue: the controller's queue of object keys, with client-go's
// guarantees:
// - a key added many times before a worker takes it is processed once;
// - a key is never handed to two workers at once: added while it is being
//   processed, it comes back after Done();
// - AddRateLimited() retries a failing key with per-key exponential backoff
//   until Forget();
// - ShutDown() makes Get() return nothing, at once, to every worker.
// And one of its own: keys come at two priorities. AddLow() queues a key of
// a full pass (every object at start or on gaining leadership) behind every
// key Add()ed, however long ago the low one came, so a change the watch
// shows is reconciled before the rest of a pass; a low key Add()ed again is
// promoted. HoldLow() puts a low key back in front of the other low ones and
// hands out no low key until its time (a pass waits for its write slots
// without holding a worker or queueing ahead of changes).
//
// Thread-safe. Time comes from a Clock so tests can drive the delays.
#ifndef IPGUARD_KUBE_WORKQUEUE_H_
#define IPGUARD_KUBE_WORKQUEUE_H_

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kube/backoff.h"
#include "kube/clock.h"

namespace ipguard::kube {

class WorkQueue {
 public:
  WorkQueue(Clock* clock, Backoff backoff);

  void Add(const std::string& key);
  // Queues `key` behind every Add()ed key; a key already queued (at either
  // priority) keeps its place.
  void AddLow(const std::string& key);
  // Adds `key` once `delay` has passed; a key already waiting keeps the
  // earlier of its two times (one entry however often it is asked for).
  void AddAfter(const std::string& key, Clock::Duration delay);
  // Keys waiting for their time (for tests).
  size_t Waiting() const {
    std::lock_guard<std::mutex> l(mu_);
    return waiting_.size();
  }
  void AddRateLimited(const std::string& key);
  // Clears the key's failure count (after a success).
  void Forget(const std::string& key);
  int Failures(const std::string& key) const;

  // Blocks until a key is ready or the queue shuts down (nullopt). `low`,
  // when given, says whether the key came from AddLow() (and was not Add()ed
  // again since).
  std::optional<std::string> Get(bool* low = nullptr);
  // For a low key in hand: after Done() it goes back in front of the low
  // keys, and no low key is handed out until `wait` has passed (the keys of
  // Add() and AddAfter() come as usual). A key Add()ed meanwhile comes back
  // at its priority as usual.
  void HoldLow(const std::string& key, Clock::Duration wait);
  // Must follow every key Get() returned.
  void Done(const std::string& key);

  void ShutDown();
  bool shutting_down() const;
  // Keys ready now, at either priority (not counting delayed ones or those
  // in processing).
  size_t Len() const;
  // Of them, the low ones.
  size_t LowLen() const;

 private:
  struct Delayed {
    Clock::TimePoint when;
    std::string key;
    bool operator>(const Delayed& o) const { return when > o.when; }
  };
  void AddLocked(const std::string& key, bool low);
  // Pops the next low key that is still low and not in processing.
  std::optional<std::string> PopLowLocked();
  size_t LowLenLocked() const;
  void PromoteDueLocked();

  Clock* clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Backoff backoff_;
  std::deque<std::string> queue_;
  // Low keys in order; an entry whose key is no longer queued low (promoted,
  // or handed out through an earlier entry) is skipped.
  std::deque<std::string> low_queue_;
  size_t low_count_ = 0;  // keys of dirty_ queued low
  Clock::TimePoint low_resume_{};       // no low key before this
  std::string held_;                    // HoldLow()'s key until its Done()
  // Queued, or to be re-queued after Done: whether low (one map, not two
  // sets: a pass of 100k keys holds each key twice, here and in its deque).
  std::unordered_map<std::string, bool> dirty_;
  std::unordered_set<std::string> processing_;  // handed to a worker
  std::priority_queue<Delayed, std::vector<Delayed>, std::greater<Delayed>> delayed_;
  std::unordered_map<std::string, Clock::TimePoint> waiting_;  // key -> its time in delayed_
  std::unordered_map<std::string, int> failures_;
  bool shutting_down_ = false;
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_WORKQUEUE_H_
