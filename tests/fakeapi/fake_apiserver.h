// FakeApiServer: an in-process Kubernetes API server for component tests and
// benchmarks. It speaks the real wire format over HTTP/1.1 (plain TCP or TLS)
// on 127.0.0.1, so the product's real transport, client, reflector and
// leader election can be driven end to end without a cluster.
//
// Contract (what matches kube-apiserver closely enough to test against):
// - Paths /api/v1/... and /apis/{group}/{version}/..., with or without a
//   namespaces/{ns} segment, a name and the "status" subresource, for every
//   resource registered with AddResource().
// - One global int64 resourceVersion counter shared by every resource,
//   written as a decimal string in metadata.resourceVersion.
// - GET, list with limit/continue pagination (resourceVersion=0 served whole,
//   as from the watch cache) and label selectors (=, ==,
//   !=, in, notin, key, !key; fieldSelector on dotted paths likewise);
//   watch (chunked, one JSON event per line) with replay from a
//   resourceVersion, synthetic ADDED events from "" or "0", bookmarks,
//   timeoutSeconds and the 410 "Expired" ERROR event for compacted versions.
// - POST (201, AlreadyExists, generateName, dryRun=All), PUT and PUT status
//   with optimistic concurrency (409 Conflict), PATCH (merge, strategic
//   merge treated as merge, JSON patch; 415 otherwise) and DELETE; every
//   error body is a metav1 Status. A write that changes nothing keeps the
//   resourceVersion and wakes no watcher, as on the real server.
// - Faults: failing the next n requests with a code and Retry-After, delays,
//   cutting watch streams, compaction and a "restart" that drops every
//   connection and compacts while keeping the data and the port.
// - Names are checked as the real server checks them (lowercase RFC 1123
//   subdomains; 422 Invalid otherwise).
// It is a test double, not a validator: it does not check schemas, run
// admission, honour finalizers or garbage-collect owners.
//
// Thread safety: every public method may be called from any thread at any
// time, including while requests are being served. One thread accepts
// connections and each connection gets its own thread (a watch holds its
// connection); Stop() and the destructor close every socket and join every
// thread before returning.
#ifndef IPGUARD_TESTS_FAKEAPI_FAKE_APISERVER_H_
#define IPGUARD_TESTS_FAKEAPI_FAKE_APISERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace ipguard::fakeapi {

struct FakeApiOptions {
  bool tls = false;
  std::string cert_pem, key_pem;  // server certificate when tls
  std::string client_ca_pem;      // when set (tls), require and verify a client certificate
  std::string token;              // when set, require "Authorization: Bearer <token>" else 401
  std::chrono::milliseconds bookmark_interval{1000};
  int port = 0;  // 0: an ephemeral port
};

class FakeApiServer {
 public:
  explicit FakeApiServer(FakeApiOptions options = {});
  ~FakeApiServer();  // Stop()

  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  // Listens on 127.0.0.1 and starts serving. An error when the TLS material
  // does not load or the port cannot be bound. Call at most once.
  Status Start();
  // Closes the listener and every connection and joins every thread.
  // Idempotent.
  void Stop();
  int port() const;
  std::string url() const;  // "http://127.0.0.1:PORT" or "https://..."

  // Registers a collection. The list kind is kind + "List". Resources named
  // events, leases, secrets, configmaps and validatingwebhookconfigurations
  // have no status subresource; every other one has.
  void AddResource(const std::string& group, const std::string& version, const std::string& plural,
                   const std::string& kind, bool namespaced);
  // The ipguard.io/v1alpha1 kinds, Services, Secrets, MetalLB IPAddressPools,
  // Leases, events.k8s.io Events and ValidatingWebhookConfigurations.
  void AddStandardResources();

  // Direct access for tests; `plural` names the resource ("plural.group"
  // when two groups register the same plural). Upsert() behaves like a write
  // through the API (resourceVersion, uid, creationTimestamp, generation,
  // watchers notified) but stores the whole object, status included, and
  // never conflicts; a namespaced object without a namespace goes to
  // "default". Upsert() returns the stored object, or null for an unknown
  // resource or an object without metadata.name.
  nlohmann::json Upsert(const std::string& plural, nlohmann::json obj);
  bool Remove(const std::string& plural, const std::string& ns, const std::string& name);
  std::optional<nlohmann::json> Get(const std::string& plural, const std::string& ns,
                                    const std::string& name) const;
  std::vector<nlohmann::json> List(const std::string& plural) const;  // sorted by ns/name
  int64_t resource_version() const;

  // Fault injection.
  // Cuts every open watch stream mid-stream (the socket closes without the
  // final chunk).
  void DropWatches();
  // The next n requests (any verb, watches included) are answered with
  // `code` and a Status body; with Retry-After when retry_after_seconds > 0.
  void FailNext(int n, int code, int retry_after_seconds = 0);
  // From now on, every request with this method whose path contains
  // `path_substring` is answered with `code`, `reason` and `message` (a
  // Status body), as the real server refuses an invalid object.
  void FailMatching(const std::string& method, const std::string& path_substring, int code,
                    const std::string& reason, const std::string& message);
  // Every response waits d first.
  void SetDelay(std::chrono::milliseconds d);
  // Forgets the event history up to now: a watch or a continue token from an
  // older resourceVersion gets 410 Expired.
  void Compact();
  // Drops every connection (watches and idle keep-alive ones) and compacts;
  // the data stay and the server keeps listening on the same port.
  void Restart();

  // Observation.
  struct Request {
    std::string method, path, query, content_type;
    bool watch = false;
    int status = 0;
    std::chrono::steady_clock::time_point at;  // when its status was decided
  };
  // The requests answered so far (the last 200000), in the order their
  // status was decided; a watch is logged when its stream starts.
  std::vector<Request> requests() const;
  // Requests whose method equals `method` (any when empty) and whose path
  // contains `path_substring`.
  size_t CountRequests(const std::string& method, const std::string& path_substring) const;
  size_t open_watches() const;
  // Connections accepted since Start().
  size_t connections_accepted() const;

 private:
  class Impl;  // everything else lives in the .cc
  std::unique_ptr<Impl> impl_;
};

}  // namespace ipguard::fakeapi

#endif  // IPGUARD_TESTS_FAKEAPI_FAKE_APISERVER_H_
