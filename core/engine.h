// Engine: the rules of API.md over a set of stored objects.
//
// The engine holds the objects the cluster has (fed by the informers, or by
// `ipguard check` one manifest at a time), keeps every address they use in a
// domain-scoped Index plus per-network aggregates, and judges a write
// (Review) or reports what a stored object collides with (CollisionsOf).
// The webhook, the controller and the CLI all ask this one class, so they
// can never disagree.
//
// Pure: no I/O, threads, clock or logging. Thread-compatible: concurrent
// const calls are safe; Upsert/Remove need exclusion from everything else.
#ifndef IPGUARD_CORE_ENGINE_H_
#define IPGUARD_CORE_ENGINE_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/index.h"
#include "core/objects.h"

namespace ipguard {

enum class Platform : uint8_t { kAzureLocal, kVmware };
enum class CapacityPolicy : uint8_t { kEnforce, kWarn };
enum class Operation : uint8_t { kCreate, kUpdate, kDelete };

std::optional<Platform> ParsePlatform(const std::string& s);
std::optional<CapacityPolicy> ParseCapacityPolicy(const std::string& s);
std::optional<Operation> ParseOperation(const std::string& s);

struct Options {
  Platform platform = Platform::kAzureLocal;
  CapacityPolicy capacity_policy = CapacityPolicy::kEnforce;
  // The cluster whose objects this engine holds besides the plan: empty for
  // the management cluster (the manager), a workload cluster's name for its
  // agent. A claim is "of this cluster" when its holder.cluster equals it:
  // only then can its holder be found here, and only then is it its own.
  // (WorkloadClusters live in the management cluster whichever engine this
  // is: a claim of one has holder.cluster empty everywhere.)
  std::string cluster;
  // "namespace/name" of the WorkloadCluster of the workload cluster this
  // engine serves (the agent's --cluster-ref): a Service without the
  // ipguard.io/logical-network annotation lives in the domain of that
  // cluster's LogicalNetwork, and in every domain while the WorkloadCluster
  // is not stored. Empty: such Services live in every domain.
  std::string cluster_ref;
};

// How many collisions one object reports (then "... and N more"), and how
// far the rest are counted (past it: "... and at least N more"), so that no
// input makes the output, or the work of judging, grow with the square of
// the objects that share an address.
inline constexpr size_t kMaxCollisionsListed = 20;
inline constexpr size_t kMaxCollisionsCounted = 100;

// "... and 5 more", "... and at least 980 more".
std::string MoreCollisions(size_t more, bool at_least);

struct Verdict {
  std::vector<std::string> violations;
  std::vector<std::string> warnings;
  // For the violations that are collisions: (index in `violations`, key of
  // the object on the other side), in index order.
  std::vector<std::pair<size_t, std::string>> others;
  // Collisions found but not listed (the "... and N more" line counts them).
  size_t unlisted = 0;
  bool allowed() const { return violations.empty(); }
  // Puts `first` ahead of the violations found so far (what was read but is
  // not clean, such as a key written twice, before what the rules found),
  // keeping `others` pointing at the same violations.
  void PutFirst(std::vector<std::string> first);
  // Every violation, joined with "; ".
  std::string Message() const;
  // Violations including the collisions not listed.
  size_t ViolationCount() const {
    return violations.size() + unlisted - (unlisted > 0 ? 1 : 0);
  }
};

// The rules on an object's own fields: everything that needs nothing but the
// object and the options (required and forbidden fields, values, the
// addresses of a network against its own prefix, the platform). Includes the
// parse errors of the object. The webhook (through Engine::Review), `ipguard
// check` and the controller (Ready=False, reason InvalidSpec) all ask this.
Verdict Validate(const Object& obj, const Options& options);

// An IPClaim that an object needs (Engine::ClaimsOf).
struct WantedClaim {
  std::string name;  // ClaimName(vlan_id, address)
  FieldLabel field;  // the holder's field that asks for the address
  IpAddr address;
  std::optional<int> vlan_id;
  ClaimHolder holder;
};

// The IPClaim object to create for `claim`, as the API server takes it.
nlohmann::json ClaimObject(const WantedClaim& claim);

// Whether two holders are the same object (cluster, kind, namespace and
// name): a claim that exists for the same holder is its own (a retry, an
// update), one for another holder is a collision.
bool SameHolder(const ClaimHolder& a, const ClaimHolder& b);

// What an address is used for; decides which uses collide (see Collides()).
enum class Role : uint8_t {
  kNetworkPool,   // LogicalNetwork ipPools
  kDhcpScope,     // LogicalNetwork dhcpScope
  kGateway,       // LogicalNetwork gateway
  kDnsServer,     // LogicalNetwork dnsServers
  kNetworkEdge,   // network and broadcast address of a Static network's addressPrefix
  kControlPlane,  // WorkloadCluster controlPlaneIP
  kLoadBalancer,  // LoadBalancerPool and MetalLB IPAddressPool addresses
  kReservation,   // IPReservation addresses
  kClaim,         // IPClaim address
  kServiceAsked,  // Service loadBalancerIP and address annotations
  kServiceHeld,   // Service status.loadBalancer.ingress
};

// Whether a use of role `a` may not overlap a use of role `b` of another
// object (Service against Service is decided by sharing keys instead).
bool Collides(Role a, Role b);

struct Use {
  Role role;
  FieldLabel field;  // spec-relative, e.g. "ipPools[0]"
  Block block;
};

// One collision of a stored object with another, seen from the first.
struct Collision {
  std::string other_key;
  std::string message;
  // True when the other object is older (creationTimestamp, then name), so
  // the first one is the one that should give way.
  bool other_is_older = false;
};

// At most kMaxCollisionsListed collisions, and how many more were found.
struct CollisionList {
  std::vector<Collision> listed;
  size_t more = 0;
  bool more_at_least = false;  // counting stopped at kMaxCollisionsCounted
  bool empty() const { return listed.empty(); }
};

// Address accounting of one LogicalNetwork.
struct NetworkUsage {
  bool exists = false;
  // Addresses in ipPools (Static) or dhcpScope (DHCP with a scope); unset
  // when the network has no bounded pool.
  std::optional<uint64_t> total;
  int64_t required_by_nodes = 0;
  std::optional<int64_t> free;  // total - required, may be negative
  int clusters = 0;
};

class Engine {
 public:
  explicit Engine(Options options = {});
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Options& options() const { return options_; }

  // Stores or replaces an object as the cluster has it. Never judges. The
  // stored copy keeps only the annotations the rules read from metadata
  // (AnnotationUse::kReadFromMetadata in its kind's KindInfo); everything
  // else of `obj` is kept as given.
  void Upsert(Object obj);
  // Upsert for an object the webhook admitted and no watch has shown yet.
  // It is judged against like any stored object, but its addresses go to a
  // small index of their own: holding an object then costs an insert into a
  // few entries, never a share of merging the large index (a millisecond at
  // 100k blocks, under the lock every judgement waits on). The next Upsert
  // of the key (the watch showing it) or Remove takes it out of there.
  void UpsertPending(Object obj);
  // Removes by key; false when absent.
  bool Remove(const std::string& key);
  const Object* Find(const std::string& key) const;
  size_t size() const { return key_count_; }

  // Judges a write against the stored objects. For kCreate and kUpdate `obj`
  // is the new object and `old_obj` the stored one (nullptr on create); for
  // kDelete `old_obj` is the object being deleted and `obj` is ignored.
  // The stored version of the same object never collides with itself.
  Verdict Review(Operation op, const Object* old_obj, const Object* obj) const;

  // Collisions between a stored object and the other stored objects, in both
  // directions (what it overlaps, and what overlaps it), each message
  // written from the side of the object named by `key`.
  // With only_older, only the collisions with the objects that hold against
  // it (HoldsAgainst: claims, then older objects; the ones the
  // object must give way to). Listed up to kMaxCollisionsListed.
  CollisionList CollisionsOf(const std::string& key, bool only_older = false) const;

  // The rules that read the LogicalNetwork an object names: the network
  // missing, a control-plane IP or a pool's blocks against its prefix, a DHCP
  // network without a scope (a warning). Review asks it; so does the
  // controller, for objects that got in without a review.
  Verdict CheckNetworkOf(const Object& obj) const;

  // What a network's pool holds and its clusters need: a lookup, whatever
  // the number of objects in its prefix (every cluster's status reads it).
  NetworkUsage UsageOf(const std::string& network_name) const;
  // IPClaims inside the network's prefix, in its domain or in every domain
  // (status.claims): one walk of the index entries inside the prefix.
  int64_t ClaimsIn(const std::string& network_name) const;
  // Service addresses held (status) inside the blocks of a stored pool.
  uint64_t AssignedIn(const std::string& pool_key) const;
  // The domain an object lives in, given the networks stored now.
  Domain DomainOf(const Object& obj) const;
  // Address uses of an object (Services: asked-for and held).
  std::vector<Use> UsesOf(const Object& obj) const;
  // The IPClaims an object needs once admitted: one for each single address
  // it asks for (a WorkloadCluster's controlPlaneIP, each address a
  // LoadBalancer Service asks for), in its domain given the networks stored
  // now, held by it in `cluster` (empty: Options::cluster, the cluster this
  // engine serves). Nothing for other kinds, and nothing twice.
  std::vector<WantedClaim> ClaimsOf(const Object& obj, const std::string& cluster = "") const;
  // Whether the Service `obj` may share an address with the claim holder
  // `holder`: a stored Service of this cluster with the same sharing key and
  // no port in common. Such a Service rides on the holder's claim instead
  // of writing one of its own.
  bool SharesWith(const Object& obj, const ClaimHolder& holder) const;
  // The claims of ClaimsOf() that are not stored already as the holder's own
  // or as that of a holder `obj` may share the address with.
  std::vector<WantedClaim> MissingClaims(const Object& obj, const std::string& cluster = "") const;
  // The key a claim's holder has in this engine when ipguard claims for it:
  // a WorkloadCluster (of the management cluster) or a Service of this
  // engine's cluster (Options::cluster).
  // nullopt for a holder of any other kind (a claim written by hand to hold
  // an address) or of another cluster (that cluster's agent sees it).
  std::optional<std::string> HolderKey(const ClaimHolder& holder) const;
  // The holder of a claim of this cluster when it is stored and asks for the
  // claim's address in the claim's domain; null otherwise.
  const Object* StandingHolder(const Object& claim) const;

  // Visits stored objects of one kind, in no particular order.
  void ForEach(Kind kind, const std::function<void(const Object&)>& fn) const;
  // ForEach over one slice of the store, `count` slots from `from`: for a
  // long walk made a slice at a time, each under a lock of its own. Returns
  // where the next slice begins, or 0 once the walk is through. Objects
  // stored or removed between slices may be visited or not.
  size_t ForEachSlice(Kind kind, size_t from, size_t count,
                      const std::function<void(const Object&)>& fn) const;

  // Bytes of the interval index alone, and its block count.
  size_t IndexMemoryBytes() const { return index_.MemoryBytes() + pending_index_.MemoryBytes(); }
  size_t IndexSize() const { return index_.size() + pending_index_.size(); }
  // Blocks of the objects stored with UpsertPending.
  size_t PendingIndexSize() const { return pending_index_.size(); }

  // Keys of the stored objects whose status may depend on the object stored
  // under `key`: every object with an address overlapping one of its
  // addresses (whatever the roles), the network it names, and, for a
  // LogicalNetwork, everything that names it. Empty when `key` is absent.
  // The controller re-reconciles these when `key` changes.
  std::vector<std::string> Neighbors(const std::string& key) const;
  // Oldest first: creationTimestamp, then namespace/name.
  static bool IsOlder(const Object& a, const Object& b);
  // Which side of a collision keeps its address (the other is reported
  // Conflicting): an IPClaim against anything that is not one (the API
  // server decided who holds the address, whatever came first), else the
  // older (IsOlder).
  static bool HoldsAgainst(const Object& a, const Object& b);

 private:
  // The index entries of one stored object, in UsesOf order: two in place
  // (most objects have one or two uses), more on the heap. 16 bytes, where
  // a vector took 24 and a heap block of its own.
  class EntryList {
   public:
    EntryList() : inline_{0, 0} {}
    EntryList(const EntryList&) = delete;
    EntryList& operator=(const EntryList&) = delete;
    ~EntryList() {
      if (cap_ > kInline) delete[] heap_;
    }
    size_t size() const { return size_; }
    uint32_t operator[](size_t i) const { return data()[i]; }
    const uint32_t* begin() const { return data(); }
    const uint32_t* end() const { return data() + size_; }
    void clear() { size_ = 0; }
    void push_back(uint32_t e) {
      if (size_ == cap_) {
        uint32_t* grown = new uint32_t[cap_ * 2];
        std::copy(begin(), end(), grown);
        if (cap_ > kInline) delete[] heap_;
        heap_ = grown;
        cap_ *= 2;
      }
      (cap_ > kInline ? heap_ : inline_)[size_++] = e;
    }

   private:
    static constexpr uint32_t kInline = 2;
    const uint32_t* data() const { return cap_ > kInline ? heap_ : inline_; }
    uint32_t size_ = 0, cap_ = kInline;
    union {
      uint32_t inline_[kInline];
      uint32_t* heap_;
    };
  };
  struct Stored {
    Object obj;
    Domain domain = kEveryDomain;
    EntryList entries;  // index entry per use, in UsesOf order
    bool alive = false;
    bool pending = false;  // its entries are in pending_index_
  };
  struct NetworkAggregate {
    int64_t required = 0;
    std::unordered_set<std::string> clusters;    // keys of WorkloadClusters
    std::unordered_set<std::string> dependents;  // everything that names it
  };

  uint32_t Slot(std::string_view key) const;
  // Where `key` sits in the key table; SIZE_MAX when it is not stored.
  size_t KeyBucket(std::string_view key) const;
  // The key table: the slot of each stored key by open addressing (linear
  // probing, at most half full), each slot's key read from its object, so
  // that no key is kept twice (an unordered_map of 100k keys took 126 bytes
  // an object).
  static uint64_t KeyHash(std::string_view key);
  uint64_t SlotHash(uint32_t slot) const;
  bool SlotHasKey(uint32_t slot, std::string_view key) const;
  void KeyTableInsert(uint32_t slot);
  // Empties a bucket found by KeyBucket (the key table is not changed in
  // between).
  void KeyTableErase(size_t bucket);
  void Store(Object obj, bool pending);
  Index& IndexOf(const Stored& s) { return s.pending ? pending_index_ : index_; }
  void IndexSlot(uint32_t slot);
  void UnindexSlot(uint32_t slot);
  void ReindexDependents(const std::string& network_name);
  // Removes the object at `key`; `replacing`: Store puts its new version
  // in right after.
  bool Erase(const std::string& key, bool replacing);
  // Moves every Service without its own network annotation to the network
  // `name` (Options::cluster_ref's), re-indexing those whose domain changes.
  void SetServiceNetwork(const std::string& name);
  const Object* Network(const std::string& name) const;
  std::string NetworkNameOf(const Object& obj) const;

  // Calls fn(stored, entry) for every index entry overlapping `block` in
  // `domain` (a block of `stored`, whose slot is not `self`), while fn
  // returns true; false when fn stopped it. For callers that need the object,
  // not the use: the use is not looked up.
  template <typename Fn>
  bool ForOverlappingEntries(Domain domain, const Block& block, uint32_t self, Fn&& fn) const;
  // As ForOverlappingEntries, with fn(stored, use) given the use itself, for
  // every stored use overlapping `use` whose object is not `self_key`.
  template <typename Fn>
  bool ForOverlaps(Domain domain, const Use& use, const std::string& self_key, Fn&& fn) const;
  // Whether `use` of `obj` may not overlap `other_use` of `other` (roles,
  // then sharing keys between Services). A stored claim whose holder stands
  // for it (StandingHolder) is not a side of its own: its holder is.
  bool CollidesWith(const Object& obj, const Use& use, const Object& other,
                    const Use& other_use) const;
  static std::string CollisionText(const Object& obj, const Use& use, const Object& other,
                                   const Use& other_use);
  void CheckLogicalNetwork(Operation op, const Object* old_obj, const Object& obj,
                           Verdict* v) const;
  void CheckWorkloadCluster(Operation op, const Object* old_obj, const Object& obj,
                            Verdict* v) const;
  void CheckDelete(const Object& obj, Verdict* v) const;

  Options options_;
  Index index_;
  Index pending_index_;  // the blocks of objects stored by UpsertPending
  // A deque: growing it never copies the stored objects (a vector would
  // hold two copies of 100k objects at once while it reallocates).
  std::deque<Stored> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> key_table_;  // UINT32_MAX: empty; the size is 0 or a power of two
  size_t key_count_ = 0;
  std::unordered_map<std::string, NetworkAggregate> networks_;
  size_t load_balancer_pools_ = 0;  // LoadBalancerPools and IPAddressPools stored
  // The network of Services without the annotation (Options::cluster_ref).
  std::string service_network_;
};

// Addresses in a network's bounded pool: ipPools for Static, dhcpScope for
// DHCP with a scope, unset otherwise.
std::optional<uint64_t> PoolCapacity(const LogicalNetworkSpec& spec);
// Addresses in a list of blocks, saturating at UINT64_MAX.
uint64_t AddressCount(const std::vector<LabeledBlock>& blocks);

}  // namespace ipguard

#endif  // IPGUARD_CORE_ENGINE_H_
