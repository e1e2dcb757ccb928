// The YAML half of the manifest reader (core/manifest.h): YAML text into JSON
// documents. Internal to core/manifest.cc, and to the tests that hold its two
// readers to one answer.
//
// Two readers, one result. The fast reader goes over the text once and builds
// nlohmann::json directly; it reads YAML as manifests write it: block and
// flow collections, every scalar style, comments, `---`/`...`, anchors,
// aliases, merge keys and the tags manifests use. Anything else (directives,
// complex keys, tabs where indentation or separation is expected, a byte
// order mark, ...) and every syntax error it hands over, one document at a
// time, to yaml-cpp's event parser, which builds the same JSON under the same
// rules and words the error. tests/unit/manifest_test.cc replays every fixture
// and test input through both and requires the same JSON and the same
// duplicate keys; tests/fuzz/fuzz_manifest.cc does the same on every input.
//
// Thread-safe: no state outside a call.
#ifndef IPGUARD_CORE_YAML_READER_H_
#define IPGUARD_CORE_YAML_READER_H_

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ipguard::yaml_reader {

// At most this many collections nested in one another.
inline constexpr int kMaxDepth = 64;
// At most this many JSON values built by expanding aliases in one call (an
// alias copies its anchor's value): a billion-laughs text stops here.
inline constexpr size_t kMaxAliasValues = 1'000'000;

struct YamlDocument {
  int index = 0;                            // 1-based document number within the text
  nlohmann::json json;                      // null for an empty document
  std::vector<std::string> duplicate_keys;  // paths from the root, "spec.ipPools[0].start"
};

enum class Reader {
  kAuto,     // the fast reader, yaml-cpp for the documents it hands over
  kFast,     // the fast reader only; fails with `*handed_over` set where it would hand over
  kYamlCpp,  // yaml-cpp only, for the whole text
};

struct ReadInfo {
  bool handed_over = false;   // kFast: the fast reader would have handed over
  int yamlcpp_documents = 0;  // kAuto: documents yaml-cpp read
};

// Where ReadYaml hands its documents, one at a time as they are read (so
// that a caller can drop each one's JSON before the next is built).
// `take_back` drops every document handed over since the call began: on an
// error, and when the reader starts the text again with yaml-cpp.
struct YamlSink {
  std::function<void(YamlDocument&&)> add;
  std::function<void()> take_back;
};

// Hands the documents of `text` to `sink` (also the empty ones). Errors name
// `source`, the document and, where known, the line and column; on an error
// everything handed over has been taken back.
Status ReadYaml(std::string_view text, const std::string& source, Reader reader,
                const YamlSink& sink, ReadInfo* info = nullptr);
// The same, appended to `out` (nothing appended on an error).
Status ReadYaml(std::string_view text, const std::string& source, Reader reader,
                std::vector<YamlDocument>* out, ReadInfo* info = nullptr);

}  // namespace ipguard::yaml_reader

#endif  // IPGUARD_CORE_YAML_READER_H_
