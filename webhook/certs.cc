#include "webhook/certs.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <climits>
#include <ctime>
#include <memory>
#include <utility>

#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "ipguard needs OpenSSL 3.0 or later (EVP_PKEY_Q_keygen, X509_VERSION_3)"
#endif

namespace ipguard::certs {
namespace {

// unique_ptr deleters from OpenSSL's free functions, so every object has
// exactly one owner and every early return frees what was made so far.
template <auto kFree>
struct Free {
  template <typename T>
  void operator()(T* p) const {
    kFree(p);
  }
};
using BioPtr = std::unique_ptr<BIO, Free<BIO_free_all>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Free<X509_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Free<X509_EXTENSION_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Free<BN_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Free<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Free<X509_STORE_CTX_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Free<GENERAL_NAMES_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Free<GENERAL_NAME_free>>;
using Asn1StringPtr = std::unique_ptr<ASN1_STRING, Free<ASN1_STRING_free>>;
// sk_X509_free frees the stack only; the certificates stay owned elsewhere.
struct FreeX509Stack {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), FreeX509Stack>;
struct FreeOpenSslBytes {
  void operator()(unsigned char* p) const { OPENSSL_free(p); }
};

// Peers whose clocks run behind ours would reject a certificate that starts
// "now"; five minutes covers ordinary NTP drift.
constexpr long kBackdateSeconds = 5 * 60;

// Drains this thread's OpenSSL error queue into one line, so the reason
// reaches the user and no stale error confuses the next call.
std::string DrainErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    const char* reason = ERR_reason_error_string(e);
    std::string text;
    if (reason != nullptr) {
      text = reason;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof(buf));
      text = buf;
    }
    if (out.find(text) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out;
}

Status Fail(const std::string& what) {
  std::string why = DrainErrors();
  return Status::Error(why.empty() ? what : what + " (" + why + ")");
}

// True when the last OpenSSL error is "no PEM block of the wanted kind",
// i.e. the input was read to its end without finding one.
bool NoPemBlock() {
  unsigned long last = ERR_peek_last_error();
  return ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
}

// A PEM key that turns out to be encrypted must fail, not prompt on the
// terminal as OpenSSL's default password callback would.
int NoPassword(char*, int, int, void*) { return 0; }

Result<BioPtr> ReadBio(const std::string& pem, const std::string& what) {
  if (pem.empty()) return Status::Error("cannot read " + what + ": it is empty");
  if (pem.size() > INT_MAX) return Status::Error(what + " is too large");
  // Without this, OpenSSL 3's decoders report text that is not PEM at all
  // with reasons like "unsupported", which sends the reader the wrong way.
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return Status::Error("cannot read " + what + ": not PEM (no \"-----BEGIN\" line)");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Fail("cannot read " + what);
  return bio;
}

// Every certificate in `pem`, in order; at least one.
Result<std::vector<X509Ptr>> ReadCerts(const std::string& pem, const std::string& what) {
  auto bio = ReadBio(pem, what);
  if (!bio.ok()) return bio.status();
  std::vector<X509Ptr> certs;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio->get(), nullptr, NoPassword, nullptr));
    if (!cert) break;
    certs.push_back(std::move(cert));
  }
  // Running out of PEM blocks ends the loop with "no start line"; anything
  // else (a damaged block) is a real error.
  if (certs.empty() && NoPemBlock()) {
    ERR_clear_error();
    return Status::Error("cannot read " + what + ": no \"-----BEGIN CERTIFICATE-----\" block");
  }
  if (certs.empty() || (ERR_peek_last_error() != 0 && !NoPemBlock())) {
    return Fail("cannot read " + what);
  }
  ERR_clear_error();
  return certs;
}

Result<X509Ptr> ReadCert(const std::string& pem, const std::string& what) {
  auto certs = ReadCerts(pem, what);
  if (!certs.ok()) return certs.status();
  return std::move(certs.value().front());
}

Result<PkeyPtr> ReadKey(const std::string& pem, const std::string& what) {
  auto bio = ReadBio(pem, what);
  if (!bio.ok()) return bio.status();
  PkeyPtr key(PEM_read_bio_PrivateKey(bio->get(), nullptr, NoPassword, nullptr));
  if (!key && NoPemBlock()) {
    ERR_clear_error();
    return Status::Error("cannot read " + what + ": no \"-----BEGIN PRIVATE KEY-----\" block");
  }
  if (!key) return Fail("cannot read " + what);
  return key;
}

Result<std::string> BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  if (n <= 0 || data == nullptr) return Fail("cannot write PEM");
  return std::string(data, static_cast<size_t>(n));
}

Result<KeyPair> ToPem(X509* cert, EVP_PKEY* key) {
  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  BioPtr key_bio(BIO_new(BIO_s_mem()));
  if (!cert_bio || !key_bio || PEM_write_bio_X509(cert_bio.get(), cert) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Fail("cannot write PEM");
  }
  auto cert_pem = BioText(cert_bio.get());
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = BioText(key_bio.get());
  if (!key_pem.ok()) return key_pem.status();
  return KeyPair{std::move(cert_pem).value(), std::move(key_pem).value()};
}

// Raw network-order bytes of an IPv4 (4) or IPv6 (16) address.
Result<std::string> IpBytes(const std::string& ip) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, ip.c_str(), buf) == 1) return std::string(reinterpret_cast<char*>(buf), 4);
  if (inet_pton(AF_INET6, ip.c_str(), buf) == 1) {
    return std::string(reinterpret_cast<char*>(buf), 16);
  }
  return Status::Error("\"" + ip + "\" is not an IP address");
}

std::string IpText(const unsigned char* bytes, int len) {
  char buf[INET6_ADDRSTRLEN];
  int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
  if (family == 0 || inet_ntop(family, bytes, buf, sizeof(buf)) == nullptr) return "";
  return buf;
}

// Letters, digits, '-' and '.', with an optional leading "*." wildcard: what
// a TLS client can match. Anything else would only produce a certificate no
// client accepts.
bool IsDnsName(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = name.rfind("*.", 0) == 0 ? 2 : 0;
  if (start == name.size()) return false;
  size_t label = 0;
  for (size_t i = start; i < name.size(); ++i) {
    char c = name[i];
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

Result<GeneralNamesPtr> SubjectAltNames(const std::vector<std::string>& dns_names,
                                        const std::vector<std::string>& ips) {
  GeneralNamesPtr names(GENERAL_NAMES_new());
  if (!names) return Fail("out of memory");
  auto add = [&](int type, const std::string& value) -> Status {
    Asn1StringPtr s(type == GEN_DNS ? ASN1_IA5STRING_new() : ASN1_OCTET_STRING_new());
    GeneralNamePtr gn(GENERAL_NAME_new());
    if (!s || !gn || ASN1_STRING_set(s.get(), value.data(), static_cast<int>(value.size())) != 1) {
      return Fail("out of memory");
    }
    GENERAL_NAME_set0_value(gn.get(), type, s.release());
    if (sk_GENERAL_NAME_push(names.get(), gn.get()) <= 0) return Fail("out of memory");
    gn.release();  // the stack owns it now
    return Status::Ok();
  };
  for (const auto& dns : dns_names) {
    if (!IsDnsName(dns)) return Status::Error("\"" + dns + "\" is not a DNS name");
    Status s = add(GEN_DNS, dns);
    if (!s.ok()) return s;
  }
  for (const auto& ip : ips) {
    auto bytes = IpBytes(ip);
    if (!bytes.ok()) return bytes.status();
    Status s = add(GEN_IPADD, *bytes);
    if (!s.ok()) return s;
  }
  return names;
}

enum class Profile { kCa, kServer, kClient };

// The signer of a new certificate; null cert and key mean self-signed.
struct Issuer {
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
};

Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return Fail(std::string("cannot add ") + OBJ_nid2sn(nid) + " " + value);
  }
  return Status::Ok();
}

Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return Fail("no randomness for the serial number");
  // Serials must be positive (RFC 5280 4.1.2.2) and DER drops a leading
  // zero byte anyway; forcing a set bit below the sign bit keeps all 128
  // bits' worth of length and the value positive.
  bytes[0] = static_cast<unsigned char>((bytes[0] & 0x7f) | 0x40);
  BnPtr bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return Fail("cannot set the serial number");
  }
  return Status::Ok();
}

Result<KeyPair> Build(Profile profile, const std::string& common_name, std::chrono::hours validity,
                      const Issuer& issuer, const std::vector<std::string>& dns_names = {},
                      const std::vector<std::string>& ips = {}) {
  if (common_name.empty()) return Status::Error("the common name is empty");
  if (validity.count() <= 0) return Status::Error("the validity must be positive");
  if (validity.count() > 24 * 365 * 100) return Status::Error("the validity exceeds 100 years");

  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return Fail("cannot generate an EC P-256 key");
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) return Fail("out of memory");
  Status s = SetRandomSerial(cert.get());
  if (!s.ok()) return s;

  const long hours = static_cast<long>(validity.count());
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(hours / 24),
                       (hours % 24) * 3600, nullptr) == nullptr) {
    return Fail("cannot set the validity period");
  }

  X509_NAME* subject = X509_get_subject_name(cert.get());  // owned by cert
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1) {
    return Fail("cannot use \"" + common_name + "\" as the common name");
  }
  X509* signer_cert = issuer.cert != nullptr ? issuer.cert : cert.get();
  EVP_PKEY* signer_key = issuer.key != nullptr ? issuer.key : key.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer_cert)) != 1 ||
      X509_set_pubkey(cert.get(), key.get()) != 1) {
    return Fail("cannot fill in the certificate");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, signer_cert, cert.get(), nullptr, nullptr, 0);
  struct Ext {
    int nid;
    const char* value;
  };
  std::vector<Ext> exts;
  switch (profile) {
    case Profile::kCa:
      // pathlen:0: this CA signs leaves only, never another CA.
      exts = {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
              {NID_key_usage, "critical,keyCertSign,cRLSign"},
              {NID_subject_key_identifier, "hash"}};
      break;
    case Profile::kServer:
    case Profile::kClient:
      exts = {{NID_basic_constraints, "critical,CA:FALSE"},
              {NID_key_usage, "critical,digitalSignature"},
              {NID_ext_key_usage, profile == Profile::kServer ? "serverAuth" : "clientAuth"},
              {NID_subject_key_identifier, "hash"},
              // Helps clients pick the right CA from a bundle holding an old
              // and a new one during CA rotation.
              {NID_authority_key_identifier, "keyid"}};
      break;
  }
  for (const auto& e : exts) {
    s = AddExtension(cert.get(), &ctx, e.nid, e.value);
    if (!s.ok()) return s;
  }
  if (profile == Profile::kServer) {
    if (dns_names.empty() && ips.empty()) {
      return Status::Error("a serving certificate needs at least one DNS name or IP address");
    }
    auto names = SubjectAltNames(dns_names, ips);
    if (!names.ok()) return names.status();
    if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names->get(), 0, X509V3_ADD_DEFAULT) !=
        1) {
      return Fail("cannot add subjectAltName");
    }
  }

  if (X509_sign(cert.get(), signer_key, EVP_sha256()) <= 0) {
    return Fail("cannot sign the certificate");
  }
  return ToPem(cert.get(), key.get());
}

Result<KeyPair> BuildSigned(Profile profile, const KeyPair& ca, const std::string& common_name,
                            std::chrono::hours validity, const std::vector<std::string>& dns_names,
                            const std::vector<std::string>& ips) {
  ERR_clear_error();
  auto ca_cert = ReadCert(ca.cert_pem, "the CA certificate");
  if (!ca_cert.ok()) return ca_cert.status();
  auto ca_key = ReadKey(ca.key_pem, "the CA key");
  if (!ca_key.ok()) return ca_key.status();
  // Signing with the wrong key would yield certificates that never verify;
  // say so now rather than at the first TLS handshake.
  if (X509_check_private_key(ca_cert->get(), ca_key->get()) != 1) {
    return Fail("the CA key does not match the CA certificate");
  }
  if (X509_check_ca(ca_cert->get()) != 1) {
    ERR_clear_error();
    return Status::Error("the CA certificate is not a CA (basicConstraints CA:TRUE missing)");
  }
  return Build(profile, common_name, validity, Issuer{ca_cert->get(), ca_key->get()}, dns_names,
               ips);
}

Result<int64_t> ToUnix(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return Fail("the certificate has no valid time");
  }
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

Result<KeyPair> GenerateCA(const std::string& common_name, std::chrono::hours validity) {
  ERR_clear_error();
  return Build(Profile::kCa, common_name, validity, Issuer{});
}

Result<KeyPair> GenerateServing(const KeyPair& ca, const std::string& common_name,
                                const std::vector<std::string>& dns_names,
                                const std::vector<std::string>& ips, std::chrono::hours validity) {
  return BuildSigned(Profile::kServer, ca, common_name, validity, dns_names, ips);
}

Result<KeyPair> GenerateClient(const KeyPair& ca, const std::string& common_name,
                               std::chrono::hours validity) {
  return BuildSigned(Profile::kClient, ca, common_name, validity, {}, {});
}

Result<CertInfo> Inspect(const std::string& cert_pem) {
  ERR_clear_error();
  auto cert = ReadCert(cert_pem, "the certificate");
  if (!cert.ok()) return cert.status();
  X509* x = cert->get();
  CertInfo info;

  X509_NAME* subject = X509_get_subject_name(x);
  int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx >= 0) {
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
    std::unique_ptr<unsigned char, FreeOpenSslBytes> owned(utf8);
    if (n < 0) return Fail("the certificate's common name is not readable");
    info.common_name.assign(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  }

  int crit = 0;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, &crit, nullptr)));
  if (!names && crit != -1) return Fail("the certificate's subjectAltName is not readable");
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type == GEN_DNS) {
      const ASN1_IA5STRING* s = gn->d.dNSName;
      info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                  static_cast<size_t>(ASN1_STRING_length(s)));
    } else if (gn->type == GEN_IPADD) {
      std::string ip =
          IpText(ASN1_STRING_get0_data(gn->d.iPAddress), ASN1_STRING_length(gn->d.iPAddress));
      if (!ip.empty()) info.ips.push_back(std::move(ip));
    }
  }

  auto not_before = ToUnix(X509_get0_notBefore(x));
  if (!not_before.ok()) return not_before.status();
  auto not_after = ToUnix(X509_get0_notAfter(x));
  if (!not_after.ok()) return not_after.status();
  info.not_before_unix = *not_before;
  info.not_after_unix = *not_after;
  info.is_ca = X509_check_ca(x) == 1;
  ERR_clear_error();
  return info;
}

Result<int64_t> NotAfterUnix(const std::string& cert_pem) {
  ERR_clear_error();
  auto cert = ReadCert(cert_pem, "the certificate");
  if (!cert.ok()) return cert.status();
  return ToUnix(X509_get0_notAfter(cert->get()));
}

Status Verify(const KeyPair& pair, const std::string& ca_pem) {
  ERR_clear_error();
  auto chain = ReadCerts(pair.cert_pem, "the certificate");
  if (!chain.ok()) return chain.status();
  auto key = ReadKey(pair.key_pem, "the private key");
  if (!key.ok()) return key.status();
  auto cas = ReadCerts(ca_pem, "the CA bundle");
  if (!cas.ok()) return cas.status();
  X509* leaf = chain->front().get();
  if (X509_check_private_key(leaf, key->get()) != 1) {
    return Fail("the private key does not match the certificate");
  }

  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509StackPtr untrusted(sk_X509_new_null());
  if (!store || !ctx || !untrusted) return Fail("out of memory");
  for (const auto& ca : *cas) {
    if (X509_STORE_add_cert(store.get(), ca.get()) != 1) return Fail("cannot use the CA bundle");
  }
  // Any certificate in the bundle is an anchor, even one that is not
  // self-signed: "chains to ca_pem" is the contract, not "to a root".
  X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN);
  for (size_t i = 1; i < chain->size(); ++i) {
    if (sk_X509_push(untrusted.get(), (*chain)[i].get()) <= 0) return Fail("out of memory");
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get()) != 1) {
    return Fail("cannot set up verification");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Status::Error(std::string("the certificate does not verify against the CA: ") +
                         X509_verify_cert_error_string(err));
  }
  return Status::Ok();
}

std::string EncodeBase64(std::string_view data) {
  // EVP_EncodeBlock takes an int length; whole multiples of 3 per chunk keep
  // the padding at the very end only.
  constexpr size_t kChunk = 3 * 16384;
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  for (size_t pos = 0; pos < data.size(); pos += kChunk) {
    size_t n = std::min(kChunk, data.size() - pos);
    std::string buf((n + 2) / 3 * 4 + 1, '\0');
    int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(buf.data()),
                                  reinterpret_cast<const unsigned char*>(data.data() + pos),
                                  static_cast<int>(n));
    out.append(buf.data(), static_cast<size_t>(written));
  }
  return out;
}

Result<std::string> CanonicalIp(const std::string& ip) {
  auto bytes = IpBytes(ip);
  if (!bytes.ok()) return bytes.status();
  return IpText(reinterpret_cast<const unsigned char*>(bytes->data()),
                static_cast<int>(bytes->size()));
}

}  // namespace ipguard::certs
