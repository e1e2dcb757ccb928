// Benchmarks of `ipguard manager` against a real kube-apiserver (bench/apiserver.sh starts
// the control plane of ../shared/k8s and runs these in order; figures in
// docs/performance.md). Every object goes through the API server, as a user's would.
//
//   bench_apiserver --kubeconfig K load     [--networks 1000] [--clusters 10000]
//                                           [--services 100000] [--threads 16]
//                                           [--claims 0 --claim-clusters 10 --cluster-claims 1]
//   bench_apiserver --kubeconfig K startup  [--binary build/cmd/ipguard] [--runs 3]
//                                           [--written-timeout 300]
//   bench_apiserver --kubeconfig K race     [--binary ...] [--creates 1000]
//   bench_apiserver --kubeconfig K latency  [--binary ...] [--rate 200] [--seconds 10]
//                                           [--no-status-writes | --floor]
//                                           [--claims-skip-webhook] [--load-client kept|cpprest]
//                                           [--manager-beside-floor]
//
// load:    creates the synthetic plan of bench/plan_objects.h through the API server
//          (Services with allocateLoadBalancerNodePorts false, so 100k fit); with
//          --claims, the ledger of an estate whose Services live in workload clusters:
//          the claims of every control-plane IP and of `claims` Services of
//          `claim-clusters` clusters (as their agents write them); --cluster-claims 0
//          leaves the control-plane IPs without claims, for the manager to backfill.
// startup: starts the manager on that plan `runs` times: time from start to /readyz and
//          peak RSS (VmHWM) at ready and once every status (and, on the first run with
//          --cluster-claims 0, every backfilled claim) is written; then the lists as
//          a client that lists from the watch cache receives them (resourceVersion=0: the
//          bytes and the time, a floor for any informer).
// race:    one replica with its webhook registered by URL; `creates` WorkloadClusters
//          that all ask for one control-plane IP, created at once through the API server:
//          how many are stored (must be 1) and how long it took.
// latency: creates at `rate`/s, each a new WorkloadCluster the webhook admits; the
//          webhook's share as the API server measures it
//          (apiserver_admission_webhook_admission_duration_seconds, read from its /metrics
//          before and after), the create latency the client sees, and the webhook's own
//          ipguard_admission_duration_seconds, each process's CPU during the run (the
//          manager, kube-apiserver, etcd, the benchmark) and every request the API server
//          served meanwhile, by verb and resource. The manager's claims come back to its
//          webhook, as on Kubernetes older than 1.28; with --claims-skip-webhook they
//          do not, as the chart's match condition spares them on 1.28 and newer.
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <fcntl.h>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "bench/plan_objects.h"
#include "bench/process_util.h"
#include "core/address.h"
#include "core/engine.h"
#include "core/objects.h"
#include "kube/client.h"
#include "kube/clock.h"
#include "kube/config.h"
#include "kube/http_transport.h"
#include "kube/kept_transport.h"
#include "tests/component/tls_client.h"
#include "webhook/certs.h"
#include "webhook/server.h"

extern char** environ;

namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
using ipguard::kube::Client;
using ipguard::kube::Resource;

const Resource kNamespaces{"", "v1", "namespaces", false};
const Resource kServices{"", "v1", "services", true};
const Resource kNetworks{"ipguard.io", "v1alpha1", "logicalnetworks", false};
const Resource kClusters{"ipguard.io", "v1alpha1", "workloadclusters", true};
const Resource kClaims{"ipguard.io", "v1alpha1", "ipclaims", false};
const Resource kWebhooks{"admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
                         false};
const char kWebhookConfig[] = "ipguard-bench";

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Flags {
  std::string kubeconfig, mode, binary = "build/cmd/ipguard";
  ipguard::kube::RestConfig rest;
  int api_port = 0;
  // With true, the manager never holds its Lease (another holder keeps it), so it
  // writes no status: the webhook alone, for comparison.
  bool no_status_writes = false;
  // With true (latency), a minimal responder instead of the manager: the floor.
  bool floor = false;
  // With true (latency, implies floor): the floor responder writes each
  // cluster's IPClaim before it allows, as the manager does.
  bool floor_claims = false;
  // With true (latency), the claims the manager writes are not sent back to its
  // webhook: what the chart's match condition does on Kubernetes 1.28 and newer.
  bool claims_skip_webhook = false;
  // With --floor: the manager runs beside the floor responder (its watches,
  // reconciles and status writes), but the responder answers the reviews.
  bool manager_beside_floor = false;
  // The load generator's client (latency): "kept", whole requests on kept TLS
  // connections on the worker's own thread (kube/kept_transport.h), or
  // "cpprest", the client every other request of the manager uses.
  std::string load_client = "kept";
  std::vector<std::string> manager_flags;  // passed on to every manager started
  int networks = 1000, clusters = 10000, services = 100000, threads = 16, runs = 3;
  int creates = 1000, rate = 200, seconds = 10;
  // latency: creates made one by one, untimed, before the measured ones: the API
  // server builds its handler for a custom resource (and the webhook client its
  // connections) on the first requests, which then wait about a second.
  int warmup = 0;
  // latency: creates sent all at once, untimed, before the measured ones, so that
  // the API server holds that many connections to the webhook when the clock
  // starts (it keeps up to 25 idle): the run then measures kept connections only.
  int warm_connections = 0;
  // load: IPClaims of this many Services of `claim_clusters` workload clusters (the
  // Services themselves live there, not here), and the claims of the control-plane IPs.
  int claims = 0, claim_clusters = 10;
  // load --claims: with false, the control-plane IPs get no claim (a plan that predates the
  // ledger: the manager backfills them at its first start, at the --status-qps pace).
  bool cluster_claims = true;
  // startup: how long to wait for every status (and every backfilled claim) to be written.
  int written_timeout = 300;
};

// CPU seconds (user + system) a process has used.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  long utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::stol(f);
    if (i == 15) {
      stime = std::stol(f);
      break;
    }
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

using ipguard::bench::FreePort;
using ipguard::bench::ProcStatusKb;

// Runs fn(i) for i in [0, n) on `threads` threads; returns the failures.
template <typename Fn>
int Parallel(int n, int threads, Fn fn) {
  std::atomic<int> next{0}, failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < n;) {
        if (!fn(i)) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : pool) t.join();
  return failures.load();
}

// Creates, retrying what the API server asks to retry; AlreadyExists counts as done.
bool CreateRetrying(Client& c, const Resource& r, const std::string& ns, const json& obj) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto res = c.Create(r, ns, obj);
    if (res.ok() || res.error().code == 409) return true;
    if (res.error().code != 429 && res.error().code != 0 && res.error().code < 500) {
      std::cerr << "create " << r.plural << ": " << res.error().ToString() << "\n";
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * (attempt + 1)));
  }
  return false;
}

int Load(Client& c, const Flags& f) {
  auto start = SteadyClock::now();
  std::vector<std::string> namespaces;
  for (int i = 0; i < 500; ++i) namespaces.push_back("apps-" + std::to_string(i));
  for (int i = 0; i < 100; ++i) namespaces.push_back("team-" + std::to_string(i));
  int failed = Parallel(static_cast<int>(namespaces.size()), f.threads, [&](int i) {
    return CreateRetrying(c, kNamespaces, "",
                          json{{"apiVersion", "v1"},
                               {"kind", "Namespace"},
                               {"metadata", {{"name", namespaces[i]}}}});
  });
  failed += Parallel(f.networks, f.threads, [&](int n) {
    return CreateRetrying(c, kNetworks, "", ipguard::bench::NetworkJson(n));
  });
  failed += Parallel(f.clusters, f.threads, [&](int i) {
    json o = ipguard::bench::ClusterJson(i, f.networks, "team-" + std::to_string(i % 100));
    return CreateRetrying(c, kClusters, o["metadata"]["namespace"], o);
  });
  if (f.claims > 0) {
    auto claims_start = SteadyClock::now();
    failed += Parallel(f.cluster_claims ? f.clusters : 0, f.threads, [&](int i) {
      return CreateRetrying(c, kClaims, "",
                            ipguard::bench::ClusterClaimJson(i, f.networks, "team-" + std::to_string(i % 100)));
    });
    failed += Parallel(f.claims, f.threads, [&](int i) {
      return CreateRetrying(c, kClaims, "", ipguard::bench::ServiceClaimJson(i, f.claim_clusters));
    });
    std::printf("loaded %d + %d claims (Services of %d clusters) in %.1f s\n",
                f.cluster_claims ? f.clusters : 0, f.claims,
                f.claim_clusters, Seconds(SteadyClock::now() - claims_start));
  }
  auto services_start = SteadyClock::now();
  failed += Parallel(f.services, f.threads, [&](int i) {
    json o = ipguard::bench::ServiceJson(i);
    o.erase("status");  // a create ignores it (the status subresource)
    o["spec"]["allocateLoadBalancerNodePorts"] = false;
    o["spec"]["loadBalancerClass"] = "ipguard.io/bench-none";
    return CreateRetrying(c, kServices, o["metadata"]["namespace"], o);
  });
  std::printf("loaded %d networks, %d clusters, %d services in %.1f s (services: %.0f/s), %d failed\n",
              f.networks, f.clusters, f.services, Seconds(SteadyClock::now() - start),
              f.services / std::max(1e-9, Seconds(SteadyClock::now() - services_start)), failed);
  return failed == 0 ? 0 : 1;
}

// A serving certificate for 127.0.0.1 and localhost, written as tls.crt and
// tls.key into `dir` (made if missing), signed by a fresh CA whose PEM is
// returned (the webhook configuration's caBundle).
std::string WriteServingCert(const std::string& dir) {
  auto ca = *ipguard::certs::GenerateCA("bench-ca", std::chrono::hours(24));
  auto serving = *ipguard::certs::GenerateServing(ca, "bench", {"localhost"}, {"127.0.0.1"},
                                                  std::chrono::hours(24));
  ::mkdir(dir.c_str(), 0700);
  std::ofstream(dir + "/tls.crt") << serving.cert_pem;
  std::ofstream(dir + "/tls.key") << serving.key_pem;
  return ca.cert_pem;
}

// A running manager: a child process with its own work directory.
class Manager {
 public:
  Manager(const Flags& f, std::vector<std::string> extra) : dir_(MakeDir()) {
    probe_ = FreePort();
    metrics_ = FreePort();
    webhook_ = FreePort();
    ca_pem_ = WriteServingCert(dir_ + "/certs");
    std::vector<std::string> args = {f.binary,        "manager",
                                     "--kubeconfig",  f.kubeconfig,
                                     "--namespace",   "default",
                                     "--leader-elect=false",
                                     "--cert-dir",    dir_ + "/certs",
                                     "--webhook-bind", "127.0.0.1",
                                     "--webhook-port", std::to_string(webhook_),
                                     "--metrics-port", std::to_string(metrics_),
                                     "--probe-port",  std::to_string(probe_),
                                     "--log-level",   "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), f.manager_flags.begin(), f.manager_flags.end());
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    started_ = SteadyClock::now();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, (dir_ + "/manager.log").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (posix_spawn(&pid_, f.binary.c_str(), &fa, nullptr, cargs.data(), environ) != 0) pid_ = 0;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Manager() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    std::system(("rm -rf " + dir_).c_str());
  }
  bool ok() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int webhook_port() const { return webhook_; }
  const std::string& ca_pem() const { return ca_pem_; }

  // Seconds from start to /readyz, or a negative number after `limit`.
  double WaitReady(std::chrono::seconds limit) {
    while (SteadyClock::now() - started_ < limit) {
      ipguard::testing_util::TestClient c(probe_, false);
      if (c.Connect().empty() && c.Request("GET", "/readyz", "").status == 200) {
        return Seconds(SteadyClock::now() - started_);
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  std::string Metrics() {
    ipguard::testing_util::TestClient c(metrics_, false);
    if (!c.Connect().empty()) return "";
    return c.Request("GET", "/metrics", "").body;
  }
  double Since() const { return Seconds(SteadyClock::now() - started_); }

 private:
  static std::string MakeDir() {
    char tmpl[] = "/tmp/ipguard-bench-XXXXXX";
    return ::mkdtemp(tmpl);
  }
  std::string dir_, ca_pem_;
  int probe_ = 0, metrics_ = 0, webhook_ = 0;
  pid_t pid_ = 0;
  SteadyClock::time_point started_;
};

// The text of the first `"key":"` string in a review's body, "" when absent.
std::string FirstString(const std::string& body, const std::string& key) {
  size_t at = body.find("\"" + key + "\":\"");
  if (at == std::string::npos) return "";
  at += key.size() + 4;
  return body.substr(at, body.find('"', at) - at);
}

// The value at fraction `p` (0.5, 0.99) of sorted, non-empty `values`.
double Percentile(const std::vector<double>& values, double p) {
  return values[std::min(values.size() - 1, static_cast<size_t>(p * values.size()))];
}

// The floor of a webhook's share: an HTTPS responder on the same server code that
// reads nothing but the review's uid and allows every object except the probe of
// WaitWebhookInForce. No manager runs beside it (no watches, no status writes).
// With `claims` (--floor-claims), each WorkloadCluster's review first POSTs the
// IPClaim of its control-plane IP on the handler's own thread, named and built
// as the manager's claim writers do (ClaimName, ClaimObject), and is allowed
// once it is stored: the least any webhook that keeps its ledger in the API
// server can do.
class FloorWebhook {
 public:
  explicit FloorWebhook(Client* claims = nullptr) {
    char tmpl[] = "/tmp/ipguard-floor-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ca_pem_ = WriteServingCert(dir_);
    ipguard::webhook::ServerOptions o;
    o.tls = true;
    o.cert_file = dir_ + "/tls.crt";
    o.key_file = dir_ + "/tls.key";
    if (claims) o.threads = 8;
    server_ = std::make_unique<ipguard::webhook::HttpServer>(o, [this, claims](const ipguard::webhook::ServerRequest& r) {
      ipguard::webhook::ServerResponse out;
      std::string uid = FirstString(r.body, "uid");
      const char* refusal = r.body.find("\"name\":\"probe\"") != std::string::npos ? "probe" : nullptr;
      auto ip = ipguard::ParseIp(FirstString(r.body, "controlPlaneIP"));
      if (claims && !refusal && ip.ok()) {
        // The object's own metadata: after "object" in the review.
        size_t obj = r.body.find("\"object\":");
        std::string rest = obj == std::string::npos ? "" : r.body.substr(obj);
        ipguard::WantedClaim want;
        want.address = *ip;
        want.name = ipguard::ClaimName(std::nullopt, *ip);
        want.holder.api_version = "ipguard.io/v1alpha1";
        want.holder.kind = "WorkloadCluster";
        want.holder.ns = FirstString(rest, "namespace");
        want.holder.name = FirstString(rest, "name");
        want.holder.uid = FirstString(rest, "uid");
        auto start = SteadyClock::now();
        if (!claims->Create(kClaims, "", ipguard::ClaimObject(want)).ok()) refusal = "claim not written";
        double ms = Seconds(SteadyClock::now() - start) * 1000;
        std::lock_guard<std::mutex> l(mu_);
        claim_ms_.push_back(ms);
      }
      out.body = std::string(R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":")") + uid +
                 (refusal ? std::string(R"(","allowed":false,"status":{"code":403,"message":")") + refusal + "\"}}}"
                          : std::string(R"(","allowed":true}})"));
      return out;
    });
    ok_ = server_->Start().ok();
  }
  ~FloorWebhook() {
    server_->Stop();
    std::system(("rm -rf " + dir_).c_str());
  }
  bool ok() const { return ok_; }
  int port() const { return server_->port(); }
  const std::string& ca_pem() const { return ca_pem_; }
  int64_t connections_accepted() const { return server_->stats().connections_accepted; }
  // Its claims' POSTs as it timed them, in ms.
  std::vector<double> claim_ms() const {
    std::lock_guard<std::mutex> l(mu_);
    return claim_ms_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<double> claim_ms_;
  std::string dir_, ca_pem_;
  std::unique_ptr<ipguard::webhook::HttpServer> server_;
  bool ok_ = false;
};

// Requests sent whole on kept TLS connections, each read on its sender's
// thread (kube/kept_transport.h); null, said on stderr, when that fails.
std::unique_ptr<ipguard::kube::Transport> KeptConnections(const Flags& f, Client& c, size_t max_idle) {
  ipguard::kube::KeptTransportOptions ko;
  ko.max_idle = max_idle;
  auto t = ipguard::kube::NewKeptTransport(f.rest, ipguard::kube::RealClock::Get(), c.transport(), ko);
  if (!t.ok()) {
    std::cerr << "latency: " << t.error() << "\n";
    return nullptr;
  }
  return std::move(t).value();
}

std::string JsonContinue(const json& list) {
  auto m = list.find("metadata");
  if (m == list.end() || !m->is_object()) return "";
  return m->value("continue", "");
}

// Whether every LogicalNetwork and WorkloadCluster has a status of its generation.
bool AllStatusWritten(Client& c) {
  for (const Resource* r : {&kNetworks, &kClusters}) {
    auto list = c.List(*r, "");
    if (!list.ok()) return false;
    for (const json& o : list.value()["items"]) {
      if (!o.contains("status") || o["status"].value("observedGeneration", int64_t{-1}) !=
                                       o["metadata"].value("generation", int64_t{0})) {
        return false;
      }
    }
  }
  return true;
}

// The value of a metric without labels in a Prometheus text, 0 when absent.
double UnlabelledValue(const std::string& text, const std::string& name) {
  size_t at = ("\n" + text).find("\n" + name + " ");
  return at == std::string::npos ? 0 : std::atof(text.c_str() + at + name.size() + 1);
}

int Startup(Client& c, const Flags& f) {
  for (int run = 1; run <= f.runs; ++run) {
    Manager m(f, {});
    if (!m.ok()) return 1;
    // RSS sampled while it lists, to see when the peak comes.
    std::atomic<bool> sampling{true};
    std::vector<std::pair<double, long>> samples;
    std::thread sampler([&] {
      while (sampling.load()) {
        samples.emplace_back(m.Since(), ProcStatusKb(m.pid(), "VmRSS:"));
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
    });
    double ready = m.WaitReady(std::chrono::seconds(300));
    sampling = false;
    sampler.join();
    long hwm_ready = ProcStatusKb(m.pid(), "VmHWM:");
    double cpu_ready = CpuSeconds(m.pid());
    if (std::getenv("IPGUARD_BENCH_RSS")) {
      for (const auto& [t, kb] : samples) std::printf("  %.2f s: RSS %.1f MB\n", t, kb / 1024.0);
      std::string text = m.Metrics();
      size_t at = text.find("\nipguard_heap_in_use_bytes ");
      if (at != std::string::npos) std::printf("  heap in use at ready: %s", text.substr(at + 1, text.find('\n', at + 1) - at).c_str());
    }
    // Every status written, and (with --cluster-claims 0, on the first run) every claim the
    // manager backfills: as many as there are clusters without one.
    double written = -1;
    double backfilled = 0;
    const double to_backfill = f.cluster_claims || run > 1 ? 0 : f.clusters;
    while (m.Since() < f.written_timeout) {
      backfilled = UnlabelledValue(m.Metrics(), "ipguard_claims_backfilled_total");
      if (backfilled >= to_backfill && AllStatusWritten(c)) {
        written = m.Since();
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(to_backfill > 0 ? 2000 : 500));
    }
    long hwm = ProcStatusKb(m.pid(), "VmHWM:");
    std::printf("run %d: ready %.2f s (peak RSS %.1f MB, %.1f s of CPU); every status written %.1f s "
                "(%.0f claims backfilled); peak RSS %.1f MB\n",
                run, ready, hwm_ready / 1024.0, cpu_ready, written, backfilled, hwm / 1024.0);
  }
  // What a client that lists from the watch cache receives: the floor for any informer.
  auto* t = c.transport();
  double total_s = 0;
  size_t bytes = 0, items = 0;
  for (const Resource* r : {&kNetworks, &kClusters, &kServices, &kClaims}) {
    ipguard::kube::HttpRequest req;
    req.path = r->Path() + "?resourceVersion=0&limit=500";
    req.timeout = std::chrono::seconds(120);
    auto start = SteadyClock::now();
    auto resp = t->Do(req);
    total_s += Seconds(SteadyClock::now() - start);
    if (!resp.ok() || resp->status != 200) return 1;
    bytes += resp->body.size();
    json list = json::parse(resp->body, nullptr, false);
    if (list.is_object() && list["items"].is_array()) items += list["items"].size();
    if (list.is_object() && !JsonContinue(list).empty()) std::printf("(%s came paged)\n", r->plural.c_str());
  }
  std::printf("lists from the watch cache (resourceVersion=0): %zu objects, %.1f MB, received in %.2f s\n",
              items, bytes / 1048576.0, total_s);
  return 0;
}


// Registers the manager's webhook by URL for WorkloadCluster creates in `ns`.
bool RegisterWebhook(Client& c, int port, const std::string& ca_pem, const std::string& ns,
                     bool claims_back = true) {
  c.Delete(kWebhooks, "", kWebhookConfig);
  json rule = {{"apiGroups", {"ipguard.io"}},
               {"apiVersions", {"v1alpha1"}},
               {"operations", {"CREATE", "UPDATE"}},
               {"resources", {"workloadclusters"}},
               {"scope", "*"}};
  json vwc = {
      {"apiVersion", "admissionregistration.k8s.io/v1"},
      {"kind", "ValidatingWebhookConfiguration"},
      {"metadata", {{"name", kWebhookConfig}}},
      {"webhooks",
       {{{"name", "wlc.bench.ipguard.io"},
         {"clientConfig",
          {{"url", "https://127.0.0.1:" + std::to_string(port) + "/validate"},
           {"caBundle", ipguard::certs::EncodeBase64(ca_pem)}}},
         {"rules", {rule}},
         {"namespaceSelector", {{"matchLabels", {{"kubernetes.io/metadata.name", ns}}}}},
         {"failurePolicy", "Fail"},
         {"sideEffects", "None"},
         {"admissionReviewVersions", {"v1"}},
         {"timeoutSeconds", 10}}}}};
  // The claims the manager writes come back to it, as with the chart on a cluster older than
  // 1.28 (no matchConditions): their round trip is part of the create's webhook time.
  json claims = vwc["webhooks"][0];
  claims["name"] = "claims.bench.ipguard.io";
  claims["rules"][0]["resources"] = {"ipclaims"};
  claims["rules"][0]["scope"] = "Cluster";
  claims.erase("namespaceSelector");
  if (claims_back) vwc["webhooks"].push_back(claims);
  auto r = c.Create(kWebhooks, "", vwc);
  if (!r.ok()) std::cerr << "webhook configuration: " << r.error().ToString() << "\n";
  return r.ok();
}

json Network(const std::string& name, const std::string& prefix, const std::string& gateway,
             const std::string& pool_start, const std::string& pool_end) {
  return {{"apiVersion", "ipguard.io/v1alpha1"},
          {"kind", "LogicalNetwork"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"vmSwitchName", "sw"},
            {"ipAllocationMethod", "Static"},
            {"vlanId", 4000},
            {"addressPrefix", prefix},
            {"gateway", gateway},
            {"dnsServers", {gateway}},
            {"ipPools", {{{"start", pool_start}, {"end", pool_end}}}}}}};
}

json Cluster(const std::string& ns, const std::string& name, const std::string& network,
             const std::string& ip) {
  return {{"apiVersion", "ipguard.io/v1alpha1"},
          {"kind", "WorkloadCluster"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec",
           {{"logicalNetworkName", network},
            {"controlPlaneIP", ip},
            {"nodePools", {{{"name", "np1"}, {"count", 3}}}}}}};
}

// Until the API server calls the webhook (its configuration is seen through an
// informer): a dry run of a control-plane IP inside the pool is denied by it.
bool WaitWebhookInForce(Client& c, const std::string& ns, const std::string& network,
                        const std::string& in_pool) {
  auto* t = c.transport();
  for (int i = 0; i < 300; ++i) {
    ipguard::kube::HttpRequest req;
    req.method = "POST";
    req.path = kClusters.Path(ns) + "?dryRun=All";
    req.body = Cluster(ns, "probe", network, in_pool).dump();
    auto r = t->Do(req);
    if (r.ok() && r->status == 403 && r->body.find("denied the request") != std::string::npos)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// Deletes a namespace and waits until it is gone, so that the next run can make it again.
void DeleteNamespace(Client& c, const std::string& ns) {
  c.Delete(kNamespaces, "", ns);
  for (int i = 0; i < 1200; ++i) {
    auto r = c.Get(kNamespaces, "", ns);
    if (!r.ok() && r.error().code == 404) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::cerr << "namespace " << ns << " still there after 120 s\n";
}

void SetUpNamespace(Client& c, const std::string& ns) {
  c.Create(kNamespaces, "", json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
}

int Race(Client& c, const Flags& f) {
  const std::string ns = "bench-race", net = "lnet-race", ip = "10.251.0.10";
  SetUpNamespace(c, ns);
  CreateRetrying(c, kNetworks, "", Network(net, "10.251.0.0/24", "10.251.0.1", "10.251.0.50", "10.251.0.249"));
  Manager m(f, {});
  if (!m.ok() || m.WaitReady(std::chrono::seconds(300)) < 0) return 1;
  if (!RegisterWebhook(c, m.webhook_port(), m.ca_pem(), ns) ||
      !WaitWebhookInForce(c, ns, net, "10.251.0.60")) {
    return 1;
  }
  // One TLS connection per create, made and handshaken before the start, so that the
  // creates reach the API server together (the product's client would queue them on
  // its pool).
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  std::atomic<int> created{0}, denied{0}, other{0}, ready{0};
  std::string other_example;
  std::vector<std::thread> threads;
  for (int i = 0; i < f.creates; ++i) {
    threads.emplace_back([&, i] {
      ipguard::testing_util::TestClient client(f.api_port, true, f.rest.ca_pem);
      client.UseClientCertificate(f.rest.client_cert_pem, f.rest.client_key_pem);
      std::string err = client.Connect();
      client.SetTimeout(60);
      ready.fetch_add(1);
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait(l, [&] { return go; });
      }
      ipguard::testing_util::HttpReply r;
      if (err.empty()) {
        r = client.Request("POST", kClusters.Path(ns),
                           Cluster(ns, "race-" + std::to_string(i), net, ip).dump());
      }
      if (r.ok && r.status == 201) {
        created.fetch_add(1);
      } else if (r.ok && r.status == 403) {
        denied.fetch_add(1);
      } else {
        other.fetch_add(1);
        std::lock_guard<std::mutex> l(mu);
        other_example = err.empty() ? (r.ok ? std::to_string(r.status) + " " + r.body.substr(0, 200) : r.error) : err;
      }
    });
  }
  while (ready.load() < f.creates) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto start = SteadyClock::now();
  {
    std::lock_guard<std::mutex> l(mu);
    go = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  double took = Seconds(SteadyClock::now() - start);
  int stored = 0;
  auto list = c.List(kClusters, ns);
  if (list.ok()) {
    for (const json& o : list.value()["items"]) stored += o["spec"].value("controlPlaneIP", "") == ip;
  }
  std::printf("%d concurrent creates of one control-plane IP through the API server: %d stored, "
              "%d admitted, %d denied, %d other (%s), in %.2f s\n",
              f.creates, stored, created.load(), denied.load(), other.load(), other_example.c_str(), took);
  c.Delete(kWebhooks, "", kWebhookConfig);
  DeleteNamespace(c, ns);
  c.Delete(kNetworks, "", net);
  return stored == 1 ? 0 : 1;
}

// The cumulative buckets of a Prometheus histogram, summed over the series whose
// labels contain every one of `match`.
std::map<double, double> Buckets(const std::string& text, const std::string& name,
                                 const std::vector<std::string>& match) {
  std::map<double, double> out;
  std::istringstream in(text);
  std::string line;
  const std::string prefix = name + "_bucket{";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    bool all = true;
    for (const auto& m : match) all = all && line.find(m) != std::string::npos;
    if (!all) continue;
    size_t le = line.find("le=\"");
    if (le == std::string::npos) continue;
    std::string bound = line.substr(le + 4, line.find('"', le + 4) - le - 4);
    double b = bound == "+Inf" ? 1e300 : std::stod(bound);
    out[b] += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return out;
}

// The sum of a Prometheus counter over the series whose labels contain every one of `match`.
double CounterSum(const std::string& text, const std::string& name,
                  const std::vector<std::string>& match) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    // A series with labels, or (when none are asked for) the one without.
    if (line.rfind(name + "{", 0) != 0 && !(match.empty() && line.rfind(name + " ", 0) == 0)) continue;
    bool all = true;
    for (const auto& m : match) all = all && line.find(m) != std::string::npos;
    if (all) sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

void PrintShares(const char* what, const std::map<double, double>& before,
                 const std::map<double, double>& after) {
  if (after.empty()) {
    std::printf("%s: no such series\n", what);
    return;
  }
  double total = after.rbegin()->second - (before.empty() ? 0 : before.rbegin()->second);
  std::printf("%s (%.0f requests):", what, total);
  for (const auto& [bound, count] : after) {
    if (bound > 1) break;
    double prev = before.count(bound) ? before.at(bound) : 0;
    std::printf(" %.1f%% <= %g ms;", total > 0 ? 100.0 * (count - prev) / total : 0.0, bound * 1000);
  }
  std::printf("\n");
}

std::string ApiServerMetrics(Client& c) {
  ipguard::kube::HttpRequest req;
  req.path = "/metrics";
  auto r = c.transport()->Do(req);
  return r.ok() ? r->body : "";
}

constexpr int kLatencyWorkers = 32;

int Latency(Client& c, const Flags& f) {
  const std::string ns = "bench-latency", net = "lnet-latency";
  SetUpNamespace(c, ns);
  CreateRetrying(c, kNetworks, "",
                 Network(net, "10.252.0.0/16", "10.252.0.1", "10.252.128.0", "10.252.255.254"));
  std::vector<std::string> extra;
  if (f.no_status_writes) {
    const Resource leases{"coordination.k8s.io", "v1", "leases", true};
    c.Create(leases, "default",
             json{{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", "bench-held-elsewhere"}, {"namespace", "default"}}},
                  {"spec",
                   {{"holderIdentity", "someone-else"},
                    {"leaseDurationSeconds", 3600},
                    {"renewTime", ipguard::kube::RealClock::Get()->NowMicroTime()}}}});
    extra = {"--leader-elect=true", "--lease-name", "bench-held-elsewhere"};
  }
  // With --floor, the manager is not started: the floor responder answers instead.
  std::unique_ptr<Manager> m;
  std::unique_ptr<ipguard::kube::Transport> floor_claim_transport;
  std::unique_ptr<Client> floor_claim_client;
  std::unique_ptr<FloorWebhook> floor;
  if (f.floor) {
    if (f.manager_beside_floor) {
      m = std::make_unique<Manager>(f, extra);
      if (!m->ok() || m->WaitReady(std::chrono::seconds(300)) < 0) return 1;
    }
    if (f.floor_claims) {
      floor_claim_transport = KeptConnections(f, c, 8);
      if (!floor_claim_transport) return 1;
      floor_claim_client = std::make_unique<Client>(floor_claim_transport.get());
    }
    floor = std::make_unique<FloorWebhook>(floor_claim_client.get());
    if (!floor->ok() || !RegisterWebhook(c, floor->port(), floor->ca_pem(), ns, !f.claims_skip_webhook)) return 1;
  } else {
    m = std::make_unique<Manager>(f, extra);
    if (!m->ok() || m->WaitReady(std::chrono::seconds(300)) < 0) return 1;
    if (!RegisterWebhook(c, m->webhook_port(), m->ca_pem(), ns, !f.claims_skip_webhook)) return 1;
  }
  if (!WaitWebhookInForce(c, ns, net, "10.252.200.1")) return 1;
  // Warm-up at 10.252.100.x: outside the pool and the measured addresses (10.252.0.2 and up).
  for (int i = 0; i < f.warmup; ++i) {
    uint32_t ip = (10u << 24) | (252u << 16) | (100u << 8) | static_cast<uint32_t>(1 + i % 250);
    if (!c.Create(kClusters, ns, Cluster(ns, "warm-" + std::to_string(i), net, ipguard::bench::Ip4(ip))).ok()) {
      std::fprintf(stderr, "latency: warm-up create %d failed\n", i);
      return 1;
    }
  }
  if (f.warmup > 0) {
    std::this_thread::sleep_for(std::chrono::seconds(2));  // their status writes settle
    std::printf("after %d creates one by one, untimed (--warmup)\n", f.warmup);
  }
  // The load generator shares the machine's two cores with the API server it
  // measures; a real management cluster's clients run elsewhere. Its creates go
  // on kept connections, each sent and read on the worker's own thread: about
  // half the CPU of the cpprestsdk client for the same creates.
  std::unique_ptr<ipguard::kube::Transport> kept;
  Client* load = &c;
  std::unique_ptr<Client> kept_client;
  if (f.load_client == "kept") {
    kept = KeptConnections(f, c, kLatencyWorkers);
    if (!kept) return 1;
    kept_client = std::make_unique<Client>(kept.get());
    load = kept_client.get();
  }
  // The load generator's own connections, made before the clock starts: as
  // many as it has workers, each a TLS handshake that costs it CPU. Made during
  // the run, they took a core for about a second at its start, and the API
  // server waited for it (the slowest creates were all in that second).
  {
    std::vector<std::thread> warm;
    for (int w = 0; w < kLatencyWorkers; ++w) {
      warm.emplace_back([&] { load->Get(kNamespaces, "", ns); });
    }
    for (auto& t : warm) t.join();
  }
  if (f.warm_connections > 0) {
    std::vector<std::thread> warm;
    std::atomic<int> warm_failed{0};
    for (int i = 0; i < f.warm_connections; ++i) {
      warm.emplace_back([&, i] {
        uint32_t ip = (10u << 24) | (252u << 16) | (101u << 8) | static_cast<uint32_t>(1 + i % 250);
        if (!load->Create(kClusters, ns, Cluster(ns, "warmc-" + std::to_string(i), net, ipguard::bench::Ip4(ip))).ok())
          warm_failed.fetch_add(1);
      });
    }
    for (auto& t : warm) t.join();
    if (warm_failed.load() > 0) {
      std::fprintf(stderr, "latency: %d of the --warm-connections creates failed\n", warm_failed.load());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    std::printf("after %d creates at once, untimed (--warm-connections)\n", f.warm_connections);
  }
  auto own_metrics = [&] { return m ? m->Metrics() : std::string(); };
  // The webhook's connections accepted so far: the run's own are printed after it.
  auto accepted = [&](const std::string& own) -> double {
    if (floor) return static_cast<double>(floor->connections_accepted());
    return CounterSum(own, "ipguard_webhook_connections_accepted_total", {});
  };
  const int total = f.rate * f.seconds;
  const std::vector<std::string> match = {"name=\"wlc.bench.ipguard.io\"", "operation=\"CREATE\""};
  const char* kApi = "apiserver_admission_webhook_admission_duration_seconds";
  const char* kOwn = "ipguard_admission_duration_seconds";
  // The writes the API server served besides the creates: the status writes of the
  // manager (WorkloadClusters and LogicalNetworks).
  auto status_writes = [&](const std::string& text, const char* only = nullptr) {
    double n = 0;
    for (const char* r : {"resource=\"workloadclusters\"", "resource=\"logicalnetworks\""}) {
      if (only && std::string(r).find(only) == std::string::npos) continue;
      n += CounterSum(text, "apiserver_request_total", {r, "subresource=\"status\"", "code=\"200\""});
    }
    return n;
  };
  std::string api_text = ApiServerMetrics(c);
  const std::string api_text_before_run = api_text;
  auto api_before = Buckets(api_text, kApi, match);
  double status_before = status_writes(api_text);
  double network_status_before = status_writes(api_text, "logicalnetworks");
  std::string own_text = own_metrics();
  auto own_before = Buckets(own_text, kOwn, {});
  // The claims' own round trip: as the API server serves their POST, and as
  // the manager's claim writers see it (their thread and client included).
  const char* kRequest = "apiserver_request_duration_seconds";
  const std::vector<std::string> claim_posts = {"verb=\"POST\"", "resource=\"ipclaims\""};
  const char* kClaimWrite = "ipguard_claim_write_duration_seconds";
  auto claim_api_before = Buckets(api_text, kRequest, claim_posts);
  auto claim_own_before = Buckets(own_text, kClaimWrite, {});
  const double accepted_before = accepted(own_text);
  // Who took the two cores during the run: CPU seconds of each process.
  std::vector<std::pair<std::string, pid_t>> procs;
  if (m) procs.push_back({"the manager", m->pid()});
  if (const char* state = std::getenv("IPGUARD_E2E_K8S_STATE")) {
    for (const char* name : {"apiserver", "etcd"}) {
      std::ifstream in(std::string(state) + "/" + name + ".pid");
      long pid = 0;
      if (in >> pid) procs.push_back({name, static_cast<pid_t>(pid)});
    }
  }
  procs.push_back({"this benchmark", getpid()});
  std::vector<double> cpu_before;
  for (const auto& p : procs) cpu_before.push_back(CpuSeconds(p.second));
  auto wall_start = SteadyClock::now();
  std::vector<double> client_ms(total, -1);
  std::atomic<int> failed{0};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> queue;
  bool done = false;
  std::vector<std::thread> workers;
  for (int w = 0; w < kLatencyWorkers; ++w) {
    workers.emplace_back([&] {
      for (;;) {
        int i;
        {
          std::unique_lock<std::mutex> l(mu);
          cv.wait(l, [&] { return done || !queue.empty(); });
          if (queue.empty()) return;
          i = queue.back();
          queue.pop_back();
        }
        uint32_t ip = (10u << 24) | (252u << 16) | static_cast<uint32_t>(2 + i);
        auto start = SteadyClock::now();
        auto r = load->Create(kClusters, ns,
                              Cluster(ns, "lat-" + std::to_string(i), net, ipguard::bench::Ip4(ip)));
        client_ms[i] = Seconds(SteadyClock::now() - start) * 1000;
        if (!r.ok()) failed.fetch_add(1);
      }
    });
  }
  {
    // When the clock started, to find the run in the control plane's logs.
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm utc{};
    gmtime_r(&t, &utc);
    char stamp[32];
    std::strftime(stamp, sizeof(stamp), "%H:%M:%S", &utc);
    std::printf("the run's clock started at %s.%03d UTC\n", stamp,
                static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     now.time_since_epoch()).count() % 1000));
  }
  auto period = std::chrono::microseconds(1000000 / f.rate);
  auto next = SteadyClock::now();
  for (int i = 0; i < total; ++i) {
    std::this_thread::sleep_until(next);
    next += period;
    {
      std::lock_guard<std::mutex> l(mu);
      queue.push_back(i);
    }
    cv.notify_one();
  }
  {
    std::lock_guard<std::mutex> l(mu);
    done = true;
  }
  cv.notify_all();
  for (auto& t : workers) t.join();
  {
    double wall = Seconds(SteadyClock::now() - wall_start);
    std::printf("CPU during the run (%.1f s), in cores:", wall);
    for (size_t k = 0; k < procs.size(); ++k) {
      std::printf(" %s %.2f;", procs[k].first.c_str(), (CpuSeconds(procs[k].second) - cpu_before[k]) / wall);
    }
    std::printf("\n");
  }
  api_text = ApiServerMetrics(c);
  auto api_after = Buckets(api_text, kApi, match);
  double status_after = status_writes(api_text);
  double network_status_after = status_writes(api_text, "logicalnetworks");
  own_text = own_metrics();
  auto own_after = Buckets(own_text, kOwn, {});
  auto claim_api_after = Buckets(api_text, kRequest, claim_posts);
  auto claim_own_after = Buckets(own_text, kClaimWrite, {});
  std::printf("connections the API server opened to the webhook during the run: %.0f\n",
              accepted(own_text) - accepted_before);
  // When the slow creates came: in the first second or spread over the run.
  {
    std::vector<std::pair<double, int>> by_latency;
    for (int i = 0; i < total; ++i) by_latency.push_back({client_ms[i], i});
    std::sort(by_latency.rbegin(), by_latency.rend());
    std::printf("the slowest creates (request number: ms):");
    for (size_t k = 0; k < std::min<size_t>(12, by_latency.size()); ++k)
      std::printf(" %d: %.0f;", by_latency[k].second, by_latency[k].first);
    std::printf("\n");
  }
  std::sort(client_ms.begin(), client_ms.end());
  auto pct = [&](double p) { return Percentile(client_ms, p); };
  std::printf("%d creates at %d/s, %d failed; create latency seen by the client: p50 %.1f ms, "
              "p99 %.1f ms, max %.1f ms\n",
              total, f.rate, failed.load(), pct(0.5), pct(0.99), client_ms.back());
  PrintShares("webhook as the API server measures it", api_before, api_after);
  std::printf("status writes served meanwhile: %.0f (of LogicalNetworks: %.0f)\n",
              status_after - status_before, network_status_after - network_status_before);
  {
    // Every request the API server served during the run, by verb, resource and code:
    // what the webhook's process asked of it besides the creates.
    std::map<std::string, double> before, after;
    auto series = [](const std::string& text, std::map<std::string, double>& out) {
      std::istringstream in(text);
      std::string line;
      while (std::getline(in, line)) {
        if (line.rfind("apiserver_request_total{", 0) != 0) continue;
        size_t sp = line.rfind(' ');
        out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
      }
    };
    series(api_text_before_run, before);
    series(api_text, after);
    auto label = [](const std::string& key, const char* name) {
      size_t at = key.find(std::string(name) + "=\"");
      if (at == std::string::npos) return std::string();
      at += std::strlen(name) + 2;
      return key.substr(at, key.find('"', at) - at);
    };
    std::printf("requests served during the run:");
    for (const auto& [key, n] : after) {
      double d = n - (before.count(key) ? before[key] : 0);
      if (d <= 0) continue;
      std::string sub = label(key, "subresource");
      std::printf(" %s %s%s%s %s: %.0f;", label(key, "verb").c_str(),
                  label(key, "resource").c_str(), sub.empty() ? "" : "/", sub.c_str(),
                  label(key, "code").c_str(), d);
    }
    std::printf("\n");
  }
  if (floor) {
    std::printf("floor responder: %lld connections accepted\n",
                static_cast<long long>(floor->connections_accepted()));
    if (f.floor_claims) {
      PrintShares("claim POSTs as the API server serves them", claim_api_before, claim_api_after);
      std::vector<double> ms = floor->claim_ms();
      if (!ms.empty()) {
        std::sort(ms.begin(), ms.end());
        auto under = [&](double limit) {
          return 100.0 * static_cast<double>(std::upper_bound(ms.begin(), ms.end(), limit) - ms.begin()) /
                 static_cast<double>(ms.size());
        };
        std::printf("claim POSTs as the floor responder sees them (%zu): p50 %.1f ms, p99 %.1f ms, "
                    "%.1f%% <= 2.5 ms, %.1f%% <= 5 ms, %.1f%% <= 10 ms\n",
                    ms.size(), Percentile(ms, 0.5), Percentile(ms, 0.99),
                    under(2.5), under(5), under(10));
      }
    }
  } else {
    PrintShares("webhook as it measures itself", own_before, own_after);
    if (!claim_own_after.empty() && claim_own_after.rbegin()->second > 0) {
      PrintShares("claim POSTs as the API server serves them", claim_api_before, claim_api_after);
      PrintShares("claim writes as the manager sees them", claim_own_before, claim_own_after);
    }
    const std::string& text = own_text;  // the metrics read after the run
    for (const char* name : {"ipguard_webhook_connections_accepted_total", "ipguard_webhook_connections"}) {
      size_t at = text.find(std::string("\n") + name + " ");
      if (at != std::string::npos)
        std::printf("%s %s", name, text.substr(at + strlen(name) + 2, text.find('\n', at + 1) - at - strlen(name) - 1).c_str());
    }
  }
  c.Delete(kWebhooks, "", kWebhookConfig);
  DeleteNamespace(c, ns);
  c.Delete(kNetworks, "", net);
  return failed.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--kubeconfig") f.kubeconfig = next();
    else if (a == "--binary") f.binary = next();
    else if (a == "--networks") f.networks = std::stoi(next());
    else if (a == "--clusters") f.clusters = std::stoi(next());
    else if (a == "--services") f.services = std::stoi(next());
    else if (a == "--claims") f.claims = std::stoi(next());
    else if (a == "--claim-clusters") f.claim_clusters = std::stoi(next());
    else if (a == "--cluster-claims") f.cluster_claims = std::stoi(next()) != 0;
    else if (a == "--written-timeout") f.written_timeout = std::stoi(next());
    else if (a == "--threads") f.threads = std::stoi(next());
    else if (a == "--runs") f.runs = std::stoi(next());
    else if (a == "--creates") f.creates = std::stoi(next());
    else if (a == "--rate") f.rate = std::stoi(next());
    else if (a == "--warmup") f.warmup = std::stoi(next());
    else if (a == "--warm-connections") f.warm_connections = std::stoi(next());
    else if (a == "--seconds") f.seconds = std::stoi(next());
    else if (a == "--no-status-writes") f.no_status_writes = true;
    else if (a == "--floor") f.floor = true;
    // Its handler threads wait on the claims' POSTs: the claims are not sent
    // back to it (as on 1.28+ with the chart's match condition), or the
    // API server's calls for them would find every thread waiting.
    else if (a == "--floor-claims") f.floor_claims = f.floor = f.claims_skip_webhook = true;
    else if (a == "--claims-skip-webhook") f.claims_skip_webhook = true;
    else if (a == "--load-client") f.load_client = next();
    else if (a == "--manager-beside-floor") f.manager_beside_floor = f.floor = true;
    else if (a == "--manager-flag") f.manager_flags.push_back(next());
    else if (a.rfind("--", 0) != 0) f.mode = a;
    else {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
  }
  if (f.load_client != "kept" && f.load_client != "cpprest") {
    std::cerr << "--load-client: kept or cpprest, not " << f.load_client << "\n";
    return 2;
  }
  if (f.kubeconfig.empty() || f.mode.empty()) {
    std::cerr << "usage: bench_apiserver --kubeconfig PATH load|startup|race|latency [flags]\n";
    return 2;
  }
  auto config = ipguard::kube::LoadKubeconfig(f.kubeconfig);
  if (!config.ok()) {
    std::cerr << config.error() << "\n";
    return 2;
  }
  f.rest = *config;
  f.api_port = std::stoi(config->server.substr(config->server.rfind(':') + 1));
  ipguard::kube::HttpTransportOptions to;
  to.pool_threads = 8;
  auto transport = ipguard::kube::NewHttpTransport(*config, ipguard::kube::RealClock::Get(), to);
  if (!transport.ok()) {
    std::cerr << transport.error() << "\n";
    return 2;
  }
  Client c(transport->get());
  if (f.mode == "load") return Load(c, f);
  if (f.mode == "startup") return Startup(c, f);
  if (f.mode == "race") return Race(c, f);
  if (f.mode == "latency") return Latency(c, f);
  std::cerr << "unknown mode " << f.mode << "\n";
  return 2;
}
