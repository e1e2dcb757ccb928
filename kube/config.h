// RestConfig: where the API server is and how to prove who we are, from a
// kubeconfig file (its current context) or from inside a Pod.
//
// TLS is always verified: insecure-skip-tls-verify is refused, and so are
// exec and auth-provider plugins, which ipguard does not run.
#ifndef IPGUARD_KUBE_CONFIG_H_
#define IPGUARD_KUBE_CONFIG_H_

#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "core/status.h"
#include "kube/clock.h"

namespace ipguard::kube {

struct RestConfig {
  std::string server;  // "https://10.0.0.1:6443"
  std::string ca_pem;  // empty: the system trust store
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string token;       // a fixed bearer token
  std::string token_file;  // or a file re-read every minute
  std::string tls_server_name;
  std::string ns;  // the context's namespace, or the Pod's
};

// Parses kubeconfig text; relative file paths resolve against `base_dir`.
// `context` empty means current-context.
Result<RestConfig> ParseKubeconfig(const std::string& text, const std::string& base_dir,
                                   const std::string& context = "");
// Reads the file named by `path` (or $KUBECONFIG, or ~/.kube/config when empty).
Result<RestConfig> LoadKubeconfig(const std::string& path, const std::string& context = "");

// The Pod's service account: KUBERNETES_SERVICE_HOST/PORT from `getenv` and
// token, ca.crt and namespace under `sa_dir`.
Result<RestConfig> InClusterConfig(
    const std::function<const char*(const char*)>& getenv = ::getenv,
    const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

// The bearer token for each request: fixed, or read from token_file and read
// again once a minute (projected service-account tokens rotate). Thread-safe.
class TokenSource {
 public:
  TokenSource(const RestConfig& config, Clock* clock);
  // Empty when there is no token; an error when the file cannot be read.
  Result<std::string> Token();

 private:
  std::mutex mu_;
  Clock* clock_;
  std::string token_;
  std::string file_;
  std::optional<Clock::TimePoint> read_at_;
};

Result<std::string> DecodeBase64(const std::string& in);

// The user name the API server knows this config by, as it writes it in an
// AdmissionReview's userInfo: a ServiceAccount token's subject
// ("system:serviceaccount:ipguard-system:ipguard"), or a client
// certificate's common name. Empty when it cannot be told (an opaque token).
std::string UsernameOf(const RestConfig& config);

// The whole file at `path`, or an error that names it.
Result<std::string> ReadFile(const std::string& path);

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_CONFIG_H_
