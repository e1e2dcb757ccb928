#include "core/manifest.h"

#include <cstdlib>
#include <memory>
#include <optional>
#include <utility>

#include "core/json_text.h"
#include "core/objects.h"
#include "core/yaml_reader.h"

namespace ipguard {
namespace {

using nlohmann::json;

std::string Where(const std::string& source, int index) {
  return source + ": document " + std::to_string(index);
}

// Read item by item: `kind: List`, and `<Kind>List` of a kind ipguard
// judges (a DeploymentList stays one document, skipped as its kind is).
std::optional<std::string> ListKind(const json& doc) {
  if (!doc.is_object()) return std::nullopt;
  auto kind = doc.find("kind");
  if (kind == doc.end() || !kind->is_string() || !doc.contains("items")) return std::nullopt;
  const std::string& k = kind->get_ref<const std::string&>();
  if (k == "List") return k;
  constexpr std::string_view kSuffix = "List";
  if (k.size() <= kSuffix.size() ||
      k.compare(k.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return std::nullopt;
  }
  auto api = doc.find("apiVersion");
  if (api == doc.end() || !api->is_string()) return std::nullopt;
  if (!KindOf(api->get_ref<const std::string&>(), k.substr(0, k.size() - kSuffix.size())))
    return std::nullopt;
  return k;
}

// Splits duplicate-key paths between the elements of the array at `prefix`
// ("items" or "" for the root) and the rest.
void SplitPaths(std::vector<std::string> paths, const std::string& prefix, size_t elements,
                std::vector<std::vector<std::string>>* per_element,
                std::vector<std::string>* rest) {
  per_element->assign(elements, {});
  for (std::string& p : paths) {
    if (p.compare(0, prefix.size(), prefix) == 0 && p.size() > prefix.size() + 2 &&
        p[prefix.size()] == '[') {
      char* end = nullptr;
      const unsigned long i = std::strtoul(p.c_str() + prefix.size() + 1, &end, 10);
      if (*end == ']' && i < elements && (end[1] == '.' || end[1] == '[')) {
        (*per_element)[i].push_back(std::string(end[1] == '.' ? end + 2 : end + 1));
        continue;
      }
    }
    rest->push_back(std::move(p));
  }
}

std::vector<std::string> Problems(std::vector<std::string> duplicate_paths) {
  for (std::string& p : duplicate_paths) p.insert(0, "duplicate key ");
  return duplicate_paths;
}

// Adds a document, item by item when it is a List, or a list at its root (a
// JSON array, `az ... list -o yaml`).
Status Add(json doc, std::vector<std::string> duplicates, const std::string& source, int index,
           int item, const DocumentSink& out) {
  if (doc.is_null()) return Status::Ok();  // an empty document between separators
  if (doc.is_array() && item == 0) {
    std::vector<std::vector<std::string>> per_element;
    std::vector<std::string> outside;  // none: a list has no keys of its own
    auto& arr = doc.get_ref<json::array_t&>();
    SplitPaths(std::move(duplicates), "", arr.size(), &per_element, &outside);
    for (size_t i = 0; i < arr.size(); ++i) {
      Status s = Add(std::move(arr[i]), std::move(per_element[i]), source, index,
                     static_cast<int>(i) + 1, out);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }
  std::optional<std::string> list = ListKind(doc);
  if (!list) {
    out.add({source, index, std::move(doc), item, Problems(std::move(duplicates))});
    return Status::Ok();
  }
  json& items = doc["items"];
  if (!items.is_array())
    return Status::Error(Where(source, index) + ": items of a " + *list + " must be a list");
  std::vector<std::vector<std::string>> per_item;
  std::vector<std::string> outside;
  SplitPaths(std::move(duplicates), "items", items.size(), &per_item, &outside);
  if (items.empty()) {
    if (!outside.empty())
      out.add({source, index, std::move(doc), item, Problems(std::move(outside))});
    return Status::Ok();
  }
  per_item[0].insert(per_item[0].begin(), outside.begin(), outside.end());
  auto& arr = items.get_ref<json::array_t&>();
  for (size_t i = 0; i < arr.size(); ++i) {
    out.add({source, index, std::move(arr[i]), static_cast<int>(i) + 1,
             Problems(std::move(per_item[i]))});
  }
  return Status::Ok();
}

bool LooksLikeJson(std::string_view text) {
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '{' || c == '[';
  }
  return false;
}

// JSON text: true when it was JSON (then `*status` says how it went).
bool ParseJson(std::string_view text, const std::string& source, const DocumentSink& docs,
               Status* status) {
  JsonText parsed = ParseJsonText(text, yaml_reader::kMaxDepth);
  if (parsed.too_deep) {
    *status =
        Status::Error(Where(source, 1) + ": nesting is too deep (more than " +
                      std::to_string(yaml_reader::kMaxDepth) + " collections inside one another)");
    return true;
  }
  if (!parsed.ok) return false;  // not JSON after all; YAML is a superset, let it try and report
  *status = Add(std::move(parsed.value), std::move(parsed.duplicates), source, 1, 0, docs);
  return true;
}

// Why JSON text is not JSON, as nlohmann::json says it, for `source`;
// `fallback` when it parses after all.
Status JsonError(std::string_view text, const std::string& source, Status fallback) {
  try {
    json parsed = json::parse(text.begin(), text.end());
    (void)parsed;
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 3, column 1: ..."
    size_t close = what.find("] ");
    if (what.rfind("[json.exception.", 0) == 0 && close != std::string::npos) what.erase(0, close + 2);
    return Status::Error(Where(source, 1) + ": not JSON: " + what);
  } catch (const std::exception&) {
  }
  return fallback;
}

}  // namespace

Status ParseManifests(std::string_view text, const std::string& source, const DocumentSink& sink) {
  // Documents go to the sink as they are read and are taken back on an
  // error.
  Status status;
  try {
    if (!LooksLikeJson(text) || !ParseJson(text, source, sink, &status)) {
      // A List's items go one by one; the first error stops the reading.
      Status added;
      yaml_reader::YamlSink yaml{[&](yaml_reader::YamlDocument&& d) {
                                   if (!added.ok()) return;
                                   added = Add(std::move(d.json), std::move(d.duplicate_keys), source,
                                               d.index, 0, sink);
                                 },
                                 [&] {
                                   added = Status::Ok();
                                   sink.take_back();
                                 }};
      status = yaml_reader::ReadYaml(text, source, yaml_reader::Reader::kAuto, yaml);
      // Text that starts as JSON and is neither: the JSON parser says best
      // what is wrong (a file cut short, a missing comma).
      if (!status.ok() && LooksLikeJson(text)) status = JsonError(text, source, status);
      if (status.ok()) status = added;
    }
  } catch (const std::exception& e) {
    status = Status::Error(source + ": not YAML or JSON: " + e.what());
  }
  if (!status.ok()) {
    sink.take_back();
  } else if (sink.keep) {
    sink.keep();
  }
  return status;
}

Status ParseManifests(std::string_view text, const std::string& source,
                      std::vector<Document>* out) {
  return ParseManifests(text, source, AppendingTo(out));
}

DocumentSink AppendingTo(std::vector<Document>* out) {
  // Shared by the sink's copies: the size when it was made or last kept.
  auto kept = std::make_shared<size_t>(out->size());
  return DocumentSink{[out](Document&& d) { out->push_back(std::move(d)); },
                      [out, kept] { out->resize(*kept); },
                      [out, kept] { *kept = out->size(); }};
}

}  // namespace ipguard
