#include "core/objects.h"

#include <gtest/gtest.h>

#include "tests/unit/test_util.h"

namespace ipguard {
namespace {

using nlohmann::json;
using testing_util::Obj;
using testing_util::Yaml;

TEST(ParseObject, RefusesWhatIsNotAKubernetesObject) {
  EXPECT_FALSE(ParseObject(json::array()).ok());
  EXPECT_FALSE(ParseObject(json("text")).ok());
  EXPECT_NE(ParseObject(json{{"kind", "LogicalNetwork"}}).error().find("apiVersion is missing"),
            std::string::npos);
  EXPECT_NE(ParseObject(json{{"apiVersion", "ipguard.io/v1alpha1"}}).error().find("kind is missing"),
            std::string::npos);
  auto no_name = ParseObject(json{{"apiVersion", "ipguard.io/v1alpha1"}, {"kind", "LogicalNetwork"},
                                  {"metadata", json::object()}});
  EXPECT_NE(no_name.error().find("metadata.name is missing"), std::string::npos);
  auto unknown = ParseObject(json{{"apiVersion", "apps/v1"}, {"kind", "Deployment"},
                                  {"metadata", {{"name", "x"}}}});
  EXPECT_NE(unknown.error().find("not one ipguard judges"), std::string::npos);
}

TEST(ParseObject, KnowsEveryKind) {
  EXPECT_EQ(KindOf("ipguard.io/v1alpha1", "LogicalNetwork"), Kind::kLogicalNetwork);
  EXPECT_EQ(KindOf("ipguard.io/v1alpha1", "WorkloadCluster"), Kind::kWorkloadCluster);
  EXPECT_EQ(KindOf("ipguard.io/v1alpha1", "LoadBalancerPool"), Kind::kLoadBalancerPool);
  EXPECT_EQ(KindOf("ipguard.io/v1alpha1", "IPReservation"), Kind::kIPReservation);
  EXPECT_EQ(KindOf("v1", "Service"), Kind::kService);
  EXPECT_EQ(KindOf("metallb.io/v1beta1", "IPAddressPool"), Kind::kIPAddressPool);
  EXPECT_FALSE(KindOf("v1", "ConfigMap"));
  EXPECT_FALSE(KindOf("other.io/v1", "LogicalNetwork"));
}

TEST(ParseObject, RecordsEveryBadFieldWithItsPath) {
  Object o = Obj(R"(
apiVersion: ipguard.io/v1alpha1
kind: LogicalNetwork
metadata: {name: n}
spec:
  vmSwitchName: 5
  ipAllocationMethod: Static
  addressPrefix: 10.0.0.5/24
  gateway: 010.0.0.1
  dnsServers: [10.0.0.2, "fe80::1%eth0"]
  ipPools: [{start: 10.0.0.50}, {start: 10.0.0.90, end: 10.0.0.60}, "x"]
  vlanId: "10"
)");
  std::vector<std::string> want = {
      "spec.vmSwitchName must be a string, not a number",
      "spec.addressPrefix \"10.0.0.5/24\" is not a valid CIDR: host bits are set; the network is "
      "10.0.0.0/24",
      "spec.gateway \"010.0.0.1\" is not a valid IP address: octet \"010\" has a leading zero",
      "spec.dnsServers[1] \"fe80::1%eth0\" is not a valid IP address: zone ids (the part after %) "
      "are not allowed",
      "spec.ipPools[0].end is required",
      "spec.ipPools[1] 10.0.0.90-10.0.0.60 is not a valid range: start 10.0.0.90 is after end "
      "10.0.0.60",
      "spec.ipPools[2] must be an object with start and end, not a string",
      "spec.vlanId must be an integer, not a string",
  };
  EXPECT_EQ(o.errors, want);
  EXPECT_EQ(o.lnet->dns_servers.size(), 1u);
  EXPECT_EQ(o.lnet->ip_pool_count, 3u);
  EXPECT_TRUE(o.lnet->ip_pools.empty());
}

TEST(ParseObject, DefaultsAndNamespaces) {
  Object c = Obj(
      "apiVersion: ipguard.io/v1alpha1\nkind: WorkloadCluster\nmetadata: {name: c}\n"
      "spec: {logicalNetworkName: n, controlPlaneIP: 10.0.0.5}\n");
  EXPECT_EQ(c.meta.ns, "default");
  EXPECT_EQ(c.Ref(), "default/c");
  EXPECT_EQ(c.wlc->control_plane_count, 1);
  EXPECT_EQ(c.wlc->upgrade_surge, 1);
  EXPECT_EQ(RequiredAddresses(*c.wlc), 2);
  Object n = Obj("apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: r, namespace: x}\nspec: {}\n");
  EXPECT_EQ(n.meta.ns, "");  // cluster-scoped
  EXPECT_EQ(n.Describe(), "IPReservation r");
}

TEST(ParseObject, ServiceAddressesFromFieldAndAnnotations) {
  Object s = Obj(R"(
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  annotations:
    metallb.io/loadBalancerIPs: "10.0.0.5,2001:db8::5"
    kube-vip.io/loadbalancerIPs: "10.0.0.5"
    lbipam.cilium.io/ips: "10.0.0.7"
    metallb.universe.tf/allow-shared-ip: "k1"
spec:
  type: LoadBalancer
  loadBalancerIP: 10.0.0.6
  ports: [{port: 80}, {port: 53, protocol: UDP}]
status:
  loadBalancer:
    ingress: [{ip: 10.0.0.5}, {hostname: lb.example}]
)");
  ASSERT_TRUE(s.errors.empty()) << s.errors[0];
  std::vector<std::string> asked;
  for (const auto& r : s.svc->requested) asked.push_back(r.field.str() + "=" + r.block.ToString());
  EXPECT_EQ(asked, (std::vector<std::string>{
                       "loadBalancerIP=10.0.0.6",
                       "annotations[metallb.io/loadBalancerIPs]=10.0.0.5",
                       "annotations[metallb.io/loadBalancerIPs]=2001:db8::5",
                       "annotations[lbipam.cilium.io/ips]=10.0.0.7",
                   }));
  EXPECT_EQ(s.svc->sharing_key, "k1");
  ASSERT_EQ(s.svc->ports.size(), 2u);
  EXPECT_EQ(s.svc->ports[0].protocol, "TCP");
  EXPECT_EQ(s.svc->ports[1].protocol, "UDP");
  ASSERT_EQ(s.svc->held.size(), 1u);
  EXPECT_EQ(s.svc->held[0].field.str(), "status.loadBalancer.ingress[0].ip");
}

TEST(FieldLabel, SpellsTheIndexAndComparesByText) {
  EXPECT_EQ(FieldLabel("ipPools[#]", 3).str(), "ipPools[3]");
  EXPECT_EQ(FieldLabel("status.loadBalancer.ingress[#].ip", 12).str(),
            "status.loadBalancer.ingress[12].ip");
  EXPECT_EQ(FieldLabel("gateway").str(), "gateway");
  EXPECT_EQ(FieldLabel().str(), "");
  // Equal text from two different literals is the same label.
  static const char kCopy[] = "addresses[#]";
  EXPECT_TRUE(FieldLabel("addresses[#]", 1) == FieldLabel(kCopy, 1));
  EXPECT_FALSE(FieldLabel("addresses[#]", 1) == FieldLabel("addresses[#]", 2));
  EXPECT_FALSE(FieldLabel("ipPools[#]", 1) == FieldLabel("addresses[#]", 1));
  static_assert(sizeof(FieldLabel) <= 16, "a label must stay small: 100k Services carry two");
  static_assert(sizeof(Block) <= 56, "a block must stay small: 100k Services carry two");
}

TEST(ParseObject, BadServiceAnnotationIsAFieldError) {
  Object s = Obj(
      "apiVersion: v1\nkind: Service\nmetadata: {name: w, annotations: {metallb.io/loadBalancerIPs: "
      "\"10.0.0.5, 10.0.0.6\"}}\nspec: {type: LoadBalancer}\n");
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors[0],
            "metadata.annotations[metallb.io/loadBalancerIPs] \" 10.0.0.6\" is not a valid IP "
            "address: it has surrounding spaces");
}

TEST(ParseObject, WrongTypesNeverThrow) {
  for (const char* spec : {"[]", "5", "{ipPools: 5}", "{ipPools: [5]}", "{nodePools: {a: 1}}",
                           "{controlPlane: 3}", "{addresses: [[1]]}", "{dnsServers: [{}]}",
                           "{vlanId: 1.5}", "{vlanId: 99999999999999999999}"}) {
    for (const char* kind : {"LogicalNetwork", "WorkloadCluster", "LoadBalancerPool", "IPReservation"}) {
      auto o = ParseObject(Yaml(std::string("apiVersion: ipguard.io/v1alpha1\nkind: ") + kind +
                                "\nmetadata: {name: x}\nspec: " + spec + "\n"));
      EXPECT_TRUE(o.ok()) << kind << " " << spec;
    }
  }
}

// Annotations read as a sorted std::map; reading makes no map, and the
// map goes with the last annotation erased.
TEST(Annotations, ReadAndWrittenAsAMap) {
  Annotations a;
  const Annotations& read = a;
  EXPECT_TRUE(read.empty());
  EXPECT_EQ(read.find("x"), read.end());
  EXPECT_EQ(read.count("x"), 0u);
  EXPECT_EQ(read.begin(), read.end());
  EXPECT_EQ(a, Annotations::Map{});
  a["b"] = "2";
  a.emplace("a", "1");
  a.emplace("a", "ignored");  // as std::map::emplace: the first stays
  EXPECT_EQ(a, (Annotations::Map{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(a.at("a"), "1");
  EXPECT_EQ(a.size(), 2u);
  Annotations copy = a;
  EXPECT_EQ(copy, a);
  for (auto it = a.begin(); it != a.end();) it = a.erase(it);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.find("a"), a.end());
  EXPECT_EQ(copy.size(), 2u);  // a copy is its own
  Annotations moved = std::move(copy);
  EXPECT_EQ(moved.at("b"), "2");
  moved.clear();
  EXPECT_TRUE(moved.empty());
  Annotations from_map = Annotations::Map{{"k", "v"}};
  EXPECT_EQ(from_map.at("k"), "v");
  from_map = Annotations::Map{};
  EXPECT_TRUE(from_map.empty());
}

}  // namespace
}  // namespace ipguard
