// `ipguard manager`: the informers, the webhook server (every replica), the
// controller (Lease holder only), /metrics, /healthz and /readyz, wired
// together. Everything that decides lives in the libraries; this only
// connects them and owns their threads.
#ifndef IPGUARD_CMD_MANAGER_H_
#define IPGUARD_CMD_MANAGER_H_

#include <chrono>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/engine.h"
#include "core/status.h"
#include "kube/transport.h"

namespace ipguard {

struct ManagerOptions {
  std::string kubeconfig;
  std::string context;
  std::string ns;  // resolved: flag, $POD_NAMESPACE, kubeconfig, "ipguard-system"
  bool leader_elect = true;
  std::string lease_name = "ipguard-manager";
  Options engine;
  bool metallb = false;
  std::string webhook_bind = "0.0.0.0";
  int webhook_port = 9443;  // -1: no webhook server (tests of the controller alone)
  std::string cert_dir = "/tmp/k8s-webhook-server/serving-certs";
  bool self_signed = false;
  std::string cert_secret = "ipguard-webhook-cert";
  std::vector<std::string> webhook_configs;
  std::vector<std::string> webhook_dns;
  std::vector<std::string> webhook_ips;
  std::string client_ca;  // PEM file: only clients with a certificate it signed
  int max_connections = 1000;
  int max_holds_per_requester = 256;
  // IPClaims written at admission (the ledger shared by every replica and
  // agent), each admission waiting at most claim_timeout on them.
  bool claims = true;
  std::chrono::milliseconds claim_timeout{5000};
  int claim_writers = 4;
  // Not a flag: who this process is at the API server (kube::UsernameOf),
  // so that the claims it writes are admitted at once.
  std::string self_username;
  std::string probe_bind = "0.0.0.0";
  int metrics_port = 8080;  // 0: any free port; -1: none
  int probe_port = 8081;
  int workers = 2;
  // Status writes paced to status_qps a second (0: unpaced), status_burst at once.
  int status_qps = 50;
  int status_burst = 100;
  std::string log_level = "info";
  std::string log_format = "text";
  // Not flags: tests shorten these.
  int watch_timeout_seconds = 300;
  int lease_seconds = 15, renew_deadline_seconds = 10, retry_period_seconds = 2;
  int pending_ttl_seconds = 30;
  int claim_grace_ms = 60000;  // --claim-grace: a new claim's wait for its holder
};

// Parses the flags after "manager"; an error names the bad flag.
Result<ManagerOptions> ParseManagerFlags(const std::vector<std::string>& args);
extern const char kManagerUsage[];

class Manager {
 public:
  // `transport` talks to the API server (the real one from a RestConfig in
  // RunManager, any Transport in tests).
  Manager(ManagerOptions options, std::unique_ptr<kube::Transport> transport);
  ~Manager();
  Status Start();
  // Stops taking work, finishes what is in flight, releases the Lease.
  void Stop();

  bool Synced() const;
  bool Ready() const;
  bool IsLeader() const;
  int webhook_port() const;
  int metrics_port() const;
  int probe_port() const;
  std::string Metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The whole command: flags, logging, config, Start, wait for SIGTERM or
// SIGINT, Stop. Returns the exit code.
int RunManager(const std::vector<std::string>& args, std::ostream& err);

}  // namespace ipguard

#endif  // IPGUARD_CMD_MANAGER_H_
