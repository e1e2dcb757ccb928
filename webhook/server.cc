#include "webhook/server.h"

#include <openssl/ssl.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <mutex>
#include <thread>
#include <vector>

namespace ipguard::webhook {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// TLS 1.2 suites with forward secrecy (ECDHE) and AEAD only; TLS 1.3's own
// suites are all AEAD and forward-secret already.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

constexpr char kPlainHttpOnTls[] =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Connection: close\r\n"
    "Content-Length: 48\r\n"
    "\r\n"
    "Client sent an HTTP request to an HTTPS server.\n";

struct FileStamp {
  bool exists = false;
  struct timespec mtime {};
  off_t size = 0;
  ino_t inode = 0;
  bool operator==(const FileStamp& o) const {
    return exists == o.exists && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec && size == o.size && inode == o.inode;
  }
};

FileStamp Stamp(const std::string& path) {
  struct stat st;
  FileStamp s;
  if (::stat(path.c_str(), &st) != 0) return s;
  s.exists = true;
  s.mtime = st.st_mtim;
  s.size = st.st_size;
  s.inode = st.st_ino;
  return s;
}

Result<std::shared_ptr<ssl::context>> LoadContext(const std::string& cert_file,
                                                  const std::string& key_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(
      native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return Status::Error("OpenSSL refused the cipher list");
  }
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) return Status::Error("cannot load certificate " + cert_file + ": " + ec.message());
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) return Status::Error("cannot load key " + key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(native) != 1) {
    return Status::Error("key " + key_file + " does not match certificate " + cert_file);
  }
  return ctx;
}

}  // namespace

class HttpServer::Impl {
 public:
  // One io_context per thread, each run by that thread alone, and every
  // connection pinned to one of them: no strands, no handler hopping
  // between threads, no cross-thread wakeups on the hot path (measured in
  // docs/performance.md).
  Impl(ServerOptions options, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        iocs_(MakeContexts(std::max(1, options_.threads))),
        acceptor_(*iocs_[0]),
        reload_timer_(*iocs_[0]) {}

  static std::vector<std::unique_ptr<asio::io_context>> MakeContexts(int n) {
    std::vector<std::unique_ptr<asio::io_context>> out;
    for (int i = 0; i < n; ++i) out.push_back(std::make_unique<asio::io_context>(1));
    return out;
  }

  Status Start() {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(options_.bind, ec);
    if (ec) return Status::Error("bad bind address \"" + options_.bind + "\": " + ec.message());
    tcp::endpoint ep(address, static_cast<unsigned short>(options_.port));
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::Error("cannot listen on " + options_.bind + ":" +
                           std::to_string(options_.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    if (options_.tls) {
      ReloadIfChanged();
      ScheduleReload();
    }
    Accept();
    for (auto& ioc : iocs_) {
      // Keeps run() going while a context has no connection yet.
      guards_.push_back(asio::make_work_guard(*ioc));
      threads_.emplace_back([c = ioc.get()] { c->run(); });
    }
    return Status::Ok();
  }

  void Stop(std::chrono::milliseconds grace) {
    if (stopped_.exchange(true) || threads_.empty()) return;
    asio::post(*iocs_[0], [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      reload_timer_.cancel();
    });
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (auto& ioc : iocs_) ioc->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  int port() const { return port_; }
  bool certificate_loaded() const {
    std::lock_guard<std::mutex> l(ctx_mu_);
    return ctx_ != nullptr;
  }
  int certificate_loads() const { return loads_.load(); }

  // Everything a connection needs from the server.
  const ServerOptions& options() const { return options_; }
  bool stopping() const { return stopped_.load(); }
  std::shared_ptr<ssl::context> Context() const {
    std::lock_guard<std::mutex> l(ctx_mu_);
    return ctx_;
  }
  ServerResponse Handle(const ServerRequest& r) {
    try {
      return handler_(r);
    } catch (const std::exception& e) {
      // A handler should never throw; if it does, the client still gets an
      // answer and the server keeps serving.
      return ServerResponse{500, "text/plain; charset=utf-8",
                            std::string("internal error: ") + e.what() + "\n"};
    }
  }
  std::atomic<int> in_flight_{0};

 private:
  void Accept();
  void ScheduleReload() {
    reload_timer_.expires_after(options_.reload_interval);
    reload_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopped_.load()) return;
      ReloadIfChanged();
      ScheduleReload();
    });
  }
  void ReloadIfChanged() {
    FileStamp c = Stamp(options_.cert_file), k = Stamp(options_.key_file);
    if (c == cert_stamp_ && k == key_stamp_) return;
    cert_stamp_ = c;
    key_stamp_ = k;
    if (!c.exists || !k.exists) return;
    auto ctx = LoadContext(options_.cert_file, options_.key_file);
    if (!ctx.ok()) {
      // Keep serving with the last good pair; a half-written pair is tried
      // again on the next change.
      if (options_.log) options_.log(ctx.error());
      cert_stamp_ = FileStamp{};
      return;
    }
    {
      std::lock_guard<std::mutex> l(ctx_mu_);
      ctx_ = *ctx;
    }
    loads_.fetch_add(1);
  }

  ServerOptions options_;
  Handler handler_;
  std::vector<std::unique_ptr<asio::io_context>> iocs_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  size_t next_ = 0;  // the context for the next connection (acceptor's thread only)
  tcp::acceptor acceptor_;
  asio::steady_timer reload_timer_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
  int port_ = 0;
  mutable std::mutex ctx_mu_;
  std::shared_ptr<ssl::context> ctx_;
  FileStamp cert_stamp_, key_stamp_;
  std::atomic<int> loads_{0};
};

namespace {

// One connection, plain or TLS. Keeps reading requests until the client
// closes, asks to close, times out, or the server stops.
template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  // `keep` holds what the stream needs alive (the TLS context it was made
  // from, which a certificate reload may replace).
  template <typename... Args>
  Session(HttpServer::Impl* server, std::shared_ptr<void> keep, beast::flat_buffer buffer,
          Args&&... args)
      : server_(server),
        keep_(std::move(keep)),
        stream_(std::forward<Args>(args)...),
        buffer_(std::move(buffer)) {}

  void Start() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      ReadHeader();
    } else {
      beast::get_lowest_layer(stream_).expires_after(server_->options().header_timeout);
      stream_.async_handshake(
          ssl::stream_base::server, buffer_.data(),
          [self = this->shared_from_this()](boost::system::error_code ec, size_t used) {
            if (ec) return self->Close();
            self->buffer_.consume(used);
            self->ReadHeader();
          });
    }
  }

 private:
  void ReadHeader() {
    if (server_->stopping()) return Close();
    parser_.emplace();
    parser_->body_limit(server_->options().max_body);
    beast::get_lowest_layer(stream_).expires_after(server_->options().header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](boost::system::error_code ec,
                                                              size_t) { self->OnHeader(ec); });
  }

  // A request that is not HTTP (rather than a connection that ended or
  // timed out) gets told so before the connection closes.
  static bool IsParseError(boost::system::error_code ec) {
    return ec.category() == http::make_error_code(http::error::bad_target).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message;
  }

  void OnHeader(boost::system::error_code ec) {
    if (ec == http::error::body_limit) return Refuse(413, "request body larger than the limit");
    if (ec == http::error::header_limit) return Refuse(431, "request headers too large");
    if (ec) {
      if (IsParseError(ec)) return Refuse(400, "malformed HTTP request: " + ec.message());
      return Close();
    }
    in_flight_ = true;
    server_->in_flight_.fetch_add(1);
    beast::get_lowest_layer(stream_).expires_after(server_->options().body_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](boost::system::error_code ec2, size_t) {
                       self->OnBody(ec2);
                     });
  }

  void OnBody(boost::system::error_code ec) {
    if (ec == http::error::body_limit) return Refuse(413, "request body larger than the limit");
    if (ec) {
      if (IsParseError(ec)) return Refuse(400, "malformed HTTP request: " + ec.message());
      return Close();
    }
    auto& req = parser_->get();
    ServerRequest in;
    in.method = std::string(req.method_string());
    in.target = std::string(req.target());
    in.content_type = std::string(req[http::field::content_type]);
    in.body = std::move(req.body());
    ServerResponse out = server_->Handle(in);
    bool keep_alive = req.keep_alive() && !server_->stopping();
    Respond(out.status, out.content_type, std::move(out.body), keep_alive);
  }

  void Refuse(int status, const std::string& why) {
    if (!in_flight_) {
      in_flight_ = true;
      server_->in_flight_.fetch_add(1);
    }
    Respond(status, "text/plain; charset=utf-8", why + "\n", false);
  }

  // The whole response goes out as one buffer: one TLS record and one
  // send, where writing the header and body apart would cost two of each.
  void Respond(int status, const std::string& content_type, std::string body, bool keep_alive) {
    out_.clear();
    out_.reserve(body.size() + 160);
    out_ += "HTTP/1.1 ";
    out_ += std::to_string(status);
    out_ += ' ';
    out_ += std::string(http::obsolete_reason(static_cast<http::status>(status)));
    out_ += "\r\nServer: ipguard\r\nContent-Type: ";
    out_ += content_type;
    out_ += "\r\nContent-Length: ";
    out_ += std::to_string(body.size());
    out_ += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
    out_ += body;
    beast::get_lowest_layer(stream_).expires_after(server_->options().body_timeout);
    asio::async_write(
        stream_, asio::buffer(out_),
        [self = this->shared_from_this(), keep_alive](boost::system::error_code ec, size_t) {
          self->Finished();
          if (ec || !keep_alive) return self->Close();
          self->ReadHeader();
        });
  }

  void Finished() {
    if (in_flight_) {
      in_flight_ = false;
      server_->in_flight_.fetch_sub(1);
    }
  }

  void Close() {
    Finished();
    boost::system::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(stream_).close();
  }

  HttpServer::Impl* server_;
  std::shared_ptr<void> keep_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string out_;  // the response being written
  bool in_flight_ = false;
};

// Looks at the first bytes of a connection on the TLS port: a TLS hello
// goes on to the handshake, anything else gets a plain-text 400.
class Detector : public std::enable_shared_from_this<Detector> {
 public:
  Detector(HttpServer::Impl* server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)) {}

  void Start() {
    stream_.expires_after(server_->options().header_timeout);
    beast::async_detect_ssl(stream_, buffer_,
                            [self = shared_from_this()](boost::system::error_code ec, bool is_tls) {
                              self->OnDetect(ec, is_tls);
                            });
  }

 private:
  void OnDetect(boost::system::error_code ec, bool is_tls) {
    if (ec) return;
    if (!is_tls) {
      auto self = shared_from_this();
      asio::async_write(stream_, asio::buffer(kPlainHttpOnTls, sizeof(kPlainHttpOnTls) - 1),
                        [self](boost::system::error_code, size_t) {
                          boost::system::error_code ignored;
                          self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
                          self->stream_.close();
                        });
      return;
    }
    auto ctx = server_->Context();
    if (!ctx) return;  // no certificate yet: refuse by closing
    std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
        server_, ctx, std::move(buffer_), std::move(stream_), *ctx)
        ->Start();
  }

  HttpServer::Impl* server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

}  // namespace

void HttpServer::Impl::Accept() {
  asio::io_context& next = *iocs_[next_++ % iocs_.size()];
  acceptor_.async_accept(next,
                         [this](boost::system::error_code ec, tcp::socket socket) {
                           if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
                           if (!ec) {
                             boost::system::error_code ignored;
                             socket.set_option(tcp::no_delay(true), ignored);
                             if (options_.tls) {
                               std::make_shared<Detector>(this, std::move(socket))->Start();
                             } else {
                               std::make_shared<Session<beast::tcp_stream>>(
                                   this, nullptr, beast::flat_buffer(), std::move(socket))
                                   ->Start();
                             }
                           }
                           Accept();
                         });
}

HttpServer::HttpServer(ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}
HttpServer::~HttpServer() { Stop(std::chrono::milliseconds(0)); }
Status HttpServer::Start() { return impl_->Start(); }
void HttpServer::Stop(std::chrono::milliseconds grace) { impl_->Stop(grace); }
int HttpServer::port() const { return impl_->port(); }
bool HttpServer::certificate_loaded() const { return impl_->certificate_loaded(); }
int HttpServer::certificate_loads() const { return impl_->certificate_loads(); }

}  // namespace ipguard::webhook
