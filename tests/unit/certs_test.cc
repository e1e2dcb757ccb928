#include "webhook/certs.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>

namespace ipguard::certs {
namespace {

using std::chrono::hours;

// Read back with OpenSSL directly rather than through Inspect(), so a bug
// shared by the writer and the reader cannot hide.
struct Parsed {
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  int ext_key_usage = 0;  // XKU_* bits
  bool is_ca = false;
};

Parsed ParseWithOpenSsl(const std::string& pem) {
  Parsed p;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!cert) {
    ADD_FAILURE() << "not a certificate";
    return p;
  }
  std::unique_ptr<GENERAL_NAMES, decltype(&GENERAL_NAMES_free)> names(
      static_cast<GENERAL_NAMES*>(
          X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)),
      &GENERAL_NAMES_free);
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    const unsigned char* data = ASN1_STRING_get0_data(gn->d.ia5);
    int len = ASN1_STRING_length(gn->d.ia5);
    if (gn->type == GEN_DNS) p.dns.emplace_back(reinterpret_cast<const char*>(data), len);
    if (gn->type == GEN_IPADD) {
      char buf[INET6_ADDRSTRLEN] = {};
      inet_ntop(len == 4 ? AF_INET : AF_INET6, data, buf, sizeof(buf));
      p.ips.emplace_back(buf);
    }
  }
  p.ext_key_usage = static_cast<int>(X509_get_extended_key_usage(cert.get()));
  p.is_ca = X509_check_ca(cert.get()) == 1;
  return p;
}

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

class CertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = GenerateCA("test-ca", hours(24 * 365));
    ASSERT_TRUE(ca.ok()) << ca.error();
    ca_ = *ca;
  }
  KeyPair ca_;
};

TEST_F(CertsTest, CaAndServingCertificateVerify) {
  EXPECT_TRUE(ParseWithOpenSsl(ca_.cert_pem).is_ca);
  EXPECT_TRUE(Verify(ca_, ca_.cert_pem).ok()) << "a CA verifies against itself";

  auto serving = GenerateServing(ca_, "ipguard-webhook", {"ipguard-webhook.ns.svc"}, {}, hours(24));
  ASSERT_TRUE(serving.ok()) << serving.error();
  Status s = Verify(*serving, ca_.cert_pem);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_NE(serving->cert_pem.find("-----BEGIN CERTIFICATE-----"), std::string::npos);
  EXPECT_NE(serving->key_pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  Parsed p = ParseWithOpenSsl(serving->cert_pem);
  EXPECT_FALSE(p.is_ca);
  EXPECT_TRUE(p.ext_key_usage & XKU_SSL_SERVER);
  EXPECT_FALSE(p.ext_key_usage & XKU_SSL_CLIENT);
}

TEST_F(CertsTest, ServingCertificateCarriesEveryDnsNameAndIp) {
  auto serving = GenerateServing(ca_, "ipguard-webhook",
                                 {"ipguard-webhook.ns.svc", "ipguard-webhook.ns.svc.cluster.local"},
                                 {"127.0.0.1", "::1", "fd00:0:0::10"}, hours(24));
  ASSERT_TRUE(serving.ok()) << serving.error();
  Parsed p = ParseWithOpenSsl(serving->cert_pem);
  EXPECT_EQ(p.dns, (std::vector<std::string>{"ipguard-webhook.ns.svc",
                                             "ipguard-webhook.ns.svc.cluster.local"}));
  EXPECT_EQ(p.ips, (std::vector<std::string>{"127.0.0.1", "::1", "fd00::10"}));

  auto info = Inspect(serving->cert_pem);
  ASSERT_TRUE(info.ok()) << info.error();
  EXPECT_EQ(info->common_name, "ipguard-webhook");
  EXPECT_EQ(info->dns_names, p.dns);
  EXPECT_EQ(info->ips, p.ips);
  EXPECT_FALSE(info->is_ca);
}

TEST_F(CertsTest, ClientCertificateIsForClientAuth) {
  auto client = GenerateClient(ca_, "e2e-client", hours(1));
  ASSERT_TRUE(client.ok()) << client.error();
  EXPECT_TRUE(Verify(*client, ca_.cert_pem).ok());
  Parsed p = ParseWithOpenSsl(client->cert_pem);
  EXPECT_TRUE(p.ext_key_usage & XKU_SSL_CLIENT);
  EXPECT_FALSE(p.ext_key_usage & XKU_SSL_SERVER);
  EXPECT_TRUE(p.dns.empty());
}

TEST_F(CertsTest, WrongCaFailsVerify) {
  auto other = GenerateCA("other-ca", hours(24));
  ASSERT_TRUE(other.ok());
  auto serving = GenerateServing(ca_, "w", {"w.ns.svc"}, {}, hours(24));
  ASSERT_TRUE(serving.ok());
  Status s = Verify(*serving, other->cert_pem);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("does not verify against the CA"), std::string::npos) << s.message();
  // A bundle holding the right CA among others verifies (CA rotation).
  EXPECT_TRUE(Verify(*serving, other->cert_pem + ca_.cert_pem).ok());
}

TEST_F(CertsTest, MismatchedKeyFailsVerify) {
  auto a = GenerateServing(ca_, "a", {"a.ns.svc"}, {}, hours(24));
  auto b = GenerateServing(ca_, "b", {"b.ns.svc"}, {}, hours(24));
  ASSERT_TRUE(a.ok() && b.ok());
  Status s = Verify(KeyPair{a->cert_pem, b->key_pem}, ca_.cert_pem);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("private key does not match"), std::string::npos) << s.message();
}

TEST_F(CertsTest, SigningNeedsTheCaKeyAndACa) {
  auto other = GenerateCA("other-ca", hours(24));
  ASSERT_TRUE(other.ok());
  auto bad = GenerateServing(KeyPair{ca_.cert_pem, other->key_pem}, "w", {"w"}, {}, hours(1));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("CA key does not match"), std::string::npos) << bad.error();

  auto leaf = GenerateServing(ca_, "w", {"w"}, {}, hours(1));
  ASSERT_TRUE(leaf.ok());
  auto from_leaf = GenerateServing(*leaf, "x", {"x"}, {}, hours(1));
  ASSERT_FALSE(from_leaf.ok());
  EXPECT_NE(from_leaf.error().find("not a CA"), std::string::npos) << from_leaf.error();
}

TEST_F(CertsTest, NotAfterIsNowPlusValidity) {
  auto serving = GenerateServing(ca_, "w", {"w.ns.svc"}, {}, hours(24 * 365));
  ASSERT_TRUE(serving.ok());
  auto not_after = NotAfterUnix(serving->cert_pem);
  ASSERT_TRUE(not_after.ok()) << not_after.error();
  EXPECT_NEAR(static_cast<double>(*not_after), static_cast<double>(Now() + 365 * 24 * 3600), 120);
  auto info = Inspect(serving->cert_pem);
  ASSERT_TRUE(info.ok());
  // Backdated so that a peer whose clock runs a little behind accepts it.
  EXPECT_LT(info->not_before_unix, Now() - 60);
  EXPECT_GT(info->not_before_unix, Now() - 3600);
}

TEST_F(CertsTest, SerialsAreRandom) {
  auto a = GenerateCA("same", hours(1));
  auto b = GenerateCA("same", hours(1));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->cert_pem, b->cert_pem);
  EXPECT_FALSE(Verify(KeyPair{b->cert_pem, b->key_pem}, a->cert_pem).ok())
      << "same name, different key: not interchangeable";
}

TEST_F(CertsTest, GarbageGivesAClearError) {
  for (const std::string& garbage : {std::string(), std::string("garbage"),
                                     std::string("-----BEGIN CERTIFICATE-----\n!!!\n"
                                                 "-----END CERTIFICATE-----\n"),
                                     std::string("\0\xff\x01", 3)}) {
    auto na = NotAfterUnix(garbage);
    ASSERT_FALSE(na.ok());
    EXPECT_NE(na.error().find("cannot read the certificate"), std::string::npos) << na.error();
    EXPECT_FALSE(Inspect(garbage).ok());
    Status s = Verify(KeyPair{garbage, ca_.key_pem}, ca_.cert_pem);
    EXPECT_FALSE(s.ok());
    s = Verify(KeyPair{ca_.cert_pem, garbage}, ca_.cert_pem);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("cannot read the private key"), std::string::npos) << s.message();
    s = Verify(ca_, garbage);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("cannot read the CA bundle"), std::string::npos) << s.message();
    EXPECT_FALSE(GenerateServing(KeyPair{garbage, garbage}, "w", {"w"}, {}, hours(1)).ok());
  }
  auto na = NotAfterUnix("garbage");
  EXPECT_EQ(na.error(), "cannot read the certificate: not PEM (no \"-----BEGIN\" line)");
}

TEST_F(CertsTest, BadNamesAndArgumentsAreErrors) {
  auto r = GenerateServing(ca_, "w", {"w"}, {"10.0.0.256"}, hours(1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("\"10.0.0.256\" is not an IP address"), std::string::npos) << r.error();
  EXPECT_FALSE(GenerateServing(ca_, "w", {"w"}, {"fe80::1%eth0"}, hours(1)).ok());
  r = GenerateServing(ca_, "w", {"a,DNS:b"}, {}, hours(1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("is not a DNS name"), std::string::npos) << r.error();
  r = GenerateServing(ca_, "w", {}, {}, hours(1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("at least one DNS name or IP"), std::string::npos) << r.error();
  EXPECT_FALSE(GenerateCA("", hours(1)).ok());
  EXPECT_FALSE(GenerateCA("ca", hours(0)).ok());
  EXPECT_TRUE(GenerateServing(ca_, "w", {"*.ns.svc"}, {}, hours(1)).ok()) << "wildcards are fine";
}

TEST(Base64, EncodesWithPadding) {
  EXPECT_EQ(EncodeBase64(""), "");
  EXPECT_EQ(EncodeBase64("a"), "YQ==");
  EXPECT_EQ(EncodeBase64("ab"), "YWI=");
  EXPECT_EQ(EncodeBase64("abc"), "YWJj");
  EXPECT_EQ(EncodeBase64(std::string("\0\xff", 2)), "AP8=");
  // Longer than one internal chunk: no line breaks, padding only at the end.
  std::string big(100001, 'x');
  std::string b64 = EncodeBase64(big);
  EXPECT_EQ(b64.size(), (big.size() + 2) / 3 * 4);
  EXPECT_EQ(b64.find('\n'), std::string::npos);
  EXPECT_EQ(b64.find('='), b64.size() - 1);
}

TEST(CanonicalIp, NormalizesText) {
  EXPECT_EQ(*CanonicalIp("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(*CanonicalIp("FD00:0::1"), "fd00::1");
  EXPECT_FALSE(CanonicalIp(" 10.0.0.1").ok());
  EXPECT_FALSE(CanonicalIp("fe80::1%eth0").ok());
}

}  // namespace
}  // namespace ipguard::certs
