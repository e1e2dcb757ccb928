// FakeTransport: a scripted Transport for kube-layer unit tests. Each call
// takes the next scripted answer whose method and path prefix match; watch
// streams deliver their lines and then end, fail, or hold open until
// cancelled. Every request is recorded.
#ifndef IPGUARD_TESTS_UNIT_FAKE_TRANSPORT_H_
#define IPGUARD_TESTS_UNIT_FAKE_TRANSPORT_H_

#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "kube/transport.h"

namespace ipguard::kube {

class FakeTransport : public Transport {
 public:
  struct Answer {
    std::string method;
    std::string path_prefix;
    int status = 200;
    std::string body;
    std::vector<std::string> lines;  // for Stream
    bool hold_open = false;          // Stream: wait for cancel after the lines
    bool no_answer = false;          // fail as if the connection broke
    std::map<std::string, std::string> headers;
  };

  void Script(Answer a) {
    std::lock_guard<std::mutex> l(mu_);
    script_.push_back(std::move(a));
  }

  std::vector<HttpRequest> requests() const {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }
  size_t CountRequests(const std::string& needle) const {
    std::lock_guard<std::mutex> l(mu_);
    size_t n = 0;
    for (const auto& r : requests_) n += r.path.find(needle) != std::string::npos;
    return n;
  }

  Result<HttpResponse> Do(const HttpRequest& request) override {
    auto a = Take(request);
    if (!a) return Status::Error("no scripted answer for " + request.method + " " + request.path);
    if (a->no_answer) return Status::Error("connection reset");
    return HttpResponse{a->status, a->body, a->headers};
  }

  Result<HttpResponse> Stream(const HttpRequest& request,
                              const std::function<bool(std::string_view)>& on_line) override {
    auto a = Take(request);
    if (!a) {
      // Nothing scripted: hold the stream open until cancelled, like a quiet watch.
      while (request.cancel && !request.cancel->load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return HttpResponse{200, "", {}};
    }
    if (a->no_answer) return Status::Error("connection reset");
    if (a->status < 200 || a->status > 299) return HttpResponse{a->status, a->body, a->headers};
    for (const auto& line : a->lines) {
      if (!on_line(line)) return HttpResponse{200, "", {}};
    }
    while (a->hold_open && request.cancel && !request.cancel->load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return HttpResponse{200, "", {}};
  }

 private:
  std::optional<Answer> Take(const HttpRequest& request) {
    std::lock_guard<std::mutex> l(mu_);
    requests_.push_back(request);
    for (auto it = script_.begin(); it != script_.end(); ++it) {
      if (it->method == request.method && request.path.rfind(it->path_prefix, 0) == 0) {
        Answer a = *it;
        script_.erase(it);
        return a;
      }
    }
    return std::nullopt;
  }

  mutable std::mutex mu_;
  std::deque<Answer> script_;
  std::vector<HttpRequest> requests_;
};

}  // namespace ipguard::kube

#endif  // IPGUARD_TESTS_UNIT_FAKE_TRANSPORT_H_
