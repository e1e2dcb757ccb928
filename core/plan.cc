#include "core/plan.h"

#include <algorithm>
#include <map>

namespace ipguard {
namespace {

void Sort(std::vector<PlanEntry>* v) {
  std::stable_sort(v->begin(), v->end(), [](const PlanEntry& a, const PlanEntry& b) {
    return a.owner != b.owner ? a.owner < b.owner : a.field < b.field;
  });
}

void AddBlocks(const Object& obj, const std::vector<LabeledBlock>& blocks, std::vector<PlanEntry>* out) {
  for (const auto& b : blocks) out->push_back({obj.Describe(), b.field.str(), b.block.ToString(), 0});
}

}  // namespace

Plan BuildPlan(const Engine& engine) {
  Plan plan;
  std::map<std::string, PlanNetwork> nets;
  std::map<int, std::vector<std::string>> by_vlan;
  engine.ForEach(Kind::kLogicalNetwork, [&](const Object& o) {
    PlanNetwork n;
    n.name = o.meta.name;
    const auto& s = *o.lnet;
    switch (s.method) {
      case LogicalNetworkSpec::Method::kStatic:
        n.method = "Static";
        break;
      case LogicalNetworkSpec::Method::kDhcp:
        n.method = "DHCP";
        break;
      default:
        n.method = "?";
    }
    n.vlan = s.vlan_id;
    if (s.address_prefix) n.prefix = s.address_prefix->ToString();
    const auto& pools = s.method == LogicalNetworkSpec::Method::kDhcp ? s.dhcp_scope : s.ip_pools;
    for (const auto& p : pools) n.pools.push_back(p.block.ToString());
    n.usage = engine.UsageOf(n.name);
    by_vlan[n.vlan].push_back(n.name);
    nets.emplace(n.name, std::move(n));
  });
  engine.ForEach(Kind::kWorkloadCluster, [&](const Object& o) {
    auto it = nets.find(o.wlc->logical_network_name);
    if (it == nets.end() || !o.wlc->control_plane_ip) return;
    it->second.control_planes.push_back(
        {o.Describe(), "controlPlaneIP", o.wlc->control_plane_ip->ToString(), RequiredAddresses(*o.wlc)});
  });
  auto pools = [&](const Object& o) {
    auto it = nets.find(o.addr->logical_network_name);
    AddBlocks(o, o.addr->addresses,
              it == nets.end() ? &plan.shared_load_balancer_pools : &it->second.load_balancer_pools);
  };
  engine.ForEach(Kind::kLoadBalancerPool, pools);
  engine.ForEach(Kind::kIPAddressPool, pools);
  engine.ForEach(Kind::kIPReservation, [&](const Object& o) {
    if (!o.addr->vlan_id) {
      AddBlocks(o, o.addr->addresses, &plan.shared_reservations);
      return;
    }
    for (const auto& name : by_vlan[*o.addr->vlan_id]) AddBlocks(o, o.addr->addresses, &nets[name].reservations);
  });
  engine.ForEach(Kind::kService, [&](const Object& o) {
    if (!o.svc->is_load_balancer()) return;
    auto ann = o.meta.annotations.find(kLogicalNetworkAnnotation);
    auto it = ann == o.meta.annotations.end() ? nets.end() : nets.find(ann->second);
    auto* out = it == nets.end() ? &plan.shared_services : &it->second.services;
    AddBlocks(o, o.svc->requested, out);
    for (const auto& h : o.svc->held) {
      bool dup = false;
      for (const auto& r : o.svc->requested) dup = dup || r.block == h.block;
      if (!dup) out->push_back({o.Describe(), h.field.str(), h.block.ToString(), 0});
    }
  });
  for (auto& [name, n] : nets) {
    Sort(&n.control_planes);
    Sort(&n.load_balancer_pools);
    Sort(&n.reservations);
    Sort(&n.services);
    plan.networks.push_back(std::move(n));
  }
  Sort(&plan.shared_load_balancer_pools);
  Sort(&plan.shared_reservations);
  Sort(&plan.shared_services);
  return plan;
}

}  // namespace ipguard
