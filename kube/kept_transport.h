// KeptTransport: whole requests (Do) answered on the caller's own thread,
// over TLS connections to the API server kept open between requests. For the
// requests an admission waits on (its IPClaims): a request of up to 16 KB
// leaves in one TLS record and one send with TCP_NODELAY, and the answer is read by the
// thread that asked, with no hop through a thread pool, which on a busy
// 2-core control plane cost a claim write several milliseconds
// (docs/performance.md). Streams (watches, lists read as they come) go to
// the transport given as `streams`.
//
// TLS and authentication as for every other request (http_transport.h). A
// request's timeout covers connecting, the handshake and the exchange (not a
// DNS lookup of the server's name); its cancel flag is checked every 50 ms.
//
// A kept connection is checked before it is used: one the server closed (or
// wrote to) while it sat idle is dropped. One that still fails before any
// byte of the answer (the server closed it just as the request went) is
// replaced by a new connection and the request sent once more, whatever its
// method: a create may then answer 409 for the object its first send made.
// The claims this serves are named by address, and their writer reads a 409
// back as the holder's own. Any other failure is returned.
//
// Thread-safe: each request holds one connection while it runs; at most
// `max_idle` are kept between requests, and one idle longer than `idle_for`
// is closed when next looked at instead of being used.
#ifndef IPGUARD_KUBE_KEPT_TRANSPORT_H_
#define IPGUARD_KUBE_KEPT_TRANSPORT_H_

#include <chrono>
#include <cstddef>
#include <memory>

#include "kube/clock.h"
#include "kube/config.h"
#include "kube/transport.h"

namespace ipguard::kube {

struct KeptTransportOptions {
  size_t max_idle = 8;
  std::chrono::seconds idle_for{90};
  // A larger answer is an error (these are single objects, not lists).
  size_t max_body = 16u << 20;
};

// An error when the config cannot be used (a bad server URL, key material
// that does not load). `streams` must outlive the transport; null: Stream
// and StreamBody are refused.
Result<std::unique_ptr<Transport>> NewKeptTransport(const RestConfig& config, Clock* clock,
                                                    Transport* streams,
                                                    KeptTransportOptions options = {});

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_KEPT_TRANSPORT_H_
