#include "core/engine.h"

#include <algorithm>
#include <cassert>
#include <set>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace ipguard {

using nlohmann::json;

namespace {

using Method = LogicalNetworkSpec::Method;

bool IsServiceRole(Role r) { return r == Role::kServiceAsked || r == Role::kServiceHeld; }
bool IsHostRole(Role r) { return r == Role::kGateway || r == Role::kDnsServer; }

// One label of a DNS name: a-z and 0-9, and '-' inside.
bool IsLabelShaped(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && !(c == '-' && i != 0 && i + 1 != s.size())) return false;
  }
  return true;
}

bool IsDns1123Label(const std::string& s) { return s.size() <= 63 && IsLabelShaped(s); }

// What the API server takes as the name of a custom resource (and of a
// MetalLB pool): an RFC 1123 subdomain, labels joined by '.'.
bool IsDns1123Subdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  std::string_view rest(s);
  while (true) {
    size_t dot = rest.find('.');
    if (!IsLabelShaped(rest.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    rest.remove_prefix(dot + 1);
  }
}

// The network address of a prefix, reserved unless the prefix is a /31 or
// /32 (IPv4) or a /128 (IPv6); the broadcast address exists for IPv4 only.
std::optional<IpAddr> NetworkAddress(const Block& prefix) {
  int len = prefix.prefix_len();
  if (prefix.family() == Family::kV4 ? len > 30 : len > 126) return std::nullopt;
  return prefix.first();
}
std::optional<IpAddr> BroadcastAddress(const Block& prefix) {
  if (prefix.family() != Family::kV4 || prefix.prefix_len() > 30) return std::nullopt;
  return prefix.last();
}

// Where `ip` falls badly in `prefix`: "outside", "the network address of" or
// "the broadcast address of" (each reads "<ip> is <that> addressPrefix ...");
// nullopt when it is a usable host address.
std::optional<std::string> MisplacedIn(const Block& prefix, const IpAddr& ip) {
  if (!prefix.Contains(ip)) return "outside";
  auto net_addr = NetworkAddress(prefix);
  if (net_addr && ip == *net_addr) return "the network address of";
  auto bcast = BroadcastAddress(prefix);
  if (bcast && ip == *bcast) return "the broadcast address of";
  return std::nullopt;
}

std::string Verb(const Block& subject, const Block& other) {
  if (!subject.is_single()) return "overlaps";
  return other.is_single() ? "equals" : "is inside";
}

// "ipPools[0] 10.0.0.50-10.0.0.99": a labelled block as messages print it.
std::string Labeled(const FieldLabel& field, const Block& block) {
  return field.str() + " " + block.ToString();
}

// "spec.ipPools[0] 10.0.0.50-10.0.0.99", for messages about an object's own fields.
std::string SpecField(const LabeledBlock& b) { return "spec." + Labeled(b.field, b.block); }

// Appends "ipPools[0] 10.0.0.50-10.0.0.99 of LogicalNetwork lnet-prod": one
// side of a collision.
void AppendSide(std::string* out, const Use& use, const Object& obj) {
  use.field.AppendTo(out);
  out->push_back(' ');
  use.block.AppendTo(out);
  out->append(" of ");
  obj.AppendDescription(out);
}

std::string Side(const Use& use, const Object& obj) {
  std::string out;
  AppendSide(&out, use, obj);
  return out;
}

// Built in one string: ipguard check may write a million of these.
std::string CollisionMessage(const Use& use, const Object& obj, const Use& other,
                             const Object& other_obj) {
  std::string msg;
  msg.reserve(160);
  AppendSide(&msg, use, obj);
  msg.push_back(' ');
  msg.append(Verb(use.block, other.block));
  msg.push_back(' ');
  AppendSide(&msg, other, other_obj);
  return msg;
}

// Whether two Services use one port/protocol pair; the first in `which`
// when it is given.
bool PortsRepeat(const ServiceSpec& a, const ServiceSpec& b, std::string* which = nullptr) {
  for (const auto& pa : a.ports) {
    for (const auto& pb : b.ports) {
      if (pa.port == pb.port && pa.protocol == pb.protocol) {
        if (which) *which = std::to_string(pa.port) + "/" + pa.protocol;
        return true;
      }
    }
  }
  return false;
}

bool SameSharingKey(const ServiceSpec& a, const ServiceSpec& b) {
  return !a.sharing_key.empty() && a.sharing_key == b.sharing_key;
}

// Whether two Services may share an address: the same sharing key and no
// port/protocol pair in common. Decided without building a reason, as
// CollidesWith asks it for every overlap it visits.
bool MayShare(const ServiceSpec& a, const ServiceSpec& b) {
  return SameSharingKey(a, b) && !PortsRepeat(a, b);
}

// Appends why two Services that collide may not share their address.
void AppendSharingProblem(std::string* out, const ServiceSpec& a, const ServiceSpec& b) {
  if (!SameSharingKey(a, b)) {
    out->append("and the two do not carry the same sharing key");
    return;
  }
  std::string port;
  if (PortsRepeat(a, b, &port)) {
    out->append("and both use port " + port + " under sharing key " +
                QuoteValue(a.sharing_key.str()));
  }
}

void CheckOverlapsWithin(const std::vector<LabeledBlock>& blocks, Verdict* v) {
  for (size_t i = 0; i < blocks.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (blocks[i].block.Overlaps(blocks[j].block)) {
        v->violations.push_back(SpecField(blocks[i]) + " overlaps " + SpecField(blocks[j]));
      }
    }
  }
}

bool IsStatic(const Object& net) { return net.lnet->method == Method::kStatic; }
bool IsDhcp(const Object& net) { return net.lnet->method == Method::kDhcp; }

}  // namespace

std::optional<Platform> ParsePlatform(const std::string& s) {
  if (s == "azurelocal") return Platform::kAzureLocal;
  if (s == "vmware") return Platform::kVmware;
  return std::nullopt;
}
std::optional<CapacityPolicy> ParseCapacityPolicy(const std::string& s) {
  if (s == "Enforce") return CapacityPolicy::kEnforce;
  if (s == "Warn") return CapacityPolicy::kWarn;
  return std::nullopt;
}
std::optional<Operation> ParseOperation(const std::string& s) {
  if (s == "CREATE") return Operation::kCreate;
  if (s == "UPDATE") return Operation::kUpdate;
  if (s == "DELETE") return Operation::kDelete;
  return std::nullopt;
}

void Verdict::PutFirst(std::vector<std::string> first) {
  if (first.empty()) return;
  for (auto& [index, key] : others) index += first.size();
  first.insert(first.end(), std::make_move_iterator(violations.begin()),
               std::make_move_iterator(violations.end()));
  violations = std::move(first);
}

std::string Verdict::Message() const {
  std::string out;
  for (const auto& m : violations) {
    if (!out.empty()) out += "; ";
    out += m;
  }
  return out;
}

bool Collides(Role a, Role b) {
  if (a > b) std::swap(a, b);  // Role order: pools, scope, gateway, dns, edge, cp, lb, res, claim, svc
  switch (a) {
    case Role::kNetworkPool:
    case Role::kDhcpScope:
      // Pools, cp, lb, reservation, services. A network's own pools against
      // its own prefix are a rule on its fields (Validate).
      return !IsHostRole(b) && b != Role::kNetworkEdge;
    case Role::kGateway:
    case Role::kDnsServer:
      // A load balancer must not hand out the router's or a resolver's
      // address; a reservation of them is what reservations are for.
      return b == Role::kControlPlane || b == Role::kLoadBalancer || b == Role::kClaim ||
             IsServiceRole(b);
    case Role::kNetworkEdge:
      // A control-plane IP is judged against its own network's prefix.
      return b == Role::kLoadBalancer || b == Role::kClaim || IsServiceRole(b);
    case Role::kControlPlane:
      return true;  // cp, lb, reservation, services
    case Role::kLoadBalancer:
      // A claim held by a Service is let in by CollidesWith: a pool is where
      // a Service's address comes from.
      return b == Role::kLoadBalancer || b == Role::kReservation || b == Role::kClaim;
    case Role::kReservation:
      return b == Role::kClaim || IsServiceRole(b);  // reservations may overlap each other
    case Role::kClaim:
      // Everything, but its own holder (CollidesWith): a claim holds its
      // address for one object alone.
      return true;
    case Role::kServiceAsked:
    case Role::kServiceHeld:
      return true;  // decided by sharing keys
  }
  return false;
}

std::optional<uint64_t> PoolCapacity(const LogicalNetworkSpec& spec) {
  const std::vector<LabeledBlock>* blocks = nullptr;
  if (spec.method == Method::kStatic) blocks = &spec.ip_pools;
  if (spec.method == Method::kDhcp && !spec.dhcp_scope.empty()) blocks = &spec.dhcp_scope;
  if (!blocks) return std::nullopt;
  return AddressCount(*blocks);
}

uint64_t AddressCount(const std::vector<LabeledBlock>& blocks) {
  uint64_t total = 0;
  for (const auto& b : blocks) total = SaturatingAdd(total, b.block.Size());
  return total;
}

Engine::Engine(Options options) : options_(options) {}

bool Engine::IsOlder(const Object& a, const Object& b) {
  // RFC 3339 timestamps in UTC as the API server writes them sort as text.
  // An object without one (not yet stored) is the newest.
  ShortString::Buffer a_buf, b_buf;
  std::string_view ta = a.meta.creation_timestamp.View(&a_buf);
  std::string_view tb = b.meta.creation_timestamp.View(&b_buf);
  if (ta != tb) {
    if (ta.empty()) return false;
    if (tb.empty()) return true;
    return ta < tb;
  }
  return a.Ref() < b.Ref();
}

bool Engine::HoldsAgainst(const Object& a, const Object& b) {
  const bool a_claim = a.kind == Kind::kIPClaim, b_claim = b.kind == Kind::kIPClaim;
  if (a_claim != b_claim) return a_claim;
  return IsOlder(a, b);
}

namespace {

// FNV-1a, 64 bits, fed piece by piece: a stored object's key is hashed from
// its kind, namespace and name as the whole key would be.
constexpr uint64_t kFnvOffset = 14695981039346656037ull;
uint64_t Fnv(uint64_t h, std::string_view piece) {
  for (unsigned char c : piece) h = (h ^ c) * 1099511628211ull;
  return h;
}
// The bits a table index takes, mixed from all 64.
uint64_t Spread(uint64_t h) { return (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull; }

}  // namespace

uint64_t Engine::KeyHash(std::string_view key) { return Spread(Fnv(kFnvOffset, key)); }

uint64_t Engine::SlotHash(uint32_t slot) const {
  const Object& o = slots_[slot].obj;
  uint64_t h = Fnv(kFnvOffset, KindName(o.kind));
  h = Fnv(h, "/");
  h = Fnv(h, o.meta.ns.str());
  h = Fnv(h, "/");
  return Spread(Fnv(h, o.meta.name));
}

bool Engine::SlotHasKey(uint32_t slot, std::string_view key) const {
  // key == KindName + "/" + ns + "/" + name, without building the right side.
  const Object& o = slots_[slot].obj;
  std::string_view kind = KindName(o.kind);
  if (key.size() != kind.size() + o.meta.ns.size() + o.meta.name.size() + 2) return false;
  if (key.compare(0, kind.size(), kind) != 0 || key[kind.size()] != '/') return false;
  key.remove_prefix(kind.size() + 1);
  if (key.compare(0, o.meta.ns.size(), o.meta.ns.str()) != 0 || key[o.meta.ns.size()] != '/')
    return false;
  key.remove_prefix(o.meta.ns.size() + 1);
  return key == o.meta.name;
}

size_t Engine::KeyBucket(std::string_view key) const {
  if (key_table_.empty()) return SIZE_MAX;
  const size_t mask = key_table_.size() - 1;
  for (size_t i = KeyHash(key) & mask;; i = (i + 1) & mask) {
    uint32_t s = key_table_[i];
    if (s == UINT32_MAX) return SIZE_MAX;
    if (SlotHasKey(s, key)) return i;
  }
}

uint32_t Engine::Slot(std::string_view key) const {
  size_t bucket = KeyBucket(key);
  return bucket == SIZE_MAX ? UINT32_MAX : key_table_[bucket];
}

void Engine::KeyTableInsert(uint32_t slot) {
  if ((key_count_ + 1) * 2 > key_table_.size()) {
    std::vector<uint32_t> old(std::max<size_t>(16, key_table_.size() * 2), UINT32_MAX);
    old.swap(key_table_);
    key_count_ = 0;
    for (uint32_t s : old) {
      if (s != UINT32_MAX) KeyTableInsert(s);
    }
  }
  const size_t mask = key_table_.size() - 1;
  size_t i = SlotHash(slot) & mask;
  while (key_table_[i] != UINT32_MAX) i = (i + 1) & mask;
  key_table_[i] = slot;
  ++key_count_;
}

void Engine::KeyTableErase(size_t bucket) {
  const size_t mask = key_table_.size() - 1;
  size_t i = bucket;
  // Backward shift: each entry after the hole that may live there moves up,
  // so a lookup never meets an empty bucket before its key.
  for (size_t j = (i + 1) & mask; key_table_[j] != UINT32_MAX; j = (j + 1) & mask) {
    size_t home = SlotHash(key_table_[j]) & mask;
    // Moves when its home is not cyclically inside (i, j].
    const bool inside = i < j ? (home > i && home <= j) : (home > i || home <= j);
    if (!inside) {
      key_table_[i] = key_table_[j];
      i = j;
    }
  }
  key_table_[i] = UINT32_MAX;
  --key_count_;
}

const Object* Engine::Find(const std::string& key) const {
  uint32_t s = Slot(key);
  return s == UINT32_MAX ? nullptr : &slots_[s].obj;
}

const Object* Engine::Network(const std::string& name) const {
  if (name.empty()) return nullptr;
  return Find(ObjectKey(Kind::kLogicalNetwork, "", name));
}

std::string Engine::NetworkNameOf(const Object& obj) const {
  switch (obj.kind) {
    case Kind::kWorkloadCluster:
      return obj.wlc->logical_network_name;
    case Kind::kLoadBalancerPool:
      return obj.addr->logical_network_name;
    case Kind::kService: {
      auto it = obj.meta.annotations.find(kLogicalNetworkAnnotation);
      return it == obj.meta.annotations.end() ? service_network_ : it->second;
    }
    default:
      return "";
  }
}

Domain Engine::DomainOf(const Object& obj) const {
  switch (obj.kind) {
    case Kind::kLogicalNetwork:
      return obj.lnet->vlan_id;
    case Kind::kIPReservation:
      return obj.addr->vlan_id ? *obj.addr->vlan_id : kEveryDomain;
    case Kind::kIPClaim:
      return obj.claim->vlan_id ? *obj.claim->vlan_id : kEveryDomain;
    case Kind::kIPAddressPool:
      return kEveryDomain;
    default: {
      // An object whose network is missing collides everywhere: the safe side.
      const Object* net = Network(NetworkNameOf(obj));
      return net ? net->lnet->vlan_id : kEveryDomain;
    }
  }
}

namespace {

// Calls fn(use) for every address use of `obj`, always in the same order,
// until fn returns false. Stored objects keep no list of their uses: the
// spec already holds the blocks, and the n-th use is found again by order.
template <typename Fn>
void VisitUses(const Object& obj, Fn&& fn) {
  auto all = [&fn](Role role, const std::vector<LabeledBlock>& blocks) {
    for (const auto& b : blocks) {
      if (!fn(Use{role, b.field, b.block})) return false;
    }
    return true;
  };
  switch (obj.kind) {
    case Kind::kLogicalNetwork: {
      const auto& s = *obj.lnet;
      // A DHCP network's forbidden static fields are reported, not indexed.
      if (s.method != Method::kDhcp) {
        if (!all(Role::kNetworkPool, s.ip_pools)) return;
        if (s.gateway && !fn(Use{Role::kGateway, "gateway", Block::Single(*s.gateway)})) return;
        for (size_t i = 0; i < s.dns_servers.size(); ++i) {
          if (!fn(Use{Role::kDnsServer,
                      {"dnsServers[#]", static_cast<int32_t>(i)},
                      Block::Single(s.dns_servers[i])})) {
            return;
          }
        }
      }
      if (s.method == Method::kStatic && s.address_prefix) {
        if (auto a = NetworkAddress(*s.address_prefix)) {
          if (!fn(Use{Role::kNetworkEdge, "network address", Block::Single(*a)})) return;
        }
        if (auto a = BroadcastAddress(*s.address_prefix)) {
          if (!fn(Use{Role::kNetworkEdge, "broadcast address", Block::Single(*a)})) return;
        }
      }
      if (s.method != Method::kStatic) all(Role::kDhcpScope, s.dhcp_scope);
      return;
    }
    case Kind::kWorkloadCluster:
      if (obj.wlc->control_plane_ip) {
        fn(Use{Role::kControlPlane, "controlPlaneIP", Block::Single(*obj.wlc->control_plane_ip)});
      }
      return;
    case Kind::kLoadBalancerPool:
    case Kind::kIPAddressPool:
      all(Role::kLoadBalancer, obj.addr->addresses);
      return;
    case Kind::kIPReservation:
      all(Role::kReservation, obj.addr->addresses);
      return;
    case Kind::kIPClaim:
      all(Role::kClaim, obj.claim->address);
      return;
    case Kind::kService:
      if (obj.svc->is_load_balancer() && all(Role::kServiceAsked, obj.svc->requested)) {
        all(Role::kServiceHeld, obj.svc->held);
      }
      return;
  }
}

// The n-th use of `obj` in VisitUses order.
Use UseAt(const Object& obj, size_t n) {
  Use out{};
  size_t i = 0;
  VisitUses(obj, [&](const Use& u) {
    if (i++ != n) return true;
    out = u;
    return false;
  });
  return out;
}

}  // namespace

std::vector<Use> Engine::UsesOf(const Object& obj) const {
  std::vector<Use> uses;
  VisitUses(obj, [&uses](const Use& u) {
    uses.push_back(u);
    return true;
  });
  return uses;
}

void Engine::IndexSlot(uint32_t slot) {
  Stored& s = slots_[slot];
  s.domain = DomainOf(s.obj);
  s.entries.clear();
  VisitUses(s.obj, [&](const Use& u) {
    s.entries.push_back(IndexOf(s).Insert(s.domain, u.block, slot));
    return true;
  });
}

void Engine::UnindexSlot(uint32_t slot) {
  Stored& s = slots_[slot];
  for (uint32_t e : s.entries) IndexOf(s).Remove(e);
  s.entries.clear();
}

void Engine::ReindexDependents(const std::string& network_name) {
  auto it = networks_.find(network_name);
  if (it == networks_.end()) return;
  for (const std::string& key : it->second.dependents) {
    uint32_t s = Slot(key);
    if (s == UINT32_MAX || slots_[s].domain == DomainOf(slots_[s].obj)) continue;
    UnindexSlot(s);
    IndexSlot(s);
  }
}

void Engine::Upsert(Object obj) { Store(std::move(obj), false); }

void Engine::UpsertPending(Object obj) { Store(std::move(obj), true); }

void Engine::Store(Object obj, bool pending) {
  std::string key = obj.Key();
  // Only the annotations the rules read from metadata stay: the others a
  // Service reads are parsed into its spec already, and 100k Services need
  // not carry them twice.
  const std::vector<AnnotationInfo>& read = InfoOf(obj.kind).annotations;
  for (auto it = obj.meta.annotations.begin(); it != obj.meta.annotations.end();) {
    auto info = std::find_if(read.begin(), read.end(), [&](const AnnotationInfo& a) {
      return a.use == AnnotationUse::kReadFromMetadata && it->first == a.key;
    });
    if (info == read.end()) {
      it = obj.meta.annotations.erase(it);
    } else {
      ++it;
    }
  }
  Erase(key, true);
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Stored& s = slots_[slot];
  s.obj = std::move(obj);
  s.alive = true;
  s.pending = pending;
  KeyTableInsert(slot);
  IndexSlot(slot);
  const Object& o = s.obj;
  std::string net = NetworkNameOf(o);
  if (!net.empty()) {
    NetworkAggregate& agg = networks_[net];
    agg.dependents.insert(key);
    if (o.kind == Kind::kWorkloadCluster) {
      agg.clusters.insert(key);
      agg.required += RequiredAddresses(*o.wlc);
    }
  }
  if (o.kind == Kind::kLoadBalancerPool || o.kind == Kind::kIPAddressPool) ++load_balancer_pools_;
  if (o.kind == Kind::kLogicalNetwork) ReindexDependents(o.meta.name);
  if (o.kind == Kind::kWorkloadCluster && !options_.cluster_ref.empty() &&
      options_.cluster_ref == o.meta.ns + "/" + o.meta.name) {
    SetServiceNetwork(o.wlc->logical_network_name);
  }
}

void Engine::SetServiceNetwork(const std::string& name) {
  if (name == service_network_) return;
  std::vector<uint32_t> moved;
  auto old_net = networks_.find(service_network_);
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    const Stored& s = slots_[i];
    if (!s.alive || s.obj.kind != Kind::kService ||
        s.obj.meta.annotations.count(kLogicalNetworkAnnotation)) {
      continue;
    }
    moved.push_back(i);
    if (old_net != networks_.end()) old_net->second.dependents.erase(s.obj.Key());
  }
  if (old_net != networks_.end() && old_net->second.dependents.empty()) networks_.erase(old_net);
  service_network_ = name;
  for (uint32_t i : moved) {
    if (!name.empty()) networks_[name].dependents.insert(slots_[i].obj.Key());
    if (slots_[i].domain != DomainOf(slots_[i].obj)) {
      UnindexSlot(i);
      IndexSlot(i);
    }
  }
}

bool Engine::Remove(const std::string& key) { return Erase(key, false); }

bool Engine::Erase(const std::string& key, bool replacing) {
  const size_t bucket = KeyBucket(key);
  if (bucket == SIZE_MAX) return false;
  const uint32_t slot = key_table_[bucket];
  UnindexSlot(slot);
  Stored& s = slots_[slot];
  std::string net = NetworkNameOf(s.obj);
  if (!net.empty()) {
    auto it = networks_.find(net);
    assert(it != networks_.end());
    it->second.dependents.erase(key);
    if (s.obj.kind == Kind::kWorkloadCluster) {
      it->second.clusters.erase(key);
      it->second.required -= RequiredAddresses(*s.obj.wlc);
    }
    if (it->second.dependents.empty()) networks_.erase(it);
  }
  if (s.obj.kind == Kind::kLoadBalancerPool || s.obj.kind == Kind::kIPAddressPool)
    --load_balancer_pools_;
  Kind kind = s.obj.kind;
  std::string name = s.obj.meta.name;
  std::string ns = s.obj.meta.ns;
  KeyTableErase(bucket);
  s.obj = Object();
  s.alive = false;
  free_slots_.push_back(slot);
  if (kind == Kind::kLogicalNetwork) ReindexDependents(name);
  if (!replacing && kind == Kind::kWorkloadCluster && !options_.cluster_ref.empty() &&
      options_.cluster_ref == ns + "/" + name) {
    SetServiceNetwork("");
  }
  return true;
}

template <typename Fn>
bool Engine::ForOverlappingEntries(Domain domain, const Block& block, uint32_t self,
                                   Fn&& fn) const {
  for (bool pending : {false, true}) {
    const Index& index = pending ? pending_index_ : index_;
    if (index.size() == 0) continue;
    bool went_on = index.Query(domain, block, [&](uint32_t entry, uint32_t slot) {
      return slot == self || static_cast<bool>(fn(slots_[slot], entry));
    });
    if (!went_on) return false;
  }
  return true;
}

template <typename Fn>
bool Engine::ForOverlaps(Domain domain, const Use& use, const std::string& self_key,
                         Fn&& fn) const {
  return ForOverlappingEntries(domain, use.block, Slot(self_key), [&](const Stored& s, uint32_t entry) {
    // Live entries of each index belong to slots of that tier, so the entry
    // ids compared here are of the index that reported them.
    for (size_t i = 0; i < s.entries.size(); ++i) {
      if (s.entries[i] != entry) continue;
      if constexpr (std::is_void_v<std::invoke_result_t<Fn&, const Stored&, const Use&>>) {
        fn(s, UseAt(s.obj, i));
        return true;
      } else {
        return static_cast<bool>(fn(s, UseAt(s.obj, i)));
      }
    }
    return true;
  });
}

std::vector<std::string> Engine::Neighbors(const std::string& key) const {
  std::vector<std::string> out;
  const uint32_t self_slot = Slot(key);
  if (self_slot == UINT32_MAX) return out;
  const Stored& self = slots_[self_slot];
  std::unordered_set<std::string> seen;
  auto add = [&](const std::string& k) {
    if (k != key && seen.insert(k).second) out.push_back(k);
  };
  for (const Use& use : UsesOf(self.obj)) {
    ForOverlappingEntries(self.domain, use.block, self_slot, [&](const Stored& other, uint32_t) {
      add(other.obj.Key());
      return true;
    });
  }
  if (self.obj.kind == Kind::kLogicalNetwork) {
    auto net = networks_.find(self.obj.meta.name);
    if (net != networks_.end()) {
      for (const std::string& k : net->second.dependents) add(k);
    }
  } else if (const Object* net = Network(NetworkNameOf(self.obj))) {
    add(net->Key());
  } else if (self.obj.kind == Kind::kIPClaim && !self.obj.claim->address.empty()) {
    // The networks that count it (status.claims).
    const Block& at = self.obj.claim->address.front().block;
    ForEach(Kind::kLogicalNetwork, [&](const Object& n) {
      if (!n.lnet->address_prefix || !n.lnet->address_prefix->Contains(at)) return;
      if (self.domain == kEveryDomain || DomainOf(n) == self.domain) add(n.Key());
    });
  }
  return out;
}

std::vector<WantedClaim> Engine::MissingClaims(const Object& obj,
                                               const std::string& cluster) const {
  std::vector<WantedClaim> out;
  for (WantedClaim& c : ClaimsOf(obj, cluster)) {
    const Object* shown = Find(ObjectKey(Kind::kIPClaim, "", c.name));
    if (shown && (SameHolder(shown->claim->holder, c.holder) ||
                  SharesWith(obj, shown->claim->holder))) {
      continue;
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::optional<std::string> Engine::HolderKey(const ClaimHolder& h) const {
  if (h.kind == KindName(Kind::kWorkloadCluster) && h.cluster.empty()) {
    return ObjectKey(Kind::kWorkloadCluster, h.ns, h.name);
  }
  if (h.kind == KindName(Kind::kService) && h.cluster == options_.cluster) {
    return ObjectKey(Kind::kService, h.ns, h.name);
  }
  return std::nullopt;
}

bool Engine::SharesWith(const Object& obj, const ClaimHolder& holder) const {
  if (obj.kind != Kind::kService || holder.kind != KindName(Kind::kService)) return false;
  if (holder.ns == obj.meta.ns && holder.name == obj.meta.name) return false;
  auto key = HolderKey(holder);
  const Object* other = key ? Find(*key) : nullptr;
  return other && MayShare(*other->svc, *obj.svc);
}

const Object* Engine::StandingHolder(const Object& claim) const {
  auto key = HolderKey(claim.claim->holder);
  const Object* holder = key ? Find(*key) : nullptr;
  if (!holder) return nullptr;
  for (const WantedClaim& c : ClaimsOf(*holder)) {
    if (c.name == claim.meta.name) return holder;
  }
  return nullptr;
}

bool Engine::CollidesWith(const Object& obj, const Use& use, const Object& other,
                          const Use& other_use) const {
  if (!Collides(use.role, other_use.role)) return false;
  // A stored claim whose holder is stored and asks for it adds nothing: the
  // holder is judged (and named) in its place, sharing keys included.
  if (other.kind == Kind::kIPClaim && obj.kind != Kind::kIPClaim && StandingHolder(other)) {
    return false;
  }
  if (obj.kind == Kind::kIPClaim && other.kind == Kind::kService && other_use.role != Role::kLoadBalancer) {
    const Object* holder = StandingHolder(obj);
    if (holder && holder->kind == Kind::kService && IsServiceRole(other_use.role)) {
      return !(holder->meta.ns == other.meta.ns && holder->meta.name == other.meta.name) &&
             !MayShare(*holder->svc, *other.svc);
    }
  }
  if (obj.kind == Kind::kIPClaim || other.kind == Kind::kIPClaim) {
    const bool first = obj.kind == Kind::kIPClaim;
    const Object& claim = first ? obj : other;
    const Object& peer = first ? other : obj;
    const Use& peer_use = first ? other_use : use;
    const ClaimHolder& h = claim.claim->holder;
    // Its own holder.
    if (peer.kind != Kind::kIPClaim && h.kind == KindName(peer.kind) && h.ns == peer.meta.ns &&
        h.name == peer.meta.name && HolderKey(h)) {
      return false;
    }
    // A Service's address belongs in a load-balancer pool.
    if (h.kind == KindName(Kind::kService) && peer_use.role == Role::kLoadBalancer) return false;
  }
  if (IsServiceRole(use.role) && IsServiceRole(other_use.role)) {
    return !MayShare(*obj.svc, *other.svc);
  }
  return true;
}

std::string Engine::CollisionText(const Object& obj, const Use& use, const Object& other,
                                  const Use& other_use) {
  std::string msg = CollisionMessage(use, obj, other_use, other);
  if (IsServiceRole(use.role) && IsServiceRole(other_use.role)) {
    msg.append(", ");
    AppendSharingProblem(&msg, *obj.svc, *other.svc);
  }
  return msg;
}

json ClaimObject(const WantedClaim& claim) {
  const ClaimHolder& h = claim.holder;
  json holder = {{"kind", h.kind}, {"name", h.name}};
  if (!h.cluster.empty()) holder["cluster"] = h.cluster;
  if (!h.api_version.empty()) holder["apiVersion"] = h.api_version;
  if (!h.ns.empty()) holder["namespace"] = h.ns;
  if (!h.uid.empty()) holder["uid"] = h.uid.str();
  json spec = {{"address", claim.address.ToString()}, {"holder", holder}};
  if (claim.vlan_id) spec["vlanId"] = *claim.vlan_id;
  return {{"apiVersion", InfoOf(Kind::kIPClaim).ApiVersion()},
          {"kind", KindName(Kind::kIPClaim)},
          {"metadata",
           {{"name", claim.name}, {"annotations", {{kWrittenByAnnotation, "ipguard"}}}}},
          {"spec", spec}};
}

bool SameHolder(const ClaimHolder& a, const ClaimHolder& b) {
  return a.cluster == b.cluster && a.kind == b.kind && a.ns == b.ns && a.name == b.name;
}

std::vector<WantedClaim> Engine::ClaimsOf(const Object& obj, const std::string& cluster) const {
  std::vector<WantedClaim> out;
  Role asks;
  if (obj.kind == Kind::kWorkloadCluster) {
    asks = Role::kControlPlane;
  } else if (obj.kind == Kind::kService && obj.svc->is_load_balancer()) {
    asks = Role::kServiceAsked;
  } else {
    return out;
  }
  const Domain domain = DomainOf(obj);
  std::optional<int> vlan;
  if (domain != kEveryDomain) vlan = domain;
  ClaimHolder holder{cluster.empty() ? options_.cluster : cluster, obj.ApiVersion(),
                     KindName(obj.kind), obj.meta.ns, obj.meta.name,
                     obj.meta.uid};
  for (const Use& use : UsesOf(obj)) {
    if (use.role != asks || !use.block.is_single()) continue;
    std::string name = ClaimName(vlan, use.block.first());
    bool seen = false;
    for (const auto& c : out) seen = seen || c.name == name;
    if (!seen) out.push_back({std::move(name), use.field, use.block.first(), vlan, holder});
  }
  return out;
}

std::string MoreCollisions(size_t more, bool at_least) {
  return std::string("... and ") + (at_least ? "at least " : "") + std::to_string(more) + " more";
}

Verdict Engine::Review(Operation op, const Object* old_obj, const Object* obj) const {
  Verdict v;
  if (op == Operation::kDelete) {
    if (old_obj) CheckDelete(*old_obj, &v);
    return v;
  }
  assert(obj);
  if (obj->kind == Kind::kService && !obj->svc->is_load_balancer()) return v;
  v = Validate(*obj, options_);
  Domain domain = DomainOf(*obj);
  switch (obj->kind) {
    case Kind::kLogicalNetwork:
      CheckLogicalNetwork(op, old_obj, *obj, &v);
      break;
    case Kind::kWorkloadCluster:
      CheckWorkloadCluster(op, old_obj, *obj, &v);
      break;
    case Kind::kLoadBalancerPool:
    case Kind::kIPAddressPool:
    case Kind::kIPReservation:
    case Kind::kIPClaim:
    case Kind::kService:
      break;
  }
  Verdict network = CheckNetworkOf(*obj);
  v.violations.insert(v.violations.end(), network.violations.begin(), network.violations.end());
  v.warnings.insert(v.warnings.end(), network.warnings.begin(), network.warnings.end());
  // Collisions: listed up to kMaxCollisionsListed, counted up to
  // kMaxCollisionsCounted, then no further overlap is visited.
  size_t found = 0;
  bool stopped = false;
  const std::string key = obj->Key();
  for (const Use& use : UsesOf(*obj)) {
    // Held addresses were written by the load balancer: reported by the
    // controller, never a reason to refuse the Service.
    if (use.role == Role::kServiceHeld) continue;
    if (stopped) break;
    bool in_pool = false;
    bool want_pool = use.role == Role::kServiceAsked && load_balancer_pools_ > 0;
    ForOverlaps(domain, use, key, [&](const Stored& other, const Use& other_use) {
      if (want_pool && other_use.role == Role::kLoadBalancer &&
          other_use.block.Contains(use.block)) {
        in_pool = true;
      }
      if (!CollidesWith(*obj, use, other.obj, other_use)) return true;
      if (++found <= kMaxCollisionsListed) {
        v.others.emplace_back(v.violations.size(), other.obj.Key());
        v.violations.push_back(CollisionText(*obj, use, other.obj, other_use));
      }
      if (found < kMaxCollisionsCounted) return true;
      stopped = true;
      return false;
    });
    // Whether a pool holds the address is unknown once counting stopped.
    if (want_pool && !in_pool && !stopped) {
      v.warnings.push_back(Side(use, *obj) + " is in no LoadBalancerPool");
    }
  }
  if (found > kMaxCollisionsListed) {
    v.unlisted = found - kMaxCollisionsListed;
    v.violations.push_back(MoreCollisions(v.unlisted, stopped));
  }
  return v;
}

namespace {

// A network's platform rule and its addresses against its own prefix.
void CheckOwnPrefix(const Object& obj, const Options& options, Verdict* v) {
  const auto& s = *obj.lnet;
  auto& out = v->violations;
  if (s.method == Method::kStatic && options.platform == Platform::kVmware) {
    out.push_back("only DHCP logical networks are supported on VMware");
  }
  if (s.method == Method::kDhcp && options.platform == Platform::kAzureLocal) {
    v->warnings.push_back(obj.Describe() +
                          " uses DHCP: DHCP is not recommended for production because node IPs "
                          "must be long-lived");
  }
  if (s.method == Method::kStatic && s.address_prefix) {
    const Block& prefix = *s.address_prefix;
    std::string in_prefix = " of addressPrefix " + prefix.ToString();
    auto net_addr = NetworkAddress(prefix);
    auto bcast = BroadcastAddress(prefix);
    if (s.gateway) {
      std::string gw = "spec.gateway " + s.gateway->ToString();
      if (auto where = MisplacedIn(prefix, *s.gateway)) {
        out.push_back(gw + " is " + *where + " addressPrefix " + prefix.ToString());
      }
      for (const auto& pool : s.ip_pools) {
        if (pool.block.Contains(*s.gateway)) {
          out.push_back(gw + " is inside " + SpecField(pool));
        }
      }
    }
    for (const auto& pool : s.ip_pools) {
      std::string p = SpecField(pool);
      if (!prefix.Contains(pool.block)) {
        out.push_back(p + " is outside addressPrefix " + prefix.ToString());
        continue;
      }
      if (net_addr && pool.block.Contains(*net_addr)) {
        out.push_back(p + " contains the network address " + net_addr->ToString() + in_prefix);
      }
      if (bcast && pool.block.Contains(*bcast)) {
        out.push_back(p + " contains the broadcast address " + bcast->ToString() + in_prefix);
      }
    }
  }
}

}  // namespace

Verdict Validate(const Object& obj, const Options& options) {
  Verdict verdict;
  Verdict* v = &verdict;
  if (obj.kind == Kind::kService && !obj.svc->is_load_balancer()) return verdict;
  v->violations = obj.errors;
  auto& out = v->violations;
  // The API server refuses any other name (before any webhook sees it);
  // `ipguard check` says so, and `ipguard import` never prints one.
  // (Not a name the API server has yet to generate.)
  auto need_subdomain_name = [&]() {
    if (!IsNameToCome(obj.meta.name) && !IsDns1123Subdomain(obj.meta.name)) {
      out.push_back("metadata.name " + QuoteValue(obj.meta.name) +
                    " must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', at most 253 "
                    "characters)");
    }
  };
  auto need_addresses = [&]() {
    if (obj.addr->address_count == 0)
      out.push_back("spec.addresses must have at least one address block");
  };
  switch (obj.kind) {
    case Kind::kLogicalNetwork: {
      const auto& s = *obj.lnet;
      if (!IsNameToCome(obj.meta.name) && !IsDns1123Label(obj.meta.name)) {
        out.push_back(
            "metadata.name " + QuoteValue(obj.meta.name) +
            " must be a lowercase DNS-1123 label (a-z, 0-9 and '-', at most 63 characters)");
      }
      if (s.vm_switch_name.empty()) out.push_back("spec.vmSwitchName is required");
      if (s.method == Method::kUnset)
        out.push_back("spec.ipAllocationMethod is required (Static or DHCP)");
      if (s.method == Method::kStatic) {
        if (!s.has_address_prefix)
          out.push_back("spec.addressPrefix is required for a Static network");
        if (!s.has_gateway) out.push_back("spec.gateway is required for a Static network");
        if (!s.has_dns) {
          out.push_back("spec.dnsServers is required for a Static network");
        } else if (s.dns_count < 1 || s.dns_count > 3) {
          out.push_back("spec.dnsServers must have 1 to 3 entries, not " +
                        std::to_string(s.dns_count));
        }
        if (s.ip_pool_count == 0)
          out.push_back("spec.ipPools must have at least one entry for a Static network");
        if (s.has_dhcp_scope) out.push_back("spec.dhcpScope is only allowed for a DHCP network");
        CheckOverlapsWithin(s.ip_pools, v);
      }
      if (s.method == Method::kDhcp) {
        if (s.has_address_prefix)
          out.push_back("spec.addressPrefix is not allowed for a DHCP network");
        if (s.has_gateway) out.push_back("spec.gateway is not allowed for a DHCP network");
        if (s.has_dns) out.push_back("spec.dnsServers is not allowed for a DHCP network");
        if (s.has_ip_pools) out.push_back("spec.ipPools is not allowed for a DHCP network");
        CheckOverlapsWithin(s.dhcp_scope, v);
      }
      CheckOwnPrefix(obj, options, v);
      break;
    }
    case Kind::kWorkloadCluster: {
      const auto& s = *obj.wlc;
      need_subdomain_name();
      if (s.logical_network_name.empty()) out.push_back("spec.logicalNetworkName is required");
      if (!s.has_control_plane_ip) out.push_back("spec.controlPlaneIP is required");
      if (s.control_plane_count != 1 && s.control_plane_count != 3 && s.control_plane_count != 5) {
        out.push_back("spec.controlPlane.count " + std::to_string(s.control_plane_count) +
                      " must be 1, 3 or 5");
      }
      for (size_t i = 0; i < s.node_pools.size(); ++i) {
        const auto& np = s.node_pools[i];
        std::string p = "spec.nodePools[" + std::to_string(i) + "]";
        if (np.count < 0 || np.count > 1000) {
          out.push_back(p + ".count " + std::to_string(np.count) + " must be between 0 and 1000");
        }
        if (np.name.empty()) continue;
        for (size_t j = 0; j < i; ++j) {
          if (s.node_pools[j].name == np.name) {
            out.push_back(p + ".name " + QuoteValue(np.name) + " is already used by spec.nodePools[" +
                          std::to_string(j) + "]");
            break;
          }
        }
      }
      if (s.upgrade_surge < 0) {
        out.push_back("spec.upgradeSurge " + std::to_string(s.upgrade_surge) +
                      " must not be negative");
      }
      break;
    }
    case Kind::kLoadBalancerPool:
    case Kind::kIPReservation:
    case Kind::kIPAddressPool:
      need_subdomain_name();
      need_addresses();
      break;
    case Kind::kIPClaim: {
      const ClaimSpec& c = *obj.claim;
      if (c.address.empty()) {
        // Unless it was given and did not parse (reported already).
        bool reported = false;
        for (const auto& e : obj.errors) reported = reported || e.rfind("spec.address ", 0) == 0;
        if (!reported) out.push_back("spec.address is required");
      } else {
        const std::string want = ClaimName(c.vlan_id, c.address[0].block.first());
        if (obj.meta.name != want) {
          out.push_back("metadata.name " + QuoteValue(obj.meta.name) + " must be " + want +
                        ": a claim is named by its domain and address");
        }
      }
      if (c.holder.kind.empty()) out.push_back("spec.holder.kind is required");
      if (c.holder.name.empty()) out.push_back("spec.holder.name is required");
      break;
    }
    case Kind::kService:
      break;
  }
  return verdict;
}

void Engine::CheckLogicalNetwork(Operation op, const Object* old_obj, const Object& obj,
                                 Verdict* v) const {
  const auto& s = *obj.lnet;
  auto& out = v->violations;
  // The clusters that already name this network must still fit it.
  auto agg = networks_.find(obj.meta.name);
  if (agg == networks_.end() || agg->second.clusters.empty()) return;
  if (s.method == Method::kStatic && s.address_prefix) {
    const Block& prefix = *s.address_prefix;
    std::vector<std::string> keys(agg->second.clusters.begin(), agg->second.clusters.end());
    std::sort(keys.begin(), keys.end());
    for (const auto& key : keys) {
      const Object* c = Find(key);
      if (!c || !c->wlc->control_plane_ip) continue;
      const IpAddr& cp = *c->wlc->control_plane_ip;
      if (auto where = MisplacedIn(prefix, cp)) {
        out.push_back("controlPlaneIP " + cp.ToString() + " of " + c->Describe() + " would be " +
                      *where + " addressPrefix " + prefix.ToString() + " of " + obj.Describe());
      }
    }
  }
  auto capacity = PoolCapacity(s);
  int64_t required = agg->second.required;
  if (!capacity || static_cast<uint64_t>(required) <= *capacity) return;
  std::string numbers =
      " (needed " + std::to_string(required) + ", available " + std::to_string(*capacity) + ")";
  std::optional<uint64_t> old_capacity = old_obj ? PoolCapacity(*old_obj->lnet) : std::nullopt;
  if (op == Operation::kUpdate && old_obj && (!old_capacity || *capacity < *old_capacity)) {
    out.push_back("shrinking the pool of " + obj.Describe() + " to " + std::to_string(*capacity) +
                  " addresses leaves too few for its clusters" + numbers);
    return;
  }
  if (op == Operation::kUpdate) return;  // not a shrink: the status reports it
  std::string msg = "capacity exceeded on " + obj.Describe() + ": its clusters need " +
                    std::to_string(required) + " addresses but its pool holds " +
                    std::to_string(*capacity) + numbers;
  (options_.capacity_policy == CapacityPolicy::kEnforce ? out : v->warnings).push_back(msg);
}

void Engine::CheckWorkloadCluster(Operation op, const Object* old_obj, const Object& obj,
                                  Verdict* v) const {
  const auto& s = *obj.wlc;
  auto& out = v->violations;
  if (op == Operation::kUpdate && old_obj && old_obj->wlc->has_control_plane_ip) {
    const auto& before = *old_obj->wlc;
    bool same = before.control_plane_ip && s.control_plane_ip
                    ? *before.control_plane_ip == *s.control_plane_ip
                    : before.control_plane_ip_text == s.control_plane_ip_text;
    if (!same) {
      out.push_back("spec.controlPlaneIP is immutable: cannot change " +
                    before.control_plane_ip_text + " to " +
                    (s.has_control_plane_ip ? s.control_plane_ip_text : "nothing"));
    }
  }
  if (s.logical_network_name.empty()) return;
  const Object* net = Network(s.logical_network_name);
  if (!net) return;  // CheckNetworkOf says so
  // Capacity: judged on create, on a move to another network and on scale-up.
  auto capacity = PoolCapacity(*net->lnet);
  if (!capacity) return;
  int64_t need = RequiredAddresses(s);
  bool judged = op == Operation::kCreate || !old_obj ||
                old_obj->wlc->logical_network_name != s.logical_network_name ||
                need > RequiredAddresses(*old_obj->wlc);
  if (!judged) return;
  int64_t others = 0;
  auto agg = networks_.find(s.logical_network_name);
  if (agg != networks_.end()) {
    others = agg->second.required;
    const Object* stored = Find(obj.Key());
    if (stored && stored->wlc->logical_network_name == s.logical_network_name) {
      others -= RequiredAddresses(*stored->wlc);
    }
  }
  int64_t total = others + need;
  if (total < 0 || static_cast<uint64_t>(total) <= *capacity) return;
  std::string msg = "capacity exceeded on " + net->Describe() + ": " + obj.Describe() + " needs " +
                    std::to_string(need) + " addresses, its clusters together need " +
                    std::to_string(total) + " and the pool holds " + std::to_string(*capacity) +
                    " (needed " + std::to_string(total) + ", available " +
                    std::to_string(*capacity) + ")";
  (options_.capacity_policy == CapacityPolicy::kEnforce ? out : v->warnings).push_back(msg);
}

Verdict Engine::CheckNetworkOf(const Object& obj) const {
  Verdict verdict;
  auto& out = verdict.violations;
  std::string name = NetworkNameOf(obj);
  if (name.empty() || (obj.kind == Kind::kService && !obj.svc->is_load_balancer())) return verdict;
  const Object* net = Network(name);
  if (!net) {
    out.push_back((obj.kind == Kind::kService ? std::string("metadata.annotations[") +
                                                    kLogicalNetworkAnnotation + "]"
                                              : std::string("spec.logicalNetworkName")) +
                  ": LogicalNetwork " + QuoteValue(name) + " not found");
    return verdict;
  }
  const bool dhcp_unscoped = IsDhcp(*net) && net->lnet->dhcp_scope.empty();
  const Block* prefix =
      IsStatic(*net) && net->lnet->address_prefix ? &*net->lnet->address_prefix : nullptr;
  if (obj.kind == Kind::kWorkloadCluster && obj.wlc->control_plane_ip) {
    const IpAddr& cp = *obj.wlc->control_plane_ip;
    std::string side = "controlPlaneIP " + cp.ToString() + " of " + obj.Describe();
    if (prefix) {
      if (auto where = MisplacedIn(*prefix, cp)) {
        out.push_back(side + " is " + *where + " addressPrefix " + prefix->ToString() + " of " +
                      net->Describe());
      }
    }
    if (dhcp_unscoped) {
      verdict.warnings.push_back(side + " is on DHCP " + net->Describe() +
                                 ", which declares no dhcpScope: the address must be excluded "
                                 "from the DHCP server's scope");
    }
  }
  if (obj.kind == Kind::kLoadBalancerPool) {
    if (dhcp_unscoped) {
      verdict.warnings.push_back(obj.Describe() + " is on DHCP " + net->Describe() +
                                 ", which declares no dhcpScope: its addresses must be excluded "
                                 "from the DHCP server's scope");
    }
    for (const auto& b : obj.addr->addresses) {
      if (prefix && !prefix->Contains(b.block)) {
        out.push_back(SpecField(b) + " is outside addressPrefix " + prefix->ToString() + " of " +
                      net->Describe());
      }
    }
  }
  return verdict;
}

void Engine::CheckDelete(const Object& obj, Verdict* v) const {
  if (obj.kind != Kind::kLogicalNetwork) return;
  auto ann = obj.meta.annotations.find(kAllowDeleteAnnotation);
  if (ann != obj.meta.annotations.end() && ann->second == "true") return;
  auto agg = networks_.find(obj.meta.name);
  if (agg == networks_.end() || agg->second.clusters.empty()) return;
  std::vector<std::string> refs;
  for (const auto& key : agg->second.clusters) {
    if (const Object* c = Find(key)) refs.push_back(c->Ref());
  }
  std::sort(refs.begin(), refs.end());
  std::string list;
  for (const auto& r : refs) list += (list.empty() ? "" : ", ") + r;
  v->violations.push_back(obj.Describe() + " is still used by WorkloadCluster " + list +
                          "; set the annotation " + kAllowDeleteAnnotation +
                          ": \"true\" on it to delete it anyway");
}

CollisionList Engine::CollisionsOf(const std::string& key, bool only_older) const {
  CollisionList out;
  uint32_t slot = Slot(key);
  if (slot == UINT32_MAX) return out;
  const Stored& self = slots_[slot];
  std::set<std::string> seen;
  size_t found = 0;
  for (const Use& use : UsesOf(self.obj)) {
    bool went_on = ForOverlaps(self.domain, use, key, [&](const Stored& other, const Use& other_use) {
      if (!CollidesWith(self.obj, use, other.obj, other_use)) return true;
      bool older = HoldsAgainst(other.obj, self.obj);
      if (only_older && !older) return true;
      if (out.listed.size() < kMaxCollisionsListed) {
        std::string msg = CollisionText(self.obj, use, other.obj, other_use);
        if (!seen.insert(msg).second) return true;
        out.listed.push_back({other.obj.Key(), std::move(msg), older});
      }
      if (++found < kMaxCollisionsCounted) return true;
      out.more_at_least = true;
      return false;
    });
    if (!went_on) break;
  }
  out.more = found - out.listed.size();
  return out;
}

NetworkUsage Engine::UsageOf(const std::string& network_name) const {
  NetworkUsage u;
  const Object* net = Network(network_name);
  u.exists = net != nullptr;
  auto agg = networks_.find(network_name);
  if (agg != networks_.end()) {
    u.required_by_nodes = agg->second.required;
    u.clusters = static_cast<int>(agg->second.clusters.size());
  }
  if (net) u.total = PoolCapacity(*net->lnet);
  if (u.total) {
    int64_t total =
        *u.total > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(*u.total);
    u.free = total - u.required_by_nodes;
  }
  return u;
}

int64_t Engine::ClaimsIn(const std::string& network_name) const {
  const Object* net = Network(network_name);
  if (!net || !net->lnet->address_prefix) return 0;
  int64_t n = 0;
  // A claim's only uses are its addresses (Role::kClaim): its kind says it,
  // without rebuilding the use the index entry stands for.
  ForOverlappingEntries(DomainOf(*net), *net->lnet->address_prefix, Slot(net->Key()),
                        [&](const Stored& other, uint32_t) {
                          if (other.obj.kind == Kind::kIPClaim) ++n;
                          return true;
                        });
  return n;
}

uint64_t Engine::AssignedIn(const std::string& pool_key) const {
  uint32_t slot = Slot(pool_key);
  if (slot == UINT32_MAX) return 0;
  const Stored& pool = slots_[slot];
  std::set<IpAddr> held;
  for (const Use& use : UsesOf(pool.obj)) {
    if (use.role != Role::kLoadBalancer) continue;
    ForOverlaps(pool.domain, use, pool_key, [&](const Stored&, const Use& other) {
      if (other.role == Role::kServiceHeld) held.insert(other.block.first());
    });
  }
  return held.size();
}

void Engine::ForEach(Kind kind, const std::function<void(const Object&)>& fn) const {
  ForEachSlice(kind, 0, slots_.size(), fn);
}

size_t Engine::ForEachSlice(Kind kind, size_t from, size_t count,
                            const std::function<void(const Object&)>& fn) const {
  size_t end = std::min(slots_.size(), from + count);
  for (size_t i = from; i < end; ++i) {
    const Stored& s = slots_[i];
    if (s.alive && s.obj.kind == kind) fn(s.obj);
  }
  return end < slots_.size() ? end : 0;
}

}  // namespace ipguard
