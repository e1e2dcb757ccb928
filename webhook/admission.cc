#include "webhook/admission.h"

#include <limits>

#include <nlohmann/json.hpp>

#include "core/json_scan.h"
#include "core/json_text.h"
#include "core/json_util.h"

namespace ipguard {
namespace {

using nlohmann::json;

// Appends `s` as a JSON string. Plain ASCII, the usual case, is copied as
// is; anything else goes through nlohmann/json, which escapes control
// characters and replaces invalid UTF-8 (a message may quote user input).
void AppendString(std::string* out, const std::string& s) {
  bool plain = true;
  for (unsigned char c : s) plain = plain && c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
  if (plain) {
    *out += '"';
    *out += s;
    *out += '"';
  } else {
    *out += json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

// code 0 allows; 400 and 403 refuse with a status. The body is written
// directly, in the key order nlohmann/json would print, since every request
// pays for it: building a json value and dumping it cost a tenth of a review.
AdmissionOutcome Respond(AdmissionOutcome out, int code, const std::string& message,
                         const std::vector<std::string>& warnings = {}) {
  std::string& b = out.body;
  b.clear();
  b.reserve(160 + out.uid.size() + message.size());
  b += R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"allowed":)";
  b += code == 0 ? "true" : "false";
  if (code != 0) {
    b += R"(,"status":{"code":)";
    b += std::to_string(code);
    b += R"(,"message":)";
    AppendString(&b, message);
    b += code == 400 ? R"(,"reason":"BadRequest"})" : R"(,"reason":"Forbidden"})";
  }
  b += R"(,"uid":)";
  AppendString(&b, out.uid);
  if (!warnings.empty()) {
    b += R"(,"warnings":[)";
    for (size_t i = 0; i < warnings.size(); ++i) {
      if (i) b += ',';
      AppendString(&b, warnings[i]);
    }
    b += ']';
  }
  b += "}}";
  out.verdict = code == 0 ? "allowed" : code == 400 ? "error" : "denied";
  out.message = message;
  return out;
}

AdmissionOutcome Fail(AdmissionOutcome out, const std::string& message) {
  return Respond(std::move(out), 400, message);
}

AdmissionOutcome Allow(AdmissionOutcome out) { return Respond(std::move(out), 0, ""); }

const json* Member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

// The object as ParseObject needs it: a name even when the API server has not
// generated one yet, and the request's namespace when the object lacks it.
Result<Object> ReadObject(json j, const std::string& request_ns, const char* what) {
  if (!j.is_object()) return Status::Error("request." + std::string(what) + " is not an object");
  json& meta = j["metadata"];
  if (!meta.is_object()) meta = json::object();
  if (!meta.contains("name") || !meta["name"].is_string() ||
      meta["name"].get<std::string>().empty()) {
    std::string gen = JsonString(meta, "generateName");
    meta["name"] = NameToCome(gen);
  }
  if (!request_ns.empty() && (!meta.contains("namespace") || !meta["namespace"].is_string())) {
    meta["namespace"] = request_ns;
  }
  auto obj = ParseObject(j, request_ns.empty() ? "default" : request_ns);
  if (!obj.ok()) return Status::Error("request." + std::string(what) + ": " + obj.error());
  return obj;
}

// What DecodeReview reads of a review whose objects `object` narrows.
JsonProjection ReviewProjection(const JsonProjection& object) {
  JsonProjection request;
  for (const char* key : {"uid", "kind", "operation", "namespace", "dryRun"}) request.Keep(key);
  request.Keep("userInfo", std::move(JsonProjection().Keep("username")));
  request.Keep("object", object).Keep("oldObject", object);
  JsonProjection p;
  p.Keep("apiVersion").Keep("kind").Keep("request", std::move(request));
  return p;
}

// AdmissionReviewProjection with a Service's objects narrowed to what
// DecodeServiceReview reads.
const JsonProjection& ServiceReviewProjection() {
  static const JsonProjection* const kProjection =
      new JsonProjection(ReviewProjection(ServiceReadProjection()));
  return *kProjection;
}

}  // namespace

const JsonProjection& AdmissionReviewProjection() {
  static const JsonProjection* const kProjection =
      new JsonProjection(ReviewProjection(ObjectProjection()));
  return *kProjection;
}

namespace {

// The request of a Service review, read in place by DecodeServiceReview.
// Every read returns false on anything left to DecodeReviewDocument.
class ServiceReviewReader {
 public:
  explicit ServiceReviewReader(std::string_view body) : s_(body) {}

  bool Read() {
    SeenKeys seen;
    std::string_view v;
    bool ok = s_.Members([&](std::string_view key) {
      if (key == "apiVersion") return seen.First(0) && s_.String(&v) && v == "admission.k8s.io/v1";
      if (key == "kind") return seen.First(1) && s_.String(&v) && v == "AdmissionReview";
      if (key == "request") return seen.First(2) && Request();
      return s_.Skip(1);
    });
    return ok && s_.AtDocumentEnd() && seen.All(3);
  }

  std::string uid, operation, ns, username;
  bool dry_run = false;
  std::optional<std::string_view> object, old_object;  // their JSON text

 private:
  // An object's text, or nothing for null (as the document reader takes it).
  bool Text(std::optional<std::string_view>* out) {
    if (s_.Peek() == 'n') return s_.Null();
    const char* start = s_.position();
    if (s_.Peek() != '{' || !s_.Skip(2)) return false;
    *out = std::string_view(start, static_cast<size_t>(s_.position() - start));
    return true;
  }

  bool Request() {
    SeenKeys seen;
    bool ok = s_.Members([&](std::string_view key) {
      if (key == "uid") return seen.First(0) && s_.String(&uid);
      if (key == "kind") return seen.First(1) && Kind();
      if (key == "operation") return seen.First(2) && s_.String(&operation);
      if (key == "namespace") return seen.First(3) && s_.String(&ns);
      if (key == "dryRun") return seen.First(4) && s_.Bool(&dry_run);
      if (key == "object") return seen.First(5) && Text(&object);
      if (key == "oldObject") return seen.First(6) && Text(&old_object);
      if (key == "userInfo") return seen.First(7) && UserInfo();
      return s_.Skip(2);
    });
    return ok && seen.All(3) && !uid.empty();
  }

  bool UserInfo() {
    SeenKeys seen;
    return s_.Members([&](std::string_view key) {
      if (key == "username") return seen.First(0) && s_.String(&username);
      return s_.Skip(3);
    });
  }

  // request.kind: only the core Service.
  bool Kind() {
    const KindInfo& service = InfoOf(ipguard::Kind::kService);
    SeenKeys seen;
    std::string_view v;
    return s_.Members([&](std::string_view key) {
             if (key == "group") return seen.First(0) && s_.String(&v) && v == service.group;
             if (key == "version") return seen.First(1) && s_.String(&v) && v == service.version;
             if (key == "kind") return seen.First(2) && s_.String(&v) && v == service.name;
             return s_.Skip(3);
           }) &&
           seen.All(3);
  }

  JsonScanner s_;
};

}  // namespace

std::optional<DecodedReview> DecodeServiceReview(std::string_view body) {
  ServiceReviewReader r(body);
  if (!r.Read()) return std::nullopt;
  auto op = ParseOperation(r.operation);
  if (!op) return std::nullopt;
  const std::string default_ns = r.ns.empty() ? "default" : r.ns;
  DecodedReview d;
  d.op = *op;
  d.outcome.uid = std::move(r.uid);
  d.outcome.kind = "Service";
  d.outcome.operation = std::move(r.operation);
  d.outcome.dry_run = r.dry_run;
  d.outcome.requester = std::move(r.username);
  if (*op != Operation::kDelete) {
    if (!r.object) return std::nullopt;
    d.obj = ParseServiceText(*r.object, default_ns);
    if (!d.obj) return std::nullopt;
    d.named = true;  // ParseServiceText takes only a named object
  }
  if (*op != Operation::kCreate) {
    if (r.old_object) {
      d.old_obj = ParseServiceText(*r.old_object, default_ns);
      if (!d.old_obj) return std::nullopt;
    } else if (*op == Operation::kDelete) {
      return std::nullopt;
    }
  }
  return d;
}

DecodedReview DecodeReview(std::string_view body, const AdmissionOptions& options) {
  if (auto d = DecodeServiceReview(body)) return std::move(*d);
  return DecodeReviewDocument(body, options);
}

DecodedReview DecodeReviewDocument(std::string_view body, const AdmissionOptions& options) {
  DecodedReview d;
  AdmissionOutcome& out = d.outcome;
  auto answer = [&](AdmissionOutcome o) {
    d.outcome = std::move(o);
    d.answered = true;
    return std::move(d);
  };
  // Most reviews are read by the projecting parser alone; what it declines
  // (not JSON, or JSON it leaves to nlohmann/json) is parsed whole, and the
  // same reading below gives the same answer either way.
  std::optional<json> projected = ParseProjected(body, AdmissionReviewProjection());
  json review;
  if (projected) {
    review = std::move(*projected);
  } else {
    // No depth bound beyond the body's size cap, as nlohmann/json reads.
    JsonText text = ParseJsonText(body, std::numeric_limits<int>::max(), AdmissionReviewProjection());
    if (!text.ok) return answer(Fail(out, "the body is not JSON"));
    review = std::move(text.value);
    // A key of the object under review written twice is a violation of
    // that object ("Input is read strictly"); the API server never sends
    // one, so it comes from a client that called the webhook itself. Of a
    // Service, only the keys the rules read count, as DecodeServiceReview
    // reads a Service and passes over the rest.
    const json* rq = review.is_object() ? Member(review, "request") : nullptr;
    if (!text.duplicates.empty() && rq && rq->is_object() &&
        JsonString(*rq, "kind", "kind") == "Service") {
      text.duplicates =
          ParseJsonText(body, std::numeric_limits<int>::max(), ServiceReviewProjection()).duplicates;
    }
    static constexpr std::string_view kObject = "request.object.";
    for (std::string& path : text.duplicates) {
      if (path.compare(0, kObject.size(), kObject) == 0) {
        d.problems.push_back("duplicate key " + path.substr(kObject.size()));
      }
    }
  }
  if (!review.is_object()) return answer(Fail(out, "the body is not an AdmissionReview object"));
  const json* request = Member(review, "request");
  if (request && request->is_object()) out.uid = JsonString(*request, "uid");
  if (JsonString(review, "apiVersion") != "admission.k8s.io/v1" ||
      JsonString(review, "kind") != "AdmissionReview") {
    return answer(Fail(out, "expected apiVersion admission.k8s.io/v1 and kind AdmissionReview"));
  }
  if (!request || !request->is_object()) return answer(Fail(out, "request is missing"));
  if (out.uid.empty()) return answer(Fail(out, "request.uid is missing"));
  const json* kind = Member(*request, "kind");
  if (!kind || !kind->is_object()) return answer(Fail(out, "request.kind is missing"));
  std::string group = JsonString(*kind, "group");
  std::string version = JsonString(*kind, "version");
  out.kind = JsonString(*kind, "kind");
  out.operation = JsonString(*request, "operation");
  if (const json* user = Member(*request, "userInfo")) out.requester = JsonString(*user, "username");
  const json* dry = Member(*request, "dryRun");
  out.dry_run = dry && dry->is_boolean() && dry->get<bool>();
  auto op = ParseOperation(out.operation);
  if (!op) {
    if (out.operation == "CONNECT") return answer(Allow(out));
    return answer(
        Fail(out, "request.operation \"" + out.operation + "\" is not CREATE, UPDATE or DELETE"));
  }
  d.op = *op;
  auto k = KindOf(group.empty() ? version : group + "/" + version, out.kind);
  if (!k || (InfoOf(*k).opt_in && !options.metallb)) return answer(Allow(out));
  std::string ns = JsonString(*request, "namespace");
  // The objects are moved out of the review, not copied: the review is not
  // read again, and an object can be most of the body.
  json& mutable_request = review["request"];  // an object, checked above
  auto take = [&](const char* key) -> json* {
    auto it = mutable_request.find(key);
    return it == mutable_request.end() || it->is_null() ? nullptr : &*it;
  };
  json* object = take("object");
  json* old_object = take("oldObject");
  if (*op != Operation::kDelete) {
    if (!object) return answer(Fail(out, "request.object is missing"));
    d.named = !JsonString(*object, "metadata", "name").empty();
    auto o = ReadObject(std::move(*object), ns, "object");
    if (!o.ok()) return answer(Fail(out, o.error()));
    d.obj = std::move(o).value();
  }
  if (*op != Operation::kCreate) {
    if (!old_object) {
      if (*op == Operation::kDelete) return answer(Fail(out, "request.oldObject is missing"));
    } else {
      auto o = ReadObject(std::move(*old_object), ns, "oldObject");
      if (!o.ok()) return answer(Fail(out, o.error()));
      d.old_obj = std::move(o).value();
    }
  }
  return d;
}

Verdict JudgeReview(const DecodedReview& review, const Engine& engine) {
  if (review.answered) return Verdict();
  Verdict v = engine.Review(review.op, review.old_obj ? &*review.old_obj : nullptr,
                            review.obj ? &*review.obj : nullptr);
  if (review.op != Operation::kDelete) v.PutFirst(review.problems);
  return v;
}

AdmissionOutcome AnswerReview(DecodedReview review, const Verdict& verdict) {
  if (review.answered) return std::move(review.outcome);
  return Respond(std::move(review.outcome), verdict.allowed() ? 0 : 403, verdict.Message(),
                 verdict.warnings);
}

AdmissionOutcome Admit(std::string_view body, const Engine& engine,
                       const AdmissionOptions& options) {
  DecodedReview d = DecodeReview(body, options);
  Verdict v = JudgeReview(d, engine);
  return AnswerReview(std::move(d), v);
}

}  // namespace ipguard
