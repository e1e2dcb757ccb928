// A small blocking HTTP(S) client for component tests, on Boost.Asio and
// Beast: it can pin the TLS version, send raw bytes, and show the
// certificate the server presented, which a product client would hide.
#ifndef IPGUARD_TESTS_COMPONENT_TLS_CLIENT_H_
#define IPGUARD_TESTS_COMPONENT_TLS_CLIENT_H_

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace ipguard::testing_util {

namespace tls_asio = boost::asio;
namespace tls_beast = boost::beast;

struct HttpReply {
  bool ok = false;  // a complete HTTP response came back
  int status = 0;
  std::string body;
  std::string error;
  std::string peer_cert_pem;
};

class TestClient {
 public:
  // tls_version: 0 for the default range, or TLS1_1_VERSION etc. to pin one.
  TestClient(int port, bool tls, const std::string& ca_pem = "", int tls_version = 0)
      : port_(port), tls_(tls), ctx_(tls_asio::ssl::context::tls_client) {
    if (tls) {
      SSL_CTX* c = ctx_.native_handle();
      if (tls_version) {
        SSL_CTX_set_min_proto_version(c, tls_version);
        SSL_CTX_set_max_proto_version(c, tls_version);
        SSL_CTX_set_security_level(c, 0);  // let OpenSSL 3 even try TLS 1.1
      }
      if (!ca_pem.empty()) {
        ctx_.add_certificate_authority(tls_asio::buffer(ca_pem));
        ctx_.set_verify_mode(tls_asio::ssl::verify_peer);
      }
    }
  }

  // Presents this certificate when the server asks for one (call before
  // Connect).
  void UseClientCertificate(const std::string& cert_pem, const std::string& key_pem) {
    ctx_.use_certificate_chain(tls_asio::buffer(cert_pem));
    ctx_.use_private_key(tls_asio::buffer(key_pem), tls_asio::ssl::context::pem);
  }

  // Connects (and handshakes); an empty string on success.
  std::string Connect() {
    boost::system::error_code ec;
    tcp_ = std::make_unique<tls_asio::ip::tcp::socket>(ioc_);
    tcp_->connect({tls_asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_)},
                  ec);
    if (ec) return "connect: " + ec.message();
    // As real clients do; without it a request written in two TLS records
    // waits on the peer's delayed ACK.
    tcp_->set_option(tls_asio::ip::tcp::no_delay(true), ec);
    SetTimeout(5);
    if (!tls_) return "";
    ssl_ = std::make_unique<tls_asio::ssl::stream<tls_asio::ip::tcp::socket&>>(*tcp_, ctx_);
    if (resume_) SSL_set_session(ssl_->native_handle(), resume_);
    ssl_->handshake(tls_asio::ssl::stream_base::client, ec);
    if (ec) return "handshake: " + ec.message();
    return "";
  }

  void SetTimeout(int seconds) {
    struct timeval tv {
      seconds, 0
    };
    setsockopt(tcp_->native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }

  // The TLS session of the open connection, for ResumeWith (the caller
  // frees it with SSL_SESSION_free); null without one.
  SSL_SESSION* Session() { return ssl_ ? SSL_get1_session(ssl_->native_handle()) : nullptr; }
  // Offers `session` for resumption at the next Connect (kept by the caller
  // until then).
  void ResumeWith(SSL_SESSION* session) { resume_ = session; }
  // Whether the handshake resumed the offered session.
  bool Reused() { return ssl_ && SSL_session_reused(ssl_->native_handle()) == 1; }

  std::string PeerCertPem() {
    if (!ssl_) return "";
    X509* x = SSL_get1_peer_certificate(ssl_->native_handle());
    if (!x) return "";
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, x);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(n));
    BIO_free(bio);
    X509_free(x);
    return out;
  }

  // Sends one request on the open connection and reads one response.
  HttpReply Request(const std::string& method, const std::string& target, const std::string& body,
                    bool keep_alive = true) {
    namespace http = tls_beast::http;
    http::request<http::string_body> req{method == "POST" ? http::verb::post : http::verb::get,
                                         target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.keep_alive(keep_alive);
    req.body() = body;
    req.prepare_payload();
    HttpReply r;
    boost::system::error_code ec;
    http::response<http::string_body> res;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (ssl_) {
      http::write(*ssl_, req, ec);
      if (!ec) http::read(*ssl_, buffer_, parser, ec);
    } else {
      http::write(*tcp_, req, ec);
      if (!ec) http::read(*tcp_, buffer_, parser, ec);
    }
    if (ec) {
      r.error = ec.message();
      return r;
    }
    r.ok = true;
    r.status = static_cast<int>(parser.get().result_int());
    r.body = parser.get().body();
    return r;
  }

  // Writes raw bytes (plain or inside TLS) and reads until the peer closes
  // or the read times out.
  std::string Raw(const std::string& bytes, int wait_seconds = 5) {
    boost::system::error_code ec;
    if (ssl_) {
      tls_asio::write(*ssl_, tls_asio::buffer(bytes), ec);
    } else {
      tls_asio::write(*tcp_, tls_asio::buffer(bytes), ec);
    }
    SetTimeout(wait_seconds);
    std::string out;
    char buf[4096];
    for (;;) {
      size_t n = ssl_ ? ssl_->read_some(tls_asio::buffer(buf), ec)
                      : tcp_->read_some(tls_asio::buffer(buf), ec);
      if (ec || n == 0) break;
      out.append(buf, n);
    }
    return out;
  }

  // Writes without reading; false once the connection is gone.
  bool Write(const std::string& bytes) {
    boost::system::error_code ec;
    if (ssl_) {
      tls_asio::write(*ssl_, tls_asio::buffer(bytes), ec);
    } else {
      tls_asio::write(*tcp_, tls_asio::buffer(bytes), ec);
    }
    return !ec;
  }

  // Whether the server has closed the connection (a read sees EOF or reset).
  bool ClosedByPeer(int wait_seconds) {
    SetTimeout(wait_seconds);
    char c;
    boost::system::error_code ec;
    tcp_->read_some(tls_asio::buffer(&c, 1), ec);
    return ec == tls_asio::error::eof || ec == tls_asio::error::connection_reset;
  }

  tls_asio::ip::tcp::socket& socket() { return *tcp_; }

 private:
  int port_;
  bool tls_;
  tls_asio::io_context ioc_;
  tls_asio::ssl::context ctx_;
  std::unique_ptr<tls_asio::ip::tcp::socket> tcp_;
  std::unique_ptr<tls_asio::ssl::stream<tls_asio::ip::tcp::socket&>> ssl_;
  tls_beast::flat_buffer buffer_;
  SSL_SESSION* resume_ = nullptr;
};

// Keeps a webhook busy: `review` sent at about 50 a second on one kept connection
// for `seconds`, or until Stop(); answered() counts the 200s.
class BusyReviewer {
 public:
  BusyReviewer(int port, const std::string& ca_pem, std::string review,
               std::chrono::seconds seconds)
      : thread_([this, port, ca_pem, review = std::move(review), seconds] {
          TestClient client(port, true, ca_pem);
          if (!client.Connect().empty()) return;
          auto until = std::chrono::steady_clock::now() + seconds;
          while (!stop_.load() && std::chrono::steady_clock::now() < until) {
            auto reply = client.Request("POST", "/validate", review);
            answered_ += reply.ok && reply.status == 200;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        }) {}
  ~BusyReviewer() { Stop(); }
  // Until its `seconds` are over.
  void Wait() {
    if (thread_.joinable()) thread_.join();
  }
  void Stop() {
    stop_ = true;
    Wait();
  }
  int answered() const { return answered_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  std::thread thread_;  // last: it starts once the counters are there
};

// The value of a metric without labels ("name value") in a /metrics text, or -1.
inline double Counter(const std::string& metrics, const std::string& name) {
  size_t at = metrics.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(metrics.substr(at + name.size() + 2));
}

}  // namespace ipguard::testing_util

#endif  // IPGUARD_TESTS_COMPONENT_TLS_CLIENT_H_
