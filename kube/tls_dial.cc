#include "kube/tls_dial.h"

#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <boost/asio/ip/address.hpp>

namespace ipguard::kube {

std::string ServerUrl::HostHeader() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? "443" : "80")) h += ":" + port;
  return h;
}

Result<ServerUrl> ParseServer(const std::string& server) {
  ServerUrl u;
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

void ConfigureClientTls(boost::asio::ssl::context& ctx, const RestConfig& config) {
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  if (config.ca_pem.empty()) {
    ctx.set_default_verify_paths();
  } else {
    ctx.add_certificate_authority(boost::asio::buffer(config.ca_pem));
  }
  if (!config.client_cert_pem.empty()) {
    ctx.use_certificate_chain(boost::asio::buffer(config.client_cert_pem));
    ctx.use_private_key(boost::asio::buffer(config.client_key_pem), boost::asio::ssl::context::pem);
  }
  ctx.set_verify_mode(boost::asio::ssl::verify_peer);
}

void VerifyServerName(SSL* ssl, const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (!ec) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), host.c_str(), 0);
  }
}

SocketDeadlines* SocketDeadlines::Shared() {
  static SocketDeadlines* shared = new SocketDeadlines();  // never destroyed: used until exit
  return shared;
}

SocketDeadlines::SocketDeadlines() : thread_([this] { Loop(); }) {}

SocketDeadlines::~SocketDeadlines() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void SocketDeadlines::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    if (entries_.empty()) {
      cv_.wait(l);
      continue;
    }
    cv_.wait_for(l, std::chrono::milliseconds(50));
    auto now = std::chrono::steady_clock::now();
    for (auto& e : entries_) {
      if (e.fired.load()) continue;
      bool late = now >= e.deadline;
      if (late || (e.cancel && e.cancel->load())) {
        e.timed_out = late;
        e.fired = true;
        ::shutdown(e.fd, SHUT_RDWR);  // ends a call blocked on the socket
      }
    }
  }
}

SocketDeadlines::Guard::Guard(SocketDeadlines* owner, int fd,
                              std::chrono::steady_clock::time_point deadline,
                              const std::atomic<bool>* cancel)
    : owner_(owner) {
  bool first;
  {
    std::lock_guard<std::mutex> l(owner_->mu_);
    first = owner_->entries_.empty();
    it_ = owner_->entries_.emplace(owner_->entries_.end());
    it_->fd = fd;
    it_->deadline = deadline;
    it_->cancel = cancel;
  }
  if (first) owner_->cv_.notify_all();
}

SocketDeadlines::Guard::~Guard() {
  std::lock_guard<std::mutex> l(owner_->mu_);
  owner_->entries_.erase(it_);
}

bool SocketDeadlines::Guard::fired() const { return it_->fired.load(); }
bool SocketDeadlines::Guard::timed_out() const { return it_->timed_out.load(); }

}  // namespace ipguard::kube
