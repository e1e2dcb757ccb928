// Client: a typed REST client for Kubernetes resources over a Transport.
//
// Every call returns the object (or list) as JSON, or an ApiError carrying
// the API server's Status (code, reason, message); a transport failure is an
// ApiError with code 0. Thread-safe if the Transport is.
#ifndef IPGUARD_KUBE_CLIENT_H_
#define IPGUARD_KUBE_CLIENT_H_

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>

#include "core/kinds.h"
#include "kube/transport.h"

namespace ipguard::kube {

// Where a kind lives in the API.
struct Resource {
  std::string group;  // "" for the core group
  std::string version;
  std::string plural;
  bool namespaced = false;

  // "v1" for the core group, "group/version" otherwise.
  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  // Collection path, in one namespace or (ns empty) across all.
  std::string Path(const std::string& ns = "", const std::string& name = "",
                   const std::string& subresource = "") const;
};

// Where a kind of the registry lives.
Resource ResourceOf(const KindInfo& kind);

struct ApiError {
  int code = 0;        // HTTP status; 0 when no answer came
  std::string reason;  // "NotFound", "Conflict", "Expired", "TooManyRequests", ...
  std::string message;
  int retry_after_seconds = 0;  // from Retry-After on 429/503

  bool IsNotFound() const { return code == 404; }
  bool IsConflict() const { return code == 409; }
  bool IsGone() const { return code == 410; }
  bool IsTooManyRequests() const { return code == 429; }
  std::string ToString() const;
};

template <typename T>
class ApiResult {
 public:
  ApiResult(T value) : v_(std::move(value)) {}         // NOLINT
  ApiResult(ApiError error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  const T& value() const { return std::get<0>(v_); }
  T& value() { return std::get<0>(v_); }
  const ApiError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, ApiError> v_;
};

// Reads an API error from a non-2xx response (a Status object when the body
// is one, the status line otherwise).
ApiError ErrorFromResponse(const HttpResponse& response);

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int limit = 500;  // page size; every page is fetched
};

// A write (POST, PUT, PATCH, DELETE) that the API server refused or never
// answered.
struct WriteFailure {
  std::string verb;  // the HTTP method
  std::string path;      // without the query
  std::string resource;  // ResourceOfPath(path)
  ApiError error;
};

class Client {
 public:
  explicit Client(Transport* transport) : transport_(transport) {}

  // Called with every failed write, on the calling thread, so that each is
  // logged and counted in one place. Set it before the client is shared.
  void SetWriteFailureObserver(std::function<void(const WriteFailure&)> observer) {
    on_write_failure_ = std::move(observer);
  }

  // `timeout` (Get, Create, Delete): how long to wait for the answer;
  // zero for the transport's default (30 s).
  ApiResult<nlohmann::json> Get(const Resource& r, const std::string& ns, const std::string& name,
                                std::chrono::milliseconds timeout = {});
  // Fetches every page (limit/continue) and returns one list whose
  // metadata.resourceVersion is the first page's.
  ApiResult<nlohmann::json> List(const Resource& r, const std::string& ns,
                                 const ListOptions& options = {});
  // The same, one page at a time: `on_page` gets each page (a List object
  // whose items it may move away) as it arrives, so a long list is never
  // held whole. Returns the first page's resourceVersion.
  ApiResult<std::string> ListPages(const Resource& r, const std::string& ns,
                                   const ListOptions& options,
                                   const std::function<void(nlohmann::json& page)>& on_page);
  // One list request read as it arrives (ListSplitter): each item's JSON
  // text goes to on_item, never the whole list at once. `query` is the
  // request's query ("limit=500&resourceVersion=0", "limit=500&continue=...").
  // Returns the list's resourceVersion and continue token.
  struct ListMeta {
    std::string resource_version;
    std::string cont;
  };
  ApiResult<ListMeta> StreamList(const Resource& r, const std::string& ns, const std::string& query,
                                 const std::function<bool(std::string_view item)>& on_item);
  ApiResult<nlohmann::json> Create(const Resource& r, const std::string& ns,
                                   const nlohmann::json& obj,
                                   std::chrono::milliseconds timeout = {});
  ApiResult<nlohmann::json> Update(const Resource& r, const nlohmann::json& obj);
  // Writes only the status subresource; obj carries metadata.resourceVersion
  // for optimistic concurrency (409 when stale).
  ApiResult<nlohmann::json> UpdateStatus(const Resource& r, const nlohmann::json& obj);
  enum class PatchType { kMerge, kJson, kStrategicMerge };
  ApiResult<nlohmann::json> Patch(const Resource& r, const std::string& ns, const std::string& name,
                                  const nlohmann::json& patch, PatchType type,
                                  const std::string& subresource = "");
  // With `uid`, only the object of that uid is deleted (a precondition:
  // 409 when the name now belongs to another).
  ApiResult<nlohmann::json> Delete(const Resource& r, const std::string& ns,
                                   const std::string& name,
                                   std::chrono::milliseconds timeout = {},
                                   const std::string& uid = "");

  Transport* transport() const { return transport_; }

 private:
  ApiResult<nlohmann::json> Call(const HttpRequest& request);
  ApiResult<nlohmann::json> Answer(const HttpRequest& request);
  Transport* transport_;
  std::function<void(const WriteFailure&)> on_write_failure_;
};

// The resource an API path names, for metrics: "/api/v1/namespaces/a/services/b" is
// "services", "/apis/g/v1/workloadclusters/x/status" is "workloadclusters/status".
std::string ResourceOfPath(const std::string& path);

// Percent-encodes a query parameter value.
std::string UrlEncode(std::string_view s);

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_CLIENT_H_
