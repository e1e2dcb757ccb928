#include "webhook/cert_rotator.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <system_error>
#include <utility>

#include "core/json_util.h"
#include "kube/config.h"

namespace ipguard::webhook {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Enough for a few replicas racing each other; a conflict that keeps coming
// back means something else is writing, and the next round tries again.
constexpr int kWriteAttempts = 4;

constexpr char kTlsCrt[] = "tls.crt";
constexpr char kTlsKey[] = "tls.key";
constexpr char kCaCrt[] = "ca.crt";
constexpr char kCaKey[] = "ca.key";
constexpr char kServingCommonName[] = "ipguard-webhook";

// Expiry is a wall-clock matter; the kube::Clock is steady time for waits.
int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}


std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

// The first certificate of a PEM bundle: the CA that ca.key belongs to.
std::string FirstPemBlock(const std::string& bundle) {
  static const std::string kEnd = "-----END CERTIFICATE-----";
  size_t end = bundle.find(kEnd);
  if (end == std::string::npos) return bundle;
  return bundle.substr(0, end + kEnd.size()) + "\n";
}

// Due when within the renewal window of expiry. The window is renew_before,
// but at most a third of the validity we would give a new certificate:
// otherwise a validity shorter than renew_before (tests, demos) would make
// every round renew what the previous round just made.
bool DueForRenewal(const certs::CertInfo& info, std::chrono::hours renew_before,
                   std::chrono::hours validity, int64_t now) {
  int64_t window =
      std::chrono::duration_cast<std::chrono::seconds>(std::min(renew_before, validity / 3))
          .count();
  return now >= info.not_after_unix - window;
}

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

// Temp file in the same directory, then rename: the rename is atomic, so the
// HTTPS server reading the path sees the old file or the new one, never a
// torn one. fsync first so a crash cannot leave an empty file behind.
Status WriteAtomically(const fs::path& path, const std::string& content, mode_t mode) {
  std::string tmpl =
      (path.parent_path() / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = mkstemp(name.data());
  if (fd < 0) {
    return Status::Error("creating a temp file for " + path.string() + ": " + ErrnoText(errno));
  }
  struct Cleanup {
    int fd;
    const char* name;
    bool done = false;
    ~Cleanup() {
      if (fd >= 0) close(fd);
      if (!done) unlink(name);
    }
  } cleanup{fd, name.data()};
  auto fail = [&](const std::string& what) {
    return Status::Error(what + " " + path.string() + ": " + ErrnoText(errno));
  };
  if (fchmod(fd, mode) != 0) return fail("setting the mode of");
  size_t written = 0;
  while (written < content.size()) {
    ssize_t n = write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("writing");
    written += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail("syncing");
  cleanup.fd = -1;
  if (close(fd) != 0) return fail("closing");
  if (rename(name.data(), path.c_str()) != 0) return fail("renaming a temp file to");
  cleanup.done = true;
  return Status::Ok();
}

// The Secret's data decoded; an error says which key is missing or bad.
Result<std::string> SecretValue(const json& data, const char* key) {
  std::string b64 = JsonString(data, key);
  if (b64.empty()) return Status::Error(std::string("the Secret has no ") + key);
  auto value = kube::DecodeBase64(b64);
  if (!value.ok()) {
    return Status::Error(std::string("the Secret's ") + key + " is not base64: " + value.error());
  }
  return value;
}

}  // namespace

const kube::Resource kSecrets{"", "v1", "secrets", true};
const kube::Resource kValidatingWebhookConfigurations{"admissionregistration.k8s.io", "v1",
                                                      "validatingwebhookconfigurations", false};

CertRotator::CertRotator(kube::Client* client, kube::Clock* clock, CertRotatorOptions options)
    : client_(client), clock_(clock), options_(std::move(options)) {}

void CertRotator::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

std::string CertRotator::ca_pem() const {
  std::lock_guard<std::mutex> l(mu_);
  return ca_pem_;
}

std::string CertRotator::Judge(const Result<Material>& m, bool* new_ca) const {
  *new_ca = true;
  if (!m.ok()) return m.error();
  const int64_t now = NowUnix();
  // A self-check: the key matches and the CA is within its validity.
  Status ca_ok = certs::Verify(m->ca, m->ca.cert_pem);
  if (!ca_ok.ok()) return "the CA is unusable: " + ca_ok.message();
  auto ca = certs::Inspect(m->ca.cert_pem);
  if (!ca.ok()) return "the CA is unusable: " + ca.error();
  if (!ca->is_ca) return "the CA certificate is not a CA";
  if (DueForRenewal(*ca, options_.renew_before, options_.ca_validity, now)) {
    return "the CA expires at " + kube::FormatRfc3339(ca->not_after_unix);
  }

  *new_ca = false;
  // Against the current CA only: a serving certificate from the previous CA
  // still in the bundle is due for replacement.
  Status serving_ok = certs::Verify(m->serving, m->ca.cert_pem);
  if (!serving_ok.ok()) return "the serving certificate is unusable: " + serving_ok.message();
  auto serving = certs::Inspect(m->serving.cert_pem);
  if (!serving.ok()) return "the serving certificate is unusable: " + serving.error();
  if (DueForRenewal(*serving, options_.renew_before, options_.serving_validity, now)) {
    return "the serving certificate expires at " + kube::FormatRfc3339(serving->not_after_unix);
  }
  std::vector<std::string> missing;
  for (const auto& dns : options_.dns_names) {
    bool found = std::any_of(serving->dns_names.begin(), serving->dns_names.end(),
                             [&](const std::string& have) { return Lower(have) == Lower(dns); });
    if (!found) missing.push_back(dns);
  }
  for (const auto& ip : options_.ips) {
    auto canonical = certs::CanonicalIp(ip);
    if (!canonical.ok() ||
        std::find(serving->ips.begin(), serving->ips.end(), *canonical) == serving->ips.end()) {
      missing.push_back(ip);
    }
  }
  if (!missing.empty()) return "the serving certificate does not cover " + Join(missing, ", ");
  return "";
}

Result<CertRotator::Material> CertRotator::NewMaterial(const Material* old, bool new_ca) {
  Material m;
  if (old == nullptr || new_ca) {
    // A distinct name per CA, so that during a rotation the two CAs in the
    // bundle are told apart in logs and by chain builders.
    auto ca =
        certs::GenerateCA("ipguard-webhook-ca@" + std::to_string(NowUnix()), options_.ca_validity);
    if (!ca.ok()) return Status::Error("generating the CA: " + ca.error());
    m.ca = std::move(ca).value();
    m.ca_bundle = m.ca.cert_pem;
    // Keep trusting the old CA while it lasts: other replicas serve its
    // certificates until their next round reads the new Secret.
    if (old != nullptr && certs::Verify(old->ca, old->ca.cert_pem).ok()) {
      m.ca_bundle += old->ca.cert_pem;
    }
  } else {
    m.ca = old->ca;
    m.ca_bundle = old->ca_bundle;
  }
  auto serving = certs::GenerateServing(m.ca, kServingCommonName, options_.dns_names, options_.ips,
                                        options_.serving_validity);
  if (!serving.ok()) return Status::Error("generating the serving certificate: " + serving.error());
  m.serving = std::move(serving).value();
  return m;
}

Result<CertRotator::Material> CertRotator::EnsureSecret() {
  const std::string what = "Secret " + options_.ns + "/" + options_.secret_name;
  auto parse = [](const json& secret) -> Result<Material> {
    auto data = secret.find("data");
    if (data == secret.end() || !data->is_object()) return Status::Error("the Secret has no data");
    Material m;
    std::string* targets[] = {&m.serving.cert_pem, &m.serving.key_pem, &m.ca_bundle, &m.ca.key_pem};
    const char* keys[] = {kTlsCrt, kTlsKey, kCaCrt, kCaKey};
    for (int i = 0; i < 4; ++i) {
      auto value = SecretValue(*data, keys[i]);
      if (!value.ok()) return value.status();
      *targets[i] = std::move(value).value();
    }
    m.ca.cert_pem = FirstPemBlock(m.ca_bundle);
    return m;
  };
  auto data_of = [](const Material& m) {
    return json{{kTlsCrt, certs::EncodeBase64(m.serving.cert_pem)},
                {kTlsKey, certs::EncodeBase64(m.serving.key_pem)},
                {kCaCrt, certs::EncodeBase64(m.ca_bundle)},
                {kCaKey, certs::EncodeBase64(m.ca.key_pem)}};
  };

  for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
    auto got = client_->Get(kSecrets, options_.ns, options_.secret_name);
    if (!got.ok()) {
      if (!got.error().IsNotFound()) {
        return Status::Error("reading " + what + ": " + got.error().ToString());
      }
      auto m = NewMaterial(nullptr, true);
      if (!m.ok()) return m.status();
      json secret = {{"apiVersion", "v1"},
                     {"kind", "Secret"},
                     {"metadata",
                      {{"name", options_.secret_name},
                       {"namespace", options_.ns},
                       {"labels", {{"app.kubernetes.io/managed-by", "ipguard"}}}}},
                     {"type", "kubernetes.io/tls"},
                     {"data", data_of(*m)}};
      auto created = client_->Create(kSecrets, options_.ns, secret);
      if (created.ok()) {
        Log("created " + what + " with a new CA and serving certificate");
        return m;
      }
      // AlreadyExists: another replica created it first; use theirs.
      if (created.error().IsConflict()) continue;
      return Status::Error("creating " + what + ": " + created.error().ToString());
    }

    json secret = std::move(got.value());
    if (!secret.is_object()) {
      return Status::Error("reading " + what + ": the answer is not an object");
    }
    auto current = parse(secret);
    bool new_ca = false;
    std::string why = Judge(current, &new_ca);
    if (why.empty()) return current;

    auto m = NewMaterial(current.ok() ? &current.value() : nullptr, new_ca);
    if (!m.ok()) return m.status();
    // Keep the object as read (labels, annotations, other data keys, and
    // resourceVersion, which makes the write a compare-and-swap).
    if (!secret["metadata"].is_object()) secret["metadata"] = json::object();
    secret["metadata"]["name"] = options_.secret_name;
    secret["metadata"]["namespace"] = options_.ns;
    if (!secret["data"].is_object()) secret["data"] = json::object();
    const json data = data_of(*m);  // items() must not outlive its object
    for (const auto& [key, value] : data.items()) secret["data"][key] = value;
    auto updated = client_->Update(kSecrets, secret);
    if (updated.ok()) {
      Log(std::string("replaced the ") +
          (new_ca ? "CA and serving certificate" : "serving certificate") + " in " + what + ": " +
          why);
      return m;
    }
    // Another replica renewed it first; read and judge theirs.
    if (updated.error().IsConflict()) continue;
    return Status::Error("updating " + what + ": " + updated.error().ToString());
  }
  return Status::Error(what + ": still conflicting after " + std::to_string(kWriteAttempts) +
                       " attempts");
}

Status CertRotator::WriteFiles(const Material& m) {
  const fs::path dir(options_.cert_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Error("creating " + dir.string() + ": " + ec.message());
  struct File {
    const char* name;
    const std::string& content;
    mode_t mode;
  };
  // ca.crt first so that clients trusting it are ready for the new serving
  // certificate; the key before the certificate, so a server that reloads
  // when tls.crt changes finds the matching key already in place.
  const File files[] = {{kCaCrt, m.ca_bundle, 0644},
                        {kTlsKey, m.serving.key_pem, 0600},
                        {kTlsCrt, m.serving.cert_pem, 0644}};
  std::vector<std::string> written;
  for (const auto& f : files) {
    fs::path path = dir / f.name;
    auto current = kube::ReadFile(path.string());
    if (current.ok() && current.value() == f.content) continue;
    Status s = WriteAtomically(path, f.content, f.mode);
    if (!s.ok()) return s;
    written.push_back(f.name);
  }
  if (!written.empty()) Log("wrote " + Join(written, ", ") + " in " + dir.string());
  return Status::Ok();
}

Status CertRotator::EnsureCaBundle(const std::string& config, const std::string& ca_bundle_b64) {
  const std::string what = "ValidatingWebhookConfiguration " + config;
  for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
    auto got = client_->Get(kValidatingWebhookConfigurations, "", config);
    if (!got.ok()) {
      if (got.error().IsNotFound()) return Status::Error(what + " not found; caBundle not set yet");
      return Status::Error("reading " + what + ": " + got.error().ToString());
    }
    json obj = std::move(got.value());
    if (!obj.is_object()) return Status::Error("reading " + what + ": the answer is not an object");
    auto webhooks = obj.find("webhooks");
    if (webhooks == obj.end() || !webhooks->is_array()) return Status::Ok();  // nothing to patch
    int changed = 0;
    for (auto& hook : *webhooks) {
      if (!hook.is_object()) continue;
      json& client_config = hook["clientConfig"];
      if (!client_config.is_object()) client_config = json::object();
      if (JsonString(client_config, "caBundle") == ca_bundle_b64) continue;
      client_config["caBundle"] = ca_bundle_b64;
      ++changed;
    }
    if (changed == 0) return Status::Ok();
    // obj still carries the resourceVersion read: a concurrent writer (Helm,
    // another replica) makes this a 409 instead of being overwritten.
    auto updated = client_->Update(kValidatingWebhookConfigurations, obj);
    if (updated.ok()) {
      Log("set caBundle on " + std::to_string(changed) + " webhook(s) of " + what);
      return Status::Ok();
    }
    if (updated.error().IsConflict()) continue;
    return Status::Error("updating " + what + ": " + updated.error().ToString());
  }
  return Status::Error(what + ": still conflicting after " + std::to_string(kWriteAttempts) +
                       " attempts");
}

Status CertRotator::EnsureOnce() {
  std::lock_guard<std::mutex> round(round_mu_);
  try {
    auto m = EnsureSecret();
    if (!m.ok()) return m.status();
    std::vector<std::string> errors;
    Status files = WriteFiles(*m);
    if (files.ok()) {
      ready_ = true;
    } else {
      errors.push_back(files.message());
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      ca_pem_ = m->ca_bundle;
    }
    const std::string b64 = certs::EncodeBase64(m->ca_bundle);
    for (const auto& config : options_.webhook_configs) {
      Status s = EnsureCaBundle(config, b64);
      if (!s.ok()) errors.push_back(s.message());
    }
    if (!errors.empty()) return Status::Error(Join(errors, "; "));
    return Status::Ok();
  } catch (const json::exception& e) {
    // The API server's answers are checked above; this is the backstop for
    // a shape that slipped through, so a bad answer fails a round, not the
    // process.
    return Status::Error(std::string("unexpected API object: ") + e.what());
  }
}

void CertRotator::Run() {
  int failures = 0;
  while (!stop_.load()) {
    Status s = EnsureOnce();
    kube::Clock::Duration wait = options_.check_interval;
    if (s.ok()) {
      failures = 0;
    } else {
      Log("certificate round failed: " + s.message());
      wait = std::min<kube::Clock::Duration>(wait, options_.backoff.Delay(failures));
      failures = std::min(failures + 1, 30);  // the backoff is capped long before
    }
    std::unique_lock<std::mutex> l(mu_);
    clock_->WaitUntil(cv_, l, clock_->Now() + wait, [this] { return stop_.load(); });
  }
}

void CertRotator::Stop() {
  stop_ = true;
  std::lock_guard<std::mutex> l(mu_);
  cv_.notify_all();
}

}  // namespace ipguard::webhook
