#include "kube/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace ipguard::kube {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ipguard-config-" + std::to_string(::getpid()) + "-" +
                                        testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  fs::path dir_;
};

const char kConfig[] = R"(apiVersion: v1
kind: Config
current-context: admin@prod
contexts:
- name: admin@prod
  context: {cluster: prod, user: admin, namespace: ipguard-system}
- name: viewer@prod
  context: {cluster: prod, user: viewer}
clusters:
- name: prod
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: Q0EgUEVN
users:
- name: admin
  user:
    client-certificate: certs/admin.crt
    client-key-data: S0VZIFBFTQ==
- name: viewer
  user: {token: abc.def}
)";

TEST_F(ConfigTest, CurrentContextWithInlineAndFileCredentials) {
  fs::create_directories(dir_ / "certs");
  Write("certs/admin.crt", "CERT PEM");
  auto c = ParseKubeconfig(kConfig, dir_.string());
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->server, "https://10.0.0.1:6443");
  EXPECT_EQ(c->ca_pem, "CA PEM");
  EXPECT_EQ(c->client_cert_pem, "CERT PEM");
  EXPECT_EQ(c->client_key_pem, "KEY PEM");
  EXPECT_EQ(c->ns, "ipguard-system");
  auto v = ParseKubeconfig(kConfig, dir_.string(), "viewer@prod");
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v->token, "abc.def");
  EXPECT_TRUE(v->client_cert_pem.empty());
}

TEST_F(ConfigTest, RefusesWhatItWillNotDo) {
  auto with = [](const std::string& from, const std::string& to) {
    std::string s = kConfig;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  struct Case {
    std::string text;
    std::string reason;
  } cases[] = {
      {with("certificate-authority-data: Q0EgUEVN", "insecure-skip-tls-verify: true"), "always verifies TLS"},
      {with("https://10.0.0.1:6443", "http://10.0.0.1:8080"), "must be an https:// URL"},
      {with("{token: abc.def}", "{exec: {command: az}}"), "credential plugin"},
      {with("current-context: admin@prod", "current-context: nope"), "context \"nope\" not found"},
      {with("cluster: prod, user: admin", "cluster: other, user: admin"), "cluster \"other\" not found"},
      {with("client-certificate: certs/admin.crt", "client-certificate: missing.crt"), "cannot be read"},
      {with("Q0EgUEVN", "Q0E*UEVN"), "not base64"},
      {"[1, 2]", "not a Config object"},
  };
  for (const auto& c : cases) {
    auto r = ParseKubeconfig(c.text, dir_.string(), c.text.find("viewer") != std::string::npos &&
                                                            c.text.find("exec") != std::string::npos
                                                        ? "viewer@prod"
                                                        : "");
    ASSERT_FALSE(r.ok()) << c.reason;
    EXPECT_NE(r.error().find(c.reason), std::string::npos) << r.error();
  }
}

TEST_F(ConfigTest, InClusterAndTokenRotation) {
  Write("ca.crt", "CLUSTER CA");
  Write("token", "token-1\n");
  Write("namespace", "ipguard-system");
  std::map<std::string, std::string> env = {{"KUBERNETES_SERVICE_HOST", "fd00::1"},
                                            {"KUBERNETES_SERVICE_PORT", "443"}};
  auto getenv = [&](const char* k) -> const char* {
    auto it = env.find(k);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto c = InClusterConfig(getenv, dir_.string());
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->server, "https://[fd00::1]:443");
  EXPECT_EQ(c->ca_pem, "CLUSTER CA");
  EXPECT_EQ(c->ns, "ipguard-system");
  FakeClock clock;
  TokenSource tokens(*c, &clock);
  EXPECT_EQ(*tokens.Token(), "token-1");
  Write("token", "token-2\n");
  clock.Advance(std::chrono::seconds(30));
  EXPECT_EQ(*tokens.Token(), "token-1") << "read again only once a minute";
  clock.Advance(std::chrono::seconds(31));
  EXPECT_EQ(*tokens.Token(), "token-2");
  env.clear();
  EXPECT_FALSE(InClusterConfig(getenv, dir_.string()).ok());
}

TEST(Base64, Decodes) {
  EXPECT_EQ(*DecodeBase64("aGVsbG8="), "hello");
  EXPECT_EQ(*DecodeBase64("aGVs\nbG8"), "hello");
  EXPECT_FALSE(DecodeBase64("a$b").ok());
}

}  // namespace
}  // namespace ipguard::kube
