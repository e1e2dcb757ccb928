// JsonScanner: reads JSON text in place, value by value, for readers that
// want a few fields of a document without building all of it
// (ParseProjected, and the Service reader of the webhook's hot path).
//
// Strict: it takes a subset of what nlohmann/json takes and reads every value
// as nlohmann/json would (the same decoded strings and numbers). Anything
// else (text that is not JSON, non-ASCII bytes, which nlohmann/json checks
// as UTF-8, nesting deeper than kMaxScanDepth) makes a call return false;
// its callers then leave the whole text to nlohmann/json. After a false
// return the scanner's position is unspecified.
//
// Each value call expects the value at the current position (whitespace
// first is skipped) and leaves the position after it.
#ifndef IPGUARD_CORE_JSON_SCAN_H_
#define IPGUARD_CORE_JSON_SCAN_H_

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace ipguard {

inline constexpr int kMaxScanDepth = 128;

// The keys a typed reader has met in one object, so that a key given twice
// (which nlohmann/json would resolve by keeping the last) can be declined.
class SeenKeys {
 public:
  // False when the key numbered `n` (0..31) was met before.
  bool First(int n) {
    const uint32_t bit = 1u << n;
    if (bits_ & bit) return false;
    bits_ |= bit;
    return true;
  }
  bool All(int count) const { return (bits_ & ((1u << count) - 1)) == (1u << count) - 1; }

 private:
  uint32_t bits_ = 0;
};

class JsonScanner {
 public:
  explicit JsonScanner(std::string_view text)
      : p_(text.data()), end_(text.data() + text.size()) {}

  void SkipSpace() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  // The next character after whitespace, or '\0' at the end.
  char Peek() {
    SkipSpace();
    return p_ == end_ ? '\0' : *p_;
  }
  const char* position() const { return p_; }
  // Whether only whitespace is left. nlohmann/json ends its input at a NUL
  // byte (for C strings), so what follows one is ignored here too.
  bool AtDocumentEnd() {
    SkipSpace();
    return p_ == end_ || *p_ == '\0';
  }

  // A string, decoded. *text points into the input when the string has no
  // escape, else into a buffer that the next String() call reuses.
  bool String(std::string_view* text) { return Str(text, true); }
  bool String(std::string* out) {
    std::string_view v;
    if (!Str(&v, true)) return false;
    out->assign(v);
    return true;
  }
  // A number as nlohmann/json reads it (int64 when negative and it fits,
  // uint64 when it fits, else a double); out may be null to only check it.
  bool Number(nlohmann::json* out);
  // An integer literal that fits int64 (no fraction or exponent).
  bool Int(int64_t* out);
  bool Bool(bool* out);
  bool Null();
  // Any value, checked and passed over. `depth` is the number of objects
  // and lists around the value (0 for a whole document).
  bool Skip(int depth = 0);

  // Objects: BeginObject() at '{', then NextMember() until it returns 0.
  // NextMember returns 1 with *key set (unless key is null: then the key is
  // checked, not decoded) and the ':' passed (the member's value comes
  // next), 0 after the closing '}', -1 on a syntax error. *first starts
  // true for each object.
  bool BeginObject();
  int NextMember(bool* first, std::string_view* key);
  // Lists the same way: 1 when an item comes next, 0 after ']', -1.
  bool BeginArray();
  int NextItem(bool* first);

  // The object at the position, calling member(key) for each member, which
  // must read or Skip() the member's value and return false to stop (the key
  // is valid until it reads a string).
  template <typename Fn>
  bool Members(Fn&& member) {
    if (!BeginObject()) return false;
    bool first = true;
    std::string_view key;
    while (true) {
      int r = NextMember(&first, &key);
      if (r <= 0) return r == 0;
      if (!member(key)) return false;
    }
  }
  // The list at the position, calling item() for each item the same way.
  template <typename Fn>
  bool Items(Fn&& item) {
    if (!BeginArray()) return false;
    bool first = true;
    while (true) {
      int r = NextItem(&first);
      if (r <= 0) return r == 0;
      if (!item()) return false;
    }
  }

 private:
  bool Str(std::string_view* text, bool decode);
  // Before a member or an item: 0 after the closing `close`, 1 when one
  // follows (past its comma unless it is the first), -1 on a syntax error.
  int Next(bool* first, char close);
  bool Hex4(uint32_t* cp);
  bool Literal(std::string_view word);
  const char* NumberToken(bool* integer);

  const char* p_;
  const char* end_;
  std::string buf_;  // a string with escapes, decoded
};

}  // namespace ipguard

#endif  // IPGUARD_CORE_JSON_SCAN_H_
