#include "cmd/check.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace ipguard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Plural(int n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string Count(const std::optional<uint64_t>& v) { return v ? std::to_string(*v) : "-"; }
std::string Count(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "-"; }

// Left-aligned columns, two spaces apart.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size());
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

void Entries(const std::string& title, const std::vector<PlanEntry>& entries,
             std::vector<std::vector<std::string>>* rows) {
  for (const auto& e : entries) {
    std::string owner = e.owner + " " + e.field;
    if (e.required > 0) owner += " (needs " + std::to_string(e.required) + " node addresses)";
    rows->push_back({"  " + title, e.block, owner});
  }
}

// "document 3", or "document 3, item 2" for an item of a List.
std::string DocumentName(int document, int item) {
  return "document " + std::to_string(document) + (item > 0 ? ", item " + std::to_string(item) : "");
}

// Read straight into the string, in blocks: no stream buffer and no second
// copy (a 50,000-object plan is tens of megabytes).
Status ReadFile(const fs::path& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::Error(path.string() + ": cannot be read");
  out->clear();
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (!ec) out->reserve(static_cast<size_t>(size));
  char block[1 << 16];
  while (f.read(block, sizeof block) || f.gcount() > 0) {
    out->append(block, static_cast<size_t>(f.gcount()));
  }
  if (f.bad()) return Status::Error(path.string() + ": cannot be read");
  return Status::Ok();
}

// A file's extension in lowercase: Windows writes LNETS.JSON as readily.
std::string Extension(const fs::path& p) {
  std::string ext = p.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

bool HasJsonExtension(const std::string& path) { return Extension(path) == ".json"; }

bool IsManifest(const fs::path& p) {
  const std::string ext = Extension(p);
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

// Reads one command-line path into documents; errors go to `errors`.
void ReadPath(const std::string& arg, std::istream& in, const DocumentSink& docs,
              std::vector<std::string>* errors) {
  auto parse = [&](const std::string& text, const std::string& source) {
    // An empty YAML file holds no document and is fine; an empty .json file
    // is not JSON, and is what a failed `az ... -o json > FILE` leaves.
    if (HasJsonExtension(source) &&
        text.find_first_not_of(" \t\r\n") == std::string::npos) {
      errors->push_back(source + ": empty: a .json file holds a JSON value (a failed export leaves it so)");
      return;
    }
    Status s = ParseManifests(text, source, docs);
    if (!s.ok()) errors->push_back(s.message());
  };
  if (arg == "-") {
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    parse(text, "-");
    return;
  }
  std::error_code ec;
  fs::path path(arg);
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file(ec) && IsManifest(it->path())) files.push_back(it->path());
    }
    if (ec) {
      errors->push_back(arg + ": cannot be read: " + ec.message());
      return;
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::string text;
      Status s = ReadFile(f, &text);
      if (!s.ok()) {
        errors->push_back(s.message());
        continue;
      }
      parse(text, f.string());
    }
    return;
  }
  if (!fs::exists(path, ec)) {
    errors->push_back(arg + ": no such file or directory");
    return;
  }
  std::string text;
  Status s = ReadFile(path, &text);
  if (!s.ok()) {
    errors->push_back(s.message());
    return;
  }
  parse(text, arg);
}

}  // namespace

void ReadInputs(const std::vector<std::string>& paths, std::istream& in, const DocumentSink& sink,
                std::vector<std::string>* errors) {
  for (const auto& p : paths) ReadPath(p, in, sink, errors);
}

void ReadInputs(const std::vector<std::string>& paths, std::istream& in, std::vector<Document>* docs,
                std::vector<std::string>* errors) {
  ReadInputs(paths, in, AppendingTo(docs), errors);
}

FlagValue TakeFlagValue(const std::vector<std::string>& args, size_t* i, const std::string& flag,
                        std::string* value) {
  const std::string& a = args[*i];
  if (a == flag) {
    if (*i + 1 >= args.size()) return FlagValue::kMissing;
    *value = args[++*i];
    return FlagValue::kGiven;
  }
  if (a.size() > flag.size() && a.compare(0, flag.size(), flag) == 0 && a[flag.size()] == '=') {
    *value = a.substr(flag.size() + 1);
    return FlagValue::kGiven;
  }
  return FlagValue::kAbsent;
}

Status ReadParametersFile(const std::string& path, ArmParameters* params) {
  std::string text;
  Status s = ReadFile(path, &text);
  if (!s.ok()) return s;
  std::vector<Document> docs;
  s = ParseManifests(text, path, &docs);
  if (!s.ok()) return s;
  if (docs.size() != 1) return Status::Error(path + ": an ARM parameters file is one JSON object");
  s = params->Add(docs[0].json);
  if (!s.ok()) return Status::Error(path + ": " + s.message());
  return Status::Ok();
}

namespace {

const char kUsage[] =
    "usage: ipguard check [-o table|json|junit] [-q] [--strict] [--platform azurelocal|vmware]\n"
    "                     [--capacity-policy Enforce|Warn]\n"
    "                     [--from-cluster [--kubeconfig PATH] [--context NAME]]\n"
    "                     [--parameters FILE]... PATH...\n"
    "PATH is a file, a directory (searched for .yaml, .yml and .json) or - for stdin:\n"
    "Kubernetes manifests, and Azure Resource Manager JSON (az ... show/list -o json, ARM\n"
    "templates and az bicep build output).\n"
    "  -o, --output FORMAT  table (default), json or junit; also -ojson, --output=json\n"
    "  -q                   only the violations and the result line (table)\n"
    "  --strict             warnings and skipped documents count as violations\n"
    "  --from-cluster       start from the objects in the cluster instead of an empty one;\n"
    "                       the input replaces objects of the same kind and name\n"
    "  --kubeconfig PATH    with --from-cluster (default: $KUBECONFIG, then ~/.kube/config)\n"
    "  --context NAME       with --from-cluster (default: the current context)\n"
    "  --parameters FILE    an ARM parameters file for the templates' [parameters('x')]\n"
    "Exit status: 0 clean, 1 violations, 2 unreadable input or bad usage.\n";

}  // namespace

int ApplyRank(Kind k) {
  switch (k) {
    case Kind::kLogicalNetwork:
      return 0;
    case Kind::kIPReservation:
      return 1;
    case Kind::kIPClaim:
      return 2;
    case Kind::kLoadBalancerPool:
      return 3;
    case Kind::kIPAddressPool:
      return 4;
    case Kind::kWorkloadCluster:
      return 5;
    case Kind::kService:
      return 6;
  }
  return 7;
}

int CheckReport::Skipped() const {
  int n = static_cast<int>(not_objects.size());
  for (const auto& [kind, count] : skipped) n += count;
  return n;
}

namespace {

// Where the other side of the violation at `index` came from; nullptr when
// it did not come from the input (or the violation is no collision).
const Origin* OtherOf(const ObjectResult& r, size_t index) {
  for (const auto& [i, o] : r.others) {
    if (i == index) return &o;
  }
  return nullptr;
}

// Appends "b.yaml #3", or "b.yaml #3 item 2" for an item of a List.
void AppendPlace(std::string* out, const std::string& source, int document, int item) {
  out->append(source).append(" #").append(std::to_string(document));
  if (item > 0) out->append(" item ").append(std::to_string(item));
}

// Appends " (other side: b.yaml #3)", or nothing.
void AppendOtherSide(std::string* out, const CheckReport& report, const Origin* o) {
  if (!o) return;
  if (o->in_cluster) {
    out->append(" (other side: in the cluster)");
    return;
  }
  const ObjectResult& other = report.results[o->result];
  out->append(" (other side: ");
  AppendPlace(out, other.source, other.document, other.item);
  out->push_back(')');
}

std::string OtherSide(const CheckReport& report, const ObjectResult& r, size_t index) {
  std::string out;
  AppendOtherSide(&out, report, OtherOf(r, index));
  return out;
}

// An object's case fails: it has violations, or warnings under --strict.
bool Fails(const ObjectResult& r, bool strict) {
  return !r.verdict.violations.empty() || (strict && !r.verdict.warnings.empty());
}

std::string SkippedSummary(const CheckReport& report) {
  std::string kinds;
  for (const auto& [k, n] : report.skipped) {
    kinds += (kinds.empty() ? "" : ", ") + std::to_string(n) + " " + k;
  }
  if (!report.not_objects.empty()) {
    kinds += (kinds.empty() ? "" : ", ") + std::to_string(report.not_objects.size()) +
             " not Kubernetes objects";
  }
  return kinds;
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 allows no control characters but tab, newline and return.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

// "WorkloadCluster team-a/prod is defined more than once (first in
// plan/clusters.yaml: document 1)".
std::string DefinedTwice(const Object& obj, const ObjectResult& first) {
  return obj.Describe() + " is defined more than once (first in " + first.source + ": " +
         DocumentName(first.document, first.item) + ")";
}

}  // namespace

// An object read from the input, waiting for every document to be read
// (judged in apply order), with where it was read.
struct CheckRun::Pending {
  const std::string* source = nullptr;  // in CheckRun::sources_
  int document = 0;
  int item = 0;
  Object obj;
  // The document's problems, on the first object read from it.
  std::vector<std::string> problems;
  // Read from Azure: its id and what reading it warned of.
  std::string azure_id;
  std::vector<std::string> read_warnings;
  // What differs from the Azure resource of the same kind and name (on
  // the plan's object), and that resource's result.
  std::vector<std::string> drift, drift_warnings;
  std::optional<size_t> twin;
  bool taken = false;  // an Azure resource paired with the plan's object
};

// What the documents of the source being read add to the report; kept
// with its source, or dropped when the source turns out unreadable.
struct CheckRun::Stage {
  std::vector<ObjectResult> results;
  std::map<std::string, int> skipped;
  std::vector<std::string> not_objects;
  std::map<std::string, std::string> unread_networks;
  int objects = 0;
  size_t pending_mark = 0;
};

CheckRun::CheckRun(const Options& options, const std::vector<Object>* live, ResultFn on_result,
                   const ArmParameters* azure_params)
    : options_(options),
      live_(live),
      on_result_(std::move(on_result)),
      azure_params_(azure_params ? azure_params : &no_params_),
      stage_(new Stage()) {}

CheckRun::~CheckRun() = default;

DocumentSink CheckRun::Sink() {
  return DocumentSink{[this](Document&& d) { Add(std::move(d)); }, [this] { TakeBack(); },
                      [this] { Keep(); }};
}

void CheckRun::Report(ObjectResult r) {
  report_.violations += static_cast<int>(r.verdict.ViolationCount());
  report_.warnings += static_cast<int>(r.verdict.warnings.size());
  if (on_result_) {
    on_result_(report_, r);
    // Assigned fresh containers, which free their memory (`= {}` would
    // keep the capacity: 50k objects of 20 collisions each held 90 MB).
    r.verdict = Verdict();
    r.others = decltype(r.others)();
  }
  report_.results.push_back(std::move(r));
}

ObjectResult CheckRun::PendingResult(const Pending& p) {
  ObjectResult r{*p.source, p.document, p.obj.Describe(), p.item, {}, {}, {}};
  r.verdict.violations = p.problems;
  r.azure_id = p.azure_id;
  return r;
}

void CheckRun::TakeBack() {
  pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(stage_->pending_mark), pending_.end());
  *stage_ = Stage();
  stage_->pending_mark = pending_.size();
}

void CheckRun::Keep() {
  Stage& st = *stage_;
  report_.objects += st.objects;
  for (const auto& [what, n] : st.skipped) report_.skipped[what] += n;
  report_.not_objects.insert(report_.not_objects.end(), st.not_objects.begin(), st.not_objects.end());
  unread_networks_.insert(st.unread_networks.begin(), st.unread_networks.end());
  for (ObjectResult& r : st.results) Report(std::move(r));
  st = Stage();
  st.pending_mark = pending_.size();
}

void CheckRun::Add(Document&& d) {
  Stage& st = *stage_;
  // Each document's JSON is dropped once read: the typed objects are a
  // fraction of its size.
  const json j = std::move(d.json);
  d.json = json();
  if (sources_.empty() || sources_.back() != d.source) sources_.push_back(d.source);
  const std::string* source = &sources_.back();
  // A result for `d` whose violations start with what was read but is not
  // clean, such as a key written twice.
  auto result_of = [&](std::string object) {
    ObjectResult r{d.source, d.index, std::move(object), d.item, {}, {}, {}};
    r.verdict.violations = d.problems;
    return r;
  };
  auto pending = [&](Object obj, int item) -> Pending& {
    Pending& p = pending_.emplace_back();
    p.source = source;
    p.document = d.index;
    p.item = item;
    p.obj = std::move(obj);
    return p;
  };
  // Networks of the Azure input that could not be read: what names one is
  // told so, not only that it is not found. By the end of the message that
  // says it is not found.
  auto note_unread = [&](const AzureRead& a) {
    if (a.kind == Kind::kLogicalNetwork && !a.name.empty()) {
      st.unread_networks.emplace("LogicalNetwork " + QuoteValue(a.name) + " not found", a.description);
    }
  };
  if (IsArmParametersFile(j)) {
    ++st.skipped[kArmParametersSkipped];
    return;
  }
  if (IsAzureInput(j)) {
    bool first = true;
    for (AzureRead& a : ReadAzure(j, *azure_params_)) {
      const int item = a.index > 0 ? a.index : d.item;
      auto azure_result = [&](const std::string& object) {
        ObjectResult r = result_of(object);
        if (!first) r.verdict.violations.clear();
        first = false;
        r.item = item;
        r.azure_id = a.id;
        return r;
      };
      switch (a.outcome) {
        case AzureRead::Outcome::kOtherType:
        case AzureRead::Outcome::kSkipped:
          ++st.skipped[SkippedAs(a)];
          break;
        case AzureRead::Outcome::kUnread: {
          note_unread(a);
          ObjectResult r = azure_result(a.description);
          for (auto& w : a.warnings) r.verdict.warnings.push_back("not read: " + w);
          ++st.skipped["Azure resources not read"];
          st.results.push_back(std::move(r));
          break;
        }
        case AzureRead::Outcome::kBroken: {
          note_unread(a);
          ObjectResult r = azure_result(a.description);
          for (auto& e : a.errors) r.verdict.violations.push_back(std::move(e));
          r.verdict.warnings = std::move(a.warnings);
          ++st.objects;
          st.results.push_back(std::move(r));
          break;
        }
        case AzureRead::Outcome::kRead: {
          auto obj = ParseObject(a.object);
          if (!obj.ok()) {  // cannot happen: ReadAzure names every object
            ObjectResult r = azure_result(a.description);
            r.verdict.violations.push_back(obj.error());
            ++st.objects;
            st.results.push_back(std::move(r));
            break;
          }
          Pending& p = pending(std::move(obj).value(), item);
          p.azure_id = a.id;
          p.read_warnings = std::move(a.warnings);
          if (first) p.problems = d.problems;
          first = false;
          break;
        }
      }
    }
    return;
  }
  if (!j.is_object() || !j.contains("apiVersion") || !j["apiVersion"].is_string() ||
      !j.contains("kind") || !j["kind"].is_string()) {
    st.not_objects.push_back(d.source + ": " + DocumentName(d.index, d.item));
    return;
  }
  const std::string& api = j["apiVersion"].get_ref<const std::string&>();
  const std::string& kind = j["kind"].get_ref<const std::string&>();
  if (!KindOf(api, kind)) {
    // One of ipguard's kinds at a version it does not serve is a mistake
    // to report, not a kind to skip: the API server would refuse it.
    if (api.rfind(std::string(kGroup) + "/", 0) == 0 &&
        KindOf(std::string(kGroup) + "/" + kVersion, kind)) {
      ObjectResult r = result_of(kind);
      r.verdict.violations.push_back("apiVersion " + QuoteValue(api) + " is not served: " + kind +
                                     " is " + kGroup + "/" + kVersion);
      ++st.objects;
      st.results.push_back(std::move(r));
      return;
    }
    ++st.skipped[api + " " + kind];
    return;
  }
  auto obj = ParseObject(j);
  if (!obj.ok()) {
    ObjectResult r = result_of(kind + " (unnamed)");
    r.verdict.violations.push_back(obj.error());
    st.results.push_back(std::move(r));
    return;
  }
  pending(std::move(obj).value(), d.item).problems = std::move(d.problems);
}

CheckReport CheckRun::Finish() {
  TakeBack();  // what was added and not kept
  // Drift: an Azure resource read as an object of the plan is compared with
  // it, and stands aside (the plan's object is judged).
  const bool azure = std::any_of(pending_.begin(), pending_.end(),
                                 [](const Pending& p) { return !p.azure_id.empty(); });
  if (azure) {
    std::unordered_map<std::string, size_t> plan_of;
    for (size_t i = 0; i < pending_.size(); ++i) {
      if (pending_[i].azure_id.empty()) plan_of.emplace(pending_[i].obj.Key(), i);
    }
    for (size_t i = 0; i < pending_.size(); ++i) {
      auto plan = pending_[i].azure_id.empty() ? plan_of.end() : plan_of.find(pending_[i].obj.Key());
      if (plan == plan_of.end()) continue;
      Pending& p = pending_[plan->second];
      const Pending& twin = pending_[i];
      ObjectResult r = PendingResult(twin);
      r.verdict.warnings = twin.read_warnings;
      ++report_.objects;
      if (p.twin) {
        // A second Azure resource read as the same object: which one the
        // plan stands for is unclear, and neither is dropped silently.
        r.verdict.violations.push_back(DefinedTwice(twin.obj, report_.results[*p.twin]));
        Report(std::move(r));
      } else {
        Report(std::move(r));
        AzureDrift drift = CompareWithAzure(p.obj, twin.obj, twin.azure_id);
        p.twin = report_.results.size() - 1;
        p.drift = std::move(drift.violations);
        p.drift_warnings = std::move(drift.warnings);
      }
      pending_[i].taken = true;
    }
  }
  // Apply order: by kind, input order within a kind (the objects stay
  // where they are: 50k of them moved cost as much as judging them).
  std::vector<size_t> order;
  order.reserve(pending_.size());
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (!pending_[i].taken) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return ApplyRank(pending_[a].obj.kind) < ApplyRank(pending_[b].obj.kind);
  });
  report_.results.reserve(report_.results.size() + order.size());
  Engine engine(options_);
  // The live objects the input does not replace are there from the start;
  // those it replaces are what its objects update.
  std::unordered_map<std::string, const Object*> replaced;
  if (live_) {
    std::unordered_set<std::string> input;
    for (size_t i : order) input.insert(pending_[i].obj.Key());
    for (const Object& o : *live_) {
      std::string key = o.Key();
      if (input.count(key)) {
        replaced.emplace(std::move(key), &o);
        continue;
      }
      engine.Upsert(o);
      ++report_.live_objects;
    }
  }
  // The result of the first object of each identity.
  std::unordered_map<std::string, size_t> first_seen;
  first_seen.reserve(order.size());
  for (size_t i : order) {
    const Pending& p = pending_[i];
    const std::string key = p.obj.Key();
    ObjectResult r = PendingResult(p);
    ++report_.objects;
    auto [it, fresh] = first_seen.emplace(key, report_.results.size());
    if (!fresh) {
      r.verdict.violations.push_back(DefinedTwice(p.obj, report_.results[it->second]));
    } else {
      auto old = replaced.find(key);
      Verdict v = old == replaced.end() ? engine.Review(Operation::kCreate, nullptr, &p.obj)
                                        : engine.Review(Operation::kUpdate, old->second, &p.obj);
      for (auto& m : v.violations) {
        for (const auto& [tail, description] : unread_networks_) {
          if (m.size() >= tail.size() && m.compare(m.size() - tail.size(), tail.size(), tail) == 0) {
            m += ": the input has it, but it could not be read (" + description + ")";
          }
        }
      }
      // The document's problems (result_of) go ahead of what the rules found.
      v.PutFirst(std::move(r.verdict.violations));
      r.verdict = std::move(v);
      r.others.reserve(r.verdict.others.size());
      for (const auto& [index, other_key] : r.verdict.others) {
        // Every object of the input judged so far is stored; what else the
        // engine holds came from the cluster.
        auto other = first_seen.find(other_key);
        if (other != first_seen.end()) {
          r.others.push_back({index, Origin{other->second, false, {}}});
        } else if (const Object* o = live_ ? engine.Find(other_key) : nullptr) {
          r.others.push_back({index, Origin{0, true, o->Describe()}});
        }
      }
      // Read into r.others; the keys are not needed again.
      r.verdict.others = decltype(r.verdict.others)();
      for (const std::string& m : p.drift) {
        r.others.push_back({r.verdict.violations.size(), Origin{*p.twin, false, {}}});
        r.verdict.violations.push_back(m);
      }
      for (const auto& w : p.read_warnings) r.verdict.warnings.push_back(w);
      for (const auto& w : p.drift_warnings) r.verdict.warnings.push_back(w);
      // Stored even when refused, so every later collision with it is
      // reported too, as the controller would see objects that got in.
      // Moved: the input's copy is not needed again.
      engine.Upsert(std::move(pending_[i].obj));
    }
    Report(std::move(r));
  }
  report_.plan = BuildPlan(engine);
  return std::move(report_);
}

CheckReport RunRules(std::vector<Document> docs, const Options& options,
                     const std::vector<Object>* live, const ResultFn& on_result,
                     const ArmParameters* azure_params) {
  CheckRun run(options, live, on_result, azure_params);
  for (Document& d : docs) run.Add(std::move(d));
  run.Keep();
  return run.Finish();
}

namespace {

// Text written aside while objects are judged and copied into the output
// at the end: memory up to kSpillInMemory, then a temporary file (which the
// system removes), or memory still when no file can be made. A report of a
// million violations is then never held in memory, and comes out in the
// order and form of a small one.
class Spill {
 public:
  static constexpr size_t kSpillInMemory = 8 << 20;
  static constexpr size_t kFileBuffer = 1 << 20;

  Spill() = default;
  ~Spill() {
    if (file_) std::fclose(file_);
  }
  Spill(const Spill&) = delete;
  Spill& operator=(const Spill&) = delete;

  void Write(std::string_view text) {
    if (text.empty()) return;
    empty_ = false;
    if (file_) {
      if (std::fwrite(text.data(), 1, text.size(), file_) == text.size()) {
        in_file_ += text.size();
        return;
      }
      // The file stopped taking text (a full disk): what it holds moves
      // back to memory, and the rest stays there.
      BackToMemory();
    }
    memory_.append(text);
    if (memory_.size() > kSpillInMemory && !no_file_) {
      file_ = std::tmpfile();
      // Written in large blocks: stdio's default of 4 KiB makes 80,000 write
      // calls of a 320 MB report.
      if (file_) std::setvbuf(file_, nullptr, _IOFBF, kFileBuffer);
      if (file_ && std::fwrite(memory_.data(), 1, memory_.size(), file_) == memory_.size()) {
        in_file_ = memory_.size();
        memory_.clear();
        memory_.shrink_to_fit();
      } else {
        if (file_) std::fclose(file_);
        file_ = nullptr;
        no_file_ = true;
      }
    }
  }
  bool empty() const { return empty_; }

  // Reads back, from the start, `n` bytes of what was written; false at the
  // end. Called after the last Write.
  bool Read(char* dst, size_t n) {
    if (!reading_) {
      reading_ = true;
      if (file_) {
        std::fflush(file_);
        std::rewind(file_);
        file_left_ = in_file_;
      }
    }
    while (n > 0) {
      if (block_read_ == block_.size()) {
        // The file in blocks, then what is in memory.
        block_read_ = 0;
        if (file_ && file_left_ > 0) {
          block_.resize(std::min(file_left_, kFileBuffer));
          if (std::fread(block_.data(), 1, block_.size(), file_) != block_.size()) return false;
          file_left_ -= block_.size();
        } else if (memory_read_ < memory_.size()) {
          block_.assign(memory_.begin() + static_cast<std::ptrdiff_t>(memory_read_), memory_.end());
          memory_read_ = memory_.size();
        } else {
          block_.clear();
          return false;
        }
      }
      const size_t take = std::min(n, block_.size() - block_read_);
      std::memcpy(dst, block_.data() + block_read_, take);
      block_read_ += take;
      dst += take;
      n -= take;
    }
    return true;
  }

  void CopyTo(std::ostream& out) {
    if (!file_) {
      out << memory_;
      return;
    }
    std::fflush(file_);
    std::rewind(file_);
    char block[1 << 16];
    size_t n;
    while ((n = std::fread(block, 1, sizeof block, file_)) > 0) {
      out.write(block, static_cast<std::streamsize>(n));
    }
  }

 private:
  // The bytes written whole to the file, read back ahead of memory_.
  void BackToMemory() {
    std::string held;
    std::fflush(file_);
    std::rewind(file_);
    held.resize(in_file_);
    size_t got = std::fread(held.data(), 1, in_file_, file_);
    held.resize(got);
    memory_ = std::move(held) + memory_;
    std::fclose(file_);
    file_ = nullptr;
    no_file_ = true;
  }

  size_t in_file_ = 0;
  std::FILE* file_ = nullptr;
  bool no_file_ = false;
  std::string memory_;
  bool empty_ = true;
  bool reading_ = false;
  size_t file_left_ = 0;
  size_t memory_read_ = 0;
  std::vector<char> block_;  // read back, not yet taken
  size_t block_read_ = 0;
};

// What the table and JSON reports hold aside for one object: its result's
// index and its lines' messages with their other sides, not the lines
// themselves. The object's place and name, written on each of its lines,
// are in its result and are added as the lines are written out: a report
// of a million lines spills about half the bytes it prints.
class LineRecords {
 public:
  explicit LineRecords(Spill* spill) : spill_(spill) {}

  void Begin(size_t result) {
    record_.clear();
    previous_.clear();
    lines_ = 0;
    Put(static_cast<uint32_t>(result));
    Put(uint32_t{0});  // the line count, set by End
  }
  void Line(const std::string& message, const Origin* other) {
    ++lines_;
    record_.push_back(static_cast<char>(!other ? 0 : other->in_cluster ? 2 : 1));
    if (other && !other->in_cluster) Put(static_cast<uint32_t>(other->result));
    if (other && other->in_cluster) PutText(other->object);
    // An object's messages mostly start alike (its own side, then the
    // verb): each is held as what it shares with the one before and the
    // rest.
    const size_t shared = std::mismatch(previous_.begin(),
                                        previous_.begin() + static_cast<std::ptrdiff_t>(
                                                                std::min(previous_.size(), message.size())),
                                        message.begin())
                              .first -
                          previous_.begin();
    Put(static_cast<uint32_t>(shared));
    PutText(std::string_view(message).substr(shared));
    previous_ = message;
  }
  void End() {
    if (lines_ == 0) return;
    std::memcpy(record_.data() + sizeof(uint32_t), &lines_, sizeof lines_);
    spill_->Write(record_);
  }

  // Calls fn(result, message, other) for every line, in the order written.
  template <typename Fn>
  static void ForEach(Spill& spill, const Fn& fn) {
    uint32_t result, lines, other, shared;
    std::string message, rest;
    Origin origin;
    while (spill.Read(reinterpret_cast<char*>(&result), sizeof result) &&
           spill.Read(reinterpret_cast<char*>(&lines), sizeof lines)) {
      for (uint32_t i = 0; i < lines; ++i) {
        char kind = 0;
        if (!spill.Read(&kind, 1)) return;
        origin = Origin{};
        if (kind == 1) {
          if (!spill.Read(reinterpret_cast<char*>(&other), sizeof other)) return;
          origin.result = other;
        } else if (kind == 2) {
          origin.in_cluster = true;
          if (!ReadText(spill, &origin.object)) return;
        }
        if (!spill.Read(reinterpret_cast<char*>(&shared), sizeof shared)) return;
        if (!ReadText(spill, &rest)) return;
        if (i == 0 || shared > message.size()) shared = 0;
        message.resize(shared);
        message.append(rest);
        fn(result, message, kind == 0 ? nullptr : &origin);
      }
    }
  }

 private:
  void Put(uint32_t v) { record_.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void PutText(std::string_view s) {
    Put(static_cast<uint32_t>(s.size()));
    record_.append(s);
  }
  static bool ReadText(Spill& spill, std::string* s) {
    uint32_t n;
    if (!spill.Read(reinterpret_cast<char*>(&n), sizeof n)) return false;
    s->resize(n);
    return n == 0 || spill.Read(s->data(), n);
  }

  Spill* spill_;
  std::string record_;
  std::string previous_;  // the record's last message
  uint32_t lines_ = 0;
};

// Output gathered in blocks before it goes to the stream.
class Blocks {
 public:
  explicit Blocks(std::ostream& out) : out_(out) {}
  ~Blocks() { Flush(); }
  std::string& text() { return text_; }
  void Done() {
    if (text_.size() >= kBlock) Flush();
  }
  void Flush() {
    out_.write(text_.data(), static_cast<std::streamsize>(text_.size()));
    text_.clear();
  }

 private:
  static constexpr size_t kBlock = 1 << 20;
  std::ostream& out_;
  std::string text_;
};

// `j` as dump(2) writes it, nested `depth` levels deep in a document that
// dump(2) writes: the lines after the first indented by 2 * depth. Strings
// that are not UTF-8 are written with U+FFFD, as for the whole document.
std::string Nested(const json& j, int depth) {
  std::string text = j.dump(2, ' ', false, json::error_handler_t::replace);
  std::string pad = "\n" + std::string(2 * depth, ' ');
  std::string out;
  out.reserve(text.size() + 16);
  for (char c : text) {
    if (c == '\n') {
      out += pad;
    } else {
      out += c;
    }
  }
  return out;
}

// `s` as a JSON string, as dump() writes it: printable ASCII as it is, and
// anything else (escapes, UTF-8, bytes that are not UTF-8, written as
// U+FFFD) by nlohmann/json itself.
void AppendJsonString(std::string* out, std::string_view s) {
  // Bytes that dump() writes otherwise than as themselves.
  static const std::array<bool, 256> kSpecial = [] {
    std::array<bool, 256> special{};
    for (int c = 0; c < 256; ++c) special[c] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\';
    return special;
  }();
  bool plain = true;
  for (char c : s) plain &= !kSpecial[static_cast<unsigned char>(c)];
  if (plain) {
    out->push_back('"');
    out->append(s);
    out->push_back('"');
    return;
  }
  out->append(json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace));
}

// A member of an object that dump(2) writes `depth` levels deep.
void AppendMember(std::string* out, int depth, const char* key, bool first) {
  if (!first) out->push_back(',');
  out->push_back('\n');
  out->append(static_cast<size_t>(2 * depth), ' ');
  out->push_back('"');
  out->append(key);
  out->append("\": ");
}

// `entries` as dump(2) writes a list of them as a member of an object that
// it writes `depth` levels deep (members in sorted order).
void AppendEntries(std::string* out, const std::vector<PlanEntry>& entries, int depth) {
  if (entries.empty()) {
    out->append("[]");
    return;
  }
  out->push_back('[');
  for (size_t i = 0; i < entries.size(); ++i) {
    const PlanEntry& e = entries[i];
    if (i > 0) out->push_back(',');
    out->push_back('\n');
    out->append(static_cast<size_t>(2 * (depth + 1)), ' ');
    out->push_back('{');
    AppendMember(out, depth + 2, "address", true);
    AppendJsonString(out, e.block);
    AppendMember(out, depth + 2, "field", false);
    AppendJsonString(out, e.field);
    AppendMember(out, depth + 2, "object", false);
    AppendJsonString(out, e.owner);
    if (e.required > 0) {
      AppendMember(out, depth + 2, "requiredAddresses", false);
      out->append(std::to_string(e.required));
    }
    out->push_back('\n');
    out->append(static_cast<size_t>(2 * (depth + 1)), ' ');
    out->push_back('}');
  }
  out->push_back('\n');
  out->append(static_cast<size_t>(2 * depth), ' ');
  out->push_back(']');
}

// The parts of the JSON report's entries that come from one result, as
// dump(2) writes them: its own members around the message, and the `other`
// member that names it on the other side of a collision. Each is made once
// per result: an object's lines, and the lines that name it, share them.
struct EntryParts {
  std::string head;   // "{" and azureId, document, item, up to the message's value
  std::string after;  // object's member, after the message
  std::string tail;   // source's member and the closing brace
};

EntryParts PartsOf(const ObjectResult& r) {
  EntryParts p;
  p.head = "{";
  if (!r.azure_id.empty()) {
    AppendMember(&p.head, 3, "azureId", true);
    AppendJsonString(&p.head, r.azure_id);
  }
  AppendMember(&p.head, 3, "document", r.azure_id.empty());
  p.head.append(std::to_string(r.document));
  if (r.item > 0) {
    AppendMember(&p.head, 3, "item", false);
    p.head.append(std::to_string(r.item));
  }
  AppendMember(&p.head, 3, "message", false);
  AppendMember(&p.after, 3, "object", false);
  AppendJsonString(&p.after, r.object);
  AppendMember(&p.tail, 3, "source", false);
  AppendJsonString(&p.tail, r.source);
  p.tail.append("\n    }");
  return p;
}

// The `other` member naming `o` (and `other`, its result when from the input).
std::string OtherMember(const Origin& o, const ObjectResult* other) {
  std::string out;
  AppendMember(&out, 3, "other", false);
  out.push_back('{');
  if (o.in_cluster) {
    AppendMember(&out, 4, "inCluster", true);
    out.append("true");
    AppendMember(&out, 4, "object", false);
    AppendJsonString(&out, o.object);
  } else {
    if (!other->azure_id.empty()) {
      AppendMember(&out, 4, "azureId", true);
      AppendJsonString(&out, other->azure_id);
    }
    AppendMember(&out, 4, "document", other->azure_id.empty());
    out.append(std::to_string(other->document));
    if (other->item > 0) {
      AppendMember(&out, 4, "item", false);
      out.append(std::to_string(other->item));
    }
    AppendMember(&out, 4, "object", false);
    AppendJsonString(&out, other->object);
    AppendMember(&out, 4, "source", false);
    AppendJsonString(&out, other->source);
  }
  out.append("\n      }");
  return out;
}

// A list of violations or warnings as dump(2) writes a member list at depth
// 1 (each entry's members in sorted order), from the lines held in
// `records` (LineRecords), without building it as a document: a report may
// hold a million.
void WriteEntries(const CheckReport& report, std::ostream& out, const char* key, Spill& records) {
  out << "  \"" << key << "\": ";
  if (records.empty()) {
    out << "[]";
    return;
  }
  out << "[";
  {
    Blocks blocks(out);
    std::string& text = blocks.text();
    size_t current = SIZE_MAX;
    EntryParts parts;
    std::unordered_map<size_t, std::string> other_members;  // by result
    bool first = true;
    LineRecords::ForEach(records, [&](size_t result, const std::string& message, const Origin* o) {
      if (result != current) {
        parts = PartsOf(report.results[result]);
        current = result;
      }
      text.append(first ? "\n    " : ",\n    ").append(parts.head);
      AppendJsonString(&text, message);
      text.append(parts.after);
      if (o && o->in_cluster) {
        text.append(OtherMember(*o, nullptr));
      } else if (o) {
        auto [it, fresh] = other_members.try_emplace(o->result);
        if (fresh) it->second = OtherMember(*o, &report.results[o->result]);
        text.append(it->second);
      }
      text.append(parts.tail);
      first = false;
      blocks.Done();
    });
  }
  out << "\n  ]";
}

}  // namespace

struct ReportWriter::Sections {
  Spill first;   // table: violations; JSON: violations; JUnit: test cases
  Spill second;  // table: warnings; JSON: warnings
};

ReportWriter::ReportWriter(Format format, bool quiet, bool strict)
    : format_(format), quiet_(quiet), strict_(strict), sections_(new Sections()) {}

ReportWriter::~ReportWriter() = default;

void ReportWriter::Add(const CheckReport& report, size_t index, const ObjectResult& r) {
  const auto& violations = r.verdict.violations;
  const auto& warnings = r.verdict.warnings;
  switch (format_) {
    case Format::kTable:
    case Format::kJson: {
      LineRecords first(&sections_->first);
      first.Begin(index);
      for (size_t i = 0; i < violations.size(); ++i) first.Line(violations[i], OtherOf(r, i));
      first.End();
      // Under --strict a warning fails the check: shown even with -q.
      if (format_ == Format::kTable && quiet_ && !strict_) break;
      LineRecords second(&sections_->second);
      second.Begin(index);
      for (const auto& m : warnings) second.Line(m, nullptr);
      second.End();
      break;
    }
    case Format::kJunit: {
      ++cases_;
      bool failed = Fails(r, strict_);
      failures_ += failed;
      std::string out = "    <testcase classname=\"" + XmlEscape(r.source) + "\" name=\"" +
                        XmlEscape(r.object + " (" + DocumentName(r.document, r.item) + ")") + "\"";
      if (!failed && warnings.empty()) {
        sections_->first.Write(out + "/>\n");
        break;
      }
      out += ">\n";
      if (failed) {
        std::string text;
        for (size_t i = 0; i < violations.size(); ++i) {
          text += violations[i] + OtherSide(report, r, i) + "\n";
        }
        if (strict_) {
          for (const auto& w : warnings) text += "warning: " + w + "\n";
        }
        std::string first = violations.empty() ? "warning: " + warnings[0] : violations[0];
        out += "      <failure message=\"" + XmlEscape(first) + "\" type=\"violation\">" +
               XmlEscape(text) + "</failure>\n";
      }
      if (!warnings.empty()) {
        std::string text;
        for (const auto& w : warnings) text += "warning: " + w + "\n";
        out += "      <system-out>" + XmlEscape(text) + "</system-out>\n";
      }
      sections_->first.Write(out + "    </testcase>\n");
      break;
    }
  }
}

void ReportWriter::Finish(const CheckReport& report, std::ostream& out) {
  switch (format_) {
    case Format::kTable:
      FinishTable(report, out);
      break;
    case Format::kJson:
      FinishJson(report, out);
      break;
    case Format::kJunit:
      FinishJunit(report, out);
      break;
  }
}

void ReportWriter::FinishTable(const CheckReport& report, std::ostream& out) {
  int skipped = report.Skipped();
  if (!quiet_) {
    out << "ipguard check: " << Plural(report.objects, "object");
    if (report.live_objects > 0) out << " over " << report.live_objects << " in the cluster";
    if (skipped > 0) out << ", " << skipped << " skipped (" << SkippedSummary(report) << ")";
    out << "\n\n";
  }
  const Plan& plan = report.plan;
  if (!quiet_ && !plan.networks.empty()) {
    std::vector<std::vector<std::string>> rows{
        {"NETWORK", "METHOD", "VLAN", "PREFIX", "TOTAL", "REQUIRED", "FREE", "CLUSTERS"}};
    for (const auto& n : plan.networks) {
      rows.push_back({n.name, n.method, std::to_string(n.vlan), n.prefix.empty() ? "-" : n.prefix,
                      Count(n.usage.total), std::to_string(n.usage.required_by_nodes),
                      Count(n.usage.free), std::to_string(n.usage.clusters)});
    }
    out << Table(rows) << "\n";
  }
  for (const auto& n : quiet_ ? std::vector<PlanNetwork>() : plan.networks) {
    out << "LogicalNetwork " << n.name << " (" << n.method << ", VLAN " << n.vlan
        << (n.prefix.empty() ? "" : ", " + n.prefix) << ")\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& p : n.pools) {
      rows.push_back({n.method == "DHCP" ? "  dhcp scope" : "  node pool", p, ""});
    }
    Entries("control plane", n.control_planes, &rows);
    Entries("load balancer", n.load_balancer_pools, &rows);
    Entries("reserved", n.reservations, &rows);
    Entries("service", n.services, &rows);
    out << Table(rows) << "\n";
  }
  if (!quiet_ && (!plan.shared_load_balancer_pools.empty() || !plan.shared_reservations.empty() ||
                  !plan.shared_services.empty())) {
    out << "Every VLAN (objects that name no network or VLAN)\n";
    std::vector<std::vector<std::string>> rows;
    Entries("load balancer", plan.shared_load_balancer_pools, &rows);
    Entries("reserved", plan.shared_reservations, &rows);
    Entries("service", plan.shared_services, &rows);
    out << Table(rows) << "\n";
  }
  // "  FILE #N OBJECT: MESSAGE (other side: FILE #M)" for every line.
  auto lines = [&](Spill& spill) {
    Blocks blocks(out);
    std::string& text = blocks.text();
    LineRecords::ForEach(spill, [&](size_t result, const std::string& message, const Origin* other) {
      const ObjectResult& r = report.results[result];
      text.append("  ");
      AppendPlace(&text, r.source, r.document, r.item);
      text.append(" ").append(r.object).append(": ").append(message);
      AppendOtherSide(&text, report, other);
      text.push_back('\n');
      blocks.Done();
    });
  };
  if (report.violations > 0) {
    out << "VIOLATIONS (" << report.violations << ")\n";
    lines(sections_->first);
    out << "\n";
  }
  if ((!quiet_ || strict_) && report.warnings > 0) {
    out << "WARNINGS (" << report.warnings << ")\n";
    lines(sections_->second);
    out << "\n";
  }
  if (!report.unreadable.empty()) {
    out << "UNREADABLE (" << report.unreadable.size() << ")\n";
    for (const auto& e : report.unreadable) out << "  " << e << "\n";
    out << "\n";
  }
  out << "Result: " << Plural(report.violations, "violation") << ", "
      << Plural(report.warnings, "warning");
  // What fails the check when no violation does.
  if (strict_ && report.violations == 0 && report.unreadable.empty() && report.ExitCode(true) == 1) {
    out << ": failed under --strict (" << Plural(report.warnings, "warning") << ", "
        << report.Skipped() << " skipped)";
    if (quiet_ && report.Skipped() > 0) out << "\n  skipped: " << SkippedSummary(report);
  }
  out << "\n";
}

// The document dump(2) would write for the report, written part by part.
// Members in dump's (sorted) order.
void ReportWriter::FinishJson(const CheckReport& report, std::ostream& out) {
  // The plan, written as dump(2) writes it without building its document
  // (50k Services are 50k entries).
  std::string plan = "{\n  \"everyDomain\": {";
  AppendMember(&plan, 2, "loadBalancerPools", true);
  AppendEntries(&plan, report.plan.shared_load_balancer_pools, 2);
  AppendMember(&plan, 2, "reservations", false);
  AppendEntries(&plan, report.plan.shared_reservations, 2);
  AppendMember(&plan, 2, "services", false);
  AppendEntries(&plan, report.plan.shared_services, 2);
  plan.append("\n  },\n  \"networks\": ");
  if (report.plan.networks.empty()) plan.append("[]");
  for (size_t i = 0; i < report.plan.networks.size(); ++i) {
    const PlanNetwork& n = report.plan.networks[i];
    plan.append(i == 0 ? "[\n    {" : ",\n    {");
    if (!n.prefix.empty()) {
      AppendMember(&plan, 3, "addressPrefix", true);
      AppendJsonString(&plan, n.prefix);
    }
    AppendMember(&plan, 3, "clusters", n.prefix.empty());
    plan.append(std::to_string(n.usage.clusters));
    AppendMember(&plan, 3, "controlPlaneIPs", false);
    AppendEntries(&plan, n.control_planes, 3);
    AppendMember(&plan, 3, "free", false);
    plan.append(n.usage.free ? std::to_string(*n.usage.free) : "null");
    AppendMember(&plan, 3, "ipAllocationMethod", false);
    AppendJsonString(&plan, n.method);
    AppendMember(&plan, 3, "loadBalancerPools", false);
    AppendEntries(&plan, n.load_balancer_pools, 3);
    AppendMember(&plan, 3, "name", false);
    AppendJsonString(&plan, n.name);
    AppendMember(&plan, 3, "pools", false);
    plan.append(Nested(json(n.pools), 3));
    AppendMember(&plan, 3, "requiredByNodes", false);
    plan.append(std::to_string(n.usage.required_by_nodes));
    AppendMember(&plan, 3, "reservations", false);
    AppendEntries(&plan, n.reservations, 3);
    AppendMember(&plan, 3, "services", false);
    AppendEntries(&plan, n.services, 3);
    AppendMember(&plan, 3, "total", false);
    plan.append(n.usage.total ? std::to_string(*n.usage.total) : "null");
    AppendMember(&plan, 3, "vlanId", false);
    plan.append(std::to_string(n.vlan));
    plan.append("\n    }");
    if (i + 1 == report.plan.networks.size()) plan.append("\n  ]");
  }
  out << plan;
  plan = std::string();
  json summary = {{"objects", report.objects},
                  {"fromCluster", report.live_objects},
                  {"skipped", report.Skipped()},
                  {"skippedKinds", report.skipped},
                  {"notKubernetesObjects", report.not_objects},
                  {"violations", report.violations},
                  {"warnings", report.warnings},
                  {"exitCode", report.ExitCode(strict_)}};
  out << ",\n  \"summary\": " << Nested(summary, 1)
      << ",\n  \"unreadable\": " << Nested(json(report.unreadable), 1) << ",\n";
  WriteEntries(report, out, "violations", sections_->first);
  out << ",\n";
  WriteEntries(report, out, "warnings", sections_->second);
  out << "\n}\n";
}

void ReportWriter::FinishJunit(const CheckReport& report, std::ostream& out) {
  int errors = static_cast<int>(report.unreadable.size());
  // Under --strict skipped documents fail the check: one failed case says so.
  const bool skipped_fail = strict_ && report.Skipped() > 0;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n";
  out << "  <testsuite name=\"ipguard check\" tests=\"" << cases_ + errors + skipped_fail
      << "\" failures=\"" << failures_ + skipped_fail << "\" errors=\"" << errors
      << "\" skipped=\"0\">\n";
  out << "    <properties><property name=\"skippedDocuments\" value=\"" << report.Skipped()
      << "\"/></properties>\n";
  sections_->first.CopyTo(out);
  if (skipped_fail) {
    const std::string what = std::to_string(report.Skipped()) + " skipped: " + SkippedSummary(report);
    out << "    <testcase classname=\"ipguard check\" name=\"skipped documents\">\n      <failure message=\""
        << XmlEscape(what) << "\" type=\"skipped\">" << XmlEscape(what)
        << "</failure>\n    </testcase>\n";
  }
  for (const auto& e : report.unreadable) {
    out << "    <testcase classname=\"ipguard check\" name=\"" << XmlEscape(e)
        << "\">\n      <error message=\"" << XmlEscape(e) << "\" type=\"unreadable\"/>\n    </testcase>\n";
  }
  out << "  </testsuite>\n</testsuites>\n";
}

namespace {

void WriteStored(const CheckReport& report, ReportWriter::Format format, bool quiet, bool strict,
                 std::ostream& out) {
  ReportWriter w(format, quiet, strict);
  for (size_t i = 0; i < report.results.size(); ++i) w.Add(report, i, report.results[i]);
  w.Finish(report, out);
}

}  // namespace

void WriteTable(const CheckReport& report, bool quiet, std::ostream& out) {
  WriteStored(report, ReportWriter::Format::kTable, quiet, false, out);
}

std::string RenderTable(const CheckReport& report, bool quiet) {
  std::ostringstream out;
  WriteTable(report, quiet, out);
  return out.str();
}

void WriteJson(const CheckReport& report, bool strict, std::ostream& out) {
  WriteStored(report, ReportWriter::Format::kJson, false, strict, out);
}

json RenderJson(const CheckReport& report, bool strict) {
  std::ostringstream out;
  WriteJson(report, strict, out);
  return json::parse(out.str());
}

void WriteJunit(const CheckReport& report, bool strict, std::ostream& out) {
  WriteStored(report, ReportWriter::Format::kJunit, false, strict, out);
}

std::string RenderJunit(const CheckReport& report, bool strict) {
  std::ostringstream out;
  WriteJunit(report, strict, out);
  return out.str();
}

int CheckMain(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
              std::ostream& err, const ClusterReader& cluster) {
  Options options;
  std::string output = "table";
  bool quiet = false, strict = false, from_cluster = false;
  std::string kubeconfig, context;
  bool kubeconfig_given = false, context_given = false;
  std::vector<std::string> paths;
  ArmParameters azure_params;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string missing;  // a flag given without its value
    auto value = [&](const std::string& flag, std::string* v) {
      FlagValue got = TakeFlagValue(args, &i, flag, v);
      if (got == FlagValue::kMissing) missing = flag;
      return got == FlagValue::kGiven;
    };
    std::string v;
    if (a == "-h" || a == "--help") {
      out << kUsage;
      return 0;
    } else if (a == "-q" || a == "--quiet") {
      quiet = true;
    } else if (a == "--strict") {
      strict = true;
    } else if (a == "--from-cluster") {
      from_cluster = true;
    } else if (value("--kubeconfig", &v)) {
      kubeconfig = v;
      kubeconfig_given = true;
    } else if (value("--context", &v)) {
      context = v;
      context_given = true;
    } else if (value("--parameters", &v)) {
      Status s = ReadParametersFile(v, &azure_params);
      if (!s.ok()) {
        err << "ipguard check: --parameters: " << s.message() << "\n";
        return 2;
      }
    } else if (value("-o", &v) || value("--output", &v) ||
               (a.size() > 2 && a.rfind("-o", 0) == 0 && a[2] != '=' && (v = a.substr(2), true))) {
      if (v != "table" && v != "json" && v != "junit") {
        err << "ipguard check: -o must be table, json or junit, not \"" << v << "\"\n" << kUsage;
        return 2;
      }
      output = v;
    } else if (value("--platform", &v)) {
      auto p = ParsePlatform(v);
      if (!p) {
        err << "ipguard check: --platform must be azurelocal or vmware, not \"" << v << "\"\n";
        return 2;
      }
      options.platform = *p;
    } else if (value("--capacity-policy", &v)) {
      auto p = ParseCapacityPolicy(v);
      if (!p) {
        err << "ipguard check: --capacity-policy must be Enforce or Warn, not \"" << v << "\"\n";
        return 2;
      }
      options.capacity_policy = *p;
    } else if (!missing.empty()) {
      err << "ipguard check: " << missing << " needs a value\n" << kUsage;
      return 2;
    } else if (a.size() > 1 && a[0] == '-') {
      err << "ipguard check: unknown flag " << a << "\n" << kUsage;
      return 2;
    } else {
      paths.push_back(a);
    }
  }
  if (paths.empty()) {
    err << "ipguard check: no PATH given\n" << kUsage;
    return 2;
  }
  if ((kubeconfig_given || context_given) && !from_cluster) {
    err << "ipguard check: " << (kubeconfig_given ? "--kubeconfig" : "--context")
        << " is read only with --from-cluster\n";
    return 2;
  }
  std::vector<Object> live;
  if (from_cluster) {
    if (!cluster) {
      err << "ipguard check: --from-cluster is not available in this build\n";
      return 2;
    }
    // Kept as typed objects, page by page: only Services of type
    // LoadBalancer matter, and a cluster may hold many others.
    Status s = cluster(kubeconfig, context, [&](json& j) {
      auto o = ParseObject(j);
      if (!o.ok()) return;
      if (o->kind == Kind::kService && !o->svc->is_load_balancer()) return;
      live.push_back(std::move(o).value());
    });
    if (!s.ok()) {
      err << "ipguard check: --from-cluster: " << s.message() << "\n";
      return 2;
    }
  }
  // Each object's lines are written aside as it is judged (ReportWriter),
  // so the report is never held whole; each document is read into objects
  // as the reader goes (CheckRun), so the input's JSON is never held whole.
  ReportWriter writer(output == "json"    ? ReportWriter::Format::kJson
                      : output == "junit" ? ReportWriter::Format::kJunit
                                          : ReportWriter::Format::kTable,
                      quiet, strict);
  CheckRun run(
      options, from_cluster ? &live : nullptr,
      [&](const CheckReport& so_far, const ObjectResult& r) { writer.Add(so_far, so_far.results.size(), r); },
      &azure_params);
  std::vector<std::string> errors;
  ReadInputs(paths, in, run.Sink(), &errors);
  CheckReport report = run.Finish();
  report.unreadable.insert(report.unreadable.begin(), errors.begin(), errors.end());
  // What could be read is checked and reported whatever the format; what
  // could not is named on stderr too, and the exit status is 2.
  for (const auto& e : report.unreadable) err << "ipguard check: " << e << "\n";
  writer.Finish(report, out);
  return report.ExitCode(strict);
}

}  // namespace ipguard
