// LeaderElector: leader election on a coordination.k8s.io/v1 Lease, as
// client-go does it. Only the holder may write; a holder that cannot renew
// within renew_deadline stops leading before the lease can expire for the
// others (renew_deadline < lease_duration). Expiry of another holder's lease
// is judged on this process's own clock, from when its record last changed,
// so clock skew between machines does not matter. Stop() releases the lease
// so a successor need not wait it out.
//
// Thread-safe: IsLeader() may be called from any thread.
#ifndef IPGUARD_KUBE_LEADER_H_
#define IPGUARD_KUBE_LEADER_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

#include "kube/client.h"
#include "kube/clock.h"

namespace ipguard::kube {

extern const Resource kLeases;

struct LeaderOptions {
  std::string ns;
  std::string name = "ipguard-manager";
  std::string identity;  // unique per process: pod name plus a random suffix
  std::chrono::seconds lease_duration{15};
  std::chrono::seconds renew_deadline{10};
  std::chrono::seconds retry_period{2};
};

class LeaderElector {
 public:
  LeaderElector(Client* client, Clock* clock, LeaderOptions options);

  // Tries to acquire, then renews every retry_period, until Stop(). Calls
  // on_started when leadership begins and on_stopped when it ends (lost, or
  // given up at Stop()); it may begin again later.
  void Run();
  void Stop();
  bool IsLeader() const { return leader_.load(); }

  std::function<void()> on_started;
  std::function<void()> on_stopped;

  // One attempt; true when this process holds the lease afterwards.
  bool TryAcquireOrRenew();
  // Gives the lease up (holder cleared) if this process holds it.
  void Release();

 private:
  void SetLeader(bool leader);

  Client* client_;
  Clock* clock_;
  LeaderOptions options_;
  std::atomic<bool> leader_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  // The other holder's record as last seen, and when it last changed here.
  std::string observed_holder_;
  std::string observed_renew_;
  Clock::TimePoint observed_at_;
  std::string lease_rv_;
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_LEADER_H_
