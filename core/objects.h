// Typed API objects for every kind ipguard judges, parsed from JSON.
//
// Parsing never throws and never gives up on a bad field: it keeps every
// field it could read and records one message per bad field (with its full
// field path) in Object::errors. Only input that is not a Kubernetes object at
// all (not a JSON object, no kind or apiVersion, no metadata.name) makes
// ParseObject() fail.
//
// Pure value types: no I/O, thread-compatible.
#ifndef IPGUARD_CORE_OBJECTS_H_
#define IPGUARD_CORE_OBJECTS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.h"
#include "core/annotations.h"
#include "core/json_projection.h"
#include "core/kinds.h"
#include "core/shared_text.h"
#include "core/short_string.h"
#include "core/status.h"

namespace ipguard {

struct Meta {
  std::string name;
  SharedText ns;  // empty for cluster-scoped kinds; namespaces repeat from object to object
  ShortString uid;
  ShortString resource_version;
  ShortString creation_timestamp;  // RFC 3339 as the API server writes it
  int64_t generation = 0;
  Annotations annotations;
};

// The spec-relative label messages use for an address field, such as
// "ipPools[0]", "status.loadBalancer.ingress[1].ip" or
// "annotations[metallb.io/loadBalancerIPs]". Every label ipguard makes is one
// of a few fixed names, with an index for list items, so a label is a pointer
// and an int that never allocate: 100k stored Services share the text.
class FieldLabel {
 public:
  FieldLabel() = default;
  // `name` must have static storage duration; a '#' in it stands for `index`.
  constexpr FieldLabel(const char* name, int32_t index = -1)  // NOLINT: labels read as literals
      : name_(name), index_(index) {}
  std::string str() const;
  // Appends str() to `out`, without a string of its own (messages by the
  // million, in ipguard check's worst cases).
  void AppendTo(std::string* out) const;
  friend bool operator==(const FieldLabel& a, const FieldLabel& b);

 private:
  const char* name_ = "";
  int32_t index_ = -1;
};

// A block together with the label of the field it came from.
struct LabeledBlock {
  FieldLabel field;
  Block block;
};

struct LogicalNetworkSpec {
  enum class Method : uint8_t { kUnset, kStatic, kDhcp, kInvalid };
  std::string vm_switch_name;
  Method method = Method::kUnset;
  // Presence of each field as written, valid or not, for the
  // required/forbidden rules.
  bool has_address_prefix = false, has_gateway = false, has_dns = false, has_ip_pools = false,
       has_dhcp_scope = false;
  std::optional<Block> address_prefix;
  std::optional<IpAddr> gateway;
  std::vector<IpAddr> dns_servers;  // the ones that parsed
  size_t dns_count = 0;             // entries as written
  std::vector<LabeledBlock> ip_pools;    // "ipPools[i]", start-end
  size_t ip_pool_count = 0;
  std::vector<LabeledBlock> dhcp_scope;  // "dhcpScope[i]"
  int vlan_id = 0;
};

struct NodePool {
  std::string name;
  int64_t count = 0;
};

struct WorkloadClusterSpec {
  std::string logical_network_name;
  std::optional<IpAddr> control_plane_ip;
  std::string control_plane_ip_text;  // as written, for immutability checks
  bool has_control_plane_ip = false;
  int64_t control_plane_count = 1;
  std::vector<NodePool> node_pools;
  int64_t upgrade_surge = 1;
};

// LoadBalancerPool, IPReservation and MetalLB IPAddressPool.
struct AddressSpec {
  std::vector<LabeledBlock> addresses;  // "addresses[i]"
  size_t address_count = 0;             // entries as written
  std::string logical_network_name;     // LoadBalancerPool only
  std::optional<int> vlan_id;           // IPReservation only
  std::string description;
};

// Who asked for a claimed address: IPClaim spec.holder.
// The fields that repeat from claim to claim are SharedText: 100k claims
// name a few clusters, kinds and namespaces.
struct ClaimHolder {
  SharedText cluster;  // empty for the management cluster, else the agent's --cluster-name
  SharedText api_version;
  SharedText kind;
  SharedText ns;
  std::string name;
  ShortString uid;
};

// "Service shop/web", "WorkloadCluster team-a/prod in cluster edge-1": who
// holds a claim, for messages.
void AppendHolder(std::string* out, const ClaimHolder& holder);

// IPClaim: one single address in one domain (or every domain), held by one
// object.
struct ClaimSpec {
  std::vector<LabeledBlock> address;  // the one "address", when it parses as a single address
  std::optional<int> vlan_id;
  ClaimHolder holder;
};

// The name an IPClaim of `address` must have: "vlan<N>-<address>", or
// "any-<address>" for every domain, with an IPv6 address's ':' written as
// '-' ("vlan0-fd00--1"), so that the API server's uniqueness of names
// decides between two claims of one address in one domain.
std::string ClaimName(std::optional<int> vlan_id, const IpAddr& address);

// The texts of a Service that repeat from Service to Service (its type,
// a port's protocol, a sharing key two Services write) are SharedText.
// The defaults are copies of one SharedText each, made without a lookup.
inline const SharedText& DefaultProtocol() {
  static const SharedText tcp("TCP");
  return tcp;
}
inline const SharedText& DefaultServiceType() {
  static const SharedText cluster_ip("ClusterIP");
  return cluster_ip;
}

struct ServicePort {
  int64_t port = 0;
  SharedText protocol = DefaultProtocol();
};

struct ServiceSpec {
  SharedText type = DefaultServiceType();
  std::vector<LabeledBlock> requested;  // loadBalancerIP and the annotations
  std::vector<LabeledBlock> held;       // status.loadBalancer.ingress[i].ip
  SharedText sharing_key;               // empty: no sharing
  std::vector<ServicePort> ports;
  bool is_load_balancer() const { return type == "LoadBalancer"; }
};

// A value held on the heap only once it is written: an Object carries the
// spec of one kind, and boxing the others keeps 100k stored Services small
// (an empty Box is one pointer; reading one gives an empty T). Copies are
// deep, so a Box behaves as the T it holds.
template <typename T>
class Box {
 public:
  Box() = default;
  Box(const Box& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
  Box& operator=(const Box& o) {
    p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
    return *this;
  }
  Box(Box&&) noexcept = default;
  Box& operator=(Box&&) noexcept = default;

  const T& operator*() const { return p_ ? *p_ : Empty(); }
  const T* operator->() const { return &**this; }
  T& operator*() {
    if (!p_) p_ = std::make_unique<T>();
    return *p_;
  }
  T* operator->() { return &**this; }

 private:
  static const T& Empty() {
    static const T empty;
    return empty;
  }
  std::unique_ptr<T> p_;
};

// The messages of the fields of an object that could not be read: a
// vector on the heap only once there is one (8 bytes in every stored object,
// which almost never has any, where an empty vector took 24). Reads as a
// vector of strings.
class ErrorList {
 public:
  using value_type = std::string;
  using const_iterator = std::vector<std::string>::const_iterator;
  using iterator = const_iterator;

  void push_back(std::string message) { list_->push_back(std::move(message)); }
  bool empty() const { return list_->empty(); }
  size_t size() const { return list_->size(); }
  const std::string& operator[](size_t i) const { return (*list_)[i]; }
  const_iterator begin() const { return list_->begin(); }
  const_iterator end() const { return list_->end(); }
  operator const std::vector<std::string>&() const { return *list_; }  // NOLINT: reads as the list
  friend bool operator==(const ErrorList& a, const std::vector<std::string>& b) {
    return *a.list_ == b;
  }

 private:
  Box<std::vector<std::string>> list_;
};

struct Object {
  Kind kind = Kind::kLogicalNetwork;
  Meta meta;
  Box<LogicalNetworkSpec> lnet;
  Box<WorkloadClusterSpec> wlc;
  Box<AddressSpec> addr;
  Box<ServiceSpec> svc;
  Box<ClaimSpec> claim;
  // One message per field that could not be read, with its full path.
  ErrorList errors;

  // The apiVersion of its kind: ParseObject takes an object only in the
  // version its kind is served in, so no object keeps a copy of it.
  std::string ApiVersion() const;
  // "name" for cluster-scoped kinds, "namespace/name" otherwise.
  std::string Ref() const;
  // "WorkloadCluster team-a/prod".
  std::string Describe() const;
  // Appends Describe() to `out`.
  void AppendDescription(std::string* out) const;
  // Unique key across kinds: "Kind/namespace/name".
  std::string Key() const;
};

// Returns the typed object, or an error when `json` is not a Kubernetes
// object of a kind ipguard knows. `default_namespace` fills metadata.namespace
// of namespaced kinds when it is missing (kubectl's behaviour).
Result<Object> ParseObject(const nlohmann::json& json, const std::string& default_namespace = "default");

// A Service read straight from JSON text, as ParseObject would read it from
// the parsed document (with `default_namespace` for a missing or empty
// metadata.namespace), without building the document: the webhook's hot path.
// nullopt when the text holds anything this reader leaves to ParseObject:
// text it does not take as JSON (see JsonScanner), another kind, a missing
// name, a null or a value of a type ParseObject would report, a field it
// reads given twice, or an address ParseObject would report as invalid.
std::optional<Object> ParseServiceText(std::string_view text, const std::string& default_namespace);

// The paths of a Service that ParseServiceText reads (and declines when one
// is given twice): a key repeated there is a violation of the Service,
// while one repeated where no rule looks (spec.selector) changes nothing.
const JsonProjection& ServiceReadProjection();

// Every path of an object that ParseObject reads (and metadata.generateName,
// which names an object the API server has yet to name), for ParseProjected:
// ParseObject gives the same result on the projected document as on the
// whole one. The parts of spec and status are the registry's (KindInfo::reads
// of every kind); the annotations are kept whole, since ParseObject copies
// and checks every one. tests/unit/json_projection_test replays every
// fixture both ways.
const JsonProjection& ObjectProjection();

// What the manager's informer caches keep of an object of `kind` (the
// store's transform): apiVersion, kind, the metadata ParseObject reads with
// only the annotations the kind's entry lists, the parts of spec and status
// its entry says ParseObject reads, and the whole status of a kind whose
// status ipguard writes. ParseObject reads the same from it as from the
// whole object, but for the annotations no rule reads; 100k Services fit in a
// small cache this way.
nlohmann::json TrimObject(Kind kind, const nlohmann::json& obj);

// What an informer keeps of an object as it reads a list or a watch event:
// apiVersion, kind, the metadata that names it (name, namespace, uid,
// resourceVersion, generation, creationTimestamp, deletionTimestamp, labels,
// annotations), spec and status whole. managedFields and the rest are
// skipped without being built.
const JsonProjection& CacheProjection();

// A watch event ({"type": ..., "object": ...}) with its object as
// CacheProjection keeps it, and the code of an ERROR event's Status.
const JsonProjection& WatchEventProjection();

// The fields a kind declares under spec, as "spec.ipPools.start" (an item's
// fields follow the list's name); empty for kinds ipguard does not define.
// ParseObject reports any other key as "unknown field ...".
std::vector<std::string> DeclaredSpecFields(Kind k);

// Addresses a cluster needs from its network's pool.
int64_t RequiredAddresses(const WorkloadClusterSpec& spec);

std::string ObjectKey(Kind kind, const std::string& ns, const std::string& name);

// The name the webhook gives an object under review that the API server has
// yet to name: "<generateName>(generated)", or "(unnamed)". No name rule
// applies to it.
std::string NameToCome(const std::string& generate_name);
bool IsNameToCome(const std::string& name);

}  // namespace ipguard

#endif  // IPGUARD_CORE_OBJECTS_H_
