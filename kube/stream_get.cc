#include "kube/stream_get.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <thread>

namespace ipguard::kube {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct Url {
  bool tls = true;
  std::string host;  // without brackets
  std::string port;
  std::string prefix;  // a path the server URL carries, without the trailing '/'
};

Result<Url> ParseServer(const std::string& server) {
  Url u;
  std::string rest;
  if (server.rfind("https://", 0) == 0) {
    rest = server.substr(8);
  } else if (server.rfind("http://", 0) == 0) {
    u.tls = false;
    rest = server.substr(7);
  } else {
    return Status::Error("server \"" + server + "\" is not an http(s) URL");
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.prefix = rest.substr(slash);
  while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return Status::Error("server \"" + server + "\": bad IPv6 host");
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') u.port = authority.substr(close + 2);
  } else {
    size_t colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) u.port = authority.substr(colon + 1);
  }
  if (u.host.empty()) return Status::Error("server \"" + server + "\" has no host");
  if (u.port.empty()) u.port = u.tls ? "443" : "80";
  if (!u.tls && u.host != "127.0.0.1" && u.host != "localhost" && u.host != "::1") {
    return Status::Error("server \"" + server + "\" must be https (plain http only for a loopback address)");
  }
  return u;
}

bool IsIp(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// Closes the connection when the deadline passes or the cancel flag is set,
// which ends a read blocked on it.
class Watchdog {
 public:
  Watchdog(int fd, std::chrono::steady_clock::time_point deadline, const std::atomic<bool>* cancel)
      : fd_(fd), deadline_(deadline), cancel_(cancel), thread_([this] { Loop(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  bool fired() const { return fired_.load(); }
  bool timed_out() const { return timed_out_.load(); }

 private:
  void Loop() {
    std::unique_lock<std::mutex> l(mu_);
    while (!done_) {
      cv_.wait_for(l, std::chrono::milliseconds(100));
      if (done_) return;
      bool late = std::chrono::steady_clock::now() >= deadline_;
      if (late || (cancel_ && cancel_->load())) {
        timed_out_ = late;
        fired_ = true;
        ::shutdown(fd_, SHUT_RDWR);  // a system call on the descriptor: ends the blocked read
        return;
      }
    }
  }
  int fd_;
  std::chrono::steady_clock::time_point deadline_;
  const std::atomic<bool>* cancel_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<bool> fired_{false}, timed_out_{false};
  std::thread thread_;
};

template <typename Stream>
Result<HttpResponse> Exchange(Stream& stream, const Url& url, const std::string& token,
                              const HttpRequest& request,
                              const std::function<bool(std::string_view)>& on_chunk,
                              bool* complete) {
  boost::system::error_code ec;
  http::request<http::empty_body> req{http::verb::get, url.prefix + request.path, 11};
  req.set(http::field::host, url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host);
  req.set(http::field::accept, "application/json");
  req.set(http::field::user_agent, "ipguard");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  http::write(stream, req, ec);
  if (ec) return Status::Error("sending the request: " + ec.message());
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(stream, buffer, parser, ec);
  if (ec) return Status::Error("reading the answer: " + ec.message());
  HttpResponse out;
  out.status = static_cast<int>(parser.get().result_int());
  for (const auto& field : parser.get()) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(field.value());
  }
  const bool ok = out.status >= 200 && out.status < 300;
  char piece[64 * 1024];
  while (!parser.is_done()) {
    parser.get().body().data = piece;
    parser.get().body().size = sizeof(piece);
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      if (!ok) break;
      return out;  // the body ended early: *complete stays false
    }
    size_t n = sizeof(piece) - parser.get().body().size;
    if (n == 0) continue;
    if (ok) {
      if (!on_chunk(std::string_view(piece, n))) return out;
    } else if (out.body.size() < (1u << 20)) {
      out.body.append(piece, n);
    }
  }
  if (ok && complete) *complete = true;
  return out;
}

}  // namespace

Result<HttpResponse> StreamGet(const RestConfig& config, const std::string& token,
                               const HttpRequest& request,
                               const std::function<bool(std::string_view)>& on_chunk,
                               bool* complete) {
  if (complete) *complete = false;
  auto url = ParseServer(config.server);
  if (!url.ok()) return url.status();
  const auto deadline = std::chrono::steady_clock::now() + request.timeout;
  try {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    boost::system::error_code ec;
    auto endpoints = resolver.resolve(url->host, url->port, ec);
    if (ec) return Status::Error("cannot resolve " + url->host + ": " + ec.message());
    beast::tcp_stream tcp_stream(ioc);
    tcp_stream.socket().open(endpoints.begin()->endpoint().protocol(), ec);
    if (ec) return Status::Error("socket: " + ec.message());
    Watchdog watchdog(tcp_stream.socket().native_handle(), deadline, request.cancel);
    auto failed = [&](const std::string& what) -> Result<HttpResponse> {
      if (watchdog.timed_out()) {
        return Status::Error("GET " + request.path + ": timed out after " +
                             std::to_string(request.timeout.count()) + " ms");
      }
      if (watchdog.fired()) return Status::Error("request cancelled");
      return Status::Error("GET " + request.path + ": " + what);
    };
    tcp_stream.socket().connect(*endpoints.begin(), ec);
    if (ec) return failed("connect: " + ec.message());
    tcp_stream.socket().set_option(tcp::no_delay(true), ec);
    Result<HttpResponse> r = Status::Error("no answer");
    if (!url->tls) {
      r = Exchange(tcp_stream, *url, token, request, on_chunk, complete);
    } else {
      ssl::context ctx(ssl::context::tls_client);
      SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
      if (config.ca_pem.empty()) {
        ctx.set_default_verify_paths();
      } else {
        ctx.add_certificate_authority(asio::buffer(config.ca_pem));
      }
      if (!config.client_cert_pem.empty()) {
        ctx.use_certificate_chain(asio::buffer(config.client_cert_pem));
        ctx.use_private_key(asio::buffer(config.client_key_pem), ssl::context::pem);
      }
      ctx.set_verify_mode(ssl::verify_peer);
      beast::ssl_stream<beast::tcp_stream&> stream(tcp_stream, ctx);
      SSL* ssl_handle = stream.native_handle();
      if (IsIp(url->host)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), url->host.c_str());
      } else {
        SSL_set_tlsext_host_name(ssl_handle, url->host.c_str());
        X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl_handle), url->host.c_str(), 0);
      }
      stream.handshake(ssl::stream_base::client, ec);
      if (ec) return failed("TLS handshake: " + ec.message());
      r = Exchange(stream, *url, token, request, on_chunk, complete);
    }
    if (!r.ok()) return failed(r.error());
    if (watchdog.fired() && !(complete && *complete)) return failed("the body was cut");
    return r;
  } catch (const std::exception& e) {
    // Asio and OpenSSL report resource exhaustion and bad key material by
    // throwing; nothing of it leaves this function.
    return Status::Error("GET " + request.path + ": " + e.what());
  }
}

}  // namespace ipguard::kube
