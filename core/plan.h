// Plan: the address plan per LogicalNetwork, as `ipguard check` prints it.
//
// Pure: built from what an Engine stores.
#ifndef IPGUARD_CORE_PLAN_H_
#define IPGUARD_CORE_PLAN_H_

#include <optional>
#include <string>
#include <vector>

#include "core/engine.h"

namespace ipguard {

struct PlanEntry {
  std::string owner;  // "WorkloadCluster team-a/prod"
  std::string field;  // "controlPlaneIP"
  std::string block;  // "10.20.0.10"
  int64_t required = 0;  // clusters only: addresses needed from the pool
};

struct PlanNetwork {
  std::string name;
  std::string method;  // Static, DHCP or as written
  int vlan = 0;
  std::string prefix;  // empty for DHCP
  std::vector<std::string> pools;  // ipPools or dhcpScope, "start-end"
  NetworkUsage usage;
  std::vector<PlanEntry> control_planes;
  std::vector<PlanEntry> load_balancer_pools;
  std::vector<PlanEntry> reservations;
  std::vector<PlanEntry> services;
};

struct Plan {
  std::vector<PlanNetwork> networks;  // sorted by name
  // Objects that live in every domain (no network, no VLAN).
  std::vector<PlanEntry> shared_load_balancer_pools;
  std::vector<PlanEntry> shared_reservations;
  std::vector<PlanEntry> shared_services;
};

Plan BuildPlan(const Engine& engine);

}  // namespace ipguard

#endif  // IPGUARD_CORE_PLAN_H_
