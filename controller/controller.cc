#include "controller/controller.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "controller/status.h"

namespace ipguard {
namespace {

using nlohmann::json;

struct KeyParts {
  std::string kind, ns, name;
};

bool SplitKey(const std::string& key, KeyParts* out) {
  size_t a = key.find('/');
  if (a == std::string::npos) return false;
  size_t b = key.find('/', a + 1);
  if (b == std::string::npos) return false;
  out->kind = key.substr(0, a);
  out->ns = key.substr(a + 1, b - a - 1);
  out->name = key.substr(b + 1);
  return !out->name.empty();
}

// The member `key` of `obj` when both are objects, else an empty object: for
// reading what the API server sent without trusting its shape.
const json& Member(const json& obj, const char* key) {
  static const json kEmpty = json::object();
  if (!obj.is_object()) return kEmpty;
  auto it = obj.find(key);
  return it != obj.end() && it->is_object() ? *it : kEmpty;
}

// A string member of a member ("metadata", "uid"), or "".
std::string Text(const json& obj, const char* outer, const char* key) {
  const json& m = Member(obj, outer);
  auto it = m.find(key);
  return it != m.end() && it->is_string() ? it->get<std::string>() : "";
}

bool ConditionTrue(const json& status, const char* type) {
  if (!status.is_object()) return false;
  auto c = status.find("conditions");
  if (c == status.end() || !c->is_array()) return false;
  for (const auto& cond : *c) {
    if (cond.is_object() && cond.value("type", "") == type)
      return cond.value("status", "") == "True";
  }
  return false;
}

// The value of a decimal number written as only it can be (no sign, no
// leading zero) that fits 64 bits; nullopt for any other text. Two texts
// that give one number are then the same text.
std::optional<uint64_t> CanonicalNumber(const std::string& text) {
  if (text.empty() || text.size() > 19 || (text[0] == '0' && text.size() > 1)) return std::nullopt;
  uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

// What the engine says the object's status should be, read under one
// shared lock.
struct Plan {
  bool found = false;
  json status;
  std::vector<std::string> conflicts;
};

}  // namespace

Controller::Controller(kube::Client* client, kube::Clock* clock, kube::ClusterState* state,
                       kube::EventRecorder* events, kube::Metrics* metrics,
                       std::function<bool()> may_write, ControllerOptions options)
    : client_(client),
      ledger_(options.ledger ? options.ledger : client),
      clock_(clock),
      state_(state),
      events_(events),
      metrics_(metrics),
      may_write_(std::move(may_write)),
      options_(options),
      queue_(clock, kube::Backoff{std::chrono::milliseconds(100), std::chrono::seconds(60)}),
      pacer_(options.status_writes_per_second, options.status_write_burst),
      admitting_pacer_(options.admitting ? options.status_writes_while_admitting : 0, 1) {}

Controller::~Controller() { Stop(); }

void Controller::Watch(Kind kind, const kube::Resource& resource, kube::Store* store) {
  if (InfoOf(kind).owns_status) {
    store->SetKeep(&Controller::CacheForm);
  } else {
    // Nothing of the object is written back: the engine holds what the
    // rules need and names it in events (ReconcileForeign), so the cache
    // keeps only the resourceVersion, which tells a change. 100k Services
    // take little this way: as a number in place when it is written as one
    // (etcd's are), else as the string.
    store->SetKeep([](const json& obj) {
      auto meta = obj.find("metadata");
      if (meta == obj.end() || !meta->is_object()) return json();
      auto rv = meta->find("resourceVersion");
      if (rv == meta->end() || !rv->is_string()) return json("");
      const std::string& text = rv->get_ref<const std::string&>();
      if (auto n = CanonicalNumber(text)) return json(*n);
      return json(text);
    });
  }
  watched_[kind] = Watched{kind, resource, store};
}

void Controller::Enqueue(const std::string& key) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (HoldWhileBusyLocked(key)) return;
    changed_.insert(key);
  }
  queue_.Add(key);
}

bool Controller::HoldWhileBusyLocked(const std::string& key) {
  if (!admitting_pacer_.limited() || !options_.admitting()) return false;
  // What moves addresses in the ledger goes on: a claim's reconcile releases
  // the address of a holder that went (a create of this very burst may be
  // waiting for it), and an agent's pool reconcile tells the management
  // cluster of the pool's addresses (its mirror).
  KeyParts parts;
  SplitKey(key, &parts);
  if (parts.kind == KindName(Kind::kIPClaim) ||
      (parts.kind == KindName(Kind::kIPAddressPool) && !options_.mirror_cluster.empty())) {
    return false;
  }
  if (held_keys_.insert(key).second) {
    held_.push_back(key);
    if (metrics_) metrics_->Add("ipguard_status_writes_deferred_total", {});
  }
  return true;
}

size_t Controller::LetHeldIn() {
  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> l(mu_);
    const auto n =
        static_cast<size_t>(std::max(1.0, std::ceil(options_.status_writes_while_admitting)));
    while (!held_.empty() && keys.size() < n) {
      held_keys_.erase(held_.front());
      keys.push_back(std::move(held_.front()));
      held_.pop_front();
    }
  }
  // Each takes a slot of the busy pace, as a neighbour's write does.
  for (const std::string& key : keys) queue_.Add(key);
  return keys.size();
}

void Controller::EnqueueNeighbor(const std::string& key) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (HoldWhileBusyLocked(key)) return;
  }
  queue_.AddAfter(key, options_.neighbor_delay);
}

void Controller::EnqueueAll() {
  for (const auto& [kind, w] : watched_) {
    if (kind == Kind::kService) {
      EnqueueServicesToReport();
      continue;
    }
    if (kind == Kind::kIPAddressPool && !options_.mirror_cluster.empty()) EnqueueMirrored();
    if (kind == Kind::kIPClaim) {
      EnqueueClaimsToReconcile();
      continue;
    }
    for (const std::string& store_key : w.store->Keys()) {
      size_t slash = store_key.find('/');
      queue_.AddLow(slash == std::string::npos
                     ? ObjectKey(kind, "", store_key)
                     : ObjectKey(kind, store_key.substr(0, slash), store_key.substr(slash + 1)));
    }
  }
}

void Controller::ForEachInSlices(
    Kind kind, const std::function<void(const Engine&, const Object&)>& fn) const {
  // 4,096 slots take a few milliseconds to judge: a watch event waits for
  // no more than that, where one read of 100k Services held it most of a
  // second.
  constexpr size_t kSlice = 4096;
  size_t from = 0;
  do {
    from = state_->Read([&](const Engine& engine) {
      return engine.ForEachSlice(kind, from, kSlice, [&](const Object& o) { fn(engine, o); });
    });
  } while (from != 0);
}

// A Service's reconcile only emits an event when it enters or leaves
// Conflicting, so of 100k Services only those that collide now or were
// reported before can have anything to do; queueing the rest would cost a
// queue entry and a reconcile each for nothing.
void Controller::EnqueueServicesToReport() {
  std::vector<std::string> keys;
  ForEachInSlices(Kind::kService, [&](const Engine& engine, const Object& o) {
    std::string key = o.Key();
    if (!engine.CollisionsOf(key).empty() ||
        (options_.write_claims && !engine.MissingClaims(o).empty())) {
      keys.push_back(std::move(key));
    }
  });
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [key, kind] : conflicting_) {
      if (kind == Kind::kService) keys.push_back(key);
    }
  }
  for (const std::string& key : keys) queue_.AddLow(key);
}

// Of 110k claims (an estate of workload clusters), only those that collide
// now or were reported before (events), and those of this cluster whose
// holder does not stand for them (a release) can have anything to do.
void Controller::EnqueueClaimsToReconcile() {
  std::vector<std::string> keys;
  ForEachInSlices(Kind::kIPClaim, [&](const Engine& engine, const Object& o) {
    const ClaimHolder& h = o.claim->holder;
    bool release =
        h.cluster == engine.options().cluster && engine.HolderKey(h) && !engine.StandingHolder(o);
    std::string key = o.Key();
    if (release || (options_.claim_events && !engine.CollisionsOf(key).empty())) {
      keys.push_back(std::move(key));
    }
  });
  if (options_.claim_events) {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [key, kind] : conflicting_) {
      if (kind == Kind::kIPClaim) keys.push_back(key);
    }
  }
  for (const std::string& key : keys) queue_.AddLow(key);
}

void Controller::Start() {
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { Work(); });
}

void Controller::Stop() {
  queue_.ShutDown();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void Controller::Work() {
  bool low = false;
  while (auto key = queue_.Get(&low)) {
    bool changed;
    {
      std::lock_guard<std::mutex> l(mu_);
      changed = changed_.erase(*key) > 0;
    }
    if (!may_write_()) {
      queue_.Forget(*key);
      queue_.Done(*key);
      continue;
    }
    const Why why = low ? Why::kPass : changed ? Why::kChange : Why::kBackground;
    auto start = std::chrono::steady_clock::now();
    Status s = Reconcile(*key, why);
    if (metrics_) {
      metrics_->Observe(
          "ipguard_reconcile_duration_seconds", {},
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    if (s.ok()) {
      queue_.Forget(*key);
    } else {
      queue_.AddRateLimited(*key);
    }
    queue_.Done(*key);
  }
}

kube::Clock::Duration Controller::WriteSlot(const std::string& key, Why why) {
  if (!Paced()) return kube::Clock::Duration::zero();
  std::lock_guard<std::mutex> l(mu_);
  auto now = clock_->Now();
  const bool busy = admitting_pacer_.limited() && options_.admitting();
  if (why == Why::kChange && !busy) {
    // Its own object changed: written now, whatever slot it waited for.
    EraseSlotLocked(key);
    return kube::Clock::Duration::zero();
  }
  auto it = slots_.find(key);
  if (it != slots_.end()) {
    if (it->second.at <= now) {
      deferred_ -= it->second.while_admitting;
      slots_.erase(it);
      return kube::Clock::Duration::zero();
    }
    return it->second.at - now;
  }
  // A pass takes none of the busy spell's few slots: it looks again later.
  if (busy && why == Why::kPass) return std::chrono::seconds(1);
  auto wait = busy ? admitting_pacer_.Reserve(now) : pacer_.Reserve(now);
  if (wait > kube::Clock::Duration::zero()) {
    slots_[key] = Slot{now + wait, busy};
    if (busy) {
      ++deferred_;
      if (metrics_) metrics_->Add("ipguard_status_writes_deferred_total", {});
    }
  }
  return wait;
}

void Controller::Defer(const std::string& key, Why why, kube::Clock::Duration wait) {
  if (why == Why::kPass) {
    queue_.HoldLow(key, wait);
  } else {
    queue_.AddAfter(key, wait);
  }
}

void Controller::DropSlot(const std::string& key) {
  if (!Paced()) return;
  std::lock_guard<std::mutex> l(mu_);
  EraseSlotLocked(key);
}

void Controller::EraseSlotLocked(const std::string& key) {
  auto it = slots_.find(key);
  if (it == slots_.end()) return;
  deferred_ -= it->second.while_admitting;
  slots_.erase(it);
}

size_t Controller::ReleaseDeferredWrites() {
  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> l(mu_);
    // The changes held, in the order they came, then the writes deferred.
    keys.assign(std::make_move_iterator(held_.begin()), std::make_move_iterator(held_.end()));
    held_.clear();
    held_keys_.clear();
    if (deferred_ > 0) {
      for (auto it = slots_.begin(); it != slots_.end();) {
        if (it->second.while_admitting) {
          keys.push_back(it->first);
          it = slots_.erase(it);
        } else {
          ++it;
        }
      }
      deferred_ = 0;
    }
    // Its slots were all given back: the next busy spell starts afresh.
    if (!keys.empty()) admitting_pacer_.Reset();
  }
  // Each reconciles now and takes a slot of the usual pace (a deferred
  // key's delayed entry, when it comes, finds nothing left to write).
  for (const std::string& key : keys) queue_.Add(key);
  return keys.size();
}

std::map<std::string, int> Controller::ConflictsByKind() const {
  std::lock_guard<std::mutex> l(mu_);
  std::map<std::string, int> out;
  for (const auto& [key, kind] : conflicting_) ++out[KindName(kind)];
  return out;
}

void Controller::ReportTransition(const std::string& key, Kind kind, const json& obj, bool was,
                                  bool now, const std::vector<std::string>& conflicts) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (now) {
      conflicting_[key] = kind;
    } else {
      conflicting_.erase(key);
    }
  }
  if (was == now || !events_) return;
  std::string note;
  for (const std::string& c : conflicts) note += (note.empty() ? "" : "; ") + c;
  // Events are best effort: a failed one is not retried, the condition in
  // status carries the same news.
  if (now) {
    events_->Emit(obj, "Warning", "IPConflict", note);
  } else {
    events_->Emit(obj, "Normal", "ConflictResolved", "no longer collides with another object");
  }
}

// Services and MetalLB IPAddressPools get events only; what names one in an
// event comes from the engine (the informer cache keeps almost nothing of a
// Service).
Status Controller::ReconcileForeign(const std::string& key, const Watched& w) {
  struct Found {
    bool found = false;
    json regarding;
    std::vector<std::string> conflicts;
  };
  Found f = state_->Read([&](const Engine& engine) {
    Found out;
    const Object* o = engine.Find(key);
    if (!o) return out;
    out.found = true;
    out.regarding = {{"apiVersion", w.resource.ApiVersion()},
                     {"kind", KindName(w.kind)},
                     {"metadata",
                      {{"name", o->meta.name},
                       {"namespace", o->meta.ns},
                       {"uid", o->meta.uid.str()},
                       {"resourceVersion", o->meta.resource_version.str()}}}};
    out.conflicts = ConflictsToReport(engine, *o);
    return out;
  });
  bool was;
  {
    std::lock_guard<std::mutex> l(mu_);
    was = conflicting_.count(key) > 0;
    if (!f.found) conflicting_.erase(key);
  }
  if (!f.found) return Status::Ok();
  ReportTransition(key, w.kind, f.regarding, was, !f.conflicts.empty(), f.conflicts);
  return Status::Ok();
}

Status Controller::EnsureClaims(const std::string& key, Why why, bool* deferred) {
  *deferred = false;
  if (!options_.write_claims || !watched_.count(Kind::kIPClaim)) return Status::Ok();
  std::vector<WantedClaim> missing = state_->Read([&](const Engine& engine) {
    const Object* o = engine.Find(key);
    if (!o || !engine.CollisionsOf(key).empty()) return std::vector<WantedClaim>{};
    return engine.MissingClaims(*o);
  });
  if (missing.empty() || !may_write_()) return Status::Ok();
  // The object's claims are written together, in one slot.
  if (auto wait = WriteSlot(key, why); wait > kube::Clock::Duration::zero()) {
    Defer(key, why, wait);
    *deferred = true;
    return Status::Ok();
  }
  for (const WantedClaim& c : missing) {
    if (!may_write_()) return Status::Ok();
    auto r = ledger_->Create(watched_.at(Kind::kIPClaim).resource, "", ClaimObject(c));
    // 409: written meanwhile (by the webhook, or for another holder, which
    // then collides and is reported).
    if (!r.ok() && !r.error().IsConflict()) {
      return Status::Error("writing IPClaim " + c.name + ": " + r.error().ToString());
    }
    if (r.ok() && metrics_) metrics_->Add("ipguard_claims_backfilled_total", {});
  }
  return Status::Ok();
}

Status Controller::ReconcileClaim(const std::string& key) {
  struct Found {
    bool found = false;
    bool release = false;  // ours, and its holder does not ask for it
    std::string name, uid, why, created;
  };
  Found f = state_->Read([&](const Engine& engine) {
    Found out;
    const Object* claim = engine.Find(key);
    if (!claim) return out;
    out.found = true;
    // Kept: a claim written by hand to hold an address (a holder of another
    // kind), one of another cluster (the manager or that cluster's agent
    // releases it), and one whose holder is stored and asks for it.
    const ClaimHolder& h = claim->claim->holder;
    auto holder_key = engine.HolderKey(h);
    if (!holder_key || h.cluster != engine.options().cluster || engine.StandingHolder(*claim)) {
      return out;
    }
    out.name = claim->meta.name;
    out.uid = claim->meta.uid.str();
    out.created = claim->meta.creation_timestamp.str();
    out.release = true;
    out.why = "its holder ";
    AppendHolder(&out.why, h);
    out.why += engine.Find(*holder_key) ? " no longer asks for this address in this domain"
                                        : " does not exist";
    return out;
  });
  const auto now = clock_->Now();
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!f.release) {
      claim_unwanted_since_.erase(key);
      return Status::Ok();
    }
    auto [it, fresh] = claim_unwanted_since_.emplace(key, now);
    auto waited = now - it->second;
    // A claim older than the grace whose holder is not there has no holder
    // on its way: it goes at once. (The API server's clock says how old; a
    // clock far off only moves a release, and a claim released too early
    // is written again when its holder appears.)
    auto created = kube::ParseRfc3339(f.created);
    auto wall = kube::ParseRfc3339(clock_->NowRfc3339());
    bool old_enough =
        created && wall &&
        std::chrono::seconds(*wall - *created) >=
            std::chrono::duration_cast<std::chrono::seconds>(options_.claim_grace);
    if (!old_enough && waited < options_.claim_grace) {
      // The holder may be on its way (admitted, not yet stored): look again
      // when the grace is over.
      queue_.AddAfter(key, options_.claim_grace - waited);
      return Status::Ok();
    }
  }
  if (!may_write_()) return Status::Ok();
  // Only the claim seen here: one made again meanwhile (another uid) stays.
  auto r = ledger_->Delete(watched_.at(Kind::kIPClaim).resource, "", f.name,
                           std::chrono::milliseconds(0), f.uid);
  if (!r.ok() && !r.error().IsNotFound() && r.error().code != 409) {
    return Status::Error("releasing IPClaim " + f.name + ": " + r.error().ToString());
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    claim_unwanted_since_.erase(key);
  }
  if (r.ok()) {
    if (metrics_) metrics_->Add("ipguard_claims_released_total", {});
    if (events_) {
      json regarding = {{"apiVersion", watched_.at(Kind::kIPClaim).resource.ApiVersion()},
                        {"kind", KindName(Kind::kIPClaim)},
                        {"metadata", {{"name", f.name}, {"uid", f.uid}}}};
      events_->Emit(regarding, "Normal", "ClaimReleased", "released: " + f.why);
    }
  }
  return Status::Ok();
}

json MirrorOf(const std::string& cluster, const std::string& network, const Object& pool) {
  json addresses = json::array();
  for (const LabeledBlock& b : pool.addr->addresses) addresses.push_back(b.block.ToString());
  json spec = {{"addresses", addresses}};
  if (!network.empty()) spec["logicalNetworkName"] = network;
  const KindInfo& info = InfoOf(Kind::kLoadBalancerPool);
  return {{"apiVersion", info.ApiVersion()},
          {"kind", KindName(Kind::kLoadBalancerPool)},
          {"metadata",
           {{"name", cluster + "-" + pool.meta.name},
            {"labels", {{kClusterLabel, cluster}}},
            {"annotations",
             {{kMirrorOfAnnotation, pool.meta.ns + "/" + pool.meta.name},
              {kWrittenByAnnotation, "ipguard"}}}}},
          {"spec", spec}};
}

void Controller::EnqueueMirrored() {
  kube::ListOptions lo;
  lo.label_selector = std::string(kClusterLabel) + "=" + options_.mirror_cluster;
  auto list = ledger_->List(kube::ResourceOf(InfoOf(Kind::kLoadBalancerPool)), "", lo);
  if (!list.ok()) {
    // Not fatal: the next EnqueueAll (leadership, the management cluster
    // coming back) lists again.
    if (options_.warn) {
      options_.warn("listing the mirrored LoadBalancerPools: " + list.error().ToString());
    }
    return;
  }
  const json& items = list.value().contains("items") ? list.value()["items"] : json::array();
  for (const json& item : items.is_array() ? items : json::array()) {
    std::string of = Text(Member(item, "metadata"), "annotations", kMirrorOfAnnotation);
    size_t slash = of.find('/');
    if (slash == std::string::npos) continue;
    queue_.AddLow(ObjectKey(Kind::kIPAddressPool, of.substr(0, slash), of.substr(slash + 1)));
  }
}

Status Controller::MirrorPool(const std::string& key) {
  KeyParts parts;
  if (!SplitKey(key, &parts)) return Status::Ok();
  struct Want {
    bool present = false;
    json mirror;
  };
  Want want = state_->Read([&](const Engine& engine) {
    Want w;
    const Object* pool = engine.Find(key);
    // A pool with fields that do not read is not mirrored (the webhook
    // refuses it; the controller reports it).
    if (!pool || !pool->errors.empty() || pool->addr->addresses.empty()) return w;
    std::string network;
    const std::string& ref = engine.options().cluster_ref;
    if (size_t slash = ref.find('/'); slash != std::string::npos) {
      const Object* wlc = engine.Find(
          ObjectKey(Kind::kWorkloadCluster, ref.substr(0, slash), ref.substr(slash + 1)));
      if (wlc) network = wlc->wlc->logical_network_name;
    }
    w.present = true;
    w.mirror = MirrorOf(options_.mirror_cluster, network, *pool);
    return w;
  });
  const kube::Resource r = kube::ResourceOf(InfoOf(Kind::kLoadBalancerPool));
  const std::string name = options_.mirror_cluster + "-" + parts.name;
  if (!may_write_()) return Status::Ok();
  auto got = ledger_->Get(r, "", name);
  if (!got.ok() && !got.error().IsNotFound()) {
    return Status::Error("reading LoadBalancerPool " + name + ": " + got.error().ToString());
  }
  const bool exists = got.ok();
  auto ours = [&](const json& obj) {
    const json& meta = Member(obj, "metadata");
    return Text(meta, "labels", kClusterLabel) == options_.mirror_cluster &&
           Text(meta, "annotations", kMirrorOfAnnotation) == parts.ns + "/" + parts.name;
  };
  if (exists && !ours(got.value())) {
    // Written by someone else (by hand, or from Azure's resource of the same
    // name): never overwritten or deleted; the two meet in the plan.
    if (want.present && options_.warn) {
      options_.warn("LoadBalancerPool " + name + " exists and is not the mirror of IPAddressPool " +
                    parts.ns + "/" + parts.name + ": left as it is");
    }
    return Status::Ok();
  }
  if (!want.present) {
    if (!exists) return Status::Ok();
    auto del = ledger_->Delete(r, "", name, std::chrono::milliseconds(0),
                               Text(got.value(), "metadata", "uid"));
    if (!del.ok() && !del.error().IsNotFound() && del.error().code != 409) {
      return Status::Error("deleting LoadBalancerPool " + name + ": " + del.error().ToString());
    }
    if (del.ok() && metrics_) metrics_->Add("ipguard_pool_mirror_writes_total", {{"verb", "delete"}});
    return Status::Ok();
  }
  if (!exists) {
    auto made = ledger_->Create(r, "", want.mirror);
    if (!made.ok() && !made.error().IsConflict()) {
      return Status::Error("creating LoadBalancerPool " + name + ": " + made.error().ToString());
    }
    if (made.ok() && metrics_) metrics_->Add("ipguard_pool_mirror_writes_total", {{"verb", "create"}});
    if (!made.ok()) queue_.AddAfter(key, std::chrono::seconds(1));  // made meanwhile: look again
    return Status::Ok();
  }
  json current = got.value();
  if (current.value("spec", json::object()) == want.mirror["spec"]) return Status::Ok();
  current["spec"] = want.mirror["spec"];
  auto put = ledger_->Update(r, current);
  if (!put.ok()) {
    return Status::Error("updating LoadBalancerPool " + name + ": " + put.error().ToString());
  }
  if (metrics_) metrics_->Add("ipguard_pool_mirror_writes_total", {{"verb", "update"}});
  return Status::Ok();
}

json Controller::CacheForm(const json& obj) {
  json out = json::object();
  if (!obj.is_object()) return out.dump();
  auto meta = obj.find("metadata");
  if (meta != obj.end() && meta->is_object()) {
    json& m = out["metadata"] = json::object();
    for (const char* k :
         {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp"}) {
      auto it = meta->find(k);
      if (it != meta->end()) m[k] = *it;
    }
  }
  auto status = obj.find("status");
  if (status != obj.end()) out["status"] = *status;
  return out.dump();
}

Status Controller::Reconcile(const std::string& key, Why why) {
  KeyParts parts;
  if (!SplitKey(key, &parts)) return Status::Ok();  // not a key this controller makes
  const Watched* w = nullptr;
  for (const auto& [kind, watched] : watched_) {
    if (parts.kind == KindName(kind)) w = &watched;
  }
  if (!w) return Status::Ok();
  if (w->kind == Kind::kWorkloadCluster || w->kind == Kind::kService) {
    bool deferred = false;
    if (Status st = EnsureClaims(key, why, &deferred); !st.ok() || deferred) return st;
  }
  if (w->kind == Kind::kIPClaim) {
    if (options_.claim_events) {
      if (Status st = ReconcileForeign(key, *w); !st.ok()) return st;
    }
    return ReconcileClaim(key);
  }
  if (w->kind == Kind::kIPAddressPool && !options_.mirror_cluster.empty()) {
    if (Status st = ReconcileForeign(key, *w); !st.ok()) return st;
    return MirrorPool(key);
  }
  if (!InfoOf(w->kind).owns_status) return ReconcileForeign(key, *w);
  const std::string store_key = parts.ns.empty() ? parts.name : parts.ns + "/" + parts.name;
  auto stored = w->store->Get(store_key);
  if (!stored) {
    std::lock_guard<std::mutex> l(mu_);
    conflicting_.erase(key);
    EraseSlotLocked(key);
    return Status::Ok();
  }
  json obj = stored->is_string()
                 ? json::parse(stored->get_ref<const std::string&>(), nullptr, false)
                 : json();
  if (!obj.is_object()) return Status::Error("cached " + key + " does not parse");
  obj["kind"] = KindName(w->kind);
  obj["apiVersion"] = w->resource.ApiVersion();

  auto plan_for = [&](const json& current_status) {
    return state_->Read([&](const Engine& engine) {
      Plan p;
      const Object* o = engine.Find(key);
      if (!o) return p;
      p.found = true;
      p.status = DesiredStatus(engine, *o, current_status, clock_->NowRfc3339());
      p.conflicts = ConflictsToReport(engine, *o);
      return p;
    });
  };

  auto status_of = [](const json& o) {
    auto it = o.find("status");
    return it != o.end() && it->is_object() ? *it : json::object();
  };
  json current = status_of(obj);
  Plan plan = plan_for(current);
  if (!plan.found) {
    std::lock_guard<std::mutex> l(mu_);
    conflicting_.erase(key);
    EraseSlotLocked(key);
    return Status::Ok();  // not in the engine (yet, or any more)
  }

  bool was = ConditionTrue(current, "Conflicting");
  for (int attempt = 0;; ++attempt) {
    if (plan.status == current) {
      DropSlot(key);
      ReportTransition(key, w->kind, obj, was, !plan.conflicts.empty(), plan.conflicts);
      return Status::Ok();
    }
    if (!may_write_()) return Status::Ok();
    if (attempt == 0) {
      // Retries after a 409 use the slot already taken.
      auto wait = WriteSlot(key, why);
      if (wait > kube::Clock::Duration::zero()) {
        Defer(key, why, wait);
        return Status::Ok();
      }
    }
    json write = obj;
    write["status"] = plan.status;
    auto res = client_->UpdateStatus(w->resource, write);
    if (res.ok()) {
      status_writes_.fetch_add(1);
      ReportTransition(key, w->kind, res.value(), was, !plan.conflicts.empty(), plan.conflicts);
      return Status::Ok();
    }
    if (!res.error().IsConflict() || attempt >= options_.status_retries) {
      if (res.error().IsNotFound()) return Status::Ok();  // deleted meanwhile
      return Status::Error("status of " + key + ": " + res.error().ToString());
    }
    // Someone wrote in between: start again from what the server has now.
    conflicts_retried_.fetch_add(1);
    auto fresh = client_->Get(w->resource, parts.ns, parts.name);
    if (!fresh.ok()) {
      if (fresh.error().IsNotFound()) return Status::Ok();
      return Status::Error("re-reading " + key + ": " + fresh.error().ToString());
    }
    obj = std::move(fresh.value());
    obj["kind"] = KindName(w->kind);
    obj["apiVersion"] = w->resource.ApiVersion();
    current = status_of(obj);
    was = ConditionTrue(current, "Conflicting");
    plan = plan_for(current);
    if (!plan.found) return Status::Ok();
  }
}

}  // namespace ipguard
