// ClaimWriter: writes the IPClaims of an admission to the management
// cluster's API server, the ledger every replica and agent shares.
//
// The webhook judges a write, then hands its claims here and answers when
// they are written: the API server's uniqueness of names decides between two
// requests for one address, whichever replica or cluster they reach. A claim
// that exists already for the same holder is the holder's own (a retry, an
// update); one held by another holder refuses the admission, naming that
// holder. The writes happen on the writer's own threads, never on a thread
// of the webhook server: while a claim is being created the API server calls
// the webhook about that claim, and that call must find a thread free.
//
// Every claim write is bounded by the admission's deadline; past it, the
// admission is refused (never admitted unclaimed). When a later claim of an
// object fails, the claims created for it are deleted again.
//
// Thread-safe.
#ifndef IPGUARD_WEBHOOK_CLAIMS_H_
#define IPGUARD_WEBHOOK_CLAIMS_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/engine.h"
#include "kube/client.h"
#include "kube/clock.h"
#include "kube/metrics.h"

namespace ipguard::webhook {

// What became of an admission's claims.
struct ClaimOutcome {
  bool ok = false;      // every claim is now the holder's
  std::string message;  // why not, worded for the denial
  int created = 0;      // claims this call created
  int existing = 0;     // claims the holder had already, or shares with their holder
  // The API server did not answer (no connection, no reply in time): the
  // ledger is unreachable, as opposed to refusing.
  bool unanswered = false;
};

// Where the webhook's claims go: a ClaimWriter, or a fake in tests.
class ClaimLedger {
 public:
  virtual ~ClaimLedger() = default;
  // Writes `claims` and calls `done` once with the outcome, from another
  // thread (or at once, from this one, when the claims cannot be taken).
  // Never blocks the caller on the network.
  // `shares` says whether the object may share an address with another
  // holder (two Services with one sharing key): it then rides on that
  // holder's claim. May be empty (never).
  virtual void Claim(std::vector<WantedClaim> claims, kube::Clock::TimePoint deadline,
                     std::function<void(ClaimOutcome)> done,
                     std::function<bool(const ClaimHolder&)> shares = {}) = 0;
};

struct ClaimWriterOptions {
  int threads = 4;
  // Admissions waiting for a thread; beyond this, refused at once.
  size_t max_waiting = 1000;
};

// Declares the claim metrics in `metrics`.
void DescribeClaimMetrics(kube::Metrics* metrics);

class ClaimWriter : public ClaimLedger {
 public:
  // `metrics` may be null.
  ClaimWriter(kube::Client* client, kube::Clock* clock, kube::Metrics* metrics,
              ClaimWriterOptions options = {});
  ~ClaimWriter() override;  // Stop()

  void Start();
  // Refuses what still waits ("shutting down"), finishes the writes in hand.
  void Stop();

  void Claim(std::vector<WantedClaim> claims, kube::Clock::TimePoint deadline,
             std::function<void(ClaimOutcome)> done,
             std::function<bool(const ClaimHolder&)> shares = {}) override;

  // One admission's claims, on the calling thread (the threads run this).
  ClaimOutcome Write(const std::vector<WantedClaim>& claims, kube::Clock::TimePoint deadline,
                     const std::function<bool(const ClaimHolder&)>& shares = {});

 private:
  struct Task {
    std::vector<WantedClaim> claims;
    kube::Clock::TimePoint deadline;
    std::function<void(ClaimOutcome)> done;
    std::function<bool(const ClaimHolder&)> shares;
  };
  void Run();
  // One claim: "" when it is the holder's now (`created` says whether this
  // call made it), else the denial.
  std::string WriteOne(const WantedClaim& claim, kube::Clock::TimePoint deadline,
                       const std::function<bool(const ClaimHolder&)>& shares, bool* created,
                       bool* unanswered);
  void Count(const char* result);

  kube::Client* client_;
  kube::Clock* clock_;
  kube::Metrics* metrics_;
  ClaimWriterOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> waiting_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ipguard::webhook

#endif  // IPGUARD_WEBHOOK_CLAIMS_H_
