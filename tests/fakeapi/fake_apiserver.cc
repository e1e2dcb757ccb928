#include "fakeapi/fake_apiserver.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "core/json_util.h"
#include "core/kinds.h"

namespace ipguard::fakeapi {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// Watch replay keeps this many events per resource; a watcher further
// behind gets 410, as from a real server's watch cache.
constexpr size_t kHistoryLimit = 100000;
constexpr int64_t kInitialResourceVersion = 1000;
// The request log forgets its oldest entries beyond this, so that a long
// benchmark run does not grow without bound.
constexpr size_t kRequestLogLimit = 200000;
// Bodies larger than this are refused; kube-apiserver's limit is 3 MiB per
// object, so this only guards against garbage.
constexpr uint64_t kBodyLimit = 64 << 20;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string ReasonFor(int code) {
  switch (code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 409:
      return "Conflict";
    case 410:
      return "Expired";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return "Unknown";
  }
}

json StatusObject(int code, const std::string& reason, const std::string& message) {
  return json{{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
              {"status", "Failure"}, {"message", message}, {"reason", reason},
              {"code", code}};
}

std::string Rfc3339Now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Go's url.QueryUnescape: "+" is a space in a query, a malformed escape is
// kept as text rather than refused (the fake should not be stricter than
// needed).
std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += (plus_is_space && s[i] == '+') ? ' ' : s[i];
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string key = PercentDecode(part.substr(0, eq), true);
    std::string value =
        eq == std::string_view::npos ? "" : PercentDecode(part.substr(eq + 1), true);
    out.emplace(std::move(key), std::move(value));  // the first value wins, as in Go
  }
  return out;
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view seg = path.substr(0, slash);
    if (!seg.empty()) out.push_back(PercentDecode(seg, false));
    if (slash == std::string_view::npos) break;
    path = path.substr(slash + 1);
  }
  return out;
}

bool ParseInt64(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

bool IsTrue(const std::map<std::string, std::string>& params, const char* key) {
  auto it = params.find(key);
  return it != params.end() && (it->second == "true" || it->second == "1");
}

std::string Param(const std::map<std::string, std::string>& params, const char* key) {
  auto it = params.find(key);
  return it == params.end() ? "" : it->second;
}

// Continue tokens are opaque to clients; base64url keeps them free of
// characters that need escaping in a query.
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kBase64Url[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kBase64Url[(acc << (6 - bits)) & 63];
  return out;
}

bool Base64UrlDecode(std::string_view in, std::string* out) {
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const char* p = std::strchr(kBase64Url, c);
    if (c == '\0' || p == nullptr) return false;
    acc = (acc << 6) | static_cast<uint32_t>(p - kBase64Url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return true;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// A label or field selector: comma-separated requirements, all of which
// must hold. Supports =, ==, !=, in (...), notin (...), key and !key.
class Selector {
 public:
  // `fields`: keys are dotted paths into the object (fieldSelector), not
  // label names.
  bool Parse(const std::string& text, bool fields) {
    fields_ = fields;
    std::vector<std::string> parts;
    int depth = 0;
    std::string cur;
    for (char c : text) {
      if (c == '(') ++depth;
      if (c == ')') --depth;
      if (c == ',' && depth == 0) {
        parts.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    parts.push_back(cur);
    for (const std::string& raw : parts) {
      std::string p = Trim(raw);
      if (p.empty()) continue;
      Term t;
      size_t pos;
      if ((pos = p.find("!=")) != std::string::npos) {
        t.op = Op::kNotEqual;
        t.key = Trim(p.substr(0, pos));
        t.values = {Trim(p.substr(pos + 2))};
      } else if ((pos = p.find("==")) != std::string::npos) {
        t.op = Op::kEqual;
        t.key = Trim(p.substr(0, pos));
        t.values = {Trim(p.substr(pos + 2))};
      } else if ((pos = p.find('=')) != std::string::npos) {
        t.op = Op::kEqual;
        t.key = Trim(p.substr(0, pos));
        t.values = {Trim(p.substr(pos + 1))};
      } else if ((pos = p.find(" notin ")) != std::string::npos ||
                 (pos = p.find(" in ")) != std::string::npos) {
        bool notin = p.compare(pos, 7, " notin ") == 0;
        t.op = notin ? Op::kNotIn : Op::kIn;
        t.key = Trim(p.substr(0, pos));
        std::string set = Trim(p.substr(pos + (notin ? 7 : 4)));
        if (set.size() < 2 || set.front() != '(' || set.back() != ')') return false;
        std::string item;
        for (char c : set.substr(1, set.size() - 2) + ",") {
          if (c == ',') {
            t.values.push_back(Trim(item));
            item.clear();
          } else {
            item += c;
          }
        }
      } else if (p[0] == '!') {
        t.op = Op::kNotExists;
        t.key = Trim(p.substr(1));
      } else {
        t.op = Op::kExists;
        t.key = p;
      }
      if (t.key.empty() || t.key.find_first_of(" ()!") != std::string::npos) return false;
      terms_.push_back(std::move(t));
    }
    return true;
  }

  bool Matches(const json& obj) const {
    for (const Term& t : terms_) {
      std::optional<std::string> v = Value(obj, t.key);
      bool in = v && std::find(t.values.begin(), t.values.end(), *v) != t.values.end();
      switch (t.op) {
        case Op::kEqual:
        case Op::kIn:
          if (!in) return false;
          break;
        case Op::kNotEqual:
        case Op::kNotIn:
          if (in) return false;  // a missing key satisfies != and notin
          break;
        case Op::kExists:
          if (!v) return false;
          break;
        case Op::kNotExists:
          if (v) return false;
          break;
      }
    }
    return true;
  }

 private:
  enum class Op { kEqual, kNotEqual, kIn, kNotIn, kExists, kNotExists };
  struct Term {
    std::string key;
    Op op = Op::kEqual;
    std::vector<std::string> values;
  };

  std::optional<std::string> Value(const json& obj, const std::string& key) const {
    const json* v = &obj;
    if (!fields_) {
      auto m = obj.find("metadata");
      if (m == obj.end() || !m->is_object()) return std::nullopt;
      auto labels = m->find("labels");
      if (labels == m->end() || !labels->is_object()) return std::nullopt;
      auto l = labels->find(key);
      if (l == labels->end() || !l->is_string()) return std::nullopt;
      return l->get<std::string>();
    }
    size_t start = 0;
    while (start <= key.size()) {
      size_t dot = key.find('.', start);
      std::string part =
          key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (!v->is_object()) return std::nullopt;
      auto it = v->find(part);
      if (it == v->end()) return std::nullopt;
      v = &*it;
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (v->is_string()) return v->get<std::string>();
    if (v->is_boolean()) return v->get<bool>() ? "true" : "false";
    if (v->is_number()) return v->dump();
    return std::nullopt;
  }

  bool fields_ = false;
  std::vector<Term> terms_;
};

// The part of an object whose change bumps metadata.generation.
json SpecPart(const json& obj) {
  json out = obj;
  if (out.is_object()) {
    out.erase("metadata");
    out.erase("status");
    out.erase("kind");
    out.erase("apiVersion");
  }
  return out;
}

std::string MetaString(const json& obj, const char* key) {
  return JsonString(obj, "metadata", key);
}

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  int retry_after = 0;
};

Reply JsonReply(int status, const json& body) { return Reply{status, Dump(body) + "\n"}; }

bool IsDnsSubdomain(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : name) {
    if (!alnum(c) && c != '-' && c != '.') return false;
  }
  return alnum(name.front()) && alnum(name.back());
}

Reply ErrorReply(int code, const std::string& message, std::string reason = "") {
  if (reason.empty()) reason = ReasonFor(code);
  return JsonReply(code, StatusObject(code, reason, message));
}

}  // namespace

class FakeApiServer::Impl {
 public:
  explicit Impl(FakeApiOptions options) : options_(std::move(options)), acceptor_(io_) {
    std::random_device rd;
    rng_.seed((static_cast<uint64_t>(rd()) << 32) ^ rd());
  }
  ~Impl() { Stop(); }

  Status Start();
  void Stop();
  int port() const {
    std::lock_guard<std::mutex> l(mu_);
    return port_;
  }
  std::string url() const {
    return std::string(options_.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port());
  }

  void AddResource(const std::string& group, const std::string& version, const std::string& plural,
                   const std::string& kind, bool namespaced);
  json Upsert(const std::string& plural, json obj);
  bool Remove(const std::string& plural, const std::string& ns, const std::string& name);
  std::optional<json> Get(const std::string& plural, const std::string& ns,
                          const std::string& name) const;
  std::vector<json> List(const std::string& plural) const;
  int64_t resource_version() const {
    std::lock_guard<std::mutex> l(mu_);
    return rv_;
  }

  void DropWatches();
  void FailNext(int n, int code, int retry_after_seconds) {
    std::lock_guard<std::mutex> l(mu_);
    fail_remaining_ = n;
    fail_code_ = code;
    fail_retry_after_ = retry_after_seconds;
  }
  void FailMatching(const std::string& method, const std::string& path_substring, int code,
                    const std::string& reason, const std::string& message) {
    std::lock_guard<std::mutex> l(mu_);
    fail_matching_ = {method, path_substring, code, reason, message};
  }
  void SetDelay(std::chrono::milliseconds d) {
    std::lock_guard<std::mutex> l(mu_);
    delay_ = d;
  }
  void Compact() {
    std::lock_guard<std::mutex> l(mu_);
    compacted_rv_ = rv_;
  }
  void Restart();

  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> l(mu_);
    return std::vector<Request>(requests_.begin(), requests_.end());
  }
  size_t CountRequests(const std::string& method, const std::string& path_substring) const;
  size_t open_watches() const {
    std::lock_guard<std::mutex> l(mu_);
    return open_watches_;
  }
  size_t connections_accepted() const {
    std::lock_guard<std::mutex> l(mu_);
    return connections_accepted_;
  }

 private:
  using Key = std::pair<std::string, std::string>;  // namespace, name

  struct HistoryEvent {
    int64_t rv;
    std::string type;  // ADDED, MODIFIED or DELETED
    std::shared_ptr<const json> obj;
    std::shared_ptr<const json> prev;  // before a MODIFIED, for selector transitions
  };

  struct Resource {
    std::string group, version, plural, kind;
    bool namespaced = false;
    bool has_status = true;
    // Shared with `history`, so an event costs no copy of its object.
    std::map<Key, std::shared_ptr<const json>> objects;
    std::deque<HistoryEvent> history;
    int64_t evicted_rv = 0;  // the newest event pushed out of `history`

    std::string api_version() const { return group.empty() ? version : group + "/" + version; }
    // How error messages name the resource ("services", "leases.coordination.k8s.io").
    std::string qualified() const { return group.empty() ? plural : plural + "." + group; }
  };

  struct Connection {
    int fd = -1;  // -1 once its thread is about to close the socket
    bool client_cert = false;
    bool watching = false;  // guarded by mu_, like every field here
    bool dropped = false;
    bool finished = false;  // the thread has returned; join it
    std::thread thread;
  };

  // One parsed and routed request.
  struct Exchange {
    std::string method, target, path, query, content_type, authorization, body;
    std::map<std::string, std::string> params;
    bool watch = false;
    Resource* res = nullptr;  // set when the path names a registered resource
    bool has_ns = false;
    std::string ns, name, sub;
  };

  // Unregisters a connection before its socket is closed, so that Stop()
  // never shuts down a descriptor number that has been reused.
  class ConnectionGuard {
   public:
    ConnectionGuard(Impl* impl, Connection* conn) : impl_(impl), conn_(conn) {}
    ~ConnectionGuard() {
      std::lock_guard<std::mutex> l(impl_->mu_);
      conn_->fd = -1;
    }

   private:
    Impl* impl_;
    Connection* conn_;
  };

  void AcceptLoop();
  void ReapLocked(std::vector<std::thread>* done);
  void ServeConnection(std::shared_ptr<Connection> conn, tcp::socket socket);
  template <typename Stream>
  void ServeStream(Stream& stream, Connection* conn);
  template <typename Stream>
  bool ServeWatch(Stream& stream, Connection* conn, Exchange& ex, unsigned version,
                  bool keep_alive);
  template <typename Stream>
  bool WriteReply(Stream& stream, const Reply& reply, unsigned version, bool keep_alive);

  // Returns a reply when the request is answered before routing (delay,
  // auth, injected failure, non-resource paths, bad routes).
  std::optional<Reply> Admit(Exchange& ex, Connection* conn);
  std::optional<Reply> Route(Exchange& ex);
  Reply Discovery(const std::vector<std::string>& segs) const;
  Reply Handle(Exchange& ex);
  Reply HandleGet(const Exchange& ex);
  Reply HandleList(const Exchange& ex);
  Reply HandleCreate(const Exchange& ex);
  Reply HandleWrite(const Exchange& ex);
  Reply HandleDelete(const Exchange& ex);

  Resource* FindLocked(const std::string& plural) const;
  Resource* FindLocked(const std::string& group, const std::string& version,
                       const std::string& plural) const;
  int64_t CompactionPointLocked(const Resource& r) const {
    return std::max(compacted_rv_, r.evicted_rv);
  }
  json CommitLocked(Resource& r, const std::string& type, json obj,
                    std::shared_ptr<const json> prev);
  std::string NewUidLocked();
  std::string NotFoundMessage(const Resource& r, const std::string& name) const {
    return r.qualified() + " \"" + name + "\" not found";
  }
  // The object as a response or list item shows it: core-group list items
  // carry no kind or apiVersion.
  static json ListItem(const Resource& r, const json& obj) {
    if (!r.group.empty()) return obj;
    json out = obj;
    out.erase("kind");
    out.erase("apiVersion");
    return out;
  }
  void RecordLocked(const Exchange& ex, int status) {
    requests_.push_back(Request{ex.method, ex.path, ex.query, ex.content_type, ex.watch, status,
                                std::chrono::steady_clock::now()});
    if (requests_.size() > kRequestLogLimit) requests_.pop_front();
  }
  bool DroppedLocked(const Connection* conn) const { return stopping_ || conn->dropped; }

  const FakeApiOptions options_;
  net::io_context io_;  // never run: every socket operation is synchronous
  tcp::acceptor acceptor_;
  std::unique_ptr<ssl::context> tls_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // any write, drop or stop; watches wait on it
  bool started_ = false;
  bool stopping_ = false;
  int port_ = 0;
  int listen_fd_ = -1;
  std::thread accept_thread_;
  std::list<std::shared_ptr<Connection>> connections_;
  std::vector<std::unique_ptr<Resource>> resources_;
  int64_t rv_ = kInitialResourceVersion;
  int64_t compacted_rv_ = kInitialResourceVersion;
  std::mt19937_64 rng_;
  int fail_remaining_ = 0;
  struct FailRule {
    std::string method, path_substring;
    int code = 0;
    std::string reason, message;
  };
  std::optional<FailRule> fail_matching_;
  int fail_code_ = 0;
  int fail_retry_after_ = 0;
  std::chrono::milliseconds delay_{0};
  size_t open_watches_ = 0;
  size_t connections_accepted_ = 0;
  std::deque<Request> requests_;
};

// ---------------------------------------------------------------------------
// Lifecycle

Status FakeApiServer::Impl::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (started_) return Status::Error("the fake API server was started already");
  }
  if (options_.tls) {
    try {
      tls_ = std::make_unique<ssl::context>(ssl::context::tls_server);
      SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION);
      tls_->use_certificate_chain(net::buffer(options_.cert_pem));
      tls_->use_private_key(net::buffer(options_.key_pem), ssl::context::pem);
      if (!options_.client_ca_pem.empty()) {
        tls_->add_certificate_authority(net::buffer(options_.client_ca_pem));
        tls_->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
      }
    } catch (const std::exception& e) {
      return Status::Error(std::string("fake API server TLS setup: ") + e.what());
    }
  }
  beast::error_code ec;
  tcp::endpoint ep(net::ip::make_address_v4("127.0.0.1"), static_cast<uint16_t>(options_.port));
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor_.close(ec);
    return Status::Error("fake API server cannot listen on 127.0.0.1:" +
                         std::to_string(options_.port) + ": " + ec.message());
  }
  int port = acceptor_.local_endpoint(ec).port();
  std::lock_guard<std::mutex> l(mu_);
  port_ = port;
  listen_fd_ = acceptor_.native_handle();
  started_ = true;
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return Status::Ok();
}

void FakeApiServer::Impl::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
    // shutdown() (not close()) wakes a thread blocked in accept() or read()
    // on Linux, and leaves closing the descriptor to the thread that owns it.
    ::shutdown(listen_fd_, SHUT_RDWR);
    for (auto& c : connections_) {
      if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
    }
    cv_.notify_all();
  }
  accept_thread_.join();
  std::list<std::shared_ptr<Connection>> conns;
  {
    std::lock_guard<std::mutex> l(mu_);
    conns.swap(connections_);
  }
  for (auto& c : conns) {
    if (c->thread.joinable()) c->thread.join();
  }
}

void FakeApiServer::Impl::AcceptLoop() {
  for (bool stop = false; !stop;) {
    tcp::socket socket(io_);
    beast::error_code ec;
    acceptor_.accept(socket, ec);
    std::vector<std::thread> done;
    {
      std::lock_guard<std::mutex> l(mu_);
      ReapLocked(&done);
      stop = stopping_;
      if (stop) ec = net::error::operation_aborted;
      if (!ec) {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);  // events are small; send at once
        auto conn = std::make_shared<Connection>();
        ++connections_accepted_;
        conn->fd = socket.native_handle();
        connections_.push_back(conn);
        // Assigned under mu_, so the thread cannot mark itself finished
        // (and be reaped) before its std::thread exists.
        conn->thread = std::thread(
            [this, conn, s = std::move(socket)]() mutable { ServeConnection(conn, std::move(s)); });
      }
    }
    for (auto& t : done) t.join();
    // Out of descriptors or similar: do not spin.
    if (ec && !stop) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  beast::error_code ignored;
  acceptor_.close(ignored);
}

void FakeApiServer::Impl::ReapLocked(std::vector<std::thread>* done) {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if ((*it)->finished) {
      done->push_back(std::move((*it)->thread));
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void FakeApiServer::Impl::ServeConnection(std::shared_ptr<Connection> conn, tcp::socket socket) {
  try {
    if (tls_) {
      ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
      ConnectionGuard guard(this, conn.get());  // destroyed before `stream`
      beast::error_code ec;
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) {
        {
          std::lock_guard<std::mutex> l(mu_);
          // With a client CA the handshake only succeeds with a verified
          // certificate, which authenticates like a token does.
          conn->client_cert = !options_.client_ca_pem.empty();
        }
        ServeStream(stream, conn.get());
      }
    } else {
      ConnectionGuard guard(this, conn.get());  // destroyed before `socket`
      ServeStream(socket, conn.get());
    }
  } catch (const std::exception&) {
    // A connection failing in an unexpected way only ends that connection.
  }
  std::lock_guard<std::mutex> l(mu_);
  conn->finished = true;
}

void FakeApiServer::Impl::DropWatches() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& c : connections_) {
    if (!c->watching) continue;
    c->dropped = true;
    if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
  }
  cv_.notify_all();
}

void FakeApiServer::Impl::Restart() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& c : connections_) {
    c->dropped = true;
    if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
  }
  compacted_rv_ = rv_;
  cv_.notify_all();
}

size_t FakeApiServer::Impl::CountRequests(const std::string& method,
                                          const std::string& path_substring) const {
  std::lock_guard<std::mutex> l(mu_);
  size_t n = 0;
  for (const auto& r : requests_) {
    if ((method.empty() || r.method == method) &&
        r.path.find(path_substring) != std::string::npos) {
      ++n;
    }
  }
  return n;
}

// ---------------------------------------------------------------------------
// HTTP

template <typename Stream>
bool FakeApiServer::Impl::WriteReply(Stream& stream, const Reply& reply, unsigned version,
                                     bool keep_alive) {
  http::response<http::string_body> res;
  res.version(version);
  res.result(static_cast<unsigned>(reply.status));
  res.set(http::field::content_type, reply.content_type);
  res.set("Audit-Id", "fakeapi");
  if (reply.retry_after > 0) res.set(http::field::retry_after, std::to_string(reply.retry_after));
  res.keep_alive(keep_alive);
  res.body() = reply.body;
  res.prepare_payload();
  beast::error_code ec;
  http::write(stream, res, ec);
  return !ec;
}

template <typename Stream>
void FakeApiServer::Impl::ServeStream(Stream& stream, Connection* conn) {
  beast::flat_buffer buffer;
  const auto& http_category = http::make_error_code(http::error::bad_method).category();
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kBodyLimit);
    beast::error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec) {
      // Garbage gets a 400 before the connection closes; a peer that went
      // away (end_of_stream, a reset, a shutdown from Stop) gets nothing.
      if (ec != http::error::end_of_stream && ec.category() == http_category) {
        WriteReply(stream, ErrorReply(400, "malformed HTTP request: " + ec.message()), 11, false);
      }
      return;
    }
    const auto& req = parser.get();
    Exchange ex;
    ex.method = std::string(req.method_string());
    ex.target = std::string(req.target());
    size_t qm = ex.target.find('?');
    ex.path = ex.target.substr(0, qm);
    ex.query = qm == std::string::npos ? "" : ex.target.substr(qm + 1);
    ex.params = ParseQuery(ex.query);
    ex.watch = ex.method == "GET" && IsTrue(ex.params, "watch");
    ex.content_type = std::string(req[http::field::content_type]);
    ex.authorization = std::string(req[http::field::authorization]);
    ex.body = req.body();
    bool keep_alive = req.keep_alive();
    unsigned version = req.version();

    std::optional<Reply> early = Admit(ex, conn);
    if (!early && ex.watch) {
      if (!ServeWatch(stream, conn, ex, version, keep_alive)) return;
    } else {
      Reply reply;
      if (early) {
        reply = std::move(*early);
      } else {
        try {
          reply = Handle(ex);
        } catch (const std::exception& e) {
          reply = ErrorReply(500, std::string("fake API server: ") + e.what());
        }
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        if (DroppedLocked(conn)) return;
        RecordLocked(ex, reply.status);
      }
      if (!WriteReply(stream, reply, version, keep_alive)) return;
    }
    if (!keep_alive) return;
  }
}

std::optional<Reply> FakeApiServer::Impl::Admit(Exchange& ex, Connection* conn) {
  std::unique_lock<std::mutex> l(mu_);
  if (delay_.count() > 0) {
    cv_.wait_for(l, delay_, [&] { return DroppedLocked(conn); });
  }
  if (ex.path == "/healthz" || ex.path == "/livez" || ex.path == "/readyz") {
    return Reply{200, "ok", "text/plain"};
  }
  if (!options_.token.empty() && !conn->client_cert &&
      ex.authorization != "Bearer " + options_.token) {
    return ErrorReply(401, "Unauthorized");
  }
  if (fail_remaining_ > 0) {
    --fail_remaining_;
    Reply r = ErrorReply(fail_code_, "injected failure (FakeApiServer::FailNext)");
    r.retry_after = fail_retry_after_;
    return r;
  }
  if (fail_matching_ && ex.method == fail_matching_->method &&
      ex.path.find(fail_matching_->path_substring) != std::string::npos) {
    return ErrorReply(fail_matching_->code, fail_matching_->message, fail_matching_->reason);
  }
  l.unlock();
  return Route(ex);
}

std::optional<Reply> FakeApiServer::Impl::Route(Exchange& ex) {
  static const std::string kNoResource = "the server could not find the requested resource";
  std::vector<std::string> segs = SplitPath(ex.path);
  if (ex.path == "/version") {
    return JsonReply(200, json{{"major", "1"},
                               {"minor", "30"},
                               {"gitVersion", "v1.30.0-ipguard-fakeapi"},
                               {"platform", "linux/amd64"}});
  }
  size_t rest;
  std::string group, version;
  if (segs.size() >= 2 && segs[0] == "api") {
    version = segs[1];
    rest = 2;
  } else if (segs.size() >= 3 && segs[0] == "apis") {
    group = segs[1];
    version = segs[2];
    rest = 3;
  } else {
    if (ex.method == "GET" && !segs.empty() && (segs[0] == "api" || segs[0] == "apis")) {
      return Discovery(segs);
    }
    return ErrorReply(404, kNoResource);
  }
  if (segs.size() == rest) {
    if (ex.method == "GET") return Discovery(segs);
    return ErrorReply(405, "the server does not allow this method on the requested resource");
  }
  if (segs.size() - rest >= 3 && segs[rest] == "namespaces") {
    ex.has_ns = true;
    ex.ns = segs[rest + 1];
    rest += 2;
  }
  size_t n = segs.size() - rest;
  if (n > 3) return ErrorReply(404, kNoResource);
  std::string plural = segs[rest];
  if (n >= 2) ex.name = segs[rest + 1];
  if (n == 3) ex.sub = segs[rest + 2];
  std::lock_guard<std::mutex> l(mu_);
  Resource* r = FindLocked(group, version, plural);
  if (r == nullptr || (ex.has_ns && !r->namespaced)) return ErrorReply(404, kNoResource);
  if (!ex.sub.empty() && (ex.sub != "status" || !r->has_status)) {
    return ErrorReply(404, kNoResource);
  }
  if (r->namespaced && !ex.has_ns && !ex.name.empty()) return ErrorReply(404, kNoResource);
  ex.res = r;
  bool allowed;
  if (ex.name.empty()) {
    allowed = ex.method == "GET" || (ex.method == "POST" && (ex.has_ns || !r->namespaced));
  } else if (!ex.sub.empty()) {
    allowed = ex.method == "GET" || ex.method == "PUT" || ex.method == "PATCH";
  } else {
    allowed =
        ex.method == "GET" || ex.method == "PUT" || ex.method == "PATCH" || ex.method == "DELETE";
  }
  if (!allowed) {
    return ErrorReply(405, "the server does not allow this method on the requested resource");
  }
  return std::nullopt;
}

Reply FakeApiServer::Impl::Discovery(const std::vector<std::string>& segs) const {
  std::lock_guard<std::mutex> l(mu_);
  if (segs.size() == 1 && segs[0] == "api") {
    return JsonReply(200, json{{"kind", "APIVersions"}, {"versions", json::array({"v1"})}});
  }
  if (segs.size() == 1 && segs[0] == "apis") {
    std::map<std::string, std::vector<std::string>> groups;
    for (const auto& r : resources_) {
      if (r->group.empty()) continue;
      auto& v = groups[r->group];
      if (std::find(v.begin(), v.end(), r->version) == v.end()) v.push_back(r->version);
    }
    json list = {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", json::array()}};
    for (const auto& [g, versions] : groups) {
      json vs = json::array();
      for (const auto& v : versions) vs.push_back({{"groupVersion", g + "/" + v}, {"version", v}});
      list["groups"].push_back({{"name", g}, {"versions", vs}, {"preferredVersion", vs[0]}});
    }
    return JsonReply(200, list);
  }
  std::string group = segs[0] == "apis" && segs.size() >= 2 ? segs[1] : "";
  std::string version =
      segs[0] == "api" ? (segs.size() >= 2 ? segs[1] : "") : (segs.size() >= 3 ? segs[2] : "");
  json resources = json::array();
  for (const auto& r : resources_) {
    if (r->group != group || r->version != version) continue;
    resources.push_back(
        {{"name", r->plural},
         {"singularName", ""},
         {"namespaced", r->namespaced},
         {"kind", r->kind},
         {"verbs", json::array({"create", "delete", "get", "list", "patch", "update", "watch"})}});
    if (r->has_status) {
      resources.push_back({{"name", r->plural + "/status"},
                           {"singularName", ""},
                           {"namespaced", r->namespaced},
                           {"kind", r->kind},
                           {"verbs", json::array({"get", "patch", "update"})}});
    }
  }
  if (resources.empty()) {
    return ErrorReply(404, "the server could not find the requested resource");
  }
  return JsonReply(200, json{{"kind", "APIResourceList"},
                             {"apiVersion", "v1"},
                             {"groupVersion", group.empty() ? version : group + "/" + version},
                             {"resources", resources}});
}

// ---------------------------------------------------------------------------
// Verbs

Reply FakeApiServer::Impl::Handle(Exchange& ex) {
  if (ex.method == "GET") return ex.name.empty() ? HandleList(ex) : HandleGet(ex);
  if (ex.method == "POST") return HandleCreate(ex);
  if (ex.method == "DELETE") return HandleDelete(ex);
  return HandleWrite(ex);  // PUT or PATCH, of the object or its status
}

Reply FakeApiServer::Impl::HandleGet(const Exchange& ex) {
  std::lock_guard<std::mutex> l(mu_);
  const Resource& r = *ex.res;
  auto it = r.objects.find(Key(ex.ns, ex.name));
  if (it == r.objects.end()) return ErrorReply(404, NotFoundMessage(r, ex.name));
  return JsonReply(200, *it->second);
}

Reply FakeApiServer::Impl::HandleList(const Exchange& ex) {
  Selector labels, fields;
  if (!labels.Parse(Param(ex.params, "labelSelector"), false)) {
    return ErrorReply(400, "unable to parse requirement: labelSelector \"" +
                               Param(ex.params, "labelSelector") + "\"");
  }
  if (!fields.Parse(Param(ex.params, "fieldSelector"), true)) {
    return ErrorReply(400, "invalid field selector \"" + Param(ex.params, "fieldSelector") + "\"");
  }
  int64_t limit = 0;
  std::string limit_text = Param(ex.params, "limit");
  if (!limit_text.empty() && !ParseInt64(limit_text, &limit)) {
    return ErrorReply(400, "limit: Invalid value: \"" + limit_text + "\"");
  }
  // resourceVersion=0 is served as the watch cache serves it: whole, the
  // limit ignored.
  if (Param(ex.params, "resourceVersion") == "0" && Param(ex.params, "continue").empty()) limit = 0;
  std::lock_guard<std::mutex> l(mu_);
  const Resource& r = *ex.res;
  int64_t snapshot = rv_;
  std::optional<Key> after;
  std::string cont = Param(ex.params, "continue");
  if (!cont.empty()) {
    std::string decoded;
    json token;
    if (Base64UrlDecode(cont, &decoded)) token = json::parse(decoded, nullptr, false);
    if (!token.is_object() || !token.contains("rv") || !token["rv"].is_number_integer() ||
        !token.contains("ns") || !token["ns"].is_string() || !token.contains("name") ||
        !token["name"].is_string()) {
      return ErrorReply(400, "continue key is not valid");
    }
    snapshot = token["rv"].get<int64_t>();
    if (snapshot < CompactionPointLocked(r)) {
      return ErrorReply(
          410,
          "The provided continue parameter is too old to display a consistent list result. You "
          "can start a new list without the continue parameter.",
          "Expired");
    }
    after = Key(token["ns"].get<std::string>(), token["name"].get<std::string>());
  }
  json items = json::array();
  std::string next;
  auto it = after ? r.objects.upper_bound(*after) : r.objects.begin();
  for (; it != r.objects.end(); ++it) {
    if (ex.has_ns && it->first.first != ex.ns) continue;
    if (!labels.Matches(*it->second) || !fields.Matches(*it->second)) continue;
    if (limit > 0 && static_cast<int64_t>(items.size()) == limit) {
      break;  // another item follows the page: hand out a token for the rest
    }
    items.push_back(ListItem(r, *it->second));
  }
  if (it != r.objects.end()) {
    const json& last_item = items.back();
    json token = {{"rv", snapshot},
                  {"ns", r.namespaced ? MetaString(last_item, "namespace") : ""},
                  {"name", MetaString(last_item, "name")}};
    next = Base64UrlEncode(Dump(token));
  }
  json meta = {{"resourceVersion", std::to_string(snapshot)}};
  if (!next.empty()) meta["continue"] = next;
  return JsonReply(200, json{{"kind", r.kind + "List"},
                             {"apiVersion", r.api_version()},
                             {"metadata", meta},
                             {"items", items}});
}

Reply FakeApiServer::Impl::HandleCreate(const Exchange& ex) {
  json obj = json::parse(ex.body, nullptr, false);
  if (obj.is_discarded() || !obj.is_object()) {
    return ErrorReply(400, "the request body is not a JSON object");
  }
  std::lock_guard<std::mutex> l(mu_);
  Resource& r = *ex.res;
  std::string api_version = JsonString(obj, "apiVersion");
  std::string kind = JsonString(obj, "kind");
  if ((!api_version.empty() && api_version != r.api_version()) ||
      (!kind.empty() && kind != r.kind)) {
    return ErrorReply(400, "the object's kind/apiVersion (" + kind + ", " + api_version +
                               ") does not match the request's (" + r.kind + ", " +
                               r.api_version() + ")");
  }
  obj["apiVersion"] = r.api_version();
  obj["kind"] = r.kind;
  if (!obj.contains("metadata") || obj["metadata"].is_null()) obj["metadata"] = json::object();
  json& meta = obj["metadata"];
  if (!meta.is_object()) return ErrorReply(400, "metadata must be an object");
  if (r.namespaced) {
    std::string body_ns = MetaString(obj, "namespace");
    if (!body_ns.empty() && body_ns != ex.ns) {
      return ErrorReply(400,
                        "the namespace of the provided object does not match the namespace sent "
                        "on the request");
    }
    meta["namespace"] = ex.ns;
  } else {
    meta.erase("namespace");
  }
  std::string name = MetaString(obj, "name");
  if (name.empty()) {
    std::string prefix = MetaString(obj, "generateName");
    if (prefix.empty()) {
      return ErrorReply(422, r.kind +
                                 " \"\" is invalid: metadata.name: Required value: name or "
                                 "generateName is required");
    }
    static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    do {
      name = prefix;
      for (int i = 0; i < 5; ++i) name += kAlphabet[rng_() % (sizeof(kAlphabet) - 1)];
    } while (r.objects.count(Key(r.namespaced ? ex.ns : "", name)));
    meta["name"] = name;
  }
  // As the real server checks every name of these kinds: a lowercase RFC
  // 1123 subdomain.
  if (!IsDnsSubdomain(name)) {
    return ErrorReply(422, r.kind + " \"" + name + "\" is invalid: metadata.name: Invalid value: \"" +
                               name +
                               "\": a lowercase RFC 1123 subdomain must consist of lower case "
                               "alphanumeric characters, '-' or '.', and must start and end with "
                               "an alphanumeric character",
                      "Invalid");
  }
  Key key(r.namespaced ? ex.ns : "", name);
  if (r.objects.count(key)) {
    return ErrorReply(409, r.qualified() + " \"" + name + "\" already exists", "AlreadyExists");
  }
  if (r.has_status) obj.erase("status");
  meta["uid"] = NewUidLocked();
  meta["creationTimestamp"] = Rfc3339Now();
  meta["generation"] = 1;
  meta.erase("resourceVersion");
  meta.erase("deletionTimestamp");
  if (Param(ex.params, "dryRun") == "All") return JsonReply(201, obj);
  return JsonReply(201, CommitLocked(r, "ADDED", std::move(obj), nullptr));
}

Reply FakeApiServer::Impl::HandleWrite(const Exchange& ex) {
  json body = json::parse(ex.body, nullptr, false);
  if (body.is_discarded()) return ErrorReply(400, "the request body is not valid JSON");
  std::lock_guard<std::mutex> l(mu_);
  Resource& r = *ex.res;
  auto it = r.objects.find(Key(ex.ns, ex.name));
  if (it == r.objects.end()) return ErrorReply(404, NotFoundMessage(r, ex.name));
  const std::shared_ptr<const json> prev = it->second;
  const json& stored = *prev;
  json incoming;
  if (ex.method == "PUT") {
    if (!body.is_object()) return ErrorReply(400, "the request body is not a JSON object");
    std::string api_version = JsonString(body, "apiVersion");
    std::string kind = JsonString(body, "kind");
    if ((!api_version.empty() && api_version != r.api_version()) ||
        (!kind.empty() && kind != r.kind)) {
      return ErrorReply(400, "the object's kind/apiVersion does not match the request's");
    }
    std::string body_name = MetaString(body, "name");
    if (!body_name.empty() && body_name != ex.name) {
      return ErrorReply(400, "the name of the object (" + body_name +
                                 ") does not match the name on the URL (" + ex.name + ")");
    }
    std::string body_ns = MetaString(body, "namespace");
    if (r.namespaced && !body_ns.empty() && body_ns != ex.ns) {
      return ErrorReply(400,
                        "the namespace of the provided object does not match the namespace sent "
                        "on the request");
    }
    incoming = std::move(body);
  } else {  // PATCH
    std::string type = ex.content_type.substr(0, ex.content_type.find(';'));
    type = Trim(type);
    std::transform(type.begin(), type.end(), type.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (type == "application/merge-patch+json" ||
        type == "application/strategic-merge-patch+json") {
      if (!body.is_object()) return ErrorReply(400, "a merge patch must be a JSON object");
      incoming = stored;
      incoming.merge_patch(body);
    } else if (type == "application/json-patch+json") {
      if (!body.is_array()) return ErrorReply(400, "a JSON patch must be an array of operations");
      try {
        incoming = stored.patch(body);
      } catch (const std::exception& e) {
        return ErrorReply(422, std::string("the JSON patch cannot be applied: ") + e.what());
      }
    } else {
      return ErrorReply(415,
                        "the body of the request was in an unknown format - accepted media "
                        "types include: application/json-patch+json, "
                        "application/merge-patch+json, "
                        "application/strategic-merge-patch+json");
    }
    if (!incoming.is_object()) return ErrorReply(422, "the patched object is not an object");
  }
  if (incoming.contains("metadata") && !incoming["metadata"].is_null() &&
      !incoming["metadata"].is_object()) {
    return ErrorReply(400, "metadata must be an object");
  }
  std::string precondition = MetaString(incoming, "resourceVersion");
  if (!precondition.empty() && precondition != MetaString(stored, "resourceVersion")) {
    return ErrorReply(409, "Operation cannot be fulfilled on " + r.qualified() + " \"" + ex.name +
                               "\": the object has been modified; please apply your changes to "
                               "the latest version and try again");
  }
  json result;
  if (ex.sub == "status") {
    result = stored;
    if (incoming.contains("status")) {
      result["status"] = incoming["status"];
    } else {
      result.erase("status");
    }
  } else {
    result = std::move(incoming);
    if (!result.contains("metadata") || result["metadata"].is_null()) {
      result["metadata"] = json::object();
    }
    json& meta = result["metadata"];
    const json& old_meta = stored["metadata"];
    for (const char* keep : {"name", "namespace", "uid", "creationTimestamp", "generation"}) {
      if (old_meta.contains(keep)) {
        meta[keep] = old_meta[keep];
      } else {
        meta.erase(keep);
      }
    }
    if (r.has_status) {
      if (stored.contains("status")) {
        result["status"] = stored["status"];
      } else {
        result.erase("status");
      }
    }
    if (SpecPart(result) != SpecPart(stored)) {
      int64_t gen = old_meta.contains("generation") && old_meta["generation"].is_number_integer()
                        ? old_meta["generation"].get<int64_t>()
                        : 0;
      meta["generation"] = gen + 1;
    }
  }
  result["apiVersion"] = r.api_version();
  result["kind"] = r.kind;
  result["metadata"]["resourceVersion"] = MetaString(stored, "resourceVersion");
  // Like the real server, a write that changes nothing keeps the
  // resourceVersion and wakes no watcher.
  if (result == stored || Param(ex.params, "dryRun") == "All") return JsonReply(200, result);
  return JsonReply(200, CommitLocked(r, "MODIFIED", std::move(result), prev));
}

Reply FakeApiServer::Impl::HandleDelete(const Exchange& ex) {
  json options = ex.body.empty() ? json::object() : json::parse(ex.body, nullptr, false);
  if (options.is_discarded()) return ErrorReply(400, "the request body is not valid JSON");
  std::lock_guard<std::mutex> l(mu_);
  Resource& r = *ex.res;
  auto it = r.objects.find(Key(ex.ns, ex.name));
  if (it == r.objects.end()) return ErrorReply(404, NotFoundMessage(r, ex.name));
  if (options.is_object() && options.contains("preconditions") &&
      options["preconditions"].is_object()) {
    const json& pre = options["preconditions"];
    for (const char* field : {"resourceVersion", "uid"}) {
      std::string want = JsonString(pre, field);
      if (!want.empty() && want != MetaString(*it->second, field)) {
        return ErrorReply(409, "Operation cannot be fulfilled on " + r.qualified() + " \"" +
                                   ex.name + "\": the " + field +
                                   " in the precondition does not match");
      }
    }
  }
  const std::shared_ptr<const json> stored = it->second;
  if (Param(ex.params, "dryRun") == "All") return JsonReply(200, *stored);
  return JsonReply(200, CommitLocked(r, "DELETED", *stored, stored));
}

// ---------------------------------------------------------------------------
// Watch

template <typename Stream>
bool FakeApiServer::Impl::ServeWatch(Stream& stream, Connection* conn, Exchange& ex,
                                     unsigned version, bool keep_alive) {
  auto reject = [&](const Reply& reply) {
    {
      std::lock_guard<std::mutex> l(mu_);
      RecordLocked(ex, reply.status);
    }
    return WriteReply(stream, reply, version, keep_alive);
  };
  Selector labels, fields;
  if (!labels.Parse(Param(ex.params, "labelSelector"), false) ||
      !fields.Parse(Param(ex.params, "fieldSelector"), true)) {
    return reject(ErrorReply(400, "unable to parse the label or field selector"));
  }
  std::string rv_text = Param(ex.params, "resourceVersion");
  int64_t from = 0;
  if (!rv_text.empty() && rv_text != "0" && !ParseInt64(rv_text, &from)) {
    return reject(ErrorReply(400, "resourceVersion: Invalid value: \"" + rv_text + "\""));
  }
  int64_t timeout_seconds = 0;
  ParseInt64(Param(ex.params, "timeoutSeconds"), &timeout_seconds);
  const bool bookmarks = IsTrue(ex.params, "allowWatchBookmarks");
  const Resource* r = ex.res;

  auto matches = [&](const json& obj) {
    if (ex.has_ns && MetaString(obj, "namespace") != ex.ns) return false;
    if (!ex.name.empty() && MetaString(obj, "name") != ex.name) return false;
    return labels.Matches(obj) && fields.Matches(obj);
  };
  auto line = [](const std::string& type, const json& obj) {
    return Dump(json{{"type", type}, {"object", obj}}) + "\n";
  };
  auto expired = [&](int64_t old_rv, int64_t compacted) {
    return line("ERROR", StatusObject(410, "Expired",
                                      "too old resource version: " + std::to_string(old_rv) + " (" +
                                          std::to_string(compacted) + ")"));
  };

  std::vector<std::string> lines;
  bool end = false;
  int64_t cursor;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (rv_text.empty() || rv_text == "0") {
      for (const auto& [key, obj] : r->objects) {
        if (matches(*obj)) lines.push_back(line("ADDED", *obj));
      }
      cursor = rv_;
    } else if (from < CompactionPointLocked(*r)) {
      lines.push_back(expired(from, CompactionPointLocked(*r)));
      end = true;
      cursor = from;
    } else {
      cursor = from;
    }
    RecordLocked(ex, 200);
    conn->watching = true;
    ++open_watches_;
  }
  auto finish = [&](bool reusable) {
    std::lock_guard<std::mutex> l(mu_);
    conn->watching = false;
    --open_watches_;
    return reusable;
  };

  http::response<http::empty_body> res;
  res.version(version);
  res.result(http::status::ok);
  res.set(http::field::content_type, "application/json");
  res.set("Audit-Id", "fakeapi");
  res.keep_alive(keep_alive);
  res.chunked(true);
  http::response_serializer<http::empty_body> sr(res);
  beast::error_code ec;
  http::write_header(stream, sr, ec);
  if (ec) return finish(false);

  const auto timeout_at = timeout_seconds > 0
                              ? SteadyClock::now() + std::chrono::seconds(timeout_seconds)
                              : SteadyClock::time_point::max();
  auto next_bookmark = SteadyClock::now() + options_.bookmark_interval;
  for (;;) {
    // One chunk per event, flushed at once (the sockets are unbuffered).
    for (const std::string& chunk : lines) {
      net::write(stream, http::make_chunk(net::buffer(chunk)), ec);
      if (ec) return finish(false);
    }
    lines.clear();
    if (end) break;
    std::unique_lock<std::mutex> l(mu_);
    auto wake = timeout_at;
    if (bookmarks) wake = std::min(wake, next_bookmark);
    cv_.wait_until(l, wake, [&] {
      return DroppedLocked(conn) || (!r->history.empty() && r->history.back().rv > cursor);
    });
    // Cut mid-stream: no final chunk, so the client sees a broken stream.
    if (DroppedLocked(conn)) {
      l.unlock();
      return finish(false);
    }
    if (cursor < r->evicted_rv) {
      // This watcher fell behind the ring of history (the real watch cache
      // does the same to a slow watcher).
      lines.push_back(expired(cursor, r->evicted_rv));
      end = true;
      continue;
    }
    auto first = std::upper_bound(r->history.begin(), r->history.end(), cursor,
                                  [](int64_t v, const HistoryEvent& e) { return v < e.rv; });
    for (auto e = first; e != r->history.end(); ++e) {
      bool now_matches = matches(*e->obj);
      bool was_matching = e->prev && matches(*e->prev);
      if (e->type == "MODIFIED") {
        // Selector transitions look like additions and deletions to the
        // watcher, as on the real server.
        if (now_matches && was_matching) {
          lines.push_back(line("MODIFIED", *e->obj));
        } else if (now_matches) {
          lines.push_back(line("ADDED", *e->obj));
        } else if (was_matching) {
          lines.push_back(line("DELETED", *e->obj));
        }
      } else if (now_matches) {
        lines.push_back(line(e->type, *e->obj));
      }
      cursor = e->rv;
    }
    auto now = SteadyClock::now();
    if (now >= timeout_at) {
      end = true;
    } else if (bookmarks && now >= next_bookmark) {
      // Every event of this resource up to rv_ has been sent, so resuming
      // from rv_ misses nothing.
      cursor = std::max(cursor, rv_);
      lines.push_back(
          line("BOOKMARK", json{{"kind", r->kind},
                                {"apiVersion", r->api_version()},
                                {"metadata", {{"resourceVersion", std::to_string(rv_)}}}}));
      next_bookmark = now + options_.bookmark_interval;
    }
  }
  net::write(stream, http::make_chunk_last(), ec);
  return finish(!ec && keep_alive);
}

// ---------------------------------------------------------------------------
// Storage

FakeApiServer::Impl::Resource* FakeApiServer::Impl::FindLocked(const std::string& plural) const {
  for (const auto& r : resources_) {
    if (r->plural == plural || r->qualified() == plural) return r.get();
  }
  return nullptr;
}

FakeApiServer::Impl::Resource* FakeApiServer::Impl::FindLocked(const std::string& group,
                                                               const std::string& version,
                                                               const std::string& plural) const {
  for (const auto& r : resources_) {
    if (r->group == group && r->version == version && r->plural == plural) return r.get();
  }
  return nullptr;
}

std::string FakeApiServer::Impl::NewUidLocked() {
  // A version 4 UUID: uniqueness is what clients rely on.
  uint64_t a = rng_(), b = rng_();
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

json FakeApiServer::Impl::CommitLocked(Resource& r, const std::string& type, json obj,
                                       std::shared_ptr<const json> prev) {
  ++rv_;
  obj["metadata"]["resourceVersion"] = std::to_string(rv_);
  Key key(r.namespaced ? MetaString(obj, "namespace") : "", MetaString(obj, "name"));
  auto stored = std::make_shared<const json>(std::move(obj));
  if (type == "DELETED") {
    r.objects.erase(key);
  } else {
    r.objects[key] = stored;
  }
  r.history.push_back(HistoryEvent{rv_, type, stored, std::move(prev)});
  while (r.history.size() > kHistoryLimit) {
    r.evicted_rv = r.history.front().rv;
    r.history.pop_front();
  }
  cv_.notify_all();
  return *stored;
}

void FakeApiServer::Impl::AddResource(const std::string& group, const std::string& version,
                                      const std::string& plural, const std::string& kind,
                                      bool namespaced) {
  std::lock_guard<std::mutex> l(mu_);
  if (FindLocked(group, version, plural)) return;
  auto r = std::make_unique<Resource>();
  r->group = group;
  r->version = version;
  r->plural = plural;
  r->kind = kind;
  r->namespaced = namespaced;
  static const char* const kNoStatus[] = {"events", "leases", "secrets", "configmaps",
                                          "validatingwebhookconfigurations"};
  for (const char* p : kNoStatus) {
    if (plural == p) r->has_status = false;
  }
  resources_.push_back(std::move(r));
}

json FakeApiServer::Impl::Upsert(const std::string& plural, json obj) {
  std::lock_guard<std::mutex> l(mu_);
  Resource* r = FindLocked(plural);
  if (r == nullptr || !obj.is_object() || MetaString(obj, "name").empty()) return json();
  obj["apiVersion"] = r->api_version();
  obj["kind"] = r->kind;
  json& meta = obj["metadata"];
  if (r->namespaced) {
    if (MetaString(obj, "namespace").empty()) meta["namespace"] = "default";
  } else {
    meta.erase("namespace");
  }
  Key key(r->namespaced ? MetaString(obj, "namespace") : "", MetaString(obj, "name"));
  auto it = r->objects.find(key);
  if (it == r->objects.end()) {
    if (MetaString(obj, "uid").empty()) meta["uid"] = NewUidLocked();
    if (MetaString(obj, "creationTimestamp").empty()) meta["creationTimestamp"] = Rfc3339Now();
    if (!meta.contains("generation")) meta["generation"] = 1;
    return CommitLocked(*r, "ADDED", std::move(obj), nullptr);
  }
  const std::shared_ptr<const json> prev = it->second;
  const json& stored = *prev;
  for (const char* keep : {"uid", "creationTimestamp"}) {
    if (MetaString(obj, keep).empty() && stored["metadata"].contains(keep)) {
      meta[keep] = stored["metadata"][keep];
    }
  }
  if (!meta.contains("generation")) {
    const json& g = stored["metadata"].value("generation", json(1));
    int64_t gen = g.is_number_integer() ? g.get<int64_t>() : 1;
    meta["generation"] = SpecPart(obj) != SpecPart(stored) ? gen + 1 : gen;
  }
  return CommitLocked(*r, "MODIFIED", std::move(obj), prev);
}

bool FakeApiServer::Impl::Remove(const std::string& plural, const std::string& ns,
                                 const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  Resource* r = FindLocked(plural);
  if (r == nullptr) return false;
  auto it = r->objects.find(Key(r->namespaced ? ns : "", name));
  if (it == r->objects.end()) return false;
  const std::shared_ptr<const json> prev = it->second;
  CommitLocked(*r, "DELETED", *prev, prev);
  return true;
}

std::optional<json> FakeApiServer::Impl::Get(const std::string& plural, const std::string& ns,
                                             const std::string& name) const {
  std::lock_guard<std::mutex> l(mu_);
  Resource* r = FindLocked(plural);
  if (r == nullptr) return std::nullopt;
  auto it = r->objects.find(Key(r->namespaced ? ns : "", name));
  if (it == r->objects.end()) return std::nullopt;
  return *it->second;
}

std::vector<json> FakeApiServer::Impl::List(const std::string& plural) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<json> out;
  Resource* r = FindLocked(plural);
  if (r == nullptr) return out;
  for (const auto& [key, obj] : r->objects) out.push_back(*obj);
  return out;
}

// ---------------------------------------------------------------------------
// FakeApiServer forwards to Impl.

FakeApiServer::FakeApiServer(FakeApiOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
FakeApiServer::~FakeApiServer() { impl_->Stop(); }
Status FakeApiServer::Start() { return impl_->Start(); }
void FakeApiServer::Stop() { impl_->Stop(); }
int FakeApiServer::port() const { return impl_->port(); }
std::string FakeApiServer::url() const { return impl_->url(); }

void FakeApiServer::AddResource(const std::string& group, const std::string& version,
                                const std::string& plural, const std::string& kind,
                                bool namespaced) {
  impl_->AddResource(group, version, plural, kind, namespaced);
}

void FakeApiServer::AddStandardResources() {
  // Every kind ipguard judges, as the registry names it, and what else it touches.
  for (const KindInfo& k : Kinds()) AddResource(k.group, k.version, k.plural, k.name, k.namespaced);
  AddResource("", "v1", "secrets", "Secret", true);
  AddResource("coordination.k8s.io", "v1", "leases", "Lease", true);
  AddResource("events.k8s.io", "v1", "events", "Event", true);
  AddResource("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
              "ValidatingWebhookConfiguration", false);
}

nlohmann::json FakeApiServer::Upsert(const std::string& plural, nlohmann::json obj) {
  return impl_->Upsert(plural, std::move(obj));
}
bool FakeApiServer::Remove(const std::string& plural, const std::string& ns,
                           const std::string& name) {
  return impl_->Remove(plural, ns, name);
}
std::optional<nlohmann::json> FakeApiServer::Get(const std::string& plural, const std::string& ns,
                                                 const std::string& name) const {
  return impl_->Get(plural, ns, name);
}
std::vector<nlohmann::json> FakeApiServer::List(const std::string& plural) const {
  return impl_->List(plural);
}
int64_t FakeApiServer::resource_version() const { return impl_->resource_version(); }
void FakeApiServer::DropWatches() { impl_->DropWatches(); }
void FakeApiServer::FailNext(int n, int code, int retry_after_seconds) {
  impl_->FailNext(n, code, retry_after_seconds);
}
void FakeApiServer::FailMatching(const std::string& method, const std::string& path_substring,
                                 int code, const std::string& reason, const std::string& message) {
  impl_->FailMatching(method, path_substring, code, reason, message);
}
void FakeApiServer::SetDelay(std::chrono::milliseconds d) { impl_->SetDelay(d); }
void FakeApiServer::Compact() { impl_->Compact(); }
void FakeApiServer::Restart() { impl_->Restart(); }
std::vector<FakeApiServer::Request> FakeApiServer::requests() const { return impl_->requests(); }
size_t FakeApiServer::CountRequests(const std::string& method,
                                    const std::string& path_substring) const {
  return impl_->CountRequests(method, path_substring);
}
size_t FakeApiServer::open_watches() const { return impl_->open_watches(); }
size_t FakeApiServer::connections_accepted() const { return impl_->connections_accepted(); }

}  // namespace ipguard::fakeapi
