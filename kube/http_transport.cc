// The one file in ipguard that includes cpprestsdk. Every cpprestsdk and
// Boost exception is caught here and turned into a Status.
#include "kube/http_transport.h"

#include "kube/stream_get.h"

#include <cpprest/http_client.h>
#include <cpprest/producerconsumerstream.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pplx/threadpool.h>

#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>

namespace ipguard::kube {
namespace {

using web::http::client::http_client;
using web::http::client::http_client_config;

bool IsLoopbackHost(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host == "[::1]";
}

// Cancels requests whose caller gave up (the cancel flag) or whose deadline
// passed. One thread serves every request, so a request costs no thread of
// its own; it checks every 50 ms, within the 100 ms the Transport promises.
class Canceller {
 public:
  struct Entry {
    const std::atomic<bool>* flag;
    std::chrono::steady_clock::time_point deadline;
    pplx::cancellation_token_source cts;
    bool timed_out = false;
  };
  using Handle = std::list<Entry>::iterator;

  Canceller() : thread_([this] { Loop(); }) {}
  ~Canceller() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  Handle Register(const std::atomic<bool>* flag, std::chrono::milliseconds timeout) {
    std::lock_guard<std::mutex> l(mu_);
    entries_.push_back(Entry{flag, std::chrono::steady_clock::now() + timeout, {}, false});
    return std::prev(entries_.end());
  }
  // Returns whether the request was cancelled because its deadline passed.
  bool Unregister(Handle h) {
    std::lock_guard<std::mutex> l(mu_);
    bool timed_out = h->timed_out;
    entries_.erase(h);
    return timed_out;
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      cv_.wait_for(l, std::chrono::milliseconds(50));
      auto now = std::chrono::steady_clock::now();
      for (auto& e : entries_) {
        if (e.cts.get_token().is_canceled()) continue;
        if (now >= e.deadline) {
          e.timed_out = true;
          e.cts.cancel();
        } else if (e.flag && e.flag->load()) {
          e.cts.cancel();
        }
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::list<Entry> entries_;
  bool stop_ = false;
  std::thread thread_;
};

class HttpTransport : public Transport {
 public:
  HttpTransport(const RestConfig& config, Clock* clock) : config_(config), tokens_(config, clock) {}

  Status Init() {
    web::uri base;
    try {
      base = web::uri(config_.server);
    } catch (const std::exception& e) {
      return Status::Error("server \"" + config_.server + "\" is not a URL: " + e.what());
    }
    if (base.scheme() != "https" && !(base.scheme() == "http" && IsLoopbackHost(base.host()))) {
      return Status::Error("server \"" + config_.server +
                           "\" must be https (plain http only for a loopback address)");
    }
    if (!config_.tls_server_name.empty()) {
      return Status::Error("tls-server-name is not supported: the certificate must name \"" +
                           base.host() + "\"");
    }
    if (Status s = CheckPem(); !s.ok()) return s;
    http_client_config cfg;
    cfg.set_validate_certificates(true);
    // The deadline of each request is enforced by the Canceller; this is
    // only a backstop for a stalled connection.
    cfg.set_timeout(std::chrono::seconds(600));
    cfg.set_ssl_context_callback([this](boost::asio::ssl::context& ctx) { ConfigureTls(ctx); });
    try {
      client_ = std::make_unique<http_client>(base, cfg);
    } catch (const std::exception& e) {
      return Status::Error("cannot use server \"" + config_.server + "\": " + e.what());
    }
    return Status::Ok();
  }

  Result<HttpResponse> Do(const HttpRequest& request) override { return Run(request); }

  // A watch: cpprestsdk passes every read of a body through a task of its
  // thread pool, so watches go through StreamGetLines (stream_get.h), which
  // hands each event on from the watching thread as its line arrives.
  Result<HttpResponse> Stream(const HttpRequest& request,
                              const std::function<bool(std::string_view)>& on_line) override {
    if (request.method != "GET") {
      return Status::Error(request.method + " " + request.path + ": only a GET is streamed");
    }
    auto token = tokens_.Token();
    if (!token.ok()) return token.status();
    return StreamGetLines(config_, *token, request, on_line);
  }

  // A list: cpprestsdk buffers each HTTP chunk whole before handing any of
  // it on, and the API server writes a list from its watch cache as one
  // chunk, so lists go through StreamGet (stream_get.h), which does not.
  Result<HttpResponse> StreamBody(const HttpRequest& request,
                                  const std::function<bool(std::string_view)>& on_chunk,
                                  bool* complete) override {
    if (request.method != "GET") return Transport::StreamBody(request, on_chunk, complete);
    if (complete) *complete = false;
    auto token = tokens_.Token();
    if (!token.ok()) return token.status();
    return StreamGet(config_, *token, request, on_chunk, complete);
  }

 private:
  // Parses the PEM blocks up front so a bad kubeconfig fails at start with a
  // clear message, not at every TLS handshake.
  Status CheckPem() const {
    auto parses = [](const std::string& pem, bool key) {
      BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
      if (!bio) return false;
      bool ok;
      if (key) {
        EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
        ok = k != nullptr;
        EVP_PKEY_free(k);
      } else {
        X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
        ok = x != nullptr;
        X509_free(x);
      }
      BIO_free(bio);
      return ok;
    };
    if (!config_.ca_pem.empty() && !parses(config_.ca_pem, false))
      return Status::Error("certificate-authority data is not a PEM certificate");
    if (config_.client_cert_pem.empty() != config_.client_key_pem.empty())
      return Status::Error("a client certificate needs its key, and a key its certificate");
    if (!config_.client_cert_pem.empty() && !parses(config_.client_cert_pem, false))
      return Status::Error("client-certificate data is not a PEM certificate");
    if (!config_.client_key_pem.empty() && !parses(config_.client_key_pem, true))
      return Status::Error("client-key data is not a PEM private key");
    return Status::Ok();
  }

  // Called by cpprestsdk for each new TLS connection. With a CA in the
  // config only that CA is trusted (as client-go does), not the system
  // store cpprestsdk loaded first.
  void ConfigureTls(boost::asio::ssl::context& ctx) const {
    SSL_CTX* native = ctx.native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    if (!config_.ca_pem.empty()) {
      SSL_CTX_set_cert_store(native, X509_STORE_new());
      ctx.add_certificate_authority(boost::asio::buffer(config_.ca_pem));
    }
    if (!config_.client_cert_pem.empty()) {
      ctx.use_certificate_chain(boost::asio::buffer(config_.client_cert_pem));
      ctx.use_private_key(boost::asio::buffer(config_.client_key_pem),
                          boost::asio::ssl::context::pem);
    }
  }

  Result<HttpResponse> Run(const HttpRequest& request) {
    auto token = tokens_.Token();
    if (!token.ok()) return token.status();

    web::http::http_request req(utility::conversions::to_string_t(request.method));
    try {
      req.set_request_uri(web::uri(request.path));
    } catch (const std::exception& e) {
      return Status::Error("bad request path \"" + request.path + "\": " + e.what());
    }
    req.headers().add("Accept", "application/json");
    req.headers().add("User-Agent", "ipguard");
    if (!token->empty()) req.headers().add("Authorization", "Bearer " + *token);
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
        request.method == "PATCH") {
      req.set_body(request.body, request.content_type);
    }

    Canceller::Handle h = canceller_.Register(request.cancel, request.timeout);
    pplx::cancellation_token token_of_request = h->cts.get_token();
    Result<HttpResponse> result = Status::Error("no response");
    try {
      web::http::http_response resp = client_->request(req, token_of_request).get();
      HttpResponse out;
      out.status = resp.status_code();
      for (const auto& [name, value] : resp.headers()) out.SetHeader(name, value);
      std::vector<unsigned char> body = resp.extract_vector().get();
      out.body.assign(body.begin(), body.end());
      result = std::move(out);
    } catch (const pplx::task_canceled&) {
      result = Abandoned(request, false);
    } catch (const std::exception& e) {
      result = Status::Error(request.method + " " + request.path + ": " + e.what());
    }
    if (canceller_.Unregister(h) && !result.ok()) return Abandoned(request, true);
    return result;
  }

  RestConfig config_;
  TokenSource tokens_;
  Canceller canceller_;
  std::unique_ptr<http_client> client_;
};

std::once_flag pool_once;

}  // namespace

Result<std::unique_ptr<Transport>> NewHttpTransport(const RestConfig& config, Clock* clock,
                                                    HttpTransportOptions options) {
  std::call_once(pool_once, [&] {
    // cpprestsdk's default pool has 40 threads; a controller on 2 cores does
    // better with a few. This must happen before the first request.
    crossplat::threadpool::initialize_with_threads(static_cast<size_t>(options.pool_threads));
  });
  auto t = std::make_unique<HttpTransport>(config, clock);
  if (Status s = t->Init(); !s.ok()) return s;
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace ipguard::kube
