// Manifest reading: YAML (multi-document) or JSON text into JSON documents,
// as `ipguard check` and the kubeconfig loader read them.
//
// Contract:
// - Text whose first character (after white space) is '{' or '[' and that
//   parses as JSON is JSON: one document. Anything else is YAML: every
//   document between `---`/`...`, empty documents skipped (they still count
//   in document numbers). A document that is a list at its root (a JSON
//   array, `az ... list -o yaml`) is read element by element, numbered by
//   Document::item. Text that starts as JSON and is neither JSON nor YAML is
//   refused with the JSON parser's reason.
// - YAML is read by the YAML 1.2 core schema as it always was: null/~,
//   true/false in their three spellings, decimal, 0x and 0o integers and
//   floats resolve; quoted and block scalars and everything else are
//   strings; `!!str` keeps the text and `!!int` reads an integer (other tags
//   keep the text). Merge keys merge as kubectl merges them (`<<: *base`,
//   `<<: [*a, *b]`: keys written in the mapping win; among merged mappings
//   the earlier wins). Anchors live within their document.
// - A key written twice in one mapping (YAML or JSON) keeps the last value
//   and is recorded in Document::problems ("duplicate key spec.vlanId");
//   keys merged in through `<<` never count.
// - `kind: List`, and `<Kind>List` of a kind ipguard judges (KindOf of
//   apiVersion and Kind), become one Document per item, numbered by
//   Document::item, with their problems' paths relative to the item. A
//   List's problems outside its items go to its first item.
// - Refused, as an error naming the source, the document and where known the
//   line and column, with nothing appended: text that is neither, more than
//   64 collections nested in one another, aliases that expand to more than a
//   million values, a merge key whose value is not a mapping or a list of
//   mappings, a `null` key.
//
// Pure and thread-safe: works on text already read, holds no state between
// calls. Never throws: yaml-cpp and nlohmann exceptions are caught here.
// How the YAML is read (a fast reader, yaml-cpp for what it leaves):
// core/yaml_reader.h.
#ifndef IPGUARD_CORE_MANIFEST_H_
#define IPGUARD_CORE_MANIFEST_H_

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ipguard {

struct Document {
  std::string source;  // file name or "-"
  int index = 0;       // 1-based document number within the source
  nlohmann::json json;
  int item = 0;  // 1-based item number within a List (or a top-level JSON array); 0 otherwise
  // What was read but is not clean, e.g. "duplicate key metadata.name"
  // (paths from the document's root, or the item's).
  std::vector<std::string> problems;
};

// Where ParseManifests hands its documents, one at a time as they are read,
// so that a caller that keeps only what it makes of each document never
// holds the JSON of all of them. `take_back` drops every document handed
// over since the call began (on an error, or when the text is read again
// from its start); `keep`, when given, is called once the call has handed
// over all of them.
struct DocumentSink {
  std::function<void(Document&&)> add;
  std::function<void()> take_back;
  std::function<void()> keep;
};

// Hands the documents of `text` to `sink`. On error everything handed over
// has been taken back and the message names `source` and the document
// number.
Status ParseManifests(std::string_view text, const std::string& source, const DocumentSink& sink);
// The same, appended to `out`: on error nothing is appended.
Status ParseManifests(std::string_view text, const std::string& source, std::vector<Document>* out);

// A sink that appends to `out`; it takes back what it appended since it was
// made or last kept.
DocumentSink AppendingTo(std::vector<Document>* out);

}  // namespace ipguard

#endif  // IPGUARD_CORE_MANIFEST_H_
