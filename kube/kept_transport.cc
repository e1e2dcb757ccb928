#include "kube/kept_transport.h"

#include <sys/socket.h>

#include <cerrno>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <mutex>
#include <optional>
#include <vector>

#include "kube/tls_dial.h"

namespace ipguard::kube {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

// One connection to the API server, plain or TLS.
struct Conn {
  asio::io_context ioc;
  tcp::socket socket{ioc};
  std::optional<beast::ssl_stream<tcp::socket&>> tls;
  beast::flat_buffer buffer;
  SteadyClock::time_point idle_since;
};

// What one exchange on a connection came to.
struct Exchanged {
  std::optional<HttpResponse> response;
  std::string error;
  bool got_some = false;  // any byte of an answer arrived
  bool keep = false;      // the connection may carry another request
};

// Anything that would end a header line early, or a request line.
bool SafeInHeader(const std::string& s) {
  return s.find_first_of("\r\n") == std::string::npos;
}

template <typename Stream>
Exchanged Exchange(Stream& stream, beast::flat_buffer& buffer, const std::string& wire,
                   size_t max_body) {
  Exchanged out;
  boost::system::error_code ec;
  asio::write(stream, asio::buffer(wire), ec);
  if (ec) {
    out.error = "sending the request: " + ec.message();
    return out;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_body);
  // The header first: Beast (1.74) checks a Content-Length against the
  // limit only when the header is parsed on its own, not when header and
  // body arrive in one read.
  http::read_header(stream, buffer, parser, ec);
  if (!ec) http::read(stream, buffer, parser, ec);
  out.got_some = parser.got_some() || buffer.size() > 0;
  if (ec) {
    out.error = "reading the answer: " + ec.message();
    return out;
  }
  auto& msg = parser.get();
  HttpResponse r;
  r.status = static_cast<int>(msg.result_int());
  for (const auto& field : msg) r.SetHeader(std::string(field.name_string()), std::string(field.value()));
  r.body = std::move(msg.body());
  out.keep = msg.keep_alive() && buffer.size() == 0;
  out.response = std::move(r);
  return out;
}

class KeptTransport : public Transport {
 public:
  KeptTransport(const RestConfig& config, Clock* clock, Transport* streams,
                KeptTransportOptions options, ServerUrl url)
      : config_(config),
        tokens_(config, clock),
        streams_(streams),
        options_(options),
        url_(std::move(url)),
        tls_(ssl::context::tls_client) {}

  Status Init() {
    if (!config_.tls_server_name.empty()) {
      return Status::Error("tls-server-name is not supported: the certificate must name \"" +
                           url_.host + "\"");
    }
    if (!url_.tls) return Status::Ok();
    try {
      ConfigureClientTls(tls_, config_);
    } catch (const std::exception& e) {
      return Status::Error("TLS settings of \"" + config_.server + "\": " + e.what());
    }
    return Status::Ok();
  }

  ~KeptTransport() override {
    std::lock_guard<std::mutex> l(mu_);
    idle_.clear();
  }

  Result<HttpResponse> Do(const HttpRequest& request) override {
    auto token = tokens_.Token();
    if (!token.ok()) return token.status();
    if (!SafeInHeader(request.method) || !SafeInHeader(request.path) ||
        request.path.find(' ') != std::string::npos || !SafeInHeader(request.content_type) ||
        !SafeInHeader(*token)) {
      return Status::Error(request.method + " " + request.path +
                           ": a line break or space where none may be");
    }
    const std::string wire = Wire(request, *token);
    const auto deadline = SteadyClock::now() + request.timeout;
    // Twice at most: a kept connection the server had closed while it was
    // idle fails before any answer, and the request goes again on a new one.
    for (int attempt = 0; attempt < 2; ++attempt) {
      // The second attempt always on a new connection: the others kept may
      // be as dead as the first (the server restarted).
      std::unique_ptr<Conn> conn = attempt == 0 ? TakeIdle() : nullptr;
      const bool reused = conn != nullptr;
      std::string error;
      if (!conn) conn = Dial(request, deadline, &error);
      if (!conn) return Status::Error(error);
      Exchanged x;
      bool fired, timed_out;
      {
        SocketDeadlines::Guard guard(SocketDeadlines::Shared(), conn->socket.native_handle(),
                                     deadline, request.cancel);
        try {
          x = conn->tls ? Exchange(*conn->tls, conn->buffer, wire, options_.max_body)
                        : Exchange(conn->socket, conn->buffer, wire, options_.max_body);
        } catch (const std::exception& e) {
          x.error = e.what();
        }
        fired = guard.fired();
        timed_out = guard.timed_out();
      }
      if (x.response) {
        // Whole: an answer that came just as the deadline passed is still
        // the answer, but its connection, maybe shut down, is not kept.
        if (x.keep && !fired) Keep(std::move(conn));
        return std::move(*x.response);
      }
      if (fired) return Abandoned(request, timed_out);
      if (reused && !x.got_some) continue;
      return Status::Error(request.method + " " + request.path + ": " + x.error);
    }
    return Status::Error(request.method + " " + request.path +
                         ": the server closed two connections in a row without answering");
  }

  Result<HttpResponse> Stream(const HttpRequest& request,
                              const std::function<bool(std::string_view)>& on_line) override {
    if (!streams_) return Status::Error(request.method + " " + request.path + ": no stream here");
    return streams_->Stream(request, on_line);
  }

  Result<HttpResponse> StreamBody(const HttpRequest& request,
                                  const std::function<bool(std::string_view)>& on_chunk,
                                  bool* complete) override {
    if (complete) *complete = false;
    if (!streams_) return Status::Error(request.method + " " + request.path + ": no stream here");
    return streams_->StreamBody(request, on_chunk, complete);
  }

 private:
  // The request as it goes on the wire: one buffer, so one TLS record and
  // one send.
  std::string Wire(const HttpRequest& request, const std::string& token) const {
    std::string w;
    w.reserve(256 + request.path.size() + request.body.size());
    w += request.method;
    w += ' ';
    w += url_.prefix;
    w += request.path;
    w += " HTTP/1.1\r\nHost: ";
    w += url_.HostHeader();
    w += "\r\nAccept: application/json\r\nUser-Agent: ipguard\r\n";
    if (!token.empty()) {
      w += "Authorization: Bearer ";
      w += token;
      w += "\r\n";
    }
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
        request.method == "PATCH") {
      w += "Content-Type: ";
      w += request.content_type;
      w += "\r\nContent-Length: ";
      w += std::to_string(request.body.size());
      w += "\r\n";
    }
    w += "\r\n";
    w += request.body;
    return w;
  }

  // The most recently used idle connection that has not been idle too long
  // and that the server has not closed (or written to) meanwhile.
  std::unique_ptr<Conn> TakeIdle() {
    std::vector<std::unique_ptr<Conn>> stale;
    std::unique_ptr<Conn> out;
    {
      std::lock_guard<std::mutex> l(mu_);
      const auto oldest = SteadyClock::now() - options_.idle_for;
      while (!idle_.empty()) {
        std::unique_ptr<Conn> c = std::move(idle_.back());
        idle_.pop_back();
        if (c->idle_since >= oldest && Quiet(c->socket.native_handle())) {
          out = std::move(c);
          break;
        }
        stale.push_back(std::move(c));
      }
    }
    return out;  // `stale` closes outside the lock
  }

  // Whether nothing has arrived on an idle connection: a server that closed
  // it sent its FIN (and over TLS a close_notify first), and an idle HTTP/1.1
  // connection carries nothing else.
  static bool Quiet(int fd) {
    char byte;
    ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void Keep(std::unique_ptr<Conn> conn) {
    conn->idle_since = SteadyClock::now();
    std::lock_guard<std::mutex> l(mu_);
    if (idle_.size() < options_.max_idle) idle_.push_back(std::move(conn));
  }

  // A new connection, its TLS handshake done, within the request's deadline.
  std::unique_ptr<Conn> Dial(const HttpRequest& request, SteadyClock::time_point deadline,
                             std::string* error) {
    auto failed = [&](const std::string& what) {
      *error = request.method + " " + request.path + ": " + what;
      return nullptr;
    };
    try {
      auto conn = std::make_unique<Conn>();
      tcp::resolver resolver(conn->ioc);
      boost::system::error_code ec;
      auto endpoints = resolver.resolve(url_.host, url_.port, ec);
      if (ec) return failed("cannot resolve " + url_.host + ": " + ec.message());
      std::string last = "no address";
      for (const auto& endpoint : endpoints) {
        if (conn->socket.is_open()) conn->socket.close(ec);
        conn->socket.open(endpoint.endpoint().protocol(), ec);
        if (ec) return failed("socket: " + ec.message());
        SocketDeadlines::Guard guard(SocketDeadlines::Shared(), conn->socket.native_handle(),
                                     deadline, request.cancel);
        conn->socket.connect(endpoint.endpoint(), ec);
        const bool connected = !ec;
        if (connected) {
          boost::system::error_code ignored;  // a socket without it still works
          conn->socket.set_option(tcp::no_delay(true), ignored);
          if (url_.tls) {
            conn->tls.emplace(conn->socket, tls_);
            VerifyServerName(conn->tls->native_handle(), url_.host);
            conn->tls->handshake(ssl::stream_base::client, ec);
          }
        }
        if (guard.fired()) {
          *error = Abandoned(request, guard.timed_out()).message();
          return nullptr;
        }
        if (!ec) return conn;
        if (connected) return failed("TLS handshake: " + ec.message());
        last = "connect: " + ec.message();
      }
      return failed(last);
    } catch (const std::exception& e) {
      // Asio and OpenSSL report resource exhaustion by throwing.
      return failed(e.what());
    }
  }

  RestConfig config_;
  TokenSource tokens_;
  Transport* streams_;
  KeptTransportOptions options_;
  ServerUrl url_;
  ssl::context tls_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_;
};

}  // namespace

Result<std::unique_ptr<Transport>> NewKeptTransport(const RestConfig& config, Clock* clock,
                                                    Transport* streams,
                                                    KeptTransportOptions options) {
  auto url = ParseServer(config.server);
  if (!url.ok()) return url.status();
  auto t = std::make_unique<KeptTransport>(config, clock, streams, options, std::move(url).value());
  if (Status s = t->Init(); !s.ok()) return s;
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace ipguard::kube
