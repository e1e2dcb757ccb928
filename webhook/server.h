// HttpServer: the HTTP/1.1 server behind the webhook (TLS) and behind
// /metrics, /healthz and /readyz (plain), on Boost.Beast over the Boost.Asio
// and OpenSSL that cpprestsdk already brings in. The handler sees a parsed
// request and returns a response; nothing about Beast leaks out of
// server.cc.
//
// With TLS: TLS 1.2 and 1.3 only, forward-secret AEAD ciphers only; the
// certificate and key files are re-read when they change (cert-manager or
// the built-in rotator replace them), and until a pair has loaded every
// handshake is refused. With a client CA, only clients that present a
// certificate it signed complete the handshake (the API server, configured
// with an AdmissionConfiguration). A plain-HTTP request on the TLS port gets
// a 400 that says so and the connection is closed. Bodies over max_body get
// 413; a client that is too slow to send its headers or body is
// disconnected.
//
// What one client that reaches the port can take is bounded: connections
// beyond max_connections are closed as soon as they are accepted, and a
// request whose body would take the bytes being received past
// max_pending_body_bytes gets 503 with Retry-After. Out of file descriptors,
// the accept loop backs off (10 ms doubling to 1 s) instead of spinning.
// HEAD gets the headers of the answer without its body; a client that sends
// `Expect: 100-continue` is told to go on before its body is read.
//
// Thread-safe. The handler runs on the server's threads, concurrently; an
// AsyncHandler may answer from any thread.
#ifndef IPGUARD_WEBHOOK_SERVER_H_
#define IPGUARD_WEBHOOK_SERVER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace ipguard::webhook {

struct ServerRequest {
  std::string method;
  std::string target;  // path and query, "/validate?timeout=10s"
  std::string content_type;
  std::string body;
};

struct ServerResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Further header lines, e.g. {"Allow", "POST"}.
  std::vector<std::pair<std::string, std::string>> headers = {};
};

using Handler = std::function<ServerResponse(const ServerRequest&)>;

// Sends the answer to one request. Call it once, from any thread (later
// calls do nothing); after the server has stopped it does nothing.
using Reply = std::function<void(ServerResponse)>;
// A handler that may answer later: it returns at once and calls `reply`
// when the answer is ready, from whichever thread has it, so that no
// server thread ever waits on anything but the handler's own work (a review
// that writes to the API server must not hold a thread the API server's
// next call to this server needs). A request not yet answered counts as
// in flight for Stop()'s grace.
using AsyncHandler = std::function<void(const ServerRequest&, Reply)>;

// Counters of the server since Start(), for metrics.
struct ServerStats {
  int64_t connections = 0;             // open now
  int64_t connections_accepted = 0;    // since Start()
  int64_t connections_refused = 0;     // closed at once: max_connections reached
  int64_t accept_errors = 0;           // accept() failed (out of file descriptors, ...)
  int64_t pending_body_bytes = 0;      // bytes of bodies being received now
  int64_t requests_refused_busy = 0;   // 503: max_pending_body_bytes reached
  int64_t handshakes_failed = 0;       // TLS handshakes that failed or timed out
};

struct ServerOptions {
  std::string bind = "127.0.0.1";
  int port = 0;  // 0: any free port (see port())
  bool tls = false;
  std::string cert_file;  // PEM chain, with tls
  std::string key_file;   // PEM key, with tls
  std::chrono::milliseconds reload_interval{1000};
  size_t max_body = 3 * 1024 * 1024;
  // Connections open at once; more are closed as soon as they are accepted.
  // An idle TLS connection holds about 30 KB.
  size_t max_connections = 1000;
  // Bytes of request bodies being received at once over every connection,
  // each request counted at its Content-Length (max_body when chunked).
  size_t max_pending_body_bytes = 64 * 1024 * 1024;
  // With TLS: PEM file of the CA certificates whose client certificates are
  // accepted (re-read with the serving certificate); empty: any client.
  std::string client_ca_file;
  std::chrono::milliseconds handshake_timeout{10000};
  // Time allowed for a request's headers (including the wait on an idle
  // keep-alive connection), then for its body.
  std::chrono::milliseconds header_timeout{30000};
  std::chrono::milliseconds body_timeout{10000};
  int threads = 2;
  // Where problems outside any one request go (a certificate that does not
  // load); may be empty.
  std::function<void(const std::string&)> log;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Handler handler);
  HttpServer(ServerOptions options, AsyncHandler handler);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving. With TLS, a certificate that cannot be loaded
  // yet is not an error: the files are tried again every reload_interval.
  Status Start();
  // Stops accepting, lets requests in flight finish (up to `grace`), then
  // closes every connection. Idempotent.
  void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  int port() const;
  // With TLS: whether a certificate is loaded (for /readyz).
  bool certificate_loaded() const;
  // How many times a changed certificate was loaded since Start().
  int certificate_loads() const;
  ServerStats stats() const;

  class Impl;  // defined in server.cc, where the connections also see it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ipguard::webhook

#endif  // IPGUARD_WEBHOOK_SERVER_H_
