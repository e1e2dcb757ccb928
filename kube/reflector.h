// Reflector: keeps a Store equal to what the API server has for one
// resource. List, then watch from the list's resourceVersion
// with bookmarks and a server timeout; a watch that ends is resumed from the
// last resourceVersion seen, a 410 Gone (on the watch request or as an ERROR
// event) forces a fresh list, and every failure waits with exponential
// backoff and jitter (longer when the server sends Retry-After), so it never
// spins. The watch body is read line by line as it arrives.
//
// The first list asks for resourceVersion=0, as client-go's informers do:
// the API server answers from its watch cache, whole and without touching
// etcd; it is read item by item as it arrives, never held whole. When the
// server pages it instead (its cache is off), the pages follow with their
// continue tokens. A list after a 410 is a consistent read (no
// resourceVersion), paged, so the store never goes back in time.
//
// Run() blocks until Stop(); thread-safe.
#ifndef IPGUARD_KUBE_REFLECTOR_H_
#define IPGUARD_KUBE_REFLECTOR_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

#include "kube/backoff.h"
#include "kube/client.h"
#include "kube/clock.h"
#include "kube/store.h"

namespace ipguard::kube {

struct ReflectorOptions {
  int watch_timeout_seconds = 300;
  int page_size = 500;
  Backoff backoff{std::chrono::milliseconds(200), std::chrono::seconds(30)};
  // A watch that ends sooner than this counts as a failure, so a server that
  // closes streams at once cannot make the reflector spin.
  std::chrono::milliseconds min_watch{1000};
  // Parses one list item's text (a null or discarded value for text that is
  // not an object); default nlohmann/json. The manager passes a reader that
  // skips what it never keeps.
  std::function<nlohmann::json(std::string_view)> parse_item;
  // The same for one line of a watch (an event); default nlohmann/json.
  std::function<nlohmann::json(std::string_view)> parse_event;
};

class Reflector {
 public:
  Reflector(Client* client, Resource resource, std::string ns, Store* store, Clock* clock,
            ReflectorOptions options = {});

  void Run();
  void Stop();

  // Watches started again after the first (for the watch-restarts metric).
  int64_t restarts() const { return restarts_.load(); }
  int64_t relists() const { return relists_.load(); }
  std::string resource_version() const;

 private:
  enum class WatchEnd { kResume, kRelist, kFailed, kStopped };
  bool List();
  WatchEnd Watch();
  void Sleep(Clock::Duration d);
  // Backoff for the next failure, at least the server's Retry-After.
  void WaitAfterFailure();

  Client* client_;
  Resource resource_;
  std::string ns_;
  Store* store_;
  Clock* clock_;
  ReflectorOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> restarts_{0};
  std::atomic<int64_t> relists_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string rv_;
  bool listed_once_ = false;  // later lists are consistent reads
  int failures_ = 0;
  int retry_after_seconds_ = 0;
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_REFLECTOR_H_
