// Scale benchmark of `ipguard manager` (issue #3): the fake API server, in
// this process, serves 1k LogicalNetworks, 10k WorkloadClusters and 100k
// LoadBalancer Services over HTTPS; the real binary runs as a child process.
// Reports the time from start to /readyz, the time until every status is
// written, the child's peak RSS, and, while 100 changes per second arrive,
// the time from each change to its status being written (p50, p99, max).
//
//   bench_manager [--binary build/cmd/ipguard] [--networks 1000]
//                 [--clusters 10000] [--services 100000] [--seconds 30]
//                 [--rate 100] [--manager-flag FLAG]...
//                 [--changes-from written|ready] [--preload-claims 0|1]
//                 [--written-timeout 900]
// (--manager-flag: one more argument for the manager, e.g. --status-qps=0;
// --changes-from ready: the changes begin at ready, while the start's pass
// is still writing, and every status is awaited after them, for at most
// --written-timeout seconds; --preload-claims 1: the fake holds the IPClaim
// of every cluster and Service, as on any start after the first)
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "bench/plan_objects.h"
#include "bench/process_util.h"
#include "tests/component/tls_client.h"
#include "tests/fakeapi/fake_apiserver.h"
#include "webhook/certs.h"

extern char** environ;

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using ipguard::bench::ClusterJson;
using ipguard::bench::NetworkJson;
using ipguard::bench::FreePort;
using ipguard::bench::ServiceJson;
using ipguard::fakeapi::FakeApiServer;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }


}  // namespace

int main(int argc, char** argv) {
  std::string binary = "build/cmd/ipguard";
  int networks = 1000, clusters = 10000, services = 100000, seconds = 30, rate = 100;
  int preload_claims = 0, written_timeout = 900;
  std::string changes_from = "written";
  std::vector<std::string> manager_flags;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--binary") binary = v;
    if (a == "--manager-flag") manager_flags.push_back(v);
    if (a == "--networks") networks = std::stoi(v);
    if (a == "--clusters") clusters = std::stoi(v);
    if (a == "--services") services = std::stoi(v);
    if (a == "--seconds") seconds = std::stoi(v);
    if (a == "--rate") rate = std::stoi(v);
    if (a == "--changes-from") changes_from = v;
    if (a == "--preload-claims") preload_claims = std::stoi(v);
    if (a == "--written-timeout") written_timeout = std::stoi(v);
  }
  if (changes_from != "written" && changes_from != "ready") {
    std::cerr << "--changes-from is written or ready, not " << changes_from << "\n";
    return 2;
  }

  auto ca = *ipguard::certs::GenerateCA("bench-ca", std::chrono::hours(24));
  auto serving = *ipguard::certs::GenerateServing(ca, "bench", {"localhost"}, {"127.0.0.1"},
                                                  std::chrono::hours(24));
  ipguard::fakeapi::FakeApiOptions fo;
  fo.tls = true;
  fo.cert_pem = serving.cert_pem;
  fo.key_pem = serving.key_pem;
  fo.bookmark_interval = std::chrono::seconds(5);
  FakeApiServer fake(fo);
  fake.AddStandardResources();
  if (!fake.Start().ok()) return 1;

  auto load_start = Clock::now();
  const std::string old = "2026-01-01T00:00:00Z";
  for (int n = 0; n < networks; ++n) fake.Upsert("logicalnetworks", NetworkJson(n, old));
  for (int c = 0; c < clusters; ++c) {
    fake.Upsert("workloadclusters", ClusterJson(c, networks, "team-" + std::to_string(c % 100), old));
  }
  for (int s = 0; s < services; ++s) fake.Upsert("services", ServiceJson(s, old));
  if (preload_claims) {
    for (int c = 0; c < clusters; ++c) {
      fake.Upsert("ipclaims", ipguard::bench::ClusterClaimJson(c, networks, "team-" + std::to_string(c % 100)));
    }
    for (int s = 0; s < services; ++s) fake.Upsert("ipclaims", ipguard::bench::ServiceClaimJson(s, 0));
  }
  std::cerr << "loaded " << networks << " networks, " << clusters << " clusters, " << services
            << " services into the fake in " << Seconds(Clock::now() - load_start) << " s\n";

  char tmpl[] = "/tmp/ipguard-bench-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  ::mkdir((dir + "/certs").c_str(), 0700);
  std::ofstream(dir + "/certs/tls.crt") << serving.cert_pem;
  std::ofstream(dir + "/certs/tls.key") << serving.key_pem;
  std::ofstream(dir + "/kubeconfig") << "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
                                     << "clusters:\n- name: fake\n  cluster:\n    server: " << fake.url()
                                     << "\n    certificate-authority-data: "
                                     << ipguard::certs::EncodeBase64(ca.cert_pem)
                                     << "\ncontexts:\n- name: fake\n  context: {cluster: fake, user: u}\n"
                                     << "users:\n- name: u\n  user: {token: t}\n";
  int probe = FreePort(), webhook = FreePort();
  std::vector<std::string> args = {binary, "manager", "--kubeconfig", dir + "/kubeconfig",
                                   "--namespace", "ipguard-system", "--leader-elect=false",
                                   "--cert-dir", dir + "/certs", "--webhook-port", std::to_string(webhook),
                                   "--metrics-port", "0", "--probe-port", std::to_string(probe),
                                   "--log-level", "warn"};
  args.insert(args.end(), manager_flags.begin(), manager_flags.end());
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  auto start = Clock::now();
  pid_t pid = 0;
  if (posix_spawn(&pid, binary.c_str(), nullptr, nullptr, cargs.data(), environ) != 0) {
    std::cerr << "cannot start " << binary << "\n";
    return 1;
  }

  auto ready = [&] {
    ipguard::testing_util::TestClient c(probe, false);
    return c.Connect().empty() && c.Request("GET", "/readyz", "").status == 200;
  };
  while (!ready()) {
    if (Clock::now() - start > std::chrono::minutes(5)) {
      std::cerr << "not ready after 5 minutes\n";
      kill(pid, SIGKILL);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double ready_s = Seconds(Clock::now() - start);

  auto all_written = [&] {
    for (const auto& plural : {"logicalnetworks", "workloadclusters"}) {
      for (const json& o : fake.List(plural)) {
        if (!o.contains("status") || !o["status"].contains("observedGeneration")) return false;
      }
    }
    return true;
  };
  double written_s = -1;
  auto await_written = [&] {
    auto limit = start + std::chrono::seconds(written_timeout);
    while (!all_written()) {
      if (Clock::now() > limit) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    written_s = Seconds(Clock::now() - start);
  };
  if (changes_from == "written") await_written();
  const double changes_at_s = Seconds(Clock::now() - start);

  // Changes at a steady rate: a cluster's node count goes up by one, which
  // changes its requiredAddresses and bumps its generation.
  struct Change {
    std::string ns, name;
    int64_t generation;
    Clock::time_point at;
  };
  std::vector<double> latencies;
  std::vector<Change> open;
  const int total = rate * seconds;
  auto period = std::chrono::microseconds(1000000 / rate);
  auto next = Clock::now();
  int sent = 0;
  while (sent < total || !open.empty()) {
    auto now = Clock::now();
    if (sent < total && now >= next) {
      int c = (sent * 7919) % clusters;
      std::string ns = "team-" + std::to_string(c % 100), name = "wlc-" + std::to_string(c);
      json obj = *fake.Get("workloadclusters", ns, name);
      obj["spec"]["nodePools"][0]["count"] = obj["spec"]["nodePools"][0]["count"].get<int>() % 4 + 1;
      obj["metadata"].erase("generation");
      obj["metadata"].erase("resourceVersion");
      json stored = fake.Upsert("workloadclusters", obj);
      open.push_back({ns, name, stored["metadata"]["generation"].get<int64_t>(), Clock::now()});
      ++sent;
      next += period;
    }
    for (auto it = open.begin(); it != open.end();) {
      auto o = fake.Get("workloadclusters", it->ns, it->name);
      if (o && o->contains("status") && (*o)["status"].value("observedGeneration", int64_t{0}) >= it->generation) {
        latencies.push_back(Seconds(Clock::now() - it->at) * 1000);
        it = open.erase(it);
      } else if (Clock::now() - it->at > std::chrono::seconds(30)) {
        latencies.push_back(30000);
        it = open.erase(it);
      } else {
        ++it;
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  long changes_rss_kb = ipguard::bench::ProcStatusKb(pid, "VmHWM:");
  if (changes_from == "ready") await_written();
  long rss_kb = ipguard::bench::ProcStatusKb(pid, "VmHWM:");
  std::string heap = "?", rss_now = "?", backfilled = "?";
  {
    ipguard::testing_util::TestClient c(probe, false);
    if (c.Connect().empty()) {
      std::string text = c.Request("GET", "/metrics", "").body;
      auto value = [&](const std::string& name) {
        size_t at = text.find("\n" + name + " ");
        if (at == std::string::npos) return std::string("?");
        size_t from = at + name.size() + 2;
        return std::to_string(std::stod(text.substr(from, text.find('\n', from) - from)) / 1048576.0);
      };
      heap = value("ipguard_heap_in_use_bytes");
      rss_now = value("process_resident_memory_bytes");
      size_t at = text.find("\nipguard_claims_backfilled_total ");
      if (at != std::string::npos) {
        size_t from = at + 33;
        backfilled = text.substr(from, text.find('\n', from) - from);
      }
    }
  }
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  std::system(("rm -rf " + dir).c_str());

  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies.empty() ? 0.0 : latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()))];
  };
  std::printf("objects: %d LogicalNetworks, %d WorkloadClusters, %d LoadBalancer Services\n", networks,
              clusters, services);
  std::printf("start to ready (/readyz 200):      %.2f s\n", ready_s);
  if (preload_claims) std::printf("claims preloaded: %d\n", clusters + services);
  if (written_s >= 0) {
    std::printf("start to every status written:     %.2f s\n", written_s);
  } else {
    std::printf("start to every status written:     not within %d s\n", written_timeout);
  }
  std::printf("claims the manager wrote (backfill): %s\n", backfilled.c_str());
  std::printf("peak RSS of the manager:           %.1f MB (at the end: RSS %s MB, heap in use %s MB)\n",
              rss_kb / 1024.0, rss_now.c_str(), heap.c_str());
  std::printf("change to status, %d changes/s for %d s from %.1f s after start (%s): p50 %.1f ms, "
              "p99 %.1f ms, max %.1f ms (%zu changes; peak RSS by their end %.1f MB)\n",
              rate, seconds, changes_at_s, changes_from.c_str(), pct(0.50), pct(0.99),
              latencies.empty() ? 0.0 : latencies.back(), latencies.size(), changes_rss_kb / 1024.0);
  std::printf("exit status after SIGTERM: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return 0;
}
