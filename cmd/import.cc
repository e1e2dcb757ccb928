#include "cmd/import.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <set>

#include "cmd/check.h"
#include "core/azure.h"

namespace ipguard {
namespace {

using nlohmann::json;

// A key written plain when YAML 1.1 and 1.2 both read it back as this
// string (kubectl reads YAML 1.1: `yes` would be a boolean).
bool PlainKey(const std::string& k) {
  if (k.empty() || !std::isalpha(static_cast<unsigned char>(k[0]))) return false;
  for (char c : k) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '/' && c != '-')
      return false;
  }
  std::string lower;
  for (char c : k) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  static const std::set<std::string> kReserved = {"y", "n", "yes", "no", "on", "off",
                                                   "true", "false", "null"};
  return !kReserved.count(lower);
}

std::string Scalar(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Keys in the order kubectl users read them: apiVersion, kind, metadata,
// name, namespace first, then the rest in order.
std::vector<std::string> Keys(const json& obj) {
  static const std::vector<std::string> kFirst = {"apiVersion", "kind", "metadata", "name",
                                                  "namespace"};
  std::vector<std::string> keys;
  for (const auto& k : kFirst) {
    if (obj.contains(k)) keys.push_back(k);
  }
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (std::find(kFirst.begin(), kFirst.end(), it.key()) == kFirst.end()) keys.push_back(it.key());
  }
  return keys;
}

void Emit(const json& v, size_t indent, std::string* out);

// After "key:" or "- ": a scalar or an empty collection on the same line,
// anything else on the lines below.
void EmitValue(const json& v, size_t indent, std::string* out) {
  if (v.is_object() && !v.empty()) {
    out->push_back('\n');
    Emit(v, indent + 2, out);
  } else if (v.is_array() && !v.empty()) {
    out->push_back('\n');
    Emit(v, indent, out);
  } else {
    out->push_back(' ');
    out->append(v.is_object() ? "{}" : v.is_array() ? "[]" : Scalar(v));
    out->push_back('\n');
  }
}

void Emit(const json& v, size_t indent, std::string* out) {
  const std::string pad(indent, ' ');
  if (v.is_object()) {
    for (const std::string& k : Keys(v)) {
      out->append(pad).append(PlainKey(k) ? k : Scalar(json(k))).push_back(':');
      EmitValue(v[k], indent, out);
    }
    return;
  }
  if (v.is_array()) {
    for (const json& item : v) {
      out->append(pad).append("-");
      if (item.is_object() && !item.empty()) {
        // The first key on the dash's line, the rest under it.
        std::string inner;
        Emit(item, indent + 2, &inner);
        out->append(" ").append(inner.substr(indent + 2));
      } else if (item.is_array() && !item.empty()) {
        out->push_back('\n');
        Emit(item, indent + 2, out);
      } else {
        EmitValue(item, indent, out);
      }
    }
    return;
  }
  out->append(pad).append(Scalar(v)).push_back('\n');
}

const char kUsage[] =
    "usage: ipguard import [--parameters FILE]... PATH...\n"
    "Prints the ipguard objects read from Azure Resource Manager JSON (az ... show/list -o json,\n"
    "ARM templates, az bicep build output) as YAML for kubectl apply, each with the annotation\n"
    "ipguard.io/azure-id. PATH is a file, a directory (searched for .json, .yaml and .yml) or -.\n"
    "  --parameters FILE    an ARM parameters file for the templates' [parameters('x')]\n"
    "Exit status: 0 every logical network, cluster and load balancer printed, 1 some not\n"
    "(named on stderr), 2 unreadable input or bad usage.\n";

}  // namespace

std::string ToYaml(const json& v) {
  std::string out;
  if (v.is_object() || v.is_array()) {
    if (v.empty()) return v.is_object() ? "{}\n" : "[]\n";
    Emit(v, 0, &out);
  } else {
    out = Scalar(v) + "\n";
  }
  return out;
}

int ImportMain(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
               std::ostream& err) {
  ArmParameters params;
  std::vector<std::string> paths;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string file;
    if (a == "-h" || a == "--help") {
      out << kUsage;
      return 0;
    }
    const FlagValue parameters = TakeFlagValue(args, &i, "--parameters", &file);
    if (parameters == FlagValue::kMissing) {
      err << "ipguard import: --parameters needs a FILE\n" << kUsage;
      return 2;
    }
    if (parameters == FlagValue::kGiven) {
      Status s = ReadParametersFile(file, &params);
      if (!s.ok()) {
        err << "ipguard import: --parameters: " << s.message() << "\n";
        return 2;
      }
    } else if (a.size() > 1 && a[0] == '-') {
      err << "ipguard import: unknown flag " << a << "\n" << kUsage;
      return 2;
    } else {
      paths.push_back(a);
    }
  }
  if (paths.empty()) {
    err << "ipguard import: no PATH given\n" << kUsage;
    return 2;
  }
  std::vector<Document> docs;
  std::vector<std::string> errors;
  ReadInputs(paths, in, &docs, &errors);
  for (const auto& e : errors) err << "ipguard import: " << e << "\n";

  // Printed in the order `kubectl apply -f` of one file needs (a cluster after
  // its network, as the webhook wants), input order within a kind.
  std::vector<std::pair<int, json>> to_print;
  std::map<std::string, int> skipped;
  std::map<std::string, std::string> printed;  // object key -> where it was read
  int not_printed = 0, objects = 0;
  for (Document& d : docs) {
    auto where = [&](const AzureRead& a) {
      std::string w = d.source + " #" + std::to_string(d.index);
      int item = a.index > 0 ? a.index : d.item;
      if (item > 0) w += " item " + std::to_string(item);
      return w;
    };
    if (IsArmParametersFile(d.json)) {
      ++skipped[kArmParametersSkipped];
      continue;
    }
    if (!IsAzureInput(d.json)) {
      ++skipped["documents that are not Azure resources"];
      continue;
    }
    for (AzureRead& a : ReadAzure(d.json, params)) {
      // What was read but is not clean (a key written twice) is a violation
      // in `ipguard check`: nothing of that document is printed.
      if (!d.problems.empty() && (a.outcome == AzureRead::Outcome::kRead ||
                                  a.outcome == AzureRead::Outcome::kBroken)) {
        ++not_printed;
        for (const auto& p : d.problems)
          err << "ipguard import: " << where(a) << " " << a.description << ": " << p << "\n";
        continue;
      }
      switch (a.outcome) {
        case AzureRead::Outcome::kOtherType:
        case AzureRead::Outcome::kSkipped:
          ++skipped[SkippedAs(a)];
          break;
        case AzureRead::Outcome::kUnread:
          ++not_printed;
          for (const auto& w : a.warnings)
            err << "ipguard import: " << where(a) << " " << a.description << ": not read: " << w << "\n";
          break;
        case AzureRead::Outcome::kBroken:
          ++not_printed;
          for (const auto& e : a.errors)
            err << "ipguard import: " << where(a) << " " << a.description << ": " << e << "\n";
          break;
        case AzureRead::Outcome::kRead: {
          // YAML (and kubectl) carry only UTF-8: a name or id that is not
          // would be printed changed.
          try {
            (void)a.object.dump();
          } catch (const json::exception&) {
            ++not_printed;
            err << "ipguard import: " << where(a) << " " << a.description
                << ": a value is not UTF-8 text: not printed\n";
            break;
          }
          auto obj = ParseObject(a.object);
          const std::string key = obj.ok() ? obj->Key() : a.description;
          auto [it, fresh] = printed.emplace(key, where(a));
          for (const auto& w : a.warnings)
            err << "ipguard import: " << where(a) << " " << a.description << ": warning: " << w << "\n";
          if (!fresh) {
            ++not_printed;
            err << "ipguard import: " << where(a) << " " << a.description
                << ": read as the same object as " << it->second << ": printed once\n";
            break;
          }
          ++objects;
          to_print.push_back({obj.ok() ? ApplyRank(obj->kind) : 0, std::move(a.object)});
          break;
        }
      }
    }
  }
  std::stable_sort(to_print.begin(), to_print.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [rank, object] : to_print) out << "---\n" << ToYaml(object);
  std::string summary;
  for (const auto& [what, n] : skipped) {
    summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + what;
  }
  err << "ipguard import: " << objects << (objects == 1 ? " object" : " objects") << " printed";
  if (not_printed > 0) err << ", " << not_printed << " not printed";
  if (!summary.empty()) err << ", skipped " << summary;
  err << "\n";
  if (!errors.empty()) return 2;
  return not_printed > 0 ? 1 : 0;
}

}  // namespace ipguard
