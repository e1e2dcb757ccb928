#include "kube/workqueue.h"

#include <algorithm>

namespace ipguard::kube {

WorkQueue::WorkQueue(Clock* clock, Backoff backoff) : clock_(clock), backoff_(backoff) {}

void WorkQueue::AddLocked(const std::string& key, bool low) {
  if (shutting_down_) return;
  auto [it, inserted] = dirty_.try_emplace(key, low);
  if (!inserted) {
    // Queued already: a key of a pass that is asked for again as a change
    // is promoted (its low entry, now stale, is skipped when reached).
    if (!low && it->second) {
      it->second = false;
      --low_count_;
      if (!processing_.count(key)) {
        queue_.push_back(key);
        cv_.notify_one();
      }
    }
    return;
  }
  low_count_ += low;
  if (processing_.count(key)) return;  // re-queued by Done()
  (low ? low_queue_ : queue_).push_back(key);
  cv_.notify_one();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  AddLocked(key, false);
}

void WorkQueue::AddLow(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  AddLocked(key, true);
}

void WorkQueue::AddAfter(const std::string& key, Clock::Duration delay) {
  std::lock_guard<std::mutex> l(mu_);
  if (shutting_down_) return;
  if (delay <= Clock::Duration::zero()) {
    AddLocked(key, false);
    return;
  }
  // A key waits once, for the earliest time asked: many AddAfter() calls of
  // one key make one entry, not one each.
  auto when = clock_->Now() + delay;
  auto [it, inserted] = waiting_.emplace(key, when);
  if (!inserted) {
    if (it->second <= when) return;
    it->second = when;
  }
  delayed_.push({when, key});
  cv_.notify_all();  // a waiting Get() may need to wake earlier
}

void WorkQueue::AddRateLimited(const std::string& key) {
  int failures;
  {
    std::lock_guard<std::mutex> l(mu_);
    failures = failures_[key]++;
  }
  AddAfter(key, backoff_.Delay(failures));
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  failures_.erase(key);
}

int WorkQueue::Failures(const std::string& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::PromoteDueLocked() {
  auto now = clock_->Now();
  while (!delayed_.empty() && delayed_.top().when <= now) {
    Delayed d = delayed_.top();
    delayed_.pop();
    auto it = waiting_.find(d.key);
    // An entry whose key was promoted already, for an earlier time, is spent.
    if (it == waiting_.end() || it->second != d.when) continue;
    waiting_.erase(it);
    AddLocked(d.key, false);
  }
}

std::optional<std::string> WorkQueue::PopLowLocked() {
  while (!low_queue_.empty()) {
    std::string key = std::move(low_queue_.front());
    low_queue_.pop_front();
    // Still low (not promoted, not handed out through an earlier entry), and
    // not in a worker's hands (Done() queues it again).
    auto it = dirty_.find(key);
    if (it != dirty_.end() && it->second && !processing_.count(key)) return key;
  }
  return std::nullopt;
}

std::optional<std::string> WorkQueue::Get(bool* low) {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    if (shutting_down_) return std::nullopt;
    PromoteDueLocked();
    std::optional<std::string> key;
    bool from_low = false;
    if (!queue_.empty()) {
      key = std::move(queue_.front());
      queue_.pop_front();
    } else if (clock_->Now() >= low_resume_ && (key = PopLowLocked())) {
      from_low = true;
    }
    if (key) {
      auto it = dirty_.find(*key);
      low_count_ -= it->second;
      dirty_.erase(it);
      processing_.insert(*key);
      if (low) *low = from_low;
      return key;
    }
    // Sleep until the next delayed key is due, the hold on low keys is over,
    // or something is added. The bound keeps a fake clock's Advance() visible.
    auto deadline =
        delayed_.empty() ? clock_->Now() + std::chrono::seconds(1) : delayed_.top().when;
    if (!low_queue_.empty()) deadline = std::min(deadline, std::max(low_resume_, clock_->Now()));
    clock_->WaitUntil(cv_, l, deadline, [this] {
      auto now = clock_->Now();
      return shutting_down_ || !queue_.empty() ||
             (!delayed_.empty() && delayed_.top().when <= now) ||
             (!low_queue_.empty() && now >= low_resume_);
    });
  }
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  processing_.erase(key);
  const bool held = !held_.empty() && held_ == key;
  if (held) held_.clear();
  auto it = dirty_.find(key);
  if (it == dirty_.end() || shutting_down_) return;
  if (it->second) {
    if (held) {
      low_queue_.push_front(key);
    } else {
      low_queue_.push_back(key);
    }
  } else {
    queue_.push_back(key);
  }
  cv_.notify_one();
}

void WorkQueue::HoldLow(const std::string& key, Clock::Duration wait) {
  std::lock_guard<std::mutex> l(mu_);
  if (shutting_down_) return;
  low_resume_ = clock_->Now() + wait;
  held_ = key;
  // Not asked for again meanwhile: back as a low key. (Asked for again, it
  // comes back at the priority it was asked at.)
  if (dirty_.try_emplace(key, true).second) ++low_count_;
}

void WorkQueue::ShutDown() {
  std::lock_guard<std::mutex> l(mu_);
  shutting_down_ = true;
  cv_.notify_all();
}

bool WorkQueue::shutting_down() const {
  std::lock_guard<std::mutex> l(mu_);
  return shutting_down_;
}

size_t WorkQueue::Len() const {
  std::lock_guard<std::mutex> l(mu_);
  return queue_.size() + LowLenLocked();
}

size_t WorkQueue::LowLen() const {
  std::lock_guard<std::mutex> l(mu_);
  return LowLenLocked();
}

size_t WorkQueue::LowLenLocked() const {
  size_t in_hand = 0;  // queued again while in processing: not ready yet
  for (const std::string& key : processing_) {
    auto it = dirty_.find(key);
    in_hand += it != dirty_.end() && it->second;
  }
  return low_count_ - in_hand;
}

}  // namespace ipguard::kube
