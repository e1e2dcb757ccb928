// CertRotator: the webhook's built-in certificates (manager flag
// --self-signed), for clusters without cert-manager.
//
// Every replica runs one. They agree through a Secret in their namespace
// (type kubernetes.io/tls; data tls.crt, tls.key, ca.crt, ca.key) that holds
// a private CA and a serving certificate it signed, so all replicas serve the
// same certificate and a restart keeps it. One round (EnsureOnce):
//  1. Secret: read it; create it when missing; replace the serving
//     certificate when it expires within renew_before, does not cover every
//     wanted DNS name and IP, or does not verify; replace the CA too when the
//     CA expires within renew_before or is unusable. Writes are
//     compare-and-swap (create, or update with the resourceVersion read);
//     a replica that loses the race (409) reads the winner's Secret and uses
//     that, so replicas never fight.
//  2. Files: tls.crt, tls.key and ca.crt in cert_dir, each written to a temp
//     file and renamed over the old one (a reader never sees half a file),
//     and only when the content changed (the HTTPS server reloads on change).
//     The key file is mode 0600.
//  3. caBundle: every webhook of each named ValidatingWebhookConfiguration
//     gets clientConfig.caBundle = base64(ca.crt), written with the
//     resourceVersion read (a 409 re-reads and retries), and only when it
//     differs. A missing configuration is an error of the round (Helm may
//     create it later) but does not stop steps 1 and 2.
// When the CA is replaced, ca.crt (and so caBundle) carries the new CA
// followed by the old one while the old one is still valid: replicas that
// still serve a certificate from the old CA keep working until their next
// round picks up the new Secret.
//
// A certificate is renewed within renew_before of its expiry, where
// renew_before is capped at a third of the validity a new one would get, so
// a short validity (tests, demos) does not make every round renew.
//
// Thread-safe: EnsureOnce() rounds are serialized; ready() and ca_pem() may
// be called from any thread while Run() loops on another.
#ifndef IPGUARD_WEBHOOK_CERT_ROTATOR_H_
#define IPGUARD_WEBHOOK_CERT_ROTATOR_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"
#include "kube/backoff.h"
#include "kube/client.h"
#include "kube/clock.h"
#include "webhook/certs.h"

namespace ipguard::webhook {

extern const kube::Resource kSecrets;
extern const kube::Resource kValidatingWebhookConfigurations;

struct CertRotatorOptions {
  std::string ns;  // where the Secret lives: the manager's own namespace
  std::string secret_name = "ipguard-webhook-cert";
  std::string cert_dir;  // where the HTTPS server reads tls.crt and tls.key
  // What the API server dials: ipguard-webhook.NS.svc and .cluster.local.
  std::vector<std::string> dns_names;
  // For a webhook registered by URL (the e2e suite: 127.0.0.1).
  std::vector<std::string> ips;
  std::vector<std::string> webhook_configs;  // ValidatingWebhookConfiguration names
  std::chrono::hours ca_validity{24 * 365 * 5};
  std::chrono::hours serving_validity{24 * 365};
  std::chrono::hours renew_before{24 * 30};
  std::chrono::seconds check_interval{3600};
  // After a failed round: 1 s doubling to 5 min (never beyond check_interval).
  kube::Backoff backoff{std::chrono::seconds(1), std::chrono::minutes(5)};
  // Told one line per change made (created, renewed, patched) and per failed
  // round; may be empty.
  std::function<void(const std::string&)> log;
};

class CertRotator {
 public:
  CertRotator(kube::Client* client, kube::Clock* clock, CertRotatorOptions options);
  CertRotator(const CertRotator&) = delete;
  CertRotator& operator=(const CertRotator&) = delete;

  // One round: Secret, then files, then caBundle. Ok when all succeeded; the
  // error names every step that failed.
  Status EnsureOnce();
  // EnsureOnce() every check_interval (with backoff after a failure) until
  // Stop().
  void Run();
  void Stop();

  // True once the certificate files have been written (or found current).
  bool ready() const { return ready_.load(); }
  // The CA bundle (PEM) last written; empty before the first good round.
  std::string ca_pem() const;

 private:
  // What the Secret holds, decoded.
  struct Material {
    certs::KeyPair ca;       // the current CA (first of the bundle) and its key
    std::string ca_bundle;   // ca.crt: the current CA, maybe followed by the old
    certs::KeyPair serving;  // tls.crt, tls.key
  };

  Result<Material> EnsureSecret();
  Result<Material> NewMaterial(const Material* old, bool new_ca);
  // Empty when `m` can stay as it is; otherwise why it cannot, and in
  // *new_ca whether the CA must go too.
  std::string Judge(const Result<Material>& m, bool* new_ca) const;
  Status WriteFiles(const Material& m);
  Status EnsureCaBundle(const std::string& config, const std::string& ca_bundle_b64);
  void Log(const std::string& line) const;

  kube::Client* client_;
  kube::Clock* clock_;
  CertRotatorOptions options_;

  std::mutex round_mu_;  // one EnsureOnce() at a time
  std::atomic<bool> ready_{false};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;  // guards ca_pem_; cv_ wakes Run() for Stop()
  std::condition_variable cv_;
  std::string ca_pem_;
};

}  // namespace ipguard::webhook

#endif  // IPGUARD_WEBHOOK_CERT_ROTATOR_H_
