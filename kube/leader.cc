#include "kube/leader.h"

#include "core/json_util.h"

namespace ipguard::kube {
namespace {

using nlohmann::json;

}  // namespace

const Resource kLeases{"coordination.k8s.io", "v1", "leases", true};

LeaderElector::LeaderElector(Client* client, Clock* clock, LeaderOptions options)
    : client_(client), clock_(clock), options_(std::move(options)) {}

void LeaderElector::SetLeader(bool leader) {
  bool was = leader_.exchange(leader);
  if (was == leader) return;
  if (leader && on_started) on_started();
  if (!leader && on_stopped) on_stopped();
}

bool LeaderElector::TryAcquireOrRenew() {
  std::string now = clock_->NowMicroTime();
  auto current = client_->Get(kLeases, options_.ns, options_.name);
  json spec = {{"holderIdentity", options_.identity},
               {"leaseDurationSeconds", options_.lease_duration.count()},
               {"acquireTime", now},
               {"renewTime", now},
               {"leaseTransitions", 0}};
  if (!current.ok()) {
    if (!current.error().IsNotFound()) return false;
    json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", options_.name}, {"namespace", options_.ns}}},
                  {"spec", spec}};
    auto created = client_->Create(kLeases, options_.ns, lease);
    return created.ok();
  }
  json lease = current.value();
  const json& old =
      lease.contains("spec") && lease["spec"].is_object() ? lease["spec"] : json::object();
  std::string holder = JsonString(old, "holderIdentity");
  std::string renew = JsonString(old, "renewTime");
  auto local_now = clock_->Now();
  if (holder != observed_holder_ || renew != observed_renew_) {
    observed_holder_ = holder;
    observed_renew_ = renew;
    observed_at_ = local_now;
  }
  int64_t duration =
      old.contains("leaseDurationSeconds") && old["leaseDurationSeconds"].is_number_integer()
          ? old["leaseDurationSeconds"].get<int64_t>()
          : options_.lease_duration.count();
  bool held_by_other = !holder.empty() && holder != options_.identity;
  if (held_by_other && local_now < observed_at_ + std::chrono::seconds(duration)) {
    if (leader_.load()) SetLeader(false);  // someone else holds it now: stop writing at once
    return false;
  }
  int64_t transitions =
      old.contains("leaseTransitions") && old["leaseTransitions"].is_number_integer()
          ? old["leaseTransitions"].get<int64_t>()
          : 0;
  if (holder == options_.identity) {
    spec["acquireTime"] = old.contains("acquireTime") ? old["acquireTime"] : json(now);
    spec["leaseTransitions"] = transitions;
  } else {
    spec["leaseTransitions"] = transitions + 1;
  }
  lease["spec"] = spec;
  auto updated = client_->Update(kLeases, lease);  // resourceVersion makes it a compare-and-swap
  if (!updated.ok()) return false;
  observed_holder_ = options_.identity;
  observed_renew_ = now;
  observed_at_ = local_now;
  return true;
}

void LeaderElector::Release() {
  if (!leader_.load()) return;
  auto current = client_->Get(kLeases, options_.ns, options_.name);
  if (current.ok() && current.value().contains("spec") &&
      JsonString(current.value()["spec"], "holderIdentity") == options_.identity) {
    json lease = current.value();
    lease["spec"]["holderIdentity"] = "";
    lease["spec"]["leaseDurationSeconds"] = 1;
    lease["spec"]["renewTime"] = clock_->NowMicroTime();
    client_->Update(kLeases, lease);
  }
  SetLeader(false);
}

void LeaderElector::Run() {
  auto last_renew = clock_->Now();
  while (!stop_.load()) {
    bool ok = TryAcquireOrRenew();
    auto now = clock_->Now();
    if (ok) {
      last_renew = now;
      SetLeader(true);
    } else if (leader_.load() && now - last_renew >= options_.renew_deadline) {
      SetLeader(false);  // could not renew in time: stop writing
    }
    std::unique_lock<std::mutex> l(mu_);
    clock_->WaitUntil(cv_, l, clock_->Now() + options_.retry_period,
                      [this] { return stop_.load(); });
  }
  Release();
}

void LeaderElector::Stop() {
  stop_ = true;
  std::lock_guard<std::mutex> l(mu_);
  cv_.notify_all();
}

}  // namespace ipguard::kube
