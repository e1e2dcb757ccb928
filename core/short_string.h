// ShortString: text kept in 24 bytes. Up to 22 bytes sit in place (a
// creationTimestamp is 20, a resourceVersion a few digits), a uid in the
// canonical form (36 characters: lowercase hex in groups of 8-4-4-4-12) as
// its 16 bytes, anything else on the heap. For the fields every stored
// object has: a std::string took 32 bytes plus a heap block of 48 to 64
// for each of these, a uid included.
//
// It reads back as exactly the text it was given, whatever the form.
//
// Pure value type: no I/O, thread-compatible.
#ifndef IPGUARD_CORE_SHORT_STRING_H_
#define IPGUARD_CORE_SHORT_STRING_H_

#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <string_view>

namespace ipguard {

class ShortString {
  static constexpr size_t kInPlace = 22;
  static constexpr size_t kUuidText = 36;
  static constexpr uint8_t kUuid = 0xfe;
  static constexpr uint8_t kOnHeap = 0xff;

 public:
  ShortString() = default;
  ShortString(std::string_view s) { Assign(s); }    // NOLINT: reads as the text it holds
  ShortString(const char* s) { Assign(s); }         // NOLINT
  ShortString(const std::string& s) { Assign(s); }  // NOLINT
  ShortString(const ShortString& o) { CopyFrom(o); }
  ShortString(ShortString&& o) noexcept { Take(&o); }
  ShortString& operator=(const ShortString& o) {
    if (this != &o) {
      Release();
      CopyFrom(o);
    }
    return *this;
  }
  ShortString& operator=(ShortString&& o) noexcept {
    if (this != &o) {
      Release();
      Take(&o);
    }
    return *this;
  }
  ShortString& operator=(std::string_view s) {
    // `s` may point into this very text.
    ShortString copy(s);
    return *this = std::move(copy);
  }
  ShortString& operator=(const char* s) { return *this = std::string_view(s); }
  ShortString& operator=(const std::string& s) { return *this = std::string_view(s); }
  ~ShortString() { Release(); }

  // Room for the text of any form kept in place.
  struct Buffer {
    char text[kUuidText];
  };
  // The text, in `buf` when it is kept as a uid's bytes, else where it is
  // kept: valid while both this string (unchanged) and `buf` are.
  std::string_view View(Buffer* buf) const {
    if (tag_ <= kInPlace) return {data_, tag_};
    if (tag_ == kUuid) {
      FormatUuid(buf->text);
      return {buf->text, kUuidText};
    }
    const char* p;
    size_t n;
    std::memcpy(&p, data_, sizeof p);
    std::memcpy(&n, data_ + sizeof p, sizeof n);
    return {p, n};
  }
  std::string str() const {
    Buffer buf;
    return std::string(View(&buf));
  }
  void AppendTo(std::string* out) const {
    Buffer buf;
    out->append(View(&buf));
  }
  bool empty() const { return tag_ == 0; }
  size_t size() const {
    Buffer buf;
    return View(&buf).size();
  }

  friend bool operator==(const ShortString& a, std::string_view b) {
    Buffer buf;
    return a.View(&buf) == b;
  }
  friend bool operator==(const ShortString& a, const ShortString& b) {
    Buffer buf;
    return a == b.View(&buf);
  }
  friend bool operator!=(const ShortString& a, const ShortString& b) { return !(a == b); }
  friend bool operator!=(const ShortString& a, std::string_view b) { return !(a == b); }
  friend bool operator==(const ShortString& a, const char* b) { return a == std::string_view(b); }
  friend bool operator!=(const ShortString& a, const char* b) { return !(a == b); }
  friend bool operator==(const ShortString& a, const std::string& b) {
    return a == std::string_view(b);
  }
  friend bool operator!=(const ShortString& a, const std::string& b) { return !(a == b); }
  friend bool operator==(const std::string& a, const ShortString& b) { return b == a; }
  friend bool operator!=(const std::string& a, const ShortString& b) { return b != a; }
  friend bool operator<(const ShortString& a, const ShortString& b) {
    Buffer x, y;
    return a.View(&x) < b.View(&y);
  }
  friend std::string operator+(const std::string& a, const ShortString& b) {
    std::string out = a;
    b.AppendTo(&out);
    return out;
  }
  friend std::ostream& operator<<(std::ostream& os, const ShortString& s) {
    Buffer buf;
    return os << s.View(&buf);
  }

 private:
  static int HexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }
  static bool IsDash(size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }
  // The 16 bytes of a uid in the canonical form, into data_; false for any
  // other text (which is then kept as it is).
  bool PackUuid(std::string_view s) {
    if (s.size() != kUuidText) return false;
    uint8_t bytes[16];
    size_t n = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (IsDash(i)) {
        if (s[i] != '-') return false;
        continue;
      }
      int hi = HexValue(s[i]), lo = i + 1 < s.size() ? HexValue(s[i + 1]) : -1;
      if (hi < 0 || lo < 0 || IsDash(i + 1)) return false;
      bytes[n++] = static_cast<uint8_t>(hi << 4 | lo);
      ++i;
    }
    std::memcpy(data_, bytes, sizeof bytes);
    tag_ = kUuid;
    return true;
  }
  void FormatUuid(char* out) const {
    static constexpr char kHex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < kUuidText; ++i) {
      if (IsDash(i)) {
        out[i] = '-';
        continue;
      }
      const auto b = static_cast<uint8_t>(data_[n++]);
      out[i] = kHex[b >> 4];
      out[++i] = kHex[b & 0xf];
    }
  }
  void Assign(std::string_view s) {
    if (s.size() <= kInPlace) {
      if (!s.empty()) std::memcpy(data_, s.data(), s.size());
      tag_ = static_cast<uint8_t>(s.size());
      return;
    }
    if (PackUuid(s)) return;
    char* p = new char[s.size()];
    std::memcpy(p, s.data(), s.size());
    size_t n = s.size();
    std::memcpy(data_, &p, sizeof p);
    std::memcpy(data_ + sizeof p, &n, sizeof n);
    tag_ = kOnHeap;
  }
  void CopyFrom(const ShortString& o) {
    if (o.tag_ == kOnHeap) {
      Buffer unused;
      Assign(o.View(&unused));
      return;
    }
    std::memcpy(data_, o.data_, sizeof data_);
    tag_ = o.tag_;
  }
  void Take(ShortString* o) {
    std::memcpy(data_, o->data_, sizeof data_);
    tag_ = o->tag_;
    o->tag_ = 0;
  }
  void Release() {
    if (tag_ == kOnHeap) {
      char* p;
      std::memcpy(&p, data_, sizeof p);
      delete[] p;
    }
    tag_ = 0;
  }

  char data_[kInPlace + 1] = {};
  // 0..kInPlace: the length of the text in place; kUuid: data_ holds a
  // uid's 16 bytes; kOnHeap: data_ holds a pointer and a length.
  uint8_t tag_ = 0;
};

}  // namespace ipguard

#endif  // IPGUARD_CORE_SHORT_STRING_H_
