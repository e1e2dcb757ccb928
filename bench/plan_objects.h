// The synthetic address plan the scenario benchmarks load: network n is
// 10.(n/256).(n%256).0/24 on VLAN n%4094+1, gateway .1, DNS .2, node pool
// .50-.249; cluster c sits on network c % networks with control-plane IP
// .10 + (c / networks) % 40 and 5 addresses needed; Service addresses come
// from 100.64.0.0/10, clear of every network.
#ifndef IPGUARD_BENCH_PLAN_OBJECTS_H_
#define IPGUARD_BENCH_PLAN_OBJECTS_H_

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace ipguard::bench {

inline std::string Ip4(uint32_t v) {
  return std::to_string(v >> 24) + "." + std::to_string((v >> 16) & 255) + "." +
         std::to_string((v >> 8) & 255) + "." + std::to_string(v & 255);
}

inline uint32_t NetworkBase(int n) { return (10u << 24) | (static_cast<uint32_t>(n) << 8); }

inline nlohmann::json NetworkJson(int n, const std::string& created = "") {
  uint32_t base = NetworkBase(n);
  nlohmann::json meta = {{"name", "lnet-" + std::to_string(n)}};
  if (!created.empty()) meta["creationTimestamp"] = created;
  return {{"apiVersion", "ipguard.io/v1alpha1"},
          {"kind", "LogicalNetwork"},
          {"metadata", meta},
          {"spec",
           {{"vmSwitchName", "sw"},
            {"ipAllocationMethod", "Static"},
            {"vlanId", n % 4094 + 1},
            {"addressPrefix", Ip4(base) + "/24"},
            {"gateway", Ip4(base + 1)},
            {"dnsServers", {Ip4(base + 2)}},
            {"ipPools", {{{"start", Ip4(base + 50)}, {"end", Ip4(base + 249)}}}}}}};
}

inline nlohmann::json ClusterJson(int c, int networks, const std::string& ns,
                                  const std::string& created = "") {
  int n = c % networks;
  nlohmann::json meta = {{"name", "wlc-" + std::to_string(c)}, {"namespace", ns}};
  if (!created.empty()) meta["creationTimestamp"] = created;
  return {{"apiVersion", "ipguard.io/v1alpha1"},
          {"kind", "WorkloadCluster"},
          {"metadata", meta},
          {"spec",
           {{"logicalNetworkName", "lnet-" + std::to_string(n)},
            {"controlPlaneIP", Ip4(NetworkBase(n) + 10 + static_cast<uint32_t>(c / networks) % 40)},
            {"nodePools", {{{"name", "np1"}, {"count", 3}}}}}}};
}

inline std::string ServiceIp(int s) { return Ip4((100u << 24) | (64u << 16) | static_cast<uint32_t>(s)); }

// A LoadBalancer Service as a MetalLB user writes it: asks for its address by
// annotation and holds it in status.
inline nlohmann::json ServiceJson(int s, const std::string& created = "") {
  std::string ip = ServiceIp(s);
  nlohmann::json meta = {{"name", "svc-" + std::to_string(s)},
                         {"namespace", "apps-" + std::to_string(s % 500)},
                         {"labels", {{"app", "svc-" + std::to_string(s)}, {"tier", "web"}}},
                         {"annotations", {{"metallb.io/loadBalancerIPs", ip}}}};
  if (!created.empty()) meta["creationTimestamp"] = created;
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", meta},
          {"spec",
           {{"type", "LoadBalancer"},
            {"selector", {{"app", "svc-" + std::to_string(s)}}},
            {"ports", {{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}, {"targetPort", 8080}}}}}},
          {"status", {{"loadBalancer", {{"ingress", {{{"ip", ip}}}}}}}}};
}

// The ledger's claim of Service s as an agent writes it: the Service lives in
// workload cluster edge-(s % clusters), in every domain (no network). With
// no clusters (0), the claim of the management cluster's own Service s, as
// the manager writes it.
inline nlohmann::json ServiceClaimJson(int s, int clusters) {
  std::string ip = ServiceIp(s);
  nlohmann::json holder = {{"apiVersion", "v1"},
                           {"kind", "Service"},
                           {"namespace", "apps-" + std::to_string(s % 500)},
                           {"name", "svc-" + std::to_string(s)}};
  if (clusters > 0) holder["cluster"] = "edge-" + std::to_string(s % clusters);
  return {{"apiVersion", "ipguard.io/v1alpha1"},
          {"kind", "IPClaim"},
          {"metadata", {{"name", "any-" + ip}, {"annotations", {{"ipguard.io/written-by", "ipguard"}}}}},
          {"spec", {{"address", ip}, {"holder", holder}}}};
}

// The claim of cluster c's control-plane IP, as the manager writes it.
inline nlohmann::json ClusterClaimJson(int c, int networks, const std::string& ns) {
  int n = c % networks;
  std::string ip = Ip4(NetworkBase(n) + 10 + static_cast<uint32_t>(c / networks) % 40);
  return {{"apiVersion", "ipguard.io/v1alpha1"},
          {"kind", "IPClaim"},
          {"metadata",
           {{"name", "vlan" + std::to_string(n % 4094 + 1) + "-" + ip},
            {"annotations", {{"ipguard.io/written-by", "ipguard"}}}}},
          {"spec",
           {{"address", ip},
            {"vlanId", n % 4094 + 1},
            {"holder",
             {{"apiVersion", "ipguard.io/v1alpha1"},
              {"kind", "WorkloadCluster"},
              {"namespace", ns},
              {"name", "wlc-" + std::to_string(c)}}}}}};
}

}  // namespace ipguard::bench

#endif  // IPGUARD_BENCH_PLAN_OBJECTS_H_
