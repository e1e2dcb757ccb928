#include "kube/metrics.h"

#include <cmath>
#include <sstream>

namespace ipguard::kube {
namespace {

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  std::ostringstream out;
  out.precision(9);
  out << v;
  return out.str();
}

const char* TypeName(Metrics::Type t) {
  switch (t) {
    case Metrics::Type::kCounter:
      return "counter";
    case Metrics::Type::kGauge:
      return "gauge";
    case Metrics::Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// The label set with one more label, for histogram buckets.
std::string WithLabel(const std::string& rendered, const std::string& extra) {
  if (rendered.empty()) return "{" + extra + "}";
  return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

}  // namespace

std::string Metrics::RenderLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ",";
    out += labels[i].first + "=\"";
    for (char c : labels[i].second) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '"') {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += "\"";
  }
  return out + "}";
}

void Metrics::Describe(const std::string& name, Type type, const std::string& help,
                       std::vector<double> buckets) {
  std::lock_guard<std::mutex> l(mu_);
  Family& f = families_[name];
  f.type = type;
  f.help = help;
  if (type == Type::kHistogram) {
    f.bounds = buckets.empty()
                   ? std::vector<double>{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10}
                   : std::move(buckets);
  }
}

void Metrics::Add(const std::string& name, const Labels& labels, double v) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type != Type::kCounter || v < 0) return;
  it->second.series[RenderLabels(labels)].value += v;
}

void Metrics::Set(const std::string& name, const Labels& labels, double v) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type != Type::kGauge) return;
  it->second.series[RenderLabels(labels)].value = v;
}

void Metrics::Observe(const std::string& name, const Labels& labels, double v) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type != Type::kHistogram) return;
  Family& f = it->second;
  Series& s = f.series[RenderLabels(labels)];
  if (s.buckets.empty()) s.buckets.assign(f.bounds.size(), 0);
  for (size_t i = 0; i < f.bounds.size(); ++i) {
    if (v <= f.bounds[i]) ++s.buckets[i];
  }
  ++s.count;
  s.value += v;
}

void Metrics::Clear(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = families_.find(name);
  if (it != families_.end()) it->second.series.clear();
}

void Metrics::AddCollector(std::function<void(Metrics&)> collector) {
  std::lock_guard<std::mutex> l(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Metrics::Render() {
  std::vector<std::function<void(Metrics&)>> collectors;
  {
    std::lock_guard<std::mutex> l(mu_);
    collectors = collectors_;
  }
  for (auto& c : collectors) c(*this);

  std::lock_guard<std::mutex> l(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + TypeName(f.type) + "\n";
    for (const auto& [labels, s] : f.series) {
      if (f.type != Type::kHistogram) {
        out += name + labels + " " + Number(s.value) + "\n";
        continue;
      }
      for (size_t i = 0; i < f.bounds.size(); ++i) {
        out += name + "_bucket" + WithLabel(labels, "le=\"" + Number(f.bounds[i]) + "\"") + " " +
               std::to_string(s.buckets[i]) + "\n";
      }
      out += name + "_bucket" + WithLabel(labels, "le=\"+Inf\"") + " " + std::to_string(s.count) +
             "\n";
      out += name + "_sum" + labels + " " + Number(s.value) + "\n";
      out += name + "_count" + labels + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

double Metrics::Value(const std::string& name, const Labels& labels) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  auto s = it->second.series.find(RenderLabels(labels));
  return s == it->second.series.end() ? 0 : s->second.value;
}

uint64_t Metrics::Count(const std::string& name, const Labels& labels) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  auto s = it->second.series.find(RenderLabels(labels));
  return s == it->second.series.end() ? 0 : s->second.count;
}

}  // namespace ipguard::kube
