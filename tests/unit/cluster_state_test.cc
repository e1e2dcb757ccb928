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

Verdict Create(ClusterState* state, Object obj) {
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

// Holding goes to the engine's small pending index, and what holds there
// is judged against like anything stored: a later write that overlaps it is
// denied in both directions, and the watch moves it to the main index.
TEST_F(ClusterStateTest, HeldObjectsLiveInThePendingIndexUntilTheWatchShowsThem) {
  state_.Apply(EventType::kAdded,
               Yaml(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99")));
  auto sizes = [&] {
    return state_.Read([](const Engine& e) {
      return std::make_pair(e.IndexSize(), e.PendingIndexSize());
    });
  };
  const auto before = sizes();
  Object a = Obj(Cluster("t", "a", "lnet", "10.20.0.10"));
  ASSERT_TRUE(Create(&state_, a).allowed());
  EXPECT_EQ(sizes(), std::make_pair(before.first + 1, size_t{1}));
  Verdict b = Create(&state_, Obj(Cluster("t", "b", "lnet", "10.20.0.10")));
  ASSERT_FALSE(b.allowed());
  EXPECT_NE(b.Message().find("WorkloadCluster t/a"), std::string::npos) << b.Message();
  // And the other way: a network written over the held address sees it.
  auto net_collisions = state_.Read([](const Engine& e) {
    Object gw = Obj(Network("lnet2", 10, "10.20.0.0/24", "10.20.0.10", "10.20.0.200", "10.20.0.210"));
    return e.Review(Operation::kCreate, nullptr, &gw).Message();
  });
  EXPECT_NE(net_collisions.find("WorkloadCluster t/a"), std::string::npos) << net_collisions;
  state_.Apply(EventType::kAdded, Yaml(Cluster("t", "a", "lnet", "10.20.0.10")));
  EXPECT_EQ(sizes(), std::make_pair(before.first + 1, size_t{0})) << "moved to the main index";
  EXPECT_FALSE(Create(&state_, Obj(Cluster("t", "b", "lnet", "10.20.0.10"))).allowed());
}

// A hold judged under the shared lock is not judged again under the
// exclusive one when nothing was written in between (a write in between is
// ManyThreadsClaimingOneAddressAdmitExactlyOne's case).
TEST_F(ClusterStateTest, AHoldWithNoWriteInBetweenIsJudgedOnce) {
  state_.Apply(EventType::kAdded,
               Yaml(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99")));
  Object a = Obj(Cluster("t", "a", "lnet", "10.20.0.10"));
  int calls = 0;
  auto judge = [&](const Engine& e) {
    ++calls;
    return e.Review(Operation::kCreate, nullptr, &a);
  };
  ASSERT_TRUE(state_.JudgeAndHold(judge, &a).allowed());
  EXPECT_EQ(calls, 1);
  // A dry run (nothing held) is judged once as well.
  calls = 0;
  Object b = Obj(Cluster("t", "b", "lnet", "10.20.0.10"));
  EXPECT_FALSE(state_
                   .JudgeAndHold(
                       [&](const Engine& e) {
                         ++calls;
                         return e.Review(Operation::kCreate, nullptr, &b);
                       },
                       nullptr)
                   .allowed());
  EXPECT_EQ(calls, 1);
}


Verdict CreateAs(ClusterState* state, Object obj, const std::string& requester) {
  return state->JudgeAndHold(
      [&](const Engine& e) { return e.Review(Operation::kCreate, nullptr, &obj); }, &obj,
      requester);
}

// A forged review squats an address for the TTL at most, and one requester
// squats at most its bound: past it, its oldest hold is released, so the
// real owner's request for that address is admitted again. Other
// requesters' holds are untouched.
TEST(ClusterStateBound, OneRequesterHoldsAtMostItsBound) {
  FakeClock clock;
  ClusterState state(Options{}, &clock, std::chrono::seconds(30), 3);
  state.Apply(EventType::kAdded,
              Yaml(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99")));
  ASSERT_TRUE(CreateAs(&state, Obj(Cluster("t", "gitops", "lnet", "10.20.0.30")), "argocd").allowed());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(CreateAs(&state, Obj(Cluster("x", "f" + std::to_string(i), "lnet",
                                             "10.20.0." + std::to_string(10 + i))),
                         "mallory")
                    .allowed());
  }
  EXPECT_EQ(state.pending(), 4u);
  EXPECT_FALSE(Create(&state, Obj(Cluster("t", "real", "lnet", "10.20.0.10"))).allowed())
      << "10.20.0.10 is held by mallory's first forged review";
  // A fourth hold of the same requester releases its first.
  ASSERT_TRUE(CreateAs(&state, Obj(Cluster("x", "f3", "lnet", "10.20.0.13")), "mallory").allowed());
  EXPECT_EQ(state.holds_released_over_bound(), 1u);
  EXPECT_EQ(state.pending(), 4u);
  EXPECT_TRUE(Create(&state, Obj(Cluster("t", "real", "lnet", "10.20.0.10"))).allowed());
  EXPECT_FALSE(Create(&state, Obj(Cluster("t", "other", "lnet", "10.20.0.30"))).allowed())
      << "argocd's hold stays";
  EXPECT_TRUE(Has(state.ExpirePending(), "WorkloadCluster/x/f0"))
      << "the released hold's key is handed to the controller";
  // The same object held again by the same requester is one hold, not two.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(CreateAs(&state, Obj(Cluster("t", "gitops", "lnet", "10.20.0.30")), "argocd").allowed());
  }
  EXPECT_EQ(state.holds_released_over_bound(), 1u);
  // Everything goes at the TTL, and nothing is left in the books.
  clock.Advance(std::chrono::seconds(31));
  state.ExpirePending();
  EXPECT_EQ(state.pending(), 0u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(CreateAs(&state, Obj(Cluster("y", "g" + std::to_string(i), "lnet",
                                             "10.20.0." + std::to_string(20 + i))),
                         "mallory")
                    .allowed());
  }
  EXPECT_EQ(state.holds_released_over_bound(), 1u) << "the expired holds no longer count";
}

}  // namespace
}  // namespace ipguard::kube
