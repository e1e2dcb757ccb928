#include "kube/cluster_state.h"

#include <mutex>

namespace ipguard::kube {

ClusterState::ClusterState(Options options, Clock* clock, Clock::Duration pending_ttl,
                           size_t max_holds_per_requester)
    : clock_(clock),
      ttl_(pending_ttl),
      engine_(options),
      max_per_requester_(std::max<size_t>(1, max_holds_per_requester)) {}

std::map<std::string, ClusterState::Pending>::iterator ClusterState::DropPendingLocked(
    std::map<std::string, Pending>::iterator it, bool restore, std::vector<std::string>* affected) {
  auto h = holds_.find(it->second.requester);
  if (h != holds_.end() && h->second.live > 0 && --h->second.live == 0) holds_.erase(h);
  if (restore) {
    ++writes_;
    Collect(it->first, affected);
    if (it->second.shown) {
      engine_.Upsert(*it->second.shown);
    } else {
      engine_.Remove(it->first);
    }
    Collect(it->first, affected);
  }
  return pending_.erase(it);
}

void ClusterState::ReleaseOldestLocked(const std::string& requester) {
  auto h = holds_.find(requester);
  while (h != holds_.end() && !h->second.order.empty()) {
    auto [key, seq] = h->second.order.front();
    h->second.order.pop_front();
    auto it = pending_.find(key);
    if (it == pending_.end() || it->second.seq != seq) continue;  // gone already
    ++released_over_bound_;
    DropPendingLocked(it, true, &released_keys_);
    return;
  }
}

void ClusterState::Collect(const std::string& key, std::vector<std::string>* out) const {
  if (!engine_.Find(key)) return;
  out->push_back(key);
  for (std::string& k : engine_.Neighbors(key)) out->push_back(std::move(k));
}

std::vector<std::string> ClusterState::Apply(EventType type, const nlohmann::json& obj,
                                             bool collect) {
  auto parsed = ParseObject(obj);
  if (!parsed.ok()) return {};  // not a kind ipguard judges
  Object& o = parsed.value();
  const std::string key = o.Key();
  bool keep = type != EventType::kDeleted && (o.kind != Kind::kService || o.svc->is_load_balancer());

  std::vector<std::string> affected;
  std::unique_lock<std::shared_mutex> l(mu_);
  ++writes_;
  if (collect) Collect(key, &affected);
  // The claims the object held before the change: they may have to go.
  if (collect) CollectClaims(key, &affected);
  if (auto it = pending_.find(key); it != pending_.end()) DropPendingLocked(it, false, nullptr);
  if (keep) {
    engine_.Upsert(std::move(o));
  } else {
    engine_.Remove(key);
  }
  if (!collect) return {};
  Collect(key, &affected);
  CollectClaims(key, &affected);
  if (affected.empty() || affected.front() != key) affected.insert(affected.begin(), key);
  return affected;
}

void ClusterState::CollectClaims(const std::string& key, std::vector<std::string>* out) const {
  const Object* o = engine_.Find(key);
  if (!o || (o->kind != Kind::kWorkloadCluster && o->kind != Kind::kService)) return;
  for (const WantedClaim& c : engine_.ClaimsOf(*o)) {
    std::string claim = ObjectKey(Kind::kIPClaim, "", c.name);
    if (engine_.Find(claim)) out->push_back(std::move(claim));
  }
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
                                   Object* hold, const std::string& requester, uint64_t* held) {
  if (held) *held = 0;
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
  if (it == pending_.end() || it->second.requester != requester) {
    // A new hold of this requester (another requester's hold of the key, if
    // any, becomes this one's).
    Holds& h = holds_[requester];
    // Entries whose hold is gone are dropped from the front as they are met.
    while (!h.order.empty()) {
      auto p = pending_.find(h.order.front().first);
      if (p != pending_.end() && p->second.seq == h.order.front().second) break;
      h.order.pop_front();
    }
    if (h.live >= max_per_requester_) ReleaseOldestLocked(requester);  // may erase `h`
    Pending p;
    if (it != pending_.end()) {
      p.shown = std::move(it->second.shown);
      DropPendingLocked(it, false, nullptr);
    } else if (const Object* shown = engine_.Find(key)) {
      p.shown = *shown;
    }
    p.requester = requester;
    p.seq = ++hold_seq_;
    it = pending_.emplace(key, std::move(p)).first;
    Holds& mine = holds_[requester];
    mine.order.emplace_back(key, it->second.seq);
    ++mine.live;
  }
  it->second.deadline = clock_->Now() + ttl_;
  if (held) *held = it->second.seq;
  engine_.UpsertPending(std::move(*hold));
  return v;
}

void ClusterState::ReleaseHold(const std::string& key, uint64_t seq) {
  std::unique_lock<std::shared_mutex> l(mu_);
  auto it = pending_.find(key);
  if (it == pending_.end() || it->second.seq != seq) return;
  DropPendingLocked(it, true, &released_keys_);
}

std::vector<std::string> ClusterState::ExpirePending() {
  std::vector<std::string> affected;
  const auto now = clock_->Now();
  std::unique_lock<std::shared_mutex> l(mu_);
  affected.swap(released_keys_);
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    it = DropPendingLocked(it, true, &affected);
  }
  // A requester with nothing live left has nothing to keep in order.
  for (auto h = holds_.begin(); h != holds_.end();) {
    h = h->second.live == 0 ? holds_.erase(h) : std::next(h);
  }
  return affected;
}

uint64_t ClusterState::holds_released_over_bound() const {
  std::shared_lock<std::shared_mutex> l(mu_);
  return released_over_bound_;
}

size_t ClusterState::pending() const {
  std::shared_lock<std::shared_mutex> l(mu_);
  return pending_.size();
}

}  // namespace ipguard::kube
