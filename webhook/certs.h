// X.509 certificates for the webhook's own TLS: a private CA, serving
// certificates it signs (what the API server checks when it calls the
// webhook), and client certificates for tests.
//
// Keys are ECDSA P-256, signatures SHA-256, certificates X.509 v3 with a
// random 128-bit serial and notBefore a few minutes in the past so that a
// peer whose clock runs slightly behind still accepts a fresh certificate.
// PEM in and out: certificates as "CERTIFICATE", keys as unencrypted PKCS#8
// "PRIVATE KEY". Where a PEM text holds several certificates (a CA bundle),
// the first one is the one meant; Verify trusts all of them.
//
// Every function is pure (no files, no global state besides OpenSSL's own
// thread-safe random generator) and thread-safe. Bad input (garbage PEM, an
// address that does not parse) is an error value naming what was wrong; no
// exception leaves this module.
#ifndef IPGUARD_WEBHOOK_CERTS_H_
#define IPGUARD_WEBHOOK_CERTS_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ipguard::certs {

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed CA: basicConstraints CA:TRUE (critical), keyUsage
// keyCertSign + cRLSign (critical), subject key identifier.
Result<KeyPair> GenerateCA(const std::string& common_name, std::chrono::hours validity);

// A serving certificate signed by `ca`: subjectAltName with every DNS name
// and IP address (v4 or v6) given, extendedKeyUsage serverAuth, keyUsage
// digitalSignature, CA:FALSE. At least one name or address is required,
// since TLS clients (Go's included) match only the SANs, never the CN.
Result<KeyPair> GenerateServing(const KeyPair& ca, const std::string& common_name,
                                const std::vector<std::string>& dns_names,
                                const std::vector<std::string>& ips, std::chrono::hours validity);

// A client certificate signed by `ca`: extendedKeyUsage clientAuth.
Result<KeyPair> GenerateClient(const KeyPair& ca, const std::string& common_name,
                               std::chrono::hours validity);

// What a certificate says, for deciding whether it still fits.
struct CertInfo {
  std::string common_name;
  std::vector<std::string> dns_names;
  std::vector<std::string> ips;  // canonical text ("10.0.0.1", "fd00::1")
  int64_t not_before_unix = 0;
  int64_t not_after_unix = 0;
  bool is_ca = false;
};
Result<CertInfo> Inspect(const std::string& cert_pem);

// The certificate's expiry, in seconds since the Unix epoch.
Result<int64_t> NotAfterUnix(const std::string& cert_pem);

// Ok when pair.key_pem is the private key of pair.cert_pem and the
// certificate chains to a certificate in `ca_pem` and is valid now; the
// error says which check failed and OpenSSL's reason.
Status Verify(const KeyPair& pair, const std::string& ca_pem);

// Standard base64 with padding and no line breaks (Secret data, caBundle).
std::string EncodeBase64(std::string_view data);

// The canonical text of an IP address ("::FFFF:1.2.3.4" and "fd00:0::1"
// become "::ffff:1.2.3.4" and "fd00::1"), so addresses compare as text.
Result<std::string> CanonicalIp(const std::string& ip);

}  // namespace ipguard::certs

#endif  // IPGUARD_WEBHOOK_CERTS_H_
