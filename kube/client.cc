#include "kube/client.h"

#include <cstdio>

#include "core/json_util.h"
#include "kube/list_stream.h"

namespace ipguard::kube {
namespace {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpRequest Req(std::string method, std::string path, std::string body = "",
                std::chrono::milliseconds timeout = {}) {
  HttpRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.body = std::move(body);
  if (timeout.count() > 0) r.timeout = timeout;
  return r;
}

std::string ReasonFor(int code) {
  switch (code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 409:
      return "Conflict";
    case 410:
      return "Expired";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return "Unknown";
  }
}

}  // namespace

Resource ResourceOf(const KindInfo& kind) {
  return {kind.group, kind.version, kind.plural, kind.namespaced};
}

std::string Resource::Path(const std::string& ns, const std::string& name,
                           const std::string& subresource) const {
  std::string p = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) p += "/namespaces/" + ns;
  p += "/" + plural;
  if (!name.empty()) p += "/" + name;
  if (!subresource.empty()) p += "/" + subresource;
  return p;
}

std::string ApiError::ToString() const {
  if (code == 0) return "no answer from the API server: " + message;
  return std::to_string(code) + " " + reason + ": " + message;
}

ApiError ErrorFromResponse(const HttpResponse& response) {
  ApiError e;
  e.code = response.status;
  json body = json::parse(response.body, nullptr, false);
  if (!body.is_discarded() && JsonString(body, "kind") == "Status") {
    e.reason = JsonString(body, "reason");
    e.message = JsonString(body, "message");
    auto code = body.find("code");
    if (code != body.end() && code->is_number_integer()) e.code = code->get<int>();
  }
  if (e.reason.empty()) e.reason = ReasonFor(e.code);
  if (e.message.empty()) e.message = response.body.substr(0, 512);
  auto ra = response.headers.find("retry-after");
  if (ra != response.headers.end()) {
    int seconds = 0;
    if (std::sscanf(ra->second.c_str(), "%d", &seconds) == 1 && seconds > 0)
      e.retry_after_seconds = seconds;
  }
  return e;
}

std::string UrlEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// The resource of an API path: "/apis/events.k8s.io/v1/namespaces/x/events"
// is "events", ".../leases/name" is "leases", ".../name/status" is
// "workloadclusters/status".
std::string ResourceOfPath(const std::string& path) {
  std::vector<std::string> parts;
  for (size_t start = 1; start <= path.size();) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  // Skip "api/v1" or "apis/group/version", then "namespaces/NS".
  size_t i = !parts.empty() && parts[0] == "api" ? 2 : 3;
  if (i + 2 < parts.size() && parts[i] == "namespaces") i += 2;
  if (i >= parts.size()) return "unknown";
  std::string r = parts[i];
  if (i + 2 < parts.size()) r += "/" + parts[i + 2];
  return r;
}

ApiResult<json> Client::Call(const HttpRequest& request) {
  ApiResult<json> result = Answer(request);
  if (!result.ok() && on_write_failure_ && request.method != "GET") {
    std::string path = request.path.substr(0, request.path.find('?'));
    on_write_failure_(WriteFailure{request.method, path, ResourceOfPath(path), result.error()});
  }
  return result;
}

ApiResult<json> Client::Answer(const HttpRequest& request) {
  auto r = transport_->Do(request);
  if (!r.ok()) return ApiError{0, "", r.error()};
  const HttpResponse& resp = *r;
  if (resp.status < 200 || resp.status > 299) return ErrorFromResponse(resp);
  if (resp.body.empty()) return json::object();
  json body = json::parse(resp.body, nullptr, false);
  if (body.is_discarded()) {
    return ApiError{resp.status, "InvalidResponse", "the API server's answer is not JSON"};
  }
  return body;
}

ApiResult<json> Client::Get(const Resource& r, const std::string& ns, const std::string& name,
                            std::chrono::milliseconds timeout) {
  return Call(Req("GET", r.Path(ns, name), "", timeout));
}

ApiResult<std::string> Client::ListPages(const Resource& r, const std::string& ns,
                                         const ListOptions& options,
                                         const std::function<void(json& page)>& on_page) {
  std::string cont;
  std::string rv;
  bool first = true;
  do {
    std::string path = r.Path(ns) + "?limit=" + std::to_string(options.limit);
    if (!options.label_selector.empty())
      path += "&labelSelector=" + UrlEncode(options.label_selector);
    if (!options.field_selector.empty())
      path += "&fieldSelector=" + UrlEncode(options.field_selector);
    if (!cont.empty()) path += "&continue=" + UrlEncode(cont);
    auto page = Call(Req("GET", path));
    if (!page.ok()) return page.error();
    json& p = page.value();
    if (!p.is_object() || !p.contains("items") ||
        !(p["items"].is_array() || p["items"].is_null())) {
      return ApiError{200, "InvalidResponse", "a list answer has no items"};
    }
    if (first) rv = JsonString(p, "metadata", "resourceVersion");
    first = false;
    if (p["items"].is_null()) p["items"] = json::array();
    cont = JsonString(p, "metadata", "continue");  // on_page may move the page away
    on_page(p);
  } while (!cont.empty());
  return rv;
}

ApiResult<Client::ListMeta> Client::StreamList(
    const Resource& r, const std::string& ns, const std::string& query,
    const std::function<bool(std::string_view)>& on_item) {
  HttpRequest req = Req("GET", r.Path(ns) + (query.empty() ? "" : "?" + query));
  // A list from the watch cache comes whole and can be large: the deadline
  // is for the whole body, not the first byte.
  req.timeout = std::chrono::seconds(300);
  bool stopped_by_caller = false;
  ListSplitter splitter([&](std::string_view item) {
    if (on_item(item)) return true;
    stopped_by_caller = true;
    return false;
  });
  bool complete = false;
  auto resp = transport_->StreamBody(
      req, [&](std::string_view chunk) { return splitter.Feed(chunk); }, &complete);
  if (!resp.ok()) return ApiError{0, "", resp.error()};
  if (resp->status < 200 || resp->status > 299) return ErrorFromResponse(*resp);
  if (stopped_by_caller) return ApiError{resp->status, "InvalidResponse", "an item of the list was refused"};
  if (!complete) return ApiError{0, "", "the list's body ended early (" + splitter.error() + ")"};
  if (!splitter.Finish()) {
    return ApiError{resp->status, "InvalidResponse", "a list answer that is not a list: " + splitter.error()};
  }
  ListMeta meta;
  if (!splitter.metadata().empty()) {
    json m = json::parse(splitter.metadata(), nullptr, false);
    if (m.is_object()) {
      meta.resource_version = JsonString(m, "resourceVersion");
      meta.cont = JsonString(m, "continue");
    }
  }
  return meta;
}

ApiResult<json> Client::List(const Resource& r, const std::string& ns, const ListOptions& options) {
  json list;
  auto rv = ListPages(r, ns, options, [&](json& page) {
    if (list.is_null()) {
      list = std::move(page);
      return;
    }
    for (auto& item : page["items"]) list["items"].push_back(std::move(item));
  });
  if (!rv.ok()) return rv.error();
  if (list.contains("metadata") && list["metadata"].is_object()) list["metadata"].erase("continue");
  return list;
}

ApiResult<json> Client::Create(const Resource& r, const std::string& ns, const json& obj,
                               std::chrono::milliseconds timeout) {
  return Call(Req("POST", r.Path(ns), Dump(obj), timeout));
}

ApiResult<json> Client::Update(const Resource& r, const json& obj) {
  return Call(Req(
      "PUT", r.Path(JsonString(obj, "metadata", "namespace"), JsonString(obj, "metadata", "name")),
      Dump(obj)));
}

ApiResult<json> Client::UpdateStatus(const Resource& r, const json& obj) {
  return Call(Req("PUT",
                  r.Path(JsonString(obj, "metadata", "namespace"),
                         JsonString(obj, "metadata", "name"), "status"),
                  Dump(obj)));
}

ApiResult<json> Client::Patch(const Resource& r, const std::string& ns, const std::string& name,
                              const json& patch, PatchType type, const std::string& subresource) {
  HttpRequest req = Req("PATCH", r.Path(ns, name, subresource), Dump(patch));
  switch (type) {
    case PatchType::kMerge:
      req.content_type = "application/merge-patch+json";
      break;
    case PatchType::kJson:
      req.content_type = "application/json-patch+json";
      break;
    case PatchType::kStrategicMerge:
      req.content_type = "application/strategic-merge-patch+json";
      break;
  }
  return Call(req);
}

ApiResult<json> Client::Delete(const Resource& r, const std::string& ns, const std::string& name,
                               std::chrono::milliseconds timeout, const std::string& uid) {
  std::string body;
  if (!uid.empty()) {
    body = Dump({{"apiVersion", "v1"},
                 {"kind", "DeleteOptions"},
                 {"preconditions", {{"uid", uid}}}});
  }
  return Call(Req("DELETE", r.Path(ns, name), body, timeout));
}

}  // namespace ipguard::kube
