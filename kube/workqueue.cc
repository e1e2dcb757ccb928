#include "kube/workqueue.h"

namespace ipguard::kube {

WorkQueue::WorkQueue(Clock* clock, Backoff backoff) : clock_(clock), backoff_(backoff) {}

void WorkQueue::AddLocked(const std::string& key) {
  if (shutting_down_ || !dirty_.insert(key).second) return;
  if (processing_.count(key)) return;  // re-queued by Done()
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, Clock::Duration delay) {
  std::lock_guard<std::mutex> l(mu_);
  if (shutting_down_) return;
  if (delay <= Clock::Duration::zero()) {
    AddLocked(key);
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
    AddLocked(d.key);
  }
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    if (shutting_down_) return std::nullopt;
    PromoteDueLocked();
    if (!queue_.empty()) break;
    // Sleep until the next delayed key is due, or something is added. The
    // bound keeps a fake clock's Advance() visible.
    auto deadline =
        delayed_.empty() ? clock_->Now() + std::chrono::seconds(1) : delayed_.top().when;
    clock_->WaitUntil(cv_, l, deadline, [this] {
      return shutting_down_ || !queue_.empty() ||
             (!delayed_.empty() && delayed_.top().when <= clock_->Now());
    });
  }
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  dirty_.erase(key);
  processing_.insert(key);
  return key;
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  processing_.erase(key);
  if (dirty_.count(key) && !shutting_down_) {
    queue_.push_back(key);
    cv_.notify_one();
  }
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
  return queue_.size();
}

}  // namespace ipguard::kube
