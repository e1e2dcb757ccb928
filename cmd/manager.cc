#include "cmd/manager.h"

#include <malloc.h>
#include <signal.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <ostream>
#include <random>
#include <thread>

#include "controller/controller.h"
#include "core/address.h"
#include "core/json_projection.h"
#include "core/objects.h"
#include "kube/client.h"
#include "kube/cluster_state.h"
#include "kube/config.h"
#include "kube/events.h"
#include "kube/http_transport.h"
#include "kube/kept_transport.h"
#include "kube/leader.h"
#include "kube/metrics.h"
#include "kube/reflector.h"
#include "kube/store.h"
#include "webhook/admission.h"
#include "webhook/cert_rotator.h"
#include "webhook/claims.h"
#include "webhook/handler.h"
#include "webhook/server.h"

namespace ipguard {

const char kManagerUsage[] =
    "usage: ipguard manager [flags]\n"
    "  --kubeconfig PATH            kubeconfig (default: in-cluster, else $KUBECONFIG or "
    "~/.kube/config)\n"
    "  --context NAME               kubeconfig context (default: current-context)\n"
    "  --namespace NS               Lease and certificate Secret namespace\n"
    "                               (default: $POD_NAMESPACE, the kubeconfig's, or "
    "ipguard-system)\n"
    "  --leader-elect=true|false    elect one writer with a Lease (default true)\n"
    "  --lease-name NAME            (default ipguard-manager)\n"
    "  --platform azurelocal|vmware (default azurelocal)\n"
    "  --capacity-policy Enforce|Warn (default Enforce)\n"
    "  --metallb                    also watch and judge MetalLB IPAddressPools\n"
    "  --webhook-port N             HTTPS webhook, POST /validate (default 9443)\n"
    "  --webhook-bind ADDR          (default 0.0.0.0)\n"
    "  --cert-dir DIR               tls.crt and tls.key, re-read on change\n"
    "                               (default /tmp/k8s-webhook-server/serving-certs)\n"
    "  --self-signed                built-in CA kept in a Secret; writes --cert-dir; patches "
    "caBundle\n"
    "  --cert-secret NAME           (default ipguard-webhook-cert)\n"
    "  --webhook-config NAME        ValidatingWebhookConfiguration to patch (repeatable)\n"
    "  --webhook-dns NAME           DNS name for the self-signed certificate (repeatable)\n"
    "  --webhook-ip IP              IP address for the self-signed certificate (repeatable)\n"
    "  --client-ca FILE             accept webhook clients only with a certificate this CA\n"
    "                               signed (the API server's, see docs/install.md)\n"
    "  --max-connections N          webhook connections open at once (default 1000)\n"
    "  --max-holds-per-requester N  admitted objects one requester (userInfo) may hold\n"
    "                               before the watch shows them (default 256)\n"
    "  --claims=true|false          write an IPClaim for each single address admitted, so\n"
    "                               replicas and agents share one ledger (default true)\n"
    "  --claim-timeout DURATION     longest an admission waits on its claims, at most a third\n"
    "                               of the API server's webhook timeout (default 5s)\n"
    "  --claim-writers N            threads writing claims (default 4)\n"
    "  --claim-grace DURATION       how long a new claim waits for its holder to be stored\n"
    "                               before the leader releases it (default 60s)\n"
    "  --metrics-port N             plain HTTP /metrics (default 8080)\n"
    "  --probe-port N               plain HTTP /healthz and /readyz (default 8081)\n"
    "  --probe-bind ADDR            address of the metrics and probe ports (default 0.0.0.0; :: "
    "for IPv6)\n"
    "  --workers N                  reconcile workers (default 2)\n"
    "  --status-qps N               writes a second on average that follow no change of their\n"
    "                               own object (a full pass's statuses and claims, neighbours'\n"
    "                               statuses), 0: unpaced (default 50)\n"
    "  --status-burst N             such writes at once after a quiet spell (default 100)\n"
    "  --status-qps-admitting N     status writes a second while the webhook answers 10 or\n"
    "                               more reviews a second, 0: as --status-qps (default 1)\n"
    "  --log-level debug|info|warn|error (default info)\n"
    "  --log-format text|json       (default text)\n";

const char kAgentUsage[] =
    "usage: ipguard agent --plan-kubeconfig PATH --cluster-name NAME [flags]\n"
    "  --plan-kubeconfig PATH       kubeconfig of the management cluster, where the plan is\n"
    "  --plan-context NAME          its context (default: its current-context)\n"
    "  --cluster-name NAME          this workload cluster's name in the ledger (holder.cluster)\n"
    "                               and in the names of mirrored pools (a DNS-1123 label)\n"
    "  --cluster-ref NAMESPACE/NAME this cluster's WorkloadCluster: Services without the\n"
    "                               ipguard.io/logical-network annotation live in its network\n"
    "  --metallb                    also judge MetalLB IPAddressPools and mirror them into the\n"
    "                               management cluster as LoadBalancerPools <cluster>-<pool>\n"
    "  --kubeconfig, --context      this cluster (default: in-cluster)\n"
    "  --lease-name NAME            (default ipguard-agent)\n"
    "  and the manager's flags for the webhook, certificates, claims, probes and logs\n"
    "  (ipguard manager --help).\n";

namespace {

using nlohmann::json;

// A DNS-1123 label: lowercase letters, digits and '-', 1 to 63, starting and
// ending with a letter or digit.
bool IsDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return s.front() != '-' && s.back() != '-';
}

Result<int> ParsePort(const std::string& flag, const std::string& v, int min) {
  char* end = nullptr;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || n < min || n > 65535) {
    return Status::Error(flag + " must be a port number, not \"" + v + "\"");
  }
  return static_cast<int>(n);
}

// A count flag in [min, max]; the error names the flag and the bounds.
Result<int> ParseCount(const std::string& flag, const std::string& v, long min, long max) {
  char* end = nullptr;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || n < min || n > max) {
    return Status::Error(flag + " must be " + std::to_string(min) + " to " + std::to_string(max) +
                         ", not \"" + v + "\"");
  }
  return static_cast<int>(n);
}

// The kinds the manager watches, where they live and how the engine names
// them.
struct WatchedKind {
  Kind kind;
  kube::Resource resource;
};

// Every kind of the registry; the opt-in ones (MetalLB's IPAddressPool) only
// with --metallb.
std::vector<WatchedKind> KindsToWatch(bool metallb) {
  std::vector<WatchedKind> out;
  for (const KindInfo& info : Kinds()) {
    if (info.opt_in && !metallb) continue;
    out.push_back({info.kind, kube::ResourceOf(info)});
  }
  return out;
}

// The ipguard.io/cluster label of a LoadBalancerPool as the agent's store keeps
// it ("" without one): the workload cluster whose agent mirrors it.
std::string MirroredBy(const json& obj) {
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) return "";
  auto labels = meta->find("labels");
  if (labels == meta->end() || !labels->is_object()) return "";
  auto v = labels->find(kClusterLabel);
  return v != labels->end() && v->is_string() ? v->get<std::string>() : "";
}

std::string Identity() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "ipguard");
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "_%08x", rd());
  return std::string(host) + suffix;
}

}  // namespace

Result<ManagerOptions> ParseManagerFlags(const std::vector<std::string>& args) {
  ManagerOptions o;
  std::string ns_flag;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    auto take = [&](std::string* out) -> Status {
      if (has_value) {
        *out = value;
        return Status::Ok();
      }
      if (i + 1 >= args.size()) return Status::Error(a + " needs a value");
      *out = args[++i];
      return Status::Ok();
    };
    auto boolean = [&](bool* out) -> Status {
      if (!has_value || value == "true") {
        *out = true;
      } else if (value == "false") {
        *out = false;
      } else {
        return Status::Error(a + " must be true or false, not \"" + value + "\"");
      }
      return Status::Ok();
    };
    std::string v;
    Status s;
    if (a == "--kubeconfig") {
      s = take(&o.kubeconfig);
    } else if (a == "--context") {
      s = take(&o.context);
    } else if (a == "--namespace") {
      s = take(&ns_flag);
    } else if (a == "--leader-elect") {
      s = boolean(&o.leader_elect);
    } else if (a == "--lease-name") {
      s = take(&o.lease_name);
    } else if (a == "--platform") {
      if ((s = take(&v)).ok()) {
        auto p = ParsePlatform(v);
        if (!p) return Status::Error("--platform must be azurelocal or vmware, not \"" + v + "\"");
        o.engine.platform = *p;
      }
    } else if (a == "--capacity-policy") {
      if ((s = take(&v)).ok()) {
        auto p = ParseCapacityPolicy(v);
        if (!p)
          return Status::Error("--capacity-policy must be Enforce or Warn, not \"" + v + "\"");
        o.engine.capacity_policy = *p;
      }
    } else if (a == "--metallb") {
      s = boolean(&o.metallb);
    } else if (a == "--self-signed") {
      s = boolean(&o.self_signed);
    } else if (a == "--webhook-port" || a == "--metrics-port" || a == "--probe-port") {
      if ((s = take(&v)).ok()) {
        auto p = ParsePort(a, v, a == "--webhook-port" ? 1 : 0);
        if (!p.ok()) return p.status();
        (a == "--webhook-port"   ? o.webhook_port
         : a == "--metrics-port" ? o.metrics_port
                                 : o.probe_port) = *p;
      }
    } else if (a == "--webhook-bind") {
      s = take(&o.webhook_bind);
    } else if (a == "--probe-bind") {
      s = take(&o.probe_bind);
    } else if (a == "--cert-dir") {
      s = take(&o.cert_dir);
    } else if (a == "--cert-secret") {
      s = take(&o.cert_secret);
    } else if (a == "--client-ca") {
      s = take(&o.client_ca);
    } else if (a == "--max-connections" || a == "--max-holds-per-requester") {
      if ((s = take(&v)).ok()) {
        auto n = ParseCount(a, v, 1, 1000000);
        if (!n.ok()) return n.status();
        (a == "--max-connections" ? o.max_connections : o.max_holds_per_requester) = *n;
      }
    } else if (a == "--status-qps" || a == "--status-burst" || a == "--status-qps-admitting") {
      if ((s = take(&v)).ok()) {
        auto n = ParseCount(a, v, a == "--status-burst" ? 1 : 0, 100000);
        if (!n.ok()) return n.status();
        (a == "--status-qps"     ? o.status_qps
         : a == "--status-burst" ? o.status_burst
                                 : o.status_qps_admitting) = *n;
      }
    } else if (a == "--webhook-config" || a == "--webhook-dns" || a == "--webhook-ip") {
      if ((s = take(&v)).ok()) {
        auto& list = a == "--webhook-config" ? o.webhook_configs
                     : a == "--webhook-dns"  ? o.webhook_dns
                                             : o.webhook_ips;
        for (size_t start = 0; start <= v.size();) {
          size_t comma = v.find(',', start);
          std::string item =
              v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
          if (!item.empty()) list.push_back(item);
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
      }
    } else if (a == "--claims") {
      s = boolean(&o.claims);
    } else if (a == "--claim-timeout") {
      if ((s = take(&v)).ok()) {
        auto d = kube::ParseDuration(v);
        if (!d || d->count() < 100 || d->count() > 30000) {
          return Status::Error("--claim-timeout must be a duration from 100ms to 30s, not \"" + v +
                               "\"");
        }
        o.claim_timeout = *d;
      }
    } else if (a == "--claim-grace") {
      if ((s = take(&v)).ok()) {
        auto d = kube::ParseDuration(v);
        if (!d || d->count() < 1000 || d->count() > 3600000) {
          return Status::Error("--claim-grace must be a duration from 1s to 1h, not \"" + v + "\"");
        }
        o.claim_grace_ms = static_cast<int>(d->count());
      }
    } else if (a == "--claim-writers") {
      if ((s = take(&v)).ok()) {
        auto n = ParseCount(a, v, 1, 64);
        if (!n.ok()) return n.status();
        o.claim_writers = *n;
      }
    } else if (a == "--workers") {
      if ((s = take(&v)).ok()) {
        auto n = ParseCount(a, v, 1, 64);
        if (!n.ok()) return n.status();
        o.workers = *n;
      }
    } else if (a == "--log-level") {
      if ((s = take(&o.log_level)).ok() && o.log_level != "debug" && o.log_level != "info" &&
          o.log_level != "warn" && o.log_level != "error") {
        return Status::Error("--log-level must be debug, info, warn or error, not \"" +
                             o.log_level + "\"");
      }
    } else if (a == "--log-format") {
      if ((s = take(&o.log_format)).ok() && o.log_format != "text" && o.log_format != "json") {
        return Status::Error("--log-format must be text or json, not \"" + o.log_format + "\"");
      }
    } else {
      return Status::Error("unknown flag \"" + args[i] + "\"");
    }
    if (!s.ok()) return s;
  }
  o.ns = ns_flag;
  if (o.self_signed && o.webhook_dns.empty() && o.webhook_ips.empty()) {
    return Status::Error("--self-signed needs at least one --webhook-dns or --webhook-ip");
  }
  return o;
}

Result<ManagerOptions> ParseAgentFlags(const std::vector<std::string>& args) {
  std::vector<std::string> rest;
  std::string plan_kubeconfig, plan_context, cluster, ref;
  bool lease_named = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string value;
    size_t eq = a.find('=');
    bool has_value = a.rfind("--", 0) == 0 && eq != std::string::npos;
    if (has_value) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    std::string* into = a == "--plan-kubeconfig" ? &plan_kubeconfig
                        : a == "--plan-context"  ? &plan_context
                        : a == "--cluster-name"  ? &cluster
                        : a == "--cluster-ref"   ? &ref
                                                 : nullptr;
    if (!into) {
      lease_named = lease_named || a == "--lease-name";
      rest.push_back(args[i]);
      continue;
    }
    if (!has_value) {
      if (i + 1 >= args.size()) return Status::Error(a + " needs a value");
      value = args[++i];
    }
    *into = value;
  }
  if (plan_kubeconfig.empty()) {
    return Status::Error("--plan-kubeconfig is required: the management cluster holds the plan");
  }
  if (!IsDnsLabel(cluster)) {
    return Status::Error(
        "--cluster-name must be a DNS-1123 label (lowercase letters, digits and '-', at most 63), "
        "not \"" + cluster + "\"");
  }
  size_t slash = ref.find('/');
  if (!ref.empty() && (slash == std::string::npos || !IsDnsLabel(ref.substr(0, slash)) ||
                       slash + 1 == ref.size() || ref.find('/', slash + 1) != std::string::npos)) {
    return Status::Error("--cluster-ref must be NAMESPACE/NAME of a WorkloadCluster, not \"" + ref +
                         "\"");
  }
  auto parsed = ParseManagerFlags(rest);
  if (!parsed.ok()) return parsed.status();
  ManagerOptions o = std::move(parsed).value();
  o.agent = true;
  o.plan_kubeconfig = plan_kubeconfig;
  o.plan_context = plan_context;
  o.engine.cluster = cluster;
  o.engine.cluster_ref = ref;
  if (!lease_named) o.lease_name = "ipguard-agent";
  return o;
}

struct Manager::Impl {
  struct Informer {
    WatchedKind what;
    bool plan = false;  // an agent's: watched in the management cluster
    kube::Store store;
    std::unique_ptr<kube::Reflector> reflector;
    std::thread thread;
  };

  const std::string identity;  // of this process, for the Lease and events
  ManagerOptions options;
  std::unique_ptr<kube::Transport> transport;
  std::unique_ptr<kube::Transport> plan_transport;
  std::unique_ptr<kube::Transport> claims_transport;  // may be null
  kube::Clock* clock = kube::RealClock::Get();
  kube::Client client;
  // The management cluster's API server: the agent's second connection, or
  // `client` itself.
  std::unique_ptr<kube::Client> plan_owned;
  kube::Client* plan;
  // The claim writers' way to the ledger: over `claims_transport`, or `plan`.
  std::unique_ptr<kube::Client> claim_client_owned;
  kube::Client* claim_client;
  std::atomic<bool> plan_reachable{true};
  kube::Metrics metrics;
  kube::ClusterState state;
  kube::EventRecorder events;
  std::unique_ptr<kube::LeaderElector> elector;
  std::unique_ptr<Controller> controller;
  std::unique_ptr<webhook::CertRotator> rotator;
  std::unique_ptr<webhook::ClaimWriter> claim_writer;
  std::vector<std::unique_ptr<Informer>> informers;
  std::unique_ptr<webhook::HttpServer> webhook_server, metrics_server, probe_server;
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  std::atomic<bool> started{false};
  std::atomic<bool> synced_once{false};
  std::mutex first_sync_mu;  // guards early_changes and the mark of synced_once
  std::vector<std::string> early_changes;  // watch events after the lists, before MarkSynced
  static constexpr size_t kMaxEarlyChanges = 100000;
  std::mutex mu;
  std::condition_variable cv;

  Impl(ManagerOptions o, std::unique_ptr<kube::Transport> t, std::unique_ptr<kube::Transport> p,
       std::unique_ptr<kube::Transport> c, std::string id)
      : identity(std::move(id)),
        options(std::move(o)),
        transport(std::move(t)),
        plan_transport(std::move(p)),
        claims_transport(std::move(c)),
        client(transport.get()),
        plan(&client),
        state(options.engine, clock, std::chrono::seconds(options.pending_ttl_seconds),
              static_cast<size_t>(options.max_holds_per_requester)),
        events(&client, clock, options.agent ? "ipguard.io/agent" : "ipguard.io/manager", identity,
               &metrics) {
    if (plan_transport) {
      plan_owned = std::make_unique<kube::Client>(plan_transport.get());
      plan = plan_owned.get();
    }
    claim_client = plan;
    if (claims_transport) {
      claim_client_owned = std::make_unique<kube::Client>(claims_transport.get());
      claim_client = claim_client_owned.get();
    }
    // Every write the API server refuses is logged and counted here, whoever
    // made it (status, events, the Lease, certificates, webhook
    // configurations, claims, mirrored pools).
    auto observe = [this](const kube::WriteFailure& f) {
      metrics.Add("ipguard_api_write_errors_total",
                  {{"resource", f.resource},
                   {"verb", f.verb},
                   {"code", std::to_string(f.error.code)}});
      // A stale write (409) is retried on a fresh read by its caller.
      if (f.error.IsConflict()) {
        spdlog::info("{} {}: {} (retried on a fresh read)", f.verb, f.path, f.error.ToString());
      } else {
        spdlog::warn("{} {} failed: {}", f.verb, f.path, f.error.ToString());
      }
    };
    client.SetWriteFailureObserver(observe);
    if (plan_owned) plan_owned->SetWriteFailureObserver(observe);
    if (claim_client_owned) claim_client_owned->SetWriteFailureObserver(observe);
  }

  // Nothing is written before every informer has listed: a status, an event
  // or a claim judged on part of the plan would be wrong (a Service whose
  // network is not listed yet lives in every domain). The first pass after
  // the sync (Housekeeping) reconciles everything the Lease holder dropped.
  bool MayWrite() const {
    return !stopping.load() && synced_once.load() && (!elector || elector->IsLeader());
  }

  // Requests the webhook answered, counted per second of the steady clock:
  // the controller paces status writes slower while they come quickly.
  static constexpr int kAdmittingReviews = 10;  // a second
  mutable std::mutex review_mu;
  int64_t review_second = 0;  // the second reviews_now counts
  int reviews_now = 0, reviews_before = 0;

  static int64_t SteadySecond() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void NoteReview() {
    int64_t now = SteadySecond();
    std::lock_guard<std::mutex> l(review_mu);
    if (now > review_second) {
      reviews_before = now == review_second + 1 ? reviews_now : 0;
      reviews_now = 0;
      review_second = now;
    }
    ++reviews_now;
  }
  // At least kAdmittingReviews in the current second or the last.
  bool Admitting() const {
    int64_t now = SteadySecond();
    std::lock_guard<std::mutex> l(review_mu);
    if (review_second == now) {
      return reviews_now >= kAdmittingReviews || reviews_before >= kAdmittingReviews;
    }
    return review_second == now - 1 && reviews_now >= kAdmittingReviews;
  }

  bool Synced() const {
    for (const auto& inf : informers) {
      if (!inf->store.HasSynced()) return false;
    }
    return !informers.empty();
  }

  bool Ready() const {
    if (stopping.load() || !Synced()) return false;
    return !webhook_server || webhook_server->certificate_loaded();
  }

  void DescribeMetrics() {
    using T = kube::Metrics::Type;
    metrics.Describe("ipguard_pool_addresses", T::kGauge,
                     "Addresses of each LogicalNetwork pool and LoadBalancerPool, by state (total, "
                     "used, free).");
    metrics.Describe("ipguard_conflicts", T::kGauge,
                     "Objects reported Conflicting, by kind (written by the Lease holder).");
    metrics.Describe("ipguard_index_objects", T::kGauge, "Objects in the address index, by kind.");
    metrics.Describe("ipguard_api_write_errors_total", T::kCounter,
                     "Writes the API server refused or never answered, by resource, verb and HTTP "
                     "code (0: no answer).");
    kube::DescribeEventMetrics(&metrics);
    metrics.Describe("ipguard_watch_restarts_total", T::kCounter,
                     "Watches started again, by resource.");
    metrics.Describe("ipguard_reconcile_duration_seconds", T::kHistogram,
                     "Time to reconcile one object.");
    metrics.Describe("ipguard_status_writes_deferred_total", T::kCounter,
                     "Changes held unreconciled, and status writes given a slot of the slower "
                     "pace of --status-qps-admitting, because the webhook was busy answering "
                     "reviews.");
    webhook::DescribeAdmissionMetrics(&metrics);
    webhook::DescribeClaimMetrics(&metrics);
    metrics.Describe("ipguard_claims_released_total", T::kCounter,
                     "IPClaims the leader deleted because their holder went or no longer asks "
                     "for the address.");
    metrics.Describe("ipguard_claims_backfilled_total", T::kCounter,
                     "IPClaims the leader wrote for stored objects that lacked them.");
    metrics.Describe("ipguard_claims", T::kGauge,
                     "IPClaims in the ledger, by holder cluster (empty: the management cluster) "
                     "and VLAN (\"any\": every domain).");
    if (options.agent) {
      metrics.Describe("ipguard_plan_reachable", T::kGauge,
                       "1 while the management cluster answers the agent.");
      metrics.Describe("ipguard_claims_deferred_total", T::kCounter,
                       "Objects admitted without their claims while the management cluster was "
                       "unreachable (written by the leader when it is back).");
      metrics.Describe("ipguard_pool_mirror_writes_total", T::kCounter,
                       "Writes of mirrored LoadBalancerPools in the management cluster, by verb.");
    }
    metrics.Describe("ipguard_leader", T::kGauge, "1 while this replica holds the Lease.");
    metrics.Describe("ipguard_informers_synced", T::kGauge, "1 once every informer has listed.");
    metrics.Describe("ipguard_pending_admissions", T::kGauge,
                     "Objects admitted by this replica that no watch has shown yet.");
    metrics.Describe("ipguard_pending_released_total", T::kCounter,
                     "Pending admissions released early because their requester held "
                     "--max-holds-per-requester.");
    metrics.Describe("ipguard_webhook_connections", T::kGauge,
                     "Connections open to the webhook server.");
    metrics.Describe("ipguard_webhook_connections_accepted_total", T::kCounter,
                     "Connections the webhook server accepted (each a TLS handshake).");
    metrics.Describe("ipguard_webhook_connections_refused_total", T::kCounter,
                     "Connections closed at once because --max-connections were open.");
    metrics.Describe("ipguard_webhook_accept_errors_total", T::kCounter,
                     "accept() failures of the webhook server (out of file descriptors, ...).");
    metrics.Describe("ipguard_webhook_pending_body_bytes", T::kGauge,
                     "Bytes of request bodies the webhook server is receiving now.");
    metrics.Describe("ipguard_webhook_requests_refused_busy_total", T::kCounter,
                     "Requests answered 503 because the bodies being received were at the limit.");
    metrics.Describe("ipguard_webhook_tls_handshake_failures_total", T::kCounter,
                     "TLS handshakes that failed or timed out (a missing or untrusted client "
                     "certificate with --client-ca).");
    metrics.Describe("process_resident_memory_bytes", T::kGauge, "Resident memory of the process.");
    metrics.Describe("ipguard_heap_in_use_bytes", T::kGauge, "Bytes of the heap in use (malloc).");
    metrics.AddCollector([this](kube::Metrics& m) { Collect(m); });
  }

  void Collect(kube::Metrics& m) {
    m.Clear("ipguard_pool_addresses");
    m.Clear("ipguard_index_objects");
    m.Clear("ipguard_claims");
    state.Read([&](const Engine& engine) {
      std::map<std::pair<std::string, std::string>, int> claims;
      engine.ForEach(Kind::kIPClaim, [&](const Object& o) {
        const auto& c = *o.claim;
        ++claims[{c.holder.cluster, c.vlan_id ? std::to_string(*c.vlan_id) : "any"}];
      });
      for (const auto& [where, n] : claims)
        m.Set("ipguard_claims", {{"cluster", where.first}, {"vlan", where.second}}, n);
      for (const KindInfo& info : Kinds()) {
        const Kind k = info.kind;
        int n = 0;
        engine.ForEach(k, [&](const Object& o) {
          ++n;
          if (k == Kind::kLogicalNetwork) {
            NetworkUsage u = engine.UsageOf(o.meta.name);
            if (!u.total) return;
            kube::Labels l = {{"kind", "LogicalNetwork"}, {"name", o.meta.name}};
            auto with = [&](const char* state_name) {
              kube::Labels x = l;
              x.push_back({"state", state_name});
              return x;
            };
            m.Set("ipguard_pool_addresses", with("total"), static_cast<double>(*u.total));
            m.Set("ipguard_pool_addresses", with("used"), static_cast<double>(u.required_by_nodes));
            m.Set("ipguard_pool_addresses", with("free"), static_cast<double>(u.free.value_or(0)));
          } else if (k == Kind::kLoadBalancerPool || k == Kind::kIPAddressPool) {
            double total = static_cast<double>(AddressCount(o.addr->addresses));
            double used = static_cast<double>(engine.AssignedIn(o.Key()));
            std::string name = o.Ref();
            kube::Labels base = {{"kind", KindName(k)}, {"name", name}};
            for (auto [st, v] : {std::pair<const char*, double>{"total", total},
                                 {"used", used},
                                 {"free", total - used}}) {
              kube::Labels x = base;
              x.push_back({"state", st});
              m.Set("ipguard_pool_addresses", x, v);
            }
          }
        });
        m.Set("ipguard_index_objects", {{"kind", KindName(k)}}, n);
      }
      return 0;
    });
    m.Clear("ipguard_conflicts");
    if (controller) {
      for (const auto& [kind, n] : controller->ConflictsByKind())
        m.Set("ipguard_conflicts", {{"kind", kind}}, n);
    }
    for (const auto& inf : informers) {
      double restarts = static_cast<double>(inf->reflector->restarts());
      kube::Labels l = {{"resource", inf->what.resource.plural}};
      m.Add("ipguard_watch_restarts_total", l,
            restarts - m.Value("ipguard_watch_restarts_total", l));
    }
    {
      long pages = 0, resident = 0;
      if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
      }
      m.Set("process_resident_memory_bytes", {},
            static_cast<double>(resident) * sysconf(_SC_PAGESIZE));
      m.Set("ipguard_heap_in_use_bytes", {}, static_cast<double>(mallinfo2().uordblks));
    }
    m.Set("ipguard_leader", {}, IsLeader() ? 1 : 0);
    if (options.agent) m.Set("ipguard_plan_reachable", {}, plan_reachable.load() ? 1 : 0);
    m.Set("ipguard_informers_synced", {}, Synced() ? 1 : 0);
    m.Set("ipguard_pending_admissions", {}, static_cast<double>(state.pending()));
    auto counter = [&m](const char* name, double now) {
      m.Add(name, {}, now - m.Value(name, {}));
    };
    counter("ipguard_pending_released_total",
            static_cast<double>(state.holds_released_over_bound()));
    if (webhook_server) {
      webhook::ServerStats st = webhook_server->stats();
      m.Set("ipguard_webhook_connections", {}, static_cast<double>(st.connections));
      m.Set("ipguard_webhook_pending_body_bytes", {}, static_cast<double>(st.pending_body_bytes));
      counter("ipguard_webhook_connections_accepted_total",
              static_cast<double>(st.connections_accepted));
      counter("ipguard_webhook_connections_refused_total",
              static_cast<double>(st.connections_refused));
      counter("ipguard_webhook_accept_errors_total", static_cast<double>(st.accept_errors));
      counter("ipguard_webhook_requests_refused_busy_total",
              static_cast<double>(st.requests_refused_busy));
      counter("ipguard_webhook_tls_handshake_failures_total",
              static_cast<double>(st.handshakes_failed));
    }
  }

  bool IsLeader() const { return elector ? elector->IsLeader() : !stopping.load(); }

  webhook::ServerResponse Probe(const webhook::ServerRequest& req) {
    std::string path = req.target.substr(0, req.target.find('?'));
    if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
    if (path == "/readyz") {
      if (Ready()) {
        // An agent keeps judging on the plan last seen: still ready (its
        // cluster's Services need the webhook), and says so.
        if (options.agent && !plan_reachable.load()) {
          return {200, "text/plain; charset=utf-8",
                  "ok: the management cluster is unreachable; judging on the plan last seen, "
                  "claims are written when it is back\n"};
        }
        return {200, "text/plain; charset=utf-8", "ok\n"};
      }
      std::string why = stopping.load() ? "shutting down"
                        : !Synced()     ? "informers not synced"
                                        : "no certificate loaded";
      return {503, "text/plain; charset=utf-8", why + "\n"};
    }
    if (path == "/metrics")
      return {200, "text/plain; version=0.0.4; charset=utf-8", metrics.Render()};
    return {404, "text/plain; charset=utf-8", "not found\n"};
  }

  Status Start() {
    DescribeMetrics();
    if (options.leader_elect) {
      kube::LeaderOptions lo;
      lo.ns = options.ns;
      lo.name = options.lease_name;
      lo.identity = identity;
      lo.lease_duration = std::chrono::seconds(options.lease_seconds);
      lo.renew_deadline = std::chrono::seconds(options.renew_deadline_seconds);
      lo.retry_period = std::chrono::seconds(options.retry_period_seconds);
      elector = std::make_unique<kube::LeaderElector>(&client, clock, lo);
    }
    ControllerOptions co;
    co.workers = options.workers;
    co.status_writes_per_second = options.status_qps;
    co.status_write_burst = options.status_burst;
    co.admitting = [this] { return Admitting(); };
    co.status_writes_while_admitting = options.status_qps_admitting;
    co.write_claims = options.claims;
    co.claim_grace = std::chrono::milliseconds(options.claim_grace_ms);
    co.claim_events = !options.agent;
    if (options.agent && options.metallb) co.mirror_cluster = options.engine.cluster;
    co.warn = [](const std::string& line) { spdlog::warn("{}", line); };
    // Statuses, and claims backfilled, go out on kept connections from the
    // worker's own thread, as the webhook's claims do: a connection of the
    // cpprestsdk client costs a TLS context of its own (with the system's
    // CA bundle parsed and dropped) each time a burst needs one more.
    co.ledger = claim_client;
    controller = std::make_unique<Controller>(
        options.agent ? &client : claim_client, clock, &state, &events, &metrics,
        [this] { return MayWrite(); }, co);
    const std::string cluster = options.engine.cluster;
    for (const WatchedKind& w : KindsToWatch(options.metallb)) {
      auto inf = std::make_unique<Informer>();
      inf->what = w;
      // An agent reads the plan (ipguard's kinds) in the management cluster
      // and the rest (Services, MetalLB's pools) in its own.
      inf->plan = options.agent && std::string(InfoOf(w.kind).group) == kGroup;
      Kind kind = w.kind;
      std::string api_version = w.resource.ApiVersion();
      // An agent's own mirrored pools stand for its IPAddressPools, which it
      // watches itself: they are marked here and left out of its engine.
      const bool mark_mirrors = options.agent && kind == Kind::kLoadBalancerPool;
      inf->store.SetTransform([kind, api_version, mark_mirrors](const json& obj) {
        json out = TrimObject(kind, obj);
        // List items of the core group come without them; the engine needs both.
        out["kind"] = KindName(kind);
        out["apiVersion"] = api_version;
        if (mark_mirrors && out.contains("metadata")) {
          std::string by = MirroredBy(obj);
          if (!by.empty()) out["metadata"]["labels"] = {{kClusterLabel, by}};
        }
        return out;
      });
      inf->store.AddHandler([this, mark_mirrors, cluster](kube::EventType type, const json& obj) {
        if (mark_mirrors && MirroredBy(obj) == cluster) type = kube::EventType::kDeleted;
        // Until every informer has listed, the first full pass after the
        // sync (MarkSynced) reconciles everything once: neither the
        // neighbours nor the enqueueing of each object listed are needed
        // yet, and both would only compete with the listing.
        const bool synced = synced_once.load();
        const bool listed = synced || Synced();
        auto keys = state.Apply(type, obj, listed);
        if (!synced && listed && !keys.empty()) {
          // Listed, and the housekeeping thread has not yet marked it: a
          // change of this moment is reconciled as one once it has.
          std::lock_guard<std::mutex> l(first_sync_mu);
          if (!synced_once.load()) {
            if (early_changes.size() < kMaxEarlyChanges) early_changes.push_back(keys.front());
          } else {
            controller->Enqueue(keys.front());
          }
        }
        if (synced && !keys.empty()) {
          controller->Enqueue(keys.front());  // the object itself
          for (size_t i = 1; i < keys.size(); ++i) controller->EnqueueNeighbor(keys[i]);
        }
        if (synced && options.agent && keys.size() && NetworkOfRefChanged()) {
          // Its Services moved to another domain: their claims and the
          // mirrors of its pools follow.
          controller->EnqueueAll();
        }
      });
      kube::ReflectorOptions ro;
      ro.watch_timeout_seconds = options.watch_timeout_seconds;
      // List items are read keeping only what the caches keep (managedFields
      // and the like are skipped unbuilt); what the projecting reader
      // declines is parsed whole.
      ro.parse_item = [](std::string_view text) {
        if (auto p = ParseProjected(text, CacheProjection())) return std::move(*p);
        return json::parse(text.begin(), text.end(), nullptr, false);
      };
      ro.parse_event = [](std::string_view line) {
        if (auto p = ParseProjected(line, WatchEventProjection())) return std::move(*p);
        return json::parse(line.begin(), line.end(), nullptr, false);
      };
      inf->reflector = std::make_unique<kube::Reflector>(inf->plan ? plan : &client, w.resource, "",
                                                         &inf->store, clock, ro);
      // An agent reconciles its own cluster's objects and its claims; the
      // plan's status is the manager's.
      if (!options.agent || !inf->plan || kind == Kind::kIPClaim) {
        controller->Watch(kind, w.resource, &inf->store);
      }
      informers.push_back(std::move(inf));
    }

    if (options.webhook_port >= 0) {
      if (options.self_signed) {
        webhook::CertRotatorOptions ro;
        ro.ns = options.ns;
        ro.secret_name = options.cert_secret;
        ro.cert_dir = options.cert_dir;
        ro.dns_names = options.webhook_dns;
        ro.ips = options.webhook_ips;
        ro.webhook_configs = options.webhook_configs;
        ro.log = [](const std::string& line) { spdlog::info("certificates: {}", line); };
        // Checked every minute, so a webhook configuration that was replaced
        // (and lost its caBundle) is repaired quickly.
        ro.check_interval = std::chrono::seconds(60);
        rotator = std::make_unique<webhook::CertRotator>(&client, clock, ro);
      }
      webhook::ServerOptions so;
      so.bind = options.webhook_bind;
      so.port = options.webhook_port;
      so.tls = true;
      so.cert_file = options.cert_dir + "/tls.crt";
      so.key_file = options.cert_dir + "/tls.key";
      so.client_ca_file = options.client_ca;
      so.max_connections = static_cast<size_t>(options.max_connections);
      so.log = [](const std::string& line) { spdlog::error("webhook: {}", line); };
      webhook::ClaimSettings cs;
      if (options.claims) {
        webhook::ClaimWriterOptions wo;
        wo.threads = options.claim_writers;
        claim_writer = std::make_unique<webhook::ClaimWriter>(claim_client, clock, &metrics, wo);
        claim_writer->Start();
        cs.ledger = claim_writer.get();
        cs.clock = clock;
        cs.self_username = options.self_username;
        cs.timeout = options.claim_timeout;
        cs.cluster = options.engine.cluster;
        if (options.agent) {
          cs.offline = [this] { return !plan_reachable.load(); };
          cs.on_deferred = [this] { metrics.Add("ipguard_claims_deferred_total", {}); };
          cs.on_unanswered = [this] { ProbePlanNow(); };
        }
      }
      webhook::AdmissionHandler handler(
          &state, &metrics, AdmissionOptions{options.metallb}, [](const AdmissionOutcome& out) {
            // One line per verdict whatever the request: long messages are cut.
            std::string message = CutUtf8(out.message, 4096);
            if (out.verdict == "denied") {
              spdlog::info("denied {} {} for {} (uid {}{}): {}", out.operation, out.kind,
                           out.requester.empty() ? "-" : CutUtf8(out.requester, 253),
                           out.uid, out.dry_run ? ", dry run" : "", message);
            } else {
              spdlog::warn("unreadable AdmissionReview (uid {}): {}",
                           out.uid.empty() ? "-" : CutUtf8(out.uid, 253), message);
            }
          },
          cs);
      webhook_server = std::make_unique<webhook::HttpServer>(
          so, webhook::AsyncHandler(
                  [this, handler](const webhook::ServerRequest& r, webhook::Reply reply) {
                    NoteReview();
                    handler.Serve(r, std::move(reply));
                  }));
      if (Status s = webhook_server->Start(); !s.ok())
        return Status::Error("webhook: " + s.message());
    }
    auto plain = [this](int port) -> Result<std::unique_ptr<webhook::HttpServer>> {
      webhook::ServerOptions so;
      so.bind = options.probe_bind;
      so.port = port;
      so.threads = 1;
      auto srv = std::make_unique<webhook::HttpServer>(
          so, [this](const webhook::ServerRequest& r) { return Probe(r); });
      if (Status s = srv->Start(); !s.ok()) return s;
      return srv;
    };
    if (options.metrics_port >= 0) {
      auto s = plain(options.metrics_port);
      if (!s.ok()) return Status::Error("metrics: " + s.error());
      metrics_server = std::move(s).value();
    }
    if (options.probe_port >= 0) {
      auto s = plain(options.probe_port);
      if (!s.ok()) return Status::Error("probes: " + s.error());
      probe_server = std::move(s).value();
    }

    for (auto& inf : informers) {
      kube::Reflector* r = inf->reflector.get();
      inf->thread = std::thread([r] { r->Run(); });
    }
    if (rotator) threads.emplace_back([this] { rotator->Run(); });
    threads.emplace_back([this] { Housekeeping(); });
    if (options.agent) threads.emplace_back([this] { WatchPlan(); });
    controller->Start();
    if (elector) {
      elector->on_started = [this] {
        spdlog::info("became the leader (Lease {}/{}): reconciling", options.ns,
                     options.lease_name);
        controller->EnqueueAll();
      };
      elector->on_stopped = [] { spdlog::warn("no longer the leader: status writes stop"); };
      threads.emplace_back([this] { elector->Run(); });
    }
    started = true;
    if (claim_writer) {
      spdlog::info("claims: written at admission{}",
                   options.self_username.empty()
                       ? " (who this process is at the API server is unknown: its own claims are "
                         "judged like any other)"
                       : " as " + options.self_username);
    }
    if (options.agent) {
      spdlog::info("agent of cluster {}: plan read from the management cluster{}", options.engine.cluster,
                   options.engine.cluster_ref.empty()
                       ? ""
                       : ", Services in the network of WorkloadCluster " + options.engine.cluster_ref);
    }
    spdlog::info(
        "{} started: {} kinds watched, webhook port {}, metrics port {}, probe port {}",
        options.agent ? "agent" : "manager", informers.size(), webhook_server ? webhook_server->port() : -1,
        metrics_server ? metrics_server->port() : -1, probe_server ? probe_server->port() : -1);
    return Status::Ok();
  }

  // Agent: whether the network of its WorkloadCluster (--cluster-ref)
  // differs from when last asked.
  std::string ref_network;
  bool NetworkOfRefChanged() {
    if (options.engine.cluster_ref.empty()) return false;
    std::string now = state.Read([this](const Engine& e) {
      const std::string& ref = options.engine.cluster_ref;
      size_t slash = ref.find('/');
      const Object* wlc = e.Find(
          ObjectKey(Kind::kWorkloadCluster, ref.substr(0, slash), ref.substr(slash + 1)));
      return wlc ? wlc->wlc->logical_network_name : std::string();
    });
    std::lock_guard<std::mutex> l(mu);
    if (now == ref_network) return false;
    ref_network = now;
    return true;
  }

  void SetPlanReachable(bool now) {
    if (plan_reachable.exchange(now) == now) return;
    if (!now) {
      spdlog::warn("the management cluster is unreachable: judging on the plan last seen; "
                   "admitted Services are claimed when it is back");
      return;
    }
    spdlog::info("the management cluster answers again: writing the claims that wait");
    if (synced_once.load() && IsLeader()) controller->EnqueueAll();
  }

  // Agent: asks the management cluster every plan_probe_interval, and at
  // once after a claim write it did not answer, whether it answers (a read
  // of an IPClaim that does not exist: any answer will do). Two unanswered
  // reads in a row make it unreachable, one answer reachable again: a
  // management cluster that is only slow for a moment never lets the
  // webhook admit unclaimed.
  bool probe_now = false;
  void ProbePlanNow() {
    {
      std::lock_guard<std::mutex> l(mu);
      probe_now = true;
    }
    cv.notify_all();
  }
  void WatchPlan() {
    const kube::Resource claims = kube::ResourceOf(InfoOf(Kind::kIPClaim));
    int unanswered = 0;
    std::unique_lock<std::mutex> l(mu);
    while (!stopping.load()) {
      cv.wait_for(l, options.plan_probe_interval,
                  [this] { return stopping.load() || probe_now; });
      if (stopping.load()) break;
      probe_now = false;
      l.unlock();
      auto r = plan->Get(claims, "", "ipguard-reachability-probe", std::chrono::seconds(5));
      unanswered = r.ok() || r.error().code != 0 ? 0 : unanswered + 1;
      if (unanswered == 0) SetPlanReachable(true);
      if (unanswered >= 2) SetPlanReachable(false);
      l.lock();
    }
  }

  // Expires pending admissions every second; marks the informers' first
  // sync and queues the first full pass.
  void Housekeeping() {
    std::unique_lock<std::mutex> l(mu);
    while (!stopping.load()) {
      // Every 100 ms until the informers have synced, then every second.
      cv.wait_for(l, synced_once.load() ? std::chrono::milliseconds(1000)
                                        : std::chrono::milliseconds(100),
                  [this] { return stopping.load(); });
      if (stopping.load()) break;
      l.unlock();
      if (!synced_once.load() && Synced()) {
        MarkSynced();
        auto from = std::chrono::steady_clock::now();
        controller->EnqueueAll();
        spdlog::info("informers synced: {} objects in the index; the first pass queued in {} ms",
                     state.Read([](const Engine& e) { return e.size(); }),
                     std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - from)
                         .count());
      }
      for (const std::string& key : state.ExpirePending()) controller->Enqueue(key);
      if (!Admitting()) {
        if (size_t n = controller->ReleaseDeferredWrites()) {
          spdlog::info(
              "admissions quiet: {} changes and status writes deferred while they came are due now",
              n);
        }
      } else {
        controller->LetHeldIn();
      }
      l.lock();
    }
  }

  // Once, on the housekeeping thread, when every informer has listed:
  // writes may begin, and the changes the watches showed since are queued
  // as changes (the caller then queues the first full pass behind them).
  void MarkSynced() {
    std::vector<std::string> early;
    {
      std::lock_guard<std::mutex> once(first_sync_mu);
      NetworkOfRefChanged();  // the network the listing found
      synced_once = true;
      early.swap(early_changes);
    }
    for (const std::string& key : early) controller->Enqueue(key);
  }

  void Stop() {
    if (!started.exchange(false)) return;
    spdlog::info("stopping: finishing work in flight");
    {
      std::lock_guard<std::mutex> l(mu);
      stopping = true;
    }
    cv.notify_all();
    // Stop taking work: the reconcilers finish the key in hand, the webhook
    // the requests in flight.
    controller->Stop();
    if (webhook_server) webhook_server->Stop(std::chrono::seconds(5));
    if (claim_writer) claim_writer->Stop();
    if (rotator) rotator->Stop();
    if (elector) elector->Stop();  // Run() releases the Lease on its way out
    for (auto& inf : informers) inf->reflector->Stop();
    for (auto& inf : informers) {
      if (inf->thread.joinable()) inf->thread.join();
    }
    for (auto& t : threads) t.join();
    threads.clear();
    if (metrics_server) metrics_server->Stop(std::chrono::milliseconds(0));
    if (probe_server) probe_server->Stop(std::chrono::milliseconds(0));
    spdlog::info("stopped");
  }
};

Manager::Manager(ManagerOptions options, std::unique_ptr<kube::Transport> transport,
                 std::unique_ptr<kube::Transport> plan, std::unique_ptr<kube::Transport> claims)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(transport), std::move(plan),
                                   std::move(claims), Identity())) {}
Manager::~Manager() { Stop(); }
Status Manager::Start() { return impl_->Start(); }
void Manager::Stop() { impl_->Stop(); }
bool Manager::Synced() const { return impl_->Synced(); }
bool Manager::Ready() const { return impl_->Ready(); }
bool Manager::IsLeader() const { return impl_->IsLeader(); }
bool Manager::PlanReachable() const { return impl_->plan_reachable.load(); }
int Manager::webhook_port() const {
  return impl_->webhook_server ? impl_->webhook_server->port() : -1;
}
int Manager::metrics_port() const {
  return impl_->metrics_server ? impl_->metrics_server->port() : -1;
}
int Manager::probe_port() const { return impl_->probe_server ? impl_->probe_server->port() : -1; }
std::string Manager::Metrics() { return impl_->metrics.Render(); }

namespace {

// A message flag for spdlog that writes the text as a JSON string body.
class JsonEscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string s = json(std::string(msg.payload.data(), msg.payload.size()))
                        .dump(-1, ' ', false, json::error_handler_t::replace);
    dest.append(s.data() + 1, s.data() + s.size() - 1);  // without the quotes
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return spdlog::details::make_unique<JsonEscapedMessage>();
  }
};

void SetUpLogging(const ManagerOptions& o) {
  auto logger = std::make_shared<spdlog::logger>("ipguard",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (o.log_format == "json") {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<JsonEscapedMessage>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"%n","msg":"%*"})");
    logger->set_formatter(std::move(f));
  } else {
    logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc));
  }
  logger->set_level(spdlog::level::from_str(o.log_level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// Loads the kubeconfig at `path` (in-cluster when empty and running in a
// pod) and makes a transport of it; `config` gets what was loaded.
Result<std::unique_ptr<kube::Transport>> Connect(const std::string& path,
                                                 const std::string& context, bool in_cluster,
                                                 kube::RestConfig* config) {
  Result<kube::RestConfig> loaded = Status::Error("no configuration");
  if (path.empty() && in_cluster && std::getenv("KUBERNETES_SERVICE_HOST")) {
    loaded = kube::InClusterConfig();
  } else {
    loaded = kube::LoadKubeconfig(path, context);
  }
  if (!loaded.ok()) return loaded.status();
  *config = *loaded;
  return kube::NewHttpTransport(*config, kube::RealClock::Get());
}

// The command both `manager` and `agent` are, once their flags are read.
int Run(ManagerOptions options, const char* command, std::ostream& err) {
  SetUpLogging(options);
  // glibc gives each thread that allocates its own arena (up to 8 per
  // core); the manager's threads parse JSON in bursts, and every arena
  // would keep its own high-water mark. Two arenas hold RSS near the live
  // heap (docs/performance.md).
  mallopt(M_ARENA_MAX, 2);
  // A fixed threshold: list pages and response bodies above it are mapped
  // and unmapped whole. glibc would otherwise raise the threshold to the
  // largest block freed so far and carve such buffers out of the heap, where
  // the holes they leave keep RSS well above the live heap.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);

  kube::RestConfig config;
  auto transport = Connect(options.kubeconfig, options.context, true, &config);
  if (!transport.ok()) {
    err << "ipguard " << command << ": " << transport.error() << "\n";
    return 2;
  }
  std::unique_ptr<kube::Transport> plan_transport;
  kube::RestConfig plan_config;
  if (options.agent) {
    auto p = Connect(options.plan_kubeconfig, options.plan_context, false, &plan_config);
    if (!p.ok()) {
      err << "ipguard agent: --plan-kubeconfig: " << p.error() << "\n";
      return 2;
    }
    plan_transport = std::move(p).value();
    // Who writes the claims, in the management cluster.
    options.self_username = kube::UsernameOf(plan_config);
  } else {
    options.self_username = kube::UsernameOf(config);
  }
  if (options.ns.empty()) {
    const char* pod_ns = std::getenv("POD_NAMESPACE");
    options.ns = pod_ns && *pod_ns ? pod_ns : !config.ns.empty() ? config.ns : "ipguard-system";
  }

  // Signals are taken by sigwait below, never by a handler, so every
  // thread started from here on must have them blocked.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Claims are written while an admission waits: on kept connections, on
  // the writer's own thread (kube/kept_transport.h).
  kube::Transport* ledger = plan_transport ? plan_transport.get() : transport.value().get();
  // One kept connection for each claim writer and each reconcile worker
  // (their status writes), and two for the rest.
  kube::KeptTransportOptions kept;
  kept.max_idle =
      static_cast<size_t>(std::max(0, options.claim_writers) + std::max(0, options.workers) + 2);
  auto claims = kube::NewKeptTransport(options.agent ? plan_config : config, kube::RealClock::Get(),
                                       ledger, kept);
  if (!claims.ok()) {
    err << "ipguard " << command << ": " << claims.error() << "\n";
    return 2;
  }
  Manager manager(options, std::move(transport).value(), std::move(plan_transport),
                  std::move(claims).value());
  if (Status s = manager.Start(); !s.ok()) {
    spdlog::error("cannot start: {}", s.message());
    manager.Stop();
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  manager.Stop();
  return 0;
}

// `ipguard NAME ARGS`: --help prints `usage`; flags that `parse` refuses
// print the reason and `usage` and exit 2.
int RunCommand(const std::vector<std::string>& args, std::ostream& err, const char* name,
               const char* usage,
               Result<ManagerOptions> (*parse)(const std::vector<std::string>&)) {
  for (const auto& a : args) {
    if (a == "-h" || a == "--help") {
      err << usage;
      return 0;
    }
  }
  auto parsed = parse(args);
  if (!parsed.ok()) {
    err << "ipguard " << name << ": " << parsed.error() << "\n" << usage;
    return 2;
  }
  return Run(std::move(parsed).value(), name, err);
}

}  // namespace

int RunManager(const std::vector<std::string>& args, std::ostream& err) {
  return RunCommand(args, err, "manager", kManagerUsage, ParseManagerFlags);
}

int RunAgent(const std::vector<std::string>& args, std::ostream& err) {
  return RunCommand(args, err, "agent", kAgentUsage, ParseAgentFlags);
}

}  // namespace ipguard
