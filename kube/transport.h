// Transport: the small interface between the kube layer and HTTP. The one
// real implementation (http_transport.cc) is the only file that includes
// cpprestsdk; tests drive every edge with a fake.
//
// Implementations must be thread-safe.
#ifndef IPGUARD_KUBE_TRANSPORT_H_
#define IPGUARD_KUBE_TRANSPORT_H_

#include <atomic>
#include <cctype>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ipguard::kube {

struct HttpRequest {
  std::string method = "GET";
  std::string path;  // "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=500"
  std::string body;
  std::string content_type = "application/json";
  std::chrono::milliseconds timeout{30000};
  // Set to true by another thread to abandon the request (a watch at
  // shutdown); the transport checks it at least every 100 ms.
  const std::atomic<bool>* cancel = nullptr;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names

  // Stores a header as the server wrote it, under its lower-case name.
  void SetHeader(std::string_view name, std::string value) {
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    headers[std::move(lower)] = std::move(value);
  }
};

// The error of a request its transport abandoned: its deadline passed
// (timed_out), or its caller set its cancel flag.
inline Status Abandoned(const HttpRequest& request, bool timed_out) {
  if (!timed_out) return Status::Error("request cancelled");
  return Status::Error(request.method + " " + request.path + ": timed out after " +
                       std::to_string(request.timeout.count()) + " ms");
}

class Transport {
 public:
  virtual ~Transport() = default;
  // One request and its whole response. An error means no HTTP answer at all
  // (connection refused, TLS failure, timeout).
  virtual Result<HttpResponse> Do(const HttpRequest& request) = 0;
  // A streaming request (a watch, a GET): calls on_line for each
  // newline-delimited line of the body as it arrives, until the server ends
  // the stream or on_line returns false. The returned response carries the
  // status and headers; its body is filled only for a non-2xx answer. A
  // deadline or a cancel, even after the headers, is the error of
  // Abandoned().
  virtual Result<HttpResponse> Stream(
      const HttpRequest& request, const std::function<bool(std::string_view line)>& on_line) = 0;
  // A request whose 2xx body is handed to on_chunk in pieces as it arrives
  // (a list read without holding it whole), until it ends or on_chunk
  // returns false; `complete` says whether the body was read to its end. As
  // with Stream(), the response's body is filled only for a non-2xx answer.
  // This default reads the whole body first.
  virtual Result<HttpResponse> StreamBody(
      const HttpRequest& request, const std::function<bool(std::string_view chunk)>& on_chunk,
      bool* complete) {
    auto r = Do(request);
    if (complete) *complete = false;
    if (!r.ok() || r->status < 200 || r->status > 299) return r;
    HttpResponse out = std::move(r).value();
    bool whole = on_chunk(out.body);
    if (complete) *complete = whole;
    out.body.clear();
    return out;
  }
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_TRANSPORT_H_
