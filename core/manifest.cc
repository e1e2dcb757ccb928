#include "core/manifest.h"

#include <yaml-cpp/yaml.h>

#include "core/alloc_budget.h"

#include <cmath>
#include <regex>

namespace ipguard {
namespace {

using nlohmann::json;

// yaml-cpp parses recursively; deep nesting would exhaust the stack, and
// aliases can expand exponentially. Both are refused before and during
// conversion.
constexpr int kMaxDepth = 64;
constexpr size_t kMaxNodes = 2'000'000;
constexpr size_t kYamlBudgetBase = 8u << 20;
constexpr size_t kYamlBudgetPerByte = 512;

// A cheap upper bound on nesting, checked before yaml-cpp sees the text:
// flow brackets, block indentation and "- - -" chains on one line.
Status CheckNesting(std::string_view text) {
  int flow = 0;
  bool line_start = true;
  int indent = 0;
  int dashes = 0;
  char quote = 0;
  for (char c : text) {
    if (c == '\n') {
      line_start = true;
      indent = 0;
      dashes = 0;
      quote = 0;
      continue;
    }
    if (quote) {
      if (c == quote) quote = 0;
      continue;
    }
    if (line_start) {
      if (c == ' ') {
        if (++indent > 4 * kMaxDepth) return Status::Error("nesting is too deep (indentation)");
        continue;
      }
      if (c == '-') {
        if (++dashes > kMaxDepth) return Status::Error("nesting is too deep");
        continue;
      }
      line_start = false;
    }
    if (c == '#') {
      // comment to end of line: skip the rest by pretending we are in a quote
      // that only a newline ends
      quote = '\n';
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      if (++flow > kMaxDepth) return Status::Error("nesting is too deep");
    } else if (c == ']' || c == '}') {
      if (flow > 0) --flow;
    }
  }
  return Status::Ok();
}

// yaml-cpp 0.7 loops, allocating without bound, when a document's root node
// starts with ',' (after optional tag and anchor). Such text is not valid
// YAML anyway, so it is refused before yaml-cpp sees it.
Status CheckRootStarts(std::string_view text) {
  bool expecting_root = true;
  int line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    ++line_no;
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (line.substr(0, 3) == "---" || line.substr(0, 3) == "...") {
      expecting_root = true;
      line.remove_prefix(3);
    } else if (expecting_root && !line.empty() && line[0] == '%') {
      continue;  // a directive
    }
    if (!expecting_root) continue;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      if (i < line.size() && (line[i] == '!' || line[i] == '&')) {
        while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != ',') ++i;
        continue;
      }
      break;
    }
    if (i >= line.size() || line[i] == '#') continue;  // nothing yet on this line
    if (line[i] == ',') {
      return Status::Error("a document cannot start with ',' (line " + std::to_string(line_no) + ")");
    }
    expecting_root = false;
  }
  return Status::Ok();
}

bool IsNull(const std::string& s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

// YAML 1.2 core schema resolution of a plain scalar.
json Scalar(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  const std::string& tag = node.Tag();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return s;
  if (tag != "?" && !tag.empty()) {
    if (tag == "tag:yaml.org,2002:int") {
      try {
        return std::stoll(s, nullptr, 0);
      } catch (...) {
        return s;
      }
    }
    return s;
  }
  if (IsNull(s)) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kHex("0x[0-9a-fA-F]+");
  static const std::regex kOct("0o[0-7]+");
  static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (s.size() <= 40) {
    try {
      if (std::regex_match(s, kInt)) {
        errno = 0;
        long long v = std::strtoll(s.c_str(), nullptr, 10);
        if (errno == ERANGE) return std::strtod(s.c_str(), nullptr);
        return v;
      }
      if (std::regex_match(s, kHex)) return std::stoll(s.substr(2), nullptr, 16);
      if (std::regex_match(s, kOct)) return std::stoll(s.substr(2), nullptr, 8);
      if (std::regex_match(s, kFloat)) {
        double d = std::strtod(s.c_str(), nullptr);
        if (std::isfinite(d)) return d;
      }
    } catch (...) {
      return s;  // out of range: keep the text
    }
  }
  return s;
}

Result<json> Convert(const YAML::Node& node, int depth, size_t* nodes) {
  if (depth > kMaxDepth) return Status::Error("nesting is too deep");
  if (++*nodes > kMaxNodes) return Status::Error("the document is too large (aliases expand too far?)");
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      return Scalar(node);
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (const auto& item : node) {
        auto v = Convert(item, depth + 1, nodes);
        if (!v.ok()) return v.status();
        arr.push_back(std::move(v).value());
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) return Status::Error("a map key is not a plain value");
        auto v = Convert(kv.second, depth + 1, nodes);
        if (!v.ok()) return v.status();
        obj[kv.first.Scalar()] = std::move(v).value();
      }
      return obj;
    }
  }
  return json(nullptr);
}

std::string Where(const std::string& source, int index) {
  return source + ": document " + std::to_string(index);
}

// Adds a document, expanding `kind: List` (what `kubectl get -o yaml` writes).
Status Add(json doc, const std::string& source, int index, std::vector<Document>* out) {
  if (doc.is_null()) return Status::Ok();  // an empty document between separators
  auto kind = doc.is_object() ? doc.find("kind") : doc.end();
  bool is_list = kind != doc.end() && kind->is_string() && *kind == "List" && doc.contains("items");
  if (is_list) {
    const json& items = doc["items"];
    if (!items.is_array()) return Status::Error(Where(source, index) + ": items of a List must be a list");
    for (const json& item : items) out->push_back({source, index, item});
    return Status::Ok();
  }
  out->push_back({source, index, std::move(doc)});
  return Status::Ok();
}

bool LooksLikeJson(std::string_view text) {
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '{' || c == '[';
  }
  return false;
}

}  // namespace

Status ParseManifests(std::string_view text, const std::string& source, std::vector<Document>* out) {
  std::vector<Document> docs;
  Status nesting = CheckNesting(text);
  if (!nesting.ok()) return Status::Error(source + ": not YAML or JSON: " + nesting.message());
  if (LooksLikeJson(text)) {
    json doc = json::parse(text.begin(), text.end(), nullptr, false);
    if (doc.is_discarded()) {
      // Not JSON after all; YAML is a superset, let it try and report.
    } else {
      if (doc.is_array()) {
        for (auto& item : doc) {
          Status s = Add(std::move(item), source, 1, &docs);
          if (!s.ok()) return s;
        }
      } else {
        Status s = Add(std::move(doc), source, 1, &docs);
        if (!s.ok()) return s;
      }
      out->insert(out->end(), docs.begin(), docs.end());
      return Status::Ok();
    }
  }
  Status root = CheckRootStarts(text);
  if (!root.ok()) return Status::Error(source + ": not YAML: " + root.message());
  std::vector<YAML::Node> nodes;
  try {
    // Generous for real manifests (yaml-cpp allocates ~50x the text), and a
    // hard stop for inputs that make it loop. The budget must be gone before
    // anything else allocates, hence the flag.
    bool gave_up = false;
    {
      AllocationBudget budget(kYamlBudgetBase + kYamlBudgetPerByte * text.size());
      try {
        nodes = YAML::LoadAll(std::string(text));
      } catch (const std::bad_alloc&) {
        if (!budget.exceeded()) throw;
        gave_up = true;
      }
    }
    if (gave_up) {
      nodes.clear();
      return Status::Error(source + ": not YAML: the parser gave up (it needed far more memory " +
                           "than a text this size can); the input is malformed");
    }
  } catch (const YAML::Exception& e) {
    // Count the separators before the failing line to name the document.
    int doc = 1;
    int line = 0;
    size_t pos = 0;
    while (pos < text.size() && (e.mark.line < 0 || line < e.mark.line)) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string_view::npos) break;
      if (text.substr(pos, 3) == "---" && line > 0) ++doc;
      pos = nl + 1;
      ++line;
    }
    return Status::Error(Where(source, doc) + ": not YAML: " + e.msg + " at line " +
                         std::to_string(e.mark.line + 1) + ", column " +
                         std::to_string(e.mark.column + 1));
  } catch (const std::exception& e) {
    return Status::Error(source + ": not YAML: " + e.what());
  }
  size_t total_nodes = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    int index = static_cast<int>(i) + 1;
    Result<json> j = Status::Error("unreachable");
    try {
      j = Convert(nodes[i], 0, &total_nodes);
    } catch (const std::exception& e) {
      return Status::Error(Where(source, index) + ": not YAML: " + e.what());
    }
    if (!j.ok()) return Status::Error(Where(source, index) + ": " + j.error());
    Status s = Add(std::move(j).value(), source, index, &docs);
    if (!s.ok()) return s;
  }
  out->insert(out->end(), docs.begin(), docs.end());
  return Status::Ok();
}

}  // namespace ipguard
