#include "kube/clock.h"

#include <cctype>
#include <cstdlib>
#include <ctime>

namespace ipguard::kube {

std::string FormatRfc3339(int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string RealClock::NowRfc3339() const {
  return FormatRfc3339(std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count());
}

std::optional<int64_t> ParseRfc3339(const std::string& t) {
  std::tm tm{};
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
      t[16] != ':' || t.back() != 'Z') {
    return std::nullopt;
  }
  const char* end = strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end || (*end != 'Z' && *end != '.')) return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

std::optional<std::chrono::milliseconds> ParseDuration(const std::string& v) {
  double total_ms = 0;
  size_t i = 0;
  bool any = false;
  while (i < v.size()) {
    if (!std::isdigit(static_cast<unsigned char>(v[i])) && v[i] != '.') return std::nullopt;
    char* stop = nullptr;
    double n = std::strtod(v.c_str() + i, &stop);
    size_t used = static_cast<size_t>(stop - (v.c_str() + i));
    if (used == 0) return std::nullopt;
    i += used;
    std::string unit;
    while (i < v.size() && std::isalpha(static_cast<unsigned char>(v[i]))) unit += v[i++];
    if (unit == "ms") {
      total_ms += n;
    } else if (unit == "s") {
      total_ms += n * 1000;
    } else if (unit == "m") {
      total_ms += n * 60000;
    } else if (unit == "h") {
      total_ms += n * 3600000;
    } else {
      return std::nullopt;
    }
    any = true;
  }
  if (!any || total_ms > 24 * 3600000.0) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(total_ms));
}

RealClock* RealClock::Get() {
  static RealClock* clock = new RealClock();
  return clock;
}

// 2026-01-01T00:00:00Z: a fixed, readable start for test output.
FakeClock::FakeClock() : now_(TimePoint() + std::chrono::hours(1)), wall_seconds_(1767225600) {}

Clock::TimePoint FakeClock::Now() const {
  std::lock_guard<std::mutex> l(mu_);
  return now_;
}

std::string FakeClock::NowRfc3339() const {
  std::lock_guard<std::mutex> l(mu_);
  return FormatRfc3339(wall_seconds_ + std::chrono::duration_cast<std::chrono::seconds>(
                                           now_ - (TimePoint() + std::chrono::hours(1)))
                                           .count());
}

bool FakeClock::WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                          TimePoint deadline, const std::function<bool()>& pred) {
  while (!pred()) {
    if (Now() >= deadline) return false;
    cv.wait_for(lock, std::chrono::milliseconds(1));
  }
  return true;
}

void FakeClock::Advance(Duration d) {
  std::lock_guard<std::mutex> l(mu_);
  now_ += d;
}

}  // namespace ipguard::kube
