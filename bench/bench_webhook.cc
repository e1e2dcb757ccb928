// The webhook under load (issue #4). Two modes:
//
//   bench_webhook serve DIR PORT   the HTTPS server and admission handler the
//                                  manager runs, over an index of 100k objects
//                                  (1k networks, 9k clusters, 90k Services);
//                                  writes DIR/tls.crt, tls.key and
//                                  review.json (a LoadBalancer Service
//                                  AdmissionReview) and serves until SIGTERM.
//   bench_webhook load PORT CA RATE SECONDS BODY
//                                  an open-loop client on one epoll thread:
//                                  16 keep-alive TLS connections, requests
//                                  due at RATE per second in all; latency is
//                                  taken from when each request was due, so
//                                  a stall is not hidden (no coordinated
//                                  omission). Prints p50/p99.
//
// bench/webhook_wrk.sh drives both, and wrk against ipguard and nginx.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/plan_objects.h"
#include "kube/clock.h"
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
    double slowest = 0;  // µs, the longest single review
    for (int i = 0; i < n; ++i) {
      auto t = Clock::now();
      bytes += handler(req).body.size();
      slowest = std::max(slowest, std::chrono::duration<double, std::micro>(Clock::now() - t).count());
    }
    double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count() / n;
    std::printf("handler, %s: %.2f us per AdmissionReview (%zu bytes in, %zu out; slowest %.0f us)\n",
                dry ? "dry run" : "admitted and held", us, req.body.size(), bytes / n, slowest);
  }
  return 0;
}

// One TLS connection of the open-loop client.
struct LoadConnection {
  int fd = -1;
  SSL* ssl = nullptr;
  bool busy = false;
  Clock::time_point due;  // when the request in flight was due
  std::string in;         // response bytes read so far
};

// Opens a TLS connection (blocking handshake), then leaves it non-blocking.
bool OpenConnection(SSL_CTX* ctx, int port, LoadConnection* c) {
  c->fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (c->fd < 0 || ::connect(c->fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return false;
  int one = 1;
  ::setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c->ssl = SSL_new(ctx);
  SSL_set_fd(c->ssl, c->fd);
  if (SSL_connect(c->ssl) != 1) return false;
  ::fcntl(c->fd, F_SETFL, ::fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  return true;
}

// Writes the whole request; a full socket buffer (rare: a request is under
// 1 KB) is waited out with poll.
bool SendAll(LoadConnection* c, const std::string& request) {
  while (true) {
    int n = SSL_write(c->ssl, request.data(), static_cast<int>(request.size()));
    if (n > 0) return true;
    int err = SSL_get_error(c->ssl, n);
    if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) return false;
    pollfd p{c->fd, static_cast<short>(err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
    ::poll(&p, 1, 1000);
  }
}

// Reads what has arrived; returns 1 when a whole response is in (and sets
// *status), 0 when more is to come, -1 on error or close.
int ReadResponse(LoadConnection* c, int* status) {
  char buf[16384];
  while (true) {
    int n = SSL_read(c->ssl, buf, sizeof(buf));
    if (n > 0) {
      c->in.append(buf, static_cast<size_t>(n));
      continue;
    }
    int err = SSL_get_error(c->ssl, n);
    if (err == SSL_ERROR_WANT_READ) break;
    return -1;
  }
  size_t head = c->in.find("\r\n\r\n");
  if (head == std::string::npos) return 0;
  size_t cl = c->in.find("Content-Length: ");
  if (cl == std::string::npos || cl > head || c->in.size() < 12) return -1;
  size_t length = std::strtoul(c->in.c_str() + cl + 16, nullptr, 10);
  if (c->in.size() < head + 4 + length) return 0;
  *status = std::atoi(c->in.c_str() + 9);  // "HTTP/1.1 200"
  c->in.erase(0, head + 4 + length);
  return 1;
}

// CPU time the hypervisor gave to others (steal), all CPUs, in ms; -1 when
// /proc/stat cannot say. A tail that moves from run to run often moves with it.
double StealMs() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  long long v[8] = {};
  if (!(in >> cpu) || cpu != "cpu") return -1;
  for (auto& x : v) in >> x;
  return static_cast<double>(v[7]) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// An open-loop client on one thread: requests fall due at RATE per second
// whatever the server does; each goes out on an idle keep-alive connection
// (or waits for one), and its latency is counted from when it was due, so
// a stall is not hidden (no coordinated omission). One epoll thread, so the
// client's own scheduling adds as little as it can to the tail.
int Load(int port, const std::string& ca_file, int rate, int seconds, const std::string& body_file) {
  constexpr int kConnections = 16;
  std::ifstream body_in(body_file);
  std::stringstream body;
  body << body_in.rdbuf();
  const std::string request = "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Content-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.str().size()) + "\r\n\r\n" + body.str();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  std::vector<LoadConnection> conns(kConnections);
  int ep = ::epoll_create1(0);
  int timer = ::timerfd_create(CLOCK_MONOTONIC, 0);
  epoll_event tev{EPOLLIN, {}};
  tev.data.u32 = kConnections;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, timer, &tev);
  for (int i = 0; i < kConnections; ++i) {
    if (!OpenConnection(ctx, port, &conns[i])) {
      std::fprintf(stderr, "load: cannot connect to 127.0.0.1:%d\n", port);
      return 1;
    }
    epoll_event ev{EPOLLIN, {}};
    ev.data.u32 = static_cast<uint32_t>(i);
    ::epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }
  const int64_t total = static_cast<int64_t>(rate) * seconds;
  const auto period = std::chrono::nanoseconds(1000000000LL / rate);
  const double steal_before = StealMs();
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  const auto give_up = start + std::chrono::seconds(seconds + 10);
  std::deque<Clock::time_point> waiting;  // due, no idle connection yet
  std::vector<double> latencies;
  latencies.reserve(static_cast<size_t>(total));
  // When the slow requests were due (ms from the start): a few bursts mean
  // the whole machine paused; slow requests spread out mean the server
  // queues.
  constexpr double kSlowMs = 5.0;
  std::vector<double> slow_due;
  int64_t issued = 0, finished = 0;
  int errors = 0;
  auto send = [&](LoadConnection& c, Clock::time_point due) {
    c.busy = true;
    c.due = due;
    if (!SendAll(&c, request)) {
      ++errors;
      ++finished;
      c.busy = false;
    }
  };
  while (finished < total && Clock::now() < give_up) {
    const auto now = Clock::now();
    while (issued < total && start + period * issued <= now) waiting.push_back(start + period * issued++);
    for (auto& c : conns) {
      if (waiting.empty()) break;
      if (c.busy) continue;
      send(c, waiting.front());
      waiting.pop_front();
    }
    if (issued < total) {
      auto next = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      (start + period * issued).time_since_epoch())
                      .count();
      itimerspec at{};
      at.it_value.tv_sec = next / 1000000000;
      at.it_value.tv_nsec = next % 1000000000;
      ::timerfd_settime(timer, TFD_TIMER_ABSTIME, &at, nullptr);
    }
    epoll_event events[kConnections + 1];
    int n = ::epoll_wait(ep, events, kConnections + 1, 100);
    for (int e = 0; e < n; ++e) {
      uint32_t i = events[e].data.u32;
      if (i == static_cast<uint32_t>(kConnections)) {
        uint64_t expirations;
        if (::read(timer, &expirations, sizeof(expirations)) < 0) continue;
        continue;
      }
      LoadConnection& c = conns[i];
      int status = 0;
      int r = ReadResponse(&c, &status);
      if (r == 0) continue;
      if (r < 0 || !c.busy) {
        std::fprintf(stderr, "load: connection %u failed\n", i);
        return 1;
      }
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - c.due).count();
      latencies.push_back(ms);
      if (ms > kSlowMs) slow_due.push_back(std::chrono::duration<double, std::milli>(c.due - start).count());
      if (status != 200) ++errors;
      ++finished;
      c.busy = false;
      if (!waiting.empty()) {
        send(c, waiting.front());
        waiting.pop_front();
      }
    }
  }
  errors += static_cast<int>(total - finished);  // never answered
  for (auto& c : conns) {
    SSL_free(c.ssl);
    ::close(c.fd);
  }
  SSL_CTX_free(ctx);
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies.empty() ? 0.0 : latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()))];
  };
  const double steal = steal_before < 0 ? -1 : StealMs() - steal_before;
  std::sort(slow_due.begin(), slow_due.end());
  int bursts = 0;
  for (size_t i = 0; i < slow_due.size(); ++i) bursts += i == 0 || slow_due[i] - slow_due[i - 1] > 50.0;
  std::printf("rate %d/s for %d s: %zu requests, %d errors, p50 %.2f ms, p99 %.2f ms, max %.2f ms"
              " (over %.0f ms: %zu, in %d bursts; cpu steal %.0f ms)\n",
              rate, seconds, latencies.size(), errors, pct(0.5), pct(0.99),
              latencies.empty() ? 0.0 : latencies.back(), kSlowMs, slow_due.size(), bursts, steal);
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
