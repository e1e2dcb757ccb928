#include "core/azure.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <utility>

#include "core/address.h"
#include "core/json_util.h"

namespace ipguard {
namespace {

using nlohmann::json;

// The Azure types read: the type (in lowercase, as they compare), the
// kind each becomes, and the `az` command that exports it whole.
struct AzureType {
  const char* type;
  Kind kind;
  const char* export_with;
};
constexpr AzureType kAzureTypes[] = {
    {"microsoft.azurestackhci/logicalnetworks", Kind::kLogicalNetwork,
     "az stack-hci-vm network lnet list"},
    {"microsoft.hybridcontainerservice/provisionedclusterinstances", Kind::kWorkloadCluster,
     "az aksarc show"},
    {"microsoft.kubernetesruntime/loadbalancers", Kind::kLoadBalancerPool,
     "az k8s-runtime load-balancer list"},
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool EqualNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}


// The segments of "a/b/c", without empty ones (ids start with '/').
std::vector<std::string> Segments(std::string_view id) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= id.size()) {
    size_t j = id.find('/', i);
    if (j == std::string_view::npos) j = id.size();
    if (j > i) out.emplace_back(id.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// The connected cluster a resource id names
// ("…/providers/Microsoft.Kubernetes/connectedClusters/<name>/…", or a
// template's scope "Microsoft.Kubernetes/connectedClusters/<name>"): the
// name after the provider and type, whatever a resource group is called.
std::string ConnectedCluster(std::string_view id) {
  std::vector<std::string> s = Segments(id);
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    if (EqualNoCase(s[i], "Microsoft.Kubernetes") && EqualNoCase(s[i + 1], "connectedClusters")) {
      return s[i + 2];
    }
  }
  return "";
}

// A string is an expression when it is written "[...]"; "[[" starts a
// literal '['.
bool IsExpression(const std::string& s) {
  return s.size() >= 2 && s.front() == '[' && s.back() == ']' && s[1] != '[';
}

// The literal a string stands for: "[[x]" is "[x]".
std::string Literal(const std::string& s) {
  if (s.size() >= 2 && s[0] == '[' && s[1] == '[') return s.substr(1);
  return s;
}

struct Context {
  const ArmParameters& params;
  const json* template_parameters;  // the template's "parameters", or nullptr
};

// Evaluates one template expression (the text between the brackets). Only
// parameters() anywhere; with `ids`, also the functions Bicep writes ids
// with.
class Expression {
 public:
  Expression(std::string_view text, const Context& ctx, bool ids)
      : text_(text), ctx_(ctx), ids_(ids) {}

  // The value, or nullopt with *error saying why.
  std::optional<json> Evaluate(std::string* error) {
    json v;
    if (!Value(&v) || (Skip(), pos_ != text_.size())) {
      if (error_.empty()) error_ = "it is not an expression ipguard can read";
      *error = error_;
      return std::nullopt;
    }
    return v;
  }

 private:
  void Skip() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }

  bool Value(json* out) {
    struct Depth {
      int& d;
      explicit Depth(int& depth) : d(++depth) {}
      ~Depth() { --d; }
    } depth(depth_);
    if (depth_ > 16) return Fail("it is nested too deeply");
    Skip();
    if (pos_ >= text_.size()) return Fail("it ends early");
    if (text_[pos_] == '\'') return Quoted(out);
    if (std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      int64_t n = 0;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_])) &&
             n < (int64_t{1} << 40)) {
        n = n * 10 + (text_[pos_++] - '0');
      }
      *out = n;
      return true;
    }
    size_t start = pos_;
    while (pos_ < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
      ++pos_;
    }
    std::string name = Lower(text_.substr(start, pos_ - start));
    Skip();
    if (name.empty() || pos_ >= text_.size() || text_[pos_] != '(') {
      return Fail("it is not an expression ipguard can read");
    }
    ++pos_;
    std::vector<json> args;
    Skip();
    if (pos_ < text_.size() && text_[pos_] == ')') {
      ++pos_;
    } else {
      while (true) {
        json a;
        if (!Value(&a)) return false;
        args.push_back(std::move(a));
        Skip();
        if (pos_ < text_.size() && text_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < text_.size() && text_[pos_] == ')') {
          ++pos_;
          break;
        }
        return Fail("it is not an expression ipguard can read");
      }
    }
    // A property or an index after a call (parameters('x').name) is more
    // than ipguard reads.
    Skip();
    if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == '[')) {
      return Fail("it reads a property of a value, which ipguard does not");
    }
    return Call(name, args, out);
  }

  bool Quoted(json* out) {
    std::string s;
    ++pos_;
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == '\'') {
        if (pos_ < text_.size() && text_[pos_] == '\'') {
          s.push_back('\'');
          ++pos_;
          continue;
        }
        *out = std::move(s);
        return true;
      }
      s.push_back(c);
    }
    return Fail("a quoted string is not closed");
  }

  bool Strings(const std::vector<json>& args, const std::string& fn) {
    for (const json& a : args) {
      if (!a.is_string()) return Fail(fn + "() of a value that is not a string");
    }
    return true;
  }

  bool Call(const std::string& fn, const std::vector<json>& args, json* out) {
    if (fn == "parameters") {
      if (args.size() != 1 || !args[0].is_string()) return Fail("parameters() takes one name");
      return Parameter(args[0].get<std::string>(), out);
    }
    if (!ids_) return Fail("only parameters('name') is read in this field");
    if (fn == "concat") {
      if (!Strings(args, fn)) return false;
      std::string s;
      for (const json& a : args) s += a.get<std::string>();
      *out = s;
      return true;
    }
    if (fn == "format") {
      if (args.empty() || !Strings(args, fn)) return Fail("format() of values that are not strings");
      const std::string f = args[0].get<std::string>();
      std::string s;
      for (size_t i = 0; i < f.size(); ++i) {
        if (f[i] == '{' && i + 1 < f.size() && f[i + 1] == '{') {
          s.push_back('{');
          ++i;
        } else if (f[i] == '}' && i + 1 < f.size() && f[i + 1] == '}') {
          s.push_back('}');
          ++i;
        } else if (f[i] == '{') {
          size_t close = f.find('}', i);
          if (close == std::string::npos) return Fail("format() with an unclosed {");
          size_t n = 0;
          size_t j = i + 1;
          for (; j < close && std::isdigit(static_cast<unsigned char>(f[j])) && n < 1000; ++j) {
            n = n * 10 + static_cast<size_t>(f[j] - '0');
          }
          if (j == i + 1 || n >= 1000 || n + 1 >= args.size()) {
            return Fail("format() names an argument it lacks");
          }
          s += args[n + 1].get<std::string>();
          i = close;
        } else {
          s.push_back(f[i]);
        }
      }
      *out = s;
      return true;
    }
    if (fn == "resourceid" || fn == "extensionresourceid") {
      if (!Strings(args, fn)) return false;
      size_t first = 0;
      std::string scope;
      if (fn == "extensionresourceid") {
        if (args.empty()) return Fail("extensionResourceId() without a scope");
        scope = args[0].get<std::string>();
        first = 1;
      }
      // resourceId([subscriptionId,] [resourceGroupName,] type, name...): the
      // type is the first argument with a '/'.
      size_t t = first;
      while (t < args.size() && args[t].get<std::string>().find('/') == std::string::npos) ++t;
      if (t >= args.size()) return Fail(fn + "() without a resource type");
      std::vector<std::string> type = Segments(args[t].get<std::string>());
      std::vector<std::string> names;
      for (size_t i = t + 1; i < args.size(); ++i) {
        for (auto& n : Segments(args[i].get<std::string>())) names.push_back(std::move(n));
      }
      if (type.size() < 2 || names.size() != type.size() - 1) {
        return Fail(fn + "() with names that do not match its type");
      }
      std::string id = scope.empty() ? "" : scope + "/providers/";
      id += type[0];
      for (size_t i = 1; i < type.size(); ++i) id += "/" + type[i] + "/" + names[i - 1];
      *out = id;
      return true;
    }
    return Fail(fn + "() is not read by ipguard");
  }

  bool Parameter(const std::string& name, json* out) {
    std::string why;
    if (const json* v = ctx_.params.Find(name, &why)) {
      *out = *v;
      return true;
    }
    if (!why.empty()) return Fail(why);
    if (ctx_.template_parameters && ctx_.template_parameters->is_object()) {
      for (auto it = ctx_.template_parameters->begin(); it != ctx_.template_parameters->end(); ++it) {
        if (!EqualNoCase(it.key(), name) || !it->is_object()) continue;
        auto d = it->find("defaultValue");
        if (d == it->end()) break;
        if (d->is_string() && IsExpression(d->get<std::string>())) {
          return Fail("the defaultValue of parameter '" + name +
                      "' is an expression; give the parameter a value with --parameters FILE");
        }
        *out = d->is_string() ? json(Literal(d->get<std::string>())) : *d;
        return true;
      }
    }
    return Fail("parameter '" + name + "' has no value; give it with --parameters FILE");
  }

  std::string_view text_;
  const Context& ctx_;
  bool ids_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::string error_;
};

// Reads the fields of one resource: resolves expressions, checks types, and
// records what is wrong in an AzureRead.
class Reader {
 public:
  Reader(const Context& ctx, AzureRead* out) : ctx_(ctx), out_(out) {}

  bool unread() const { return unread_; }

  // `v` with its expression (if it is one) resolved; nullptr when it cannot
  // be, and the resource is then unread.
  const json* Resolve(const json& v, const std::string& path, bool ids = false) {
    if (!v.is_string()) return &v;
    const std::string& s = v.get_ref<const std::string&>();
    if (!IsExpression(s)) {
      if (s.size() >= 2 && s[0] == '[' && s[1] == '[') return &held_.emplace_back(Literal(s));
      return &v;
    }
    std::string why;
    std::optional<json> value =
        Expression(std::string_view(s).substr(1, s.size() - 2), ctx_, ids).Evaluate(&why);
    if (!value) {
      Unread(path + " is " + QuoteValue(s) + ", which ipguard cannot resolve: " + why);
      return nullptr;
    }
    return &held_.emplace_back(std::move(*value));
  }

  // The member `key` of `obj`, resolved; nullptr when absent, null or
  // unresolved.
  // Azure compares property names without regard to case, and `az` prints
  // some in its own case (`hostIp`): the exact name first, then any case.
  const json* Member(const json* obj, const char* key, const std::string& path, bool ids = false) {
    if (!obj || !obj->is_object()) return nullptr;
    auto it = obj->find(key);
    if (it == obj->end()) {
      for (it = obj->begin(); it != obj->end(); ++it) {
        if (EqualNoCase(it.key(), key)) break;
      }
    }
    if (it == obj->end() || it->is_null()) return nullptr;
    return Resolve(*it, path, ids);
  }

  std::optional<std::string> String(const json* obj, const char* key, const std::string& path,
                                    bool ids = false) {
    const json* v = Member(obj, key, path, ids);
    if (!v) return std::nullopt;
    if (!v->is_string()) {
      Wrong(path, "must be a string", *v);
      return std::nullopt;
    }
    return v->get<std::string>();
  }

  std::optional<int64_t> Integer(const json* obj, const char* key, const std::string& path) {
    const json* v = Member(obj, key, path);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) {
      Wrong(path, "must be an integer", *v);
      return std::nullopt;
    }
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t{INT64_MAX}) {
      out_->errors.push_back("Azure field " + path + " " + v->dump() + " is out of range");
      return std::nullopt;
    }
    return v->get<int64_t>();
  }

  const json* Object(const json* obj, const char* key, const std::string& path) {
    return Typed(obj, key, path, &json::is_object, "must be an object");
  }

  const json* Array(const json* obj, const char* key, const std::string& path) {
    return Typed(obj, key, path, &json::is_array, "must be a list");
  }

  // The member `key` when it is of the type `is` tests; a wrong field
  // otherwise.
  const json* Typed(const json* obj, const char* key, const std::string& path,
                    bool (json::*is)() const noexcept, const char* must) {
    const json* v = Member(obj, key, path);
    if (v && !(v->*is)()) {
      Wrong(path, must, *v);
      return nullptr;
    }
    return v;
  }

  // Calls fn(item, path) for each item of the list `arr` at `path` that
  // resolves to an object (objects) or a string (otherwise); an item of
  // another type is a wrong field.
  template <typename Fn>
  void Items(const json* arr, const std::string& path, bool objects, Fn fn) {
    for (size_t i = 0; arr && i < arr->size(); ++i) {
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      const json* item = Resolve((*arr)[i], item_path);
      if (!item) continue;
      if (objects ? !item->is_object() : !item->is_string()) {
        Wrong(item_path, objects ? "must be an object" : "must be a string", *item);
        continue;
      }
      fn(*item, item_path);
    }
  }

  void Wrong(const std::string& path, const std::string& must, const json& v) {
    std::string m = "Azure field " + path + " " + must + ", not " + TypeName(v);
    if (v.is_string()) m += " " + QuoteValue(v.get<std::string>());
    out_->errors.push_back(std::move(m));
  }
  void Error(std::string message) { out_->errors.push_back(std::move(message)); }
  void Warn(std::string message) { out_->warnings.push_back(std::move(message)); }
  void Unread(std::string why) {
    if (!unread_) out_->warnings.push_back(std::move(why));
    unread_ = true;
  }

 private:
  const Context& ctx_;
  AzureRead* out_;
  bool unread_ = false;
  std::deque<json> held_;  // resolved values; pointers to them stay valid
};

// A CIDR as Azure takes it: with host bits set it is the block it covers
// (with a warning); anything else is kept as written for the rules to judge.
std::string AzureCidr(const std::string& text, const std::string& path, Reader& r) {
  if (text.find('/') == std::string::npos || text.find('-') != std::string::npos) return text;
  if (ParseCidr(text).ok()) return text;
  auto covering = ParseCidrCovering(text);
  if (!covering.ok()) return text;
  std::string block = covering->ToString();
  r.Warn(path + " " + QuoteValue(text) + " has host bits set: read as " + block +
         ", the block Azure takes it for");
  return block;
}

std::string Describe(const char* kind, const std::string& ref, const std::string& id) {
  return std::string(kind) + " " + CutUtf8(ref, kMaxQuoted) + " (Azure " + CutUtf8(id, kMaxQuoted) + ")";
}

json ObjectJson(const char* kind, const std::string& ns, const std::string& name,
                const std::string& id, json spec) {
  json meta = {{"name", name}, {"annotations", {{kAzureIdAnnotation, id}}}};
  if (!ns.empty()) meta["namespace"] = ns;
  return {{"apiVersion", std::string(kGroup) + "/" + kVersion},
          {"kind", kind},
          {"metadata", std::move(meta)},
          {"spec", std::move(spec)}};
}

// Microsoft.AzureStackHCI/logicalNetworks -> LogicalNetwork.
json ReadLogicalNetwork(Reader& r, const json* props) {
  json spec = json::object();
  if (auto s = r.String(props, "vmSwitchName", "properties.vmSwitchName")) spec["vmSwitchName"] = *s;
  const json* subnets = r.Array(props, "subnets", "properties.subnets");
  if (!subnets || subnets->empty()) {
    if (!r.unread()) r.Error("Azure field properties.subnets is missing: a logical network has one subnet");
    return spec;
  }
  const json* subnet = r.Resolve((*subnets)[0], "properties.subnets[0]");
  if (!subnet) return spec;
  if (!subnet->is_object()) {
    r.Wrong("properties.subnets[0]", "must be an object", *subnet);
    return spec;
  }
  if (subnets->size() > 1) {
    std::string name;
    if (auto it = subnet->find("name"); it != subnet->end() && it->is_string()) {
      name = " (" + CutUtf8(it->get<std::string>(), kMaxQuoted) + ")";
    }
    r.Warn("Azure field properties.subnets has " + std::to_string(subnets->size()) +
           " subnets: only the first" + name + " is read");
  }
  const std::string base = "properties.subnets[0].properties";
  const json* sp = r.Object(subnet, "properties", "properties.subnets[0].properties");
  if (!sp) {
    if (!r.unread()) r.Error("Azure field " + base + " is missing");
    return spec;
  }
  if (auto m = r.String(sp, "ipAllocationMethod", base + ".ipAllocationMethod")) {
    if (EqualNoCase(*m, "Static")) {
      spec["ipAllocationMethod"] = "Static";
    } else if (EqualNoCase(*m, "Dynamic")) {
      spec["ipAllocationMethod"] = "DHCP";
    } else {
      r.Error("Azure field " + base + ".ipAllocationMethod must be Static or Dynamic, not " +
              QuoteValue(*m));
    }
  } else if (!r.unread()) {
    // Azure's default.
    spec["ipAllocationMethod"] = "DHCP";
  }
  if (auto p = r.String(sp, "addressPrefix", base + ".addressPrefix")) {
    spec["addressPrefix"] = AzureCidr(*p, "Azure field " + base + ".addressPrefix", r);
  }
  if (const json* pools = r.Array(sp, "ipPools", base + ".ipPools")) {
    json out = json::array();
    r.Items(pools, base + ".ipPools", true, [&](const json& pool, const std::string& path) {
      // Only pools of node VMs ("vm", the default) give nodes their
      // addresses; a "vippool" does not count as one.
      auto type = r.String(&pool, "ipPoolType", path + ".ipPoolType");
      if (type && !EqualNoCase(*type, "vm")) {
        r.Warn("Azure field " + path + " is an ipPoolType " + QuoteValue(*type) +
               " pool, not a pool of node VMs: not read");
        return;
      }
      auto start = r.String(&pool, "start", path + ".start");
      auto end = r.String(&pool, "end", path + ".end");
      if (start && end) {
        out.push_back({{"start", *start}, {"end", *end}});
      } else if (!r.unread()) {
        r.Error("Azure field " + path + " needs start and end");
      }
    });
    if (!out.empty()) spec["ipPools"] = std::move(out);
  }
  if (auto vlan = r.Integer(sp, "vlan", base + ".vlan")) spec["vlanId"] = *vlan;
  // The gateway: the next hop of the default route.
  if (const json* table = r.Object(sp, "routeTable", base + ".routeTable")) {
    const json* tp = r.Object(table, "properties", base + ".routeTable.properties");
    // Older shapes put the routes straight in the table.
    const json* routes = tp ? r.Array(tp, "routes", base + ".routeTable.properties.routes")
                            : r.Array(table, "routes", base + ".routeTable.routes");
    const std::string rbase = base + (tp ? ".routeTable.properties.routes" : ".routeTable.routes");
    int defaults = 0;
    // The default route of the subnet's family.
    const std::string default_route =
        spec.contains("addressPrefix") &&
                spec["addressPrefix"].get<std::string>().find(':') != std::string::npos
            ? "::/0"
            : "0.0.0.0/0";
    for (size_t i = 0; routes && i < routes->size(); ++i) {
      const std::string path = rbase + "[" + std::to_string(i) + "]";
      const json* route = r.Resolve((*routes)[i], path);
      if (!route || !route->is_object()) continue;
      const json* rp = r.Object(route, "properties", path + ".properties");
      const json* fields = rp ? rp : route;
      const std::string fpath = rp ? path + ".properties" : path;
      auto prefix = r.String(fields, "addressPrefix", fpath + ".addressPrefix");
      if (!prefix || *prefix != default_route) continue;
      auto hop = r.String(fields, "nextHopIpAddress", fpath + ".nextHopIpAddress");
      if (!hop) continue;
      if (++defaults == 1) {
        spec["gateway"] = *hop;
      } else {
        r.Warn("Azure field " + fpath + " is another default route: only the first is read");
      }
    }
  }
  const json* dhcp = r.Object(props, "dhcpOptions", "properties.dhcpOptions");
  if (const json* dns = r.Array(dhcp, "dnsServers", "properties.dhcpOptions.dnsServers")) {
    json out = json::array();
    r.Items(dns, "properties.dhcpOptions.dnsServers", false,
            [&](const json& d, const std::string&) { out.push_back(d); });
    if (!out.empty()) spec["dnsServers"] = std::move(out);
  }
  return spec;
}

// Microsoft.HybridContainerService/provisionedClusterInstances -> WorkloadCluster.
json ReadWorkloadCluster(Reader& r, const json* props) {
  json spec = json::object();
  const json* cloud = r.Object(props, "cloudProviderProfile", "properties.cloudProviderProfile");
  const json* infra = r.Object(cloud, "infraNetworkProfile",
                               "properties.cloudProviderProfile.infraNetworkProfile");
  const std::string ids_path = "properties.cloudProviderProfile.infraNetworkProfile.vnetSubnetIds";
  if (const json* ids = r.Array(infra, "vnetSubnetIds", ids_path)) {
    if (!ids->empty()) {
      const json* id = r.Resolve((*ids)[0], ids_path + "[0]", /*ids=*/true);
      if (id && !id->is_string()) {
        r.Wrong(ids_path + "[0]", "must be a string", *id);
      } else if (id) {
        std::vector<std::string> s = Segments(id->get<std::string>());
        if (s.empty()) {
          r.Error("Azure field " + ids_path + "[0] is empty");
        } else {
          // Named as the network's object is: in lowercase.
          spec["logicalNetworkName"] = Lower(s.back());
        }
      }
      if (ids->size() > 1) {
        r.Warn("Azure field " + ids_path + " names " + std::to_string(ids->size()) +
               " logical networks: only the first is read");
      }
    }
  }
  const json* cp = r.Object(props, "controlPlane", "properties.controlPlane");
  if (auto count = r.Integer(cp, "count", "properties.controlPlane.count")) {
    spec["controlPlane"] = {{"count", *count}};
  }
  const json* endpoint =
      r.Object(cp, "controlPlaneEndpoint", "properties.controlPlane.controlPlaneEndpoint");
  // `az aksarc` prints it as hostIp; an empty one is none.
  if (auto ip = r.String(endpoint, "hostIP", "properties.controlPlane.controlPlaneEndpoint.hostIP")) {
    if (!ip->empty()) spec["controlPlaneIP"] = *ip;
  }
  if (const json* pools = r.Array(props, "agentPoolProfiles", "properties.agentPoolProfiles")) {
    json out = json::array();
    r.Items(pools, "properties.agentPoolProfiles", true, [&](const json& pool, const std::string& path) {
      auto name = r.String(&pool, "name", path + ".name");
      auto count = r.Integer(&pool, "count", path + ".count");
      // With autoscaling the pool may grow to maxCount nodes, each with an
      // address: the network must hold that many.
      const json* autoscale = r.Member(&pool, "enableAutoScaling", path + ".enableAutoScaling");
      std::optional<int64_t> max;
      if (autoscale && autoscale->is_boolean() && autoscale->get<bool>()) {
        max = r.Integer(&pool, "maxCount", path + ".maxCount");
      }
      if (name) {
        // Azure's default count is 1.
        int64_t nodes = count.value_or(1);
        if (max && *max > nodes) {
          r.Warn("Azure field " + path + " autoscales to maxCount " + std::to_string(*max) +
                 ": read as " + std::to_string(*max) + " nodes (count " + std::to_string(nodes) +
                 "), the addresses it may take");
          nodes = *max;
        }
        out.push_back({{"name", *name}, {"count", nodes}});
      } else if (!r.unread()) {
        r.Error("Azure field " + path + ".name is missing");
      }
    });
    if (!out.empty()) spec["nodePools"] = std::move(out);
  }
  return spec;
}

// Microsoft.KubernetesRuntime/loadBalancers -> LoadBalancerPool.
// `base` is "properties." or, for what az prints flattened, "".
json ReadLoadBalancerPool(Reader& r, const json* props, const std::string& base) {
  json spec = json::object();
  if (const json* addresses = r.Array(props, "addresses", base + "addresses")) {
    json out = json::array();
    r.Items(addresses, base + "addresses", false, [&](const json& a, const std::string& path) {
      out.push_back(AzureCidr(a.get<std::string>(), "Azure field " + path, r));
    });
    spec["addresses"] = std::move(out);
  }
  return spec;
}

// One resource.
AzureRead ReadResource(const json& res, const Context& ctx, int index) {
  AzureRead out;
  out.index = index;
  auto type_it = res.find("type");
  out.type = type_it != res.end() && type_it->is_string() ? type_it->get<std::string>() : "";
  const std::string type = Lower(out.type);
  const AzureType* azure_type = nullptr;
  for (const AzureType& t : kAzureTypes) {
    if (type == t.type) azure_type = &t;
  }
  // What a template only refers to.
  if (auto e = res.find("existing"); e != res.end() && e->is_boolean() && e->get<bool>()) {
    out.outcome = AzureRead::Outcome::kSkipped;
    return out;
  }
  if (!azure_type) {
    out.outcome = AzureRead::Outcome::kOtherType;
    return out;
  }
  const Kind kind = azure_type->kind;
  const char* kind_name = KindName(kind);
  Reader r(ctx, &out);
  auto raw_name = res.find("name");
  std::string shown_name =
      raw_name != res.end() && raw_name->is_string() ? raw_name->get<std::string>() : "(unnamed)";
  out.kind = kind;
  auto finish_unread = [&](const std::string& ref) {
    out.outcome = AzureRead::Outcome::kUnread;
    if (out.id.empty()) out.id = out.type + "/" + shown_name;
    out.description = Describe(kind_name, ref, out.id);
    if (out.name.empty() && kind == Kind::kLogicalNetwork) out.name = Lower(shown_name);
    return out;
  };
  // The name first, so that what is left unread is named as it resolves.
  std::optional<std::string> name = r.String(&res, "name", "name");
  if (name) shown_name = *name;
  if (const json* condition = r.Member(&res, "condition", "condition")) {
    if (!condition->is_boolean()) {
      if (!r.unread()) r.Unread("condition is not true or false");
      return finish_unread(shown_name);
    }
    if (!condition->get<bool>()) {
      out.outcome = AzureRead::Outcome::kSkipped;
      return out;
    }
  }
  if (res.contains("copy")) {
    r.Unread("it is deployed in a copy loop, which ipguard does not expand");
    return finish_unread(shown_name);
  }
  std::optional<std::string> id = r.String(&res, "id", "id");
  std::optional<std::string> scope = r.String(&res, "scope", "scope", /*ids=*/true);
  if (r.unread()) return finish_unread(shown_name);
  if (id) {
    out.id = *id;
  } else {
    // A template's resource: its id as the template would make it.
    out.id = (scope ? *scope + "/providers/" : std::string()) + out.type + "/" + shown_name;
  }
  // Azure compares names without regard to case, Kubernetes names are
  // lowercase: the object is named in lowercase (its id keeps Azure's case).
  std::string ns, object_name;
  if (kind == Kind::kLogicalNetwork) {
    object_name = Lower(shown_name);
  } else {
    std::string cluster = ConnectedCluster(id ? *id : scope.value_or(""));
    if (cluster.empty()) {
      r.Error(std::string("Azure resource names no connected cluster: ") +
              (id ? "its id has no connectedClusters segment"
                  : "it needs a scope naming a Microsoft.Kubernetes/connectedClusters resource"));
    }
    if (kind == Kind::kWorkloadCluster) {
      ns = kAzureNamespace;
      object_name = Lower(cluster);
    } else {
      object_name = Lower(cluster + "-" + shown_name);
    }
  }
  if (!name) r.Error("Azure resource has no name");
  const std::string ref = ns.empty() ? object_name : ns + "/" + object_name;
  out.name = object_name;
  const json* props = r.Member(&res, "properties", "properties");
  // `az k8s-runtime load-balancer` prints the properties in the resource
  // itself.
  if (!props && !r.unread() && kind == Kind::kLoadBalancerPool && res.contains("addresses")) {
    props = &res;
  }
  if (!r.unread() && !props) {
    // `az resource list` prints "properties": null for every resource.
    auto p = res.find("properties");
    r.Error(p != res.end() && p->is_null()
                ? std::string("Azure resource has no properties (az resource list prints none: export "
                              "with ") +
                      azure_type->export_with + " -o json)"
                : "Azure resource has no properties");
  }
  if (props && !props->is_object()) {
    r.Wrong("properties", "must be an object", *props);
    props = nullptr;
  }
  json spec;
  if (props) {
    spec = kind == Kind::kLogicalNetwork    ? ReadLogicalNetwork(r, props)
           : kind == Kind::kWorkloadCluster ? ReadWorkloadCluster(r, props)
                                            : ReadLoadBalancerPool(r, props, props == &res ? "" : "properties.");
  }
  if (r.unread()) return finish_unread(ref);
  out.description = Describe(kind_name, ref, out.id);
  if (!out.errors.empty()) {
    out.outcome = AzureRead::Outcome::kBroken;
    return out;
  }
  out.outcome = AzureRead::Outcome::kRead;
  out.object = ObjectJson(kind_name, ns, object_name, out.id, std::move(spec));
  return out;
}

bool IsProviderType(const json& doc) {
  auto t = doc.find("type");
  if (t == doc.end() || !t->is_string()) return false;
  const std::string& s = t->get_ref<const std::string&>();
  size_t slash = s.find('/');
  // "Provider.Namespace/resource[/child...]": a dotted provider namespace.
  return slash != std::string::npos && slash > 0 && slash + 1 < s.size() &&
         s.substr(0, slash).find('.') != std::string::npos && s.find(' ') == std::string::npos;
}

}  // namespace

Status ArmParameters::Add(const json& file) {
  if (!file.is_object()) return Status::Error("an ARM parameters file is a JSON object");
  const json* params = &file;
  if (auto p = file.find("parameters"); p != file.end()) params = &*p;
  if (!params->is_object()) return Status::Error("parameters must be an object");
  std::map<std::string, Value> read;
  for (auto it = params->begin(); it != params->end(); ++it) {
    if (params == &file && (it.key() == "$schema" || it.key() == "contentVersion")) continue;
    if (!it->is_object()) {
      return Status::Error("parameter " + QuoteValue(it.key()) + " must be an object with a value");
    }
    Value v;
    if (auto value = it->find("value"); value != it->end()) {
      v.value = *value;
    } else if (it->contains("reference")) {
      v.unresolvable = "parameter '" + it.key() +
                       "' is a Key Vault reference, which ipguard check does not read";
    } else {
      return Status::Error("parameter " + QuoteValue(it.key()) + " has no value");
    }
    read[Lower(it.key())] = std::move(v);
  }
  for (auto& [k, v] : read) values_[k] = std::move(v);
  return Status::Ok();
}

void ArmParameters::Set(const std::string& name, json value) {
  values_[Lower(name)] = Value{std::move(value), ""};
}

void ArmParameters::SetUnresolvable(const std::string& name, std::string why) {
  values_[Lower(name)] = Value{json(), std::move(why)};
}

const json* ArmParameters::Find(const std::string& name, std::string* why) const {
  auto it = values_.find(Lower(name));
  if (it == values_.end()) return nullptr;
  if (!it->second.unresolvable.empty()) {
    *why = it->second.unresolvable;
    return nullptr;
  }
  return &it->second.value;
}

bool IsArmTemplate(const json& doc) {
  return doc.is_object() && doc.contains("$schema") && doc.contains("resources") &&
         !doc.contains("kind");
}

bool IsAzureInput(const json& doc) {
  if (!doc.is_object()) return false;
  if (IsArmTemplate(doc)) return true;
  // A Kubernetes object has apiVersion and kind; an Azure resource has a
  // provider type and no kind, or a kind but no apiVersion (az prints the
  // kind of some resources, e.g. "ProvisionedCluster" on connected clusters).
  auto kind = doc.find("kind");
  if (kind != doc.end() && !kind->is_null() && doc.contains("apiVersion")) return false;
  return IsProviderType(doc);
}

bool IsArmParametersFile(const json& doc) {
  if (!doc.is_object() || doc.contains("resources") || doc.contains("kind")) return false;
  auto schema = doc.find("$schema");
  return schema != doc.end() && schema->is_string() &&
         schema->get_ref<const std::string&>().find("deploymentParameters") != std::string::npos;
}

namespace {

constexpr int kMaxNestedDeployments = 8;

// `defaults`: the template parameters that give defaults (the template's
// own when nullptr).
void ReadTemplate(const json& tmpl, const ArmParameters& params, const json* defaults,
                  int outer_index, int depth, std::vector<AzureRead>* out);

// A nested deployment (`Microsoft.Resources/deployments`, what Bicep writes
// for a module): its template's resources, read with the parameters it is
// given (scope "inner", as Bicep writes it) or with the outer template's
// (scope "outer", ARM's default).
void ReadDeployment(const json& res, const Context& ctx, int index, int depth,
                    std::vector<AzureRead>* out) {
  AzureRead self;
  self.index = index;
  self.type = res.value("type", "");
  Reader r(ctx, &self);
  auto name = r.String(&res, "name", "name");
  self.id = self.type + "/" + name.value_or("(unnamed)");
  self.description = Describe("Deployment", name.value_or("(unnamed)"), self.id);
  const json* props = r.Object(&res, "properties", "properties");
  const json* tmpl = props ? r.Object(props, "template", "properties.template") : nullptr;
  if (!tmpl || r.unread() || !self.errors.empty()) {
    if (props && props->contains("templateLink")) {
      r.Unread("its template is linked (properties.templateLink), which ipguard does not fetch: "
               "check the linked template itself");
    } else if (!r.unread() && self.errors.empty()) {
      // A deployment with nothing ipguard can read: another type, skipped.
      self.outcome = AzureRead::Outcome::kOtherType;
      out->push_back(std::move(self));
      return;
    }
    self.outcome = self.errors.empty() ? AzureRead::Outcome::kUnread : AzureRead::Outcome::kBroken;
    out->push_back(std::move(self));
    return;
  }
  if (depth >= kMaxNestedDeployments) {
    r.Unread("deployments nest more than " + std::to_string(kMaxNestedDeployments) + " deep");
    self.outcome = AzureRead::Outcome::kUnread;
    out->push_back(std::move(self));
    return;
  }
  const json* options = r.Object(props, "expressionEvaluationOptions",
                                 "properties.expressionEvaluationOptions");
  auto scope = r.String(options, "scope", "properties.expressionEvaluationOptions.scope");
  if (!scope || !EqualNoCase(*scope, "inner")) {
    // The nested template's expressions are the outer template's.
    ReadTemplate(*tmpl, ctx.params, ctx.template_parameters, index, depth + 1, out);
    return;
  }
  // Scope inner: the parameters the deployment passes, resolved where it
  // stands.
  ArmParameters inner;
  if (const json* given = r.Object(props, "parameters", "properties.parameters")) {
    for (const auto& [key, v] : given->items()) {
      if (!v.is_object()) continue;
      auto value = v.find("value");
      if (value == v.end()) {
        inner.SetUnresolvable(key, "parameter '" + key + "' of deployment " +
                                       name.value_or("(unnamed)") + " has no value ipguard reads");
        continue;
      }
      std::string why;
      if (value->is_string() && IsExpression(value->get<std::string>())) {
        const std::string& text = value->get_ref<const std::string&>();
        std::optional<json> resolved =
            Expression(std::string_view(text).substr(1, text.size() - 2), ctx, /*ids=*/true)
                .Evaluate(&why);
        if (resolved) {
          inner.Set(key, std::move(*resolved));
        } else {
          inner.SetUnresolvable(key, "parameter '" + key + "' of deployment " +
                                         name.value_or("(unnamed)") + " is " + QuoteValue(text) +
                                         ", which ipguard cannot resolve: " + why);
        }
      } else {
        inner.Set(key, value->is_string() ? json(Literal(value->get<std::string>())) : *value);
      }
    }
  }
  ReadTemplate(*tmpl, inner, nullptr, index, depth + 1, out);
}

void ReadTemplate(const json& tmpl, const ArmParameters& params, const json* defaults,
                  int outer_index, int depth, std::vector<AzureRead>* out) {
  auto tp = tmpl.find("parameters");
  Context ctx{params, defaults ? defaults : tp != tmpl.end() ? &*tp : nullptr};
  auto rit = tmpl.find("resources");
  if (rit == tmpl.end()) return;
  const json& resources = *rit;
  int index = 0;
  auto one = [&](const json& res) {
    ++index;
    // Resources of a nested deployment are named by the deployment's place.
    const int where = outer_index > 0 ? outer_index : index;
    if (!res.is_object()) {
      AzureRead r;
      r.index = where;
      r.outcome = AzureRead::Outcome::kOtherType;
      r.type = "(not a resource)";
      out->push_back(std::move(r));
      return;
    }
    auto type = res.find("type");
    if (type != res.end() && type->is_string() &&
        EqualNoCase(type->get_ref<const std::string&>(), "Microsoft.Resources/deployments")) {
      ReadDeployment(res, ctx, where, depth, out);
      return;
    }
    out->push_back(ReadResource(res, ctx, where));
  };
  if (resources.is_array()) {
    for (const json& res : resources) one(res);
  } else if (resources.is_object()) {
    // languageVersion 2.0: resources by symbolic name.
    for (const auto& [symbol, res] : resources.items()) one(res);
  }
}

}  // namespace

std::string SkippedAs(const AzureRead& read) {
  if (read.outcome == AzureRead::Outcome::kSkipped) return "Azure resources a template does not deploy";
  return "Azure " + (read.type.empty() ? std::string("(no type)") : read.type);
}

std::vector<AzureRead> ReadAzure(const json& doc, const ArmParameters& params) {
  std::vector<AzureRead> out;
  if (!IsArmTemplate(doc)) {
    Context ctx{params, nullptr};
    out.push_back(ReadResource(doc, ctx, 0));
    return out;
  }
  ReadTemplate(doc, params, nullptr, 0, 0, &out);
  return out;
}

namespace {

std::string Join(std::vector<std::string> items) {
  if (items.empty()) return "none";
  std::sort(items.begin(), items.end());
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The blocks as written, and whether two lists cover the same blocks
// (10.0.0.0/28 is 10.0.0.0-10.0.0.15), in any order.
std::vector<std::string> Blocks(const std::vector<LabeledBlock>& blocks) {
  std::vector<std::string> out;
  for (const auto& b : blocks) out.push_back(b.block.ToString());
  return out;
}

bool SameBlocks(const std::vector<LabeledBlock>& a, const std::vector<LabeledBlock>& b) {
  auto spans = [](const std::vector<LabeledBlock>& v) {
    std::vector<std::pair<IpAddr, IpAddr>> out;
    for (const auto& x : v) out.emplace_back(x.block.first(), x.block.last());
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  };
  return spans(a) == spans(b);
}

std::vector<std::string> Addresses(const std::vector<IpAddr>& ips) {
  std::vector<std::string> out;
  for (const auto& ip : ips) out.push_back(ip.ToString());
  return out;
}

}  // namespace

AzureDrift CompareWithAzure(const Object& plan, const Object& azure, const std::string& azure_id) {
  AzureDrift d;
  const std::string head = std::string(KindName(plan.kind)) + " " + plan.Ref() +
                           " differs from Azure (" + CutUtf8(azure_id, kMaxQuoted) + "): ";
  auto field = [&](std::vector<std::string>* to, const std::string& name, const std::string& ours,
                   const std::string& theirs) {
    if (ours == theirs) return;
    to->push_back(head + name + " " + ours + ", Azure has " + theirs);
  };
  auto v = [&](const std::string& name, const std::string& ours, const std::string& theirs) {
    field(&d.violations, name, ours, theirs);
  };
  auto w = [&](const std::string& name, const std::string& ours, const std::string& theirs) {
    field(&d.warnings, name, ours, theirs);
  };
  switch (plan.kind) {
    case Kind::kLogicalNetwork: {
      const auto& a = *plan.lnet;
      const auto& b = *azure.lnet;
      auto method = [](LogicalNetworkSpec::Method m) -> std::string {
        return m == LogicalNetworkSpec::Method::kStatic ? "Static"
               : m == LogicalNetworkSpec::Method::kDhcp ? "DHCP"
                                                        : "none";
      };
      v("ipAllocationMethod", method(a.method), method(b.method));
      if (!(a.address_prefix && b.address_prefix && *a.address_prefix == *b.address_prefix)) {
        v("addressPrefix", a.address_prefix ? a.address_prefix->ToString() : "none",
          b.address_prefix ? b.address_prefix->ToString() : "none");
      }
      v("gateway", a.gateway ? a.gateway->ToString() : "none",
        b.gateway ? b.gateway->ToString() : "none");
      v("dnsServers", Join(Addresses(a.dns_servers)), Join(Addresses(b.dns_servers)));
      if (!SameBlocks(a.ip_pools, b.ip_pools)) {
        v("ipPools", Join(Blocks(a.ip_pools)), Join(Blocks(b.ip_pools)));
      }
      v("vlanId", std::to_string(a.vlan_id), std::to_string(b.vlan_id));
      w("vmSwitchName", QuoteValue(a.vm_switch_name), QuoteValue(b.vm_switch_name));
      break;
    }
    case Kind::kWorkloadCluster: {
      const auto& a = *plan.wlc;
      const auto& b = *azure.wlc;
      v("controlPlaneIP", a.control_plane_ip ? a.control_plane_ip->ToString() : "none",
        b.control_plane_ip ? b.control_plane_ip->ToString() : "none");
      v("logicalNetworkName", a.logical_network_name.empty() ? "none" : a.logical_network_name,
        b.logical_network_name.empty() ? "none" : b.logical_network_name);
      w("controlPlane.count", std::to_string(a.control_plane_count),
        std::to_string(b.control_plane_count));
      auto pools = [](const WorkloadClusterSpec& s) {
        std::vector<std::string> out;
        for (const auto& p : s.node_pools) out.push_back(p.name + "=" + std::to_string(p.count));
        return Join(out);
      };
      w("nodePools", pools(a), pools(b));
      break;
    }
    case Kind::kLoadBalancerPool:
      if (!SameBlocks(plan.addr->addresses, azure.addr->addresses)) {
        v("addresses", Join(Blocks(plan.addr->addresses)), Join(Blocks(azure.addr->addresses)));
      }
      break;
    default:
      break;
  }
  return d;
}

}  // namespace ipguard
