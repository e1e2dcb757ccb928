// Controller: the reconcilers. For every object key it is handed, it reads
// the object from its informer store, asks the core Engine (through the
// shared ClusterState) for the status API.md wants, and writes it through the
// status subresource only when it differs (level-based and idempotent). A
// 409 on a stale write is retried on a fresh read. On each transition into
// or out of Conflicting it emits IPConflict (Warning) or ConflictResolved
// (Normal); Services get the events but never a status write.
//
// Only a leader writes: `may_write` is asked before every write, and keys
// taken while it is false are dropped (EnqueueAll() on gaining leadership
// brings everything back).
//
// Thread-safe. Start() runs `workers` threads; Stop() lets each finish the
// key in hand, then joins them.
#ifndef IPGUARD_CONTROLLER_CONTROLLER_H_
#define IPGUARD_CONTROLLER_CONTROLLER_H_

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/objects.h"
#include "kube/client.h"
#include "kube/cluster_state.h"
#include "kube/events.h"
#include "kube/metrics.h"
#include "kube/pacer.h"
#include "kube/store.h"
#include "kube/workqueue.h"

namespace ipguard {

struct ControllerOptions {
  int workers = 2;
  std::chrono::milliseconds neighbor_delay{1000};
  int status_retries = 3;  // fresh reads after a 409, per reconcile
  // The writes that follow no change of their own object (a full pass's
  // statuses and backfilled claims, a neighbour's status, a retry) paced to
  // this many a second on average (<= 0: unpaced), `status_write_burst` at
  // once after a quiet spell. A key whose write must wait goes back on the
  // queue for its slot; no worker waits. A change's own write (its object's
  // watch event) is not paced by it: it follows one write of its user.
  double status_writes_per_second = 0;
  int status_write_burst = 1;
  // While `admitting` says the webhook is busy answering reviews, writes
  // take their slots at `status_writes_while_admitting` a second instead,
  // one at a time, and a full pass waits: the API server's time goes first
  // to the writes people and GitOps controllers wait on. A change of an
  // object is then held unreconciled (its write could only take a slot
  // seconds away) and let in at that pace (LetHeldIn), oldest first, so
  // the two cores are not spent judging statuses nobody may write yet; an
  // IPClaim's is not (its release frees an address a create may wait for),
  // nor a pool's that an agent mirrors.
  // ReleaseDeferredWrites() brings what was held and deferred forward once
  // it is quiet again. <= 0, or no `admitting`: the usual pace throughout.
  std::function<bool()> admitting;
  double status_writes_while_admitting = 0;
  // How long an IPClaim of ipguard's may wait for its holder to ask for it
  // (the holder is being written, or was never stored) before it is released.
  std::chrono::milliseconds claim_grace{60000};
  // Writes the claims a stored WorkloadCluster or Service lacks (admitted
  // while the webhook was away, or a sharer whose claim holder went), unless
  // it collides with something.
  bool write_claims = false;
  // Where IPClaims are written and released: the management cluster's API
  // server (null: the controller's own client). An agent's controller
  // writes events and reads its Services in its own cluster, and keeps its
  // claims in the management cluster.
  kube::Client* ledger = nullptr;
  // Whether IPClaims get IPConflict / ConflictResolved events. The manager
  // reports them; an agent leaves the management cluster's objects to it and
  // reconciles only the claims its own Services hold.
  bool claim_events = true;
  // An agent's --metallb: each MetalLB IPAddressPool of its cluster is kept
  // as a LoadBalancerPool "<mirror_cluster>-<pool>" in the management
  // cluster (through `ledger`), labelled ipguard.io/cluster, in the network
  // of Options::cluster_ref's WorkloadCluster when there is one; it goes
  // when the pool goes. Empty: no mirrors.
  std::string mirror_cluster;
  // Told of what goes wrong that is no failed write (those are logged by
  // the client's observer): may be empty.
  std::function<void(const std::string&)> warn;
};

// The label and annotation of a LoadBalancerPool mirrored by an agent.
inline constexpr char kClusterLabel[] = "ipguard.io/cluster";
inline constexpr char kMirrorOfAnnotation[] = "ipguard.io/mirror-of";

// The LoadBalancerPool that mirrors the IPAddressPool `pool` of `cluster`,
// in `network` ("": none), as the API server takes it.
nlohmann::json MirrorOf(const std::string& cluster, const std::string& network,
                        const Object& pool);

class Controller {
 public:
  Controller(kube::Client* client, kube::Clock* clock, kube::ClusterState* state,
             kube::EventRecorder* events, kube::Metrics* metrics, std::function<bool()> may_write,
             ControllerOptions options = {});
  ~Controller();

  // Declares a watched kind: where it lives in the API and its store. Sets
  // what the store keeps (Store::SetKeep), so call it before the store is
  // filled: CacheForm() for the kinds whose status ipguard writes
  // (KindInfo::owns_status), only the resourceVersion for the others.
  void Watch(Kind kind, const kube::Resource& resource, kube::Store* store);
  // Engine keys ("Kind/namespace/name").
  void Enqueue(const std::string& key);
  // For a key whose status changes because another object changed (a
  // network's counts when a cluster comes or goes): reconciled once after
  // `neighbor_delay`, however many changes arrive meanwhile, so a burst of
  // creates costs one status write of their network, not one per create.
  void EnqueueNeighbor(const std::string& key);
  // Every object of every watched kind, as a full pass (after every change
  // the watches show meanwhile), except Services and IPClaims whose
  // reconcile would do nothing (a Service that neither collides now, nor was
  // reported Conflicting, nor lacks a claim; a claim that neither collides,
  // nor was reported, nor is this cluster's with no holder standing for it).
  void EnqueueAll();

  void Start();
  void Stop();

  // What the store of a kind whose status ipguard writes keeps of an object:
  // the identity and status the reconciler reads and writes back, as one
  // compact JSON string; the engine holds the parsed spec. A WorkloadCluster
  // takes about 700 bytes this way instead of 6 KB of DOM.
  static nlohmann::json CacheForm(const nlohmann::json& obj);

  // Why a key is reconciled, which says how its writes are paced.
  enum class Why {
    kChange,      // its own object changed (Enqueue): written at once
    kBackground,  // a neighbour's change, a retry, a write deferred while admitting
    kPass,        // a full pass (EnqueueAll): after every change, paced
  };
  // One reconcile of one key; an error means "retry later with backoff".
  Status Reconcile(const std::string& key, Why why = Why::kChange);

  // Once admissions are quiet: the changes held and the status writes paced
  // for the busy spell take their turn at the usual pace now. Returns how
  // many were waiting.
  size_t ReleaseDeferredWrites();
  // While admissions are busy, called once a second: lets in the changes
  // held longest, as many as the busy pace writes a second (at least one).
  // Returns how many it let in.
  size_t LetHeldIn();

  // Objects currently reported Conflicting, by kind name (for metrics).
  std::map<std::string, int> ConflictsByKind() const;
  // Status writes done, and writes that ended in a 409 (for tests).
  int64_t status_writes() const { return status_writes_.load(); }
  int64_t conflicts_retried() const { return conflicts_retried_.load(); }

 private:
  struct Watched {
    Kind kind;
    kube::Resource resource;
    kube::Store* store;
  };
  void Work();
  // Engine::ForEach of one kind, a slice at a time, each slice under a read
  // lock of its own, so that the watches' writes go on meanwhile.
  void ForEachInSlices(Kind kind,
                       const std::function<void(const Engine&, const Object&)>& fn) const;
  void EnqueueServicesToReport();
  void EnqueueClaimsToReconcile();
  // For the kinds whose status ipguard does not write (KindInfo::owns_status):
  // only the events of ReportTransition tell of a collision.
  Status ReconcileForeign(const std::string& key, const Watched& w);
  // Releases an IPClaim of the management cluster's (holder.cluster empty,
  // holder a WorkloadCluster or a Service) whose holder is gone or no longer
  // asks for its address, once it has waited claim_grace since this process
  // first saw it so; other claims (an agent's, one written by hand to reserve
  // an address) are never released here.
  Status ReconcileClaim(const std::string& key);
  // Creates the claims the object at `key` lacks (write_claims), in a write
  // slot; `*deferred` when the key is to come back for its slot.
  Status EnsureClaims(const std::string& key, Why why, bool* deferred);
  // Makes the mirror of the IPAddressPool at `key` what the pool is now:
  // created, updated, or deleted when the pool is gone (mirror_cluster).
  Status MirrorPool(const std::string& key);
  // Queues the pools whose mirrors exist in the management cluster, so
  // that a mirror whose pool went while nobody watched goes too.
  void EnqueueMirrored();
  // Emits IPConflict or ConflictResolved when `conflicting` differs from what
  // was last reported for `key`.
  void ReportTransition(const std::string& key, Kind kind, const nlohmann::json& obj, bool was,
                        bool now, const std::vector<std::string>& conflicts);
  // The wait before `key` may write: zero when it may now (a change of its
  // own object while the webhook is quiet, or its slot, reserved earlier or
  // now, has come), else the key is to come back after the wait (Defer),
  // its slot kept. A pass reserves nothing while the webhook is busy.
  kube::Clock::Duration WriteSlot(const std::string& key, Why why);
  // Puts `key` back for its slot: a pass's key in front of the pass, which
  // waits meanwhile (WorkQueue::HoldLow); any other after `wait`.
  void Defer(const std::string& key, Why why, kube::Clock::Duration wait);
  // Forgets the slot of a key that needs no write any more.
  void DropSlot(const std::string& key);
  void EraseSlotLocked(const std::string& key);  // mu_ held
  // mu_ held. Whether the webhook is busy (the busy pace is on and
  // `admitting` says so) and `key` is not an IPClaim's nor a mirrored
  // pool's; then a change of `key` is held, unreconciled, in the order it
  // came (a key held already keeps its place).
  bool HoldWhileBusyLocked(const std::string& key);
  // Whether status writes take slots at all (either pace is limited).
  bool Paced() const { return pacer_.limited() || admitting_pacer_.limited(); }

  kube::Client* client_;
  kube::Client* ledger_;  // options_.ledger, or client_
  kube::Clock* clock_;
  kube::ClusterState* state_;
  kube::EventRecorder* events_;
  kube::Metrics* metrics_;
  std::function<bool()> may_write_;
  ControllerOptions options_;
  kube::WorkQueue queue_;
  std::map<Kind, Watched> watched_;
  std::vector<std::thread> workers_;

  mutable std::mutex mu_;
  std::map<std::string, Kind> conflicting_;  // keys reported Conflicting now
  kube::Pacer pacer_;
  kube::Pacer admitting_pacer_;  // status_writes_while_admitting
  struct Slot {
    kube::Clock::TimePoint at;
    bool while_admitting;  // from admitting_pacer_
  };
  std::unordered_map<std::string, Slot> slots_;  // key -> its reserved slot
  size_t deferred_ = 0;                          // slots with while_admitting
  // Changes held while the webhook is busy, oldest first, and the same keys
  // for lookup.
  std::deque<std::string> held_;
  std::unordered_set<std::string> held_keys_;
  // IPClaim key -> when this process first saw it unwanted.
  std::unordered_map<std::string, kube::Clock::TimePoint> claim_unwanted_since_;
  // Keys Enqueue()d since their last reconcile began: their own object
  // changed.
  std::unordered_set<std::string> changed_;
  std::atomic<int64_t> status_writes_{0};
  std::atomic<int64_t> conflicts_retried_{0};
};

}  // namespace ipguard

#endif  // IPGUARD_CONTROLLER_CONTROLLER_H_
