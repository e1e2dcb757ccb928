#include "kube/cluster_state.h"

#include <mutex>

namespace ipguard::kube {

ClusterState::ClusterState(Options options, Clock* clock, Clock::Duration pending_ttl)
    : clock_(clock), ttl_(pending_ttl), engine_(options) {}

void ClusterState::Collect(const std::string& key, std::vector<std::string>* out) const {
  if (!engine_.Find(key)) return;
  out->push_back(key);
  for (std::string& k : engine_.Neighbors(key)) out->push_back(std::move(k));
}

std::vector<std::string> ClusterState::Apply(EventType type, const nlohmann::json& obj) {
  auto parsed = ParseObject(obj);
  if (!parsed.ok()) return {};  // not a kind ipguard judges
  Object& o = parsed.value();
  const std::string key = o.Key();
  bool keep = type != EventType::kDeleted && (o.kind != Kind::kService || o.svc->is_load_balancer());

  std::vector<std::string> affected;
  std::unique_lock<std::shared_mutex> l(mu_);
  ++writes_;
  Collect(key, &affected);
  pending_.erase(key);
  if (keep) {
    engine_.Upsert(std::move(o));
  } else {
    engine_.Remove(key);
  }
  Collect(key, &affected);
  if (affected.empty() || affected.front() != key) affected.insert(affected.begin(), key);
  return affected;
}

namespace {

// Takes a lock the way an adaptive mutex does: a short spin of try-locks
// first, then the blocking call. The webhook's sections under this lock last
// a microsecond or two, so the other server thread nearly always gets it
// within the spin, where sleeping on the futex and being woken cost it more
// than the wait (docs/performance.md).
template <typename TryLock, typename Lock>
void SpinThenLock(TryLock&& try_lock, Lock&& lock) {
  for (int i = 0; i < 64; ++i) {
    if (try_lock()) return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  lock();
}

}  // namespace

Verdict ClusterState::JudgeAndHold(const std::function<Verdict(const Engine&)>& judge,
                                   Object* hold) {
  Verdict v;
  uint64_t judged_at = 0;
  {
    // Most answers hold nothing (denials, dry runs, deletes): those are
    // judged under the shared lock, side by side.
    std::shared_lock<std::shared_mutex> l(mu_, std::defer_lock);
    SpinThenLock([&] { return l.try_lock(); }, [&] { l.lock(); });
    v = judge(engine_);
    if (!v.allowed() || !hold) return v;
    judged_at = writes_;
  }
  const std::string key = hold->Key();
  // Judging and holding must be one step: under the exclusive lock, judge
  // again if anything was stored or held since.
  std::unique_lock<std::shared_mutex> l(mu_, std::defer_lock);
  SpinThenLock([&] { return l.try_lock(); }, [&] { l.lock(); });
  if (writes_ != judged_at) {
    v = judge(engine_);
    if (!v.allowed()) return v;
  }
  ++writes_;
  auto it = pending_.find(key);
  if (it == pending_.end()) {
    Pending p;
    if (const Object* shown = engine_.Find(key)) p.shown = *shown;
    it = pending_.emplace(key, std::move(p)).first;
  }
  it->second.deadline = clock_->Now() + ttl_;
  engine_.UpsertPending(std::move(*hold));
  return v;
}

std::vector<std::string> ClusterState::ExpirePending() {
  std::vector<std::string> affected;
  const auto now = clock_->Now();
  std::unique_lock<std::shared_mutex> l(mu_);
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    ++writes_;
    Collect(it->first, &affected);
    if (it->second.shown) {
      engine_.Upsert(*it->second.shown);
    } else {
      engine_.Remove(it->first);
    }
    Collect(it->first, &affected);
    it = pending_.erase(it);
  }
  return affected;
}

size_t ClusterState::pending() const {
  std::shared_lock<std::shared_mutex> l(mu_);
  return pending_.size();
}

}  // namespace ipguard::kube
