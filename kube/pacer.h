// Pacer: spreads writes out to at most `per_second` on average, letting
// `burst` of them through at once after a quiet spell (the generic cell rate
// algorithm: each write takes the next free slot). Reserve() never blocks;
// it says how long the caller should wait for its slot, so a caller can put
// the work back on its queue instead of holding a thread. Thread-compatible.
#ifndef IPGUARD_KUBE_PACER_H_
#define IPGUARD_KUBE_PACER_H_

#include <algorithm>
#include <chrono>

namespace ipguard::kube {

class Pacer {
 public:
  using Clock = std::chrono::steady_clock;

  // per_second <= 0: no limit (every slot is now).
  Pacer(double per_second, int burst)
      : interval_(per_second > 0 ? std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(1.0 / per_second))
                                 : Clock::duration::zero()),
        tolerance_(interval_ * (std::max(burst, 1) - 1)) {}

  // Takes the next free slot: zero when it is now, else the wait until it.
  Clock::duration Reserve(Clock::time_point now) {
    if (interval_ == Clock::duration::zero()) return Clock::duration::zero();
    next_ = std::max(next_, now);  // a quiet spell leaves no credit beyond the burst
    Clock::time_point slot = std::max(now, next_ - tolerance_);
    next_ += interval_;
    return slot - now;
  }

  bool limited() const { return interval_ != Clock::duration::zero(); }

  // Gives back every slot taken: the next Reserve() is as after a quiet
  // spell. The pace itself is unchanged (limited() may be read meanwhile).
  void Reset() { next_ = Clock::time_point{}; }

 private:
  Clock::duration interval_;
  Clock::duration tolerance_;
  Clock::time_point next_{};  // the next free slot (the clock's epoch: now)
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_PACER_H_
