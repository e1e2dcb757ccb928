#include "kube/metrics.h"

#include <gtest/gtest.h>

namespace ipguard::kube {
namespace {

TEST(MetricsTest, RendersCountersAndGaugesInTextFormat) {
  Metrics m;
  m.Describe("ipguard_admission_requests_total", Metrics::Type::kCounter, "Requests.");
  m.Describe("ipguard_leader", Metrics::Type::kGauge, "Leader.");
  m.Add("ipguard_admission_requests_total", {{"kind", "Service"}, {"verdict", "denied"}});
  m.Add("ipguard_admission_requests_total", {{"kind", "Service"}, {"verdict", "denied"}}, 2);
  m.Set("ipguard_leader", {}, 1);
  std::string text = m.Render();
  EXPECT_NE(text.find("# TYPE ipguard_admission_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("ipguard_admission_requests_total{kind=\"Service\",verdict=\"denied\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("# HELP ipguard_leader Leader.\n# TYPE ipguard_leader gauge\nipguard_leader 1\n"),
      std::string::npos);
  EXPECT_EQ(
      m.Value("ipguard_admission_requests_total", {{"kind", "Service"}, {"verdict", "denied"}}), 3);
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Metrics m;
  m.Describe("lat", Metrics::Type::kHistogram, "Latency.", {0.001, 0.01});
  m.Observe("lat", {}, 0.0005);
  m.Observe("lat", {}, 0.005);
  m.Observe("lat", {}, 5);
  std::string text = m.Render();
  EXPECT_NE(text.find("lat_bucket{le=\"0.001\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_bucket{le=\"0.01\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("lat_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_count 3\n"), std::string::npos);
  EXPECT_EQ(m.Count("lat", {}), 3u);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Metrics m;
  m.Describe("g", Metrics::Type::kGauge, "G.");
  m.Set("g", {{"name", "a\"b\\c\nd"}}, 1);
  EXPECT_NE(m.Render().find("g{name=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos);
}

TEST(MetricsTest, CollectorsRecomputeStateGaugesAtEachScrape) {
  Metrics m;
  m.Describe("pool", Metrics::Type::kGauge, "Pools.");
  std::vector<std::string> pools = {"a", "b"};
  m.AddCollector([&](Metrics& mm) {
    mm.Clear("pool");
    for (const auto& p : pools) mm.Set("pool", {{"name", p}}, 1);
  });
  EXPECT_NE(m.Render().find("pool{name=\"b\"} 1"), std::string::npos);
  pools = {"a"};
  std::string text = m.Render();
  EXPECT_EQ(text.find("pool{name=\"b\"}"), std::string::npos) << "a deleted pool's series must go";
  EXPECT_NE(text.find("pool{name=\"a\"} 1"), std::string::npos);
}

TEST(MetricsTest, UndeclaredOrMistypedSeriesAreDropped) {
  Metrics m;
  m.Describe("c", Metrics::Type::kCounter, "C.");
  m.Set("c", {}, 5);     // not a gauge
  m.Add("nope", {}, 1);  // not declared
  m.Add("c", {}, -1);    // counters only go up
  EXPECT_EQ(m.Value("c", {}), 0);
  EXPECT_EQ(m.Render().find("nope"), std::string::npos);
}

}  // namespace
}  // namespace ipguard::kube
