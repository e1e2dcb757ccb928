// The webhook under load (issue #4). Two modes:
//
//   bench_webhook serve DIR PORT   the HTTPS server and admission handler the
//                                  manager runs, over an index of 100k objects
//                                  (1k networks, 9k clusters, 90k Services);
//                                  writes DIR/tls.crt, tls.key and
//                                  review.json (a LoadBalancer Service
//                                  AdmissionReview) and serves until SIGTERM.
//   bench_webhook load PORT CA RATE SECONDS BODY
//                                  an open-loop client: 8 keep-alive TLS
//                                  connections sending at RATE requests/s in
//                                  all; latency is taken from when each
//                                  request was due, so a stall is not hidden
//                                  (no coordinated omission). Prints p50/p99.
//
// bench/webhook_wrk.sh drives both, and wrk against ipguard and nginx.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "bench/plan_objects.h"
#include "kube/clock.h"
#include "tests/component/tls_client.h"
#include "webhook/certs.h"
#include "webhook/handler.h"
#include "webhook/server.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using ipguard::bench::ClusterJson;
using ipguard::bench::NetworkJson;
using ipguard::bench::ServiceIp;


json Service(const std::string& name, const std::string& ip) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata",
           {{"name", name},
            {"namespace", "apps"},
            {"annotations", {{"metallb.io/loadBalancerIPs", ip}}},
            {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
          {"spec", {{"type", "LoadBalancer"}, {"ports", {{{"port", 443}, {"protocol", "TCP"}}}}}}};
}

void Fill(ipguard::kube::ClusterState& state) {
  for (int n = 0; n < 1000; ++n) state.Apply(ipguard::kube::EventType::kAdded, NetworkJson(n));
  for (int c = 0; c < 9000; ++c) {
    state.Apply(ipguard::kube::EventType::kAdded, ClusterJson(c, 1000, "team"));
  }
  for (int s = 0; s < 90000; ++s) {
    state.Apply(ipguard::kube::EventType::kAdded,
                Service("svc-" + std::to_string(s), ServiceIp(s)));
  }
}

// The request: a new Service asking for a free address (judged in full,
// admitted, and held as pending like any admitted write).
json Review() {
  return {{"apiVersion", "admission.k8s.io/v1"},
                 {"kind", "AdmissionReview"},
                 {"request",
                  {{"uid", "705ab4f5-6393-11e8-b7cc-42010a800002"},
                   {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Service"}}},
                   {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "services"}}},
                   {"namespace", "apps"},
                   {"operation", "CREATE"},
                   {"userInfo", {{"username", "system:serviceaccount:argocd:argocd-application-controller"}}},
                   {"object", Service("web-frontend", "100.127.0.10")},
                   {"dryRun", false}}}};
}

int Serve(const std::string& dir, int port) {
  auto ca = *ipguard::certs::GenerateCA("bench-ca", std::chrono::hours(24));
  auto serving = *ipguard::certs::GenerateServing(ca, "ipguard-webhook", {"localhost"}, {"127.0.0.1"},
                                                  std::chrono::hours(24));
  std::ofstream(dir + "/ca.crt") << ca.cert_pem;
  std::ofstream(dir + "/tls.crt") << serving.cert_pem;
  std::ofstream(dir + "/tls.key") << serving.key_pem;
  ipguard::kube::ClusterState state(ipguard::Options{}, ipguard::kube::RealClock::Get());
  Fill(state);
  std::ofstream(dir + "/review.json") << Review().dump();

  ipguard::kube::Metrics metrics;
  ipguard::webhook::DescribeAdmissionMetrics(&metrics);
  ipguard::webhook::AdmissionHandler handler(&state, &metrics, ipguard::AdmissionOptions{});
  ipguard::webhook::ServerOptions o;
  o.port = port;
  o.tls = true;
  o.cert_file = dir + "/tls.crt";
  o.key_file = dir + "/tls.key";
  ipguard::webhook::HttpServer server(o, handler);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (!server.Start().ok()) return 1;
  std::printf("serving %zu objects on https://127.0.0.1:%d/validate\n",
              state.Read([](const ipguard::Engine& e) { return e.size(); }), server.port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  server.Stop();
  return 0;
}

// The handler alone, no network: the cost of one AdmissionReview.
int InProcess(int n) {
  ipguard::kube::ClusterState state(ipguard::Options{}, ipguard::kube::RealClock::Get());
  Fill(state);
  ipguard::kube::Metrics metrics;
  ipguard::webhook::DescribeAdmissionMetrics(&metrics);
  ipguard::webhook::AdmissionHandler handler(&state, &metrics, ipguard::AdmissionOptions{});
  ipguard::webhook::ServerRequest req{"POST", "/validate", "application/json", Review().dump()};
  for (int dry = 0; dry < 2; ++dry) {
    if (dry) req.body = [] { json r = Review(); r["request"]["dryRun"] = true; return r.dump(); }();
    auto start = Clock::now();
    size_t bytes = 0;
    for (int i = 0; i < n; ++i) bytes += handler(req).body.size();
    double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count() / n;
    std::printf("handler, %s: %.2f us per AdmissionReview (%zu bytes in, %zu out)\n",
                dry ? "dry run" : "admitted and held", us, req.body.size(), bytes / n);
  }
  return 0;
}

int Load(int port, const std::string& ca_file, int rate, int seconds, const std::string& body_file) {
  std::ifstream ca_in(ca_file), body_in(body_file);
  std::stringstream ca, body;
  ca << ca_in.rdbuf();
  body << body_in.rdbuf();
  constexpr int kConnections = 8;
  std::mutex mu;
  std::vector<double> latencies;
  int errors = 0;
  auto start = Clock::now() + std::chrono::milliseconds(200);
  std::vector<std::thread> threads;
  for (int t = 0; t < kConnections; ++t) {
    threads.emplace_back([&, t] {
      ipguard::testing_util::TestClient c(port, true, ca.str());
      if (!c.Connect().empty()) {
        std::lock_guard<std::mutex> l(mu);
        ++errors;
        return;
      }
      const auto period = std::chrono::nanoseconds(1000000000LL * kConnections / rate);
      auto due = start + period * t / kConnections;
      std::vector<double> mine;
      const auto end = start + std::chrono::seconds(seconds);
      int failed = 0;
      while (due < end) {
        std::this_thread::sleep_until(due);
        auto r = c.Request("POST", "/validate", body.str());
        if (!r.ok || r.status != 200) ++failed;
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - due).count());
        due += period;
      }
      std::lock_guard<std::mutex> l(mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
      errors += failed;
    });
  }
  for (auto& t : threads) t.join();
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies.empty() ? 0.0 : latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()))];
  };
  std::printf("rate %d/s for %d s: %zu requests, %d errors, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", rate,
              seconds, latencies.size(), errors, pct(0.5), pct(0.99), latencies.empty() ? 0.0 : latencies.back());
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "serve" && argc == 4) return Serve(argv[2], std::stoi(argv[3]));
  if (mode == "inproc") return InProcess(argc > 2 ? std::stoi(argv[2]) : 100000);
  if (mode == "load" && argc == 7) {
    return Load(std::stoi(argv[2]), argv[3], std::stoi(argv[4]), std::stoi(argv[5]), argv[6]);
  }
  std::cerr << "usage: bench_webhook serve DIR PORT | load PORT CA RATE SECONDS BODY | inproc [N]\n";
  return 2;
}
