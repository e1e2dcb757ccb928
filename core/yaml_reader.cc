#include "core/yaml_reader.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <istream>
#include <optional>
#include <streambuf>
#include <unordered_map>
#include <utility>

#include "core/alloc_budget.h"

namespace ipguard::yaml_reader {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------
// The rules both readers share: scalar resolution, merge keys, duplicate
// keys, depth and alias bounds.
// ---------------------------------------------------------------------------

// An explicit tag, as far as it changes a scalar's value: `!!str` and `!`
// keep the text, `!!int` reads an integer in any base C does, every other
// tag keeps the text too (the rules only ever read strings and numbers).
enum class Tag { kNone, kNonSpecific, kStr, kInt, kOther };

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// std::stoll(s, nullptr, base) without the exceptions: nullopt where it
// would throw.
std::optional<long long> ToLongLong(const std::string& s, int base) {
  const char* begin = s.c_str();
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(begin, &end, base);
  if (end == begin || errno == ERANGE) return std::nullopt;
  return v;
}

// YAML 1.2 core schema for a plain scalar without a tag: null, bool, int
// (decimal, 0x, 0o), float; anything else is a string. Exactly the spellings
// manifests were read with before (then by regular expressions): at most 40
// characters are tried as a number, a decimal integer too large for 64 bits
// becomes a float, an out-of-range hex or octal one and an infinite float
// stay text.
bool IsNullWord(std::string_view s) {
  return s == "~" || s == "null" || s == "Null" || s == "NULL";
}

json ResolvePlain(std::string s) {
  if (s.empty() || IsNullWord(s)) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  const size_t n = s.size();
  const char c = s[0];
  if (n > 40 || !(IsDigit(c) || c == '-' || c == '+' || c == '.')) return s;
  size_t i = (c == '-' || c == '+') ? 1 : 0;
  const size_t sign = i;
  while (i < n && IsDigit(s[i])) ++i;
  if (i == n && i > sign) {  // [-+]?[0-9]+
    errno = 0;
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == ERANGE) return std::strtod(s.c_str(), nullptr);
    return v;
  }
  if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {  // 0x[0-9a-fA-F]+, 0o[0-7]+
    const bool hex = s[1] == 'x';
    bool digits = true;
    for (size_t k = 2; k < n; ++k) {
      digits = digits && (hex ? IsHexDigit(s[k]) : (s[k] >= '0' && s[k] <= '7'));
    }
    if (digits) {
      auto v = ToLongLong(s.substr(2), hex ? 16 : 8);
      if (v) return *v;
      return s;
    }
  }
  // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
  i = sign;
  bool ok;
  if (i < n && s[i] == '.') {
    const size_t d = ++i;
    while (i < n && IsDigit(s[i])) ++i;
    ok = i > d;
  } else {
    const size_t d = i;
    while (i < n && IsDigit(s[i])) ++i;
    ok = i > d;
    if (ok && i < n && s[i] == '.') {
      ++i;
      while (i < n && IsDigit(s[i])) ++i;
    }
  }
  if (ok && i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '-' || s[i] == '+')) ++i;
    const size_t d = i;
    while (i < n && IsDigit(s[i])) ++i;
    ok = i > d;
  }
  if (ok && i == n) {
    double d = std::strtod(s.c_str(), nullptr);
    if (std::isfinite(d)) return d;
  }
  return s;
}

json ResolveScalar(Tag tag, bool plain, std::string s) {
  switch (tag) {
    case Tag::kNone:
      if (plain) return ResolvePlain(std::move(s));
      return s;
    case Tag::kInt:
      if (auto v = ToLongLong(s, 0)) return *v;
      return s;
    case Tag::kNonSpecific:
    case Tag::kStr:
    case Tag::kOther:
      return s;
  }
  return s;
}

// What an alias costs: the values it copies, and how deep they go (a scalar
// 0, a collection one more than its deepest element).
struct Measure {
  size_t values = 0;
  int height = 0;
};

Measure MeasureJson(const json& j) {
  Measure m{1, 0};
  if (j.is_object() || j.is_array()) {
    m.height = 1;
    for (const json& e : j) {
      Measure c = MeasureJson(e);
      m.values += c.values;
      m.height = std::max(m.height, c.height + 1);
    }
  }
  return m;
}

struct AnchorValue {
  json value;
  Measure measure;
  std::optional<std::string> key_text;  // a scalar's text, for an alias used as a key
};

const char kDepthError[] = "nesting is too deep (more than 64 collections inside one another)";

std::string AliasBudgetError() {
  return "the document is too large: its aliases expand to more than " +
         std::to_string(kMaxAliasValues) + " values (an alias bomb?)";
}

const char kMergeError[] = "the value of a merge key (<<) must be a mapping or a list of mappings";

// The mappings a `<<` value merges in, in order; false when it is not a
// mapping or a list of mappings (kubectl refuses those too).
bool CollectMerges(json value, std::vector<json>* sources) {
  sources->clear();
  if (value.is_object()) {
    sources->push_back(std::move(value));
    return true;
  }
  if (!value.is_array()) return false;
  for (json& e : value) {
    if (!e.is_object()) return false;
    sources->push_back(std::move(e));
  }
  return true;
}

// kubectl's merge: keys written in the mapping itself win over merged ones;
// among the merged mappings the earlier one wins. Never a duplicate.
void ApplyMerges(json::object_t* obj, std::vector<json>* sources) {
  for (json& source : *sources) {
    for (auto& [key, value] : source.get_ref<json::object_t&>()) {
      obj->try_emplace(key, std::move(value));
    }
  }
}

// Keys and indexes from the document root to the mapping being read.
class KeyPath {
 public:
  void PushKey(const std::string* key) { segments_.push_back({key, 0}); }
  void PushIndex(size_t index) { segments_.push_back({nullptr, index}); }
  void Pop() { segments_.pop_back(); }
  void Clear() { segments_.clear(); }

  // "spec.ipPools[0].start" for `key` in the mapping at the current path.
  std::string With(std::string_view key) const {
    std::string s;
    for (const Segment& seg : segments_) {
      if (seg.key) {
        if (!s.empty()) s += '.';
        s += *seg.key;
      } else {
        s += '[' + std::to_string(seg.index) + ']';
      }
    }
    if (!s.empty()) s += '.';
    s += key;
    return s;
  }

 private:
  struct Segment {
    const std::string* key;
    size_t index;
  };
  std::vector<Segment> segments_;
};

// A repeated key is not an error: the last value is kept and the repetition
// recorded, for the caller to report.
void PutKey(json::object_t* obj, std::string key, json value, const KeyPath& path,
            std::vector<std::string>* duplicates) {
  auto [it, fresh] = obj->try_emplace(std::move(key), std::move(value));
  if (!fresh) {
    duplicates->push_back(path.With(it->first));
    it->second = std::move(value);  // try_emplace left `value` alone
  }
}

std::string Where(const std::string& source, int index) {
  return source + ": document " + std::to_string(index);
}

std::string At(long line, long column) {
  return " at line " + std::to_string(line) + ", column " + std::to_string(column);
}

// ---------------------------------------------------------------------------
// The fast reader.
// ---------------------------------------------------------------------------

// Thrown where the fast reader stops and yaml-cpp reads the document; where
// and why (the reader's source line) for the tests' messages.
struct HandOver {
  const char* at;
  int reader_line;
};
// Thrown where the whole text goes to yaml-cpp.
struct WholeText {};
// A definitive error, which yaml-cpp would meet too: nesting depth, the
// alias budget.
struct Fatal {
  std::string message;
};

bool IsMarkerAt(const char* p, const char* end, char c) {
  return end - p >= 3 && p[0] == c && p[1] == c && p[2] == c &&
         (end - p == 3 || p[3] == ' ' || p[3] == '\t' || p[3] == '\n');
}

// yaml-cpp refuses an implicit key longer than 1024 characters (YAML's
// limit); longer keys are left to it.
constexpr ptrdiff_t kMaxKeyLength = 1000;

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '-';
}

// Anchor names as manifests write them (yaml-cpp takes more; those are left
// to it).
bool IsAnchorChar(char c) { return IsWordChar(c) || c == '_' || c == '.'; }

// Reads block and flow YAML into JSON, one document at a time, in one pass
// and without regular expressions. Works on text without '\0' (the end is
// read as '\0'), '\r' or '%' at a line start: such text goes to yaml-cpp
// whole. Wherever it is unsure what yaml-cpp would make of the text, it hands
// the document over rather than guess.
//
// Every node reader leaves the position at the first non-space character of
// the next line with content (blank and comment lines skipped), with
// `indent_` its column, or -1 at the end of the text or a `---`/`...` line;
// so a block collection ends when `indent_` drops below its own.
class FastReader {
 public:
  FastReader(std::string_view text, size_t* alias_values)
      : begin_(text.data()),
        end_(text.data() + text.size()),
        p_(begin_),
        line_(begin_),
        alias_values_(alias_values) {}

  // False at the end of the text. Every document read leaves the position
  // at the next one; only the first needs the lines before it skipped.
  bool NextDocument() {
    if (!started_) {
      started_ = true;
      try {
        SkipLines();
      } catch (const HandOver&) {
        throw WholeText();  // a tab before anything of a document
      }
    }
    return p_ < end_;
  }

  const char* line_start() const { return line_; }

  // One document: an optional `---` line, a node, any `...` lines.
  void ReadDocument(json* root, std::vector<std::string>* duplicates) {
    anchors_.clear();
    anchor_started_.clear();
    path_.Clear();
    duplicates_ = duplicates;
    if (AtMarkerLine('-')) {
      p_ += 3;
      FinishLine();
      SkipLines();
    }
    if (p_ < end_ && indent_ >= 0) {
      *root = NodeOnLine(indent_, -1, 0);
      if (indent_ >= 0) throw HandOver{p_, __LINE__};  // text after the document's node
    } else {
      *root = nullptr;
    }
    SkipDocumentEnds();
  }

  // The document that starts at `start` runs to the next `---`/`...` line
  // (which no scalar or collection can contain), or to the end: returns
  // that line's start, or nullptr.
  const char* DocumentEnd(const char* start) const {
    for (const char* q = LineEnd(start); q < end_; q = LineEnd(q)) {
      ++q;
      if (IsMarkerAt(q, end_, '-') || IsMarkerAt(q, end_, '.')) return q;
    }
    return nullptr;
  }

  // Carries on after a document yaml-cpp read; its `...` lines are its own.
  void ResumeAt(const char* p) {
    p_ = line_ = p;
    try {
      SkipLines();
      SkipDocumentEnds();
    } catch (const HandOver&) {
      throw WholeText();
    }
  }

  // The 0-based line of `p`. Counted on from the last call when `p` is
  // further on, so that handing over many documents stays linear.
  int LineOf(const char* p) const {
    if (p < counted_to_) {
      counted_to_ = begin_;
      counted_lines_ = 0;
    }
    counted_lines_ += static_cast<int>(std::count(counted_to_, p, '\n'));
    counted_to_ = p;
    return counted_lines_;
  }

 private:
  enum class Context { kMapValue, kSequenceEntry };

  struct Props {
    const char* anchor = nullptr;
    size_t anchor_size = 0;
    int anchor_serial = 0;
    Tag tag = Tag::kNone;
    bool empty() const { return !anchor && tag == Tag::kNone; }
  };

  char Peek(const char* q) const { return q < end_ ? *q : '\0'; }
  char Cur() const { return Peek(p_); }
  // ' ', a line break or the end: what must follow `-`, `:`, `---`.
  bool BlankAt(const char* q) const {
    char c = Peek(q);
    return c == ' ' || c == '\n' || c == '\0';
  }
  bool AtMarkerLine(char c) const { return p_ == line_ && IsMarkerAt(p_, end_, c); }

  [[noreturn]] void Fail(const std::string& message) const { FailAt(p_, message); }
  [[noreturn]] void FailAt(const char* at, const std::string& message) const {
    const char* ls = at;
    while (ls > begin_ && ls[-1] != '\n') --ls;
    throw Fatal{message + At(LineOf(at) + 1, at - ls + 1)};
  }

  void SkipSpaces() {
    while (Cur() == ' ') ++p_;
  }

  // The line break at or after q, or the end.
  const char* LineEnd(const char* q) const {
    if (q >= end_) return end_;
    const void* nl = std::memchr(q, '\n', static_cast<size_t>(end_ - q));
    return nl ? static_cast<const char*>(nl) : end_;
  }

  const char* NextLine(const char* q) const {
    const char* nl = LineEnd(q);
    return nl < end_ ? nl + 1 : end_;
  }

  // From a line start: past blank and comment lines to the next line with
  // content; see the class comment.
  void SkipLines() {
    for (;;) {
      line_ = p_;
      const char* q = p_;
      while (q < end_ && *q == ' ') ++q;
      if (q >= end_) {
        p_ = end_;
        indent_ = -1;
        return;
      }
      if (*q == '\n') {
        p_ = q + 1;
        continue;
      }
      if (*q == '#') {
        p_ = NextLine(q);
        continue;
      }
      if (*q == '\t') throw HandOver{p_, __LINE__};  // a tab in indentation
      if (q == p_ && (IsMarkerAt(p_, end_, '-') || IsMarkerAt(p_, end_, '.'))) {
        indent_ = -1;
        return;
      }
      indent_ = static_cast<int>(q - p_);
      p_ = q;
      return;
    }
  }

  // After a token: spaces, an optional comment, the line break.
  void FinishLine() {
    const char* q = p_;
    while (q < end_ && *q == ' ') ++q;
    const char c = Peek(q);
    if (c == '\0') {
      p_ = end_;
    } else if (c == '\n') {
      p_ = q + 1;
    } else if (c == '#' && (q == line_ || q[-1] == ' ')) {
      p_ = NextLine(q);
    } else {
      throw HandOver{p_, __LINE__};
    }
  }

  void SkipDocumentEnds() {
    while (AtMarkerLine('.')) {
      p_ += 3;
      FinishLine();
      SkipLines();
    }
  }

  // A plain scalar may start here (YAML 1.2: not an indicator, except `-`,
  // `?`, `:` before a character that is not a space).
  bool PlainStart(const char* q, bool flow) const {
    const char c = Peek(q);
    // (strchr finds '\0' too: the end is no start either)
    if (static_cast<unsigned char>(c) < 0x20 || std::strchr(" ,[]{}#&*!|>'\"%@`", c)) return false;
    if (c == '-' || c == '?' || c == ':') {
      const char next = Peek(q + 1);
      if (next == '\0' || next == ' ' || next == '\n' || next == '\t') return false;
      return !(flow && std::strchr(",[]{}", next));
    }
    return true;
  }

  // `&anchor` and `!tag` before a node, each followed by a space or the end
  // of the line.
  Props ReadProps() {
    Props props;
    for (;;) {
      const char c = Cur();
      if (c == '&' && !props.anchor) {
        const char* name = ++p_;
        while (IsAnchorChar(Cur())) ++p_;
        if (p_ == name || !BlankAt(p_)) throw HandOver{p_, __LINE__};
        props.anchor = name;
        props.anchor_size = p_ - name;
        // yaml-cpp defines the anchor before its node: an alias to it inside
        // the node is recursive there (and refused), so not the old value here.
        // A later definition of the name, even one inside this node, is
        // the one later aliases name (yaml-cpp numbers anchors as they
        // start).
        std::string key(name, props.anchor_size);
        anchors_.erase(key);
        props.anchor_serial = ++anchor_serial_;
        anchor_started_[std::move(key)] = props.anchor_serial;
      } else if (c == '!' && props.tag == Tag::kNone) {
        const char* tag = p_++;
        if (Cur() == '!') ++p_;
        const char* word = p_;
        while (IsWordChar(Cur())) ++p_;
        if (!BlankAt(p_)) throw HandOver{p_, __LINE__};  // verbatim and named-handle tags
        const std::string_view t(tag, p_ - tag);
        if (t == "!") {
          props.tag = Tag::kNonSpecific;
        } else if (t == "!!str") {
          props.tag = Tag::kStr;
        } else if (t == "!!int") {
          props.tag = Tag::kInt;
        } else if (p_ > word) {
          props.tag = Tag::kOther;
        } else {
          throw HandOver{p_, __LINE__};  // "!!" alone
        }
      } else {
        return props;
      }
      SkipSpaces();
    }
  }

  json Anchor(const Props& props, json value) {
    if (!props.anchor) return value;
    std::string name(props.anchor, props.anchor_size);
    if (anchor_started_[name] == props.anchor_serial) {
      anchors_[std::move(name)] = {value, MeasureJson(value), std::nullopt};
    }
    return value;
  }

  // `*name` at depth `depth`.
  json Alias(int depth) {
    const char* star = p_;
    const char* name = ++p_;
    while (IsAnchorChar(Cur())) ++p_;
    auto it = anchors_.find(std::string(name, p_ - name));
    if (p_ == name || it == anchors_.end()) throw HandOver{p_, __LINE__};  // yaml-cpp words it
    const char c = Cur();
    if (!(c == ' ' || c == '\n' || c == '\0' || c == ',' || c == ']' || c == '}')) {
      throw HandOver{p_, __LINE__};
    }
    if (depth + it->second.measure.height > kMaxDepth) FailAt(star, kDepthError);
    *alias_values_ += it->second.measure.values;
    if (*alias_values_ > kMaxAliasValues) FailAt(star, AliasBudgetError());
    return it->second.value;
  }

  // A node that starts a line at column `indent`, inside a block whose
  // indentation is `parent`.
  json NodeOnLine(int indent, int parent, int depth) {
    const char c = Cur();
    if (c == '-' && BlankAt(p_ + 1)) return Sequence(indent, depth);
    if (c == '&' || c == '!') throw HandOver{p_, __LINE__};  // properties on a line of their own
    const char* start = p_;
    bool key = false;
    json v = Inline(parent, depth, Props(), /*key_allowed=*/true, &key);
    if (!key) return v;
    p_ = start;
    return Mapping(indent, depth);
  }

  // The node after `key:` or `- `, on this line or the lines below. `n` is
  // the indentation of the collection it belongs to.
  json Value(int n, int depth, Context context) {
    SkipSpaces();
    Props props = ReadProps();
    const char c = Cur();
    if (c == '\0' || c == '\n' || (c == '#' && p_[-1] == ' ')) {
      if (props.tag != Tag::kNone) throw HandOver{p_, __LINE__};
      FinishLine();
      SkipLines();
      json v;
      if (indent_ > n) {
        v = NodeOnLine(indent_, n, depth);
      } else if (indent_ == n && context == Context::kMapValue && Cur() == '-' && BlankAt(p_ + 1)) {
        v = Sequence(n, depth);  // a sequence at its key's indentation
      }
      return Anchor(props, std::move(v));
    }
    if (c == '*' && !props.empty()) throw HandOver{p_, __LINE__};
    // After `- &a` yaml-cpp wants a block scalar's text indented past the
    // anchor.
    if ((c == '|' || c == '>') && !props.empty() && context == Context::kSequenceEntry) {
      throw HandOver{p_, __LINE__};
    }
    if (context == Context::kSequenceEntry && props.empty()) {
      const int column = static_cast<int>(p_ - line_);
      if (c == '-' && BlankAt(p_ + 1)) return Sequence(column, depth);
      const char* start = p_;
      bool key = false;
      json v = Inline(n, depth, Props(), /*key_allowed=*/true, &key);
      if (!key) return v;
      p_ = start;
      return Mapping(column, depth);  // `- key: value`
    }
    return Anchor(props, Inline(n, depth, props, /*key_allowed=*/false, nullptr));
  }

  // A scalar, flow collection or alias that starts on this line. When it is
  // a key (followed by `: `) and `key_allowed`, sets `*key` and returns
  // nothing.
  json Inline(int n, int depth, const Props& props, bool key_allowed, bool* key) {
    const Tag tag = props.tag;
    const char c = Cur();
    if (c == '|' || c == '>') {
      if (tag == Tag::kInt) throw HandOver{p_, __LINE__};
      json v = BlockScalar(n);
      SkipLines();
      return v;
    }
    if (c == '"' || c == '\'') {
      const char* start = p_;
      const char* start_line = line_;
      std::string s = Quoted(n);
      SkipSpaces();
      if (Cur() == ':' && BlankAt(p_ + 1)) {
        if (key_allowed && line_ == start_line && p_ - start <= kMaxKeyLength) {
          *key = true;
          return json();
        }
        throw HandOver{p_, __LINE__};
      }
      FinishLine();
      SkipLines();
      return ResolveScalar(tag, false, std::move(s));
    }
    if (c == '[' || c == '{' || c == '*') {
      if (c == '*' && tag != Tag::kNone) throw HandOver{p_, __LINE__};
      json v = c == '*' ? Alias(depth) : Flow(n, depth);
      SkipSpaces();
      if (Cur() == ':') throw HandOver{p_, __LINE__};  // a collection or alias as a key
      FinishLine();
      SkipLines();
      return v;
    }
    return Plain(n, props, key_allowed, key);
  }

  // The text of a plain scalar on one line, from p_: ends before ` #`, at the
  // line break, or at `: ` (then *key). Tabs and control characters hand
  // over. Leaves p_ at the comment or line break.
  std::string_view PlainLine(bool* key) {
    const char* start = p_;
    const char* q = p_;
    for (;;) {
      const char c = Peek(q);
      if (c == '\0' || c == '\n') break;
      if (c == ':' && BlankAt(q + 1)) {
        *key = true;
        break;
      }
      if (c == '#' && q > start && q[-1] == ' ') break;
      if (static_cast<unsigned char>(c) < 0x20) throw HandOver{p_, __LINE__};  // tabs too
      ++q;
    }
    p_ = q;
    const char* e = q;
    while (e > start && e[-1] == ' ') --e;
    return {start, static_cast<size_t>(e - start)};
  }

  json Plain(int n, const Props& props, bool key_allowed, bool* key) {
    const Tag tag = props.tag;
    if (!PlainStart(p_, false)) throw HandOver{p_, __LINE__};
    bool is_key = false;
    std::string_view first = PlainLine(&is_key);
    if (is_key) {
      // `a: b: c`, or a key longer than yaml-cpp takes
      if (!key_allowed || p_ - first.data() > kMaxKeyLength) throw HandOver{p_, __LINE__};
      *key = true;
      return json();
    }
    const bool comment = Cur() == '#';
    FinishLine();
    if (comment) {
      SkipLines();
      return ResolveScalar(tag, true, std::string(first));
    }
    // Lines indented more than the block continue the scalar, folded: one
    // line break is a space, each blank line between is a line break.
    std::string folded;
    bool multi = false;
    int blank = 0;
    for (;;) {
      const char* ls = p_;
      const char* q = ls;
      while (q < end_ && *q == ' ') ++q;
      const char c = Peek(q);
      if (c == '\n') {
        ++blank;
        p_ = q + 1;
        continue;
      }
      const bool marker = q == ls && (IsMarkerAt(ls, end_, '-') || IsMarkerAt(ls, end_, '.'));
      if (c == '\0' || c == '#' || q - ls <= n || marker) {
        p_ = ls;
        break;
      }
      if (c == '\t' || !PlainStart(q, false) || c == '-' || c == '?' || c == ':') {
        throw HandOver{p_, __LINE__};
      }
      // yaml-cpp reads `- &a x` continued on the next line its own way.
      if (!props.empty()) throw HandOver{p_, __LINE__};
      line_ = ls;
      p_ = q;
      bool is_key_line = false;
      std::string_view more = PlainLine(&is_key_line);
      if (is_key_line) throw HandOver{p_, __LINE__};
      if (!multi) {
        folded.assign(first);
        multi = true;
      }
      if (blank > 0) {
        folded.append(blank, '\n');
      } else {
        folded += ' ';
      }
      folded.append(more);
      blank = 0;
      const bool ends = Cur() == '#';
      FinishLine();
      if (ends) break;
    }
    SkipLines();
    return ResolveScalar(tag, true, multi ? std::move(folded) : std::string(first));
  }

  // A quoted scalar from p_ (at the quote) to past the closing quote. Line
  // breaks fold as in plain scalars; continuation lines must be indented
  // more than `n`.
  std::string Quoted(int n) {
    const char quote = *p_++;
    std::string out;
    size_t kept = 0;  // escaped characters are not trimmed at a line end
    bool multi_line = false;
    // yaml-cpp folds a line of only white space its own way: such lines
    // (but for the blank lines between two others) are left to it.
    bool line_has_text = false;
    for (;;) {
      const char* q = p_;
      if (quote == '\'') {
        while (q < end_ && *q != '\'' && *q != '\n') ++q;
      } else {
        while (q < end_ && *q != '"' && *q != '\\' && *q != '\n') ++q;
      }
      for (const char* k = p_; k < q; ++k) {
        if (static_cast<unsigned char>(*k) < 0x20 && *k != '\t') throw HandOver{p_, __LINE__};
        if (*k != ' ' && *k != '\t') line_has_text = true;
      }
      out.append(p_, q);
      p_ = q;
      const char c = Peek(q);
      if (c == '\0') throw HandOver{p_, __LINE__};  // unterminated
      if (c == quote) {
        ++p_;
        if (quote == '\'' && Cur() == '\'') {
          out += '\'';
          ++p_;
          kept = out.size();
          line_has_text = true;
          continue;
        }
        if (multi_line && !line_has_text) throw HandOver{p_, __LINE__};
        return out;
      }
      if (c == '\\') {
        Escape(&out);
        kept = out.size();
        line_has_text = true;
        continue;
      }
      // A line break: trailing white space goes, then blank lines.
      if (!line_has_text) throw HandOver{p_, __LINE__};
      multi_line = true;
      line_has_text = false;
      while (out.size() > kept && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
      int blank = 0;
      const char* ls = p_ + 1;
      for (;;) {
        const char* k = ls;
        while (k < end_ && *k == ' ') ++k;
        if (Peek(k) == '\n') {
          ++blank;
          ls = k + 1;
          continue;
        }
        if (Peek(k) == '\0' || Peek(k) == '\t' || k - ls <= n ||
            (k == ls && (IsMarkerAt(ls, end_, '-') || IsMarkerAt(ls, end_, '.')))) {
          throw HandOver{p_, __LINE__};
        }
        line_ = ls;
        p_ = k;
        break;
      }
      if (blank > 0) {
        out.append(blank, '\n');
      } else {
        out += ' ';
      }
      kept = out.size();
    }
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // A double-quoted scalar's escape, from p_ at the backslash.
  void Escape(std::string* out) {
    const char c = Peek(p_ + 1);
    p_ += 2;
    // \0 \a \b \t \<TAB> \n \v \f \r \e \<SPACE> \" \/ \\ as YAML has them.
    static constexpr std::string_view kEscapes = "0abt\tnvfre \"/\\";
    static constexpr std::string_view kMeanings("\0\a\b\t\t\n\v\f\r\x1b \"/\\", 14);
    if (size_t i = kEscapes.find(c); c != '\0' && i != std::string_view::npos) {
      *out += kMeanings[i];
      return;
    }
    int hex = 0;
    if (c == 'x') {
      hex = 2;
    } else if (c == 'u') {
      hex = 4;
    } else if (c == 'U') {
      hex = 8;
    } else {
      // \N \_ \L \P (yaml-cpp writes its own bytes for them), an escaped
      // line break, or no escape at all
      throw HandOver{p_, __LINE__};
    }
    uint32_t cp = 0;
    for (int i = 0; i < hex; ++i) {
      const char h = Cur();
      if (!IsHexDigit(h)) throw HandOver{p_, __LINE__};
      cp = cp * 16 + static_cast<uint32_t>(IsDigit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
      ++p_;
    }
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) throw HandOver{p_, __LINE__};
    AppendUtf8(cp, out);
  }

  // `|` or `>` with its indicators, then the indented lines below. `n` is
  // the indentation of the collection the scalar belongs to.
  json BlockScalar(int n) {
    const bool literal = *p_++ == '|';
    enum { kClip, kStrip, kKeep } chomp = kClip;
    int explicit_indent = 0;
    for (int i = 0; i < 2; ++i) {
      const char c = Cur();
      if ((c == '+' || c == '-') && chomp == kClip) {
        chomp = c == '+' ? kKeep : kStrip;
        ++p_;
      } else if (c >= '1' && c <= '9' && explicit_indent == 0) {
        explicit_indent = c - '0';
        ++p_;
      } else {
        break;
      }
    }
    if (!BlankAt(p_)) throw HandOver{p_, __LINE__};
    FinishLine();
    if (n < 0) throw HandOver{p_, __LINE__};  // at the document's top: yaml-cpp's own rules
    int indent = explicit_indent ? n + explicit_indent : -1;
    std::string out;
    int content_lines = 0;
    int blank = 0;  // blank lines since the last content line
    int leading_blank_spaces = 0;
    bool last_break = false;   // the last content line ended with a line break
    bool last_spaced = false;  // folded: the last content line was more indented
    for (;;) {
      const char* ls = p_;
      const char* q = ls;
      while (q < end_ && *q == ' ') ++q;
      const int spaces = static_cast<int>(q - ls);
      const char c = Peek(q);
      if (c == '\0') {
        // Spaces and no line break at the end: yaml-cpp has its own rules.
        if (q > ls) throw HandOver{p_, __LINE__};
        p_ = end_;
        break;
      }
      if (c == '\n') {
        if (indent >= 0 && spaces > indent) throw HandOver{p_, __LINE__};  // white space as content
        if (content_lines == 0) leading_blank_spaces = std::max(leading_blank_spaces, spaces);
        ++blank;
        p_ = q + 1;
        continue;
      }
      if (indent < 0) {
        indent = std::max(n + 1, spaces);
        if (leading_blank_spaces > indent) throw HandOver{p_, __LINE__};
      }
      if (spaces < indent) {
        p_ = ls;
        break;
      }
      const char* text = ls + indent;
      if (Peek(text) == '\t' && (!literal || spaces == indent)) throw HandOver{p_, __LINE__};
      const char* eol = LineEnd(text);
      for (const char* k = text; k < eol; ++k) {
        if (static_cast<unsigned char>(*k) < 0x20 && *k != '\t') throw HandOver{p_, __LINE__};
      }
      const bool spaced = !literal && Peek(text) == ' ';
      if (content_lines == 0) {
        out.append(blank, '\n');
      } else if (literal || spaced || last_spaced) {
        out.append(1 + blank, '\n');
      } else if (blank > 0) {
        out.append(blank, '\n');
      } else {
        out += ' ';
      }
      out.append(text, eol);
      ++content_lines;
      blank = 0;
      last_spaced = spaced;
      last_break = eol < end_;
      p_ = last_break ? eol + 1 : end_;
    }
    line_ = p_;
    if (content_lines == 0) {
      if (chomp == kKeep) throw HandOver{p_, __LINE__};
      return std::string();
    }
    if (!last_break) return out;  // the text ends without a final line break: none to keep
    if (chomp != kStrip) out += '\n';
    if (chomp == kKeep) {
      // yaml-cpp keeps one line break fewer there.
      if (!literal && blank > 0) throw HandOver{p_, __LINE__};
      out.append(blank, '\n');
    }
    return out;
  }

  // In a flow collection: spaces, line breaks, comments. Lines must be
  // indented more than the block around the collection.
  void FlowSpace(int n) {
    for (;;) {
      const char c = Cur();
      if (c == ' ') {
        ++p_;
      } else if (c == '\n') {
        line_ = ++p_;
        const char* q = p_;
        while (q < end_ && *q == ' ') ++q;
        if (IsMarkerAt(p_, end_, '-') || IsMarkerAt(p_, end_, '.')) throw HandOver{p_, __LINE__};
        const char k = Peek(q);
        if (k != '\n' && k != '#' && k != '\0' && q - p_ <= n) throw HandOver{p_, __LINE__};
        p_ = q;
      } else if (c == '#' && (p_ == line_ || p_[-1] == ' ')) {
        p_ = LineEnd(p_);
      } else if (c == '\0') {
        throw HandOver{p_, __LINE__};  // unterminated
      } else if (c == '\t') {
        throw HandOver{p_, __LINE__};
      } else {
        return;
      }
    }
  }

  // A plain scalar in a flow collection: one line, up to `,[]{}`, `: ` or
  // ` #`.
  std::string_view FlowPlain() {
    if (!PlainStart(p_, true)) throw HandOver{p_, __LINE__};
    const char* start = p_;
    for (;;) {
      const char c = Cur();
      if (c == '\0' || c == '\n' || c == ',' || c == '[' || c == ']' || c == '{' || c == '}') break;
      if (c == ':') {
        if (BlankAt(p_ + 1)) break;
        throw HandOver{p_, __LINE__};  // `a:b` reads differently across YAML versions
      }
      if (c == '#' && p_[-1] == ' ') break;
      // yaml-cpp ends a flow scalar at '?' (YAML 1.1 did)
      if (static_cast<unsigned char>(c) < 0x20 || c == '?') throw HandOver{p_, __LINE__};
      ++p_;
    }
    const char* e = p_;
    while (e > start && e[-1] == ' ') --e;
    return {start, static_cast<size_t>(e - start)};
  }

  json FlowNode(int n, int depth) {
    Props props = ReadProps();
    const char c = Cur();
    json v;
    if (c == '[' || c == '{') {
      v = Flow(n, depth);
    } else if (c == '"' || c == '\'') {
      v = ResolveScalar(props.tag, false, Quoted(n));
    } else if (c == '*') {
      if (!props.empty()) throw HandOver{p_, __LINE__};
      return Alias(depth);
    } else {
      v = ResolveScalar(props.tag, true, std::string(FlowPlain()));
    }
    return Anchor(props, std::move(v));
  }

  json Flow(int n, int depth) {
    if (depth >= kMaxDepth) Fail(kDepthError);
    const bool map = *p_++ == '{';
    const char close = map ? '}' : ']';
    json result = map ? json::object() : json::array();
    std::vector<json> merges;
    bool merged = false;
    size_t index = 0;
    for (;;) {
      FlowSpace(n);
      if (Cur() == close) break;
      if (!map) {
        path_.PushIndex(index++);
        json v = FlowNode(n, depth + 1);
        path_.Pop();
        FlowSpace(n);
        if (Cur() == ':') throw HandOver{p_, __LINE__};  // a single-pair mapping
        result.get_ref<json::array_t&>().push_back(std::move(v));
      } else {
        std::string key;
        bool merge = false;
        const char* key_at = p_;
        const char* key_line = line_;
        const char c = Cur();
        if (c == '"' || c == '\'') {
          key = Quoted(n);
          if (line_ != key_line) throw HandOver{p_, __LINE__};  // implicit keys are one line
        } else {
          key = std::string(FlowPlain());
          if (IsNullWord(key)) throw HandOver{p_, __LINE__};  // yaml-cpp refuses it
          merge = key == "<<";
        }
        const bool quoted_key = c == '"' || c == '\'';
        FlowSpace(n);
        // A key, its `:` and the entry's end on one line: across lines,
        // and for a quoted key without a value, yaml-cpp reads otherwise.
        if (p_ - key_at > kMaxKeyLength || line_ != key_line || (quoted_key && Cur() != ':')) {
          throw HandOver{p_, __LINE__};
        }
        json v;
        if (Cur() == ':') {
          ++p_;
          FlowSpace(n);
          if (Cur() != ',' && Cur() != '}') {
            path_.PushKey(&key);
            v = FlowNode(n, depth + 1);
            path_.Pop();
          }
        } else if (Cur() != ',' && Cur() != '}') {
          throw HandOver{p_, __LINE__};
        }
        auto& obj = result.get_ref<json::object_t&>();
        if (merge) {
          if (merged) duplicates_->push_back(path_.With(key));
          merged = true;
          // Not a mapping or a list of mappings: yaml-cpp's reader words
          // the error (and reads a value this one may have read otherwise).
          if (!CollectMerges(std::move(v), &merges)) throw HandOver{key_at, __LINE__};
        } else {
          PutKey(&obj, std::move(key), std::move(v), path_, duplicates_);
        }
      }
      FlowSpace(n);
      if (Cur() == ',') {
        ++p_;
        continue;
      }
      if (Cur() != close) throw HandOver{p_, __LINE__};
      break;
    }
    ++p_;
    if (merged) ApplyMerges(&result.get_ref<json::object_t&>(), &merges);
    return result;
  }

  // A key at p_, up to and past its `:`.
  std::string Key(bool* merge) {
    *merge = false;
    const char* start = p_;
    const char c = Cur();
    std::string key;
    if (c == '"' || c == '\'') {
      const char* key_line = line_;
      key = Quoted(-1);
      if (line_ != key_line) throw HandOver{p_, __LINE__};
      SkipSpaces();
    } else {
      if (!PlainStart(p_, false)) throw HandOver{p_, __LINE__};  // `? `, `*alias :`, properties
      bool is_key = false;
      key = std::string(PlainLine(&is_key));
      if (!is_key) throw HandOver{p_, __LINE__};
      if (IsNullWord(key)) throw HandOver{p_, __LINE__};  // yaml-cpp refuses it
      *merge = key == "<<";
    }
    if (Cur() != ':' || !BlankAt(p_ + 1) || p_ - start > kMaxKeyLength) {
      throw HandOver{p_, __LINE__};
    }
    ++p_;
    return key;
  }

  // A block mapping whose keys start at column `m`; p_ at its first key.
  json Mapping(int m, int depth) {
    if (depth >= kMaxDepth) Fail(kDepthError);
    json result = json::object();
    auto& obj = result.get_ref<json::object_t&>();
    std::vector<json> merges;
    bool merged = false;
    static const std::string kMergeKey = "<<";
    for (;;) {
      const char* key_at = p_;
      bool merge = false;
      std::string key = Key(&merge);
      if (merge) {
        path_.PushKey(&kMergeKey);
        json v = Value(m, depth + 1, Context::kMapValue);
        path_.Pop();
        if (merged) duplicates_->push_back(path_.With(kMergeKey));
        merged = true;
        // Not a mapping or a list of mappings: yaml-cpp's reader words the
        // error (and reads a value this one may have read otherwise).
        if (!CollectMerges(std::move(v), &merges)) throw HandOver{key_at, __LINE__};
      } else {
        path_.PushKey(&key);
        json v = Value(m, depth + 1, Context::kMapValue);
        path_.Pop();
        PutKey(&obj, std::move(key), std::move(v), path_, duplicates_);
      }
      if (indent_ != m) {
        if (indent_ > m) throw HandOver{p_, __LINE__};
        break;
      }
      if (Cur() == '-' && BlankAt(p_ + 1)) throw HandOver{p_, __LINE__};
    }
    if (merged) ApplyMerges(&obj, &merges);
    return result;
  }

  // A block sequence whose `-` are at column `s`; p_ at the first.
  json Sequence(int s, int depth) {
    if (depth >= kMaxDepth) Fail(kDepthError);
    json result = json::array();
    auto& arr = result.get_ref<json::array_t&>();
    for (size_t index = 0;; ++index) {
      ++p_;  // the '-'
      path_.PushIndex(index);
      json v = Value(s, depth + 1, Context::kSequenceEntry);
      path_.Pop();
      arr.push_back(std::move(v));
      if (indent_ != s) {
        if (indent_ > s) throw HandOver{p_, __LINE__};
        break;
      }
      if (!(Cur() == '-' && BlankAt(p_ + 1))) break;
    }
    return result;
  }

  const char* const begin_;
  const char* const end_;
  const char* p_;
  const char* line_;  // start of the line p_ is on
  int indent_ = -1;
  bool started_ = false;
  mutable const char* counted_to_ = begin_;
  mutable int counted_lines_ = 0;
  size_t* alias_values_;
  std::unordered_map<std::string, AnchorValue> anchors_;
  std::unordered_map<std::string, int> anchor_started_;  // the latest definition of each name
  int anchor_serial_ = 0;
  KeyPath path_;
  std::vector<std::string>* duplicates_ = nullptr;
};

// ---------------------------------------------------------------------------
// yaml-cpp: its event parser, building the same JSON by the same rules.
// ---------------------------------------------------------------------------

// yaml-cpp parses recursively and loops on some malformed input; these
// checks and an allocation budget keep it in bounds. They look at the text
// only, so they are cheap upper bounds, applied to what yaml-cpp reads.
constexpr size_t kYamlCppBudgetBase = 8u << 20;
constexpr size_t kYamlCppBudgetPerByte = 512;

// Flow brackets, block indentation and "- - -" chains on one line.
std::optional<std::string> CheckNesting(std::string_view text) {
  int flow = 0;
  bool line_start = true;
  int indent = 0;
  int dashes = 0;
  char quote = 0;
  for (char c : text) {
    if (c == '\n') {
      line_start = true;
      indent = 0;
      dashes = 0;
      quote = 0;
      continue;
    }
    if (quote) {
      if (c == quote) quote = 0;
      continue;
    }
    if (line_start) {
      if (c == ' ') {
        if (++indent > 4 * kMaxDepth) return "nesting is too deep (indentation)";
        continue;
      }
      if (c == '-') {
        if (++dashes > kMaxDepth) return kDepthError;
        continue;
      }
      line_start = false;
    }
    if (c == '#') {
      quote = '\n';  // a comment runs to the line's end
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      if (++flow > kMaxDepth) return kDepthError;
    } else if (c == ']' || c == '}') {
      if (flow > 0) --flow;
    }
  }
  return std::nullopt;
}

// yaml-cpp 0.7 loops, allocating without bound, when a document's root node
// starts with ',' (after optional tag and anchor). Such text is not valid
// YAML anyway.
std::optional<std::string> CheckRootStarts(std::string_view text, int first_line) {
  bool expecting_root = true;
  int line_no = first_line;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    ++line_no;
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (line.substr(0, 3) == "---" || line.substr(0, 3) == "...") {
      expecting_root = true;
      line.remove_prefix(3);
    } else if (expecting_root && !line.empty() && line[0] == '%') {
      continue;  // a directive
    }
    if (!expecting_root) continue;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      if (i < line.size() && (line[i] == '!' || line[i] == '&')) {
        while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != ',') ++i;
        continue;
      }
      break;
    }
    if (i >= line.size() || line[i] == '#') continue;  // nothing yet on this line
    if (line[i] == ',')
      return "a document cannot start with ',' (line " + std::to_string(line_no) + ")";
    expecting_root = false;
  }
  return std::nullopt;
}

// Thrown from the event handler, caught around the parse.
struct BuildError {
  std::string message;
  YAML::Mark mark;
};

// yaml-cpp's events into JSON, by the rules above. Anchors are yaml-cpp's
// numbers, reset per document as yaml-cpp resets them.
class EventBuilder : public YAML::EventHandler {
 public:
  EventBuilder(size_t* alias_values, std::vector<YamlDocument>* out)
      : alias_values_(alias_values), out_(out) {}

  int started() const { return started_; }
  // The line of each document's start, in order.
  const std::vector<int>& start_lines() const { return start_lines_; }
  bool in_document() const { return in_document_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    ++started_;
    start_lines_.push_back(mark.line);
    in_document_ = true;
    stack_.clear();
    anchors_.clear();
    root_ = nullptr;
    duplicates_.clear();
  }

  void OnDocumentEnd() override {
    out_->push_back({started_, std::move(root_), std::move(duplicates_)});
    root_ = nullptr;
    duplicates_.clear();
    in_document_ = false;
  }

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (ExpectingKey()) throw BuildError{"a map key is not a plain value", mark};
    if (anchor) anchors_[anchor] = {json(nullptr), {1, 0}, std::nullopt};
    Attach(nullptr);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) throw BuildError{YAML::ErrorMsg::UNKNOWN_ANCHOR, mark};
    if (ExpectingKey()) {
      if (!it->second.key_text) throw BuildError{"a map key is not a plain value", mark};
      SetKey(*it->second.key_text, false, mark);
      return;
    }
    if (static_cast<int>(stack_.size()) + it->second.measure.height > kMaxDepth) {
      throw BuildError{kDepthError, mark};
    }
    *alias_values_ += it->second.measure.values;
    if (*alias_values_ > kMaxAliasValues) throw BuildError{AliasBudgetError(), mark};
    json copy;
    {
      // Alias copies have their own bound; the budget is for yaml-cpp.
      AllocationBudget unbounded(SIZE_MAX);
      copy = it->second.value;
    }
    Attach(std::move(copy));
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    json v = Resolve(tag, value);
    if (anchor) anchors_[anchor] = {v, {1, 0}, value};
    if (ExpectingKey()) {
      SetKey(value, tag == "?" && value == "<<", mark);
      return;
    }
    Attach(std::move(v));
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Start(mark, anchor, false);
  }
  void OnSequenceEnd() override { End(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Start(mark, anchor, true);
  }
  void OnMapEnd() override { End(); }

 private:
  struct Frame {
    json value;
    bool map = false;
    YAML::anchor_t anchor = 0;
    YAML::Mark mark;
    size_t index = 0;       // a sequence: the element being read
    bool have_key = false;  // a mapping: `key` waits for its value
    std::string key;
    bool key_is_merge = false;
    YAML::Mark key_mark;
    bool merged = false;
    std::vector<json> merges;
  };

  // Today's resolution of a yaml-cpp scalar: "?" is a plain scalar without a
  // tag, "!" a quoted one or one tagged `!`.
  static json Resolve(const std::string& tag, const std::string& value) {
    if (tag == "?" || tag.empty()) return ResolveScalar(Tag::kNone, true, value);
    if (tag == "!") return value;
    if (tag == "tag:yaml.org,2002:int") return ResolveScalar(Tag::kInt, false, value);
    return value;
  }

  bool ExpectingKey() const {
    return !stack_.empty() && stack_.back().map && !stack_.back().have_key;
  }

  void SetKey(const std::string& key, bool merge, const YAML::Mark& mark) {
    Frame& f = stack_.back();
    f.key = key;
    f.key_is_merge = merge;
    f.key_mark = mark;
    f.have_key = true;
  }

  std::string PathWith(const std::string& key) const {
    KeyPath path;
    for (size_t i = 0; i + 1 < stack_.size(); ++i) {
      if (stack_[i].map) {
        path.PushKey(&stack_[i].key);
      } else {
        path.PushIndex(stack_[i].index);
      }
    }
    return path.With(key);
  }

  void Start(const YAML::Mark& mark, YAML::anchor_t anchor, bool map) {
    if (ExpectingKey()) throw BuildError{"a map key is not a plain value", mark};
    if (stack_.size() >= static_cast<size_t>(kMaxDepth)) throw BuildError{kDepthError, mark};
    Frame f;
    f.value = map ? json::object() : json::array();
    f.map = map;
    f.anchor = anchor;
    f.mark = mark;
    stack_.push_back(std::move(f));
  }

  void End() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.merged) ApplyMerges(&f.value.get_ref<json::object_t&>(), &f.merges);
    if (f.anchor) anchors_[f.anchor] = {f.value, MeasureJson(f.value), std::nullopt};
    Attach(std::move(f.value));
  }

  void Attach(json v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return;
    }
    Frame& f = stack_.back();
    if (!f.map) {
      f.value.get_ref<json::array_t&>().push_back(std::move(v));
      ++f.index;
      return;
    }
    if (f.key_is_merge) {
      if (f.merged) duplicates_.push_back(PathWith("<<"));
      f.merged = true;
      if (!CollectMerges(std::move(v), &f.merges)) throw BuildError{kMergeError, f.key_mark};
    } else {
      auto& obj = f.value.get_ref<json::object_t&>();
      auto [it, fresh] = obj.try_emplace(f.key, std::move(v));
      if (!fresh) {
        duplicates_.push_back(PathWith(f.key));
        it->second = std::move(v);
      }
    }
    f.have_key = false;
  }

  size_t* alias_values_;
  std::vector<YamlDocument>* out_;
  int started_ = 0;
  std::vector<int> start_lines_;
  bool in_document_ = false;
  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, AnchorValue> anchors_;
  json root_;
  std::vector<std::string> duplicates_;
};

// An istream over text in memory, without copying it.
class MemoryBuffer : public std::streambuf {
 public:
  explicit MemoryBuffer(std::string_view text) {
    char* p = const_cast<char*>(text.data());
    setg(p, p, p + text.size());
  }
};

// yaml-cpp reads `text`, whose first document is document `first_index` of
// the source and whose first line is line `first_line` + 1. `whole`: the
// text is the whole source (errors before any document then name none).
//
// `drop_at_line` >= 0: the text ends with the `---` line that starts the next
// document (so that yaml-cpp sees a scalar or collection end there, as it
// would in the whole text); the empty document it starts is not read.
Status ReadWithYamlCpp(std::string_view text, const std::string& source, int first_index,
                       int first_line, bool whole, size_t* alias_values,
                       const YamlSink& sink, int* documents, int drop_at_line = -1) {
  auto where = [&](int doc) { return whole && doc <= 0 ? source : Where(source, doc); };
  if (auto e = CheckNesting(text)) {
    return Status::Error(where(whole ? 0 : first_index) + ": not YAML: " + *e);
  }
  if (auto e = CheckRootStarts(text, first_line)) {
    return Status::Error(where(whole ? 0 : first_index) + ": not YAML: " + *e);
  }
  std::vector<YamlDocument> docs;
  EventBuilder builder(alias_values, &docs);
  std::optional<YAML::Mark> parse_mark;
  std::string parse_message;
  std::optional<BuildError> build_error;
  std::string other_error;
  bool gave_up = false;
  {
    // Generous for real manifests, and a hard stop for inputs that make
    // yaml-cpp loop. The budget must be gone before anything else
    // allocates, hence the flags.
    AllocationBudget budget(kYamlCppBudgetBase + kYamlCppBudgetPerByte * text.size());
    try {
      MemoryBuffer buffer(text);
      std::istream in(&buffer);
      YAML::Parser parser(in);
      while (parser.HandleNextDocument(builder)) {
      }
    } catch (const std::bad_alloc&) {
      if (!budget.exceeded()) throw;
      gave_up = true;
    } catch (const YAML::Exception& e) {
      parse_mark = e.mark;
      parse_message = e.msg;
    } catch (const BuildError& e) {
      build_error = e;
    } catch (const std::exception& e) {
      other_error = e.what();
    }
  }
  // The document being read when it stopped.
  const int doc = first_index + builder.started() - (builder.in_document() ? 1 : 0);
  auto line_column = [&](const YAML::Mark& m) {
    return m.line < 0 ? std::string() : At(m.line + 1 + first_line, m.column + 1);
  };
  if (gave_up) {
    docs.clear();
    return Status::Error(where(doc) + ": not YAML: the parser gave up (it needed far more memory " +
                         "than a text this size can); the input is malformed");
  }
  if (parse_mark) {
    if (parse_message == YAML::ErrorMsg::UNKNOWN_ANCHOR) {
      parse_message += " (an alias names an anchor of its own document)";
    }
    return Status::Error(where(doc) + ": not YAML: " + parse_message + line_column(*parse_mark));
  }
  if (build_error) {
    return Status::Error(where(doc) + ": " + build_error->message + line_column(build_error->mark));
  }
  if (!other_error.empty()) return Status::Error(where(doc) + ": not YAML: " + other_error);
  if (drop_at_line >= 0 && !docs.empty() && builder.start_lines().size() == docs.size() &&
      builder.start_lines().back() == drop_at_line) {
    docs.pop_back();
  }
  *documents = static_cast<int>(docs.size());
  for (YamlDocument& d : docs) {
    d.index += first_index - 1;
    sink.add(std::move(d));
  }
  return Status::Ok();
}

// Text the fast reader leaves to yaml-cpp whole: a byte order mark or
// another encoding, '\0', a directive.
bool ForYamlCpp(std::string_view text) {
  if (text.size() >= 2 && (text[0] == '\0' || text[1] == '\0')) return true;
  if (text.size() >= 2 && static_cast<unsigned char>(text[0]) >= 0xEF) return true;  // BOMs
  if (std::memchr(text.data(), '\0', text.size())) return true;
  if (!text.empty() && text[0] == '%') return true;
  return text.find("\n%") != std::string_view::npos;
}

}  // namespace

Status ReadYaml(std::string_view text, const std::string& source, Reader reader,
                const YamlSink& sink, ReadInfo* info) {
  ReadInfo unused;
  if (!info) info = &unused;
  size_t alias_values = 0;
  int documents = 0;
  if (reader == Reader::kYamlCpp) {
    return ReadWithYamlCpp(text, source, 1, 0, true, &alias_values, sink, &documents);
  }

  // yaml-cpp skips a UTF-8 byte order mark; so does the fast reader.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  // Line breaks as "\r\n" read as "\n"; a lone '\r' is left to yaml-cpp.
  std::string unix_text;
  bool whole = ForYamlCpp(text);
  if (!whole && text.find('\r') != std::string_view::npos) {
    unix_text.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\r') {
        if (i + 1 < text.size() && text[i + 1] == '\n') continue;
        whole = true;
        break;
      }
      unix_text += text[i];
    }
    if (!whole) text = unix_text;
  }
  // Documents go to the sink as they are read (50k of them held at once
  // cost page faults); on an error or a restart they are taken back.
  auto fail = [&](Status s) {
    sink.take_back();
    return s;
  };
  if (!whole) {
    FastReader fast(text, &alias_values);
    int index = 0;
    try {
      while (fast.NextDocument()) {
        ++index;
        const char* start = fast.line_start();
        try {
          YamlDocument doc;
          doc.index = index;
          fast.ReadDocument(&doc.json, &doc.duplicate_keys);
          sink.add(std::move(doc));
        } catch (const HandOver& h) {
          if (reader == Reader::kFast) {
            info->handed_over = true;
            return fail(Status::Error(Where(source, index) + ": left to yaml-cpp at line " +
                                      std::to_string(fast.LineOf(h.at) + 1) +
                                      " (yaml_reader.cc:" + std::to_string(h.reader_line) + ")"));
          }
          // yaml-cpp reads the document with the marker line after it (no
          // more of that line: `--- ,` would trip CheckRootStarts here).
          const char* end = fast.DocumentEnd(start);
          std::string slice(start, end ? end - start : text.data() + text.size() - start);
          int drop_at_line = -1;
          if (end) {
            if (*end == '-') drop_at_line = std::count(slice.begin(), slice.end(), '\n');
            slice.append(end, 3);
            slice += '\n';
          }
          Status s = ReadWithYamlCpp(slice, source, index, fast.LineOf(start), false, &alias_values,
                                     sink, &documents, drop_at_line);
          if (!s.ok()) return fail(s);
          info->yamlcpp_documents += documents;
          if (documents > 1) index += documents - 1;
          fast.ResumeAt(end ? end : text.data() + text.size());
        } catch (const Fatal& f) {
          return fail(Status::Error(Where(source, index) + ": " + f.message));
        }
      }
    } catch (const WholeText&) {
      whole = true;
    }
  }
  if (whole) {
    sink.take_back();
    if (reader == Reader::kFast) {
      info->handed_over = true;
      return Status::Error(source + ": left to yaml-cpp");
    }
    alias_values = 0;
    Status s = ReadWithYamlCpp(text, source, 1, 0, true, &alias_values, sink, &documents);
    if (!s.ok()) return fail(s);
    info->yamlcpp_documents = documents;
  }
  return Status::Ok();
}

Status ReadYaml(std::string_view text, const std::string& source, Reader reader,
                std::vector<YamlDocument>* out, ReadInfo* info) {
  const size_t first = out->size();
  YamlSink sink{[out](YamlDocument&& d) { out->push_back(std::move(d)); },
                [out, first] { out->erase(out->begin() + static_cast<std::ptrdiff_t>(first), out->end()); }};
  return ReadYaml(text, source, reader, sink, info);
}

}  // namespace ipguard::yaml_reader
