#include "kube/leader.h"

#include <gtest/gtest.h>

#include <thread>

namespace ipguard::kube {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// One Lease behind GET, POST and PUT, with resourceVersion compare-and-swap
// as the API server does it (409 on a stale version).
class LeaseServer : public Transport {
 public:
  Result<HttpResponse> Do(const HttpRequest& r) override {
    std::lock_guard<std::mutex> l(mu_);
    if (down_) return Status::Error("connection refused");
    const std::string base = "/apis/coordination.k8s.io/v1/namespaces/ns/leases";
    if (r.method == "GET" && r.path == base + "/lock") {
      if (lease_.is_null()) return HttpResponse{404, R"({"kind":"Status","code":404,"reason":"NotFound"})", {}};
      return HttpResponse{200, lease_.dump(), {}};
    }
    if (r.method == "POST" && r.path == base) {
      if (!lease_.is_null()) return HttpResponse{409, R"({"kind":"Status","code":409,"reason":"AlreadyExists"})", {}};
      lease_ = json::parse(r.body);
      lease_["metadata"]["resourceVersion"] = std::to_string(++rv_);
      return HttpResponse{201, lease_.dump(), {}};
    }
    if (r.method == "PUT" && r.path == base + "/lock") {
      json update = json::parse(r.body);
      if (update["metadata"]["resourceVersion"] != lease_["metadata"]["resourceVersion"]) {
        return HttpResponse{409, R"({"kind":"Status","code":409,"reason":"Conflict"})", {}};
      }
      lease_ = update;
      lease_["metadata"]["resourceVersion"] = std::to_string(++rv_);
      ++writes_;
      return HttpResponse{200, lease_.dump(), {}};
    }
    return HttpResponse{404, "", {}};
  }
  Result<HttpResponse> Stream(const HttpRequest&, const std::function<bool(std::string_view)>&) override {
    return Status::Error("no watches here");
  }
  std::string Holder() {
    std::lock_guard<std::mutex> l(mu_);
    return lease_.is_null() ? "" : lease_["spec"]["holderIdentity"].get<std::string>();
  }
  int64_t Transitions() {
    std::lock_guard<std::mutex> l(mu_);
    return lease_["spec"]["leaseTransitions"].get<int64_t>();
  }
  void SetDown(bool down) {
    std::lock_guard<std::mutex> l(mu_);
    down_ = down;
  }

 private:
  std::mutex mu_;
  json lease_;
  int rv_ = 0;
  int writes_ = 0;
  bool down_ = false;
};

LeaderOptions Opts(const std::string& id) {
  LeaderOptions o;
  o.ns = "ns";
  o.name = "lock";
  o.identity = id;
  return o;
}

TEST(LeaderElection, OneHolderAtATimeAndTakeoverAfterExpiry) {
  LeaseServer server;
  Client client(&server);
  FakeClock clock;
  LeaderElector a(&client, &clock, Opts("a")), b(&client, &clock, Opts("b"));
  EXPECT_TRUE(a.TryAcquireOrRenew());  // creates the Lease
  EXPECT_EQ(server.Holder(), "a");
  EXPECT_FALSE(b.TryAcquireOrRenew());
  clock.Advance(seconds(2));
  EXPECT_TRUE(a.TryAcquireOrRenew());  // renews
  EXPECT_FALSE(b.TryAcquireOrRenew());
  // a goes silent; b sees the record unchanged for a full lease duration.
  clock.Advance(seconds(14));
  EXPECT_FALSE(b.TryAcquireOrRenew()) << "the record changed 14 s ago here (a's last renew)";
  clock.Advance(seconds(2));
  EXPECT_TRUE(b.TryAcquireOrRenew());
  EXPECT_EQ(server.Holder(), "b");
  EXPECT_EQ(server.Transitions(), 1);
  EXPECT_FALSE(a.TryAcquireOrRenew());
}

TEST(LeaderElection, RunCallbacksRenewDeadlineAndRelease) {
  LeaseServer server;
  Client client(&server);
  FakeClock clock;
  LeaderElector a(&client, &clock, Opts("a"));
  std::atomic<int> started{0}, stopped{0};
  a.on_started = [&] { ++started; };
  a.on_stopped = [&] { ++stopped; };
  std::thread t([&] { a.Run(); });
  for (int i = 0; i < 500 && !a.IsLeader(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_TRUE(a.IsLeader());
  EXPECT_EQ(started.load(), 1);
  // The API server goes away: after renew_deadline a stops leading.
  server.SetDown(true);
  for (int i = 0; i < 8 && a.IsLeader(); ++i) {
    clock.Advance(seconds(2));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(a.IsLeader());
  EXPECT_EQ(stopped.load(), 1);
  server.SetDown(false);
  for (int i = 0; i < 50 && !a.IsLeader(); ++i) {
    clock.Advance(seconds(2));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(a.IsLeader()) << "leads again once the lease can be renewed";
  a.Stop();
  t.join();
  EXPECT_EQ(server.Holder(), "") << "released on Stop so a successor need not wait";
  // A successor takes it at once.
  LeaderElector b(&client, &clock, Opts("b"));
  EXPECT_TRUE(b.TryAcquireOrRenew());
}

}  // namespace
}  // namespace ipguard::kube
