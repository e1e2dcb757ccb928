#include "kube/cluster_state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "tests/unit/test_util.h"

namespace ipguard::kube {
namespace {

using nlohmann::json;
using testing_util::Cluster;
using testing_util::Network;
using testing_util::Obj;
using testing_util::Yaml;

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

Verdict Create(ClusterState* state, const Object& obj) {
  return state->JudgeAndHold(
      [&](const Engine& e) { return e.Review(Operation::kCreate, nullptr, &obj); }, &obj);
}

class ClusterStateTest : public testing::Test {
 protected:
  FakeClock clock_;
  ClusterState state_{Options{}, &clock_, std::chrono::seconds(30)};
};

TEST_F(ClusterStateTest, ApplyReturnsTheObjectAndItsNeighbours) {
  state_.Apply(EventType::kAdded,
               Yaml(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99")));
  auto keys = state_.Apply(EventType::kAdded, Yaml(Cluster("t", "a", "lnet", "10.20.0.60")));
  EXPECT_EQ(keys.front(), "WorkloadCluster/t/a");
  EXPECT_TRUE(Has(keys, "LogicalNetwork//lnet"))
      << "its network (capacity, clusters, and the collision)";
  // Deleting it touches the network again, whose counts change.
  keys = state_.Apply(EventType::kDeleted, Yaml(Cluster("t", "a", "lnet", "10.20.0.60")));
  EXPECT_TRUE(Has(keys, "LogicalNetwork//lnet"));
  EXPECT_EQ(state_.Read([](const Engine& e) { return e.Find("WorkloadCluster/t/a"); }), nullptr);
}

TEST_F(ClusterStateTest, ServicesThatAreNotLoadBalancersAreNotKept) {
  json svc = {{"apiVersion", "v1"},
              {"kind", "Service"},
              {"metadata", {{"name", "web"}, {"namespace", "default"}}},
              {"spec", {{"type", "ClusterIP"}}}};
  state_.Apply(EventType::kAdded, svc);
  EXPECT_EQ(state_.Read([](const Engine& e) { return e.size(); }), 0u);
  svc["spec"] = {{"type", "LoadBalancer"}, {"loadBalancerIP", "10.30.0.5"}};
  state_.Apply(EventType::kModified, svc);
  EXPECT_EQ(state_.Read([](const Engine& e) { return e.size(); }), 1u);
  svc["spec"] = {{"type", "ClusterIP"}};
  state_.Apply(EventType::kModified, svc);
  EXPECT_EQ(state_.Read([](const Engine& e) { return e.size(); }), 0u)
      << "type changed away from LoadBalancer";
}

TEST_F(ClusterStateTest, SecondConflictingCreateIsDeniedBeforeAnyWatchShowsTheFirst) {
  state_.Apply(EventType::kAdded,
               Yaml(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99")));
  Object a = Obj(Cluster("t", "a", "lnet", "10.20.0.10"));
  Object b = Obj(Cluster("t", "b", "lnet", "10.20.0.10"));
  EXPECT_TRUE(Create(&state_, a).allowed());
  Verdict second = Create(&state_, b);
  ASSERT_FALSE(second.allowed());
  EXPECT_NE(second.Message().find("WorkloadCluster t/a"), std::string::npos) << second.Message();
  EXPECT_EQ(state_.pending(), 1u);
}

TEST_F(ClusterStateTest, ManyThreadsClaimingOneAddressAdmitExactlyOne) {
  state_.Apply(EventType::kAdded,
               Yaml(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99")));
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        Object o = Obj(Cluster("t", "c" + std::to_string(t * 100 + i), "lnet", "10.20.0.10"));
        if (Create(&state_, o).allowed()) ++admitted;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(admitted.load(), 1);
}

TEST_F(ClusterStateTest, WatchReplacesPendingAndTtlReleasesAnUnstoredAdmission) {
  state_.Apply(EventType::kAdded,
               Yaml(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99")));
  Object a = Obj(Cluster("t", "a", "lnet", "10.20.0.10"));
  ASSERT_TRUE(Create(&state_, a).allowed());
  state_.Apply(EventType::kAdded, Yaml(Cluster("t", "a", "lnet", "10.20.0.10")));
  EXPECT_EQ(state_.pending(), 0u) << "the watch showed it";

  // Admitted, but the API server never stored it: after the TTL the address
  // is free again.
  Object b = Obj(Cluster("t", "b", "lnet", "10.20.0.11"));
  ASSERT_TRUE(Create(&state_, b).allowed());
  Object c = Obj(Cluster("t", "c", "lnet", "10.20.0.11"));
  EXPECT_FALSE(Create(&state_, c).allowed());
  clock_.Advance(std::chrono::seconds(29));
  EXPECT_TRUE(state_.ExpirePending().empty());
  clock_.Advance(std::chrono::seconds(2));
  auto keys = state_.ExpirePending();
  EXPECT_TRUE(Has(keys, "WorkloadCluster/t/b"));
  EXPECT_EQ(state_.pending(), 0u);
  EXPECT_TRUE(Create(&state_, c).allowed());
}

TEST_F(ClusterStateTest, ExpiredUpdateRestoresWhatTheWatchShowed) {
  state_.Apply(EventType::kAdded,
               Yaml(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99")));
  state_.Apply(EventType::kAdded, Yaml(Cluster("t", "a", "lnet", "10.20.0.10", 3)));
  Object bigger = Obj(Cluster("t", "a", "lnet", "10.20.0.10", 9));
  state_.JudgeAndHold([](const Engine&) { return Verdict(); }, &bigger);
  EXPECT_EQ(state_.Read([](const Engine& e) { return e.UsageOf("lnet").required_by_nodes; }), 11);
  clock_.Advance(std::chrono::seconds(31));
  state_.ExpirePending();
  EXPECT_EQ(state_.Read([](const Engine& e) { return e.UsageOf("lnet").required_by_nodes; }), 5);
}

}  // namespace
}  // namespace ipguard::kube
