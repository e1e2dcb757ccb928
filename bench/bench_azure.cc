// Reading Azure resources: 10,000 of them by default, as `az ... list -o json`
// prints them (one array) and as an ARM template with a parameters file.
//
// The estate: 100 Static logical networks (a /22 each, its own VLAN, a pool
// of 512 addresses), and per network ~50 provisioned clusters (control-plane
// IP in the prefix outside the pool) each with one load balancer (a /29
// after the pool), to make up the count. Written into a temporary
// directory, then
//   1. in process: ParseManifests + ReadAzure + ParseObject of every
//      resource (the reading `ipguard check` and `ipguard import` share),
//      cold (first run) and warm (best of three later ones);
//   2. the built binary as a child process of a fresh copy of this program
//      (bench/child_process.h), wall time and peak RSS (wait4):
//      `ipguard check -o json FILE`, `ipguard import FILE`, for the list and
//      for the template (with --parameters).
//
//   build/bench/bench_azure [resources] [path/to/ipguard]
//
// Timings only; nothing here asserts one.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/child_process.h"
#include "core/azure.h"
#include "core/manifest.h"
#include "core/objects.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char kSub[] = "/subscriptions/3f2a9c4e-6b1d-4e8a-9c7f-2d5e8a1b0c93/resourceGroups/rg-edge";

std::string Ip(int a, int b, int c, int d) {
  return std::to_string(a) + "." + std::to_string(b) + "." + std::to_string(c) + "." + std::to_string(d);
}

// Network n: 10.(n/64).((n%64)*4).0/22.
struct Net {
  int b, c;
  std::string name;
};

Net NetOf(int n) { return {n / 64, (n % 64) * 4, "lnet-" + std::to_string(n)}; }

json Lnet(int n, bool in_template) {
  Net net = NetOf(n);
  json props = {
      {"vmSwitchName", "ConvergedSwitch(compute_management)"},
      {"dhcpOptions", {{"dnsServers", {Ip(10, net.b, net.c, 10)}}}},
      {"subnets",
       {{{"name", net.name},
         {"properties",
          {{"addressPrefix", Ip(10, net.b, net.c, 0) + "/22"},
           {"ipAllocationMethod", "Static"},
           {"vlan", 100 + n},
           {"ipPools", {{{"start", Ip(10, net.b, net.c + 1, 0)}, {"end", Ip(10, net.b, net.c + 2, 255)}}}},
           {"routeTable",
            {{"properties",
              {{"routes",
                {{{"name", "default"},
                  {"properties", {{"addressPrefix", "0.0.0.0/0"}, {"nextHopIpAddress", Ip(10, net.b, net.c, 1)}}}}}}}}}}}}}}}};
  json r = {{"type", "Microsoft.AzureStackHCI/logicalNetworks"}, {"properties", props}};
  if (in_template) {
    r["apiVersion"] = "2024-01-01";
    r["name"] = n == 0 ? json("[parameters('firstNetwork')]") : json(net.name);
    r["location"] = "[parameters('location')]";
  } else {
    r["name"] = net.name;
    r["id"] = std::string(kSub) + "/providers/Microsoft.AzureStackHCI/logicalnetworks/" + net.name;
    r["type"] = "microsoft.azurestackhci/logicalnetworks";
    r["location"] = "westeurope";
    r["resourceGroup"] = "rg-edge";
  }
  return r;
}

// Cluster k on network n: control-plane IP 10.b.c.(20+k) (distinct for
// k < 230; the estate has ~50 per network).
std::string ControlPlaneIp(int n, int k) {
  Net net = NetOf(n);
  return Ip(10, net.b, net.c, 20 + k % 230);
}

json Cluster(int n, int k, bool in_template) {
  Net net = NetOf(n);
  const std::string name = "aks-" + std::to_string(n) + "-" + std::to_string(k);
  json props = {
      {"controlPlane", {{"count", 1}, {"vmSize", "Standard_A4_v2"}, {"controlPlaneEndpoint", {{"hostIP", ControlPlaneIp(n, k)}}}}},
      {"agentPoolProfiles", {{{"name", "nodepool1"}, {"count", 2}, {"osType", "Linux"}}}},
      {"cloudProviderProfile", {{"infraNetworkProfile", {{"vnetSubnetIds", {
          in_template ? "[resourceId('Microsoft.AzureStackHCI/logicalNetworks', '" + net.name + "')]"
                      : std::string(kSub) + "/providers/Microsoft.AzureStackHCI/logicalNetworks/" + net.name}}}}}},
      {"networkProfile", {{"networkPolicy", "calico"}, {"podCidr", "10.244.0.0/16"}}}};
  json r = {{"type", "Microsoft.HybridContainerService/provisionedClusterInstances"}, {"name", "default"},
            {"properties", props}};
  if (in_template) {
    r["apiVersion"] = "2024-01-01";
    r["scope"] = "[format('Microsoft.Kubernetes/connectedClusters/{0}', '" + name + "')]";
  } else {
    r["id"] = std::string(kSub) + "/providers/Microsoft.Kubernetes/connectedClusters/" + name +
              "/providers/Microsoft.HybridContainerService/provisionedClusterInstances/default";
    r["type"] = "microsoft.hybridcontainerservice/provisionedclusterinstances";
  }
  return r;
}

// Load balancer of cluster k: a /30 of the network's last /24 (distinct
// for k < 64).
json LoadBalancer(int n, int k, bool in_template) {
  Net net = NetOf(n);
  const std::string cluster = "aks-" + std::to_string(n) + "-" + std::to_string(k);
  const std::string address = Ip(10, net.b, net.c + 3, 4 * (k % 64)) + "/30";
  json r = {{"type", "Microsoft.KubernetesRuntime/loadBalancers"}, {"name", "lb"}};
  if (in_template) {
    r["apiVersion"] = "2024-03-01";
    r["scope"] = "[format('Microsoft.Kubernetes/connectedClusters/{0}', '" + cluster + "')]";
    r["properties"] = {{"addresses", {address}}, {"advertiseMode", "ARP"}};
  } else {
    // As `az k8s-runtime load-balancer list` prints it: flattened.
    r["id"] = std::string(kSub) + "/providers/Microsoft.Kubernetes/connectedClusters/" + cluster +
              "/providers/Microsoft.KubernetesRuntime/loadBalancers/lb";
    r["type"] = "microsoft.kubernetesruntime/loadbalancers";
    r["addresses"] = {address};
    r["advertiseMode"] = "ARP";
  }
  return r;
}

json Resources(int count, bool in_template) {
  const int networks = std::max(1, count / 100);
  json out = json::array();
  for (int n = 0; n < networks; ++n) out.push_back(Lnet(n, in_template));
  const int rest = count - networks;
  for (int i = 0; i < rest; ++i) {
    const int n = (i / 2) % networks, k = (i / 2) / networks;
    out.push_back(i % 2 == 0 ? Cluster(n, k, in_template) : LoadBalancer(n, k, in_template));
  }
  return out;
}

struct Figures {
  double cold = 0, warm = 1e9;
  size_t read = 0, resources = 0;
  std::string error;
};

Figures TimeRead(const std::string& text, const ipguard::ArmParameters& params) {
  Figures f;
  for (int run = 0; run < 4; ++run) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<ipguard::Document> docs;
    ipguard::Status s = ipguard::ParseManifests(text, "bench", &docs);
    if (!s.ok()) {
      f.error = s.message();
      return f;
    }
    size_t read = 0, resources = 0;
    for (const auto& d : docs) {
      for (const auto& a : ipguard::ReadAzure(d.json, params)) {
        ++resources;
        if (a.outcome == ipguard::AzureRead::Outcome::kRead && ipguard::ParseObject(a.object).ok()) ++read;
      }
    }
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    f.read = read;
    f.resources = resources;
    if (run == 0) {
      f.cold = dt;
    } else {
      f.warm = std::min(f.warm, dt);
    }
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  if (ipguard::bench::MaybeRunChild(argc, argv)) return 0;
  const int count = argc > 1 ? std::atoi(argv[1]) : 10000;
  const std::string binary =
      argc > 2 ? argv[2]
               : (fs::canonical("/proc/self/exe").parent_path().parent_path() / "cmd" / "ipguard").string();
  char dir_template[] = "/tmp/bench_azure.XXXXXX";
  if (!mkdtemp(dir_template)) return 2;
  const fs::path dir(dir_template);

  const std::string list = Resources(count, false).dump(2);
  json tmpl = {{"$schema", "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"},
               {"contentVersion", "1.0.0.0"},
               {"parameters",
                {{"location", {{"type", "string"}, {"defaultValue", "[resourceGroup().location]"}}},
                 {"firstNetwork", {{"type", "string"}}}}},
               {"resources", Resources(count, true)}};
  const std::string template_text = tmpl.dump(2);
  const json params_json = {{"$schema", "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"},
                            {"contentVersion", "1.0.0.0"},
                            {"parameters", {{"firstNetwork", {{"value", "lnet-0"}}}}}};
  std::ofstream(dir / "list.json") << list;
  std::ofstream(dir / "template.json") << template_text;
  std::ofstream(dir / "template.parameters.json") << params_json.dump(2);
  ipguard::ArmParameters params;
  params.Add(params_json);

  std::printf("%d Azure resources; files in %s; ipguard at %s\n\n", count, dir.c_str(), binary.c_str());
  std::printf("%-9s %6s | %9s %9s %7s | %-24s %8s %9s  %s\n", "input", "MB", "read cold", "read warm",
              "objects", "command", "wall", "peak RSS", "outcome");
  struct Input {
    const char* name;
    const std::string* text;
    std::vector<std::vector<std::string>> commands;
  };
  const std::string list_path = (dir / "list.json").string();
  const std::string template_path = (dir / "template.json").string();
  const std::string params_path = (dir / "template.parameters.json").string();
  std::vector<Input> inputs = {
      {"az list", &list, {{"check", "-o", "json", list_path}, {"import", list_path}}},
      {"template", &template_text,
       {{"check", "-o", "json", "--parameters", params_path, template_path},
        {"import", "--parameters", params_path, template_path}}}};
  for (const Input& in : inputs) {
    Figures f = TimeRead(*in.text, in.name == std::string("template") ? params : ipguard::ArmParameters());
    if (!f.error.empty()) {
      std::fprintf(stderr, "%s: %s\n", in.name, f.error.c_str());
      return 1;
    }
    for (size_t i = 0; i < in.commands.size(); ++i) {
      ipguard::bench::ChildRun r = fs::exists(binary) ? ipguard::bench::RunChild(binary, in.commands[i], true)
                                                      : ipguard::bench::ChildRun{0, 0, "no binary"};
      std::string command = "ipguard " + in.commands[i][0] + (in.commands[i][0] == "check" ? " -o json" : "");
      if (i == 0) {
        std::printf("%-9s %6.1f | %6.0f ms %6.0f ms %7zu | ", in.name, static_cast<double>(in.text->size()) / 1e6,
                    f.cold * 1e3, f.warm * 1e3, f.read);
      } else {
        std::printf("%-9s %6s | %9s %9s %7s | ", "", "", "", "", "");
      }
      std::printf("%-24s %6.2f s %6.0f MB  %s\n", command.c_str(), r.seconds,
                  static_cast<double>(r.peak_rss_kb) / 1024, r.outcome.c_str());
      std::fflush(stdout);
    }
  }
  fs::remove_all(dir);
  return 0;
}
