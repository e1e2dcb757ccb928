#include "kube/workqueue.h"
#include "kube/pacer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace ipguard::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

Backoff TestBackoff() { return Backoff(milliseconds(100), seconds(10), 0.0); }

TEST(Backoff, DoublesUpToTheCapWithBoundedJitter) {
  Backoff b(milliseconds(100), milliseconds(1000), 0.0);
  EXPECT_EQ(b.Delay(0), milliseconds(100));
  EXPECT_EQ(b.Delay(1), milliseconds(200));
  EXPECT_EQ(b.Delay(3), milliseconds(800));
  EXPECT_EQ(b.Delay(4), milliseconds(1000));
  EXPECT_EQ(b.Delay(60), milliseconds(1000));  // no overflow
  Backoff j(milliseconds(100), milliseconds(1000), 0.5, 7);
  for (int i = 0; i < 100; ++i) {
    auto d = j.Delay(2);
    EXPECT_GE(d, milliseconds(400));
    EXPECT_LE(d, milliseconds(600));
  }
}

TEST(WorkQueue, CollapsesDuplicates) {
  FakeClock clock;
  WorkQueue q(&clock, TestBackoff());
  q.Add("a");
  q.Add("b");
  q.Add("a");
  EXPECT_EQ(q.Len(), 2u);
  EXPECT_EQ(q.Get(), "a");
  EXPECT_EQ(q.Get(), "b");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueue, NeverHandsOneKeyToTwoWorkers) {
  FakeClock clock;
  WorkQueue q(&clock, TestBackoff());
  q.Add("a");
  ASSERT_EQ(q.Get(), "a");
  q.Add("a");  // changed again while being processed
  EXPECT_EQ(q.Len(), 0u) << "must wait for Done()";
  q.Add("a");
  q.Done("a");
  EXPECT_EQ(q.Len(), 1u) << "comes back once, collapsed";
  EXPECT_EQ(q.Get(), "a");
  q.Done("a");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueue, RetriesWithPerKeyBackoffOnTheClock) {
  FakeClock clock;
  WorkQueue q(&clock, TestBackoff());
  q.AddRateLimited("a");  // due in 100 ms
  q.AddRateLimited("b");  // due in 100 ms
  q.AddRateLimited("b");  // second failure: 200 ms, but b waits already, for the earlier time
  EXPECT_EQ(q.Failures("b"), 2);
  std::atomic<int> got{0};
  std::thread worker([&] {
    while (auto k = q.Get()) {
      ++got;
      q.Done(*k);
    }
  });
  std::this_thread::sleep_for(milliseconds(30));
  EXPECT_EQ(got.load(), 0) << "nothing is due before the clock moves";
  clock.Advance(milliseconds(100));
  for (int i = 0; i < 500 && got.load() < 2; ++i) std::this_thread::sleep_for(milliseconds(2));
  EXPECT_EQ(got.load(), 2) << "a and b (its first retry) are due";
  clock.Advance(milliseconds(100));
  std::this_thread::sleep_for(milliseconds(30));
  EXPECT_EQ(got.load(), 2) << "b waited once, as client-go's delaying queue keeps the earlier time";
  q.AddRateLimited("b");  // a failure after that retry: 400 ms
  clock.Advance(milliseconds(400));
  for (int i = 0; i < 500 && got.load() < 3; ++i) std::this_thread::sleep_for(milliseconds(2));
  EXPECT_EQ(got.load(), 3) << "b's next retry";
  q.Forget("b");
  EXPECT_EQ(q.Failures("b"), 0);
  q.ShutDown();
  worker.join();
}

TEST(WorkQueue, ShutDownReleasesEveryWorkerAndRefusesWork) {
  FakeClock clock;
  WorkQueue q(&clock, TestBackoff());
  std::vector<std::thread> workers;
  std::atomic<int> stopped{0};
  for (int i = 0; i < 4; ++i) {
    workers.emplace_back([&] {
      EXPECT_FALSE(q.Get().has_value());
      ++stopped;
    });
  }
  std::this_thread::sleep_for(milliseconds(20));
  q.ShutDown();
  for (auto& t : workers) t.join();
  EXPECT_EQ(stopped.load(), 4);
  q.Add("late");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueue, ManyWorkersProcessEveryKeyExactlyOnceAtATime) {
  RealClock clock;
  WorkQueue q(&clock, TestBackoff());
  std::mutex mu;
  std::unordered_set<std::string> active;
  std::atomic<bool> overlap{false};
  std::atomic<int> processed{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < 4; ++i) {
    workers.emplace_back([&] {
      while (auto k = q.Get()) {
        {
          std::lock_guard<std::mutex> l(mu);
          if (!active.insert(*k).second) overlap = true;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        {
          std::lock_guard<std::mutex> l(mu);
          active.erase(*k);
        }
        ++processed;
        q.Done(*k);
      }
    });
  }
  for (int round = 0; round < 200; ++round) q.Add("k" + std::to_string(round % 7));
  for (int i = 0; i < 1000 && (q.Len() > 0 || processed.load() < 7); ++i) {
    std::this_thread::sleep_for(milliseconds(2));
  }
  q.ShutDown();
  for (auto& t : workers) t.join();
  EXPECT_FALSE(overlap.load());
  EXPECT_GE(processed.load(), 7);
}

TEST(Pacer, LetsABurstThroughThenOneSlotPerInterval) {
  Pacer p(10, 3);  // 100 ms apart, 3 at once
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.Reserve(t0), milliseconds(0));
  EXPECT_EQ(p.Reserve(t0), milliseconds(0));
  EXPECT_EQ(p.Reserve(t0), milliseconds(0));
  // The burst is spent: each further write gets the next free slot.
  EXPECT_EQ(p.Reserve(t0), milliseconds(100));
  EXPECT_EQ(p.Reserve(t0), milliseconds(200));
  // Slots taken are kept: 250 ms later the next is at 300 ms.
  EXPECT_EQ(p.Reserve(t0 + milliseconds(250)), milliseconds(50));
  // After a quiet spell as long as the burst, the whole burst is back.
  auto later = t0 + milliseconds(2000);
  EXPECT_EQ(p.Reserve(later), milliseconds(0));
  EXPECT_EQ(p.Reserve(later), milliseconds(0));
  EXPECT_EQ(p.Reserve(later), milliseconds(0));
  EXPECT_EQ(p.Reserve(later), milliseconds(100));
}

TEST(Pacer, ResetGivesEverySlotBack) {
  Pacer p(1, 1);  // one a second
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.Reserve(t0), milliseconds(0));
  for (int i = 1; i <= 100; ++i) EXPECT_EQ(p.Reserve(t0), milliseconds(1000 * i));
  p.Reset();
  EXPECT_TRUE(p.limited());
  EXPECT_EQ(p.Reserve(t0), milliseconds(0)) << "as after a quiet spell";
  EXPECT_EQ(p.Reserve(t0), milliseconds(1000));
}

TEST(Pacer, ZeroMeansUnpaced) {
  Pacer p(0, 1);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.limited());
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(p.Reserve(t0), std::chrono::steady_clock::duration::zero());
}

}  // namespace

// A key asked for many times with a delay waits once, for the earliest time,
// and is handed out once.
TEST(WorkQueueTest, DelayedAddsOfOneKeyCollapse) {
  FakeClock clock;
  WorkQueue q(&clock, Backoff{std::chrono::milliseconds(5), std::chrono::seconds(1)});
  for (int i = 0; i < 1000; ++i) q.AddAfter("LogicalNetwork//lnet", std::chrono::seconds(1));
  q.AddAfter("LogicalNetwork//lnet", std::chrono::milliseconds(500));
  EXPECT_EQ(q.Waiting(), 1u);
  EXPECT_EQ(q.Len(), 0u);
  clock.Advance(std::chrono::milliseconds(600));
  auto k = q.Get();
  ASSERT_TRUE(k);
  EXPECT_EQ(*k, "LogicalNetwork//lnet");
  q.Done(*k);
  clock.Advance(std::chrono::seconds(2));
  EXPECT_EQ(q.Len(), 0u);
  EXPECT_EQ(q.Waiting(), 0u) << "the later asks were spent by the earlier time";
  // Asked again after that, it waits again.
  q.AddAfter("LogicalNetwork//lnet", std::chrono::seconds(1));
  EXPECT_EQ(q.Waiting(), 1u);
}

// Two priorities: the keys of a full pass (AddLow) come after every change,
// however long before the changes they were queued; a pass's key asked for
// again as a change is promoted and handed out once.
TEST(WorkQueueTest, ChangesGoAheadOfAPass) {
  FakeClock clock;
  WorkQueue q(&clock, TestBackoff());
  for (const char* k : {"p1", "p2", "p3"}) q.AddLow(k);
  q.Add("c1");
  q.AddLow("c1");  // queued already as a change: stays one
  q.Add("p3");     // promoted
  EXPECT_EQ(q.Len(), 4u);
  EXPECT_EQ(q.LowLen(), 2u);
  bool low = true;
  EXPECT_EQ(q.Get(&low), "c1");
  EXPECT_FALSE(low);
  EXPECT_EQ(q.Get(&low), "p3");
  EXPECT_FALSE(low) << "promoted: a change now";
  q.Add("c2");
  EXPECT_EQ(q.Get(&low), "c2");
  EXPECT_EQ(q.Get(&low), "p1");
  EXPECT_TRUE(low);
  EXPECT_EQ(q.Get(&low), "p2");
  EXPECT_TRUE(low);
  for (const char* k : {"c1", "p3", "c2", "p1", "p2"}) q.Done(k);
  EXPECT_EQ(q.Len(), 0u) << "p3's low entry was spent by its promotion";
  // A delayed key comes back as a change.
  q.AddLow("p4");
  q.AddAfter("d", milliseconds(10));
  clock.Advance(milliseconds(20));
  EXPECT_EQ(q.Get(&low), "d");
  EXPECT_FALSE(low);
  EXPECT_EQ(q.Get(&low), "p4");
  EXPECT_TRUE(low);
}

// HoldLow: a pass's key that must wait for its write slot goes back in front
// of the other low keys, and no low key is handed out until its time; changes
// are handed out meanwhile.
TEST(WorkQueueTest, AHeldPassWaitsWithoutHoldingBackChanges) {
  FakeClock clock;
  WorkQueue q(&clock, TestBackoff());
  q.AddLow("p1");
  q.AddLow("p2");
  bool low = false;
  ASSERT_EQ(q.Get(&low), "p1");
  q.HoldLow("p1", milliseconds(500));
  q.Done("p1");
  EXPECT_EQ(q.LowLen(), 2u);
  q.Add("c1");
  EXPECT_EQ(q.Get(&low), "c1") << "a change is handed out while the pass waits";
  q.Done("c1");
  // Nothing else is ready: a Get() from another thread waits for the hold.
  std::atomic<bool> got{false};
  std::string key;
  std::thread t([&] {
    auto k = q.Get(&low);
    key = k.value_or("");
    got = true;
  });
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(got.load()) << "no low key before the hold is over";
  clock.Advance(milliseconds(600));
  t.join();
  EXPECT_EQ(key, "p1") << "the held key comes first";
  EXPECT_TRUE(low);
  q.Done("p1");
  // A longer hold.
  ASSERT_EQ(q.Get(&low), "p2");
  q.HoldLow("p2", seconds(60));
  q.Done("p2");
  clock.Advance(seconds(61));
  EXPECT_EQ(q.Get(&low), "p2");
  EXPECT_TRUE(low);
  q.Done("p2");
  // A held key asked for as a change meanwhile comes back as a change.
  q.AddLow("p3");
  ASSERT_EQ(q.Get(&low), "p3");
  q.Add("p3");
  q.HoldLow("p3", seconds(60));
  q.Done("p3");
  EXPECT_EQ(q.Get(&low), "p3");
  EXPECT_FALSE(low);
  q.Done("p3");
  EXPECT_EQ(q.Len(), 0u);
  q.ShutDown();
}

}  // namespace ipguard::kube
