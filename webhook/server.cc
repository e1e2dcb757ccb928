#include "webhook/server.h"

#include <openssl/ssl.h>
#include <sys/stat.h>

#include <algorithm>
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

constexpr char k100Continue[] = "HTTP/1.1 100 Continue\r\n\r\n";

Result<std::shared_ptr<ssl::context>> LoadContext(const std::string& cert_file,
                                                  const std::string& key_file,
                                                  const std::string& client_ca_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(
      native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // An idle connection gives its read and write buffers (about 34 KB) back.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  // No session is kept for resumption: the API server's client keeps no
  // session cache and handshakes in full on every connection, so a TLS 1.3
  // session ticket (two by default, each encrypted and sent after the
  // handshake) or a TLS 1.2 session held in the server's cache would be work
  // and memory spent for nobody, at the bidding of whoever connects.
  SSL_CTX_set_num_tickets(native, 0);
  SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
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
  if (!client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(native, client_ca_file.c_str(), nullptr) != 1) {
      return Status::Error("cannot load client CA " + client_ca_file);
    }
    // The CertificateRequest names these CAs, so that a client with several
    // certificates (Go's) picks the one they signed.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_ca_file.c_str());
    if (!names) return Status::Error("no CA certificate in " + client_ca_file);
    SSL_CTX_set_client_CA_list(native, names);
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
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
  Impl(ServerOptions options, AsyncHandler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        life_(std::make_shared<Life>()),
        iocs_(MakeContexts(std::max(1, options_.threads))),
        acceptor_(*iocs_[0]),
        reload_timer_(*iocs_[0]),
        accept_timer_(*iocs_[0]) {}

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
    // Asio makes a context's reactor (an epoll and an eventfd descriptor) on
    // its first socket. Made here, while descriptors are at hand: made later
    // for the first accepted connection, when the process may be out of
    // them, it would throw out of run().
    for (auto& ioc : iocs_) {
      tcp::socket probe(*ioc);
      probe.open(ep.protocol(), ec);
      if (ec) return Status::Error("cannot open a socket: " + ec.message());
    }
    Accept();
    for (auto& ioc : iocs_) {
      // Keeps run() going while a context has no connection yet.
      guards_.push_back(asio::make_work_guard(*ioc));
      threads_.emplace_back([this, c = ioc.get()] { Run(c); });
    }
    return Status::Ok();
  }

  void Stop(std::chrono::milliseconds grace) {
    if (stopped_.exchange(true) || threads_.empty()) return;
    asio::post(*iocs_[0], [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      reload_timer_.cancel();
      accept_timer_.cancel();
    });
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (auto& ioc : iocs_) ioc->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    // An answer that comes from now on has nowhere to go; the sessions that
    // wait for one go now, while the contexts their streams use exist.
    std::vector<std::shared_ptr<void>> sessions;
    {
      std::lock_guard<std::mutex> l(life_->mu);
      life_->alive = false;
      for (auto& weak : life_->waiting) {
        if (auto w = weak.lock()) {
          std::lock_guard<std::mutex> wl(w->mu);
          sessions.push_back(std::move(w->session));
        }
      }
      life_->waiting.clear();
    }
    sessions.clear();
  }

  int port() const { return port_; }
  bool certificate_loaded() const {
    std::lock_guard<std::mutex> l(ctx_mu_);
    return ctx_ != nullptr;
  }
  int certificate_loads() const { return loads_.load(); }
  ServerStats stats() const {
    ServerStats s;
    s.connections = connections_.load();
    s.connections_accepted = connections_accepted_.load();
    s.connections_refused = connections_refused_.load();
    s.accept_errors = accept_errors_.load();
    s.pending_body_bytes = pending_body_bytes_.load();
    s.requests_refused_busy = requests_refused_busy_.load();
    s.handshakes_failed = handshakes_failed_.load();
    return s;
  }

  // Takes `bytes` of the body budget; false (nothing taken) when they would
  // pass max_pending_body_bytes.
  bool ReserveBody(size_t bytes) {
    int64_t n = static_cast<int64_t>(bytes);
    if (pending_body_bytes_.fetch_add(n) + n >
        static_cast<int64_t>(options_.max_pending_body_bytes)) {
      pending_body_bytes_.fetch_sub(n);
      requests_refused_busy_.fetch_add(1);
      return false;
    }
    return true;
  }
  void ReleaseBody(size_t bytes) { pending_body_bytes_.fetch_sub(static_cast<int64_t>(bytes)); }
  void HandshakeFailed() { handshakes_failed_.fetch_add(1); }

  // Everything a connection needs from the server.
  const ServerOptions& options() const { return options_; }
  bool stopping() const { return stopped_.load(); }
  std::shared_ptr<ssl::context> Context() const {
    std::lock_guard<std::mutex> l(ctx_mu_);
    return ctx_;
  }
  // Whether the server can still take an answer: a Reply that outlives
  // the server (held by a thread writing to the API server) finds it gone
  // and does nothing.
  // A request whose answer is still to come, holding its session.
  struct Waiting {
    std::atomic<bool> answered{false};
    std::mutex mu;
    std::shared_ptr<void> session;
  };
  struct Life {
    std::mutex mu;
    bool alive = true;
    std::vector<std::weak_ptr<Waiting>> waiting;
  };
  const std::shared_ptr<Life>& life() const { return life_; }
  // Keeps track of `w` until Stop(), which lets go of its session.
  void Wait(const std::shared_ptr<Waiting>& w) {
    std::lock_guard<std::mutex> l(life_->mu);
    if (!life_->alive) return;
    auto& list = life_->waiting;
    if (list.size() >= 64 && list.size() == list.capacity()) {
      list.erase(std::remove_if(list.begin(), list.end(),
                                [](const std::weak_ptr<Waiting>& x) { return x.expired(); }),
                 list.end());
    }
    list.push_back(w);
  }

  // Runs the handler; `reply` is called once, by the handler or here.
  void Handle(const ServerRequest& r, Reply reply) {
    try {
      handler_(r, reply);
    } catch (const std::exception& e) {
      // A handler should never throw; if it does, the client still gets an
      // answer (unless the handler answered first) and the server keeps
      // serving.
      reply(ServerResponse{500, "text/plain; charset=utf-8",
                           std::string("internal error: ") + e.what() + "\n"});
    }
  }
  std::atomic<int> in_flight_{0};

  // Counts one open connection for as long as a session holds it.
  struct Slot {
    explicit Slot(Impl* s) : server(s) { server->connections_.fetch_add(1); }
    ~Slot() { server->connections_.fetch_sub(1); }
    Impl* server;
  };

 private:
  // Declared before the io_contexts, so that they outlive the sessions those
  // still hold when the server is destroyed.
  std::atomic<int64_t> connections_{0};
  std::atomic<int64_t> connections_accepted_{0};
  std::atomic<int64_t> connections_refused_{0};
  std::atomic<int64_t> accept_errors_{0};
  std::atomic<int64_t> pending_body_bytes_{0};
  std::atomic<int64_t> requests_refused_busy_{0};
  std::atomic<int64_t> handshakes_failed_{0};

  void Accept();
  void OnAccepted(tcp::socket socket);
  // Runs one context until Stop(). What a handler throws (Asio itself
  // throws when the system is out of resources) is logged and the context
  // goes on: the server never takes the process down.
  void Run(asio::io_context* c) {
    for (;;) {
      try {
        c->run();
        return;
      } catch (const std::exception& e) {
        if (options_.log) options_.log(std::string("server thread: ") + e.what());
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  void ScheduleReload() {
    reload_timer_.expires_after(options_.reload_interval);
    reload_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopped_.load()) return;
      ReloadIfChanged();
      ScheduleReload();
    });
  }
  void ReloadIfChanged() {
    FileStamp c = Stamp(options_.cert_file), k = Stamp(options_.key_file),
              a = options_.client_ca_file.empty() ? FileStamp{} : Stamp(options_.client_ca_file);
    if (c == cert_stamp_ && k == key_stamp_ && a == client_ca_stamp_) return;
    cert_stamp_ = c;
    key_stamp_ = k;
    client_ca_stamp_ = a;
    if (!c.exists || !k.exists) return;
    auto ctx = LoadContext(options_.cert_file, options_.key_file, options_.client_ca_file);
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
  AsyncHandler handler_;
  std::shared_ptr<Life> life_;
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
  FileStamp cert_stamp_, key_stamp_, client_ca_stamp_;
  asio::steady_timer accept_timer_;
  std::chrono::milliseconds accept_backoff_{0};  // acceptor's thread only
  std::atomic<int> loads_{0};
};

namespace {

// One connection, plain or TLS. Keeps reading requests until the client
// closes, asks to close, times out, or the server stops.
template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  // `keep` holds what the stream needs alive (the TLS context it was made
  // from, which a certificate reload may replace); `slot` counts the
  // connection while the session lives.
  template <typename... Args>
  Session(HttpServer::Impl* server, std::shared_ptr<void> keep,
          std::shared_ptr<HttpServer::Impl::Slot> slot, beast::flat_buffer buffer, Args&&... args)
      : server_(server),
        keep_(std::move(keep)),
        slot_(std::move(slot)),
        stream_(std::forward<Args>(args)...),
        buffer_(std::move(buffer)) {}

  ~Session() { ReleaseBody(); }

  void Start() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      ReadHeader();
    } else {
      beast::get_lowest_layer(stream_).expires_after(server_->options().handshake_timeout);
      stream_.async_handshake(
          ssl::stream_base::server, buffer_.data(),
          [self = this->shared_from_this()](boost::system::error_code ec, size_t used) {
            if (ec) {
              self->server_->HandshakeFailed();
              return self->Close();
            }
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
    // What a large request left behind is not kept while the connection
    // idles.
    if (buffer_.size() == 0 && buffer_.capacity() > kKeptBuffer) buffer_ = beast::flat_buffer();
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
    // The body's buffer is reserved at its Content-Length as it is read:
    // count it against the server-wide budget first.
    auto length = parser_->content_length();
    size_t want = length ? static_cast<size_t>(*length)
                         : (parser_->chunked() ? server_->options().max_body : 0);
    if (want > 0) {
      if (!server_->ReserveBody(want)) {
        return Refuse(503, "the server is busy receiving other requests; try again",
                      {{"Retry-After", "1"}});
      }
      reserved_ = want;
    }
    beast::get_lowest_layer(stream_).expires_after(server_->options().body_timeout);
    const auto& req = parser_->get();
    if (want > 0 && beast::iequals(req[http::field::expect], "100-continue")) {
      asio::async_write(stream_, asio::buffer(k100Continue, sizeof(k100Continue) - 1),
                        [self = this->shared_from_this()](boost::system::error_code ec2, size_t) {
                          if (ec2) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                       self->OnBody(ec);
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
    bool keep_alive = req.keep_alive() && !server_->stopping();
    bool head = req.method() == http::verb::head;
    parser_.reset();
    ReleaseBody();
    // The answer goes out on this connection's thread: in place when the
    // handler answers there, posted to it when the answer comes from
    // another thread. Until then the session is kept by `waiting`, which
    // the server empties when it stops, so a Reply held past the server's
    // life keeps nothing of it alive.
    auto waiting = std::make_shared<HttpServer::Impl::Waiting>();
    waiting->session = this->shared_from_this();
    auto reply = [waiting, life = server_->life(), keep_alive, head](ServerResponse out) {
      if (waiting->answered.exchange(true)) return;
      auto respond = [keep_alive, head](const std::shared_ptr<Session>& self, ServerResponse& o) {
        self->Respond(o.status, o.content_type, std::move(o.body), keep_alive, o.headers, head);
      };
      std::shared_ptr<void> held;
      {
        std::lock_guard<std::mutex> l(waiting->mu);
        held = std::move(waiting->session);
      }
      if (!held) return;
      auto self = std::static_pointer_cast<Session>(std::move(held));
      auto executor = self->stream_.get_executor();
      auto& ioc = static_cast<asio::io_context&>(asio::query(executor, asio::execution::context));
      if (ioc.get_executor().running_in_this_thread()) return respond(self, out);
      std::lock_guard<std::mutex> l(life->mu);
      if (!life->alive) {
        // Stopped: let the session go while the server's contexts, which
        // its stream belongs to, still exist (Stop() waits for this lock).
        self.reset();
        return;
      }
      asio::post(executor, [self, out = std::move(out), respond]() mutable { respond(self, out); });
    };
    server_->Handle(in, std::move(reply));
    if (!waiting->answered.load()) server_->Wait(waiting);
  }

  void Refuse(int status, const std::string& why,
              const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    if (!in_flight_) {
      in_flight_ = true;
      server_->in_flight_.fetch_add(1);
    }
    ReleaseBody();
    Respond(status, "text/plain; charset=utf-8", why + "\n", false, headers, false);
  }

  // The whole response goes out as one buffer: one TLS record and one
  // send, where writing the header and body apart would cost two of each.
  // A HEAD request gets the same header lines without the body.
  void Respond(int status, const std::string& content_type, std::string body, bool keep_alive,
               const std::vector<std::pair<std::string, std::string>>& headers, bool head) {
    out_.clear();
    out_.reserve((head ? 0 : body.size()) + 160);
    out_ += "HTTP/1.1 ";
    out_ += std::to_string(status);
    out_ += ' ';
    out_ += std::string(http::obsolete_reason(static_cast<http::status>(status)));
    out_ += "\r\nServer: ipguard\r\nContent-Type: ";
    out_ += content_type;
    for (const auto& [name, value] : headers) {
      out_ += "\r\n";
      out_ += name;
      out_ += ": ";
      out_ += value;
    }
    out_ += "\r\nContent-Length: ";
    out_ += std::to_string(body.size());
    out_ += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
    if (!head) out_ += body;
    body = std::string();
    beast::get_lowest_layer(stream_).expires_after(server_->options().body_timeout);
    asio::async_write(
        stream_, asio::buffer(out_),
        [self = this->shared_from_this(), keep_alive](boost::system::error_code ec, size_t) {
          self->Finished();
          if (self->out_.capacity() > kKeptBuffer) self->out_ = std::string();
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

  void ReleaseBody() {
    if (reserved_) server_->ReleaseBody(reserved_);
    reserved_ = 0;
  }

  void Close() {
    Finished();
    ReleaseBody();
    boost::system::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(stream_).close();
  }

  // Buffers up to this size stay with the connection between requests.
  static constexpr size_t kKeptBuffer = 16 * 1024;

  HttpServer::Impl* server_;
  std::shared_ptr<void> keep_;
  std::shared_ptr<HttpServer::Impl::Slot> slot_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string out_;  // the response being written
  bool in_flight_ = false;
  size_t reserved_ = 0;  // bytes of the body budget this request holds
};

// Looks at the first bytes of a connection on the TLS port: a TLS hello
// goes on to the handshake, anything else gets a plain-text 400.
class Detector : public std::enable_shared_from_this<Detector> {
 public:
  Detector(HttpServer::Impl* server, std::shared_ptr<HttpServer::Impl::Slot> slot,
           tcp::socket socket)
      : server_(server), slot_(std::move(slot)), stream_(std::move(socket)) {}

  void Start() {
    stream_.expires_after(server_->options().handshake_timeout);
    beast::async_detect_ssl(stream_, buffer_,
                            [self = shared_from_this()](boost::system::error_code ec, bool is_tls) {
                              self->OnDetect(ec, is_tls);
                            });
  }

 private:
  void OnDetect(boost::system::error_code ec, bool is_tls) {
    if (ec) return server_->HandshakeFailed();
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
    if (!ctx) return server_->HandshakeFailed();  // no certificate yet: refuse by closing
    std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
        server_, ctx, std::move(slot_), std::move(buffer_), std::move(stream_), *ctx)
        ->Start();
  }

  HttpServer::Impl* server_;
  std::shared_ptr<HttpServer::Impl::Slot> slot_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

// accept() errors that mean "no resources now": retrying at once would only
// spin.
bool OutOfResources(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category()) return false;
  int v = ec.value();
  return v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM;
}

}  // namespace

void HttpServer::Impl::Accept() {
  asio::io_context& next = *iocs_[next_++ % iocs_.size()];
  acceptor_.async_accept(next, [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      accept_errors_.fetch_add(1);
      if (OutOfResources(ec)) {
        // The connection stays in the kernel's backlog until descriptors
        // come back; look again after a while, longer each time.
        accept_backoff_ = std::min(std::chrono::milliseconds(1000),
                                   std::max(std::chrono::milliseconds(10), accept_backoff_ * 2));
        accept_timer_.expires_after(accept_backoff_);
        accept_timer_.async_wait([this](boost::system::error_code tec) {
          if (!tec && !stopped_.load()) Accept();
        });
        return;
      }
    } else {
      accept_backoff_ = std::chrono::milliseconds(0);
      OnAccepted(std::move(socket));
    }
    Accept();
  });
}

void HttpServer::Impl::OnAccepted(tcp::socket socket) {
  boost::system::error_code ignored;
  if (static_cast<size_t>(connections_.load()) >= options_.max_connections) {
    connections_refused_.fetch_add(1);
    socket.close(ignored);
    return;
  }
  socket.set_option(tcp::no_delay(true), ignored);
  connections_accepted_.fetch_add(1);
  auto slot = std::make_shared<Slot>(this);
  if (options_.tls) {
    std::make_shared<Detector>(this, std::move(slot), std::move(socket))->Start();
  } else {
    std::make_shared<Session<beast::tcp_stream>>(this, nullptr, std::move(slot),
                                                 beast::flat_buffer(), std::move(socket))
        ->Start();
  }
}

HttpServer::HttpServer(ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options),
                                   [h = std::move(handler)](const ServerRequest& r, Reply reply) {
                                     reply(h(r));
                                   })) {}
HttpServer::HttpServer(ServerOptions options, AsyncHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}
HttpServer::~HttpServer() { Stop(std::chrono::milliseconds(0)); }
Status HttpServer::Start() { return impl_->Start(); }
void HttpServer::Stop(std::chrono::milliseconds grace) { impl_->Stop(grace); }
int HttpServer::port() const { return impl_->port(); }
bool HttpServer::certificate_loaded() const { return impl_->certificate_loaded(); }
int HttpServer::certificate_loads() const { return impl_->certificate_loads(); }
ServerStats HttpServer::stats() const { return impl_->stats(); }

}  // namespace ipguard::webhook
