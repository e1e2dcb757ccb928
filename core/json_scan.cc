#include "core/json_scan.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

namespace ipguard {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(std::string* out, uint32_t cp) {
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

// Bytes that end a run of plain string characters: the quote, the
// backslash, control characters and everything above ASCII.
struct StopTable {
  bool stop[256];
  constexpr StopTable() : stop() {
    for (int c = 0; c < 256; ++c) stop[c] = c < 0x20 || c >= 0x80 || c == '"' || c == '\\';
  }
};
constexpr StopTable kStop;

bool IsDigit(const char* p, const char* end) { return p != end && *p >= '0' && *p <= '9'; }

}  // namespace

bool JsonScanner::Str(std::string_view* text, bool decode) {
  SkipSpace();
  if (p_ == end_ || *p_ != '"') return false;
  ++p_;
  const char* start = p_;
  bool escaped = false;
  while (true) {
    const char* run = p_;
    while (p_ != end_ && !kStop.stop[static_cast<unsigned char>(*p_)]) ++p_;
    if (decode && escaped) buf_.append(run, p_);
    if (p_ == end_) return false;
    if (*p_ == '"') break;
    // Control characters are not JSON; bytes above ASCII are left to
    // nlohmann/json, which checks them as UTF-8.
    if (*p_ != '\\') return false;
    if (decode && !escaped) buf_.assign(start, p_);
    escaped = true;
    if (++p_ == end_) return false;
    char e = *p_++;
    char plain = 0;
    switch (e) {
      case '"':
      case '\\':
      case '/':
        plain = e;
        break;
      case 'b':
        plain = '\b';
        break;
      case 'f':
        plain = '\f';
        break;
      case 'n':
        plain = '\n';
        break;
      case 'r':
        plain = '\r';
        break;
      case 't':
        plain = '\t';
        break;
      case 'u': {
        uint32_t cp = 0;
        if (!Hex4(&cp)) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t low = 0;
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
          p_ += 2;
          if (!Hex4(&low) || low < 0xDC00 || low > 0xDFFF) return false;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return false;
        }
        if (decode) AppendUtf8(&buf_, cp);
        continue;
      }
      default:
        return false;
    }
    if (decode) buf_ += plain;
  }
  if (text) *text = escaped ? std::string_view(buf_) : std::string_view(start, p_ - start);
  ++p_;  // the closing quote
  return true;
}

bool JsonScanner::Hex4(uint32_t* cp) {
  if (end_ - p_ < 4) return false;
  for (int i = 0; i < 4; ++i) {
    int d = HexDigit(p_[i]);
    if (d < 0) return false;
    *cp = *cp * 16 + static_cast<uint32_t>(d);
  }
  p_ += 4;
  return true;
}

bool JsonScanner::Literal(std::string_view word) {
  SkipSpace();
  if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) {
    return false;
  }
  p_ += word.size();
  return true;
}

bool JsonScanner::Bool(bool* out) {
  if (Peek() == 't' && Literal("true")) {
    *out = true;
    return true;
  }
  if (Peek() == 'f' && Literal("false")) {
    *out = false;
    return true;
  }
  return false;
}

bool JsonScanner::Null() { return Literal("null"); }

// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; the start of the token,
// or nullptr when there is none.
const char* JsonScanner::NumberToken(bool* integer) {
  SkipSpace();
  const char* start = p_;
  if (p_ != end_ && *p_ == '-') ++p_;
  if (!IsDigit(p_, end_)) return nullptr;
  if (*p_ == '0') {
    ++p_;
  } else {
    while (IsDigit(p_, end_)) ++p_;
  }
  *integer = true;
  if (p_ != end_ && *p_ == '.') {
    *integer = false;
    ++p_;
    if (!IsDigit(p_, end_)) return nullptr;
    while (IsDigit(p_, end_)) ++p_;
  }
  if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
    *integer = false;
    ++p_;
    if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
    if (!IsDigit(p_, end_)) return nullptr;
    while (IsDigit(p_, end_)) ++p_;
  }
  return start;
}

bool JsonScanner::Number(nlohmann::json* out) {
  bool integer = false;
  const char* start = NumberToken(&integer);
  if (!start) return false;
  if (integer) {
    if (*start == '-') {
      int64_t v = 0;
      auto r = std::from_chars(start, p_, v);
      if (r.ec == std::errc() && r.ptr == p_) {
        if (out) *out = v;
        return true;
      }
    } else {
      uint64_t v = 0;
      auto r = std::from_chars(start, p_, v);
      if (r.ec == std::errc() && r.ptr == p_) {
        if (out) *out = v;
        return true;
      }
    }
  }
  // As nlohmann/json: a fraction, an exponent or an integer too large for
  // 64 bits is a double from strtod, and one too large for a double is
  // refused ("number overflow"), skipped or not.
  std::string token(start, p_);
  double d = std::strtod(token.c_str(), nullptr);
  if (!std::isfinite(d)) return false;
  if (out) *out = d;
  return true;
}

bool JsonScanner::Int(int64_t* out) {
  bool integer = false;
  const char* start = NumberToken(&integer);
  if (!start || !integer) return false;
  auto r = std::from_chars(start, p_, *out);
  return r.ec == std::errc() && r.ptr == p_;
}

bool JsonScanner::BeginObject() {
  if (Peek() != '{') return false;
  ++p_;
  return true;
}

int JsonScanner::Next(bool* first, char close) {
  char c = Peek();
  if (c == close) {
    ++p_;
    return 0;
  }
  if (!*first) {
    if (c != ',') return -1;
    ++p_;
  }
  *first = false;
  return 1;
}

int JsonScanner::NextMember(bool* first, std::string_view* key) {
  int r = Next(first, '}');
  if (r <= 0) return r;
  if (!Str(key, key != nullptr) || Peek() != ':') return -1;
  ++p_;
  return 1;
}

bool JsonScanner::BeginArray() {
  if (Peek() != '[') return false;
  ++p_;
  return true;
}

int JsonScanner::NextItem(bool* first) { return Next(first, ']'); }

bool JsonScanner::Skip(int depth) {
  switch (Peek()) {
    case '{': {
      if (depth >= kMaxScanDepth) return false;
      ++p_;
      bool first = true;
      while (true) {
        int r = NextMember(&first, nullptr);  // keys are checked, not decoded
        if (r == 0) return true;
        if (r < 0 || !Skip(depth + 1)) return false;
      }
    }
    case '[': {
      if (depth >= kMaxScanDepth) return false;
      ++p_;
      bool first = true;
      while (true) {
        int r = NextItem(&first);
        if (r == 0) return true;
        if (r < 0 || !Skip(depth + 1)) return false;
      }
    }
    case '"':
      return Str(nullptr, false);
    case 't':
      return Literal("true");
    case 'f':
      return Literal("false");
    case 'n':
      return Literal("null");
    default:
      return Number(nullptr);
  }
}

}  // namespace ipguard
