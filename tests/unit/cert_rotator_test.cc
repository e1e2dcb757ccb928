#include "webhook/cert_rotator.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "kube/config.h"
#include "tests/files.h"
#include "tests/unit/fake_transport.h"

namespace ipguard::webhook {
namespace {

using kube::FakeTransport;
using nlohmann::json;
using std::chrono::hours;
namespace fs = std::filesystem;

const char kSecretPath[] = "/api/v1/namespaces/ns/secrets/ipguard-webhook-cert";
const char kSecretsPath[] = "/api/v1/namespaces/ns/secrets";
const char kVwcPath[] = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/";
const char kNotFound[] =
    R"({"kind":"Status","code":404,"reason":"NotFound","message":"not found"})";
const char kAlreadyExists[] =
    R"({"kind":"Status","code":409,"reason":"AlreadyExists","message":"already exists"})";
const char kConflict[] =
    R"({"kind":"Status","code":409,"reason":"Conflict","message":"the object has been modified"})";
const std::vector<std::string> kDnsNames = {"ipguard-webhook.ns.svc",
                                            "ipguard-webhook.ns.svc.cluster.local"};
const std::vector<std::string> kIps = {"127.0.0.1"};

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "cert_rotator_test.XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Decode(const json& data, const char* key) {
  auto r = kube::DecodeBase64(data.at(key).get<std::string>());
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : "";
}

// What a Secret written by some replica holds.
struct Material {
  certs::KeyPair ca;
  certs::KeyPair serving;
};

Material MakeMaterial(hours ca_validity, hours serving_validity,
                      const std::vector<std::string>& dns = kDnsNames,
                      const std::vector<std::string>& ips = kIps) {
  auto ca = certs::GenerateCA("other-replica-ca", ca_validity);
  EXPECT_TRUE(ca.ok()) << ca.error();
  auto serving = certs::GenerateServing(*ca, "ipguard-webhook", dns, ips, serving_validity);
  EXPECT_TRUE(serving.ok()) << serving.error();
  return Material{*ca, *serving};
}

json SecretJson(const Material& m, const std::string& rv) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata",
           {{"name", "ipguard-webhook-cert"}, {"namespace", "ns"}, {"resourceVersion", rv}}},
          {"type", "kubernetes.io/tls"},
          {"data",
           {{"tls.crt", certs::EncodeBase64(m.serving.cert_pem)},
            {"tls.key", certs::EncodeBase64(m.serving.key_pem)},
            {"ca.crt", certs::EncodeBase64(m.ca.cert_pem)},
            {"ca.key", certs::EncodeBase64(m.ca.key_pem)}}}};
}

// A configuration with two webhooks whose caBundles are as given ("" for
// none), the way Helm installs it before the first round.
json Vwc(const std::string& rv, const std::string& bundle0, const std::string& bundle1) {
  json hooks = json::array();
  for (const auto& bundle : {bundle0, bundle1}) {
    json cc = {
        {"service", {{"name", "ipguard-webhook"}, {"namespace", "ns"}, {"path", "/validate"}}}};
    if (!bundle.empty()) cc["caBundle"] = bundle;
    hooks.push_back(
        {{"name", "hook" + std::to_string(hooks.size()) + ".ipguard.io"}, {"clientConfig", cc}});
  }
  return {{"apiVersion", "admissionregistration.k8s.io/v1"},
          {"kind", "ValidatingWebhookConfiguration"},
          {"metadata", {{"name", "ipguard"}, {"resourceVersion", rv}}},
          {"webhooks", hooks}};
}

std::vector<kube::HttpRequest> Requests(const FakeTransport& t, const std::string& method,
                                        const std::string& path) {
  std::vector<kube::HttpRequest> out;
  for (const auto& r : t.requests()) {
    if (r.method == method && r.path == path) out.push_back(r);
  }
  return out;
}

class CertRotatorTest : public ::testing::Test {
 protected:
  CertRotatorOptions Options() {
    CertRotatorOptions o;
    o.ns = "ns";
    o.cert_dir = (fs::path(dir_.path()) / "certs").string();  // created on first write
    o.dns_names = kDnsNames;
    o.ips = kIps;
    o.webhook_configs = {"ipguard"};
    o.log = [this](const std::string& line) { log_.push_back(line); };
    return o;
  }
  std::string File(const char* name) { return testing_util::ReadFile(fs::path(dir_.path()) / "certs" / name); }
  // The files on disk form a serving pair that verifies against ca.crt and
  // covers the wanted names.
  void ExpectGoodFiles() {
    certs::KeyPair serving{File("tls.crt"), File("tls.key")};
    Status s = certs::Verify(serving, File("ca.crt"));
    EXPECT_TRUE(s.ok()) << s.message();
    auto info = certs::Inspect(serving.cert_pem);
    ASSERT_TRUE(info.ok()) << info.error();
    EXPECT_EQ(info->dns_names, kDnsNames);
    EXPECT_EQ(info->ips, kIps);
  }
  void ScriptVwcAlreadyCurrent(const std::string& ca_pem) {
    std::string b64 = certs::EncodeBase64(ca_pem);
    transport_.Script({"GET", std::string(kVwcPath) + "ipguard", 200, Vwc("3", b64, b64).dump()});
  }

  TempDir dir_;
  FakeTransport transport_;
  kube::Client client_{&transport_};
  kube::FakeClock clock_;
  std::vector<std::string> log_;
};

TEST_F(CertRotatorTest, MissingSecretIsCreatedFilesWrittenAndCaBundlePatched) {
  transport_.Script({"GET", kSecretPath, 404, kNotFound});
  transport_.Script({"POST", kSecretsPath, 201, "{}"});
  transport_.Script({"GET", std::string(kVwcPath) + "ipguard", 200, Vwc("7", "", "").dump()});
  transport_.Script({"PUT", std::string(kVwcPath) + "ipguard", 200, "{}"});
  CertRotator rotator(&client_, &clock_, Options());
  EXPECT_FALSE(rotator.ready());

  Status s = rotator.EnsureOnce();
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(rotator.ready());

  auto posts = Requests(transport_, "POST", kSecretsPath);
  ASSERT_EQ(posts.size(), 1u);
  json secret = json::parse(posts[0].body);
  EXPECT_EQ(secret["type"], "kubernetes.io/tls");
  EXPECT_EQ(secret["metadata"]["name"], "ipguard-webhook-cert");
  EXPECT_EQ(secret["metadata"]["namespace"], "ns");
  const json& data = secret["data"];
  // The files are the Secret's content, byte for byte; the CA key stays in
  // the Secret only.
  EXPECT_EQ(File("tls.crt"), Decode(data, "tls.crt"));
  EXPECT_EQ(File("tls.key"), Decode(data, "tls.key"));
  EXPECT_EQ(File("ca.crt"), Decode(data, "ca.crt"));
  EXPECT_FALSE(fs::exists(fs::path(dir_.path()) / "certs" / "ca.key"));
  EXPECT_TRUE(
      certs::Verify({Decode(data, "ca.crt"), Decode(data, "ca.key")}, Decode(data, "ca.crt")).ok());
  ExpectGoodFiles();
  EXPECT_EQ(rotator.ca_pem(), File("ca.crt"));
  struct stat st {};
  ASSERT_EQ(stat((fs::path(dir_.path()) / "certs" / "tls.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the private key is not world-readable";
  // No temp files are left behind.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(fs::path(dir_.path()) / "certs")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 3);

  auto puts = Requests(transport_, "PUT", std::string(kVwcPath) + "ipguard");
  ASSERT_EQ(puts.size(), 1u);
  json vwc = json::parse(puts[0].body);
  EXPECT_EQ(vwc["metadata"]["resourceVersion"], "7") << "compare-and-swap on what was read";
  const std::string b64 = certs::EncodeBase64(File("ca.crt"));
  ASSERT_EQ(vwc["webhooks"].size(), 2u);
  for (const auto& hook : vwc["webhooks"]) {
    EXPECT_EQ(hook["clientConfig"]["caBundle"], b64);
    EXPECT_EQ(hook["clientConfig"]["service"]["name"], "ipguard-webhook") << "the rest is kept";
  }
}

TEST_F(CertRotatorTest, ValidSecretIsReusedAsIs) {
  Material m = MakeMaterial(hours(24 * 365 * 5), hours(24 * 365));
  transport_.Script({"GET", kSecretPath, 200, SecretJson(m, "5").dump()});
  ScriptVwcAlreadyCurrent(m.ca.cert_pem);
  CertRotator rotator(&client_, &clock_, Options());

  Status s = rotator.EnsureOnce();
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(Requests(transport_, "POST", kSecretsPath).empty());
  EXPECT_TRUE(Requests(transport_, "PUT", kSecretPath).empty());
  EXPECT_TRUE(Requests(transport_, "PUT", std::string(kVwcPath) + "ipguard").empty());
  EXPECT_EQ(File("tls.crt"), m.serving.cert_pem);
  EXPECT_EQ(File("tls.key"), m.serving.key_pem);
  EXPECT_EQ(File("ca.crt"), m.ca.cert_pem);
  EXPECT_TRUE(rotator.ready());

  // A second round with nothing changed writes nothing at all, files
  // included (the HTTPS server reloads on change).
  transport_.Script({"GET", kSecretPath, 200, SecretJson(m, "5").dump()});
  ScriptVwcAlreadyCurrent(m.ca.cert_pem);
  log_.clear();
  s = rotator.EnsureOnce();
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(log_.empty()) << log_.front();
}

TEST_F(CertRotatorTest, ExpiringServingCertificateIsRenewedWithTheSameCa) {
  // Valid for one day: inside the 30-day window.
  Material m = MakeMaterial(hours(24 * 365 * 5), hours(24));
  transport_.Script({"GET", kSecretPath, 200, SecretJson(m, "5").dump()});
  transport_.Script({"PUT", kSecretPath, 200, "{}"});
  ScriptVwcAlreadyCurrent(m.ca.cert_pem);
  CertRotator rotator(&client_, &clock_, Options());

  Status s = rotator.EnsureOnce();
  ASSERT_TRUE(s.ok()) << s.message();
  auto puts = Requests(transport_, "PUT", kSecretPath);
  ASSERT_EQ(puts.size(), 1u);
  json secret = json::parse(puts[0].body);
  EXPECT_EQ(secret["metadata"]["resourceVersion"], "5");
  const json& data = secret["data"];
  EXPECT_EQ(Decode(data, "ca.crt"), m.ca.cert_pem) << "the CA is still good: caBundle stays";
  EXPECT_EQ(Decode(data, "ca.key"), m.ca.key_pem);
  EXPECT_NE(Decode(data, "tls.crt"), m.serving.cert_pem);
  auto not_after = certs::NotAfterUnix(Decode(data, "tls.crt"));
  ASSERT_TRUE(not_after.ok());
  EXPECT_GT(*not_after, std::time(nullptr) + 364 * 24 * 3600);
  EXPECT_EQ(File("tls.crt"), Decode(data, "tls.crt"));
  EXPECT_EQ(File("tls.key"), Decode(data, "tls.key"));
  ExpectGoodFiles();
  EXPECT_TRUE(Requests(transport_, "PUT", std::string(kVwcPath) + "ipguard").empty());
}

TEST_F(CertRotatorTest, ExpiringCaIsReplacedAndTheOldOneStaysInTheBundle) {
  Material m = MakeMaterial(hours(24 * 10), hours(24 * 9));
  transport_.Script({"GET", kSecretPath, 200, SecretJson(m, "5").dump()});
  transport_.Script({"PUT", kSecretPath, 200, "{}"});
  transport_.Script({"GET", std::string(kVwcPath) + "ipguard", 200,
                     Vwc("3", certs::EncodeBase64(m.ca.cert_pem), "").dump()});
  transport_.Script({"PUT", std::string(kVwcPath) + "ipguard", 200, "{}"});
  CertRotator rotator(&client_, &clock_, Options());

  Status s = rotator.EnsureOnce();
  ASSERT_TRUE(s.ok()) << s.message();
  auto puts = Requests(transport_, "PUT", kSecretPath);
  ASSERT_EQ(puts.size(), 1u);
  const json data = json::parse(puts[0].body)["data"];
  std::string bundle = Decode(data, "ca.crt");
  EXPECT_NE(bundle.rfind(m.ca.cert_pem), std::string::npos) << "old CA kept, after the new one";
  EXPECT_NE(bundle.find(m.ca.cert_pem), 0u);
  auto new_ca = certs::NotAfterUnix(bundle);  // the first certificate: the new CA
  ASSERT_TRUE(new_ca.ok());
  EXPECT_GT(*new_ca, std::time(nullptr) + 4 * 365 * 24 * 3600);
  // The old serving certificate (other replicas still serve it) verifies
  // against the new bundle, and so does the new one.
  EXPECT_TRUE(certs::Verify(m.serving, bundle).ok());
  ExpectGoodFiles();
  EXPECT_FALSE(certs::Verify({File("tls.crt"), File("tls.key")}, m.ca.cert_pem).ok())
      << "the new serving certificate comes from the new CA";

  auto vwc_puts = Requests(transport_, "PUT", std::string(kVwcPath) + "ipguard");
  ASSERT_EQ(vwc_puts.size(), 1u);
  const json vwc = json::parse(vwc_puts[0].body);
  for (const auto& hook : vwc["webhooks"]) {
    EXPECT_EQ(hook["clientConfig"]["caBundle"], certs::EncodeBase64(bundle));
  }
}

TEST_F(CertRotatorTest, CertificateMissingAWantedNameIsRenewed) {
  Material m = MakeMaterial(hours(24 * 365 * 5), hours(24 * 365), {"ipguard-webhook.ns.svc"}, {});
  transport_.Script({"GET", kSecretPath, 200, SecretJson(m, "5").dump()});
  transport_.Script({"PUT", kSecretPath, 200, "{}"});
  ScriptVwcAlreadyCurrent(m.ca.cert_pem);
  CertRotator rotator(&client_, &clock_, Options());

  Status s = rotator.EnsureOnce();
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(Requests(transport_, "PUT", kSecretPath).size(), 1u);
  ExpectGoodFiles();
  ASSERT_FALSE(log_.empty());
  EXPECT_NE(log_[0].find("does not cover ipguard-webhook.ns.svc.cluster.local, 127.0.0.1"),
            std::string::npos)
      << log_[0];
}

TEST_F(CertRotatorTest, UnreadableSecretIsRegenerated) {
  json secret = {{"metadata",
                  {{"name", "ipguard-webhook-cert"},
                   {"namespace", "ns"},
                   {"resourceVersion", "9"},
                   {"labels", {{"keep", "me"}}}}},
                 {"type", "kubernetes.io/tls"},
                 {"data", {{"tls.crt", certs::EncodeBase64("garbage")}, {"other", "eA=="}}}};
  transport_.Script({"GET", kSecretPath, 200, secret.dump()});
  transport_.Script({"PUT", kSecretPath, 200, "{}"});
  auto options = Options();
  options.webhook_configs.clear();
  CertRotator rotator(&client_, &clock_, options);

  Status s = rotator.EnsureOnce();
  ASSERT_TRUE(s.ok()) << s.message();
  auto puts = Requests(transport_, "PUT", kSecretPath);
  ASSERT_EQ(puts.size(), 1u);
  json written = json::parse(puts[0].body);
  EXPECT_EQ(written["metadata"]["resourceVersion"], "9");
  EXPECT_EQ(written["metadata"]["labels"]["keep"], "me");
  EXPECT_EQ(written["data"]["other"], "eA==") << "keys we do not own are kept";
  ExpectGoodFiles();
}

TEST_F(CertRotatorTest, LostCreateRaceUsesTheWinnersSecret) {
  Material winner = MakeMaterial(hours(24 * 365 * 5), hours(24 * 365));
  transport_.Script({"GET", kSecretPath, 404, kNotFound});
  transport_.Script({"POST", kSecretsPath, 409, kAlreadyExists});
  transport_.Script({"GET", kSecretPath, 200, SecretJson(winner, "2").dump()});
  ScriptVwcAlreadyCurrent(winner.ca.cert_pem);
  CertRotator rotator(&client_, &clock_, Options());

  Status s = rotator.EnsureOnce();
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(Requests(transport_, "POST", kSecretsPath).size(), 1u);
  EXPECT_TRUE(Requests(transport_, "PUT", kSecretPath).empty());
  EXPECT_EQ(File("tls.crt"), winner.serving.cert_pem);
  EXPECT_EQ(File("tls.key"), winner.serving.key_pem);
  EXPECT_EQ(File("ca.crt"), winner.ca.cert_pem);
  EXPECT_EQ(rotator.ca_pem(), winner.ca.cert_pem);
}

TEST_F(CertRotatorTest, LostRenewalRaceUsesTheWinnersSecret) {
  Material old = MakeMaterial(hours(24 * 365 * 5), hours(24));
  Material winner = MakeMaterial(hours(24 * 365 * 5), hours(24 * 365));
  transport_.Script({"GET", kSecretPath, 200, SecretJson(old, "5").dump()});
  transport_.Script({"PUT", kSecretPath, 409, kConflict});
  transport_.Script({"GET", kSecretPath, 200, SecretJson(winner, "6").dump()});
  ScriptVwcAlreadyCurrent(winner.ca.cert_pem);
  CertRotator rotator(&client_, &clock_, Options());

  Status s = rotator.EnsureOnce();
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(Requests(transport_, "PUT", kSecretPath).size(), 1u) << "no second write";
  EXPECT_EQ(File("tls.crt"), winner.serving.cert_pem);
  EXPECT_EQ(File("ca.crt"), winner.ca.cert_pem);
}

TEST_F(CertRotatorTest, CaBundleAlreadyEqualMeansNoWrite) {
  Material m = MakeMaterial(hours(24 * 365 * 5), hours(24 * 365));
  transport_.Script({"GET", kSecretPath, 200, SecretJson(m, "5").dump()});
  ScriptVwcAlreadyCurrent(m.ca.cert_pem);
  CertRotator rotator(&client_, &clock_, Options());
  Status s = rotator.EnsureOnce();
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(Requests(transport_, "GET", std::string(kVwcPath) + "ipguard").size(), 1u);
  EXPECT_TRUE(Requests(transport_, "PUT", std::string(kVwcPath) + "ipguard").empty());
}

TEST_F(CertRotatorTest, CaBundleWriteRetriesOnConflict) {
  Material m = MakeMaterial(hours(24 * 365 * 5), hours(24 * 365));
  const std::string b64 = certs::EncodeBase64(m.ca.cert_pem);
  transport_.Script({"GET", kSecretPath, 200, SecretJson(m, "5").dump()});
  transport_.Script({"GET", std::string(kVwcPath) + "ipguard", 200, Vwc("3", "", "").dump()});
  transport_.Script({"PUT", std::string(kVwcPath) + "ipguard", 409, kConflict});
  // Meanwhile Helm upgraded the configuration; one webhook is already right.
  transport_.Script({"GET", std::string(kVwcPath) + "ipguard", 200, Vwc("4", b64, "old").dump()});
  transport_.Script({"PUT", std::string(kVwcPath) + "ipguard", 200, "{}"});
  CertRotator rotator(&client_, &clock_, Options());

  Status s = rotator.EnsureOnce();
  ASSERT_TRUE(s.ok()) << s.message();
  auto puts = Requests(transport_, "PUT", std::string(kVwcPath) + "ipguard");
  ASSERT_EQ(puts.size(), 2u);
  json last = json::parse(puts[1].body);
  EXPECT_EQ(last["metadata"]["resourceVersion"], "4");
  for (const auto& hook : last["webhooks"]) EXPECT_EQ(hook["clientConfig"]["caBundle"], b64);
}

TEST_F(CertRotatorTest, MissingWebhookConfigurationIsReportedButFilesAreWritten) {
  Material m = MakeMaterial(hours(24 * 365 * 5), hours(24 * 365));
  transport_.Script({"GET", kSecretPath, 200, SecretJson(m, "5").dump()});
  transport_.Script({"GET", std::string(kVwcPath) + "missing", 404, kNotFound});
  transport_.Script({"GET", std::string(kVwcPath) + "ipguard", 200, Vwc("3", "", "").dump()});
  transport_.Script({"PUT", std::string(kVwcPath) + "ipguard", 200, "{}"});
  auto options = Options();
  options.webhook_configs = {"missing", "ipguard"};
  CertRotator rotator(&client_, &clock_, options);

  Status s = rotator.EnsureOnce();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("ValidatingWebhookConfiguration missing not found"), std::string::npos)
      << s.message();
  EXPECT_TRUE(rotator.ready());
  EXPECT_EQ(File("tls.crt"), m.serving.cert_pem);
  EXPECT_EQ(rotator.ca_pem(), m.ca.cert_pem);
  EXPECT_EQ(Requests(transport_, "PUT", std::string(kVwcPath) + "ipguard").size(), 1u)
      << "the other configuration is still patched";
}

TEST_F(CertRotatorTest, ApiErrorOnTheSecretFailsTheRoundAndWritesNothing) {
  transport_.Script({"GET", kSecretPath, 403,
                     R"({"kind":"Status","code":403,"reason":"Forbidden","message":"no RBAC"})"});
  CertRotator rotator(&client_, &clock_, Options());
  Status s = rotator.EnsureOnce();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("reading Secret ns/ipguard-webhook-cert: 403 Forbidden"),
            std::string::npos)
      << s.message();
  EXPECT_FALSE(rotator.ready());
  EXPECT_TRUE(rotator.ca_pem().empty());
  EXPECT_FALSE(fs::exists(fs::path(dir_.path()) / "certs" / "tls.crt"));
}

TEST_F(CertRotatorTest, RunRetriesAfterAFailureAndStops) {
  transport_.Script({"GET", kSecretPath, 0, "", {}, false, /*no_answer=*/true});
  transport_.Script({"GET", kSecretPath, 404, kNotFound});
  transport_.Script({"POST", kSecretsPath, 201, "{}"});
  transport_.Script({"GET", std::string(kVwcPath) + "ipguard", 200, Vwc("1", "", "").dump()});
  transport_.Script({"PUT", std::string(kVwcPath) + "ipguard", 200, "{}"});
  auto options = Options();
  options.log = nullptr;  // called from the Run() thread
  CertRotator rotator(&client_, &clock_, options);
  std::thread t([&] { rotator.Run(); });
  for (int i = 0; i < 200 && transport_.CountRequests(kSecretPath) < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(rotator.ready());
  // The backoff after one failure is about a second, well before the hourly
  // check.
  for (int i = 0; i < 500 && !rotator.ready(); ++i) {
    clock_.Advance(std::chrono::milliseconds(100));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(rotator.ready());
  rotator.Stop();
  t.join();
  ExpectGoodFiles();
}

}  // namespace
}  // namespace ipguard::webhook
