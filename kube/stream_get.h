// StreamGet: one GET to the API server on a connection of its own (Boost.Beast
// over the OpenSSL cpprestsdk also uses), its 2xx body handed on in the pieces
// that arrive, at most 64 KB at a time, and nothing read from the socket until
// the last piece is taken. This is for lists: the API server writes a list
// from its watch cache (130 MB at 100k Services) as one HTTP chunk, which
// cpprestsdk's client buffers whole before handing any of it on; Beast's
// parser hands on any part of any chunk, and TCP's flow control keeps the
// rest at the server. And for watches (StreamGetLines): each event is handed
// on, on the calling thread, as soon as its line is in, where cpprestsdk
// passed every read through a task of its own thread pool.
//
// TLS as for every other request (http_transport.h): the server's
// certificate must chain to the config's CA (or the system store) and name
// the host; the config's client certificate, and the bearer token given, are
// presented. Plain http only for a loopback host. The request's timeout is
// for the whole exchange; its cancel flag is checked every 100 ms.
//
// Thread-safe (each call has its own connection).
#ifndef IPGUARD_KUBE_STREAM_GET_H_
#define IPGUARD_KUBE_STREAM_GET_H_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "kube/config.h"
#include "kube/transport.h"

namespace ipguard::kube {

// As Transport::StreamBody: a non-2xx answer's body is in the response (up to
// 1 MB); `complete` says whether a 2xx body was read to its end.
Result<HttpResponse> StreamGet(const RestConfig& config, const std::string& token,
                               const HttpRequest& request,
                               const std::function<bool(std::string_view chunk)>& on_chunk,
                               bool* complete);

// The longest line StreamGetLines hands on: a watch event is one object.
inline constexpr size_t kMaxStreamLine = 16u << 20;

// As Transport::Stream: calls on_line for each newline-delimited line of a 2xx
// body (empty lines skipped, a final line without its newline included)
// until the body ends or on_line returns false. Once the headers are in, a
// body cut short ends the stream with the response; a deadline or a cancel is
// the error of Abandoned(). A line over kMaxStreamLine is an error.
Result<HttpResponse> StreamGetLines(const RestConfig& config, const std::string& token,
                                    const HttpRequest& request,
                                    const std::function<bool(std::string_view line)>& on_line);

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_STREAM_GET_H_
