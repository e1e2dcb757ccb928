// `ipguard check`: the rules of API.md applied offline to manifests.
//
// RunRules() is pure: it applies documents to an empty Engine (or one holding
// the cluster's objects, --from-cluster) in apply order
// (LogicalNetworks, IPReservations, LoadBalancerPools, IPAddressPools,
// WorkloadClusters, Services; input order within a kind), judging each
// object as the webhook would judge its CREATE against those before it.
// CheckMain() adds the command line, file reading and output.
#ifndef IPGUARD_CMD_CHECK_H_
#define IPGUARD_CMD_CHECK_H_

#include <deque>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/azure.h"
#include "core/manifest.h"
#include "core/engine.h"
#include "core/plan.h"

namespace ipguard {

// Where the other side of a collision came from: another object of the
// input (its result, which names its file, document and item), or the
// cluster (--from-cluster). Kept small: a report may hold a million.
struct Origin {
  size_t result = 0;        // index in CheckReport::results, when from the input
  bool in_cluster = false;  // from the cluster, not the input
  std::string object;       // when in_cluster: "WorkloadCluster team-a/prod"
};

struct ObjectResult {
  std::string source;
  int document = 0;
  std::string object;  // "WorkloadCluster team-a/prod"
  // The item of a List or a top-level JSON array, or the resource of an ARM
  // template (1-based); 0 otherwise.
  int item = 0;
  // The object's violations: first what was read but is not clean
  // (Document::problems, such as a duplicate key), then the rules'.
  Verdict verdict;
  // For each collision in verdict.violations (by index): where the other
  // object came from, when it came from the input.
  std::vector<std::pair<size_t, Origin>> others;
  // The Azure resource id, for what was read from Azure.
  std::string azure_id;
};

struct CheckReport {
  std::vector<ObjectResult> results;  // in apply order
  int objects = 0;
  // Objects read from the cluster (--from-cluster) that the input did not
  // replace: not judged, but everything in the input is judged against them.
  int live_objects = 0;
  std::map<std::string, int> skipped;  // "apps/v1 Deployment" -> count
  // Documents that are not Kubernetes objects (no apiVersion or kind), by
  // where they are: skipped and counted, as a CI workflow in a directory.
  std::vector<std::string> not_objects;
  std::vector<std::string> unreadable;  // text that is not YAML or JSON, paths that cannot be read
  Plan plan;
  int violations = 0;
  int warnings = 0;

  // Documents skipped, of kinds ipguard does not judge or not Kubernetes
  // objects at all.
  int Skipped() const;
  // 0 clean, 1 violations, 2 unreadable input. With strict, warnings and
  // skipped documents count as violations.
  int ExitCode(bool strict = false) const {
    if (!unreadable.empty()) return 2;
    if (violations > 0) return 1;
    return strict && (warnings > 0 || Skipped() > 0) ? 1 : 0;
  }
};

// The order RunRules applies kinds in (lower first): what an object names
// is applied before it.
int ApplyRank(Kind k);

// With `live` (--from-cluster), the input is applied over those objects
// instead of an empty cluster: an input object with the identity of a live
// one replaces it and is judged as its UPDATE (immutable fields included).
//
// With `on_result`, each object's result is handed to it as soon as it is
// judged (with the report so far, whose results hold the other sides of its
// collisions) and stored without its messages: the caller writes them, and
// a report of a million violations is never held in memory. The counts are
// the same either way.
//
// Azure input (core/azure.h) is read with `azure_params` for its template
// expressions: each resource of the three types becomes the object it reads
// as, judged like any other. An Azure resource read as the kind and name of
// an object of the plan (the rest of the input) is not judged again: it is
// compared with that object, and what differs is reported on the plan's
// object (drift), with the resource as the other side. Resources of other
// types are skipped and counted; those that cannot be read are skipped and
// counted, with a warning that says why.
using ResultFn = std::function<void(const CheckReport& so_far, const ObjectResult& result)>;
CheckReport RunRules(std::vector<Document> docs, const Options& options,
                     const std::vector<Object>* live = nullptr, const ResultFn& on_result = nullptr,
                     const ArmParameters* azure_params = nullptr);

// RunRules in steps, for input read as it goes: documents are added one at
// a time (each one's JSON is dropped once it is read into objects, so the
// JSON of the whole input is never held), then kept, or taken back when
// their source turns out unreadable (it then adds nothing); Finish judges
// what was kept. Sink() hands documents to it as ParseManifests reads them.
class CheckRun {
 public:
  CheckRun(const Options& options, const std::vector<Object>* live, ResultFn on_result,
           const ArmParameters* azure_params);
  ~CheckRun();
  CheckRun(const CheckRun&) = delete;
  CheckRun& operator=(const CheckRun&) = delete;

  void Add(Document&& doc);
  // Keeps what was added since the last Keep or TakeBack, or drops it.
  void Keep();
  void TakeBack();
  DocumentSink Sink();
  // Judges what was kept; once.
  CheckReport Finish();

 private:
  struct Pending;
  struct Stage;
  // Counts a result, hands it to on_result_ and stores it (without its
  // messages when on_result_ took them).
  void Report(ObjectResult r);
  static ObjectResult PendingResult(const Pending& p);

  Options options_;
  const std::vector<Object>* live_;
  ResultFn on_result_;
  const ArmParameters no_params_;
  const ArmParameters* azure_params_;
  CheckReport report_;
  std::deque<std::string> sources_;
  std::deque<Pending> pending_;
  std::unique_ptr<Stage> stage_;
  // Networks of the Azure input that could not be read: message tail (that
  // says it is not found) -> what it is.
  std::map<std::string, std::string> unread_networks_;
};

// Writes a report in one format, object by object as RunRules judges them
// (Add), then whole (Finish): the summary, the plan and the sections in
// their order, each section's lines having waited in a temporary file.
class ReportWriter {
 public:
  enum class Format { kTable, kJson, kJunit };
  // quiet (table): only the violations and the result line. strict: warnings
  // fail their object (JUnit) and count in the exit code (JSON summary).
  ReportWriter(Format format, bool quiet, bool strict);
  ~ReportWriter();
  // `index`: where `result` is, or is to be, in so_far.results (the
  // lines are written out at Finish from the stored result, which keeps
  // its place and name).
  void Add(const CheckReport& so_far, size_t index, const ObjectResult& result);
  void Finish(const CheckReport& report, std::ostream& out);

 private:
  struct Sections;
  void FinishTable(const CheckReport& report, std::ostream& out);
  void FinishJson(const CheckReport& report, std::ostream& out);
  void FinishJunit(const CheckReport& report, std::ostream& out);
  Format format_;
  bool quiet_;
  bool strict_;
  int cases_ = 0;
  int failures_ = 0;
  std::unique_ptr<Sections> sections_;
};

// The report in each format, written as it goes (a report of a million
// violations is never built whole in memory). The Render* forms return the
// same as a string or document, for tests.
// quiet: only the violations and the result line.
void WriteTable(const CheckReport& report, bool quiet, std::ostream& out);
std::string RenderTable(const CheckReport& report, bool quiet = false);
// What nlohmann::json::dump(2) would write for the report's document.
void WriteJson(const CheckReport& report, bool strict, std::ostream& out);
nlohmann::json RenderJson(const CheckReport& report, bool strict = false);
// JUnit XML, as CI systems show test reports: one test case per object,
// failed with its violations; warnings in its system-out.
void WriteJunit(const CheckReport& report, bool strict, std::ostream& out);
std::string RenderJunit(const CheckReport& report, bool strict = false);

// How --from-cluster reads the live plan: calls on_object with every object
// of the kinds ipguard judges in the cluster the kubeconfig (empty: as
// kubectl finds it) and context (empty: current) name. main wires it
// (cmd/live_plan.h); this library does no network I/O.
using ClusterReader = std::function<Status(const std::string& kubeconfig, const std::string& context,
                                           const std::function<void(nlohmann::json&)>& on_object)>;

// Reads the command line's PATHs (files, directories searched for .yaml,
// .yml and .json, `-` for `in`) into documents, handed to `sink` as they are
// read (ParseManifests: each source's are kept, or taken back when it is
// unreadable); what cannot be read goes to `errors`, one message each.
void ReadInputs(const std::vector<std::string>& paths, std::istream& in, const DocumentSink& sink,
                std::vector<std::string>* errors);
// The same, appended to `docs`.
void ReadInputs(const std::vector<std::string>& paths, std::istream& in, std::vector<Document>* docs,
                std::vector<std::string>* errors);

// A flag's value on a command line: "--flag VALUE" or "--flag=VALUE" at
// args[*i], which is moved past it. kAbsent: args[*i] is not that flag;
// kMissing: the flag ends the line without its value.
enum class FlagValue { kAbsent, kGiven, kMissing };
FlagValue TakeFlagValue(const std::vector<std::string>& args, size_t* i, const std::string& flag,
                        std::string* value);

// Reads an ARM parameters file (--parameters) into `params`.
Status ReadParametersFile(const std::string& path, ArmParameters* params);

// args excludes "check" itself. Reads files and `-` (stdin from `in`).
// Without a cluster reader, --from-cluster is a usage error.
int CheckMain(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
              std::ostream& err, const ClusterReader& cluster = nullptr);

}  // namespace ipguard

#endif  // IPGUARD_CMD_CHECK_H_
