// Manifest text through the whole `ipguard check` pipeline: YAML/JSON
// parsing, typed objects, every rule and the plan, and Azure Resource
// Manager JSON read into objects (with template parameters of a few types).
// Must never crash or hang.
//
// Also holds `ipguard import`'s YAML to its promise: every object read from
// Azure, written by ToYaml and read back, is the same JSON. A difference
// aborts with both.
//
// Also holds the two YAML readers to one answer (core/yaml_reader.h):
// whatever the fast reader reads, yaml-cpp must read the same, to the same
// JSON, document numbers and duplicate keys; whatever it refuses, yaml-cpp
// must refuse too. A difference aborts with both answers.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cmd/check.h"
#include "cmd/import.h"
#include "core/azure.h"
#include "core/manifest.h"
#include "core/yaml_reader.h"

namespace {

using ipguard::yaml_reader::Reader;
using ipguard::yaml_reader::YamlDocument;

std::string Render(const ipguard::Status& s, const std::vector<YamlDocument>& docs) {
  if (!s.ok()) return "error: " + s.message() + "\n";
  std::string out;
  for (const YamlDocument& d : docs) {
    out += "#" + std::to_string(d.index) + " " +
           d.json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    for (const std::string& k : d.duplicate_keys) out += " [duplicate " + k + "]";
    out += "\n";
  }
  return out;
}

// yaml-cpp's own guards refuse some valid text (they look at bytes, not
// structure); the fast reader needs none of them.
bool GuardRefused(const ipguard::Status& s) {
  const std::string& m = s.message();
  return m.find("nesting is too deep (indentation)") != std::string::npos ||
         m.find("not YAML: nesting is too deep") != std::string::npos ||
         m.find("cannot start with ','") != std::string::npos ||
         m.find("the parser gave up") != std::string::npos;
}

void CheckReadersAgree(const std::string& text) {
  std::vector<YamlDocument> fast_docs, yamlcpp_docs;
  ipguard::yaml_reader::ReadInfo info;
  ipguard::Status fast =
      ipguard::yaml_reader::ReadYaml(text, "fuzz", Reader::kFast, &fast_docs, &info);
  if (info.handed_over) return;
  ipguard::Status yamlcpp =
      ipguard::yaml_reader::ReadYaml(text, "fuzz", Reader::kYamlCpp, &yamlcpp_docs);
  if (!yamlcpp.ok() && GuardRefused(yamlcpp)) return;
  const std::string a = Render(fast, fast_docs);
  const std::string b = Render(yamlcpp, yamlcpp_docs);
  if (fast.ok() == yamlcpp.ok() && (!fast.ok() || a == b)) return;
  std::fprintf(stderr, "the YAML readers disagree\nfast reader:\n%syaml-cpp:\n%s", a.c_str(),
               b.c_str());
  std::abort();
}

const ipguard::ArmParameters& Parameters() {
  static const ipguard::ArmParameters* params = [] {
    auto* p = new ipguard::ArmParameters();
    (void)p->Add(nlohmann::json::parse(R"({"parameters": {
        "prefix": {"value": "10.0.0.0/24"}, "clusterName": {"value": "c1"},
        "vlan": {"value": 7}, "pools": {"value": [{"start": "10.0.0.10", "end": "10.0.0.20"}]},
        "kv": {"reference": {"keyVault": {"id": "x"}, "secretName": "s"}}}})"));
    return p;
  }();
  return *params;
}

void CheckImportRoundTrip(const std::vector<ipguard::Document>& docs) {
  for (const auto& d : docs) {
    if (!ipguard::IsAzureInput(d.json)) continue;
    for (const auto& a : ipguard::ReadAzure(d.json, Parameters())) {
      if (a.outcome != ipguard::AzureRead::Outcome::kRead) continue;
      // Text that is not UTF-8 is refused by ipguard import (nothing can
      // carry it to kubectl).
      try {
        (void)a.object.dump();
      } catch (const nlohmann::json::exception&) {
        continue;
      }
      const std::string yaml = ipguard::ToYaml(a.object);
      std::vector<ipguard::Document> back;
      ipguard::Status s = ipguard::ParseManifests(yaml, "import", &back);
      if (s.ok() && back.size() == 1 && back[0].json == a.object) continue;
      std::fprintf(stderr, "ipguard import's YAML does not read back\nobject: %s\nyaml:\n%s\n%s\n",
                   a.object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str(),
                   yaml.c_str(), s.ok() ? "" : s.message().c_str());
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  CheckReadersAgree(text);
  std::vector<ipguard::Document> docs;
  if (!ipguard::ParseManifests(text, "fuzz", &docs).ok()) return 0;
  CheckImportRoundTrip(docs);
  ipguard::CheckReport report = ipguard::RunRules(docs, {}, nullptr, nullptr, &Parameters());
  (void)ipguard::RenderTable(report);
  (void)ipguard::RenderJson(report).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return 0;
}
