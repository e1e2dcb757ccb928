// Exponential backoff with jitter: base * 2^failures, capped, plus up to
// `jitter` of itself at random so that many clients retrying at once spread
// out. Thread-compatible.
#ifndef IPGUARD_KUBE_BACKOFF_H_
#define IPGUARD_KUBE_BACKOFF_H_

#include <chrono>
#include <cstdint>
#include <random>

namespace ipguard::kube {

class Backoff {
 public:
  using Duration = std::chrono::milliseconds;

  Backoff(Duration base, Duration cap, double jitter = 0.2, uint64_t seed = 42)
      : base_(base), cap_(cap), jitter_(jitter), rng_(seed) {}

  // The delay before retry number `failures` (0 for the first retry).
  Duration Delay(int failures) {
    int64_t d = base_.count();
    for (int i = 0; i < failures && d < cap_.count(); ++i) d *= 2;
    if (d > cap_.count()) d = cap_.count();
    std::uniform_real_distribution<double> u(0.0, jitter_);
    return Duration(d + static_cast<int64_t>(static_cast<double>(d) * u(rng_)));
  }

  Duration base() const { return base_; }
  Duration cap() const { return cap_; }

 private:
  Duration base_;
  Duration cap_;
  double jitter_;
  std::mt19937_64 rng_;
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_BACKOFF_H_
