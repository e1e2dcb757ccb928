// HttpTransport: the real Transport, HTTP/1.1 over TLS (or plain HTTP for a
// local test server) to the API server named in a RestConfig. Its .cc is the
// only file in ipguard that includes cpprestsdk.
//
// TLS is always verified: the server's certificate must chain to the
// config's CA (or the system store when none is given) and name the host
// (or tls_server_name). A client certificate and key from the config are
// presented when given; a bearer token comes from a TokenSource on every
// request, so a rotated service-account token is picked up.
//
// Thread-safe: any number of requests and watch streams may run at once.
#ifndef IPGUARD_KUBE_HTTP_TRANSPORT_H_
#define IPGUARD_KUBE_HTTP_TRANSPORT_H_

#include <memory>

#include "kube/clock.h"
#include "kube/config.h"
#include "kube/transport.h"

namespace ipguard::kube {

struct HttpTransportOptions {
  // Threads of cpprestsdk's shared pool (set once per process, at the first
  // transport created).
  int pool_threads = 4;
};

// An error when the config cannot be used (a bad server URL, a CA or client
// key that does not parse).
Result<std::unique_ptr<Transport>> NewHttpTransport(const RestConfig& config, Clock* clock,
                                                    HttpTransportOptions options = {});

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_HTTP_TRANSPORT_H_
