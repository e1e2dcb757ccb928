#include "core/json_projection.h"

#include <charconv>
#include <cstdlib>

namespace ipguard {

using nlohmann::json;

JsonProjection& JsonProjection::Keep(std::string key, JsonProjection child) {
  members_.emplace_back(std::move(key), std::move(child));
  return *this;
}

JsonProjection& JsonProjection::Items(JsonProjection child) {
  items_.assign(1, std::move(child));
  return *this;
}

const JsonProjection* JsonProjection::Member(std::string_view key) const {
  for (const auto& [name, child] : members_) {
    if (name == key) return &child;
  }
  return nullptr;
}

namespace {

const JsonProjection kWhole;

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

// A recursive-descent parser over the text. `out` is null when a value is
// only checked and skipped; `proj` is the projection of the value being
// built. Every failure returns false: the caller declines the whole text.
class Parser {
 public:
  explicit Parser(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  bool Document(const JsonProjection& proj, json* out) {
    SkipSpace();
    if (!Value(&proj, out, 0)) return false;
    SkipSpace();
    // nlohmann/json ends the input at a NUL byte (for C strings), and so
    // ignores whatever follows one after the value; so does this parser.
    return p_ == end_ || *p_ == '\0';
  }

 private:
  void SkipSpace() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool Value(const JsonProjection* proj, json* out, int depth) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
        return Object(proj, out, depth + 1);
      case '[':
        return Array(proj, out, depth + 1);
      case '"': {
        std::string_view text;
        if (!String(&text, out != nullptr)) return false;
        if (out) *out = std::string(text);
        return true;
      }
      case 't':
        return Literal("true", out, json(true));
      case 'f':
        return Literal("false", out, json(false));
      case 'n':
        return Literal("null", out, json(nullptr));
      default:
        return Number(out);
    }
  }

  bool Literal(std::string_view word, json* out, json value) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    if (out) *out = std::move(value);
    return true;
  }

  bool Object(const JsonProjection* proj, json* out, int depth) {
    if (depth > kMaxProjectionDepth) return false;
    ++p_;  // '{'
    // Members are narrowed only when the projection names some; otherwise
    // the object is kept whole (or only skipped, without out).
    const bool narrow = proj && proj->NarrowsObjects();
    if (out) *out = json::object();
    SkipSpace();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    while (true) {
      SkipSpace();
      if (p_ == end_ || *p_ != '"') return false;
      std::string_view key;
      if (!String(&key, out != nullptr)) return false;
      SkipSpace();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      SkipSpace();
      const JsonProjection* child = nullptr;
      json* slot = nullptr;
      if (out) {
        child = narrow ? proj->Member(key) : &kWhole;
        if (child) {
          // The last of duplicate keys wins, as in nlohmann/json.
          slot = &(*out)[std::string(key)];
        }
      }
      if (!Value(child, slot, depth)) return false;
      SkipSpace();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != '}') return false;
      ++p_;
      return true;
    }
  }

  bool Array(const JsonProjection* proj, json* out, int depth) {
    if (depth > kMaxProjectionDepth) return false;
    ++p_;  // '['
    const JsonProjection* item = nullptr;
    if (out) {
      *out = json::array();
      item = proj && proj->ItemProjection() ? proj->ItemProjection() : &kWhole;
    }
    SkipSpace();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    while (true) {
      SkipSpace();
      json* slot = nullptr;
      if (out) {
        out->get_ref<json::array_t&>().emplace_back();
        slot = &out->get_ref<json::array_t&>().back();
      }
      if (!Value(item, slot, depth)) return false;
      SkipSpace();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != ']') return false;
      ++p_;
      return true;
    }
  }

  // At the opening quote. Sets *text to the decoded string: a view into the
  // input when it has no escape, else into buf_. Without `decode`, escapes
  // are checked but not decoded (and *text is meaningless).
  bool String(std::string_view* text, bool decode) {
    ++p_;  // '"'
    const char* start = p_;
    bool escaped = false;
    if (decode) buf_.clear();
    while (true) {
      if (p_ == end_) return false;
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') break;
      // Control characters are not JSON; other bytes above ASCII are
      // left to nlohmann/json, which checks them as UTF-8.
      if (c < 0x20 || c >= 0x80) return false;
      if (c != '\\') {
        if (decode && escaped) buf_ += static_cast<char>(c);
        ++p_;
        continue;
      }
      if (decode && !escaped) buf_.assign(start, p_);
      escaped = true;
      ++p_;
      if (p_ == end_) return false;
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
    *text = escaped ? std::string_view(buf_) : std::string_view(start, p_ - start);
    ++p_;  // '"'
    return true;
  }

  bool Hex4(uint32_t* cp) {
    if (end_ - p_ < 4) return false;
    for (int i = 0; i < 4; ++i) {
      int d = HexDigit(p_[i]);
      if (d < 0) return false;
      *cp = *cp * 16 + static_cast<uint32_t>(d);
    }
    p_ += 4;
    return true;
  }

  static bool IsDigit(const char* p, const char* end) { return p != end && *p >= '0' && *p <= '9'; }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, read as nlohmann/json
  // reads it: an integer that fits is int64 (negative) or uint64, anything
  // else a double from strtod.
  bool Number(json* out) {
    const char* start = p_;
    bool negative = false;
    if (*p_ == '-') {
      negative = true;
      ++p_;
    }
    if (!IsDigit(p_, end_)) return false;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (IsDigit(p_, end_)) ++p_;
    }
    bool integer = true;
    if (p_ != end_ && *p_ == '.') {
      integer = false;
      ++p_;
      if (!IsDigit(p_, end_)) return false;
      while (IsDigit(p_, end_)) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!IsDigit(p_, end_)) return false;
      while (IsDigit(p_, end_)) ++p_;
    }
    if (!out) return true;
    if (integer) {
      if (negative) {
        int64_t v = 0;
        auto r = std::from_chars(start, p_, v);
        if (r.ec == std::errc() && r.ptr == p_) {
          *out = v;
          return true;
        }
      } else {
        uint64_t v = 0;
        auto r = std::from_chars(start, p_, v);
        if (r.ec == std::errc() && r.ptr == p_) {
          *out = v;
          return true;
        }
      }
    }
    std::string token(start, p_);
    *out = std::strtod(token.c_str(), nullptr);
    return true;
  }

  const char* p_;
  const char* end_;
  std::string buf_;  // a string with escapes, decoded
};

}  // namespace

std::optional<json> ParseProjected(std::string_view text, const JsonProjection& projection) {
  json out;
  Parser parser(text);
  if (!parser.Document(projection, &out)) return std::nullopt;
  return out;
}

}  // namespace ipguard
