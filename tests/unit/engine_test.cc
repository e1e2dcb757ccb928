#include "core/engine.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "core/plan.h"
#include "tests/unit/test_util.h"

namespace ipguard {
namespace {

using testing_util::Cluster;
using testing_util::Network;
using testing_util::Obj;

class EngineTest : public testing::Test {
 protected:
  void Store(const std::string& yaml) { engine_.Upsert(Obj(yaml)); }
  Verdict Create(const std::string& yaml) {
    Object o = Obj(yaml);
    return engine_.Review(Operation::kCreate, nullptr, &o);
  }
  Engine engine_;
};

// The engine finds each stored object by its key through a table of its
// own (open addressing, entries moved back on removal): after any sequence
// of stores and removals, exactly the stored keys are found, each to its own
// object, and size() counts them. Keys that differ only in where the '/'
// falls, or in kind, stay apart.
TEST_F(EngineTest, FindsExactlyTheStoredKeysThroughStoresAndRemovals) {
  std::mt19937 random(7);
  std::set<std::string> stored;  // keys
  auto object = [](int i) {
    Object o;
    o.kind = i % 3 == 0 ? Kind::kIPClaim : i % 3 == 1 ? Kind::kService : Kind::kIPReservation;
    o.meta.name = "n" + std::to_string(i % 97);
    if (o.kind == Kind::kService) o.meta.ns = "ns" + std::to_string(i / 97);
    return o;
  };
  for (int step = 0; step < 20000; ++step) {
    int i = static_cast<int>(random() % 3000);
    Object o = object(i);
    std::string key = o.Key();
    if (random() % 3 == 0) {
      EXPECT_EQ(engine_.Remove(key), stored.erase(key) == 1) << key;
    } else {
      engine_.Upsert(o);
      stored.insert(key);
    }
    if (step % 1000 == 999) {
      ASSERT_EQ(engine_.size(), stored.size());
      for (int j = 0; j < 3000; ++j) {
        Object p = object(j);
        const Object* found = engine_.Find(p.Key());
        ASSERT_EQ(found != nullptr, stored.count(p.Key()) == 1) << p.Key();
        if (found) {
          EXPECT_EQ(found->Key(), p.Key());
        }
      }
    }
  }
  EXPECT_EQ(engine_.Find("Service/ns0n0/"), nullptr);
  EXPECT_EQ(engine_.Find("Service/ns0/n0/"), nullptr);
  EXPECT_EQ(engine_.Find("IPClaim/n0"), nullptr);
  EXPECT_EQ(engine_.Find(""), nullptr);
}

TEST_F(EngineTest, ApiExampleMessageIsExact) {
  Store(Network("lnet-prod", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  Verdict v = Create(Cluster("team-a", "prod", "lnet-prod", "10.20.0.60"));
  ASSERT_FALSE(v.allowed());
  EXPECT_EQ(v.violations, std::vector<std::string>{
                              "controlPlaneIP 10.20.0.60 of WorkloadCluster team-a/prod is inside "
                              "ipPools[0] 10.20.0.50-10.20.0.99 of LogicalNetwork lnet-prod"});
  EXPECT_EQ(v.Message(), v.violations[0]);
}

TEST_F(EngineTest, ReportsEveryViolationNotJustTheFirst) {
  Store(Network("lnet-prod", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  Store(Cluster("team-a", "prod", "lnet-prod", "10.20.0.10"));
  Store(
      "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: arb}\n"
      "spec: {addresses: [10.20.0.10/31]}\n");
  Verdict v = Create(
      "apiVersion: ipguard.io/v1alpha1\nkind: WorkloadCluster\nmetadata: {name: dev, namespace: b}\n"
      "spec: {logicalNetworkName: lnet-prod, controlPlaneIP: 10.20.0.10, controlPlane: {count: 2}}\n");
  ASSERT_EQ(v.violations.size(), 3u) << v.Message();
  EXPECT_NE(v.Message().find("spec.controlPlane.count 2 must be 1, 3 or 5"), std::string::npos);
  EXPECT_NE(v.Message().find("equals controlPlaneIP 10.20.0.10 of WorkloadCluster team-a/prod"),
            std::string::npos);
  EXPECT_NE(v.Message().find("is inside addresses[0] 10.20.0.10/31 of IPReservation arb"),
            std::string::npos);
}

TEST_F(EngineTest, StoredCopyKeepsOnlyTheAnnotationsTheRulesRead) {
  Store(Network("lnet-prod", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  Store(R"(
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: apps
  uid: u-1
  resourceVersion: "7"
  annotations:
    metallb.io/loadBalancerIPs: 10.20.0.200
    ipguard.io/logical-network: lnet-prod
    example.com/owner: team-a
spec: {type: LoadBalancer}
)");
  const Object* svc = engine_.Find("Service/apps/web");
  ASSERT_NE(svc, nullptr);
  EXPECT_EQ(svc->meta.annotations,
            (std::map<std::string, std::string>{{"ipguard.io/logical-network", "lnet-prod"}}));
  // What the annotations asked for is parsed already and still judged, in
  // the network's VLAN the kept annotation names.
  EXPECT_EQ(svc->meta.uid, "u-1");
  EXPECT_EQ(svc->meta.resource_version, "7");
  EXPECT_EQ(engine_.DomainOf(*svc), 10);
  Object other = Obj(R"(
apiVersion: v1
kind: Service
metadata: {name: other, namespace: apps, annotations: {ipguard.io/logical-network: lnet-prod}}
spec: {type: LoadBalancer, loadBalancerIP: 10.20.0.200}
)");
  Verdict v = engine_.Review(Operation::kCreate, nullptr, &other);
  ASSERT_FALSE(v.allowed());
  EXPECT_NE(v.Message().find("annotations[metallb.io/loadBalancerIPs] 10.20.0.200 of Service apps/web"),
            std::string::npos)
      << v.Message();
}

TEST_F(EngineTest, UpdateDoesNotCollideWithItsStoredSelf) {
  Store(Network("lnet-prod", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  std::string c = Cluster("team-a", "prod", "lnet-prod", "10.20.0.10");
  Store(c);
  Object o = Obj(c);
  Verdict v = engine_.Review(Operation::kUpdate, &o, &o);
  EXPECT_TRUE(v.allowed()) << v.Message();
}

TEST_F(EngineTest, CollisionsOfNameOldestAndBothDirections) {
  Store(Network("lnet-prod", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  Store(Cluster("team-a", "old", "lnet-prod", "10.20.0.10", 3, "2026-01-01T00:00:00Z"));
  Store(Cluster("team-a", "new", "lnet-prod", "10.20.0.10", 3, "2026-02-01T00:00:00Z"));
  auto older = engine_.CollisionsOf(ObjectKey(Kind::kWorkloadCluster, "team-a", "old")).listed;
  auto newer = engine_.CollisionsOf(ObjectKey(Kind::kWorkloadCluster, "team-a", "new")).listed;
  ASSERT_EQ(older.size(), 1u);
  ASSERT_EQ(newer.size(), 1u);
  EXPECT_FALSE(older[0].other_is_older);
  EXPECT_TRUE(newer[0].other_is_older);
  EXPECT_EQ(newer[0].message,
            "controlPlaneIP 10.20.0.10 of WorkloadCluster team-a/new equals controlPlaneIP "
            "10.20.0.10 of WorkloadCluster team-a/old");
  // The pool sees the cluster only if they overlap; here they do not.
  EXPECT_TRUE(engine_.CollisionsOf(ObjectKey(Kind::kLogicalNetwork, "", "lnet-prod")).empty());
}

TEST_F(EngineTest, SameTimestampFallsBackToName) {
  Object a = Obj(Cluster("ns", "a", "n", "10.0.0.1", 1, "2026-01-01T00:00:00Z"));
  Object b = Obj(Cluster("ns", "b", "n", "10.0.0.1", 1, "2026-01-01T00:00:00Z"));
  EXPECT_TRUE(Engine::IsOlder(a, b));
  EXPECT_FALSE(Engine::IsOlder(b, a));
}

TEST_F(EngineTest, NetworkVlanChangeMovesItsClusters) {
  Store(Network("net-a", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  Store(Network("net-b", 20, "10.20.0.0/24", "10.20.0.1", "10.20.0.100", "10.20.0.150"));
  Store(Cluster("t", "a", "net-a", "10.20.0.120"));  // inside net-b's pool, other VLAN
  auto key = ObjectKey(Kind::kWorkloadCluster, "t", "a");
  EXPECT_TRUE(engine_.CollisionsOf(key).empty());
  Store(Network("net-a", 20, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  auto c = engine_.CollisionsOf(key).listed;
  ASSERT_EQ(c.size(), 1u);
  EXPECT_NE(c[0].message.find("ipPools[0] 10.20.0.100-10.20.0.150 of LogicalNetwork net-b"),
            std::string::npos);
  // Removing the network puts the cluster in every domain: still colliding.
  engine_.Remove(ObjectKey(Kind::kLogicalNetwork, "", "net-a"));
  EXPECT_EQ(engine_.CollisionsOf(key).listed.size(), 1u);
}

// A network's claims count those held at admission (pending) as well as
// those stored, in its VLAN or in every VLAN; the network's usage is read
// without them.
TEST_F(EngineTest, ClaimsInCountsStoredAndHeldClaims) {
  Store(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  Store(Cluster("t", "a", "lnet", "10.20.0.10", 3));
  auto claim = [](const std::string& address, const std::string& vlan) {
    std::string name = (vlan.empty() ? "any-" : "vlan" + vlan + "-") + address;
    return Obj("apiVersion: ipguard.io/v1alpha1\nkind: IPClaim\nmetadata: {name: " + name +
               "}\nspec: {address: " + address + (vlan.empty() ? "" : ", vlanId: " + vlan) +
               ", holder: {kind: Service, namespace: a, name: " + name + "}}\n");
  };
  EXPECT_EQ(engine_.ClaimsIn("lnet"), 0);
  engine_.Upsert(claim("10.20.0.200", "10"));
  engine_.UpsertPending(claim("10.20.0.201", "10"));   // held, not yet stored
  engine_.UpsertPending(claim("10.20.0.202", ""));     // every VLAN
  engine_.UpsertPending(claim("10.20.0.203", "11"));   // another VLAN
  engine_.Upsert(claim("10.20.1.1", "10"));            // outside the prefix
  EXPECT_EQ(engine_.ClaimsIn("lnet"), 3);
  EXPECT_EQ(engine_.ClaimsIn("missing"), 0);
  EXPECT_EQ(engine_.UsageOf("lnet").clusters, 1);
  engine_.Remove(ObjectKey(Kind::kIPClaim, "", "vlan10-10.20.0.200"));
  EXPECT_EQ(engine_.ClaimsIn("lnet"), 2);
}

// A walk in slices visits every stored object of the kind once, and ends.
TEST_F(EngineTest, ForEachSliceWalksEveryObjectOnce) {
  Store(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  for (int i = 0; i < 10; ++i) {
    Store(Cluster("t", "c" + std::to_string(i), "lnet", "10.20.0." + std::to_string(10 + i), 1));
  }
  engine_.Remove(ObjectKey(Kind::kWorkloadCluster, "t", "c3"));
  std::multiset<std::string> seen;
  size_t from = 0;
  int slices = 0;
  do {
    from = engine_.ForEachSlice(Kind::kWorkloadCluster, from, 3,
                                [&](const Object& o) { seen.insert(o.meta.name); });
    ++slices;
  } while (from != 0 && slices < 100);
  EXPECT_EQ(seen.size(), 9u);
  for (const std::string& name : seen) EXPECT_EQ(seen.count(name), 1u) << name;
  EXPECT_EQ(seen.count("c3"), 0u) << "removed";
  EXPECT_EQ(slices, 4) << "11 slots, 3 a slice";
}

TEST_F(EngineTest, UsageAndAssigned) {
  Store(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  Store(Cluster("t", "a", "lnet", "10.20.0.10", 3));  // 1 + 3 + 1
  Store(Cluster("t", "b", "lnet", "10.20.0.11", 10));  // 1 + 10 + 1
  NetworkUsage u = engine_.UsageOf("lnet");
  EXPECT_TRUE(u.exists);
  EXPECT_EQ(*u.total, 50u);
  EXPECT_EQ(u.required_by_nodes, 17);
  EXPECT_EQ(*u.free, 33);
  EXPECT_EQ(u.clusters, 2);
  engine_.Remove(ObjectKey(Kind::kWorkloadCluster, "t", "b"));
  EXPECT_EQ(engine_.UsageOf("lnet").required_by_nodes, 5);

  Store(
      "apiVersion: ipguard.io/v1alpha1\nkind: LoadBalancerPool\nmetadata: {name: lb}\n"
      "spec: {logicalNetworkName: lnet, addresses: [10.20.0.200/29]}\n");
  Store(
      "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: d}\n"
      "spec: {type: LoadBalancer}\nstatus: {loadBalancer: {ingress: [{ip: 10.20.0.201}, {ip: "
      "10.20.0.202}, {ip: 10.9.9.9}]}}\n");
  EXPECT_EQ(engine_.AssignedIn(ObjectKey(Kind::kLoadBalancerPool, "", "lb")), 2u);
}

TEST_F(EngineTest, ServiceSharingNeedsSameKeyAndDistinctPorts) {
  auto svc = [](const std::string& name, const std::string& key, int port) {
    return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: d" +
           (key.empty() ? "" : ", annotations: {metallb.io/allow-shared-ip: " + key + "}") +
           "}\nspec: {type: LoadBalancer, loadBalancerIP: 10.9.0.5, ports: [{port: " +
           std::to_string(port) + "}]}\n";
  };
  Store(svc("a", "web", 80));
  EXPECT_TRUE(Create(svc("b", "web", 443)).allowed());
  Verdict same_port = Create(svc("c", "web", 80));
  ASSERT_FALSE(same_port.allowed());
  EXPECT_EQ(same_port.violations[0],
            "loadBalancerIP 10.9.0.5 of Service d/c equals loadBalancerIP 10.9.0.5 of Service d/a, "
            "and both use port 80/TCP under sharing key \"web\"");
  Verdict no_key = Create(svc("e", "", 443));
  ASSERT_FALSE(no_key.allowed());
  EXPECT_NE(no_key.Message().find("do not carry the same sharing key"), std::string::npos);
  EXPECT_FALSE(Create(svc("f", "other", 443)).allowed());
}

TEST_F(EngineTest, NonLoadBalancerServicesAreUntouched) {
  Store(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  Verdict v = Create(
      "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: d, annotations: "
      "{metallb.io/loadBalancerIPs: \"010.1.1.1\"}}\nspec: {type: ClusterIP, loadBalancerIP: "
      "10.20.0.1}\n");
  EXPECT_TRUE(v.allowed());
  EXPECT_TRUE(v.warnings.empty());
}

TEST_F(EngineTest, DeleteProtectionListsClustersAndHonoursAnnotation) {
  std::string net = Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99");
  Store(net);
  Store(Cluster("b", "two", "lnet", "10.20.0.11"));
  Store(Cluster("a", "one", "lnet", "10.20.0.10"));
  Object n = Obj(net);
  Verdict v = engine_.Review(Operation::kDelete, &n, nullptr);
  ASSERT_FALSE(v.allowed());
  EXPECT_EQ(v.violations[0],
            "LogicalNetwork lnet is still used by WorkloadCluster a/one, b/two; set the annotation "
            "ipguard.io/allow-delete: \"true\" on it to delete it anyway");
  n.meta.annotations["ipguard.io/allow-delete"] = "true";
  EXPECT_TRUE(engine_.Review(Operation::kDelete, &n, nullptr).allowed());
  // Other kinds are never refused on delete.
  Object c = Obj(Cluster("a", "one", "lnet", "10.20.0.10"));
  EXPECT_TRUE(engine_.Review(Operation::kDelete, &c, nullptr).allowed());
}

TEST_F(EngineTest, PlanGroupsByNetwork) {
  Store(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  Store(Cluster("t", "a", "lnet", "10.20.0.10", 3));
  Store(
      "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: r}\n"
      "spec: {vlanId: 10, addresses: [10.20.0.2]}\n");
  Store(
      "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: all}\n"
      "spec: {addresses: [10.99.0.0/24]}\n");
  Plan p = BuildPlan(engine_);
  ASSERT_EQ(p.networks.size(), 1u);
  EXPECT_EQ(p.networks[0].control_planes.size(), 1u);
  EXPECT_EQ(p.networks[0].control_planes[0].required, 5);
  EXPECT_EQ(p.networks[0].reservations.size(), 1u);
  EXPECT_EQ(p.shared_reservations.size(), 1u);
}

// A pending object stays in the pending index through everything that
// reindexes it (its network arriving moves it to that network's VLAN), is
// found there in both directions, and leaves it when stored or removed.
TEST_F(EngineTest, PendingObjectsKeepTheirOwnIndexThroughReindexing) {
  engine_.UpsertPending(Obj(Cluster("t", "held", "lnet", "10.20.0.10")));
  EXPECT_EQ(engine_.PendingIndexSize(), 1u);
  // Before its network exists the cluster is in no VLAN; the network then
  // moves it to VLAN 10, where a second claim of the address meets it.
  Store(Network("lnet", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99"));
  EXPECT_EQ(engine_.PendingIndexSize(), 1u);
  EXPECT_EQ(engine_.DomainOf(*engine_.Find("WorkloadCluster/t/held")), 10);
  Verdict v = Create(Cluster("t", "other", "lnet", "10.20.0.10"));
  ASSERT_FALSE(v.allowed());
  EXPECT_NE(v.Message().find("WorkloadCluster t/held"), std::string::npos) << v.Message();
  // A stored object over the held address sees it among its collisions.
  Store(Cluster("t", "stored", "lnet", "10.20.0.10"));
  auto collisions = engine_.CollisionsOf("WorkloadCluster/t/stored").listed;
  ASSERT_EQ(collisions.size(), 1u);
  EXPECT_EQ(collisions[0].other_key, "WorkloadCluster/t/held");
  // Stored for real: out of the pending index, still colliding.
  const size_t total = engine_.IndexSize();
  Store(Cluster("t", "held", "lnet", "10.20.0.10"));
  EXPECT_EQ(engine_.PendingIndexSize(), 0u);
  EXPECT_EQ(engine_.IndexSize(), total);
  EXPECT_EQ(engine_.CollisionsOf("WorkloadCluster/t/stored").listed.size(), 1u);
  // Held again, then removed: the slot it frees is reused by a stored
  // object without either index reporting the other's entries.
  engine_.UpsertPending(Obj(Cluster("t", "held", "lnet", "10.20.0.11")));
  EXPECT_EQ(engine_.PendingIndexSize(), 1u);
  EXPECT_TRUE(engine_.Remove("WorkloadCluster/t/held"));
  EXPECT_EQ(engine_.PendingIndexSize(), 0u);
  Store(Cluster("t", "late", "lnet", "10.20.0.12"));
  EXPECT_TRUE(Create(Cluster("t", "new", "lnet", "10.20.0.11")).allowed());
  EXPECT_FALSE(Create(Cluster("t", "new", "lnet", "10.20.0.12")).allowed());
}

}  // namespace
}  // namespace ipguard

namespace ipguard {
namespace {

// The claims an admitted object needs: its single asked-for addresses in
// its domain, each named by domain and address, held by it.
TEST(ClaimsOf, OneClaimPerSingleAskedAddressInTheObjectsDomain) {
  Engine e;
  e.Upsert(testing_util::Obj(
      testing_util::Network("lnet-prod", 10, "10.20.0.0/24", "10.20.0.1", "10.20.0.50", "10.20.0.99")));
  Object wlc = testing_util::Obj(testing_util::Cluster("team-a", "prod", "lnet-prod", "10.20.0.10"));
  wlc.meta.uid = "u-1";
  auto claims = e.ClaimsOf(wlc);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].name, "vlan10-10.20.0.10");
  EXPECT_EQ(claims[0].vlan_id, 10);
  EXPECT_EQ(claims[0].holder.kind, "WorkloadCluster");
  EXPECT_EQ(claims[0].holder.ns, "team-a");
  EXPECT_EQ(claims[0].holder.name, "prod");
  EXPECT_EQ(claims[0].holder.cluster, "");
  nlohmann::json object = ClaimObject(claims[0]);
  EXPECT_EQ(object["metadata"]["name"], "vlan10-10.20.0.10");
  EXPECT_EQ(object["spec"]["address"], "10.20.0.10");
  EXPECT_EQ(object["spec"]["vlanId"], 10);
  EXPECT_EQ(object["spec"]["holder"]["uid"], "u-1");
  EXPECT_FALSE(object["spec"]["holder"].contains("cluster"));
  // The claim object, read back, is a valid claim that its holder does not collide with.
  auto read = ParseObject(object);
  ASSERT_TRUE(read.ok()) << read.error();
  EXPECT_TRUE(Validate(*read, Options()).violations.empty());
  e.Upsert(wlc);
  EXPECT_TRUE(e.Review(Operation::kCreate, nullptr, &*read).allowed());

  // A Service without a network lives in every domain; each address once;
  // the agent's cluster name is the holder's.
  Object svc = testing_util::Obj(
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\n"
      "  annotations: {metallb.io/loadBalancerIPs: '10.30.0.5,fd00::1'}\n"
      "spec: {type: LoadBalancer, loadBalancerIP: 10.30.0.5}\n");
  auto svc_claims = e.ClaimsOf(svc, "edge-1");
  ASSERT_EQ(svc_claims.size(), 2u);
  EXPECT_EQ(svc_claims[0].name, "any-10.30.0.5");
  EXPECT_EQ(svc_claims[1].name, "any-fd00--1");
  EXPECT_FALSE(svc_claims[0].vlan_id.has_value());
  EXPECT_EQ(ClaimObject(svc_claims[1])["spec"]["holder"]["cluster"], "edge-1");

  // Nothing for kinds that ask for ranges, or Services of other types.
  EXPECT_TRUE(e.ClaimsOf(testing_util::Obj("apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\n"
                                           "metadata: {name: r}\nspec: {addresses: [10.0.0.1]}\n"))
                  .empty());
  EXPECT_TRUE(e.ClaimsOf(testing_util::Obj("apiVersion: v1\nkind: Service\nmetadata: {name: c, "
                                           "namespace: shop}\nspec: {type: ClusterIP}\n"))
                  .empty());
}

TEST(ClaimsOf, SameHolderIsClusterKindNamespaceAndName) {
  ClaimHolder a{"", "v1", "Service", "shop", "web", "u-1"};
  ClaimHolder b = a;
  b.uid = "u-2";  // recreated: the same holder
  b.api_version = "";
  EXPECT_TRUE(SameHolder(a, b));
  b.cluster = "edge-1";
  EXPECT_FALSE(SameHolder(a, b));
  b = a;
  b.name = "api";
  EXPECT_FALSE(SameHolder(a, b));
}

}  // namespace
}  // namespace ipguard

namespace ipguard {
namespace {

// An engine serves one cluster (Options::cluster: "" for the management
// cluster, a workload cluster's name for its agent). A claim is its holder's
// own only in the holder's cluster: a Service of the same namespace and name
// in another cluster is someone else.
TEST(EngineClusterTest, AClaimIsItsHoldersOwnOnlyInTheHoldersCluster) {
  const std::string svc =
      "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
      "spec: {type: LoadBalancer, loadBalancerIP: 10.50.0.5, ports: [{port: 443}]}\n";
  auto claim = [](const std::string& cluster) {
    return testing_util::Obj(
        "apiVersion: ipguard.io/v1alpha1\nkind: IPClaim\nmetadata: {name: any-10.50.0.5}\n"
        "spec: {address: 10.50.0.5, holder: {cluster: \"" + cluster +
        "\", kind: Service, namespace: shop, name: web}}\n");
  };
  Options edge;
  edge.cluster = "edge-1";
  Engine agent(edge);
  agent.Upsert(claim("edge-1"));
  Object web = testing_util::Obj(svc);
  EXPECT_TRUE(agent.Review(Operation::kCreate, nullptr, &web).allowed());
  auto wanted = agent.ClaimsOf(web);
  ASSERT_EQ(wanted.size(), 1u);
  EXPECT_EQ(wanted[0].holder.cluster, "edge-1");
  agent.Upsert(web);
  EXPECT_TRUE(agent.MissingClaims(web).empty());

  // The same claim held in the management cluster is another object's.
  Engine other(edge);
  other.Upsert(claim(""));
  Verdict v = other.Review(Operation::kCreate, nullptr, &web);
  ASSERT_FALSE(v.allowed());
  EXPECT_NE(v.Message().find("IPClaim any-10.50.0.5 (held by Service shop/web)"),
            std::string::npos)
      << v.Message();

  // And the manager sees the agent's claim as another cluster's.
  Engine manager;
  manager.Upsert(claim("edge-1"));
  Verdict m = manager.Review(Operation::kCreate, nullptr, &web);
  ASSERT_FALSE(m.allowed());
  EXPECT_NE(m.Message().find("(held by Service shop/web in cluster edge-1)"), std::string::npos)
      << m.Message();
}


// An agent's engine (Options::cluster_ref): a Service without its own
// network annotation lives in the domain of the cluster's WorkloadCluster's
// network, follows it when it moves, and lives in every domain while the
// WorkloadCluster is not there; one with the annotation keeps its own.
TEST(EngineClusterTest, ServicesLiveInTheNetworkOfTheClusterRef) {
  Options o;
  o.cluster = "edge-1";
  o.cluster_ref = "team-a/prod";
  Engine e(o);
  auto net = [](const std::string& name, int vlan) {
    return testing_util::Obj("apiVersion: ipguard.io/v1alpha1\nkind: LogicalNetwork\nmetadata: {name: " +
                             name + "}\nspec: {vmSwitchName: s, ipAllocationMethod: DHCP, vlanId: " +
                             std::to_string(vlan) + "}\n");
  };
  auto wlc = [](const std::string& network) {
    return testing_util::Obj(
        "apiVersion: ipguard.io/v1alpha1\nkind: WorkloadCluster\nmetadata: {name: prod, namespace: "
        "team-a}\nspec: {logicalNetworkName: " + network + ", controlPlaneIP: 10.60.0.2}\n");
  };
  e.Upsert(net("lnet-a", 10));
  e.Upsert(net("lnet-b", 20));
  e.Upsert(testing_util::Obj(
      "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
      "spec: {type: LoadBalancer, loadBalancerIP: 10.60.0.5}\n"));
  e.Upsert(testing_util::Obj(
      "apiVersion: v1\nkind: Service\nmetadata: {name: own, namespace: shop, annotations: "
      "{ipguard.io/logical-network: lnet-b}}\nspec: {type: LoadBalancer, loadBalancerIP: 10.60.0.6}\n"));
  auto domain = [&](const std::string& name) {
    return e.DomainOf(*e.Find(ObjectKey(Kind::kService, "shop", name)));
  };
  auto claim_name = [&](const std::string& name) {
    return e.ClaimsOf(*e.Find(ObjectKey(Kind::kService, "shop", name)))[0].name;
  };
  EXPECT_EQ(domain("web"), kEveryDomain);
  EXPECT_EQ(claim_name("web"), "any-10.60.0.5");
  e.Upsert(wlc("lnet-a"));
  EXPECT_EQ(domain("web"), 10);
  EXPECT_EQ(claim_name("web"), "vlan10-10.60.0.5");
  EXPECT_EQ(domain("own"), 20);
  // A Service in VLAN 10 now collides with a reservation there, and not
  // with one in VLAN 20: the index moved it.
  Object res10 = testing_util::Obj(
      "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: r}\n"
      "spec: {vlanId: 10, addresses: [10.60.0.5]}\n");
  Object res20 = testing_util::Obj(
      "apiVersion: ipguard.io/v1alpha1\nkind: IPReservation\nmetadata: {name: r}\n"
      "spec: {vlanId: 20, addresses: [10.60.0.5]}\n");
  EXPECT_FALSE(e.Review(Operation::kCreate, nullptr, &res10).allowed());
  EXPECT_TRUE(e.Review(Operation::kCreate, nullptr, &res20).allowed());
  // The cluster moves to another network; an update of its status (the
  // same network) changes nothing.
  e.Upsert(wlc("lnet-b"));
  EXPECT_EQ(domain("web"), 20);
  EXPECT_TRUE(e.Review(Operation::kCreate, nullptr, &res10).allowed());
  EXPECT_FALSE(e.Review(Operation::kCreate, nullptr, &res20).allowed());
  e.Upsert(wlc("lnet-b"));
  EXPECT_EQ(domain("web"), 20);
  // It goes: every domain again; the network's count of dependents drops.
  EXPECT_TRUE(e.Remove(ObjectKey(Kind::kWorkloadCluster, "team-a", "prod")));
  EXPECT_EQ(domain("web"), kEveryDomain);
  EXPECT_EQ(domain("own"), 20);
  EXPECT_TRUE(e.Remove(ObjectKey(Kind::kService, "shop", "web")));
}

// A WorkloadCluster lives in the management cluster whichever engine judges:
// in an agent's engine its claim stands for it too, so a Service asking for
// its control-plane IP is refused once, naming the cluster.
TEST(EngineClusterTest, AWorkloadClustersClaimStandsForItInAnAgent) {
  Options o;
  o.cluster = "edge-1";
  Engine e(o);
  e.Upsert(testing_util::Obj(
      "apiVersion: ipguard.io/v1alpha1\nkind: WorkloadCluster\nmetadata: {name: prod, namespace: "
      "team-a}\nspec: {logicalNetworkName: none, controlPlaneIP: 10.70.0.2}\n"));
  Object claim = testing_util::Obj(
      "apiVersion: ipguard.io/v1alpha1\nkind: IPClaim\nmetadata: {name: any-10.70.0.2}\n"
      "spec: {address: 10.70.0.2, holder: {kind: WorkloadCluster, namespace: team-a, name: prod}}\n");
  e.Upsert(claim);
  EXPECT_NE(e.StandingHolder(*e.Find(claim.Key())), nullptr);
  EXPECT_TRUE(e.CollisionsOf(claim.Key()).empty());
  Object svc = testing_util::Obj(
      "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
      "spec: {type: LoadBalancer, loadBalancerIP: 10.70.0.2}\n");
  Verdict v = e.Review(Operation::kCreate, nullptr, &svc);
  ASSERT_EQ(v.violations.size(), 1u) << v.Message();
  EXPECT_NE(v.Message().find("WorkloadCluster team-a/prod"), std::string::npos) << v.Message();
}

// The ledger decides who holds an address: a stored object that collides
// with a claim it does not hold gives way to it (is reported), whichever
// came first; between two objects that are not claims, the older holds.
TEST(EngineClusterTest, AClaimHoldsAgainstWhatCameBeforeIt) {
  Options o;
  o.cluster = "edge-1";
  Engine e(o);
  Object svc = testing_util::Obj(
      "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop, creationTimestamp: "
      "'2026-01-01T00:00:00Z'}\nspec: {type: LoadBalancer, loadBalancerIP: 10.80.0.5}\n");
  Object claim = testing_util::Obj(
      "apiVersion: ipguard.io/v1alpha1\nkind: IPClaim\nmetadata: {name: any-10.80.0.5, "
      "creationTimestamp: '2026-06-01T00:00:00Z'}\nspec: {address: 10.80.0.5, holder: {cluster: "
      "edge-2, kind: Service, namespace: shop, name: cart}}\n");
  e.Upsert(svc);
  e.Upsert(claim);
  EXPECT_EQ(e.CollisionsOf(svc.Key(), true).listed.size(), 1u) << "the Service gives way";
  EXPECT_TRUE(e.CollisionsOf(claim.Key(), true).listed.empty()) << "the claim holds";
  EXPECT_TRUE(Engine::HoldsAgainst(claim, svc));
  EXPECT_FALSE(Engine::HoldsAgainst(svc, claim));
}

}  // namespace
}  // namespace ipguard
