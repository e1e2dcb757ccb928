#include "kube/reflector.h"

namespace ipguard::kube {
namespace {

using nlohmann::json;

std::string ResourceVersionOf(const json& obj) {
  if (!obj.is_object()) return "";
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return "";
  auto rv = m->find("resourceVersion");
  return rv != m->end() && rv->is_string() ? rv->get<std::string>() : "";
}

}  // namespace

Reflector::Reflector(Client* client, Resource resource, std::string ns, Store* store, Clock* clock,
                     ReflectorOptions options)
    : client_(client),
      resource_(std::move(resource)),
      ns_(std::move(ns)),
      store_(store),
      clock_(clock),
      options_(options) {}

std::string Reflector::resource_version() const {
  std::lock_guard<std::mutex> l(mu_);
  return rv_;
}

void Reflector::Stop() {
  stop_ = true;
  std::lock_guard<std::mutex> l(mu_);
  cv_.notify_all();
}

void Reflector::Sleep(Clock::Duration d) {
  std::unique_lock<std::mutex> l(mu_);
  clock_->WaitUntil(cv_, l, clock_->Now() + d, [this] { return stop_.load(); });
}

bool Reflector::List() {
  // Each item goes into the store as it arrives, transformed, so a list of
  // 100k objects never sits in memory raw.
  store_->BeginReplace();
  const std::string limit = "limit=" + std::to_string(options_.page_size);
  std::string cont, rv;
  bool first_page = true, bad_item = false;
  auto on_item = [&](std::string_view text) {
    json item = options_.parse_item ? options_.parse_item(text)
                                    : json::parse(text.begin(), text.end(), nullptr, false);
    if (!item.is_object()) {
      bad_item = true;
      return false;
    }
    store_->ReplaceAdd(store_->Transformed(item));
    return true;
  };
  do {
    std::string query = limit;
    if (!cont.empty()) {
      query += "&continue=" + UrlEncode(cont);
    } else if (!listed_once_) {
      query += "&resourceVersion=0";
    }
    auto meta = client_->StreamList(resource_, ns_, query, on_item);
    if (!meta.ok()) {
      retry_after_seconds_ = meta.error().retry_after_seconds;
      // A continue token or version the server no longer has: start over
      // with a consistent read.
      if (meta.error().IsGone()) listed_once_ = true;
      return false;
    }
    if (bad_item) return false;
    if (first_page) rv = meta.value().resource_version;
    first_page = false;
    cont = meta.value().cont;
  } while (!cont.empty());
  store_->EndReplace();
  listed_once_ = true;
  std::lock_guard<std::mutex> l(mu_);
  rv_ = rv;
  return true;
}

Reflector::WatchEnd Reflector::Watch() {
  std::string rv = resource_version();
  HttpRequest req;
  req.path = resource_.Path(ns_) + "?watch=true&allowWatchBookmarks=true&timeoutSeconds=" +
             std::to_string(options_.watch_timeout_seconds) +
             (rv.empty() ? "" : "&resourceVersion=" + UrlEncode(rv));
  req.timeout = std::chrono::seconds(options_.watch_timeout_seconds + 30);
  req.cancel = &stop_;
  WatchEnd end = WatchEnd::kResume;
  auto on_line = [&](std::string_view line) {
    if (stop_) {
      end = WatchEnd::kStopped;
      return false;
    }
    if (line.empty()) return true;
    json event = options_.parse_event ? options_.parse_event(line)
                                      : json::parse(line.begin(), line.end(), nullptr, false);
    if (!event.is_object() || !event.contains("type") || !event["type"].is_string() ||
        !event.contains("object")) {
      end = WatchEnd::kFailed;  // a broken stream: resume from the last good version
      return false;
    }
    std::string type = event["type"];
    const json& obj = event["object"];
    if (type == "ERROR") {
      auto code = obj.is_object() ? obj.find("code") : obj.end();
      bool gone = code != obj.end() && code->is_number_integer() && code->get<int>() == 410;
      end = gone ? WatchEnd::kRelist : WatchEnd::kFailed;
      return false;
    }
    std::string obj_rv = ResourceVersionOf(obj);
    if (type == "ADDED") {
      store_->Apply(EventType::kAdded, obj);
    } else if (type == "MODIFIED") {
      store_->Apply(EventType::kModified, obj);
    } else if (type == "DELETED") {
      store_->Apply(EventType::kDeleted, obj);
    } else if (type != "BOOKMARK") {
      return true;  // unknown event types are ignored
    }
    if (!obj_rv.empty()) {
      std::lock_guard<std::mutex> l(mu_);
      rv_ = obj_rv;
    }
    return true;
  };
  auto started = clock_->Now();
  auto resp = client_->transport()->Stream(req, on_line);
  if (stop_) return WatchEnd::kStopped;
  if (!resp.ok()) return WatchEnd::kFailed;
  if (resp->status == 410) return WatchEnd::kRelist;
  if (resp->status < 200 || resp->status > 299) {
    retry_after_seconds_ = ErrorFromResponse(*resp).retry_after_seconds;
    return WatchEnd::kFailed;
  }
  if (end == WatchEnd::kResume && clock_->Now() - started < options_.min_watch)
    return WatchEnd::kFailed;
  return end;
}

void Reflector::WaitAfterFailure() {
  auto delay = options_.backoff.Delay(failures_++);
  if (retry_after_seconds_ > 0) {
    delay = std::max<Backoff::Duration>(delay, std::chrono::seconds(retry_after_seconds_));
  }
  retry_after_seconds_ = 0;
  Sleep(delay);
}

void Reflector::Run() {
  bool need_list = true;
  bool first_watch = true;
  while (!stop_) {
    if (need_list) {
      if (!List()) {
        WaitAfterFailure();
        continue;
      }
      need_list = false;
      failures_ = 0;
    }
    if (!first_watch) ++restarts_;
    first_watch = false;
    switch (Watch()) {
      case WatchEnd::kStopped:
        return;
      case WatchEnd::kResume:
        failures_ = 0;
        break;
      case WatchEnd::kRelist:
        ++relists_;
        need_list = true;
        break;
      case WatchEnd::kFailed:
        WaitAfterFailure();
        break;
    }
  }
}

}  // namespace ipguard::kube
