// `ipguard manager`: the informers, the webhook server (every replica), the
// controller (Lease holder only), /metrics, /healthz and /readyz, wired
// together. Everything that decides lives in the libraries; this only
// connects them and owns their threads.
//
// `ipguard agent` is the same process wired for a workload cluster: the plan
// (ipguard's kinds and the IPClaims) is watched in the management cluster
// through a second connection, the Services (and MetalLB pools) in its own
// cluster, and the claims of its Services are written to the management
// cluster with its cluster name.
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
  // `ipguard agent`: the plan is read from, and claims written to, the
  // management cluster (plan_kubeconfig); engine.cluster is its
  // --cluster-name, engine.cluster_ref its --cluster-ref.
  bool agent = false;
  std::string plan_kubeconfig;
  std::string plan_context;
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
  // While the webhook answers 10 or more reviews a second, status writes are
  // paced to this many a second instead (0: status_qps throughout).
  int status_qps_admitting = 1;
  std::string log_level = "info";
  std::string log_format = "text";
  // Not flags: tests shorten these.
  int watch_timeout_seconds = 300;
  int lease_seconds = 15, renew_deadline_seconds = 10, retry_period_seconds = 2;
  int pending_ttl_seconds = 30;
  int claim_grace_ms = 60000;  // --claim-grace: a new claim's wait for its holder
  // Agent: how often the management cluster is asked whether it answers.
  std::chrono::milliseconds plan_probe_interval{5000};
};

// Parses the flags after "manager"; an error names the bad flag.
Result<ManagerOptions> ParseManagerFlags(const std::vector<std::string>& args);
extern const char kManagerUsage[];
// The flags after "agent": the agent's own, then the manager's.
Result<ManagerOptions> ParseAgentFlags(const std::vector<std::string>& args);
extern const char kAgentUsage[];

class Manager {
 public:
  // `transport` talks to the API server (the real one from a RestConfig in
  // RunManager, any Transport in tests); for an agent, `plan` talks to the
  // management cluster's. `claims`, when given, is the one the claim writers
  // use to reach the ledger's API server (RunManager: kept connections,
  // kube/kept_transport.h); otherwise they use `plan`, or `transport`.
  Manager(ManagerOptions options, std::unique_ptr<kube::Transport> transport,
          std::unique_ptr<kube::Transport> plan = nullptr,
          std::unique_ptr<kube::Transport> claims = nullptr);
  ~Manager();
  Status Start();
  // Stops taking work, finishes what is in flight, releases the Lease.
  void Stop();

  bool Synced() const;
  bool Ready() const;
  bool IsLeader() const;
  // Agent: whether the management cluster answered when last asked.
  bool PlanReachable() const;
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
int RunAgent(const std::vector<std::string>& args, std::ostream& err);

}  // namespace ipguard

#endif  // IPGUARD_CMD_MANAGER_H_
