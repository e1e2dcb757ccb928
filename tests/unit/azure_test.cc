// Azure Resource Manager input: what core/azure reads from each shape, and
// what `ipguard check` and `ipguard import` make of it.
#include "core/azure.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cmd/check.h"
#include "cmd/import.h"

namespace ipguard {
namespace {

using nlohmann::json;

const char kLnetId[] =
    "/subscriptions/0000/resourceGroups/rg-hci/providers/Microsoft.AzureStackHCI/logicalNetworks/lnet-prod";
const char kClusterId[] =
    "/subscriptions/0000/resourceGroups/rg-hci/providers/Microsoft.Kubernetes/connectedClusters/"
    "aks-prod/providers/Microsoft.HybridContainerService/provisionedClusterInstances/default";
const char kLbId[] =
    "/subscriptions/0000/resourceGroups/rg-hci/providers/Microsoft.Kubernetes/connectedClusters/"
    "aks-prod/providers/Microsoft.KubernetesRuntime/loadBalancers/lb-web";

// An lnet as `az stack-hci-vm network lnet show -o json` prints it.
json Lnet() {
  return json::parse(R"J({
    "id": ")J" + std::string(kLnetId) + R"J(",
    "name": "lnet-prod",
    "type": "microsoft.azurestackhci/logicalnetworks",
    "location": "eastus",
    "extendedLocation": {"type": "CustomLocation", "name": "/subscriptions/0000/cl"},
    "properties": {
      "vmSwitchName": "ConvergedSwitch(compute_management)",
      "provisioningState": "Succeeded",
      "dhcpOptions": {"dnsServers": ["192.168.200.10"]},
      "subnets": [{
        "name": "lnet-prod",
        "properties": {
          "addressPrefix": "192.168.200.0/24",
          "ipAllocationMethod": "Static",
          "ipPools": [{"start": "192.168.200.100", "end": "192.168.200.199"}],
          "vlan": 200,
          "routeTable": {"properties": {"routes": [
            {"name": "default", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopIpAddress": "192.168.200.1"}}
          ]}}
        }
      }]
    }
  })J");
}

json Cluster() {
  return json::parse(R"J({
    "id": ")J" + std::string(kClusterId) + R"J(",
    "name": "default",
    "type": "microsoft.hybridcontainerservice/provisionedclusterinstances",
    "properties": {
      "controlPlane": {"count": 1, "vmSize": "Standard_A4_v2",
                       "controlPlaneEndpoint": {"hostIP": "192.168.200.20"}},
      "agentPoolProfiles": [{"name": "nodepool1", "count": 2, "osType": "Linux"}],
      "cloudProviderProfile": {"infraNetworkProfile": {"vnetSubnetIds": [")J" +
                     std::string(kLnetId) + R"J("]}}
    }
  })J");
}

json LoadBalancer() {
  return json::parse(R"J({
    "id": ")J" + std::string(kLbId) + R"J(",
    "name": "lb-web",
    "type": "Microsoft.KubernetesRuntime/loadBalancers",
    "properties": {"addresses": ["192.168.200.208/28"], "advertiseMode": "ARP"}
  })J");
}

AzureRead ReadOne(const json& doc, const ArmParameters& params = ArmParameters()) {
  EXPECT_TRUE(IsAzureInput(doc)) << doc.dump();
  std::vector<AzureRead> reads = ReadAzure(doc, params);
  EXPECT_EQ(reads.size(), 1u);
  return reads.empty() ? AzureRead() : reads[0];
}

TEST(AzureRead, LogicalNetworkFieldByField) {
  AzureRead a = ReadOne(Lnet());
  ASSERT_EQ(a.outcome, AzureRead::Outcome::kRead) << a.errors.size();
  EXPECT_TRUE(a.warnings.empty());
  EXPECT_EQ(a.id, kLnetId);
  EXPECT_EQ(a.object, json::parse(R"J({
    "apiVersion": "ipguard.io/v1alpha1", "kind": "LogicalNetwork",
    "metadata": {"name": "lnet-prod", "annotations": {"ipguard.io/azure-id": ")J" +
                                  std::string(kLnetId) + R"J("}},
    "spec": {"vmSwitchName": "ConvergedSwitch(compute_management)", "ipAllocationMethod": "Static",
             "addressPrefix": "192.168.200.0/24", "gateway": "192.168.200.1",
             "dnsServers": ["192.168.200.10"], "vlanId": 200,
             "ipPools": [{"start": "192.168.200.100", "end": "192.168.200.199"}]}})J"));
  auto obj = ParseObject(a.object);
  ASSERT_TRUE(obj.ok());
  EXPECT_TRUE(obj->errors.empty());
  // Messages name the Azure resource.
  EXPECT_EQ(obj->Describe(), std::string("LogicalNetwork lnet-prod (Azure ") + kLnetId + ")");
}

TEST(AzureRead, ClusterAndLoadBalancerAreNamedByTheirConnectedCluster) {
  AzureRead c = ReadOne(Cluster());
  ASSERT_EQ(c.outcome, AzureRead::Outcome::kRead);
  EXPECT_EQ(c.object["kind"], "WorkloadCluster");
  EXPECT_EQ(c.object["metadata"]["namespace"], "azure");
  EXPECT_EQ(c.object["metadata"]["name"], "aks-prod");
  EXPECT_EQ(c.object["spec"], json::parse(R"J({"logicalNetworkName": "lnet-prod",
    "controlPlaneIP": "192.168.200.20", "controlPlane": {"count": 1},
    "nodePools": [{"name": "nodepool1", "count": 2}]})J"));
  AzureRead lb = ReadOne(LoadBalancer());
  ASSERT_EQ(lb.outcome, AzureRead::Outcome::kRead);
  EXPECT_EQ(lb.object["kind"], "LoadBalancerPool");
  EXPECT_EQ(lb.object["metadata"]["name"], "aks-prod-lb-web");
  EXPECT_EQ(lb.object["spec"], json::parse(R"J({"addresses": ["192.168.200.208/28"]})J"));
}

TEST(AzureRead, TypesCompareWithoutRegardToCase) {
  json doc = Lnet();
  doc["type"] = "MICROSOFT.AZURESTACKHCI/LOGICALNETWORKS";
  EXPECT_EQ(ReadOne(doc).outcome, AzureRead::Outcome::kRead);
}

TEST(AzureRead, DynamicIsDhcp) {
  json doc = Lnet();
  auto& sp = doc["properties"]["subnets"][0]["properties"];
  sp = {{"ipAllocationMethod", "Dynamic"}, {"vlan", 30}};
  doc["properties"].erase("dhcpOptions");
  AzureRead a = ReadOne(doc);
  ASSERT_EQ(a.outcome, AzureRead::Outcome::kRead);
  EXPECT_EQ(a.object["spec"], json::parse(R"J({"vmSwitchName": "ConvergedSwitch(compute_management)",
    "ipAllocationMethod": "DHCP", "vlanId": 30})J"));
}

TEST(AzureRead, OnlyTheFirstSubnetIsReadAndTheWarningSaysSo) {
  json doc = Lnet();
  json second = doc["properties"]["subnets"][0];
  second["name"] = "second";
  second["properties"]["addressPrefix"] = "10.9.0.0/24";
  doc["properties"]["subnets"].push_back(second);
  AzureRead a = ReadOne(doc);
  ASSERT_EQ(a.outcome, AzureRead::Outcome::kRead);
  EXPECT_EQ(a.object["spec"]["addressPrefix"], "192.168.200.0/24");
  ASSERT_EQ(a.warnings.size(), 1u);
  EXPECT_EQ(a.warnings[0],
            "Azure field properties.subnets has 2 subnets: only the first (lnet-prod) is read");
}

TEST(AzureRead, NoRouteTableMeansNoGatewayWhichTheRulesReport) {
  json doc = Lnet();
  doc["properties"]["subnets"][0]["properties"].erase("routeTable");
  AzureRead a = ReadOne(doc);
  ASSERT_EQ(a.outcome, AzureRead::Outcome::kRead);
  EXPECT_FALSE(a.object["spec"].contains("gateway"));
  auto obj = ParseObject(a.object);
  Verdict v = Validate(*obj, Options());
  EXPECT_NE(v.Message().find("spec.gateway is required"), std::string::npos) << v.Message();
}

TEST(AzureRead, HostBitsAreTheBlockTheyCoverWithAWarning) {
  json doc = Lnet();
  doc["properties"]["subnets"][0]["properties"]["addressPrefix"] = "192.168.200.1/24";
  AzureRead a = ReadOne(doc);
  ASSERT_EQ(a.outcome, AzureRead::Outcome::kRead);
  EXPECT_EQ(a.object["spec"]["addressPrefix"], "192.168.200.0/24");
  ASSERT_EQ(a.warnings.size(), 1u);
  EXPECT_EQ(a.warnings[0],
            "Azure field properties.subnets[0].properties.addressPrefix \"192.168.200.1/24\" has "
            "host bits set: read as 192.168.200.0/24, the block Azure takes it for");
  json lb = LoadBalancer();
  lb["properties"]["addresses"] = {"192.168.200.209/28", "192.168.200.230-192.168.200.231"};
  AzureRead l = ReadOne(lb);
  EXPECT_EQ(l.object["spec"]["addresses"],
            json::parse(R"J(["192.168.200.208/28", "192.168.200.230-192.168.200.231"])J"));
}

TEST(AzureRead, AnAgentPoolOfCountZeroIsKept) {
  json doc = Cluster();
  doc["properties"]["agentPoolProfiles"].push_back({{"name", "gpu"}, {"count", 0}});
  AzureRead a = ReadOne(doc);
  ASSERT_EQ(a.outcome, AzureRead::Outcome::kRead);
  EXPECT_EQ(a.object["spec"]["nodePools"][1], json::parse(R"J({"name": "gpu", "count": 0})J"));
  auto obj = ParseObject(a.object);
  EXPECT_EQ(RequiredAddresses(*obj->wlc), 1 + 2 + 0 + 1);
}

TEST(AzureRead, WrongTypesAreViolationsNamingTheAzureField) {
  json doc = Lnet();
  doc["properties"]["subnets"][0]["properties"]["vlan"] = "abc";
  doc["properties"]["subnets"][0]["properties"]["addressPrefix"] = 42;
  AzureRead a = ReadOne(doc);
  ASSERT_EQ(a.outcome, AzureRead::Outcome::kBroken);
  ASSERT_EQ(a.errors.size(), 2u);
  EXPECT_EQ(a.errors[0],
            "Azure field properties.subnets[0].properties.addressPrefix must be a string, not a number");
  EXPECT_EQ(a.errors[1],
            "Azure field properties.subnets[0].properties.vlan must be an integer, not a string \"abc\"");
  EXPECT_EQ(a.description, std::string("LogicalNetwork lnet-prod (Azure ") + kLnetId + ")");
}

TEST(AzureRead, MissingPropertiesIsAViolation) {
  json doc = Lnet();
  doc.erase("properties");
  AzureRead a = ReadOne(doc);
  ASSERT_EQ(a.outcome, AzureRead::Outcome::kBroken);
  ASSERT_EQ(a.errors.size(), 1u);
  EXPECT_EQ(a.errors[0], "Azure resource has no properties");
  // As az resource list prints every resource: the message says how to export instead.
  doc["properties"] = nullptr;
  a = ReadOne(doc);
  ASSERT_EQ(a.errors.size(), 1u);
  EXPECT_EQ(a.errors[0],
            "Azure resource has no properties (az resource list prints none: export with "
            "az stack-hci-vm network lnet list -o json)");
}

TEST(AzureRead, AnIdWithoutAConnectedClusterIsAViolation) {
  json doc = LoadBalancer();
  doc["id"] = "/subscriptions/0000/providers/Microsoft.KubernetesRuntime/loadBalancers/lb-web";
  AzureRead a = ReadOne(doc);
  ASSERT_EQ(a.outcome, AzureRead::Outcome::kBroken);
  EXPECT_NE(a.errors[0].find("names no connected cluster"), std::string::npos) << a.errors[0];
}

TEST(AzureRead, WhatIsAzureInput) {
  EXPECT_TRUE(IsAzureInput(Lnet()));
  // az prints a kind on some resources; with no apiVersion it is Azure's.
  EXPECT_TRUE(IsAzureInput(json::parse(
      R"J({"type": "Microsoft.Kubernetes/connectedClusters", "kind": "ProvisionedCluster", "name": "c"})J")));
  EXPECT_TRUE(IsAzureInput(json::parse(R"J({"type": "Microsoft.Foo/bars", "kind": null})J")));
  EXPECT_TRUE(IsAzureInput(json::parse(R"J({"$schema": "x", "resources": []})J")));
  // Kubernetes objects, and JSON that is no ARM resource.
  EXPECT_FALSE(IsAzureInput(json::parse(
      R"J({"apiVersion": "v1", "kind": "Service", "type": "Microsoft.Foo/bars"})J")));
  EXPECT_FALSE(IsAzureInput(json::parse(R"J({"type": "LoadBalancer"})J")));
  EXPECT_FALSE(IsAzureInput(json::parse(R"J({"type": "a/b"})J")));
  EXPECT_FALSE(IsAzureInput(json::parse(R"J({"name": "x", "properties": {}})J")));
  EXPECT_FALSE(IsAzureInput(json::parse(R"J([1, 2])J")));
  EXPECT_TRUE(IsArmParametersFile(json::parse(
      R"J({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
          "parameters": {}})J")));
  AzureRead other = ReadOne(json::parse(R"J({"type": "Microsoft.Kubernetes/connectedClusters", "name": "c"})J"));
  EXPECT_EQ(other.outcome, AzureRead::Outcome::kOtherType);
}

// An ARM template as `az bicep build` writes one.
json Template() {
  return json::parse(R"J({
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {
      "lnetName": {"type": "string", "defaultValue": "lnet-prod"},
      "prefix": {"type": "string"},
      "clusterName": {"type": "string"},
      "location": {"type": "string", "defaultValue": "[resourceGroup().location]"}
    },
    "resources": [
      {"type": "Microsoft.AzureStackHCI/logicalNetworks", "apiVersion": "2024-01-01",
       "name": "[parameters('lnetName')]", "location": "[parameters('location')]",
       "properties": {"vmSwitchName": "s", "subnets": [{"name": "a", "properties": {
         "addressPrefix": "[parameters('prefix')]", "ipAllocationMethod": "Static",
         "ipPools": [{"start": "192.168.200.100", "end": "192.168.200.199"}],
         "routeTable": {"properties": {"routes": [{"name": "d", "properties": {
           "addressPrefix": "0.0.0.0/0", "nextHopIpAddress": "192.168.200.1"}}]}}}}],
         "dhcpOptions": {"dnsServers": ["192.168.200.10"]}}},
      {"type": "Microsoft.HybridContainerService/provisionedClusterInstances", "apiVersion": "2024-01-01",
       "name": "default",
       "scope": "[format('Microsoft.Kubernetes/connectedClusters/{0}', parameters('clusterName'))]",
       "properties": {"controlPlane": {"count": 1, "controlPlaneEndpoint": {"hostIP": "192.168.200.20"}},
         "agentPoolProfiles": [{"name": "np", "count": 1}],
         "cloudProviderProfile": {"infraNetworkProfile": {"vnetSubnetIds": [
           "[resourceId('Microsoft.AzureStackHCI/logicalNetworks', parameters('lnetName'))]"]}}}},
      {"type": "Microsoft.KubernetesRuntime/loadBalancers", "apiVersion": "2024-03-01",
       "name": "lb", "scope": "[resourceId('Microsoft.Kubernetes/connectedClusters', parameters('clusterName'))]",
       "properties": {"addresses": ["192.168.200.224/28"]}},
      {"type": "Microsoft.Kubernetes/connectedClusters", "apiVersion": "2024-01-01", "name": "[parameters('clusterName')]"}
    ]
  })J");
}

ArmParameters Params(const std::string& text) {
  ArmParameters p;
  Status s = p.Add(json::parse(text));
  EXPECT_TRUE(s.ok()) << s.message();
  return p;
}

TEST(AzureTemplate, ParametersComeFromTheFileThenTheDefaults) {
  ArmParameters p = Params(R"J({"$schema": "https://x/deploymentParameters.json#", "contentVersion": "1.0.0.0",
      "parameters": {"PREFIX": {"value": "192.168.200.0/24"}, "clusterName": {"value": "aks-prod"}}})J");
  std::vector<AzureRead> reads = ReadAzure(Template(), p);
  ASSERT_EQ(reads.size(), 4u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(reads[i].outcome, AzureRead::Outcome::kRead) << i << ": " << (reads[i].warnings.empty() ? "" : reads[i].warnings[0]);
    EXPECT_EQ(reads[i].index, static_cast<int>(i) + 1);
  }
  EXPECT_EQ(reads[0].object["metadata"]["name"], "lnet-prod");
  EXPECT_EQ(reads[0].object["spec"]["addressPrefix"], "192.168.200.0/24");
  EXPECT_EQ(reads[0].id, "Microsoft.AzureStackHCI/logicalNetworks/lnet-prod");
  EXPECT_EQ(reads[1].object["metadata"]["name"], "aks-prod");
  EXPECT_EQ(reads[1].object["spec"]["logicalNetworkName"], "lnet-prod");
  EXPECT_EQ(reads[1].id,
            "Microsoft.Kubernetes/connectedClusters/aks-prod/providers/"
            "Microsoft.HybridContainerService/provisionedClusterInstances/default");
  EXPECT_EQ(reads[2].object["metadata"]["name"], "aks-prod-lb");
  EXPECT_EQ(reads[3].outcome, AzureRead::Outcome::kOtherType);
}

TEST(AzureTemplate, AParameterWithoutAValueLeavesTheResourceUnread) {
  std::vector<AzureRead> reads = ReadAzure(Template(), ArmParameters());
  ASSERT_EQ(reads[0].outcome, AzureRead::Outcome::kUnread);
  ASSERT_EQ(reads[0].warnings.size(), 1u);
  EXPECT_EQ(reads[0].warnings[0],
            "properties.subnets[0].properties.addressPrefix is \"[parameters('prefix')]\", which "
            "ipguard cannot resolve: parameter 'prefix' has no value; give it with --parameters FILE");
  EXPECT_EQ(reads[1].outcome, AzureRead::Outcome::kUnread);
  EXPECT_NE(reads[1].warnings[0].find("scope is"), std::string::npos) << reads[1].warnings[0];
}

TEST(AzureTemplate, AnyOtherExpressionLeavesTheResourceUnreadNamingIt) {
  json t = Template();
  t["resources"][0]["properties"]["subnets"][0]["properties"]["addressPrefix"] = "[variables('prefix')]";
  ArmParameters p = Params(R"J({"parameters": {"clusterName": {"value": "c"}}})J");
  std::vector<AzureRead> reads = ReadAzure(t, p);
  ASSERT_EQ(reads[0].outcome, AzureRead::Outcome::kUnread);
  EXPECT_EQ(reads[0].warnings[0],
            "properties.subnets[0].properties.addressPrefix is \"[variables('prefix')]\", which "
            "ipguard cannot resolve: only parameters('name') is read in this field");
  EXPECT_EQ(reads[0].description,
            "LogicalNetwork lnet-prod (Azure Microsoft.AzureStackHCI/logicalNetworks/lnet-prod)");
  // A parameter whose default is an expression, read where ipguard reads.
  t["resources"][0]["name"] = "[parameters('location')]";
  reads = ReadAzure(t, p);
  EXPECT_NE(reads[0].warnings[0].find("the defaultValue of parameter 'location' is an expression"),
            std::string::npos)
      << reads[0].warnings[0];
  // Expressions in what ipguard does not read are not looked at
  // (location above, before the name used it); "[[" is a literal.
  t = Template();
  t["resources"][2]["properties"]["addresses"][0] = "[[not an expression]";
  reads = ReadAzure(t, p);
  EXPECT_EQ(reads[2].outcome, AzureRead::Outcome::kRead);
  EXPECT_EQ(reads[2].object["spec"]["addresses"][0], "[not an expression]");
}

TEST(AzureTemplate, KeyVaultReferencesConditionsCopyLoopsAndSymbolicNames) {
  ArmParameters p = Params(R"J({"parameters": {"clusterName": {"value": "c"},
      "prefix": {"reference": {"keyVault": {"id": "kv"}, "secretName": "s"}}}})J");
  std::vector<AzureRead> reads = ReadAzure(Template(), p);
  EXPECT_NE(reads[0].warnings[0].find("is a Key Vault reference"), std::string::npos);
  json t = Template();
  t["resources"][2]["condition"] = false;
  t["resources"][1]["existing"] = true;
  t["resources"][0]["copy"] = {{"name", "loop"}, {"count", 2}};
  reads = ReadAzure(t, Params(R"J({"parameters": {"clusterName": {"value": "c"}, "prefix": {"value": "10.0.0.0/24"}}})J"));
  EXPECT_EQ(reads[0].outcome, AzureRead::Outcome::kUnread);
  EXPECT_NE(reads[0].warnings[0].find("copy loop"), std::string::npos);
  EXPECT_EQ(reads[1].outcome, AzureRead::Outcome::kSkipped);
  EXPECT_EQ(reads[2].outcome, AzureRead::Outcome::kSkipped);
  // languageVersion 2.0: resources by symbolic name.
  json sym = Template();
  json by_name = json::object();
  by_name["lnet"] = sym["resources"][0];
  by_name["lb"] = sym["resources"][2];
  sym["resources"] = by_name;
  sym["languageVersion"] = "2.0";
  reads = ReadAzure(sym, Params(R"J({"parameters": {"clusterName": {"value": "c"}, "prefix": {"value": "10.0.0.0/24"}}})J"));
  ASSERT_EQ(reads.size(), 2u);
  EXPECT_EQ(reads[0].outcome, AzureRead::Outcome::kRead);
  EXPECT_EQ(reads[1].outcome, AzureRead::Outcome::kRead);
}

TEST(AzureTemplate, BadParametersFilesAreRefused) {
  ArmParameters p;
  EXPECT_FALSE(p.Add(json::parse(R"J([1])J")).ok());
  EXPECT_FALSE(p.Add(json::parse(R"J({"parameters": {"x": 1}})J")).ok());
  EXPECT_FALSE(p.Add(json::parse(R"J({"parameters": {"x": {"type": "string"}}})J")).ok());
  EXPECT_TRUE(p.empty());
}

TEST(AzureDrift, EveryAddressFieldThatDiffersIsAViolation) {
  auto plan = ParseObject(json::parse(R"J({"apiVersion": "ipguard.io/v1alpha1", "kind": "LogicalNetwork",
    "metadata": {"name": "lnet-prod"},
    "spec": {"vmSwitchName": "other", "ipAllocationMethod": "Static", "addressPrefix": "192.168.201.0/24",
             "gateway": "192.168.201.1", "dnsServers": ["192.168.200.10"], "vlanId": 200,
             "ipPools": [{"start": "192.168.201.100", "end": "192.168.201.199"}]}})J"));
  auto azure = ParseObject(ReadOne(Lnet()).object);
  AzureDrift d = CompareWithAzure(*plan, *azure, kLnetId);
  const std::string head = std::string("LogicalNetwork lnet-prod differs from Azure (") + kLnetId + "): ";
  ASSERT_EQ(d.violations.size(), 3u);
  EXPECT_EQ(d.violations[0], head + "addressPrefix 192.168.201.0/24, Azure has 192.168.200.0/24");
  EXPECT_EQ(d.violations[1], head + "gateway 192.168.201.1, Azure has 192.168.200.1");
  EXPECT_EQ(d.violations[2],
            head + "ipPools 192.168.201.100-192.168.201.199, Azure has 192.168.200.100-192.168.200.199");
  ASSERT_EQ(d.warnings.size(), 1u);
  EXPECT_EQ(d.warnings[0],
            head + "vmSwitchName \"other\", Azure has \"ConvergedSwitch(compute_management)\"");
  // The same blocks written otherwise are no drift.
  auto lb_plan = ParseObject(json::parse(R"J({"apiVersion": "ipguard.io/v1alpha1", "kind": "LoadBalancerPool",
    "metadata": {"name": "aks-prod-lb-web"}, "spec": {"addresses": ["192.168.200.208-192.168.200.223"]}})J"));
  auto lb = ParseObject(ReadOne(LoadBalancer()).object);
  EXPECT_TRUE(CompareWithAzure(*lb_plan, *lb, kLbId).violations.empty());
}

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

CliRun Check(const std::vector<std::string>& args, const std::string& stdin_text) {
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  int code = CheckMain(args, in, out, err);
  return {code, out.str(), err.str()};
}

CliRun Import(const std::vector<std::string>& args, const std::string& stdin_text) {
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  int code = ImportMain(args, in, out, err);
  return {code, out.str(), err.str()};
}

std::vector<std::string> Messages(const json& report, const char* section) {
  std::vector<std::string> out;
  for (const auto& v : report[section]) out.push_back(v["message"].get<std::string>());
  return out;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& m : v) out += "\n  " + m;
  return out;
}

bool Has(const std::vector<std::string>& messages, const std::string& a, const std::string& b = "") {
  for (const auto& m : messages) {
    if (m.find(a) != std::string::npos && m.find(b) != std::string::npos) return true;
  }
  return false;
}

TEST(AzureCheck, EveryRuleAppliesAcrossBothWorlds) {
  // Azure: the lnet, a cluster on it and its load balancer, as az list prints them.
  json list = json::array({Lnet(), Cluster(), LoadBalancer()});
  // YAML: a LoadBalancerPool in the lnet's node pool, a Service on the
  // cluster's control-plane IP, and a cluster that overfills the lnet.
  const std::string yaml = R"J(
apiVersion: ipguard.io/v1alpha1
kind: LoadBalancerPool
metadata: {name: pool-in-nodes}
spec: {addresses: [192.168.200.150-192.168.200.160]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {type: LoadBalancer, loadBalancerIP: 192.168.200.20, ports: [{port: 80}]}
---
apiVersion: ipguard.io/v1alpha1
kind: WorkloadCluster
metadata: {name: big, namespace: team}
spec:
  logicalNetworkName: lnet-prod
  controlPlaneIP: 192.168.200.21
  nodePools: [{name: a, count: 97}]
)J";
  const std::string dir = ::testing::TempDir() + "/azure_both_worlds";
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/azure.json") << list.dump(2); }
  { std::ofstream(dir + "/plan.yaml") << yaml; }
  CliRun r = Check({"-o", "json", dir}, "");
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  json report = json::parse(r.out);
  auto v = Messages(report, "violations");
  const std::string lnet = std::string("LogicalNetwork lnet-prod (Azure ") + kLnetId + ")";
  const std::string cluster = std::string("WorkloadCluster azure/aks-prod (Azure ") + kClusterId + ")";
  EXPECT_TRUE(Has(v, "LoadBalancerPool pool-in-nodes", "ipPools[0] 192.168.200.100-192.168.200.199 of " + lnet))
      << Joined(v);
  EXPECT_TRUE(Has(v, "Service shop/web", "controlPlaneIP 192.168.200.20 of " + cluster)) << Joined(v);
  EXPECT_TRUE(Has(v, "capacity exceeded", "(needed")) << Joined(v);
  // -o json carries the Azure id of each side.
  bool carried = false;
  for (const auto& e : report["violations"]) {
    if (e.contains("other") && e["other"].value("azureId", "") == kClusterId) carried = true;
  }
  EXPECT_TRUE(carried) << r.out;
  for (const auto& e : report["warnings"]) {
    EXPECT_EQ(e.value("azureId", ""), "") << e.dump();  // no Azure warning on a clean read
  }
}

TEST(AzureCheck, DriftIsReportedOnThePlansObjectWithAzureAsTheOtherSide) {
  const std::string dir = ::testing::TempDir() + "/azure_drift";
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/lnet.json") << Lnet().dump(2); }
  {
    std::ofstream(dir + "/plan.yaml") << R"(apiVersion: ipguard.io/v1alpha1
kind: LogicalNetwork
metadata: {name: lnet-prod}
spec:
  vmSwitchName: ConvergedSwitch(compute_management)
  ipAllocationMethod: Static
  addressPrefix: 192.168.201.0/24
  gateway: 192.168.201.1
  dnsServers: [192.168.201.10]
  vlanId: 200
  ipPools: [{start: 192.168.201.100, end: 192.168.201.199}]
)";
  }
  CliRun r = Check({dir}, "");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find(dir + "/plan.yaml #1 LogicalNetwork lnet-prod: LogicalNetwork lnet-prod differs "
                       "from Azure (" + std::string(kLnetId) +
                       "): addressPrefix 192.168.201.0/24, Azure has 192.168.200.0/24 (other side: " +
                       dir + "/lnet.json #1)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("Result: 4 violations"), std::string::npos) << r.out;
  // The same network twice is drift, not "defined more than once".
  EXPECT_EQ(r.out.find("more than once"), std::string::npos) << r.out;
}

TEST(AzureCheck, UnreadAndOtherResourcesAreSkippedAndCounted) {
  json t = Template();
  CliRun r = Check({"-o", "json", "-"}, t.dump());
  EXPECT_EQ(r.code, 0) << r.out;
  json report = json::parse(r.out);
  EXPECT_EQ(report["summary"]["skippedKinds"]["Azure resources not read"], 3) << r.out;
  EXPECT_EQ(report["summary"]["skippedKinds"]["Azure Microsoft.Kubernetes/connectedClusters"], 1);
  auto w = Messages(report, "warnings");
  EXPECT_TRUE(Has(w, "not read: properties.subnets[0].properties.addressPrefix")) << Joined(w);
  EXPECT_EQ(Check({"--strict", "-"}, t.dump()).code, 1);
  // With the parameters the template reads whole and is clean.
  const std::string params = ::testing::TempDir() + "/azure.parameters.json";
  {
    std::ofstream(params) << R"J({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
      "contentVersion": "1.0.0.0", "parameters": {"prefix": {"value": "192.168.200.0/24"}, "clusterName": {"value": "aks-prod"}}})J";
  }
  r = Check({"--parameters", params, "-"}, t.dump());
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("ipguard check: 3 objects, 1 skipped"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Result: 0 violations, 0 warnings"), std::string::npos) << r.out;
  // A parameters file found among the inputs is not an object to judge.
  r = Check({params}, "");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("ARM parameters files"), std::string::npos) << r.out;
  // A bad parameters file is a usage error.
  EXPECT_EQ(Check({"--parameters", "/nonexistent.json", "-"}, "{}").code, 2);
}

TEST(AzureCheck, BadAzureInputIsNamedAndNeverCrashes) {
  json bad = json::array({json::parse(R"J({"type": "Microsoft.AzureStackHCI/logicalNetworks", "name": "x"})J"),
                          json::parse(R"J({"type": "Microsoft.AzureStackHCI/logicalNetworks", "name": 5, "properties": []})J"),
                          json::parse(R"J({"foo": "bar"})J"),
                          json::parse(R"J({"$schema": "x", "resources": [1, "two", null]})J")});
  CliRun r = Check({"-o", "json", "-"}, bad.dump());
  EXPECT_EQ(r.code, 1) << r.out;
  json report = json::parse(r.out);
  auto v = Messages(report, "violations");
  EXPECT_TRUE(Has(v, "Azure resource has no properties")) << Joined(v);
  EXPECT_TRUE(Has(v, "Azure field name must be a string, not a number")) << Joined(v);
  EXPECT_TRUE(Has(v, "Azure field properties must be an object, not a list")) << Joined(v);
  EXPECT_EQ(report["summary"]["notKubernetesObjects"].size(), 1u) << r.out;
}

TEST(AzureImport, OutputIsAcceptedByCheckAndReadsBackToTheSamePlan) {
  // The cluster first, as a directory sorted by name may give it.
  json list = json::array({Cluster(), LoadBalancer(), Lnet()});
  json service = json::parse(R"J({"apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"type": "LoadBalancer", "loadBalancerIP": "192.168.200.20", "ports": [{"port": 80}]}})J");
  CliRun imp = Import({"-"}, list.dump());
  ASSERT_EQ(imp.code, 0) << imp.err;
  EXPECT_NE(imp.err.find("3 objects printed"), std::string::npos) << imp.err;
  EXPECT_NE(imp.out.find("ipguard.io/azure-id: \"" + std::string(kLnetId) + "\""), std::string::npos)
      << imp.out;
  // Every document is an object ParseObject reads without an error.
  std::vector<Document> docs;
  ASSERT_TRUE(ParseManifests(imp.out, "import", &docs).ok());
  ASSERT_EQ(docs.size(), 3u);
  // In the order kubectl apply of the file needs: the network before its cluster.
  EXPECT_EQ(docs[0].json["kind"], "LogicalNetwork");
  EXPECT_EQ(docs[1].json["kind"], "LoadBalancerPool");
  EXPECT_EQ(docs[2].json["kind"], "WorkloadCluster");
  for (const auto& d : docs) {
    auto o = ParseObject(d.json);
    ASSERT_TRUE(o.ok());
    EXPECT_TRUE(o->errors.empty()) << d.json.dump();
  }
  // The same plan and the same verdicts from Azure's JSON and from the YAML.
  json list_with_service = list;
  list_with_service.push_back(service);
  CliRun from_azure = Check({"-o", "json", "-"}, list_with_service.dump());
  CliRun from_yaml = Check({"-o", "json", "-"}, imp.out + "---\n" + service.dump());
  json a = json::parse(from_azure.out), b = json::parse(from_yaml.out);
  EXPECT_EQ(a["networks"], b["networks"]);
  EXPECT_EQ(a["everyDomain"], b["everyDomain"]);
  EXPECT_EQ(Messages(a, "violations"), Messages(b, "violations"));
  EXPECT_FALSE(Messages(a, "violations").empty());
  EXPECT_EQ(from_azure.code, from_yaml.code);
  // Importing the import's own output: nothing of Azure's in it.
  CliRun again = Import({"-"}, imp.out);
  EXPECT_EQ(again.code, 0);
  EXPECT_EQ(again.out, "");
  EXPECT_NE(again.err.find("3 documents that are not Azure resources"), std::string::npos) << again.err;
}

TEST(AzureImport, WhatCannotBeReadIsNamedAndNotPrinted) {
  json t = Template();
  CliRun r = Import({"-"}, t.dump());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("not read: properties.subnets[0].properties.addressPrefix"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("0 objects printed, 3 not printed, skipped 1 Azure "
                       "Microsoft.Kubernetes/connectedClusters"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "");
  // A name that is not UTF-8 cannot be printed as it is: named, not printed.
  r = Import({"-"}, std::string("{\"id\": \"/x/lnet\xff\", \"name\": \"lnet-a\", \"type\": "
                        "\"Microsoft.AzureStackHCI/logicalNetworks\", \"properties\": {\"subnets\": "
                        "[{\"properties\": {\"ipAllocationMethod\": \"Dynamic\"}}]}}"));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("is not UTF-8 text"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(Import({}, "").code, 2);
  EXPECT_EQ(Import({"--bogus", "-"}, "").code, 2);
  CliRun no_file = Import({"-", "--parameters"}, "");
  EXPECT_EQ(no_file.code, 2);
  EXPECT_NE(no_file.err.find("--parameters needs a FILE"), std::string::npos) << no_file.err;
  EXPECT_EQ(Import({"-"}, "{not json: [").code, 2);
}

TEST(AzureImport, YamlReadsBackToTheSameJson) {
  json v = json::parse(R"J({"apiVersion": "x", "kind": "K", "metadata": {"name": "n", "annotations":
    {"yes": "no", "a/b": "multi\nline \"quoted\" \u00e9", "": "empty key"}},
    "spec": {"list": [{"a": 1, "b": [1, 2, []]}, [3, {}], "s", true, null, 1.5], "empty": {}}})J");
  std::vector<Document> docs;
  ASSERT_TRUE(ParseManifests(ToYaml(v), "y", &docs).ok()) << ToYaml(v);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].json, v) << ToYaml(v);
}

// Files written from Microsoft's published shapes (tests/fixtures/azure/README.md):
// every current API version of each type, as the REST API and as az print them.
std::string Fixture(const std::string& name) {
  return std::string(IPGUARD_SOURCE_DIR) + "/tests/fixtures/azure/" + name;
}

json ReadFixture(const std::string& name) {
  std::ifstream in(Fixture(name));
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

TEST(AzureFixtures, EveryApiVersionOfEachTypeReadsAsTheSameObject) {
  const std::string lnet_id =
      "/subscriptions/3f2a9c4e-6b1d-4e8a-9c7f-2d5e8a1b0c93/resourceGroups/rg-edge-lab/providers/"
      "Microsoft.AzureStackHCI/logicalnetworks/lnet-edge-200";
  const json lnet_spec = json::parse(R"J({"vmSwitchName": "ConvergedSwitch(compute_management)",
    "ipAllocationMethod": "Static", "addressPrefix": "192.168.200.0/24", "gateway": "192.168.200.1",
    "dnsServers": ["192.168.200.10", "192.168.200.11"], "vlanId": 200,
    "ipPools": [{"start": "192.168.200.100", "end": "192.168.200.199"}]})J");
  for (const char* f : {"lnet-2023-09-01-preview.json", "lnet-2024-01-01.json", "lnet-2025-09-01-preview.json",
                        "lnet-2026-04-01-preview.json", "lnet-2026-07-01-preview.json"}) {
    AzureRead a = ReadOne(ReadFixture(f));
    ASSERT_EQ(a.outcome, AzureRead::Outcome::kRead) << f;
    EXPECT_TRUE(a.warnings.empty()) << f << ": " << a.warnings[0];
    EXPECT_EQ(a.object["metadata"]["name"], "lnet-edge-200") << f;
    EXPECT_EQ(a.object["spec"], lnet_spec) << f;
  }
  for (const char* f : {"aksarc-2023-11-15-preview.json", "aksarc-2024-01-01.json",
                        "aksarc-2025-02-01-preview.json", "aksarc-2026-04-01-preview.json",
                        "aksarc-az-cli.json"}) {
    AzureRead a = ReadOne(ReadFixture(f));
    ASSERT_EQ(a.outcome, AzureRead::Outcome::kRead) << f << (a.errors.empty() ? "" : a.errors[0]);
    EXPECT_EQ(a.object["metadata"]["namespace"], "azure") << f;
    EXPECT_EQ(a.object["metadata"]["name"], "aks-edge-01") << f;
    EXPECT_EQ(a.object["spec"]["controlPlaneIP"], "192.168.200.20") << f;
    EXPECT_EQ(a.object["spec"]["logicalNetworkName"], "lnet-edge-200") << f;
    EXPECT_TRUE(a.object["spec"]["nodePools"].is_array()) << f;
  }
  for (const char* f : {"lb-2023-10-01-preview.json", "lb-2024-03-01.json", "lb-2024-08-01.json",
                        "lb-az-cli.json"}) {
    AzureRead a = ReadOne(ReadFixture(f));
    ASSERT_EQ(a.outcome, AzureRead::Outcome::kRead) << f << (a.errors.empty() ? "" : a.errors[0]);
    EXPECT_EQ(a.object["metadata"]["name"], "aks-edge-01-lb-edge-web") << f;
    EXPECT_EQ(a.object["spec"]["addresses"],
              json::parse(R"J(["192.168.200.224/28", "192.168.200.240-192.168.200.250"])J"))
        << f;
  }
}

TEST(AzureFixtures, AListATemplateAndTheirVariationsCheckAsAUserExpects) {
  // az list output: three read, the connected cluster skipped by type.
  CliRun r = Check({"-o", "json", Fixture("list.json")}, "");
  json report = json::parse(r.out);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(report["summary"]["objects"], 3) << r.out;
  EXPECT_EQ(report["summary"]["skipped"], 1) << r.out;
  // The template as Bicep builds it, with its parameters file: the same plan.
  r = Check({"-o", "json", "--parameters", Fixture("template.parameters.json"), Fixture("template.json")}, "");
  EXPECT_EQ(r.code, 0) << r.out;
  json from_template = json::parse(r.out);
  EXPECT_EQ(from_template["summary"]["objects"], 3) << r.out;
  // The same networks, usage and addresses; only the ids differ (a template's
  // resources have none yet).
  auto without_objects = [](json networks) {
    for (auto& n : networks) {
      for (const char* list : {"controlPlaneIPs", "loadBalancerPools", "reservations", "services"}) {
        for (auto& e : n[list]) e.erase("object");
      }
    }
    return networks;
  };
  EXPECT_EQ(without_objects(from_template["networks"]), without_objects(report["networks"]));
  EXPECT_EQ(from_template["everyDomain"]["loadBalancerPools"].size(), 1u);
  // Symbolic names (languageVersion 2.0): the existing cluster is not deployed.
  r = Check({"-o", "json", Fixture("template-symbolic.json")}, "");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(json::parse(r.out)["summary"]["skippedKinds"]["Azure resources a template does not deploy"], 1)
      << r.out;
  // An expression that cannot be resolved: a warning naming it, the resource skipped.
  r = Check({Fixture("template-unresolvable.json")}, "");
  EXPECT_NE(r.out.find("is \"[variables('prefix')]\", which ipguard cannot resolve"), std::string::npos)
      << r.out;
  // Dynamic, several subnets, no route table, host bits, a pool of count 0,
  // a network absent from the input.
  r = Check({"-o", "json", Fixture("lnet-dynamic.json"), Fixture("lnet-several-subnets.json"),
             Fixture("lnet-no-route-table.json"), Fixture("lnet-host-bits.json"),
             Fixture("aksarc-pool-count-zero.json"), Fixture("aksarc-absent-network.json")},
            "");
  report = json::parse(r.out);
  auto v = Messages(report, "violations");
  auto w = Messages(report, "warnings");
  EXPECT_TRUE(Has(w, "DHCP")) << Joined(w);
  EXPECT_TRUE(Has(w, "only the first")) << Joined(w);
  EXPECT_TRUE(Has(w, "has host bits set: read as 192.168.50.0/24")) << Joined(w);
  EXPECT_TRUE(Has(v, "spec.gateway is required")) << Joined(v);
  EXPECT_TRUE(Has(v, "lnet-edge-999")) << Joined(v);
  EXPECT_EQ(r.code, 1);
  // Bad input: each named, never a crash.
  r = Check({"-o", "json", Fixture("bad-not-arm.json"), Fixture("bad-missing-properties.json"),
             Fixture("bad-wrong-type.json")},
            "");
  report = json::parse(r.out);
  v = Messages(report, "violations");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(v, "Azure resource has no properties")) << Joined(v);
  EXPECT_TRUE(Has(v, "vlan must be an integer, not a string \"abc\"")) << Joined(v);
  EXPECT_TRUE(Has(v, "addressPrefix must be a string, not a number")) << Joined(v);
  EXPECT_EQ(report["summary"]["notKubernetesObjects"].size(), 1u);
}

TEST(AzureFixtures, AWindowsPowerShellFileInUtf16IsRead) {
  std::ifstream in(Fixture("lnet-2024-01-01.json"));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string utf8 = ss.str();
  std::string utf16 = "\xFF\xFE";
  for (char c : utf8) {
    utf16.push_back(c);
    utf16.push_back('\0');
  }
  CliRun r = Check({"-o", "json", "-"}, utf16);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(json::parse(r.out)["summary"]["objects"], 1) << r.out;
}

// What a review found, each held here.
TEST(AzureReview, AzListAsYamlIsReadItemByItem) {
  const std::string yaml = "- " + Lnet().dump() + "\n- " + Cluster().dump() + "\n";
  std::vector<Document> docs;
  ASSERT_TRUE(ParseManifests(yaml, "list.yaml", &docs).ok());
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[1].item, 2);
  CliRun r = Check({"-o", "json", "-"}, yaml);
  EXPECT_EQ(json::parse(r.out)["summary"]["objects"], 2) << r.out;
}

TEST(AzureReview, JsonCutShortSaysWhatTheJsonParserSays) {
  CliRun r = Check({"-"}, "[{\"type\": \"Microsoft.AzureStackHCI/logicalNetworks\", \"name\": ");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("-: document 1: not JSON: parse error at line 1, column"), std::string::npos) << r.err;
}

TEST(AzureReview, NamesAreLowercasedAndNamesTheApiServerRefusesAreViolations) {
  json lnet = Lnet();
  lnet["name"] = "LNet-Prod";
  json cluster = Cluster();
  cluster["id"] = "/subscriptions/0/resourceGroups/connectedClusters/providers/Microsoft.Kubernetes/"
                  "connectedClusters/AKS_Edge/providers/Microsoft.HybridContainerService/"
                  "provisionedClusterInstances/default";
  cluster["properties"]["cloudProviderProfile"]["infraNetworkProfile"]["vnetSubnetIds"][0] =
      "/subscriptions/0/resourceGroups/rg/providers/Microsoft.AzureStackHCI/logicalNetworks/LNET-PROD";
  AzureRead a = ReadOne(lnet), c = ReadOne(cluster);
  EXPECT_EQ(a.object["metadata"]["name"], "lnet-prod");
  // The connected cluster, not a resource group that happens to be called so.
  EXPECT_EQ(c.object["metadata"]["name"], "aks_edge");
  EXPECT_EQ(c.object["spec"]["logicalNetworkName"], "lnet-prod");
  auto obj = ParseObject(c.object);
  Verdict v = Validate(*obj, Options());
  EXPECT_NE(v.Message().find("metadata.name \"aks_edge\" must be a lowercase RFC 1123 subdomain"),
            std::string::npos)
      << v.Message();
  CliRun imp = Import({"-"}, json::array({lnet, cluster}).dump());
  EXPECT_NE(imp.out.find("name: \"lnet-prod\""), std::string::npos) << imp.out;
}

TEST(AzureReview, AHugeNameDoesNotMakeEveryMessageHuge) {
  const std::string name(100000, 'a');
  std::string yaml;
  for (int i = 0; i < 50; ++i) {
    yaml += "apiVersion: ipguard.io/v1alpha1\nkind: LoadBalancerPool\nmetadata: {name: " + name +
            std::to_string(i) + "}\nspec: {addresses: [10.0.0.0/24]}\n---\n";
  }
  CliRun r = Check({"-q", "-"}, yaml);
  EXPECT_EQ(r.code, 1);
  // 50 names of 100k: the report holds none of them whole.
  EXPECT_LT(r.out.size(), yaml.size()) << r.out.size();
  EXPECT_NE(r.out.find("must be a lowercase RFC 1123 subdomain"), std::string::npos);
}

TEST(AzureReview, ASecondAzureCopyOfAPlanObjectIsAViolation) {
  json second = Lnet();
  second["id"] = "/subscriptions/0000/resourceGroups/rg-other/providers/Microsoft.AzureStackHCI/"
                 "logicalNetworks/lnet-prod";
  second["properties"]["subnets"][0]["properties"]["addressPrefix"] = "10.99.0.0/16";
  const std::string plan = R"J(apiVersion: ipguard.io/v1alpha1
kind: LogicalNetwork
metadata: {name: lnet-prod}
spec: {vmSwitchName: "ConvergedSwitch(compute_management)", ipAllocationMethod: Static,
  addressPrefix: 192.168.200.0/24, gateway: 192.168.200.1, dnsServers: [192.168.200.10], vlanId: 200,
  ipPools: [{start: 192.168.200.100, end: 192.168.200.199}]}
)J";
  const std::string dir = ::testing::TempDir() + "/azure_twice";
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/plan.yaml") << plan; }
  { std::ofstream(dir + "/a.json") << Lnet().dump(); }
  { std::ofstream(dir + "/b.json") << second.dump(); }
  CliRun r = Check({"-q", dir}, "");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("is defined more than once (first in " + dir + "/a.json: document 1)"),
            std::string::npos)
      << r.out;
}

TEST(AzureReview, AutoscalingCountsMaxCountAndVippoolsAreNoNodePools) {
  json c = Cluster();
  c["properties"]["agentPoolProfiles"][0]["enableAutoScaling"] = true;
  c["properties"]["agentPoolProfiles"][0]["maxCount"] = 20;
  AzureRead a = ReadOne(c);
  EXPECT_EQ(a.object["spec"]["nodePools"][0]["count"], 20);
  ASSERT_EQ(a.warnings.size(), 1u);
  EXPECT_NE(a.warnings[0].find("autoscales to maxCount 20"), std::string::npos);
  json l = Lnet();
  l["properties"]["subnets"][0]["properties"]["ipPools"].push_back(
      {{"ipPoolType", "vippool"}, {"start", "192.168.200.210"}, {"end", "192.168.200.220"}});
  AzureRead b = ReadOne(l);
  EXPECT_EQ(b.object["spec"]["ipPools"].size(), 1u);
  ASSERT_EQ(b.warnings.size(), 1u);
  EXPECT_NE(b.warnings[0].find("ipPoolType \"vippool\" pool, not a pool of node VMs"), std::string::npos);
}

TEST(AzureReview, AnIpv6NetworkTakesTheIpv6DefaultRoute) {
  json l = Lnet();
  auto& sp = l["properties"]["subnets"][0]["properties"];
  sp["addressPrefix"] = "fd00:0:0:1::/64";
  sp["ipPools"] = json::parse(R"J([{"start": "fd00:0:0:1::100", "end": "fd00:0:0:1::1ff"}])J");
  sp["routeTable"]["properties"]["routes"] = json::parse(R"J([
    {"name": "v4", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopIpAddress": "10.0.0.1"}},
    {"name": "v6", "properties": {"addressPrefix": "::/0", "nextHopIpAddress": "fd00:0:0:1::1"}}])J");
  AzureRead a = ReadOne(l);
  EXPECT_EQ(a.object["spec"]["gateway"], "fd00:0:0:1::1");
  EXPECT_TRUE(a.warnings.empty());
}

TEST(AzureReview, ExpressionsAndNumbersAtTheirLimits) {
  json t = Template();
  std::string args;
  for (int i = 0; i < 16; ++i) args += (i ? ", " : "") + std::string("'a'");
  t["resources"][1]["scope"] = "[concat('Microsoft.Kubernetes/connectedClusters/', " + args + ")]";
  t["resources"][2]["scope"] = "[format('Microsoft.Kubernetes/connectedClusters/{18446744073709551615}', 'x')]";
  ArmParameters p = Params(R"J({"parameters": {"prefix": {"value": "10.0.0.0/24"}, "clusterName": {"value": "c"}}})J");
  std::vector<AzureRead> reads = ReadAzure(t, p);
  EXPECT_EQ(reads[1].outcome, AzureRead::Outcome::kRead) << reads[1].warnings[0];
  EXPECT_EQ(reads[1].object["metadata"]["name"], "aaaaaaaaaaaaaaaa");
  ASSERT_EQ(reads[2].outcome, AzureRead::Outcome::kUnread);
  EXPECT_NE(reads[2].warnings[0].find("format() names an argument it lacks"), std::string::npos);
  json c = Cluster();
  c["properties"]["controlPlane"]["count"] = json(uint64_t{18446744073709551615u});
  AzureRead a = ReadOne(c);
  ASSERT_EQ(a.outcome, AzureRead::Outcome::kBroken);
  EXPECT_EQ(a.errors[0], "Azure field properties.controlPlane.count 18446744073709551615 is out of range");
}

TEST(AzureReview, ImportPrintsNothingOfADocumentWithADuplicateKey) {
  std::string text = Lnet().dump();
  text.insert(text.rfind('}'), ", \"name\": \"lnet-prod\"");
  CliRun r = Import({"-"}, text);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("duplicate key name"), std::string::npos) << r.err;
}

TEST(AzureReview, StrictSaysWhatFailsInEveryFormat) {
  json list = json::array({Lnet(), json::parse(R"J({"type": "Microsoft.Kubernetes/connectedClusters", "name": "c"})J")});
  CliRun q = Check({"-q", "--strict", "-"}, list.dump());
  EXPECT_EQ(q.code, 1);
  EXPECT_NE(q.out.find("Result: 0 violations, 0 warnings: failed under --strict (0 warnings, 1 skipped)"),
            std::string::npos)
      << q.out;
  EXPECT_NE(q.out.find("skipped: 1 Azure Microsoft.Kubernetes/connectedClusters"), std::string::npos) << q.out;
  CliRun j = Check({"-o", "junit", "--strict", "-"}, list.dump());
  EXPECT_NE(j.out.find("failures=\"1\""), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("name=\"skipped documents\""), std::string::npos) << j.out;
  json dhcp = Lnet();
  dhcp["properties"]["subnets"][0]["properties"] = {{"ipAllocationMethod", "Dynamic"}};
  dhcp["properties"].erase("dhcpOptions");
  CliRun w = Check({"-q", "--strict", "-"}, dhcp.dump());
  EXPECT_EQ(w.code, 1);
  EXPECT_NE(w.out.find("WARNINGS (1)"), std::string::npos) << w.out;
}

TEST(AzureReview, AnEmptyJsonFileIsAFailedExportNotAPass) {
  const std::string dir = ::testing::TempDir() + "/azure_empty";
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/lnets.json") << "\n"; }
  { std::ofstream(dir + "/notes.yaml") << "# nothing yet\n"; }
  CliRun r = Check({dir}, "");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.err.find("lnets.json: empty"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("notes.yaml"), std::string::npos) << r.err;  // an empty YAML file is fine
  EXPECT_EQ(Import({dir + "/lnets.json"}, "").code, 2);
}

TEST(AzureReview, DirectoriesAreSearchedForAnyCaseOfExtension) {
  const std::string dir = ::testing::TempDir() + "/azure_upper";
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/LNETS.JSON") << Lnet().dump(); }
  CliRun r = Check({"-o", "json", dir}, "");
  EXPECT_EQ(json::parse(r.out)["summary"]["objects"], 1) << r.out;
}

// A Bicep module is a nested deployment: its resources are read with the
// parameters it is given.
TEST(AzureReview, BicepModulesAreRead) {
  json inner = Template();
  json outer = json::parse(R"J({
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"cluster": {"type": "string", "defaultValue": "aks-mod"}},
    "resources": [
      {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "network",
       "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
         "parameters": {"prefix": {"value": "192.168.200.0/24"},
                        "clusterName": {"value": "[parameters('cluster')]"}}}},
      {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "linked",
       "properties": {"mode": "Incremental", "templateLink": {"uri": "https://example.invalid/t.json"}}}
    ]})J");
  outer["resources"][0]["properties"]["template"] = inner;
  std::vector<AzureRead> reads = ReadAzure(outer, ArmParameters());
  ASSERT_EQ(reads.size(), 5u);
  EXPECT_EQ(reads[0].outcome, AzureRead::Outcome::kRead);
  EXPECT_EQ(reads[0].index, 1);
  EXPECT_EQ(reads[1].outcome, AzureRead::Outcome::kRead);
  EXPECT_EQ(reads[1].object["metadata"]["name"], "aks-mod");
  EXPECT_EQ(reads[3].outcome, AzureRead::Outcome::kOtherType);  // the module's connected cluster
  ASSERT_EQ(reads[4].outcome, AzureRead::Outcome::kUnread);
  EXPECT_NE(reads[4].warnings[0].find("templateLink"), std::string::npos);
  // Scope outer (ARM's default): the nested template reads the outer parameters.
  json outer_scope = outer;
  outer_scope["resources"][0]["properties"].erase("expressionEvaluationOptions");
  outer_scope["parameters"]["prefix"] = {{"type", "string"}, {"defaultValue", "192.168.200.0/24"}};
  outer_scope["parameters"]["clusterName"] = {{"type", "string"}, {"defaultValue", "aks-outer"}};
  outer_scope["parameters"]["lnetName"] = {{"type", "string"}, {"defaultValue", "lnet-prod"}};
  reads = ReadAzure(outer_scope, ArmParameters());
  EXPECT_EQ(reads[0].outcome, AzureRead::Outcome::kRead);
  EXPECT_EQ(reads[1].object["metadata"]["name"], "aks-outer");
}

TEST(AzureReview, AClusterOnANetworkThatCouldNotBeReadSaysSo) {
  json t = Template();  // the lnet's prefix has no value: it is not read
  const std::string params = ::testing::TempDir() + "/azure_unread.parameters.json";
  { std::ofstream(params) << R"J({"parameters": {"clusterName": {"value": "aks-prod"}}})J"; }
  CliRun r = Check({"-q", "--parameters", params, "-"}, t.dump());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("spec.logicalNetworkName: LogicalNetwork \"lnet-prod\" not found: the input has "
                       "it, but it could not be read (LogicalNetwork lnet-prod (Azure "
                       "Microsoft.AzureStackHCI/logicalNetworks/lnet-prod))"),
            std::string::npos)
      << r.out;
}

TEST(AzureReview, NamesOfCustomResourcesAreRfc1123Subdomains) {
  auto verdict = [](const std::string& name) {
    auto obj = ParseObject(json{{"apiVersion", "ipguard.io/v1alpha1"}, {"kind", "LoadBalancerPool"},
                                {"metadata", {{"name", name}}},
                                {"spec", {{"addresses", {"10.0.0.0/24"}}}}});
    return Validate(*obj, Options()).Message();
  };
  for (const std::string& good :
       std::vector<std::string>{"a", "pool-1", "a.b-c.d", "0a", std::string(253, 'a')}) {
    EXPECT_EQ(verdict(good), "") << good;
  }
  for (const char* bad : {"A", "a_b", "a..b", "a.-b", "a-.b", "-a", "a-", ".a", "a.", "(x)"}) {
    EXPECT_NE(verdict(bad).find("must be a lowercase RFC 1123 subdomain"), std::string::npos) << bad;
  }
  EXPECT_NE(verdict(std::string(254, 'a')).find("RFC 1123"), std::string::npos);
  // The webhook's stand-in for a name the API server has yet to generate.
  EXPECT_EQ(verdict(NameToCome("pool-")), "");
}

}  // namespace
}  // namespace ipguard
