#include "core/objects.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/json_scan.h"
#include "core/json_util.h"

namespace ipguard {
namespace {

using nlohmann::json;

// The metadata ParseObject reads besides the annotations: what names an
// object and tells one version of it from another.
const char* const kIdentity[] = {
    "name", "namespace", "uid", "resourceVersion", "creationTimestamp", "generation"};

// Reads fields of one JSON object, recording an error per bad field.
class Reader {
 public:
  explicit Reader(ErrorList* errors) : errors_(errors) {}

  void Error(const std::string& path, const std::string& what) { errors_->push_back(path + " " + what); }
  void Raw(std::string message) { errors_->push_back(std::move(message)); }

  // Returns the member or nullptr when absent (null counts as absent).
  const json* Member(const json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
  }

  // Into a std::string, a ShortString or a SharedText, from the document's
  // own string (no copy on the way).
  template <typename Text>
  bool String(const json& obj, const char* key, const std::string& path, Text* out) {
    const json* v = Member(obj, key);
    if (!v) return false;
    if (!v->is_string()) {
      Error(path, "must be a string, not " + TypeName(*v));
      return false;
    }
    *out = v->get_ref<const std::string&>();
    return true;
  }

  bool Int(const json& obj, const char* key, const std::string& path, int64_t* out) {
    const json* v = Member(obj, key);
    if (!v) return false;
    if (!v->is_number_integer()) {
      Error(path, "must be an integer, not " + TypeName(*v));
      return false;
    }
    *out = v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX ? INT64_MAX : v->get<int64_t>();
    return true;
  }

  // A list member; nullptr (and an error) when it is not a list.
  const json* List(const json& obj, const char* key, const std::string& path) {
    const json* v = Member(obj, key);
    if (!v) return nullptr;
    if (!v->is_array()) {
      Error(path, "must be a list, not " + TypeName(*v));
      return nullptr;
    }
    return v;
  }

  std::optional<IpAddr> Ip(const json& v, const std::string& path) {
    return Text(v, path, "a valid IP address", ParseIp);
  }

  std::optional<Block> AnyBlock(const json& v, const std::string& path) {
    return Text(v, path, "a valid address block", ParseBlock);
  }

  // A list of {start, end} as a range.
  // `label` has static storage, with '#' for the index ("ipPools[#]").
  void Ranges(const json& obj, const char* key, const std::string& path, const char* label,
              std::vector<LabeledBlock>* out, size_t* count) {
    const json* list = List(obj, key, path);
    if (!list) return;
    if (count) *count = list->size();
    for (size_t i = 0; i < list->size(); ++i) {
      const json& item = (*list)[i];
      std::string p = path + "[" + std::to_string(i) + "]";
      if (!item.is_object()) {
        Error(p, "must be an object with start and end, not " + TypeName(item));
        continue;
      }
      const json* s = Member(item, "start");
      const json* e = Member(item, "end");
      if (!s) Error(p + ".start", "is required");
      if (!e) Error(p + ".end", "is required");
      if (!s || !e) continue;
      auto start = Ip(*s, p + ".start");
      auto end = Ip(*e, p + ".end");
      if (!start || !end) continue;
      auto r = MakeRange(*start, *end);
      if (!r.ok()) {
        Error(p, start->ToString() + "-" + end->ToString() + " is not a valid range: " + r.error());
        continue;
      }
      out->push_back({{label, static_cast<int32_t>(i)}, *r});
    }
  }

 private:
  // A string field read by `parse`, or an error naming the path and the text.
  template <typename Parse>
  auto Text(const json& v, const std::string& path, const char* what, Parse parse)
      -> std::optional<std::decay_t<decltype(parse(std::string_view()).value())>> {
    if (!v.is_string()) {
      Error(path, "must be a string, not " + TypeName(v));
      return std::nullopt;
    }
    const std::string& text = v.get_ref<const std::string&>();
    auto parsed = parse(text);
    if (!parsed.ok()) {
      Error(path, QuoteValue(text) + " is not " + what + ": " + parsed.error());
      return std::nullopt;
    }
    return *parsed;
  }

  ErrorList* errors_;
};

// The fields each kind declares under spec, as its CRD does (a unit test
// holds the two together). A key's tree describes its value when that is an
// object, or its items when it is a list of objects; empty for scalars.
struct FieldTree {
  std::map<std::string, FieldTree> keys;
};

FieldTree Tree(std::initializer_list<std::pair<const std::string, FieldTree>> keys) {
  FieldTree t;
  t.keys = keys;
  return t;
}

const FieldTree* SpecTree(Kind k) {
  static const FieldTree kRange = Tree({{"start", {}}, {"end", {}}});
  static const FieldTree kNetwork =
      Tree({{"vmSwitchName", {}}, {"ipAllocationMethod", {}}, {"addressPrefix", {}},
            {"gateway", {}}, {"dnsServers", {}}, {"ipPools", kRange}, {"vlanId", {}},
            {"dhcpScope", kRange}});
  static const FieldTree kCluster =
      Tree({{"logicalNetworkName", {}}, {"controlPlaneIP", {}},
            {"controlPlane", Tree({{"count", {}}})},
            {"nodePools", Tree({{"name", {}}, {"count", {}}})}, {"upgradeSurge", {}}});
  static const FieldTree kPool = Tree({{"addresses", {}}, {"logicalNetworkName", {}}});
  static const FieldTree kReservation =
      Tree({{"addresses", {}}, {"vlanId", {}}, {"description", {}}});
  static const FieldTree kClaim = Tree(
      {{"address", {}},
       {"vlanId", {}},
       {"holder", Tree({{"cluster", {}}, {"apiVersion", {}}, {"kind", {}}, {"namespace", {}},
                        {"name", {}}, {"uid", {}}})}});
  switch (k) {
    case Kind::kLogicalNetwork: return &kNetwork;
    case Kind::kWorkloadCluster: return &kCluster;
    case Kind::kLoadBalancerPool: return &kPool;
    case Kind::kIPReservation: return &kReservation;
    case Kind::kIPClaim: return &kClaim;
    default: return nullptr;  // Services and MetalLB's pools are not ipguard's to define
  }
}

// Edit distance, for "did you mean": small strings only.
size_t Distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                  std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (same ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Whether `a` begins `b` (ignoring case) and is long enough to be a name cut
// short: logicalNetwork for logicalNetworkName.
bool CutShortOf(const std::string& a, const std::string& b) {
  if (a.size() < 4 || a.size() >= b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// An error per key of `value` that `tree` does not declare, with the closest
// declared key when one is near (a different case, a letter or two off, or
// cut short or run on).
void CheckDeclared(const json& value, const FieldTree& tree, const std::string& path, Reader& r) {
  if (tree.keys.empty()) return;
  if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      if (value[i].is_object()) CheckDeclared(value[i], tree, path + "[" + std::to_string(i) + "]", r);
    }
    return;
  }
  if (!value.is_object()) return;
  for (auto it = value.begin(); it != value.end(); ++it) {
    auto known = tree.keys.find(it.key());
    if (known != tree.keys.end()) {
      CheckDeclared(it.value(), known->second, path + "." + it.key(), r);
      continue;
    }
    std::string best;
    size_t best_distance = 3;
    for (const auto& [name, sub] : tree.keys) {
      size_t d = CutShortOf(it.key(), name) || CutShortOf(name, it.key())
                     ? 1
                     : Distance(it.key(), name);
      if (d < best_distance) {
        best_distance = d;
        best = name;
      }
    }
    std::string msg = "unknown field " + path + "." + CutUtf8(it.key(), 253);
    if (!best.empty()) msg += " (did you mean " + path + "." + best + "?)";
    r.Raw(msg);
  }
}

void ParseLogicalNetwork(const json& spec, Reader& r, LogicalNetworkSpec* out) {
  r.String(spec, "vmSwitchName", "spec.vmSwitchName", &out->vm_switch_name);
  std::string method;
  if (r.String(spec, "ipAllocationMethod", "spec.ipAllocationMethod", &method)) {
    if (method == "Static") {
      out->method = LogicalNetworkSpec::Method::kStatic;
    } else if (method == "DHCP") {
      out->method = LogicalNetworkSpec::Method::kDhcp;
    } else {
      out->method = LogicalNetworkSpec::Method::kInvalid;
      r.Error("spec.ipAllocationMethod", QuoteValue(method) + " must be Static or DHCP");
    }
  }
  if (const json* v = r.Member(spec, "addressPrefix")) {
    out->has_address_prefix = true;
    if (!v->is_string()) {
      r.Error("spec.addressPrefix", "must be a string, not " + TypeName(*v));
    } else {
      auto b = ParseCidr(v->get<std::string>());
      if (b.ok()) {
        out->address_prefix = *b;
      } else {
        r.Error("spec.addressPrefix",
                QuoteValue(v->get<std::string>()) + " is not a valid CIDR: " + b.error());
      }
    }
  }
  if (const json* v = r.Member(spec, "gateway")) {
    out->has_gateway = true;
    out->gateway = r.Ip(*v, "spec.gateway");
  }
  if (r.Member(spec, "dnsServers")) {
    out->has_dns = true;
    if (const json* list = r.List(spec, "dnsServers", "spec.dnsServers")) {
      out->dns_count = list->size();
      for (size_t i = 0; i < list->size(); ++i) {
        if (auto ip = r.Ip((*list)[i], "spec.dnsServers[" + std::to_string(i) + "]")) {
          out->dns_servers.push_back(*ip);
        }
      }
    }
  }
  out->has_ip_pools = r.Member(spec, "ipPools") != nullptr;
  r.Ranges(spec, "ipPools", "spec.ipPools", "ipPools[#]", &out->ip_pools, &out->ip_pool_count);
  out->has_dhcp_scope = r.Member(spec, "dhcpScope") != nullptr;
  r.Ranges(spec, "dhcpScope", "spec.dhcpScope", "dhcpScope[#]", &out->dhcp_scope, nullptr);
  int64_t vlan = 0;
  if (r.Int(spec, "vlanId", "spec.vlanId", &vlan)) {
    if (vlan < 0 || vlan > 4094) {
      r.Error("spec.vlanId", std::to_string(vlan) + " must be between 0 and 4094");
    } else {
      out->vlan_id = static_cast<int>(vlan);
    }
  }
}

void ParseWorkloadCluster(const json& spec, Reader& r, WorkloadClusterSpec* out) {
  r.String(spec, "logicalNetworkName", "spec.logicalNetworkName", &out->logical_network_name);
  if (const json* v = r.Member(spec, "controlPlaneIP")) {
    out->has_control_plane_ip = true;
    if (v->is_string()) out->control_plane_ip_text = v->get<std::string>();
    out->control_plane_ip = r.Ip(*v, "spec.controlPlaneIP");
  }
  if (const json* cp = r.Member(spec, "controlPlane")) {
    if (!cp->is_object()) {
      r.Error("spec.controlPlane", "must be an object, not " + TypeName(*cp));
    } else {
      r.Int(*cp, "count", "spec.controlPlane.count", &out->control_plane_count);
    }
  }
  if (const json* list = r.List(spec, "nodePools", "spec.nodePools")) {
    for (size_t i = 0; i < list->size(); ++i) {
      const json& item = (*list)[i];
      std::string p = "spec.nodePools[" + std::to_string(i) + "]";
      if (!item.is_object()) {
        r.Error(p, "must be an object with name and count, not " + TypeName(item));
        continue;
      }
      NodePool np;
      if (!r.String(item, "name", p + ".name", &np.name) && !r.Member(item, "name")) {
        r.Error(p + ".name", "is required");
      }
      if (!r.Int(item, "count", p + ".count", &np.count) && !r.Member(item, "count")) {
        r.Error(p + ".count", "is required");
      }
      out->node_pools.push_back(np);
    }
  }
  r.Int(spec, "upgradeSurge", "spec.upgradeSurge", &out->upgrade_surge);
}

void ParseAddresses(const json& spec, Reader& r, AddressSpec* out) {
  if (const json* list = r.List(spec, "addresses", "spec.addresses")) {
    out->address_count = list->size();
    for (size_t i = 0; i < list->size(); ++i) {
      FieldLabel label("addresses[#]", static_cast<int32_t>(i));
      if (auto b = r.AnyBlock((*list)[i], "spec." + label.str())) out->addresses.push_back({label, *b});
    }
  }
}

// spec.vlanId of an IPReservation or an IPClaim: 0 to 4094, or absent for
// every domain.
void ParseVlan(const json& spec, Reader& r, std::optional<int>* out) {
  int64_t vlan = 0;
  if (r.Int(spec, "vlanId", "spec.vlanId", &vlan)) {
    if (vlan < 0 || vlan > 4094) {
      r.Error("spec.vlanId", std::to_string(vlan) + " must be between 0 and 4094");
    } else {
      *out = static_cast<int>(vlan);
    }
  }
}

void ParseClaim(const json& spec, Reader& r, ClaimSpec* out) {
  if (const json* a = r.Member(spec, "address")) {
    if (auto ip = r.Ip(*a, "spec.address")) out->address.push_back({"address", Block::Single(*ip)});
  }
  ParseVlan(spec, r, &out->vlan_id);
  if (const json* h = r.Member(spec, "holder")) {
    if (!h->is_object()) {
      r.Error("spec.holder", "must be an object, not " + TypeName(*h));
      return;
    }
    ClaimHolder& holder = out->holder;
    r.String(*h, "cluster", "spec.holder.cluster", &holder.cluster);
    r.String(*h, "apiVersion", "spec.holder.apiVersion", &holder.api_version);
    r.String(*h, "kind", "spec.holder.kind", &holder.kind);
    r.String(*h, "namespace", "spec.holder.namespace", &holder.ns);
    r.String(*h, "name", "spec.holder.name", &holder.name);
    r.String(*h, "uid", "spec.holder.uid", &holder.uid);
  }
}

// The addresses a LoadBalancer Service asks for (spec.loadBalancerIP, then
// each request annotation, without repeats) and its sharing key: shared by
// the two readers of a Service below.
void ServiceRequests(const std::string& lb_ip, const Meta& meta, Reader& r, ServiceSpec* out) {
  if (!lb_ip.empty()) {
    if (auto ip = r.Ip(json(lb_ip), "spec.loadBalancerIP")) {
      out->requested.push_back({"loadBalancerIP", Block::Single(*ip)});
    }
  }
  const std::vector<AnnotationInfo>& annotations = InfoOf(Kind::kService).annotations;
  for (const AnnotationInfo& a : annotations) {
    if (a.use != AnnotationUse::kRequestsAddresses) continue;
    auto it = meta.annotations.find(a.key);
    if (it == meta.annotations.end() || it->second.empty()) continue;
    const std::string& value = it->second;
    size_t pos = 0;
    while (pos <= value.size()) {
      size_t comma = value.find(',', pos);
      std::string part = value.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      if (auto ip = r.Ip(json(part), std::string("metadata.") + a.label)) {
        Block b = Block::Single(*ip);
        bool dup = false;
        for (const auto& existing : out->requested) dup = dup || existing.block == b;
        if (!dup) out->requested.push_back({a.label, b});
      }
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  for (const AnnotationInfo& a : annotations) {
    if (a.use != AnnotationUse::kSharingKey) continue;
    auto it = meta.annotations.find(a.key);
    if (it != meta.annotations.end() && !it->second.empty()) {
      out->sharing_key = it->second;
      break;
    }
  }
}

void ParseService(const json& root, const Meta& meta, Reader& r, ServiceSpec* out) {
  const json* spec = r.Member(root, "spec");
  if (spec) r.String(*spec, "type", "spec.type", &out->type);
  if (!out->is_load_balancer()) return;  // other types are never judged
  std::string lb_ip;
  if (spec) r.String(*spec, "loadBalancerIP", "spec.loadBalancerIP", &lb_ip);
  ServiceRequests(lb_ip, meta, r, out);
  if (spec) {
    if (const json* ports = r.List(*spec, "ports", "spec.ports")) {
      for (size_t i = 0; i < ports->size(); ++i) {
        const json& p = (*ports)[i];
        std::string path = "spec.ports[" + std::to_string(i) + "]";
        ServicePort sp;
        r.Int(p, "port", path + ".port", &sp.port);
        r.String(p, "protocol", path + ".protocol", &sp.protocol);
        out->ports.push_back(sp);
      }
    }
  }
  // Held addresses were written by the load balancer; unreadable ones are
  // not the user's mistake, so they are skipped rather than reported.
  const json* status = r.Member(root, "status");
  const json* lb = status ? r.Member(*status, "loadBalancer") : nullptr;
  const json* ingress = lb ? r.Member(*lb, "ingress") : nullptr;
  if (ingress && ingress->is_array()) {
    for (size_t i = 0; i < ingress->size(); ++i) {
      const json& item = (*ingress)[i];
      if (!item.is_object()) continue;
      auto ip_it = item.find("ip");
      if (ip_it == item.end() || !ip_it->is_string()) continue;
      auto ip = ParseIp(ip_it->get<std::string>());
      if (ip.ok()) {
        out->held.push_back({{"status.loadBalancer.ingress[#].ip", static_cast<int32_t>(i)},
                             Block::Single(*ip)});
      }
    }
  }
}

}  // namespace

std::string FieldLabel::str() const {
  std::string out;
  AppendTo(&out);
  return out;
}

void FieldLabel::AppendTo(std::string* out) const {
  for (const char* c = name_; *c;) {
    const char* hash = std::strchr(c, '#');
    if (!hash) {
      out->append(c);
      return;
    }
    out->append(c, static_cast<size_t>(hash - c));
    char digits[12];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, index_);
    (void)ec;  // an int always fits
    out->append(digits, end);
    c = hash + 1;
  }
}

namespace {

// `s` cut as quoted values are: a name the API server would refuse (longer
// than 253) must not make every message about it grow with it.
void AppendCut(std::string* out, const std::string& s) {
  if (s.size() <= kMaxQuoted) {
    out->append(s);
  } else {
    out->append(CutUtf8(s, kMaxQuoted));
  }
}

}  // namespace

std::string Object::Describe() const {
  std::string out;
  AppendDescription(&out);
  return out;
}

void Object::AppendDescription(std::string* out) const {
  out->append(KindName(kind));
  out->push_back(' ');
  if (!meta.ns.empty()) {
    AppendCut(out, meta.ns);
    out->push_back('/');
  }
  AppendCut(out, meta.name);
  // What was read from Azure is named by its resource id too.
  if (!meta.annotations.empty()) {
    auto azure = meta.annotations.find(kAzureIdAnnotation);
    if (azure != meta.annotations.end() && !azure->second.empty()) {
      out->append(" (Azure ");
      out->append(CutUtf8(azure->second, kMaxQuoted));
      out->push_back(')');
    }
  }
  // A claim stands for its holder: the holder is what a user looks for.
  if (kind == Kind::kIPClaim && !claim->holder.name.empty()) {
    out->append(" (held by ");
    AppendHolder(out, claim->holder);
    out->push_back(')');
  }
}

void AppendHolder(std::string* out, const ClaimHolder& h) {
  AppendCut(out, h.kind.empty() ? "object" : h.kind);
  out->push_back(' ');
  if (!h.ns.empty()) {
    AppendCut(out, h.ns);
    out->push_back('/');
  }
  AppendCut(out, h.name);
  if (!h.cluster.empty()) {
    out->append(" in cluster ");
    AppendCut(out, h.cluster);
  }
}

bool operator==(const FieldLabel& a, const FieldLabel& b) {
  return a.index_ == b.index_ && std::strcmp(a.name_, b.name_) == 0;
}

std::string ClaimName(std::optional<int> vlan_id, const IpAddr& address) {
  std::string name = vlan_id ? "vlan" + std::to_string(*vlan_id) + "-" : "any-";
  for (char c : address.ToString()) name.push_back(c == ':' ? '-' : c);
  return name;
}

std::string NameToCome(const std::string& generate_name) {
  return generate_name.empty() ? "(unnamed)" : generate_name + "(generated)";
}

bool IsNameToCome(const std::string& name) {
  static constexpr std::string_view kGenerated = "(generated)";
  return name == "(unnamed)" ||
         (name.size() >= kGenerated.size() &&
          name.compare(name.size() - kGenerated.size(), kGenerated.size(), kGenerated) == 0);
}

std::string ObjectKey(Kind kind, const std::string& ns, const std::string& name) {
  return std::string(KindName(kind)) + "/" + ns + "/" + name;
}

std::string Object::Ref() const { return meta.ns.empty() ? meta.name : meta.ns + "/" + meta.name; }
std::string Object::ApiVersion() const { return InfoOf(kind).ApiVersion(); }
std::string Object::Key() const { return ObjectKey(kind, meta.ns, meta.name); }

int64_t RequiredAddresses(const WorkloadClusterSpec& spec) {
  // Each term is bounded by validation, but the sum must not overflow even
  // on unvalidated input.
  auto clamp = [](int64_t v) { return v < 0 ? 0 : (v > (int64_t{1} << 40) ? (int64_t{1} << 40) : v); };
  int64_t total = clamp(spec.control_plane_count) + clamp(spec.upgrade_surge);
  for (const auto& np : spec.node_pools) total += clamp(np.count);
  return total;
}

Result<Object> ParseObject(const json& j, const std::string& default_namespace) {
  if (!j.is_object()) return Status::Error("not a Kubernetes object: the document is " + TypeName(j));
  auto api = j.find("apiVersion");
  auto kind = j.find("kind");
  if (api == j.end() || !api->is_string() || api->get<std::string>().empty()) {
    return Status::Error("not a Kubernetes object: apiVersion is missing");
  }
  if (kind == j.end() || !kind->is_string() || kind->get<std::string>().empty()) {
    return Status::Error("not a Kubernetes object: kind is missing");
  }
  auto k = KindOf(api->get<std::string>(), kind->get<std::string>());
  if (!k) {
    return Status::Error("kind " + kind->get<std::string>() + " of " + api->get<std::string>() +
                         " is not one ipguard judges");
  }
  Object obj;
  obj.kind = *k;
  Reader r(&obj.errors);
  const json* meta = r.Member(j, "metadata");
  if (!meta || !meta->is_object()) return Status::Error("not a Kubernetes object: metadata is missing");
  auto name = meta->find("name");
  if (name == meta->end() || !name->is_string() || name->get<std::string>().empty()) {
    return Status::Error("metadata.name is missing");
  }
  obj.meta.name = name->get<std::string>();
  r.String(*meta, "namespace", "metadata.namespace", &obj.meta.ns);
  if (IsNamespaced(obj.kind)) {
    if (obj.meta.ns.empty()) obj.meta.ns = default_namespace;
  } else {
    obj.meta.ns = SharedText();
  }
  r.String(*meta, "uid", "metadata.uid", &obj.meta.uid);
  r.String(*meta, "resourceVersion", "metadata.resourceVersion", &obj.meta.resource_version);
  r.String(*meta, "creationTimestamp", "metadata.creationTimestamp", &obj.meta.creation_timestamp);
  r.Int(*meta, "generation", "metadata.generation", &obj.meta.generation);
  if (const json* ann = r.Member(*meta, "annotations")) {
    if (!ann->is_object()) {
      r.Error("metadata.annotations", "must be a map, not " + TypeName(*ann));
    } else {
      for (auto it = ann->begin(); it != ann->end(); ++it) {
        if (it->is_string()) {
          obj.meta.annotations[it.key()] = it->get<std::string>();
        } else {
          r.Error("metadata.annotations[" + it.key() + "]", "must be a string, not " + TypeName(*it));
        }
      }
    }
  }
  if (obj.kind == Kind::kService) {
    ParseService(j, obj.meta, r, &*obj.svc);
    return obj;
  }
  const json* spec = r.Member(j, "spec");
  static const json kEmpty = json::object();
  if (!spec) {
    spec = &kEmpty;
  } else if (!spec->is_object()) {
    r.Error("spec", "must be an object, not " + TypeName(*spec));
    spec = &kEmpty;
  }
  if (const FieldTree* tree = SpecTree(obj.kind)) CheckDeclared(*spec, *tree, "spec", r);
  switch (obj.kind) {
    case Kind::kLogicalNetwork:
      ParseLogicalNetwork(*spec, r, &*obj.lnet);
      break;
    case Kind::kWorkloadCluster:
      ParseWorkloadCluster(*spec, r, &*obj.wlc);
      break;
    case Kind::kLoadBalancerPool:
      ParseAddresses(*spec, r, &*obj.addr);
      r.String(*spec, "logicalNetworkName", "spec.logicalNetworkName", &obj.addr->logical_network_name);
      break;
    case Kind::kIPReservation: {
      ParseAddresses(*spec, r, &*obj.addr);
      ParseVlan(*spec, r, &obj.addr->vlan_id);
      r.String(*spec, "description", "spec.description", &obj.addr->description);
      break;
    }
    case Kind::kIPAddressPool:
      ParseAddresses(*spec, r, &*obj.addr);
      break;
    case Kind::kIPClaim:
      ParseClaim(*spec, r, &*obj.claim);
      break;
    case Kind::kService:
      break;
  }
  return obj;
}

namespace {

// The typed reader of a Service (ParseServiceText). Each function reads one
// value at the scanner's position and returns false on anything it leaves to
// ParseObject: a syntax it does not take, a type ParseObject would report, a
// null, a key it reads given twice.
class ServiceTextReader {
 public:
  explicit ServiceTextReader(std::string_view text) : s_(text) {}

  bool Read(Object* obj, std::string* type, std::string* lb_ip) {
    const KindInfo& service = InfoOf(Kind::kService);
    SeenKeys seen;
    bool ok = s_.Members([&](std::string_view key) {
      std::string_view v;
      if (key == "apiVersion") {
        return seen.First(0) && s_.String(&v) && service.Serves(v);
      }
      if (key == "kind") return seen.First(1) && s_.String(&v) && v == service.name;
      if (key == "metadata") return seen.First(2) && Metadata(&obj->meta);
      if (key == "spec") return seen.First(3) && Spec(type, lb_ip, &obj->svc->ports);
      if (key == "status") return seen.First(4) && Status(&obj->svc->held);
      return s_.Skip(1);
    });
    return ok && s_.AtDocumentEnd() && seen.All(3) && !obj->meta.name.empty();
  }

 private:
  // Into a ShortString or a SharedText.
  template <typename Text>
  bool Short(Text* out) {
    std::string_view v;
    if (!s_.String(&v)) return false;
    *out = v;
    return true;
  }
  bool Metadata(Meta* meta) {
    SeenKeys seen;
    return s_.Members([&](std::string_view key) {
      if (key == "name") return seen.First(0) && s_.String(&meta->name);
      if (key == "namespace") return seen.First(1) && Short(&meta->ns);
      if (key == "uid") return seen.First(2) && Short(&meta->uid);
      if (key == "resourceVersion") return seen.First(3) && Short(&meta->resource_version);
      if (key == "creationTimestamp") return seen.First(4) && Short(&meta->creation_timestamp);
      if (key == "generation") return seen.First(5) && s_.Int(&meta->generation);
      if (key == "annotations") {
        return seen.First(6) && s_.Members([&](std::string_view name) {
                 std::string k(name);
                 std::string value;
                 if (!s_.String(&value) || meta->annotations.count(k)) return false;
                 meta->annotations.emplace(std::move(k), std::move(value));
                 return true;
               });
      }
      return s_.Skip(2);
    });
  }

  bool Spec(std::string* type, std::string* lb_ip, std::vector<ServicePort>* ports) {
    SeenKeys seen;
    return s_.Members([&](std::string_view key) {
      if (key == "type") return seen.First(0) && s_.String(type);
      if (key == "loadBalancerIP") return seen.First(1) && s_.String(lb_ip);
      if (key == "ports") {
        return seen.First(2) && s_.Items([&] {
                 ServicePort p;
                 SeenKeys port_seen;
                 if (!s_.Members([&](std::string_view k) {
                       if (k == "port") return port_seen.First(0) && s_.Int(&p.port);
                       if (k == "protocol") return port_seen.First(1) && Short(&p.protocol);
                       return s_.Skip(4);
                     })) {
                   return false;
                 }
                 ports->push_back(p);
                 return true;
               });
      }
      return s_.Skip(2);
    });
  }

  // status.loadBalancer.ingress[i].ip, read as ParseService reads it: items
  // that are not objects, or whose ip is missing or not an address, are
  // passed over (the load balancer wrote them, not the user).
  bool Status(std::vector<LabeledBlock>* held) {
    SeenKeys seen;
    return s_.Members([&](std::string_view key) {
      if (key != "loadBalancer") return s_.Skip(2);
      SeenKeys lb_seen;
      return seen.First(0) && s_.Members([&](std::string_view k) {
               if (k != "ingress") return s_.Skip(3);
               int32_t i = 0;
               return lb_seen.First(0) && s_.Items([&] {
                        const int32_t index = i++;
                        if (s_.Peek() != '{') return s_.Skip(4);
                        std::string ip_text;
                        SeenKeys item_seen;
                        if (!s_.Members([&](std::string_view m) {
                              if (m != "ip") return s_.Skip(5);
                              if (!item_seen.First(0)) return false;
                              return s_.Peek() == '"' ? s_.String(&ip_text) : s_.Skip(5);
                            })) {
                          return false;
                        }
                        if (auto ip = ParseIp(ip_text); ip.ok()) {
                          held->push_back({{"status.loadBalancer.ingress[#].ip", index},
                                           Block::Single(*ip)});
                        }
                        return true;
                      });
             });
    });
  }

  JsonScanner s_;
};

}  // namespace

const JsonProjection& ServiceReadProjection() {
  // What ServiceTextReader reads: the identity, every annotation, and the
  // Service's reads in the registry.
  static const JsonProjection* const kProjection = [] {
    JsonProjection metadata;
    for (const char* key : kIdentity) metadata.Keep(key);
    metadata.Keep("annotations");
    auto* p = new JsonProjection();
    p->Keep("apiVersion").Keep("kind").Keep("metadata", std::move(metadata));
    for (const std::string& path : InfoOf(Kind::kService).reads) p->KeepPath(path);
    return p;
  }();
  return *kProjection;
}

std::optional<Object> ParseServiceText(std::string_view text, const std::string& default_namespace) {
  Object obj;
  obj.kind = Kind::kService;
  std::string type = ServiceSpec().type;
  std::string lb_ip;
  ServiceTextReader reader(text);
  if (!reader.Read(&obj, &type, &lb_ip)) return std::nullopt;
  if (obj.meta.ns.empty()) obj.meta.ns = default_namespace;
  ServiceSpec& svc = *obj.svc;
  svc.type = std::move(type);
  if (!svc.is_load_balancer()) {
    // ParseObject reads nothing more of a Service of another type.
    svc.ports.clear();
    svc.held.clear();
    return obj;
  }
  Reader r(&obj.errors);
  ServiceRequests(lb_ip, obj.meta, r, &svc);
  if (!obj.errors.empty()) return std::nullopt;  // ParseObject words the errors
  return obj;
}

const JsonProjection& ObjectProjection() {
  static const JsonProjection* const kProjection = [] {
    JsonProjection metadata;
    for (const char* key : kIdentity) metadata.Keep(key);
    metadata.Keep("generateName").Keep("annotations");
    auto* p = new JsonProjection();
    p->Keep("apiVersion").Keep("kind").Keep("metadata", std::move(metadata));
    for (const KindInfo& info : Kinds()) {
      for (const std::string& path : info.reads) p->KeepPath(path);
    }
    return p;
  }();
  return *kProjection;
}

json TrimObject(Kind kind, const json& obj) {
  static const std::vector<JsonProjection>* const kKept = [] {
    auto* out = new std::vector<JsonProjection>();
    for (const KindInfo& info : Kinds()) {
      JsonProjection metadata;
      for (const char* key : kIdentity) metadata.Keep(key);
      // A projection that names nothing keeps all: a kind that reads no
      // annotation keeps no annotations member.
      JsonProjection annotations;
      for (const AnnotationInfo& a : info.annotations) annotations.Keep(a.key);
      if (annotations.NarrowsObjects()) metadata.Keep("annotations", std::move(annotations));
      JsonProjection p;
      p.Keep("apiVersion").Keep("kind").Keep("metadata", std::move(metadata));
      for (const std::string& path : info.reads) p.KeepPath(path);
      // The controller compares the status with the one it wants and writes
      // it back whole (Controller::CacheForm keeps it).
      if (info.owns_status) p.KeepPath("status");
      out->push_back(std::move(p));
    }
    return out;
  }();
  return Project(obj, (*kKept)[static_cast<size_t>(kind)]);
}

namespace {

JsonProjection MakeCacheProjection() {
  JsonProjection metadata;
  for (const char* key : {"name", "namespace", "uid", "resourceVersion", "generation",
                          "creationTimestamp", "deletionTimestamp", "labels", "annotations"}) {
    metadata.Keep(key);
  }
  JsonProjection p;
  p.Keep("apiVersion").Keep("kind").Keep("metadata", std::move(metadata)).Keep("spec");
  p.Keep("status");
  return p;
}

}  // namespace

const JsonProjection& CacheProjection() {
  static const JsonProjection* const kProjection = new JsonProjection(MakeCacheProjection());
  return *kProjection;
}

const JsonProjection& WatchEventProjection() {
  static const JsonProjection* const kProjection = [] {
    JsonProjection object = MakeCacheProjection();
    object.Keep("code");  // an ERROR event's Status (410 Expired)
    auto* p = new JsonProjection();
    p->Keep("type").Keep("object", std::move(object));
    return p;
  }();
  return *kProjection;
}

std::vector<std::string> DeclaredSpecFields(Kind k) {
  std::vector<std::string> out;
  const FieldTree* tree = SpecTree(k);
  if (!tree) return out;
  std::function<void(const FieldTree&, const std::string&)> walk = [&](const FieldTree& t,
                                                                     const std::string& p) {
    for (const auto& [name, sub] : t.keys) {
      out.push_back(p + "." + name);
      walk(sub, p + "." + name);
    }
  };
  walk(*tree, "spec");
  return out;
}

}  // namespace ipguard
