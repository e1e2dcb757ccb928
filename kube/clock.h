// Clock: time as the kube layer sees it, so tests can drive backoff, leases
// and timeouts with a fake one.
//
// Thread-safe.
#ifndef IPGUARD_KUBE_CLOCK_H_
#define IPGUARD_KUBE_CLOCK_H_

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace ipguard::kube {

// Seconds since the Unix epoch as RFC 3339 UTC ("2026-11-24T10:00:00Z").
std::string FormatRfc3339(int64_t unix_seconds);
// The reverse, for "YYYY-MM-DDTHH:MM:SS" with "Z" or fractional seconds;
// nullopt for anything else.
std::optional<int64_t> ParseRfc3339(const std::string& text);

// A duration written as Go and Kubernetes write them ("10s", "1m30s",
// "500ms"), up to a day; nullopt for anything else.
std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text);

class Clock {
 public:
  using Duration = std::chrono::steady_clock::duration;
  using TimePoint = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  // Wall-clock time in RFC 3339 UTC with seconds, as Kubernetes writes it
  // ("2026-11-24T10:00:00Z").
  virtual std::string NowRfc3339() const = 0;
  // The same with microseconds, as MicroTime fields want it
  // ("2026-11-24T10:00:00.000000Z").
  std::string NowMicroTime() const {
    std::string s = NowRfc3339();
    if (!s.empty() && s.back() == 'Z') s.insert(s.size() - 1, ".000000");
    return s;
  }
  // Waits on `cv` (with `lock` held) until `pred()` is true or `deadline`
  // passes on this clock; returns pred().
  virtual bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                         TimePoint deadline, const std::function<bool()>& pred) = 0;
};

class RealClock : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  std::string NowRfc3339() const override;
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 TimePoint deadline, const std::function<bool()>& pred) override {
    return cv.wait_until(lock, deadline, pred);
  }
  static RealClock* Get();
};

// Time moves only when Advance() is called. Waiters poll every millisecond
// of real time, so an Advance() is seen promptly without any registration.
class FakeClock : public Clock {
 public:
  FakeClock();
  TimePoint Now() const override;
  std::string NowRfc3339() const override;
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 TimePoint deadline, const std::function<bool()>& pred) override;
  void Advance(Duration d);

 private:
  mutable std::mutex mu_;
  TimePoint now_;
  int64_t wall_seconds_;
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_CLOCK_H_
