// What the kube layer's own Boost.Beast clients (StreamGet for lists, the
// kept connections of kept_transport.h) share: the server URL taken apart,
// TLS set up as for every request (http_transport.h), and one thread that
// ends a blocked socket call when its deadline passes or its caller cancels.
#ifndef IPGUARD_KUBE_TLS_DIAL_H_
#define IPGUARD_KUBE_TLS_DIAL_H_

#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <condition_variable>
#include <list>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "kube/config.h"

namespace ipguard::kube {

struct ServerUrl {
  bool tls = true;
  std::string host;    // without brackets
  std::string port;
  std::string prefix;  // a path the server URL carries, without the trailing '/'

  // The Host header: the host, bracketed when it is an IPv6 address.
  std::string HostHeader() const;
};

// "https://host[:port][/prefix]", or "http://" for a loopback host only.
Result<ServerUrl> ParseServer(const std::string& server);

// A TLS client context as every request of ipguard's uses: TLS 1.2 or newer,
// the server verified against the config's CA (the system store when none is
// given), the config's client certificate presented. Throws what Asio throws
// for key material that does not load.
void ConfigureClientTls(boost::asio::ssl::context& ctx, const RestConfig& config);

// Makes the handshake of `ssl` check that the server's certificate names
// `host` (an IP address or a DNS name, which is also sent as SNI).
void VerifyServerName(SSL* ssl, const std::string& host);

struct SocketDeadlinesEntry;

// One thread for every socket call that must not outlive its deadline: it
// shuts a registered socket down (which ends a read or write blocked on it)
// once the deadline has passed or the cancel flag is set, checking every
// 50 ms while anything is registered and sleeping otherwise.
class SocketDeadlines {
 public:
  static SocketDeadlines* Shared();

  SocketDeadlines();
  ~SocketDeadlines();

  // Registered for its lifetime; the socket is never touched after it ends.
  class Guard {
   public:
    Guard(SocketDeadlines* owner, int fd, std::chrono::steady_clock::time_point deadline,
          const std::atomic<bool>* cancel);
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    // Whether the socket was shut down, and whether for the deadline.
    bool fired() const;
    bool timed_out() const;

   private:
    SocketDeadlines* owner_;
    std::list<struct SocketDeadlinesEntry>::iterator it_;
  };

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::list<SocketDeadlinesEntry> entries_;
  bool stop_ = false;
  std::thread thread_;
};

struct SocketDeadlinesEntry {
  int fd;
  std::chrono::steady_clock::time_point deadline;
  const std::atomic<bool>* cancel;
  std::atomic<bool> fired{false};
  std::atomic<bool> timed_out{false};
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_TLS_DIAL_H_
