#include "kube/config.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/json_util.h"
#include "core/manifest.h"

namespace ipguard::kube {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::Error(path + ": cannot be read");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status::Error(path + ": cannot be read");
  return ss.str();
}

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Finds {name: N, <field>: {...}} in a kubeconfig list.
const json* Named(const json& root, const char* list, const std::string& name, const char* field) {
  auto l = root.find(list);
  if (l == root.end() || !l->is_array()) return nullptr;
  for (const auto& item : *l) {
    if (JsonString(item, "name") == name && item.contains(field) && item[field].is_object())
      return &item[field];
  }
  return nullptr;
}

// Inline base64 data or a file path (relative to base_dir).
Result<std::string> DataOrFile(const json& obj, const char* data_key, const char* file_key,
                               const std::string& base_dir, const std::string& what) {
  std::string data = JsonString(obj, data_key);
  if (!data.empty()) {
    auto d = DecodeBase64(data);
    if (!d.ok()) return Status::Error(what + " " + data_key + " is not base64: " + d.error());
    return d;
  }
  std::string file = JsonString(obj, file_key);
  if (file.empty()) return std::string();
  fs::path p(file);
  if (p.is_relative()) p = fs::path(base_dir) / p;
  return ReadFile(p.string());
}

}  // namespace

Result<std::string> DecodeBase64(const std::string& in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    int v = value(c);
    if (v < 0) return Status::Error(std::string("character '") + c + "' is not base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

Result<RestConfig> ParseKubeconfig(const std::string& text, const std::string& base_dir,
                                   const std::string& context) {
  std::vector<Document> docs;
  Status s = ParseManifests(text, "kubeconfig", &docs);
  if (!s.ok()) return s;
  if (docs.size() != 1 || !docs[0].json.is_object())
    return Status::Error("kubeconfig: not a Config object");
  const json& root = docs[0].json;
  std::string ctx_name = context.empty() ? JsonString(root, "current-context") : context;
  if (ctx_name.empty()) return Status::Error("kubeconfig: no current-context and no context given");
  const json* ctx = Named(root, "contexts", ctx_name, "context");
  if (!ctx) return Status::Error("kubeconfig: context \"" + ctx_name + "\" not found");
  std::string cluster_name = JsonString(*ctx, "cluster");
  const json* cluster = Named(root, "clusters", cluster_name, "cluster");
  if (!cluster) return Status::Error("kubeconfig: cluster \"" + cluster_name + "\" not found");
  RestConfig c;
  c.ns = JsonString(*ctx, "namespace");
  c.server = JsonString(*cluster, "server");
  if (c.server.rfind("https://", 0) != 0) {
    return Status::Error("kubeconfig: cluster \"" + cluster_name + "\" server \"" + c.server +
                         "\" must be an https:// URL");
  }
  if (cluster->contains("insecure-skip-tls-verify") &&
      (*cluster)["insecure-skip-tls-verify"] == true) {
    return Status::Error("kubeconfig: cluster \"" + cluster_name +
                         "\" sets insecure-skip-tls-verify; ipguard always verifies TLS");
  }
  c.tls_server_name = JsonString(*cluster, "tls-server-name");
  auto ca = DataOrFile(*cluster, "certificate-authority-data", "certificate-authority", base_dir,
                       "cluster");
  if (!ca.ok()) return ca.status();
  c.ca_pem = *ca;
  std::string user_name = JsonString(*ctx, "user");
  if (!user_name.empty()) {
    const json* user = Named(root, "users", user_name, "user");
    if (!user) return Status::Error("kubeconfig: user \"" + user_name + "\" not found");
    if (user->contains("exec") || user->contains("auth-provider")) {
      return Status::Error(
          "kubeconfig: user \"" + user_name +
          "\" uses a credential plugin (exec or auth-provider), which ipguard does not "
          "run; use a client certificate or a token");
    }
    auto cert =
        DataOrFile(*user, "client-certificate-data", "client-certificate", base_dir, "user");
    if (!cert.ok()) return cert.status();
    auto key = DataOrFile(*user, "client-key-data", "client-key", base_dir, "user");
    if (!key.ok()) return key.status();
    c.client_cert_pem = *cert;
    c.client_key_pem = *key;
    if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
      return Status::Error(
          "kubeconfig: user \"" + user_name +
          "\" has a client certificate without a key or a key without a certificate");
    }
    c.token = JsonString(*user, "token");
    std::string token_file = JsonString(*user, "tokenFile");
    if (!token_file.empty()) {
      fs::path p(token_file);
      if (p.is_relative()) p = fs::path(base_dir) / p;
      c.token_file = p.string();
    }
  }
  return c;
}

Result<RestConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  std::string p = path;
  if (p.empty()) {
    const char* env = ::getenv("KUBECONFIG");
    if (env && *env) {
      p = env;
      size_t colon = p.find(':');
      if (colon != std::string::npos) p = p.substr(0, colon);  // the first file of a list
    } else if (const char* home = ::getenv("HOME")) {
      p = std::string(home) + "/.kube/config";
    }
  }
  if (p.empty()) return Status::Error("no kubeconfig: set --kubeconfig or KUBECONFIG");
  auto text = ReadFile(p);
  if (!text.ok()) return text.status();
  auto c = ParseKubeconfig(*text, fs::path(p).parent_path().string(), context);
  if (!c.ok()) return Status::Error(p + ": " + c.error());
  return c;
}

Result<RestConfig> InClusterConfig(const std::function<const char*(const char*)>& getenv,
                                   const std::string& sa_dir) {
  const char* host = getenv("KUBERNETES_SERVICE_HOST");
  const char* port = getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port) {
    return Status::Error(
        "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
  }
  RestConfig c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  c.server = "https://" + h + ":" + port;
  auto ca = ReadFile(sa_dir + "/ca.crt");
  if (!ca.ok()) return ca.status();
  c.ca_pem = *ca;
  c.token_file = sa_dir + "/token";
  auto token = ReadFile(c.token_file);
  if (!token.ok()) return token.status();
  auto ns = ReadFile(sa_dir + "/namespace");
  if (ns.ok()) c.ns = *ns;
  return c;
}

TokenSource::TokenSource(const RestConfig& config, Clock* clock)
    : clock_(clock), token_(config.token), file_(config.token_file) {}

Result<std::string> TokenSource::Token() {
  std::lock_guard<std::mutex> l(mu_);
  if (file_.empty()) return token_;
  auto now = clock_->Now();
  if (!read_at_ || now - *read_at_ >= std::chrono::minutes(1)) {
    auto t = ReadFile(file_);
    if (!t.ok()) {
      if (!read_at_) return t.status();
      return token_;  // keep the last good token; the next call tries again
    }
    std::string v = *t;
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r' || v.back() == ' ')) v.pop_back();
    token_ = v;
    read_at_ = now;
  }
  return token_;
}

std::string UsernameOf(const RestConfig& config) {
  std::string token = config.token;
  if (token.empty() && !config.token_file.empty()) {
    auto t = ReadFile(config.token_file);
    if (t.ok()) token = *t;
  }
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (!token.empty()) {
    // A JWT: header.payload.signature, the payload base64url JSON.
    size_t a = token.find('.');
    size_t b = a == std::string::npos ? a : token.find('.', a + 1);
    if (b == std::string::npos) return "";
    auto payload = DecodeBase64(token.substr(a + 1, b - a - 1));
    if (!payload.ok()) return "";
    json claims = json::parse(*payload, nullptr, false);
    if (!claims.is_object()) return "";
    return JsonString(claims, "sub");
  }
  if (config.client_cert_pem.empty()) return "";
  BIO* bio = BIO_new_mem_buf(config.client_cert_pem.data(),
                             static_cast<int>(config.client_cert_pem.size()));
  if (!bio) return "";
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!cert) return "";
  std::string out;
  char cn[256] = {0};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
  if (n > 0) out.assign(cn, static_cast<size_t>(n));
  X509_free(cert);
  return out;
}

}  // namespace ipguard::kube
