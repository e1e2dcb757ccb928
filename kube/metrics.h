// Metrics: counters, gauges and histograms with labels, rendered in the
// Prometheus text exposition format (version 0.0.4) for /metrics.
//
// Families are declared once with Describe(); a value for an undeclared
// family is an error in the caller and is dropped. Gauges that mirror state
// (pool addresses, conflicts) are recomputed by collectors that run at every
// scrape, so a deleted pool's series disappears instead of going stale.
//
// Thread-safe.
#ifndef IPGUARD_KUBE_METRICS_H_
#define IPGUARD_KUBE_METRICS_H_

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ipguard::kube {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  // `buckets` (upper bounds, ascending) for histograms; defaults suit
  // latencies from 100 µs to 10 s.
  void Describe(const std::string& name, Type type, const std::string& help,
                std::vector<double> buckets = {});
  void Add(const std::string& name, const Labels& labels, double v = 1);  // counter
  void Set(const std::string& name, const Labels& labels, double v);      // gauge
  void Observe(const std::string& name, const Labels& labels, double v);  // histogram
  // Drops every series of a family (a collector then sets the live ones).
  void Clear(const std::string& name);
  // Runs before each Render(), outside the lock.
  void AddCollector(std::function<void(Metrics&)> collector);

  std::string Render();
  // The current value of a counter or gauge series (0 when absent), for tests.
  double Value(const std::string& name, const Labels& labels) const;
  // The number of observations of a histogram series.
  uint64_t Count(const std::string& name, const Labels& labels) const;

 private:
  struct Series {
    double value = 0;
    std::vector<uint64_t> buckets;
    uint64_t count = 0;
  };
  struct Family {
    Type type = Type::kCounter;
    std::string help;
    std::vector<double> bounds;
    std::map<std::string, Series> series;  // by rendered label set
  };
  static std::string RenderLabels(const Labels& labels);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
  std::vector<std::function<void(Metrics&)>> collectors_;
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_METRICS_H_
