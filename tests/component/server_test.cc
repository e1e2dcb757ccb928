// The HTTPS server over real TLS on 127.0.0.1: protocol versions, plain HTTP
// and garbage on the TLS port, oversized and slow requests, and certificate
// files replaced while it runs.
#include "webhook/server.h"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <list>
#include <thread>

#include "tests/component/eventually.h"
#include "tests/component/tls_client.h"
#include "webhook/certs.h"

namespace ipguard::webhook {
namespace {

using testing_util::HttpReply;
using testing_util::TestClient;

void WriteFile(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  std::ofstream(tmp, std::ios::binary) << text;
  ASSERT_EQ(::rename(tmp.c_str(), path.c_str()), 0);
}

using testing_util::Eventually;

// A plain TCP client on bare system calls: it reads for a set time (the
// Asio client's blocking reads wait for the peer), and its descriptor can be
// made before it connects.
class RawSocket {
 public:
  explicit RawSocket(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (port) Connect(port);
  }
  ~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool Connect(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // What arrives within `d`, or until the peer closes.
  std::string ReadFor(std::chrono::milliseconds d) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + d;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_;
};

class ServerTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ipguard-server-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto ca = certs::GenerateCA("test-ca", std::chrono::hours(24));
    ASSERT_TRUE(ca.ok()) << ca.error();
    ca_ = *ca;
  }
  void TearDown() override {
    server_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  certs::KeyPair Serving() {
    auto s = certs::GenerateServing(ca_, "ipguard-webhook", {"localhost"}, {"127.0.0.1"},
                                    std::chrono::hours(24));
    EXPECT_TRUE(s.ok()) << s.error();
    return *s;
  }
  void InstallCert(const certs::KeyPair& pair) {
    WriteFile(dir_ + "/tls.key", pair.key_pem);
    WriteFile(dir_ + "/tls.crt", pair.cert_pem);
  }

  void StartServer(bool tls, ServerOptions o = {}) {
    o.tls = tls;
    o.cert_file = dir_ + "/tls.crt";
    o.key_file = dir_ + "/tls.key";
    o.reload_interval = std::chrono::milliseconds(50);
    server_ = std::make_unique<HttpServer>(o, [this](const ServerRequest& r) {
      ++handled_;
      return ServerResponse{200, "application/json",
                            "{\"echo\":" + std::to_string(r.body.size()) + "}"};
    });
    ASSERT_TRUE(server_->Start().ok());
  }

  std::string dir_;
  certs::KeyPair ca_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<int> handled_{0};
};

TEST_F(ServerTest, ServesOverVerifiedTlsWithKeepAlive) {
  InstallCert(Serving());
  StartServer(true);
  ASSERT_TRUE(server_->certificate_loaded());
  TestClient c(server_->port(), true, ca_.cert_pem);
  ASSERT_EQ(c.Connect(), "");
  for (int i = 0; i < 3; ++i) {
    auto r = c.Request("POST", "/validate", "{}");
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"echo\":2}");
  }
  EXPECT_EQ(handled_.load(), 3);
}

TEST_F(ServerTest, OnlyTls12And13AreAccepted) {
  InstallCert(Serving());
  StartServer(true);
  {
    TestClient old(server_->port(), true, ca_.cert_pem, TLS1_1_VERSION);
    EXPECT_NE(old.Connect(), "") << "TLS 1.1 must be refused";
  }
  for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    TestClient c(server_->port(), true, ca_.cert_pem, v);
    ASSERT_EQ(c.Connect(), "") << "version " << v;
    EXPECT_EQ(c.Request("POST", "/validate", "{}").status, 200);
  }
}

// The API server never resumes a session: the server issues no TLS 1.3
// ticket and keeps no TLS 1.2 session, so a client that offers one
// handshakes in full.
TEST_F(ServerTest, NoSessionIsKeptForResumption) {
  InstallCert(Serving());
  StartServer(true);
  for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    TestClient first(server_->port(), true, ca_.cert_pem, v);
    ASSERT_EQ(first.Connect(), "") << "version " << v;
    // TLS 1.3 tickets would come after the handshake, read with the answer.
    ASSERT_EQ(first.Request("POST", "/validate", "{}").status, 200);
    SSL_SESSION* session = first.Session();
    ASSERT_NE(session, nullptr);
    EXPECT_EQ(SSL_SESSION_has_ticket(session), 0) << "version " << v;
    TestClient second(server_->port(), true, ca_.cert_pem, v);
    second.ResumeWith(session);
    ASSERT_EQ(second.Connect(), "") << "version " << v;
    EXPECT_FALSE(second.Reused()) << "version " << v;
    EXPECT_EQ(second.Request("POST", "/validate", "{}").status, 200);
    SSL_SESSION_free(session);
  }
}

TEST_F(ServerTest, PlainHttpOnTheTlsPortIsToldSoAndClosed) {
  InstallCert(Serving());
  StartServer(true);
  TestClient plain(server_->port(), false);
  ASSERT_EQ(plain.Connect(), "");
  std::string reply =
      plain.Raw("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  EXPECT_NE(reply.find("HTTP request to an HTTPS server"), std::string::npos);
  EXPECT_EQ(handled_.load(), 0) << "nothing reached the handler";
}

TEST_F(ServerTest, GarbageInsteadOfATlsHelloDoesNotStopTheServer) {
  InstallCert(Serving());
  StartServer(true);
  {
    TestClient junk(server_->port(), false);
    ASSERT_EQ(junk.Connect(), "");
    junk.Raw(std::string("\x16\x03\x01\x00\x05garbage-garbage-garbage", 28), 1);
  }
  {
    TestClient junk(server_->port(), false);
    ASSERT_EQ(junk.Connect(), "");
    junk.Raw(std::string(300, '\xff'), 1);
  }
  TestClient good(server_->port(), true, ca_.cert_pem);
  ASSERT_EQ(good.Connect(), "");
  EXPECT_EQ(good.Request("POST", "/validate", "{}").status, 200);
}

TEST_F(ServerTest, BodiesOverTheLimitGet413AndTheServerGoesOn) {
  InstallCert(Serving());
  StartServer(true);
  {
    TestClient c(server_->port(), true, ca_.cert_pem);
    ASSERT_EQ(c.Connect(), "");
    auto r = c.Request("POST", "/validate", std::string(10 * 1024 * 1024, 'x'));
    // The server may answer before the client has written everything, so
    // the client can also see its write cut; either way nothing was handled.
    if (r.ok) {
      EXPECT_EQ(r.status, 413);
    }
  }
  EXPECT_EQ(handled_.load(), 0);
  {
    TestClient c(server_->port(), true, ca_.cert_pem);
    ASSERT_EQ(c.Connect(), "");
    std::string just_under(3 * 1024 * 1024 - 10, 'x');
    auto r = c.Request("POST", "/validate", just_under);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
  }
}

TEST_F(ServerTest, ASlowClientIsCutOffWhileOthersAreServed) {
  InstallCert(Serving());
  ServerOptions o;
  o.header_timeout = std::chrono::milliseconds(600);
  o.body_timeout = std::chrono::milliseconds(600);
  StartServer(true, o);
  TestClient slow(server_->port(), true, ca_.cert_pem);
  ASSERT_EQ(slow.Connect(), "");
  auto start = std::chrono::steady_clock::now();
  std::atomic<bool> cut{false};
  std::thread dribble([&] {
    // One byte every 100 ms: the headers would take about 6 s.
    std::string req = "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    for (char ch : req) {
      if (!slow.Write(std::string(1, ch))) {
        cut = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (std::chrono::steady_clock::now() - start > std::chrono::seconds(3)) return;
    }
  });
  TestClient good(server_->port(), true, ca_.cert_pem);
  ASSERT_EQ(good.Connect(), "");
  EXPECT_EQ(good.Request("POST", "/validate", "{}").status, 200);
  dribble.join();
  EXPECT_TRUE(cut.load()) << "the slow client was cut off at the header timeout";
  EXPECT_EQ(handled_.load(), 1);
}

TEST_F(ServerTest, MalformedHttpGets400) {
  StartServer(false);
  TestClient c(server_->port(), false);
  ASSERT_EQ(c.Connect(), "");
  std::string reply = c.Raw("THIS IS NOT HTTP\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  TestClient d(server_->port(), false);
  ASSERT_EQ(d.Connect(), "");
  EXPECT_EQ(d.Request("GET", "/metrics", "").status, 200);
}

TEST_F(ServerTest, ReplacedCertificateFilesArePickedUpWithoutRestart) {
  certs::KeyPair first = Serving();
  InstallCert(first);
  StartServer(true);
  {
    TestClient c(server_->port(), true, ca_.cert_pem);
    ASSERT_EQ(c.Connect(), "");
    EXPECT_EQ(c.PeerCertPem(), first.cert_pem);
  }
  certs::KeyPair second = Serving();
  ASSERT_NE(first.cert_pem, second.cert_pem);
  InstallCert(second);
  ASSERT_TRUE(Eventually([&] { return server_->certificate_loads() >= 2; }));
  TestClient c(server_->port(), true, ca_.cert_pem);
  ASSERT_EQ(c.Connect(), "");
  EXPECT_EQ(c.PeerCertPem(), second.cert_pem);
  EXPECT_EQ(c.Request("POST", "/validate", "{}").status, 200);
}

TEST_F(ServerTest, NoCertificateMeansNoHandshakeUntilOneArrives) {
  StartServer(true);
  EXPECT_FALSE(server_->certificate_loaded());
  {
    TestClient c(server_->port(), true, ca_.cert_pem);
    EXPECT_NE(c.Connect(), "");
  }
  // A key that does not match the certificate is not loaded either.
  certs::KeyPair a = Serving(), b = Serving();
  WriteFile(dir_ + "/tls.crt", a.cert_pem);
  WriteFile(dir_ + "/tls.key", b.key_pem);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(server_->certificate_loaded());
  WriteFile(dir_ + "/tls.key", a.key_pem);
  ASSERT_TRUE(Eventually([&] { return server_->certificate_loaded(); }));
  TestClient c(server_->port(), true, ca_.cert_pem);
  ASSERT_EQ(c.Connect(), "");
  EXPECT_EQ(c.Request("POST", "/validate", "{}").status, 200);
}

TEST_F(ServerTest, StopFinishesARequestInFlight) {
  std::atomic<bool> entered{false};
  ServerOptions o;
  server_ = std::make_unique<HttpServer>(o, [&](const ServerRequest&) {
    entered = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return ServerResponse{200, "text/plain", "done"};
  });
  ASSERT_TRUE(server_->Start().ok());
  TestClient c(server_->port(), false);
  ASSERT_EQ(c.Connect(), "");
  HttpReply reply;
  std::thread t([&] { reply = c.Request("GET", "/x", "", false); });
  ASSERT_TRUE(Eventually([&] { return entered.load(); }));
  server_->Stop(std::chrono::seconds(5));
  t.join();
  ASSERT_TRUE(reply.ok) << reply.error;
  EXPECT_EQ(reply.body, "done");
}


// An answer that comes later, from another thread, leaves the server's one
// thread free: a second client is answered while the first still waits, and
// the late answer then reaches the first client on its own connection.
TEST_F(ServerTest, AnAnswerFromAnotherThreadLeavesTheServerThreadFree) {
  std::mutex mu;
  std::vector<Reply> waiting;
  ServerOptions o;
  o.threads = 1;
  server_ = std::make_unique<HttpServer>(o, AsyncHandler([&](const ServerRequest& r, Reply reply) {
    if (r.target == "/later") {
      std::lock_guard<std::mutex> l(mu);
      waiting.push_back(std::move(reply));
      return;
    }
    reply(ServerResponse{200, "text/plain", "now"});
  }));
  ASSERT_TRUE(server_->Start().ok());
  TestClient slow(server_->port(), false), quick(server_->port(), false);
  ASSERT_EQ(slow.Connect(), "");
  ASSERT_EQ(quick.Connect(), "");
  HttpReply late;
  std::thread t([&] { late = slow.Request("POST", "/later", "x", true); });
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard<std::mutex> l(mu);
    return waiting.size() == 1;
  }));
  HttpReply now = quick.Request("POST", "/now", "y", true);
  ASSERT_TRUE(now.ok) << now.error;
  EXPECT_EQ(now.body, "now");
  std::thread answerer([&] {
    std::lock_guard<std::mutex> l(mu);
    waiting[0](ServerResponse{200, "text/plain", "later"});
    waiting[0](ServerResponse{500, "text/plain", "a second answer is ignored"});
  });
  answerer.join();
  t.join();
  ASSERT_TRUE(late.ok) << late.error;
  EXPECT_EQ(late.body, "later");
  // The connection goes on with the next request.
  HttpReply again = slow.Request("POST", "/now", "z", false);
  ASSERT_TRUE(again.ok) << again.error;
  EXPECT_EQ(again.body, "now");
}

// A request still unanswered when the server stops gets no answer, and an
// answer that comes after the server is gone does nothing.
TEST_F(ServerTest, AnAnswerAfterStopIsDropped) {
  Reply kept;
  std::atomic<bool> entered{false};
  ServerOptions o;
  server_ = std::make_unique<HttpServer>(o, AsyncHandler([&](const ServerRequest&, Reply reply) {
    kept = std::move(reply);
    entered = true;
  }));
  ASSERT_TRUE(server_->Start().ok());
  TestClient c(server_->port(), false);
  ASSERT_EQ(c.Connect(), "");
  HttpReply reply;
  std::thread t([&] { reply = c.Request("POST", "/x", "", false); });
  ASSERT_TRUE(Eventually([&] { return entered.load(); }));
  server_->Stop(std::chrono::milliseconds(50));
  t.join();
  EXPECT_FALSE(reply.ok);
  server_.reset();
  kept(ServerResponse{200, "text/plain", "too late"});  // must not touch the freed server
}

// HEAD gets the header lines a POST would get, and no body: the next answer
// on the same connection starts right after them.
TEST_F(ServerTest, HeadGetsTheHeadersWithoutABody) {
  StartServer(false);
  TestClient c(server_->port(), false);
  ASSERT_EQ(c.Connect(), "");
  std::string reply = c.Raw(
      "HEAD /validate HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
      2);
  size_t second = reply.find("HTTP/1.1", 1);
  ASSERT_NE(second, std::string::npos) << reply;
  std::string head = reply.substr(0, second);
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Length: 10\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << "no body after a HEAD answer: " << head;
  EXPECT_EQ(reply.substr(reply.size() - 10), "{\"echo\":2}");
}

// A client that sends Expect: 100-continue (curl does for large bodies) is
// told to go on at once instead of waiting out its own timer.
TEST_F(ServerTest, Expect100ContinueIsAnswered) {
  StartServer(false);
  RawSocket c(server_->port());
  ASSERT_TRUE(c.Send("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     "Expect: 100-continue\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(c.ReadFor(std::chrono::milliseconds(1000)), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(c.Send("{}"));
  std::string reply = c.ReadFor(std::chrono::milliseconds(1000));
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  ASSERT_GE(reply.size(), 10u);
  EXPECT_EQ(reply.substr(reply.size() - 10), "{\"echo\":2}");
}

TEST_F(ServerTest, ConnectionsBeyondTheCapAreClosedAtOnce) {
  InstallCert(Serving());
  ServerOptions o;
  o.max_connections = 3;
  StartServer(true, o);
  std::list<TestClient> open;
  for (int i = 0; i < 3; ++i) {
    open.emplace_back(server_->port(), true, ca_.cert_pem);
    ASSERT_EQ(open.back().Connect(), "");
  }
  ASSERT_TRUE(Eventually([&] { return server_->stats().connections == 3; }));
  TestClient extra(server_->port(), true, ca_.cert_pem);
  EXPECT_NE(extra.Connect(), "") << "the fourth connection is closed before its handshake";
  EXPECT_EQ(server_->stats().connections_refused, 1);
  // The connections within the cap are served.
  EXPECT_EQ(open.front().Request("POST", "/validate", "{}").status, 200);
  open.pop_front();
  ASSERT_TRUE(Eventually([&] { return server_->stats().connections == 2; }));
  TestClient again(server_->port(), true, ca_.cert_pem);
  ASSERT_EQ(again.Connect(), "");
  EXPECT_EQ(again.Request("POST", "/validate", "{}").status, 200);
}

// Stalled bodies cannot add up past the budget: one more gets 503 with
// Retry-After while the others are held, and the budget comes back.
TEST_F(ServerTest, BodiesBeyondTheBudgetGet503WithRetryAfter) {
  ServerOptions o;
  o.max_pending_body_bytes = 1000000;
  StartServer(false, o);
  TestClient stalled(server_->port(), false);
  ASSERT_EQ(stalled.Connect(), "");
  ASSERT_TRUE(stalled.Write("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 800000\r\n\r\n"));
  ASSERT_TRUE(Eventually([&] { return server_->stats().pending_body_bytes == 800000; }));
  TestClient second(server_->port(), false);
  ASSERT_EQ(second.Connect(), "");
  std::string reply = second.Raw(
      "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n" +
      std::string(300000, 'x'), 2);
  EXPECT_EQ(reply.rfind("HTTP/1.1 503", 0), 0u) << reply.substr(0, 200);
  EXPECT_NE(reply.find("Retry-After: 1\r\n"), std::string::npos) << reply.substr(0, 300);
  EXPECT_EQ(server_->stats().requests_refused_busy, 1);
  // A small request still fits.
  TestClient small(server_->port(), false);
  ASSERT_EQ(small.Connect(), "");
  EXPECT_EQ(small.Request("POST", "/validate", std::string(1000, 'x')).status, 200);
  // The stalled one finishes and gives its share back.
  ASSERT_TRUE(stalled.Write(std::string(800000, 'x')));
  ASSERT_TRUE(Eventually([&] { return handled_.load() == 2; }));
  EXPECT_TRUE(Eventually([&] { return server_->stats().pending_body_bytes == 0; }));
  EXPECT_EQ(handled_.load(), 2);
}

// Out of file descriptors, accept() fails at once for as long as it lasts:
// the loop backs off instead of spinning on a core, and serves again once
// descriptors come back.
TEST_F(ServerTest, OutOfFileDescriptorsTheAcceptLoopBacksOff) {
  StartServer(false);
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  // The clients' sockets exist before the limit drops; their connects need
  // no new descriptor.
  RawSocket a(0), b(0);
  // The lowest free descriptor number: with the limit there, the server's
  // accept() has no descriptor left to take.
  int lowest = ::dup(0);
  ASSERT_GE(lowest, 0);
  ::close(lowest);
  struct rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(lowest);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  bool connected = a.Connect(server_->port()) && b.Connect(server_->port());
  int64_t before = server_->stats().accept_errors;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  int64_t errors_while_out = server_->stats().accept_errors - before;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_TRUE(connected) << "the kernel completes both connections in the backlog";
  // Doubling from 10 ms to 1 s: 8 tries in 1.5 s, where a spinning loop
  // makes hundreds of thousands.
  EXPECT_GE(errors_while_out, 1);
  EXPECT_LE(errors_while_out, 12);
  // The connections that waited in the backlog are served once descriptors
  // are back (after at most one backoff of 1 s).
  ASSERT_TRUE(a.Send("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"));
  std::string reply = a.ReadFor(std::chrono::milliseconds(3000));
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
}

// With a client CA, only a client with a certificate that CA signed gets an
// answer; the others fail the handshake, which is counted.
TEST_F(ServerTest, AClientCaAdmitsOnlyItsClients) {
  InstallCert(Serving());
  auto client_ca = certs::GenerateCA("apiserver-client-ca", std::chrono::hours(24));
  ASSERT_TRUE(client_ca.ok());
  auto other_ca = certs::GenerateCA("other-ca", std::chrono::hours(24));
  ASSERT_TRUE(other_ca.ok());
  WriteFile(dir_ + "/client-ca.crt", client_ca->cert_pem);
  ServerOptions o;
  o.client_ca_file = dir_ + "/client-ca.crt";
  StartServer(true, o);
  auto request = [&](const certs::KeyPair* cert) {
    TestClient c(server_->port(), true, ca_.cert_pem);
    if (cert) c.UseClientCertificate(cert->cert_pem, cert->key_pem);
    std::string err = c.Connect();
    if (!err.empty()) {
      std::cerr << "connect: " << err << "\n";
      return 0;
    }
    auto r = c.Request("POST", "/validate", "{}");
    if (!r.ok) std::cerr << "request: " << r.error << "\n";
    return r.ok ? r.status : 0;
  };
  auto good = certs::GenerateClient(*client_ca, "kube-apiserver", std::chrono::hours(24));
  auto stranger = certs::GenerateClient(*other_ca, "kube-apiserver", std::chrono::hours(24));
  ASSERT_TRUE(good.ok() && stranger.ok());
  EXPECT_EQ(request(&*good), 200);
  EXPECT_EQ(request(nullptr), 0) << "no certificate";
  EXPECT_EQ(request(&*stranger), 0) << "a certificate of another CA";
  EXPECT_EQ(handled_.load(), 1);
  // The server counts a failure after it has sent its alert, which the client
  // may have read first.
  EXPECT_TRUE(Eventually([&] { return server_->stats().handshakes_failed >= 2; }));
}

}  // namespace
}  // namespace ipguard::webhook
