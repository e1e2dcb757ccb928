// The manifest reader and `ipguard check` on 50,000 objects: writes the
// synthetic plan of bench/plan_objects.h (1k LogicalNetworks, 10k
// WorkloadClusters, the rest LoadBalancer Services; and a variant of only
// Services that all ask for one address) as YAML (documents separated by
// `---`, block style as kubectl writes it) and as JSON (a `kind: List`,
// indented as kubectl writes it) into a temporary directory, then
//   1. times ParseManifests alone on each text, cold (the first run, on
//      memory the process has not touched yet, as `ipguard check` runs it)
//      and warm (the best of later runs, on memory freed by earlier ones),
//      and the heap the resulting documents hold, and
//   2. runs the built `ipguard check -o json FILE >/dev/null` on each file as
//      a child process: wall time and the child's peak RSS (wait4).
//
//   build/bench/bench_check [--parse-only] [--keep] [objects] [path/to/ipguard]
//
// (--parse-only: no `ipguard check` runs; --keep: the files stay, to time
// ipguard check on them by hand.)
//
// Timings only; nothing here asserts one.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/child_process.h"
#include "bench/plan_objects.h"
#include "core/manifest.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// True when `s` can be written as a plain YAML scalar and reads back as the
// same string (not a number, bool or null; no indicator, no ": " or " #").
bool PlainSafe(const std::string& s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ' || s.back() == ':') return false;
  if (std::string("-?:,[]{}#&*!|>'\"%@`").find(s.front()) != std::string::npos) return false;
  for (const char* word :
       {"true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL", "~"}) {
    if (s == word) return false;
  }
  int dots = 0;
  bool numeric = true;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == ',' || c == '[' || c == ']' || c == '{' ||
        c == '}') {
      return false;
    }
    if (c == '.') ++dots;
    if (!std::isdigit(static_cast<unsigned char>(c)) &&
        std::string(".+-eExXoOabcdefABCDEF").find(c) == std::string::npos) {
      numeric = false;
    }
  }
  if (numeric && dots < 2) return false;  // might read as a number
  return s.find(": ") == std::string::npos && s.find(" #") == std::string::npos;
}

void Scalar(const json& v, std::string* out) {
  if (v.is_string() && PlainSafe(v.get_ref<const std::string&>())) {
    *out += v.get_ref<const std::string&>();
  } else if (v.is_object()) {
    *out += "{}";
  } else if (v.is_array()) {
    *out += "[]";
  } else {
    *out += v.dump();  // a JSON string is a valid double-quoted YAML scalar
  }
}

bool Nested(const json& v) { return (v.is_object() || v.is_array()) && !v.empty(); }

// Block YAML as kubectl writes it: sequences at their key's indentation,
// mappings in a sequence entry start on the dash's line.
void Yaml(const json& j, int indent, bool first_inline, std::string* out) {
  const std::string pad(indent, ' ');
  if (j.is_object()) {
    bool first = true;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!(first && first_inline)) *out += pad;
      first = false;
      *out += it.key() + ":";
      if (Nested(it.value())) {
        *out += "\n";
        Yaml(it.value(), it.value().is_object() ? indent + 2 : indent, false, out);
      } else {
        *out += " ";
        Scalar(it.value(), out);
        *out += "\n";
      }
    }
    return;
  }
  for (const json& v : j) {
    *out += pad + "- ";
    if (v.is_object() && !v.empty()) {
      Yaml(v, indent + 2, true, out);
    } else if (Nested(v)) {
      *out += "\n";
      Yaml(v, indent + 2, false, out);
    } else {
      Scalar(v, out);
      *out += "\n";
    }
  }
}

struct Plan {
  std::string name;
  std::vector<json> objects;
};

Plan Mixed(int count) {
  const int networks = std::min(1000, count), clusters = std::min(10000, count - networks);
  Plan p{"mixed", {}};
  p.objects.reserve(count);
  for (int n = 0; n < networks; ++n) p.objects.push_back(ipguard::bench::NetworkJson(n));
  for (int c = 0; c < clusters; ++c) {
    p.objects.push_back(
        ipguard::bench::ClusterJson(c, networks, "team-" + std::to_string(c % 100)));
  }
  for (int s = 0; s < count - networks - clusters; ++s)
    p.objects.push_back(ipguard::bench::ServiceJson(s));
  return p;
}

// Every Service asks for the address of the first: the worst case of
// collisions for the rules, the same text size for the reader.
Plan OneAddress(int count) {
  Plan p{"one-address", {}};
  p.objects.reserve(count);
  const std::string ip = ipguard::bench::ServiceIp(0);
  for (int s = 0; s < count; ++s) {
    json svc = ipguard::bench::ServiceJson(s);
    svc["metadata"]["annotations"]["metallb.io/loadBalancerIPs"] = ip;
    svc["status"]["loadBalancer"]["ingress"][0]["ip"] = ip;
    p.objects.push_back(std::move(svc));
  }
  return p;
}

std::string YamlText(const Plan& p) {
  std::string out;
  for (const json& obj : p.objects) {
    out += "---\n";
    Yaml(obj, 0, false, &out);
  }
  return out;
}

std::string JsonText(const Plan& p) {
  json list = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", p.objects}};
  return list.dump(2) + "\n";
}

size_t HeapInUse() {
  ::malloc_trim(0);
  return mallinfo2().uordblks;
}

struct ParseFigures {
  double cold_seconds = 0;  // the first run, on memory the process has yet to touch
  double warm_seconds = 0;  // the best later run, on memory the earlier runs freed
  size_t documents = 0;
  size_t heap = 0;  // held by the documents
  std::string error;
};

// A fresh `ipguard check` process touches the documents' memory for the
// first time, which on a VM costs more than building them: the cold run
// returns the heap to the system first (malloc_trim), the warm ones reuse it.
ParseFigures TimeParse(const std::string& text, const std::string& source) {
  ParseFigures f;
  f.warm_seconds = 1e9;
  for (int run = 0; run < 4; ++run) {
    const size_t before = run == 0 ? HeapInUse() : 0;
    std::vector<ipguard::Document> docs;
    auto t0 = std::chrono::steady_clock::now();
    ipguard::Status s = ipguard::ParseManifests(text, source, &docs);
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!s.ok()) {
      f.error = s.message();
      return f;
    }
    f.documents = docs.size();
    if (run == 0) {
      f.cold_seconds = dt;
      f.heap = HeapInUse() - before;
    } else {
      f.warm_seconds = std::min(f.warm_seconds, dt);
    }
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  if (ipguard::bench::MaybeRunChild(argc, argv)) return 0;
  std::vector<std::string> args(argv + 1, argv + argc);
  bool parse_only = false, keep = false;
  while (!args.empty() && (args[0] == "--parse-only" || args[0] == "--keep")) {
    (args[0] == "--keep" ? keep : parse_only) = true;
    args.erase(args.begin());
  }
  const int count = !args.empty() ? std::atoi(args[0].c_str()) : 50000;
  std::string binary =
      args.size() > 1
          ? args[1]
          : (fs::canonical("/proc/self/exe").parent_path().parent_path() / "cmd" / "ipguard")
                .string();
  if (!fs::exists(binary)) {
    std::fprintf(stderr, "no ipguard binary at %s (pass its path as the second argument)\n",
                 binary.c_str());
    return 2;
  }
  char dir_template[] = "/tmp/bench_check.XXXXXX";
  if (!mkdtemp(dir_template)) {
    std::perror("mkdtemp");
    return 2;
  }
  const fs::path dir(dir_template);
  std::printf("%d objects; files in %s; ipguard at %s\n\n", count, dir.c_str(), binary.c_str());
  std::printf("(ipguard check is stopped after %.0f s or at %llu GB of address space)\n\n",
              ipguard::bench::kChildTimeoutSeconds,
              static_cast<unsigned long long>(ipguard::bench::kChildAddressSpaceLimit >> 30));
  std::printf("%-12s %-5s %6s | %14s %14s %6s %10s | %8s %9s  %s\n", "plan", "form", "MB",
              "parse cold", "parse warm", "docs", "docs heap", "check", "peak RSS", "outcome");
  for (int which = 0; which < 2; ++which) {
    const Plan plan = which == 0 ? Mixed(count) : OneAddress(count);
    for (const char* form : {"yaml", "json"}) {
      const bool yaml = std::string(form) == "yaml";
      const std::string text = yaml ? YamlText(plan) : JsonText(plan);
      const fs::path file = dir / (plan.name + "." + form);
      std::ofstream(file, std::ios::binary) << text;
      ParseFigures p = TimeParse(text, file.string());
      if (!p.error.empty()) {
        std::fprintf(stderr, "%s: %s\n", file.c_str(), p.error.c_str());
        return 1;
      }
      ipguard::bench::ChildRun r;
      if (!parse_only) r = ipguard::bench::RunChild(binary, {"check", "-o", "json", file.string()}, false);
      const double mb = static_cast<double>(text.size()) / 1e6;
      std::printf(
          "%-12s %-5s %6.1f | %6.0f ms %3.0f MB/s %6.0f ms %3.0f MB/s %6zu %7.0f MB | %6.2f s "
          "%6.0f MB  %s\n",
          plan.name.c_str(), form, mb, p.cold_seconds * 1e3, mb / p.cold_seconds,
          p.warm_seconds * 1e3, mb / p.warm_seconds, p.documents, static_cast<double>(p.heap) / 1e6,
          r.seconds, static_cast<double>(r.peak_rss_kb) / 1024, r.outcome.c_str());
      std::fflush(stdout);
    }
  }
  if (!keep) fs::remove_all(dir);
  return 0;
}
