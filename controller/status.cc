#include "controller/status.h"

#include <algorithm>

namespace ipguard {
namespace {

using nlohmann::json;

// metav1.Condition caps message at 32768 characters; a longer one would make
// the API server refuse the whole status write.
constexpr size_t kMaxMessage = 32000;

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string next = (out.empty() ? "" : "; ") + v[i];
    if (out.size() + next.size() > kMaxMessage) {
      out += "; and " + std::to_string(v.size() - i) + " more";
      break;
    }
    out += next;
  }
  return out;
}

const json* FindCondition(const json& status, const std::string& type) {
  if (!status.is_object()) return nullptr;
  auto it = status.find("conditions");
  if (it == status.end() || !it->is_array()) return nullptr;
  for (const auto& c : *it) {
    if (c.is_object() && c.contains("type") && c["type"] == type) return &c;
  }
  return nullptr;
}

json Condition(const json& current, const std::string& type, bool value, const std::string& reason,
               const std::string& message, int64_t generation, const std::string& now) {
  std::string status = value ? "True" : "False";
  std::string since = now;
  if (const json* old = FindCondition(current, type)) {
    auto s = old->find("status");
    auto t = old->find("lastTransitionTime");
    if (s != old->end() && *s == status && t != old->end() && t->is_string())
      since = t->get<std::string>();
  }
  return {{"type", type},
          {"status", status},
          {"reason", reason},
          {"message", message},
          {"lastTransitionTime", since},
          {"observedGeneration", generation}};
}

int64_t Clamp(uint64_t v) {
  return v > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v);
}

}  // namespace

std::vector<std::string> ConflictsToReport(const Engine& engine, const Object& obj) {
  std::vector<std::string> out;
  CollisionList found = engine.CollisionsOf(obj.Key(), /*only_older=*/true);
  for (const Collision& c : found.listed) out.push_back(c.message);
  std::sort(out.begin(), out.end());
  if (found.more > 0) out.push_back(MoreCollisions(found.more, found.more_at_least));
  return out;
}

json DesiredStatus(const Engine& engine, const Object& obj, const json& current,
                   const std::string& now) {
  if (!InfoOf(obj.kind).owns_status) return nullptr;
  const int64_t gen = obj.meta.generation;
  json status = json::object();
  status["observedGeneration"] = gen;

  std::vector<std::string> conflicts = ConflictsToReport(engine, obj);
  // The rules on its own fields, as the webhook and `ipguard check` judge them.
  std::vector<std::string> problems = Validate(obj, engine.options()).violations;
  for (auto& m : engine.CheckNetworkOf(obj).violations) problems.push_back(std::move(m));
  std::optional<std::string> capacity;

  switch (obj.kind) {
    case Kind::kLogicalNetwork: {
      NetworkUsage u = engine.UsageOf(obj.meta.name);
      json addresses = {{"requiredByNodes", u.required_by_nodes}};
      if (u.total) addresses["total"] = Clamp(*u.total);
      if (u.free) addresses["free"] = *u.free;
      status["addresses"] = addresses;
      status["clusters"] = u.clusters;
      status["claims"] = engine.ClaimsIn(obj.meta.name);
      if (u.free && *u.free < 0) {
        capacity = "its clusters need " + std::to_string(u.required_by_nodes) +
                   " addresses but the pool holds " + std::to_string(*u.total) + " (needed " +
                   std::to_string(u.required_by_nodes) + ", available " + std::to_string(*u.total) +
                   ")";
      }
      break;
    }
    case Kind::kWorkloadCluster: {
      int64_t need = RequiredAddresses(*obj.wlc);
      status["requiredAddresses"] = need;
      status["nodes"] = need - std::max<int64_t>(obj.wlc->upgrade_surge, 0);
      NetworkUsage u = engine.UsageOf(obj.wlc->logical_network_name);
      if (u.exists && u.free && *u.free < 0) {
        capacity = "LogicalNetwork " + obj.wlc->logical_network_name +
                   " is over capacity (needed " + std::to_string(u.required_by_nodes) +
                   ", available " + std::to_string(*u.total) + ")";
      }
      break;
    }
    case Kind::kLoadBalancerPool: {
      uint64_t total = AddressCount(obj.addr->addresses);
      uint64_t assigned = engine.AssignedIn(obj.Key());
      status["addresses"] = {{"total", Clamp(total)},
                             {"assigned", Clamp(assigned)},
                             {"free", Clamp(assigned < total ? total - assigned : 0)}};
      break;
    }
    case Kind::kIPReservation:
    case Kind::kService:
    case Kind::kIPAddressPool:
    case Kind::kIPClaim:
      break;
  }

  json conditions = json::array();
  bool conflicting = !conflicts.empty();
  conditions.push_back(Condition(current, "Conflicting", conflicting,
                                 conflicting ? "IPConflict" : "NoConflict", Join(conflicts), gen,
                                 now));
  if (obj.kind == Kind::kLogicalNetwork || obj.kind == Kind::kWorkloadCluster) {
    conditions.push_back(Condition(current, "CapacityExceeded", capacity.has_value(),
                                   capacity ? "PoolTooSmall" : "WithinCapacity",
                                   capacity.value_or(""), gen, now));
  }
  std::string reason = "Valid";
  std::string message;
  if (!problems.empty()) {
    reason = "InvalidSpec";
    message = Join(problems);
  } else if (conflicting) {
    reason = "IPConflict";
    message = "collides with older objects; see the Conflicting condition";
  } else if (capacity) {
    reason = "CapacityExceeded";
    message = *capacity;
  }
  conditions.insert(conditions.begin(),
                    Condition(current, "Ready", reason == "Valid", reason, message, gen, now));
  status["conditions"] = conditions;
  return status;
}

}  // namespace ipguard
