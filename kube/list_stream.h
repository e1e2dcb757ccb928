// ListSplitter: reads a Kubernetes list response (`{"kind":"ServiceList",
// "metadata":{...},"items":[{...},{...}]}`) as its bytes arrive, in chunks cut
// anywhere, and hands on each item's JSON text as soon as the item is
// complete. Only one item is ever held, so a list of 100k objects (a list
// served whole from the API server's watch cache) never sits in memory whole
// as text or as a document.
//
// It tracks only the structure (strings, escapes, nesting); each item's text
// is parsed by the caller, which reports what does not parse. Anything that
// is not a JSON object with an "items" array, or that ends early, is an
// error.
//
// Not thread-safe: one list, one thread.
#ifndef IPGUARD_KUBE_LIST_STREAM_H_
#define IPGUARD_KUBE_LIST_STREAM_H_

#include <functional>
#include <string>
#include <string_view>

namespace ipguard::kube {

class ListSplitter {
 public:
  // `on_item` gets each item's text; returning false stops the list.
  explicit ListSplitter(std::function<bool(std::string_view item)> on_item);

  // Takes the next bytes; false once the text is not a list or on_item
  // stopped it (error() says which).
  bool Feed(std::string_view chunk);
  // After the last chunk: true when exactly one complete list object was read.
  bool Finish();

  // The list's "metadata" object as text ("" when it had none).
  const std::string& metadata() const { return metadata_; }
  const std::string& error() const { return error_; }
  size_t items() const { return items_; }

 private:
  bool Fail(const std::string& why);
  // What the next value at depth 1 is for.
  enum class Capture { kNone, kItems, kMetadata };

  std::function<bool(std::string_view)> on_item_;
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  bool done_ = false;       // the top-level object closed
  bool expect_key_ = false;  // at depth 1, the next string is a key
  bool saw_items_ = false;
  std::string key_;          // the key being read, or the last one, at depth 1
  bool reading_key_ = false;
  Capture capture_ = Capture::kNone;
  bool in_items_ = false;    // inside the items array (depth 2 is its elements)
  std::string item_;         // the item being read
  bool in_item_ = false;
  std::string metadata_;
  bool in_metadata_ = false;
  size_t items_ = 0;
  std::string error_;
};

}  // namespace ipguard::kube

#endif  // IPGUARD_KUBE_LIST_STREAM_H_
