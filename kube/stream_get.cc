#include "kube/stream_get.h"

#include "kube/tls_dial.h"

#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <limits>

namespace ipguard::kube {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

template <typename Stream>
Result<HttpResponse> Exchange(Stream& stream, const ServerUrl& url, const std::string& token,
                              const HttpRequest& request,
                              const std::function<bool(std::string_view)>& on_chunk,
                              bool* complete) {
  boost::system::error_code ec;
  http::request<http::empty_body> req{http::verb::get, url.prefix + request.path, 11};
  req.set(http::field::host, url.HostHeader());
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
  for (const auto& field : parser.get()) out.SetHeader(std::string(field.name_string()), std::string(field.value()));
  const bool ok = out.status >= 200 && out.status < 300;
  char piece[64 * 1024];
  while (!parser.is_done()) {
    parser.get().body().data = piece;
    parser.get().body().size = sizeof(piece);
    // What has arrived, not a full piece: a watch's events come one by one.
    http::read_some(stream, buffer, parser, ec);
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
    SocketDeadlines::Guard watchdog(SocketDeadlines::Shared(), tcp_stream.socket().native_handle(),
                                    deadline, request.cancel);
    auto failed = [&](const std::string& what) -> Result<HttpResponse> {
      if (watchdog.fired()) return Abandoned(request, watchdog.timed_out());
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
      ConfigureClientTls(ctx, config);
      beast::ssl_stream<beast::tcp_stream&> stream(tcp_stream, ctx);
      VerifyServerName(stream.native_handle(), url->host);
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

Result<HttpResponse> StreamGetLines(const RestConfig& config, const std::string& token,
                                    const HttpRequest& request,
                                    const std::function<bool(std::string_view line)>& on_line) {
  // Holds one partial line at a time, never the stream.
  std::string pending;
  bool stopped = false, too_long = false;
  auto r = StreamGet(
      config, token, request,
      [&](std::string_view piece) {
        pending.append(piece);
        size_t start = 0;
        for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
          std::string_view line(pending.data() + start, nl - start);
          if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
          if (line.empty()) continue;
          if (!on_line(line)) {
            stopped = true;
            return false;
          }
        }
        pending.erase(0, start);
        if (pending.size() > kMaxStreamLine) {
          too_long = true;
          return false;
        }
        return true;
      },
      nullptr);
  if (too_long) {
    return Status::Error("GET " + request.path + ": a line of the stream is over " +
                         std::to_string(kMaxStreamLine >> 20) + " MB");
  }
  if (r.ok() && !stopped && r->status >= 200 && r->status < 300 && !pending.empty()) {
    on_line(pending);
  }
  return r;
}

}  // namespace ipguard::kube
