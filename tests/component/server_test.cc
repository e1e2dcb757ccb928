// The HTTPS server over real TLS on 127.0.0.1: protocol versions, plain HTTP
// and garbage on the TLS port, oversized and slow requests, and certificate
// files replaced while it runs.
#include "webhook/server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
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

}  // namespace
}  // namespace ipguard::webhook
