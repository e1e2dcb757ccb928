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

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "controller/status.h"
#include "core/manifest.h"
#include "kube/http_transport.h"
#include "kube/kept_transport.h"
#include "tests/component/chart_render.h"
#include "tests/component/eventually.h"
#include "tests/component/fake_cluster.h"
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

// A request as RBAC sees it: verb, API group, resource[/subresource],
// namespace and name.
struct Access {
  std::string verb, group, resource, ns, name;
  std::string Text() const {
    return verb + " " + (group.empty() ? "core" : group) + "/" + resource +
           (ns.empty() ? "" : " in " + ns) + (name.empty() ? "" : " named " + name);
  }
};

Access AccessOf(const FakeApiServer::Request& r) {
  std::vector<std::string> seg;
  for (size_t i = 1, j; i <= r.path.size(); i = j + 1) {
    j = r.path.find('/', i);
    if (j == std::string::npos) j = r.path.size();
    seg.push_back(r.path.substr(i, j - i));
  }
  Access a;
  size_t at = 0;
  if (!seg.empty() && seg[0] == "api") {
    at = 2;  // api/v1
  } else if (seg.size() > 2) {
    a.group = seg[1];
    at = 3;  // apis/GROUP/VERSION
  }
  if (seg.size() > at + 1 && seg[at] == "namespaces") {
    a.ns = seg[at + 1];
    at += 2;
  }
  if (seg.size() > at) a.resource = seg[at];
  if (seg.size() > at + 1) a.name = seg[at + 1];
  if (seg.size() > at + 2) a.resource += "/" + seg[at + 2];
  if (r.method == "GET") a.verb = r.watch ? "watch" : a.name.empty() ? "list" : "get";
  if (r.method == "POST") a.verb = "create";
  if (r.method == "PUT") a.verb = "update";
  if (r.method == "PATCH") a.verb = "patch";
  if (r.method == "DELETE") a.verb = a.name.empty() ? "deletecollection" : "delete";
  return a;
}

bool Has(const json& list, const std::string& v) {
  for (const auto& x : list) {
    if (x == v || x == "*") return true;
  }
  return false;
}

// Whether one PolicyRule grants the access (resourceNames, when given, only
// ever grant requests that name an object).
bool Allows(const json& rule, const Access& a) {
  if (!Has(rule.value("apiGroups", json::array()), a.group) ||
      !Has(rule.value("resources", json::array()), a.resource) ||
      !Has(rule.value("verbs", json::array()), a.verb)) {
    return false;
  }
  json names = rule.value("resourceNames", json::array());
  return names.empty() || (!a.name.empty() && Has(names, a.name));
}

const std::map<Kind, std::string>& kPlural = testing_util::Plurals();

// The fake API server over TLS with the ipguard kinds, loaded with the
// shipped clean example plan.
class ManagerTest : public testing::Test {
 protected:
  void SetUp() override {
    ca_ = *certs::GenerateCA("fake-apiserver-ca", std::chrono::hours(24));
    fake_ = testing_util::StartFakeApi(ca_);
    LoadExamples();
  }
  void TearDown() override {
    for (auto& m : managers_) m->Stop();
    managers_.clear();
    fake_->Stop();
  }

  void LoadExamples() {
    testing_util::LoadExamples(fake_.get(), [](Kind) { return true; });
  }

  kube::RestConfig Config() const { return testing_util::ConfigOf(*fake_, ca_); }

  // The stored IPClaims of these addresses: a test's own, whatever claims the
  // leader writes meanwhile for the examples' objects (each of its own address).
  size_t ClaimsOf(const std::set<std::string>& addresses) const {
    size_t n = 0;
    for (const json& c : fake_->List("ipclaims")) {
      n += addresses.count(c["spec"].value("address", ""));
    }
    return n;
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
    // As RunManager wires it: the claims on kept connections of their own.
    auto claims = kube::NewKeptTransport(Config(), kube::RealClock::Get(), t.value().get());
    EXPECT_TRUE(claims.ok()) << claims.error();
    managers_.push_back(std::make_unique<Manager>(o, std::move(t).value(), nullptr,
                                                  std::move(claims).value()));
    Status s = managers_.back()->Start();
    EXPECT_TRUE(s.ok()) << s.message();
    return managers_.back().get();
  }

  std::optional<json> Get(Kind k, const std::string& ns, const std::string& name) const {
    return fake_->Get(kPlural.at(k), ns, name);
  }

  // For the tests that run the real binary: a fresh directory, a kubeconfig
  // for the fake API server in it, a free local port, the binary started with
  // its stderr in a file, its /readyz, and SIGTERM with the exit status (-1
  // when it had to be killed after 15 s).
  static std::string TempDir() {
    char tmpl[] = "/tmp/ipguard-manager-test-XXXXXX";
    return ::mkdtemp(tmpl);
  }
  std::string WriteKubeconfig(const std::string& dir) const {
    std::string path = dir + "/kubeconfig";
    std::ofstream(path) << "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
                        << "clusters:\n- name: fake\n  cluster:\n    server: " << fake_->url()
                        << "\n    certificate-authority-data: " << certs::EncodeBase64(ca_.cert_pem)
                        << "\ncontexts:\n- name: fake\n  context: {cluster: fake, user: u}\n"
                        << "users:\n- name: u\n  user: {token: secret-token}\n";
    return path;
  }
  // A port nothing listens on, for a child process to bind. Picked below the
  // kernel's ephemeral range: a port in it may become the local end of any
  // outgoing connection before the child binds it.
  static int FreePort() {
    static std::mt19937 random(std::random_device{}());
    int lo = 32768;
    std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> lo;
    const int first = 10000, span = std::max(1000, lo - first);
    boost::asio::io_context ioc;
    for (int attempt = 0; attempt < 100; ++attempt) {
      auto port = static_cast<unsigned short>(first + random() % span);
      // Nor a port of the real control planes the e2e suite starts.
      if (std::set<int>{16443, 16643, 23790, 23791, 23990, 23991, 10257, 10457}.count(port))
        continue;
      boost::asio::ip::tcp::acceptor acc(ioc);
      boost::system::error_code ec;
      acc.open(boost::asio::ip::tcp::v4(), ec);
      if (!ec) acc.bind({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
      if (!ec) return port;
    }
    boost::asio::ip::tcp::acceptor acc(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return acc.local_endpoint().port();
  }
  static pid_t Spawn(std::vector<std::string> args, const std::string& log) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, IPGUARD_BINARY, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    return rc == 0 ? pid : -1;
  }
  static bool ProbeReady(int port) {
    testing_util::TestClient c(port, false);
    return c.Connect().empty() && c.Request("GET", "/readyz", "").status == 200;
  }
  static int Terminate(pid_t pid) {
    ::kill(pid, SIGTERM);
    int status = 0;
    if (Eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; },
                   std::chrono::seconds(15))) {
      return status;
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
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
    // The ledger is complete: every holder that collides with nothing has its
    // claims (the leader writes those the webhook did not).
    for (const auto& [k, o] : all) {
      if (k != Kind::kWorkloadCluster && k != Kind::kService) continue;
      auto parsed = ParseObject(o);
      if (!engine.CollisionsOf(parsed->Key()).empty()) continue;
      auto missing = engine.MissingClaims(*parsed);
      if (!missing.empty()) return parsed->Describe() + ": no IPClaim " + missing[0].name + " yet";
    }
    for (const auto& [k, o] : all) {
      if (!InfoOf(k).owns_status) continue;  // Services and IPClaims have no status of ipguard's
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

  // Status writes the server took: a stale write it refused (409, the watch
  // had not yet shown the writer its previous write) changes nothing and is
  // retried on a fresh read, so it is not counted.
  size_t StatusWrites() const {
    size_t n = 0;
    for (const auto& r : fake_->requests()) {
      n += r.method == "PUT" && r.path.find("/status") != std::string::npos && r.status == 200;
    }
    return n;
  }

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

  static json LbService(const std::string& name, const std::string& ip) {
    return testing_util::LbService(name, ip);
  }

  // Options of a manager whose webhook serves on 127.0.0.1 (any free port)
  // with a certificate of ca_ written to `dir`.
  ManagerOptions WebhookOptions(const std::string& dir) const {
    auto serving = *certs::GenerateServing(ca_, "ipguard-webhook", {"localhost"}, {"127.0.0.1"},
                                           std::chrono::hours(24));
    std::ofstream(dir + "/tls.crt") << serving.cert_pem;
    std::ofstream(dir + "/tls.key") << serving.key_pem;
    ManagerOptions o = Options();
    o.webhook_port = 0;
    o.webhook_bind = "127.0.0.1";
    o.cert_dir = dir;
    return o;
  }

  static json ReviewOf(const std::string& uid, const std::string& op, const json& obj,
                       bool dry_run = false, const std::string& user = "") {
    return testing_util::ReviewOf(uid, op, obj, dry_run, user);
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

// --status-qps: the status writes of the initial sync are spread at the pace asked for
// (one slot per 250 ms after a burst of one), every one lands, and no worker is held
// while a key waits for its slot (a key that needs no write any more is not written).
TEST_F(ManagerTest, StatusWritesArePacedAndEveryOneLands) {
  ManagerOptions o = Options();
  o.status_qps = 4;
  o.status_burst = 1;
  o.workers = 1;
  Manager* m = StartManager(o);
  ASSERT_TRUE(Eventually([&] { return m->Ready(); }));
  ASSERT_TRUE(Eventually([&] { return Settled(); }, std::chrono::milliseconds(60000))) << Mismatch();
  std::vector<std::chrono::steady_clock::time_point> at;
  for (const auto& r : fake_->requests()) {
    if (r.method == "PUT" && r.path.find("/status") != std::string::npos) at.push_back(r.at);
  }
  ASSERT_GE(at.size(), 8u);
  // n writes paced 250 ms apart span at least (n - 1) * 250 ms; half of that is a bound
  // no unpaced run comes near (they all go out within a few milliseconds).
  auto span = at.back() - at.front();
  EXPECT_GE(span, std::chrono::milliseconds(125) * static_cast<int>(at.size() - 1))
      << at.size() << " writes in "
      << std::chrono::duration_cast<std::chrono::milliseconds>(span).count() << " ms";
  size_t writes = StatusWrites();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_EQ(StatusWrites(), writes) << "settled: nothing more to write";
}

// The start's full pass comes after every change: with writes paced at 5 a second, the
// first start's statuses and the claims of 30 clusters stored without them (written
// behind the webhook's back) take many seconds; a cluster changed at ready has its
// status written while the pass is still on, the pass's writes are paced (claims and
// statuses alike), and in the end every status and every claim is written.
TEST_F(ManagerTest, AChangeIsWrittenAheadOfTheStartsPass) {
  for (int i = 0; i < 30; ++i) {
    fake_->Upsert("workloadclusters",
                  Wlc("pass", "p" + std::to_string(i), "10.10.0." + std::to_string(30 + i)));
  }
  ManagerOptions o = Options();
  o.status_qps = 5;
  o.status_burst = 1;
  o.workers = 1;
  Manager* m = StartManager(o);
  ASSERT_TRUE(Eventually([&] { return m->Ready(); }));
  // At once: the watch shows the change about when the housekeeping thread marks the
  // sync (before it, the change waits for the mark; after it, it is queued at once).
  auto changed = *Get(Kind::kWorkloadCluster, "pass", "p29");
  changed["spec"]["nodePools"][0]["count"] = 3;
  json stored = fake_->Upsert("workloadclusters", changed);
  const int64_t generation = stored["metadata"]["generation"].get<int64_t>();
  auto unwritten = [&] {
    int n = 0;
    for (const json& c : fake_->List("workloadclusters")) {
      n += !c.contains("status") || !c["status"].contains("observedGeneration");
    }
    return n;
  };
  int left = -1;
  ASSERT_TRUE(Eventually([&] {
    auto c = Get(Kind::kWorkloadCluster, "pass", "p29");
    if (!c || c->value("status", json::object()).value("observedGeneration", int64_t{0}) < generation)
      return false;
    left = unwritten();
    return true;
  })) << "the changed cluster's status";
  EXPECT_GT(left, 10) << "the change was written while most of the pass was still to come";

  ASSERT_TRUE(Eventually([&] { return Settled(); }, std::chrono::milliseconds(60000))) << Mismatch();
  // The pass's writes (statuses and claims) one slot each, 200 ms apart: n writes span at
  // least (n - 1) * 200 ms; half of that is a bound no unpaced run comes near.
  std::vector<std::chrono::steady_clock::time_point> at;
  int claims = 0;
  for (const auto& r : fake_->requests()) {
    bool status = r.method == "PUT" && r.path.find("/status") != std::string::npos;
    bool claim = r.method == "POST" && r.path.find("/ipclaims") != std::string::npos;
    claims += claim && r.status == 201;
    if (status || claim) at.push_back(r.at);
  }
  EXPECT_GE(claims, 30) << "every cluster's claim was written";
  ASSERT_GE(at.size(), 60u);
  auto span = at.back() - at.front();
  EXPECT_GE(span, std::chrono::milliseconds(100) * static_cast<int>(at.size() - 1 - 5))
      << at.size() << " writes in "
      << std::chrono::duration_cast<std::chrono::milliseconds>(span).count() << " ms";
}

// --status-qps-admitting: while the webhook answers 10 or more reviews a second, the
// changes of new objects are held unreconciled and let in at the slower pace (here 1 a
// second instead of unpaced); once the reviews stop, the rest are all written within
// seconds.
TEST_F(ManagerTest, StatusWritesYieldWhileTheWebhookIsBusyAndCatchUpAfter) {
  std::string dir = TempDir();
  ManagerOptions o = WebhookOptions(dir);
  o.status_qps = 0;  // unpaced: only the busy spell slows them
  o.status_qps_admitting = 1;
  Manager* m = StartManager(o);
  ASSERT_TRUE(Eventually([&] { return m->Ready() && Settled(); })) << Mismatch();
  // The start's own work done (its neighbours' and backfilled claims' reconciles):
  // no reconcile for a second and a half.
  const std::string reconciles = "ipguard_reconcile_duration_seconds_count";
  ASSERT_TRUE(Eventually(
      [&] {
        double now = testing_util::Counter(m->Metrics(), reconciles);
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        return now >= 0 && testing_util::Counter(m->Metrics(), reconciles) == now;
      },
      std::chrono::milliseconds(20000)));

  testing_util::BusyReviewer reviewer(
      m->webhook_port(), ca_.cert_pem,
      ReviewOf("u", "CREATE", LbService("probe", "10.10.0.210"), true).dump(),
      std::chrono::seconds(3));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // busy by now
  auto busy_from = std::chrono::steady_clock::now();
  size_t before = StatusWrites();
  double reconciled_before = testing_util::Counter(m->Metrics(), reconciles);
  for (int i = 0; i < 10; ++i) {
    fake_->Upsert("workloadclusters",
                  Wlc("busy", "b" + std::to_string(i), "10.10.0." + std::to_string(60 + i)));
  }
  // While the reviews come: at most one write a second (and one at once).
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  size_t during = StatusWrites() - before;
  double reconciled_during = testing_util::Counter(m->Metrics(), reconciles) - reconciled_before;
  double busy_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - busy_from).count();
  reviewer.Wait();
  EXPECT_GE(reviewer.answered(), 60) << "the reviews came at 10 a second or more";
  EXPECT_LE(during, static_cast<size_t>(busy_s) + 2)
      << during << " status writes in " << busy_s << " s while the webhook was busy";
  // Ten changes, each let in at the busy pace (a reconcile each) and their network's
  // status (a neighbour, a few reconciles): not one reconcile per change.
  ASSERT_GE(reconciled_before, 0) << reconciles << " missing from /metrics";
  EXPECT_LE(reconciled_during, static_cast<int>(busy_s) + 5)
      << reconciled_during << " reconciles in " << busy_s << " s while the webhook was busy";
  // Quiet again: every deferred status is written.
  ASSERT_TRUE(Eventually([&] { return Settled(); }, std::chrono::milliseconds(10000))) << Mismatch();
  EXPECT_GE(StatusWrites() - before, 10u);
  std::string metrics = m->Metrics();
  double deferred = testing_util::Counter(metrics, "ipguard_status_writes_deferred_total");
  ASSERT_GE(deferred, 0) << metrics;
  EXPECT_GE(deferred, 5);
  std::system(("rm -rf " + dir).c_str());
}

// Claims are not held while the webhook is busy: a holder that goes in the middle of a
// burst gives its address back at once (its claim older than the grace), for a create of
// the same burst may be waiting for it, while the changes of the burst stay held.
TEST_F(ManagerTest, AClaimIsReleasedAtOnceWhileTheWebhookIsBusy) {
  std::string dir = TempDir();
  ManagerOptions o = WebhookOptions(dir);
  o.status_qps = 0;
  o.status_qps_admitting = 1;
  o.claim_grace_ms = 200;
  Manager* m = StartManager(o);
  ASSERT_TRUE(Eventually([&] { return m->Ready() && Settled(); })) << Mismatch();
  ASSERT_TRUE(
      Eventually([&] { return fake_->Get("ipclaims", "", "vlan10-10.10.0.20").has_value(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // older than the grace

  testing_util::BusyReviewer reviewer(
      m->webhook_port(), ca_.cert_pem,
      ReviewOf("u", "CREATE", LbService("probe", "10.10.0.210"), true).dump(),
      std::chrono::seconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // busy by now
  for (int i = 0; i < 10; ++i) {
    fake_->Upsert("workloadclusters",
                  Wlc("busy", "b" + std::to_string(i), "10.10.0." + std::to_string(60 + i)));
  }
  ASSERT_TRUE(fake_->Remove("workloadclusters", "team-a", "prod"));
  auto removed = std::chrono::steady_clock::now();
  bool released = Eventually([&] { return !fake_->Get("ipclaims", "", "vlan10-10.10.0.20"); },
                             std::chrono::milliseconds(2000));
  auto took = std::chrono::steady_clock::now() - removed;
  // Still busy: most of the burst's statuses are not written yet.
  int unwritten = 0;
  for (int i = 0; i < 10; ++i) {
    unwritten += CondStatus(Get(Kind::kWorkloadCluster, "busy", "b" + std::to_string(i)),
                            "Ready") == "(none)";
  }
  reviewer.Stop();
  EXPECT_TRUE(released) << "the claim of the cluster that went is still there";
  EXPECT_LT(took, std::chrono::milliseconds(2000));
  EXPECT_GE(unwritten, 5) << "the burst's changes were not held";
  EXPECT_GE(reviewer.answered(), 60) << "the reviews came at 10 a second or more";
  std::system(("rm -rf " + dir).c_str());
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

// An event the API server refuses is not lost in silence: it is counted by
// reason and result, and the refused write by resource, verb and code.
TEST_F(ManagerTest, ARefusedEventIsCountedWithTheApiServersCode) {
  Manager* m = StartManager(Options());
  ASSERT_TRUE(Eventually([&] { return m->Ready() && Settled(); })) << Mismatch();
  fake_->FailMatching("POST", "/events", 422, "Invalid",
                      "Event.events.k8s.io \"x\" is invalid: refused by the test");
  fake_->Upsert("services", LbService("first", "10.10.0.210"));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  fake_->Upsert("services", LbService("second", "10.10.0.210"));
  ASSERT_TRUE(Eventually([&] {
    return m->Metrics().find(
               "ipguard_events_total{type=\"Warning\",reason=\"IPConflict\",result=\"failed\"} 1") !=
           std::string::npos;
  })) << m->Metrics();
  EXPECT_NE(m->Metrics().find(
                "ipguard_api_write_errors_total{resource=\"events\",verb=\"POST\",code=\"422\"} 1"),
            std::string::npos)
      << m->Metrics();
  EXPECT_TRUE(Events("IPConflict", "second").empty());
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

// MetalLB's IPAddressPools are MetalLB's: with --metallb they are indexed and
// judged, and a collision that gets in is told by events on the pool, but
// their status (MetalLB writes its own) is never written.
TEST_F(ManagerTest, MetalLBPoolsGetEventsButNeverAStatusWrite) {
  ManagerOptions o = Options();
  o.metallb = true;
  Manager* m = StartManager(o);
  ASSERT_TRUE(Eventually([&] { return m->Ready() && Settled(); })) << Mismatch();
  auto pool = [](const std::string& cidr) {
    return json{{"apiVersion", "metallb.io/v1beta1"},
                {"kind", "IPAddressPool"},
                {"metadata", {{"name", "late-pool"}, {"namespace", "metallb-system"}}},
                {"spec", {{"addresses", {cidr}}}}};
  };
  fake_->Upsert("ipaddresspools", pool("10.10.0.150/32"));  // inside lnet-prod's node pool
  ASSERT_TRUE(Eventually([&] { return Events("IPConflict", "late-pool").size() == 1; }));
  EXPECT_EQ(Events("IPConflict", "late-pool")[0]["regarding"].value("kind", ""), "IPAddressPool");
  fake_->Upsert("ipaddresspools", pool("192.0.2.128/28"));
  ASSERT_TRUE(Eventually([&] { return Events("ConflictResolved", "late-pool").size() == 1; }));
  EXPECT_EQ(fake_->CountRequests("PUT", "/ipaddresspools/"), 0u);
  EXPECT_EQ(fake_->CountRequests("PATCH", "/ipaddresspools/"), 0u);
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
  EXPECT_EQ(fake_->CountRequests("PUT", "/status"), 0u)
      << "a replica that does not hold the Lease never even tries to write";

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

// Two replicas, each judging only what it has seen, share one ledger: many
// creates of clusters that all ask for one control-plane IP, sent at once
// to both, are admitted exactly once; the winner's claim names it, and the
// losers that reached the other replica are told who holds the address.
TEST_F(ManagerTest, TwoReplicasAdmitOneOfManyConcurrentRequestsForOneAddress) {
  std::string dir = TempDir();
  const ManagerOptions o = WebhookOptions(dir);
  std::vector<Manager*> replicas;
  for (int i = 0; i < 2; ++i) replicas.push_back(StartManager(o));
  for (Manager* m : replicas) ASSERT_TRUE(Eventually([&] { return m->Ready(); }));

  constexpr int kPerReplica = 40;
  std::atomic<int> allowed{0}, named_holder{0};
  std::mutex mu;
  std::vector<std::string> winners, odd;
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    for (int i = 0; i < kPerReplica; ++i) {
      threads.emplace_back([&, r, i] {
        std::string name = "race-" + std::to_string(r) + "-" + std::to_string(i);
        json review =
            ReviewOf(name, "CREATE", Wlc("team-z", name, "10.10.0.30"), false, "argocd");
        testing_util::TestClient client(replicas[r]->webhook_port(), true, ca_.cert_pem);
        std::string err = client.Connect();
        auto reply = err.empty() ? client.Request("POST", "/validate?timeout=10s", review.dump())
                                 : testing_util::HttpReply{};
        std::lock_guard<std::mutex> l(mu);
        if (!reply.ok) {
          odd.push_back(name + ": " + err + reply.error);
          return;
        }
        json answer = json::parse(reply.body, nullptr, false);
        if (answer["response"].value("allowed", false)) {
          ++allowed;
          winners.push_back(name);
          return;
        }
        std::string msg = answer["response"]["status"].value("message", "");
        if (msg.find("is claimed by WorkloadCluster team-z/race-") != std::string::npos) {
          ++named_holder;
        } else if (msg.find("10.10.0.30") == std::string::npos) {
          odd.push_back(name + ": " + msg);
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(odd.empty()) << odd.front();
  ASSERT_EQ(allowed.load(), 1) << "admitted: " << testing::PrintToString(winners);
  auto claim = fake_->Get("ipclaims", "", "vlan10-10.10.0.30");
  ASSERT_TRUE(claim);
  EXPECT_EQ((*claim)["spec"]["holder"]["name"], winners[0]);
  EXPECT_EQ((*claim)["spec"]["holder"]["kind"], "WorkloadCluster");
  EXPECT_EQ((*claim)["spec"]["holder"]["namespace"], "team-z");
  EXPECT_EQ(ClaimsOf({"10.10.0.30"}), 1u) << "one claim of the address estate-wide";
  // One claim created estate-wide, counted by the replica that made it.
  int created = 0;
  for (Manager* m : replicas) {
    created += m->Metrics().find("ipguard_claim_writes_total{result=\"created\"} 1") !=
               std::string::npos;
  }
  EXPECT_EQ(created, 1);
  std::system(("rm -rf " + dir).c_str());
}

// A dry run and a denial write no claim; the same holder asking again (an
// update, a retry) reuses its claim; a claim written by hand holds its
// address against everyone else.
TEST_F(ManagerTest, ClaimsAreWrittenOnlyForRealAdmissionsAndReusedByTheirHolder) {
  std::string dir = TempDir();
  Manager* m = StartManager(WebhookOptions(dir));
  ASSERT_TRUE(Eventually([&] { return m->Ready(); }));
  auto review = [&](const std::string& op, const json& obj, bool dry_run) {
    testing_util::TestClient client(m->webhook_port(), true, ca_.cert_pem);
    EXPECT_EQ(client.Connect(), "");
    auto reply = client.Request("POST", "/validate", ReviewOf("u", op, obj, dry_run).dump());
    EXPECT_TRUE(reply.ok) << reply.error;
    return json::parse(reply.body, nullptr, false)["response"];
  };
  auto claims = [&] { return ClaimsOf({"10.10.0.210", "10.10.0.20"}); };

  EXPECT_TRUE(review("CREATE", LbService("web", "10.10.0.210"), true)["allowed"].get<bool>());
  EXPECT_EQ(claims(), 0u) << "a dry run claims nothing";
  EXPECT_FALSE(review("CREATE", LbService("web", "10.10.0.20"), false)["allowed"].get<bool>());
  EXPECT_EQ(claims(), 0u) << "a denial claims nothing";

  EXPECT_TRUE(review("CREATE", LbService("web", "10.10.0.210"), false)["allowed"].get<bool>());
  auto claim = fake_->Get("ipclaims", "", "any-10.10.0.210");
  ASSERT_TRUE(claim);
  EXPECT_EQ((*claim)["spec"]["holder"]["kind"], "Service");
  EXPECT_EQ((*claim)["spec"]["holder"]["namespace"], "default");
  EXPECT_EQ((*claim)["spec"]["holder"]["name"], "web");
  // The same Service again (the API server retries, or it is updated).
  EXPECT_TRUE(review("UPDATE", LbService("web", "10.10.0.210"), false)["allowed"].get<bool>());
  EXPECT_EQ(claims(), 1u);

  // A claim written by hand (the leader never saw its holder) holds 10.10.0.211.
  json hand = {{"apiVersion", "ipguard.io/v1alpha1"},
               {"kind", "IPClaim"},
               {"metadata", {{"name", "any-10.10.0.211"}}},
               {"spec",
                {{"address", "10.10.0.211"},
                 {"holder", {{"kind", "Service"}, {"namespace", "elsewhere"}, {"name", "db"}}}}}};
  ASSERT_FALSE(fake_->Upsert("ipclaims", hand).is_null());
  json refused = review("CREATE", LbService("api", "10.10.0.211"), false);
  EXPECT_FALSE(refused["allowed"].get<bool>());
  EXPECT_NE(refused["status"]["message"].get<std::string>().find("Service elsewhere/db"),
            std::string::npos)
      << refused.dump();
  std::system(("rm -rf " + dir).c_str());
}

// The leader keeps the ledger in step with the plan: a claim goes when its
// holder goes or stops asking for its address, one whose holder never
// appears goes after the grace, a stored object without its claim gets one,
// and when the Service whose claim two sharing Services rode on goes, the
// other takes the address over. A claim written by hand to reserve an
// address stays.
TEST_F(ManagerTest, TheLeaderReleasesAndWritesClaimsAsHoldersComeAndGo) {
  ManagerOptions o = Options();
  o.claim_grace_ms = 1500;
  Manager* m = StartManager(o);
  ASSERT_TRUE(Eventually([&] { return m->Ready(); }));
  auto claim = [&](const std::string& name) { return fake_->Get("ipclaims", "", name); };
  auto holder = [&](const std::string& name) {
    auto c = claim(name);
    return c ? (*c)["spec"]["holder"].value("name", "") : std::string();
  };
  // The examples were stored without claims: each gets its own.
  ASSERT_TRUE(Eventually([&] { return claim("vlan10-10.10.0.20").has_value(); }));
  EXPECT_EQ(holder("vlan10-10.10.0.20"), "prod");
  // storefront-https and storefront-http share 10.10.0.200: one claim, held by one of them.
  ASSERT_TRUE(Eventually([&] { return claim("vlan10-10.10.0.200").has_value(); }));
  std::string first = holder("vlan10-10.10.0.200");
  ASSERT_TRUE(first == "storefront-https" || first == "storefront-http") << first;
  std::string second = first == "storefront-https" ? "storefront-http" : "storefront-https";

  // The holder goes: its claim goes; the other sharer takes the address over.
  auto svc = fake_->Get("services", "team-a", first);
  ASSERT_TRUE(svc);
  ASSERT_TRUE(fake_->Remove("services", "team-a", first));
  ASSERT_TRUE(Eventually([&] { return holder("vlan10-10.10.0.200") == second; },
                         std::chrono::seconds(10)));

  // A WorkloadCluster that stops asking for its address (its claim is
  // older than the grace): released at once.
  fake_->Upsert("workloadclusters", Wlc("team-z", "mover", "10.10.0.40"));
  ASSERT_TRUE(Eventually([&] { return claim("vlan10-10.10.0.40").has_value(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  fake_->Upsert("workloadclusters", Wlc("team-z", "mover", "10.10.0.41"));
  ASSERT_TRUE(Eventually([&] {
    return !claim("vlan10-10.10.0.40").has_value() && claim("vlan10-10.10.0.41").has_value();
  }));

  // A claim whose holder never appears goes after the grace; one written by
  // hand to reserve an address (its holder is not a kind that claims) stays.
  json never = {{"apiVersion", "ipguard.io/v1alpha1"},
                {"kind", "IPClaim"},
                {"metadata", {{"name", "vlan10-10.10.0.42"}}},
                {"spec",
                 {{"address", "10.10.0.42"},
                  {"vlanId", 10},
                  {"holder", {{"kind", "WorkloadCluster"}, {"namespace", "team-z"}, {"name", "ghost"}}}}}};
  json hand = {{"apiVersion", "ipguard.io/v1alpha1"},
               {"kind", "IPClaim"},
               {"metadata", {{"name", "vlan10-10.10.0.43"}}},
               {"spec",
                {{"address", "10.10.0.43"},
                 {"vlanId", 10},
                 {"holder", {{"kind", "Host"}, {"name", "backup-appliance"}}}}}};
  ASSERT_FALSE(fake_->Upsert("ipclaims", never).is_null());
  ASSERT_FALSE(fake_->Upsert("ipclaims", hand).is_null());
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_TRUE(claim("vlan10-10.10.0.42").has_value()) << "released before the grace";
  ASSERT_TRUE(Eventually([&] { return !claim("vlan10-10.10.0.42").has_value(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  EXPECT_TRUE(claim("vlan10-10.10.0.43").has_value());
  EXPECT_FALSE(Events("ClaimReleased", "vlan10-10.10.0.42").empty());
  EXPECT_NE(m->Metrics().find("ipguard_claims{cluster=\"\",vlan=\"10\"}"), std::string::npos)
      << m->Metrics();
}

// Churn: Services admitted (their claims written), stored and deleted again
// and again, a third of them never stored at all (another webhook refused
// them), leave no claim behind, and a restart of the manager in the middle
// loses none that is still held.
TEST_F(ManagerTest, CreateDeleteCyclesLeaveNoClaimBehind) {
  std::string dir = TempDir();
  ManagerOptions o = WebhookOptions(dir);
  o.claim_grace_ms = 1000;
  // A Service admitted and never stored is held for this long; its claim goes
  // after that (not the subject here, and 30 s would crowd the final wait).
  o.pending_ttl_seconds = 5;
  Manager* m = StartManager(o);
  ASSERT_TRUE(Eventually([&] { return m->Ready(); }));
  auto admit = [&](Manager* mgr, const json& svc) {
    testing_util::TestClient client(mgr->webhook_port(), true, ca_.cert_pem);
    if (!client.Connect().empty()) return false;
    auto reply = client.Request("POST", "/validate", ReviewOf("u", "CREATE", svc).dump());
    return reply.ok && json::parse(reply.body, nullptr, false)["response"].value("allowed", false);
  };
  auto ours = [&] {
    size_t n = 0;
    for (const json& c : fake_->List("ipclaims")) {
      n += c["spec"]["holder"].value("name", "").rfind("churn-", 0) == 0;
    }
    return n;
  };
  constexpr int kCycles = 150;
  int admitted = 0;
  for (int i = 0; i < kCycles; ++i) {
    if (i == kCycles / 2) {
      // A restart: the new manager finds the claims in the API server.
      m->Stop();
      m = StartManager(o);
      ASSERT_TRUE(Eventually([&] { return m->Ready(); }));
    }
    std::string name = "churn-" + std::to_string(i);
    std::string ip = "10.99." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    json svc = LbService(name, ip);
    if (!admit(m, svc)) continue;
    ++admitted;
    if (i % 3 == 2) continue;  // never stored
    ASSERT_FALSE(fake_->Upsert("services", svc).is_null());
    if (i % 7 == 0) continue;  // stays: deleted below, after the loop
    ASSERT_TRUE(fake_->Remove("services", "default", name));
  }
  EXPECT_EQ(admitted, kCycles);
  // What is still stored keeps its claim; what never was loses it.
  ASSERT_TRUE(Eventually([&] { return !fake_->Get("ipclaims", "", "any-10.99.0.3").has_value(); }));
  EXPECT_TRUE(fake_->Get("ipclaims", "", "any-10.99.0.1").has_value());
  for (int i = 0; i < kCycles; i += 7) fake_->Remove("services", "default", "churn-" + std::to_string(i));
  ASSERT_TRUE(Eventually([&] { return ours() == 0; }, std::chrono::seconds(30)))
      << ours() << " claims left";
  std::system(("rm -rf " + dir).c_str());
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
  std::string dir = TempDir();
  auto b64 = [](const std::string& s) { return certs::EncodeBase64(s); };
  int webhook_port = 0, probe_port = 0;
  auto args_with_ports = [&] {
    webhook_port = FreePort();
    probe_port = FreePort();
    return std::vector<std::string>{IPGUARD_BINARY,
                                    "manager",
                                    "--kubeconfig",
                                    WriteKubeconfig(dir),
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
  };
  auto log = [&] { return testing_util::ReadFile(dir + "/log"); };
  pid_t pid = -1;
  for (int attempt = 0; attempt < 3; ++attempt) {
    pid = Spawn(args_with_ports(), dir + "/log");
    ASSERT_GT(pid, 0);
    // A port that another test took between FreePort and the bind: the
    // binary says so and exits at once; it is started again on others.
    bool port_taken = false;
    Eventually(
        [&] {
          int status = 0;
          if (waitpid(pid, &status, WNOHANG) == pid) {
            port_taken = log().find("Address already in use") != std::string::npos;
            return true;
          }
          return ProbeReady(probe_port);
        },
        std::chrono::seconds(20));
    if (!port_taken) break;
  }
  ASSERT_TRUE(ProbeReady(probe_port)) << log();
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
  auto reply = client.Request("POST", "/validate",
                              ReviewOf("u-1", "CREATE", Wlc("team-z", "clash", "10.10.0.20")).dump());
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

  int status = Terminate(pid);
  ASSERT_GE(status, 0) << "no exit within 15 s of SIGTERM\n" << log();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log();
  auto l = fake_->Get("leases", "ipguard-system", "ipguard-manager");
  ASSERT_TRUE(l);
  EXPECT_EQ((*l)["spec"].value("holderIdentity", ""), "") << "the Lease is released on the way out";
  std::string text = log();
  EXPECT_NE(text.find("\"msg\":\"received SIGTERM\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"msg\":\"stopped\""), std::string::npos) << text;
  std::system(("rm -rf " + dir).c_str());
}

// The chart's RBAC against what the manager really does: the real binary,
// started with the Deployment's own arguments from the rendered chart (with
// MetalLB, so that every resource it can watch is in play), syncs, takes the
// Lease, (selfSigned) makes its certificate and patches both webhook
// configurations, writes status, emits an event, and stops. Every request it
// made must be granted by the chart's ClusterRole, or by its Role in the
// release namespace. In the certManager and secret modes the chart mounts the
// certificate's Secret at --cert-dir; here a certificate is written there.
class ChartRbacTest : public ManagerTest {
 protected:
  void Run(const std::string& flags, bool self_signed) {
    std::vector<json> chart = testing_util::RenderChart("--set metallb.enabled=true " + flags);
    ASSERT_FALSE(chart.empty()) << "helm template failed (run scripts/setup.sh)";
    json deployment, cluster_role, role;
    for (const json& d : chart) {
      if (d["kind"] == "Deployment") deployment = d;
      if (d["kind"] == "ClusterRole" &&
          d["metadata"]["name"].get<std::string>().find("-manager") != std::string::npos) {
        cluster_role = d;
      }
      if (d["kind"] == "Role") role = d;
      if (d["kind"] == "ValidatingWebhookConfiguration") {
        ASSERT_FALSE(fake_->Upsert("validatingwebhookconfigurations", d).is_null());
      }
    }
    ASSERT_TRUE(deployment.is_object() && cluster_role.is_object() && role.is_object());
    EXPECT_EQ(role["metadata"]["namespace"], "ipguard-system");

    std::string dir = TempDir();
    if (!self_signed) {
      auto serving =
          certs::GenerateServing(ca_, "ipguard-webhook", {"ipguard-webhook.ipguard-system.svc"},
                                 {"127.0.0.1"}, std::chrono::hours(24));
      ASSERT_TRUE(serving.ok());
      fs::create_directories(dir + "/certs");
      std::ofstream(dir + "/certs/tls.crt") << serving->cert_pem;
      std::ofstream(dir + "/certs/tls.key") << serving->key_pem;
    }
    int webhook_port = FreePort(), metrics_port = FreePort(), probe_port = FreePort();
    std::vector<std::string> args = {IPGUARD_BINARY};
    const json& chart_args = deployment["spec"]["template"]["spec"]["containers"][0]["args"];
    for (size_t i = 0; i < chart_args.size(); ++i) {
      std::string a = chart_args[i];
      std::string prev = args.back();
      if (a == "$(POD_NAMESPACE)") a = "ipguard-system";
      if (prev == "--webhook-port") a = std::to_string(webhook_port);
      if (prev == "--metrics-port") a = std::to_string(metrics_port);
      if (prev == "--probe-port") a = std::to_string(probe_port);
      if (prev == "--cert-dir") a = dir + "/certs";
      args.push_back(a);
    }
    for (std::string a :
         {std::string("--kubeconfig"), WriteKubeconfig(dir), std::string("--webhook-bind"),
          std::string("127.0.0.1"), std::string("--probe-bind"), std::string("127.0.0.1")}) {
      args.push_back(a);
    }
    pid_t pid = Spawn(args, dir + "/log");
    ASSERT_GT(pid, 0);
    auto log = [&] { return testing_util::ReadFile(dir + "/log"); };
    ASSERT_TRUE(Eventually([&] { return ProbeReady(probe_port); }, std::chrono::seconds(20)))
        << log();
    ASSERT_TRUE(Eventually([&] {
      auto l = fake_->Get("leases", "ipguard-system", "ipguard-manager");
      return l && !(*l)["spec"].value("holderIdentity", "").empty();
    })) << log();
    for (const char* name : {"ipguard-resources", "ipguard-services"}) {
      if (!self_signed) break;
      EXPECT_TRUE(Eventually([&] {
        auto v = fake_->Get("validatingwebhookconfigurations", "", name);
        return v && !(*v)["webhooks"][0]["clientConfig"].value("caBundle", "").empty();
      })) << name
          << "\n"
          << log();
    }
    fake_->Upsert("workloadclusters", Wlc("team-z", "late", "10.10.0.20"));
    EXPECT_TRUE(Eventually([&] {
      for (const json& e : fake_->List("events")) {
        if (e.value("reason", "") == "IPConflict") return true;
      }
      return false;
    })) << log();
    EXPECT_TRUE(Eventually([&] { return Settled(); })) << Mismatch();
    // An admission writes its claim with the chart's grants.
    std::string webhook_ca = ca_.cert_pem;
    if (self_signed) {
      auto secret = fake_->Get("secrets", "ipguard-system", "ipguard-webhook-cert");
      ASSERT_TRUE(secret) << log();
      webhook_ca = *kube::DecodeBase64((*secret)["data"]["ca.crt"]);
    }
    testing_util::TestClient client(webhook_port, true, webhook_ca);
    ASSERT_EQ(client.Connect(), "") << log();
    auto reply = client.Request(
        "POST", "/validate", ReviewOf("u-claim", "CREATE", Wlc("team-z", "claimed", "10.10.0.31")).dump());
    ASSERT_TRUE(reply.ok) << reply.error;
    EXPECT_TRUE(json::parse(reply.body)["response"]["allowed"].get<bool>()) << reply.body;
    EXPECT_TRUE(fake_->Get("ipclaims", "", "vlan10-10.10.0.31")) << log();
    int status = Terminate(pid);
    EXPECT_TRUE(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << log();

    std::set<std::string> done, refused;
    for (const auto& r : fake_->requests()) {
      Access a = AccessOf(r);
      done.insert(a.verb + " " + a.resource);
      bool granted = false;
      for (const json& rule : cluster_role["rules"]) granted = granted || Allows(rule, a);
      if (a.ns == "ipguard-system") {
        for (const json& rule : role["rules"]) granted = granted || Allows(rule, a);
      }
      if (!granted) refused.insert(a.Text());
    }
    std::string all;
    for (const auto& x : refused) all += "  " + x + "\n";
    EXPECT_TRUE(refused.empty()) << "the chart's RBAC does not grant:\n" << all;
    // What the run must have done for the check to mean something.
    for (const char* want : {"list workloadclusters", "watch workloadclusters", "watch services",
                             "watch ipaddresspools", "update workloadclusters/status",
                             "create events", "create leases", "update leases"}) {
      EXPECT_TRUE(done.count(want)) << want;
    }
    bool patched_webhooks = done.count("update validatingwebhookconfigurations") ||
                            done.count("patch validatingwebhookconfigurations");
    EXPECT_EQ(patched_webhooks, self_signed);
    EXPECT_EQ(done.count("create secrets") > 0, self_signed);
    std::system(("rm -rf " + dir).c_str());
  }
};

TEST_F(ChartRbacTest, SelfSignedGrantsEveryRequestTheManagerMakes) { Run("", true); }
TEST_F(ChartRbacTest, CertManagerGrantsEveryRequestTheManagerMakes) {
  Run("--set certificates.mode=certManager", false);
}
TEST_F(ChartRbacTest, SecretGrantsEveryRequestTheManagerMakes) {
  Run("--set certificates.mode=secret --set certificates.secretName=my-tls --set "
      "certificates.caBundle=Y2EK",
      false);
}

TEST(ManagerFlags, StatusPaceFlagsAreReadAndBadValuesNamed) {
  auto o = ParseManagerFlags(
      {"--status-qps", "20", "--status-burst", "30", "--status-qps-admitting", "2"});
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_EQ(o->status_qps, 20);
  EXPECT_EQ(o->status_burst, 30);
  EXPECT_EQ(o->status_qps_admitting, 2);
  auto d = ParseManagerFlags({});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->status_qps, 50);
  EXPECT_EQ(d->status_burst, 100);
  EXPECT_EQ(d->status_qps_admitting, 1);
  EXPECT_TRUE(ParseManagerFlags({"--status-qps-admitting", "0"}).ok()) << "0: as --status-qps";
  auto worse = ParseManagerFlags({"--status-qps-admitting", "fast"});
  ASSERT_FALSE(worse.ok());
  EXPECT_NE(worse.error().find("--status-qps-admitting"), std::string::npos) << worse.error();
  EXPECT_TRUE(ParseManagerFlags({"--status-qps", "0"}).ok()) << "0: unpaced";
  auto bad = ParseManagerFlags({"--status-burst", "0"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("--status-burst must be 1 to 100000, not \"0\""), std::string::npos)
      << bad.error();
  EXPECT_FALSE(ParseManagerFlags({"--status-qps", "-1"}).ok());
  EXPECT_FALSE(ParseManagerFlags({"--status-qps", "fast"}).ok());
}

}  // namespace
}  // namespace ipguard
