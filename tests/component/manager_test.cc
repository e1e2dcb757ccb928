// The manager against the fake API server over real HTTPS on 127.0.0.1:
// initial sync, the status of every kind and the printer columns it fills,
// collisions that got in behind the webhook's back, dropped watches and
// restarts, 410 relists, 409 retries, leader election between two managers,
// and SIGTERM on the real binary.
#include "cmd/manager.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "controller/status.h"
#include "core/manifest.h"
#include "kube/http_transport.h"
#include "tests/component/eventually.h"
#include "tests/component/tls_client.h"
#include "tests/fakeapi/fake_apiserver.h"
#include "tests/files.h"
#include "webhook/certs.h"

extern char** environ;

namespace ipguard {
namespace {

namespace fs = std::filesystem;
using fakeapi::FakeApiServer;
using nlohmann::json;

using testing_util::Eventually;

const json* Cond(const json& obj, const std::string& type) {
  if (!obj.contains("status") || !obj["status"].contains("conditions")) return nullptr;
  for (const auto& c : obj["status"]["conditions"]) {
    if (c.value("type", "") == type) return &c;
  }
  return nullptr;
}

std::string CondStatus(const std::optional<json>& obj, const std::string& type) {
  if (!obj) return "(absent)";
  const json* c = Cond(*obj, type);
  return c ? c->value("status", "") : "(none)";
}

// What `kubectl get` shows in a printer column: the CRD's JSONPath on the object, for
// the paths the CRDs use (.a.b, and [?(@.k=="v")] over a list). Scalars print as
// themselves, anything else as JSON; no match prints nothing.
std::string Column(const json& obj, const std::string& path) {
  std::vector<const json*> at = {&obj};
  size_t i = 0;
  while (i < path.size()) {
    std::vector<const json*> next;
    if (path[i] == '.') {
      size_t end = path.find_first_of(".[", i + 1);
      std::string key =
          path.substr(i + 1, end == std::string::npos ? std::string::npos : end - i - 1);
      for (const json* j : at) {
        if (j->is_object() && j->contains(key)) next.push_back(&(*j)[key]);
      }
      i = end == std::string::npos ? path.size() : end;
    } else {  // [?(@.k=="v")]
      size_t close = path.find(")]", i);
      std::string filter = path.substr(i + 5, close - i - 5);  // k=="v"
      size_t eq = filter.find("==");
      std::string key = filter.substr(0, eq);
      std::string value = filter.substr(eq + 3, filter.size() - eq - 4);
      for (const json* j : at) {
        if (!j->is_array()) continue;
        for (const json& item : *j) {
          if (item.is_object() && item.value(key, "") == value) next.push_back(&item);
        }
      }
      i = close + 2;
    }
    at = std::move(next);
  }
  std::string out;
  for (const json* j : at) {
    if (!out.empty()) out += ",";
    out += j->is_string() ? j->get<std::string>() : j->dump();
  }
  return out;
}

// The printer columns of a CRD: name -> JSONPath, without AGE.
std::vector<std::pair<std::string, std::string>> PrinterColumns(const std::string& plural) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : testing_util::ReadManifestDir(fs::path(IPGUARD_SOURCE_DIR) / "crds")) {
    if (!f.status.ok() || f.docs.empty()) continue;
    if (f.docs[0].json["spec"]["names"]["plural"] != plural) continue;
    for (const auto& c : f.docs[0].json["spec"]["versions"][0]["additionalPrinterColumns"]) {
      if (c["name"] != "Age") out.emplace_back(c["name"], c["jsonPath"]);
    }
  }
  return out;
}

const std::map<Kind, std::string> kPlural = {
    {Kind::kLogicalNetwork, "logicalnetworks"},
    {Kind::kWorkloadCluster, "workloadclusters"},
    {Kind::kLoadBalancerPool, "loadbalancerpools"},
    {Kind::kIPReservation, "ipreservations"},
    {Kind::kService, "services"},
};

// The fake API server over TLS with the ipguard kinds, loaded with the
// shipped clean example plan.
class ManagerTest : public testing::Test {
 protected:
  void SetUp() override {
    ca_ = *certs::GenerateCA("fake-apiserver-ca", std::chrono::hours(24));
    auto serving = *certs::GenerateServing(ca_, "fake-apiserver", {"localhost"}, {"127.0.0.1"},
                                           std::chrono::hours(24));
    fakeapi::FakeApiOptions o;
    o.tls = true;
    o.cert_pem = serving.cert_pem;
    o.key_pem = serving.key_pem;
    o.bookmark_interval = std::chrono::milliseconds(200);
    fake_ = std::make_unique<FakeApiServer>(o);
    fake_->AddStandardResources();
    ASSERT_TRUE(fake_->Start().ok());
    LoadExamples();
  }
  void TearDown() override {
    for (auto& m : managers_) m->Stop();
    managers_.clear();
    fake_->Stop();
  }

  void LoadExamples() {
    for (auto& f :
         testing_util::ReadManifestDir(fs::path(IPGUARD_SOURCE_DIR) / "examples" / "clean")) {
      ASSERT_TRUE(f.status.ok()) << f.status.message();
      for (auto& d : f.docs) {
        std::string kind = d.json.value("kind", "");
        for (const auto& [k, plural] : kPlural) {
          if (kind == KindName(k)) {
            if (!d.json["metadata"].contains("namespace") &&
                (k == Kind::kWorkloadCluster || k == Kind::kService)) {
              d.json["metadata"]["namespace"] = "default";
            }
            // Created long ago, so that objects a test adds are younger.
            d.json["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z";
            ASSERT_FALSE(fake_->Upsert(plural, d.json).is_null()) << kind;
          }
        }
        if (kind == "IPAddressPool") fake_->Upsert("ipaddresspools", d.json);
      }
    }
  }

  kube::RestConfig Config() const {
    kube::RestConfig c;
    c.server = fake_->url();
    c.ca_pem = ca_.cert_pem;
    return c;
  }

  ManagerOptions Options(bool leader_elect = false) const {
    ManagerOptions o;
    o.ns = "ipguard-system";
    o.leader_elect = leader_elect;
    o.webhook_port = -1;
    o.metrics_port = 0;
    o.probe_port = -1;
    o.probe_bind = "127.0.0.1";
    o.watch_timeout_seconds = 5;
    o.lease_seconds = 3;
    o.renew_deadline_seconds = 2;
    o.retry_period_seconds = 1;
    return o;
  }

  Manager* StartManager(ManagerOptions o) {
    auto t = kube::NewHttpTransport(Config(), kube::RealClock::Get());
    EXPECT_TRUE(t.ok()) << t.error();
    managers_.push_back(std::make_unique<Manager>(o, std::move(t).value()));
    Status s = managers_.back()->Start();
    EXPECT_TRUE(s.ok()) << s.message();
    return managers_.back().get();
  }

  std::optional<json> Get(Kind k, const std::string& ns, const std::string& name) const {
    return fake_->Get(kPlural.at(k), ns, name);
  }

  // Every stored ipguard object's status equals what a fresh start would
  // compute from the objects the server holds now: the final word on "no
  // change was lost".
  std::string Mismatch() const {
    Engine engine;
    std::vector<std::pair<Kind, json>> all;
    for (const auto& [k, plural] : kPlural) {
      for (json o : fake_->List(plural)) {
        o["kind"] = KindName(k);
        auto parsed = ParseObject(o);
        if (!parsed.ok()) continue;
        if (k == Kind::kService && !parsed->svc->is_load_balancer()) continue;
        engine.Upsert(*parsed);
        all.emplace_back(k, o);
      }
    }
    for (const auto& [k, o] : all) {
      if (k == Kind::kService) continue;
      auto parsed = ParseObject(o);
      json current = o.value("status", json::object());
      json want = DesiredStatus(engine, *parsed, current, "2000-01-01T00:00:00Z");
      if (want != current) {
        return parsed->Describe() + ": has " + current.dump() + "\n  want " + want.dump();
      }
    }
    return "";
  }

  bool Settled() const { return Mismatch().empty(); }

  size_t StatusWrites() const { return fake_->CountRequests("PUT", "/status"); }

  std::vector<json> Events(const std::string& reason, const std::string& name) const {
    std::vector<json> out;
    for (const json& e : fake_->List("events")) {
      if (e.value("reason", "") == reason && e["regarding"].value("name", "") == name)
        out.push_back(e);
    }
    return out;
  }

  json Wlc(const std::string& ns, const std::string& name, const std::string& ip) const {
    return {{"apiVersion", "ipguard.io/v1alpha1"},
            {"kind", "WorkloadCluster"},
            {"metadata", {{"name", name}, {"namespace", ns}}},
            {"spec",
             {{"logicalNetworkName", "lnet-prod"},
              {"controlPlaneIP", ip},
              {"nodePools", {{{"name", "np1"}, {"count", 1}}}}}}};
  }

  json LbService(const std::string& name, const std::string& ip) const {
    return {
        {"apiVersion", "v1"},
        {"kind", "Service"},
        {"metadata", {{"name", name}, {"namespace", "default"}}},
        {"spec", {{"type", "LoadBalancer"}, {"loadBalancerIP", ip}, {"ports", {{{"port", 80}}}}}}};
  }

  certs::KeyPair ca_;
  std::unique_ptr<FakeApiServer> fake_;
  std::vector<std::unique_ptr<Manager>> managers_;
};

TEST_F(ManagerTest, InitialSyncWritesEveryKindsStatusAndThenNothing) {
  Manager* m = StartManager(Options());
  ASSERT_TRUE(Eventually([&] { return m->Ready(); }));
  ASSERT_TRUE(Eventually([&] { return Settled(); })) << Mismatch();

  auto prod = Get(Kind::kLogicalNetwork, "", "lnet-prod");
  ASSERT_TRUE(prod);
  const json& st = (*prod)["status"];
  EXPECT_EQ(st["addresses"], (json{{"total", 100}, {"requiredByNodes", 34}, {"free", 66}}));
  EXPECT_EQ(st["clusters"], 3);
  EXPECT_EQ(st["observedGeneration"], (*prod)["metadata"]["generation"]);
  EXPECT_EQ(CondStatus(prod, "Ready"), "True");
  EXPECT_EQ(CondStatus(prod, "Conflicting"), "False");
  EXPECT_EQ(CondStatus(prod, "CapacityExceeded"), "False");

  auto wlc = Get(Kind::kWorkloadCluster, "team-a", "prod");
  ASSERT_TRUE(wlc);
  EXPECT_EQ((*wlc)["status"]["requiredAddresses"], 13);
  EXPECT_EQ(CondStatus(wlc, "Ready"), "True");

  auto pool = Get(Kind::kLoadBalancerPool, "", "lbpool-prod");
  ASSERT_TRUE(pool);
  EXPECT_EQ((*pool)["status"]["addresses"]["total"], 20);
  EXPECT_TRUE((*pool)["status"]["addresses"].contains("assigned"));
  EXPECT_EQ(CondStatus(Get(Kind::kIPReservation, "", "arc-resource-bridge"), "Ready"), "True");

  EXPECT_EQ(fake_->CountRequests("PUT", "/services/"), 0u) << "a Service's status is never written";
  EXPECT_EQ(fake_->CountRequests("PATCH", "/services/"), 0u);

  std::string metrics = m->Metrics();
  EXPECT_NE(
      metrics.find(
          "ipguard_pool_addresses{kind=\"LogicalNetwork\",name=\"lnet-prod\",state=\"free\"} 66"),
      std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("ipguard_informers_synced 1"), std::string::npos);
  EXPECT_NE(metrics.find("ipguard_index_objects{kind=\"WorkloadCluster\"} 5"), std::string::npos);

  // Level-based and idempotent: nothing changed, so nothing is written.
  size_t writes = StatusWrites();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(StatusWrites(), writes);
}

// `kubectl get lnet,wlc,lbpool,ipres` on the clean plan, column by column, as the API
// server computes it from the CRDs' printer columns and the status the controller wrote:
// every object Ready, every column filled but where the object has nothing to show.
TEST_F(ManagerTest, PrinterColumnsShowTheStatusTheControllerWrites) {
  Manager* m = StartManager(Options());
  ASSERT_TRUE(Eventually([&] { return m->Ready(); }));
  ASSERT_TRUE(Eventually([&] { return Settled(); })) << Mismatch();

  // "plural/ns/name" -> column -> value
  std::map<std::string, std::map<std::string, std::string>> rows;
  for (const std::string plural :
       {"logicalnetworks", "workloadclusters", "loadbalancerpools", "ipreservations"}) {
    auto columns = PrinterColumns(plural);
    ASSERT_FALSE(columns.empty()) << plural;
    for (const json& obj : fake_->List(plural)) {
      std::string id = plural + "/" + obj["metadata"].value("namespace", "") + "/" +
                       obj["metadata"].value("name", "");
      for (const auto& [name, path] : columns) rows[id][name] = Column(obj, path);
      EXPECT_EQ(rows[id]["Ready"], "True") << id;
      for (const auto& [name, value] : rows[id]) {
        const json& spec = obj["spec"];
        bool dhcp = spec.value("ipAllocationMethod", "") == "DHCP";
        bool no_capacity = dhcp && !spec.contains("dhcpScope");
        bool may_be_empty =
            name == "Description" || (plural == "ipreservations" && name == "VLAN") ||
            (dhcp && name == "Prefix") || (no_capacity && (name == "Total" || name == "Free"));
        EXPECT_TRUE(may_be_empty || !value.empty()) << id << ": column " << name << " is empty";
      }
    }
  }
  for (const char* id : {"logicalnetworks//lnet-prod", "logicalnetworks//lnet-lab-dhcp",
                         "workloadclusters/team-a/prod", "loadbalancerpools//lbpool-prod"}) {
    ASSERT_TRUE(rows.count(id)) << id;
  }
  const auto& lnet = rows["logicalnetworks//lnet-prod"];
  EXPECT_EQ(lnet.at("Method"), "Static");
  EXPECT_EQ(lnet.at("Prefix"), "10.10.0.0/24");
  EXPECT_EQ(lnet.at("Total"), "100");
  EXPECT_EQ(lnet.at("Free"), "66");
  const auto& wlc = rows["workloadclusters/team-a/prod"];
  EXPECT_EQ(wlc.at("Network"), "lnet-prod");
  EXPECT_FALSE(wlc.at("Control-Plane-IP").empty());
  const auto& dhcp = rows["logicalnetworks//lnet-lab-dhcp"];
  EXPECT_EQ(dhcp.at("Total"), "100") << "a DHCP network with a declared scope shows its size";
  EXPECT_EQ(rows["loadbalancerpools//lbpool-prod"].at("Assigned").empty(), false);
}

TEST_F(ManagerTest, ACollisionBehindTheWebhooksBackIsFlaggedOnTheLaterObjectThenCleared) {
  Manager* m = StartManager(Options());
  ASSERT_TRUE(Eventually([&] { return m->Ready() && Settled(); })) << Mismatch();
  // team-a/prod holds 10.10.0.20; a later cluster takes it too, as if
  // created while the webhook was down.
  fake_->Upsert("workloadclusters", Wlc("team-z", "late", "10.10.0.20"));
  ASSERT_TRUE(Eventually([&] {
    return CondStatus(Get(Kind::kWorkloadCluster, "team-z", "late"), "Conflicting") == "True";
  })) << Get(Kind::kWorkloadCluster, "team-z", "late").value_or(json()).dump()
      << "\n"
      << Mismatch();
  auto late = Get(Kind::kWorkloadCluster, "team-z", "late");
  std::string msg = (*Cond(*late, "Conflicting"))["message"];
  EXPECT_NE(msg.find("WorkloadCluster team-a/prod"), std::string::npos) << msg;
  EXPECT_EQ(CondStatus(late, "Ready"), "False");
  EXPECT_EQ(CondStatus(Get(Kind::kWorkloadCluster, "team-a", "prod"), "Conflicting"), "False")
      << "oldest wins";
  ASSERT_TRUE(Eventually([&] { return Events("IPConflict", "late").size() == 1; }));
  json ev = Events("IPConflict", "late")[0];
  EXPECT_EQ(ev["type"], "Warning");
  EXPECT_EQ(ev["regarding"]["kind"], "WorkloadCluster");
  EXPECT_EQ(ev["regarding"]["namespace"], "team-z");
  EXPECT_TRUE(Events("IPConflict", "prod").empty());
  EXPECT_NE(m->Metrics().find("ipguard_conflicts{kind=\"WorkloadCluster\"} 1"), std::string::npos);

  // A user's fix touches the spec only; the status the manager wrote stays.
  json fixed = *Get(Kind::kWorkloadCluster, "team-z", "late");
  fixed["spec"]["controlPlaneIP"] = "10.10.0.30";
  fake_->Upsert("workloadclusters", fixed);
  ASSERT_TRUE(Eventually([&] {
    return CondStatus(Get(Kind::kWorkloadCluster, "team-z", "late"), "Conflicting") == "False";
  }));
  ASSERT_TRUE(Eventually([&] { return Events("ConflictResolved", "late").size() == 1; }));
  EXPECT_EQ(Events("ConflictResolved", "late")[0]["type"], "Normal");
  EXPECT_TRUE(Eventually([&] { return Settled(); })) << Mismatch();
}

TEST_F(ManagerTest, ServicesGetEventsButNeverAStatusWrite) {
  Manager* m = StartManager(Options());
  ASSERT_TRUE(Eventually([&] { return m->Ready() && Settled(); })) << Mismatch();
  fake_->Upsert("services", LbService("first", "10.10.0.210"));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  fake_->Upsert("services", LbService("second", "10.10.0.210"));
  ASSERT_TRUE(Eventually([&] { return Events("IPConflict", "second").size() == 1; }));
  EXPECT_TRUE(Events("IPConflict", "first").empty()) << "the older Service keeps its address";
  EXPECT_EQ(fake_->CountRequests("PUT", "/services/"), 0u);
  fake_->Remove("services", "default", "second");
  // The deleted Service needs no resolution event; the first stays clean.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(Events("IPConflict", "first").empty());
}

// The first full pass after the sync queues only Services with something to
// report; one that already collides when the manager starts is among them.
TEST_F(ManagerTest, AServiceCollisionPresentAtStartIsReportedAtTheFirstSync) {
  // Addresses clear of every object of the plan: no status write of a
  // neighbour brings these Services back into the queue; only the sync does.
  fake_->Upsert("services", LbService("early-a", "192.0.2.211"));
  // Same timestamp: the name decides, early-a is older.
  fake_->Upsert("services", LbService("early-b", "192.0.2.211"));
  fake_->Upsert("services", LbService("early-clear", "192.0.2.212"));
  Manager* m = StartManager(Options());
  ASSERT_TRUE(Eventually([&] { return m->Ready() && Settled(); })) << Mismatch();
  ASSERT_TRUE(Eventually([&] { return Events("IPConflict", "early-b").size() == 1; }));
  std::string note = Events("IPConflict", "early-b")[0].value("note", "");
  EXPECT_NE(note.find("Service default/early-a"), std::string::npos) << note;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(Events("IPConflict", "early-a").empty()) << "the older Service keeps its address";
  EXPECT_TRUE(Events("IPConflict", "early-clear").empty());
  EXPECT_NE(m->Metrics().find("ipguard_conflicts{kind=\"Service\"} 1"), std::string::npos)
      << m->Metrics();
}

TEST_F(ManagerTest, DroppedWatchesRestartsAndErrorsLoseNoChange) {
  Manager* m = StartManager(Options());
  ASSERT_TRUE(Eventually([&] { return m->Ready() && Settled(); })) << Mismatch();
  for (int round = 0; round < 4; ++round) {
    std::string n = std::to_string(round);
    fake_->Upsert("workloadclusters",
                  Wlc("chaos", "c" + n, "10.10.0." + std::to_string(40 + round)));
    switch (round) {
      case 0:
        fake_->DropWatches();
        break;
      case 1:
        fake_->Restart();  // connections cut, history compacted: relist
        break;
      case 2:
        fake_->FailNext(3, 500);
        fake_->DropWatches();
        break;
      case 3:
        fake_->FailNext(2, 429, 1);
        fake_->DropWatches();
        break;
    }
    // A change made while the watches are down.
    fake_->Upsert("workloadclusters",
                  Wlc("chaos", "d" + n, "10.10.0.20"));  // collides with team-a/prod
    fake_->Remove("workloadclusters", "chaos", "c" + n);
  }
  ASSERT_TRUE(Eventually([&] { return Settled(); }, std::chrono::seconds(30))) << Mismatch();
  for (int round = 0; round < 4; ++round) {
    EXPECT_EQ(CondStatus(Get(Kind::kWorkloadCluster, "chaos", "d" + std::to_string(round)),
                         "Conflicting"),
              "True");
  }
  EXPECT_NE(m->Metrics().find("ipguard_watch_restarts_total{resource=\"workloadclusters\"}"),
            std::string::npos);
}

TEST_F(ManagerTest, ExpiredResourceVersionForcesARelist) {
  Manager* m = StartManager(Options());
  ASSERT_TRUE(Eventually([&] { return m->Ready() && Settled(); })) << Mismatch();
  auto lists = [&] {
    size_t n = 0;
    for (const auto& r : fake_->requests()) {
      n += r.method == "GET" && !r.watch && r.path.find("/workloadclusters") != std::string::npos;
    }
    return n;
  };
  size_t lists_before = lists();
  // A write elsewhere moves the resourceVersion past what the WorkloadCluster
  // watch has seen; compacting there makes that version expire. (A bookmark
  // landing in between would keep it current, so try a few times.)
  bool relisted = false;
  for (int attempt = 0; attempt < 5 && !relisted; ++attempt) {
    fake_->Upsert("leases",
                  {{"apiVersion", "coordination.k8s.io/v1"},
                   {"kind", "Lease"},
                   {"metadata", {{"name", "bump-" + std::to_string(attempt)}, {"namespace", "x"}}},
                   {"spec", json::object()}});
    fake_->Compact();
    fake_->DropWatches();
    relisted = Eventually([&] { return lists() > lists_before; }, std::chrono::seconds(3));
  }
  fake_->Upsert("workloadclusters", Wlc("relist", "x", "10.10.0.20"));
  ASSERT_TRUE(Eventually([&] {
    return CondStatus(Get(Kind::kWorkloadCluster, "relist", "x"), "Conflicting") == "True";
  }));
  EXPECT_TRUE(relisted) << "lists before: " << lists_before;
}

TEST_F(ManagerTest, AStaleStatusWriteIsRetriedOnFreshData) {
  Manager* m = StartManager(Options());
  ASSERT_TRUE(Eventually([&] { return m->Ready() && Settled(); })) << Mismatch();
  fake_->FailNext(1, 409);
  fake_->Upsert("workloadclusters", Wlc("team-q", "q", "10.10.0.50"));
  ASSERT_TRUE(Eventually(
      [&] { return CondStatus(Get(Kind::kWorkloadCluster, "team-q", "q"), "Ready") == "True"; }));
  // The injected 409 (and any real one from a write racing the watch) is
  // followed by a fresh read and a successful write.
  int conflicts = 0;
  bool written_after = false;
  for (const auto& r : fake_->requests()) {
    if (r.status == 409) ++conflicts;
    if (conflicts > 0 && r.method == "PUT" &&
        r.path.find("/team-q/workloadclusters/q/status") != std::string::npos && r.status == 200) {
      written_after = true;
    }
  }
  EXPECT_GE(conflicts, 1);
  EXPECT_TRUE(written_after);
  EXPECT_TRUE(Eventually([&] { return Settled(); })) << Mismatch();
}

TEST_F(ManagerTest, OnlyTheLeaseHolderWritesAndASuccessorTakesOver) {
  // Someone else holds the Lease: nothing is written.
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", "ipguard-manager"}, {"namespace", "ipguard-system"}}},
                {"spec",
                 {{"holderIdentity", "someone-else"},
                  {"leaseDurationSeconds", 3},
                  {"renewTime", "2026-11-27T00:00:00.000000Z"},
                  {"acquireTime", "2026-11-27T00:00:00.000000Z"}}}};
  ASSERT_FALSE(fake_->Upsert("leases", lease).is_null());
  Manager* a = StartManager(Options(true));
  ASSERT_TRUE(Eventually([&] { return a->Ready(); }));
  // Keep renewing the other holder's lease for a while.
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    lease["spec"]["renewTime"] = "2026-11-27T00:00:0" + std::to_string(i + 1) + ".000000Z";
    fake_->Upsert("leases", lease);
  }
  EXPECT_FALSE(a->IsLeader());
  EXPECT_EQ(StatusWrites(), 0u) << "a replica that does not hold the Lease never writes";

  // The other holder goes away: `a` takes over within the lease duration.
  ASSERT_TRUE(Eventually([&] { return a->IsLeader(); }, std::chrono::seconds(8)));
  ASSERT_TRUE(Eventually([&] { return Settled(); })) << Mismatch();

  // A second manager waits; when `a` stops it releases the Lease and `b`
  // takes over well within the lease duration.
  Manager* b = StartManager(Options(true));
  ASSERT_TRUE(Eventually([&] { return b->Ready(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_FALSE(b->IsLeader());
  auto stop_at = std::chrono::steady_clock::now();
  a->Stop();
  ASSERT_TRUE(Eventually([&] { return b->IsLeader(); }, std::chrono::seconds(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - stop_at, std::chrono::seconds(3));
  fake_->Upsert("workloadclusters", Wlc("team-z", "after", "10.10.0.20"));
  ASSERT_TRUE(Eventually([&] {
    return CondStatus(Get(Kind::kWorkloadCluster, "team-z", "after"), "Conflicting") == "True";
  }));
}

// The real binary: a kubeconfig, --self-signed certificates kept in a
// Secret and patched into a webhook configuration, an AdmissionReview over
// TLS, and a clean exit on SIGTERM that releases the Lease.
TEST_F(ManagerTest, TheBinaryServesTheWebhookAndStopsCleanlyOnSigterm) {
  fake_->Upsert("validatingwebhookconfigurations",
                {{"apiVersion", "admissionregistration.k8s.io/v1"},
                 {"kind", "ValidatingWebhookConfiguration"},
                 {"metadata", {{"name", "ipguard"}}},
                 {"webhooks",
                  {{{"name", "validate.ipguard.io"},
                    {"clientConfig", {{"url", "https://127.0.0.1/validate"}}}}}}});
  char tmpl[] = "/tmp/ipguard-manager-test-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  auto b64 = [](const std::string& s) { return certs::EncodeBase64(s); };
  std::ofstream(dir + "/kubeconfig")
      << "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
      << "clusters:\n- name: fake\n  cluster:\n    server: " << fake_->url()
      << "\n    certificate-authority-data: " << b64(ca_.cert_pem)
      << "\ncontexts:\n- name: fake\n  context: {cluster: fake, user: u}\n"
      << "users:\n- name: u\n  user: {token: secret-token}\n";
  auto free_port = [] {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor acc(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return acc.local_endpoint().port();
  };
  int webhook_port = free_port(), probe_port = free_port();
  std::vector<std::string> args = {IPGUARD_BINARY,
                                   "manager",
                                   "--kubeconfig",
                                   dir + "/kubeconfig",
                                   "--namespace",
                                   "ipguard-system",
                                   "--self-signed",
                                   "--webhook-ip",
                                   "127.0.0.1",
                                   "--webhook-config",
                                   "ipguard",
                                   "--webhook-port",
                                   std::to_string(webhook_port),
                                   "--webhook-bind",
                                   "127.0.0.1",
                                   "--cert-dir",
                                   dir + "/certs",
                                   "--metrics-port",
                                   "0",
                                   "--probe-port",
                                   std::to_string(probe_port),
                                   "--log-format",
                                   "json"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, (dir + "/log").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, IPGUARD_BINARY, &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  auto log = [&] { return testing_util::ReadFile(dir + "/log"); };

  auto ready = [&] {
    testing_util::TestClient c(probe_port, false);
    return c.Connect().empty() && c.Request("GET", "/readyz", "").status == 200;
  };
  ASSERT_TRUE(Eventually(ready, std::chrono::seconds(20))) << log();
  auto secret = fake_->Get("secrets", "ipguard-system", "ipguard-webhook-cert");
  ASSERT_TRUE(secret) << log();
  auto ca = kube::DecodeBase64((*secret)["data"]["ca.crt"]);
  ASSERT_TRUE(ca.ok());
  auto vwc = fake_->Get("validatingwebhookconfigurations", "", "ipguard");
  ASSERT_TRUE(Eventually([&] {
    vwc = fake_->Get("validatingwebhookconfigurations", "", "ipguard");
    return vwc && (*vwc)["webhooks"][0]["clientConfig"].value("caBundle", "") == b64(*ca);
  })) << log();

  // A denial through the binary's webhook, verified against the CA it made.
  testing_util::TestClient client(webhook_port, true, *ca);
  ASSERT_EQ(client.Connect(), "") << log();
  json wlc = Wlc("team-z", "clash", "10.10.0.20");
  json review = {
      {"apiVersion", "admission.k8s.io/v1"},
      {"kind", "AdmissionReview"},
      {"request",
       {{"uid", "u-1"},
        {"kind", {{"group", "ipguard.io"}, {"version", "v1alpha1"}, {"kind", "WorkloadCluster"}}},
        {"operation", "CREATE"},
        {"namespace", "team-z"},
        {"object", wlc}}}};
  auto reply = client.Request("POST", "/validate", review.dump());
  ASSERT_TRUE(reply.ok) << reply.error;
  json answer = json::parse(reply.body);
  EXPECT_EQ(answer["response"]["uid"], "u-1");
  EXPECT_EQ(answer["response"]["allowed"], false);
  EXPECT_NE(answer["response"]["status"]["message"].get<std::string>().find(
                "controlPlaneIP 10.10.0.20 of WorkloadCluster team-z/clash"),
            std::string::npos)
      << answer.dump();

  ASSERT_TRUE(Eventually([&] {
    auto l = fake_->Get("leases", "ipguard-system", "ipguard-manager");
    return l && !(*l)["spec"].value("holderIdentity", "").empty();
  })) << log();

  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int status = 0;
  bool exited =
      Eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, std::chrono::seconds(15));
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ASSERT_TRUE(exited) << "no exit within 15 s of SIGTERM\n" << log();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log();
  auto l = fake_->Get("leases", "ipguard-system", "ipguard-manager");
  ASSERT_TRUE(l);
  EXPECT_EQ((*l)["spec"].value("holderIdentity", ""), "") << "the Lease is released on the way out";
  std::string text = log();
  EXPECT_NE(text.find("\"msg\":\"received SIGTERM\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"msg\":\"stopped\""), std::string::npos) << text;
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace ipguard
