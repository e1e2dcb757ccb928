// ShortString: text of up to 39 bytes kept in place (40 bytes in all),
// longer text on the heap. For the fields every stored object has and
// that are short but past std::string's 15 bytes in place, such as a uid
// (36) or a creationTimestamp (20): a std::string took 32 bytes plus a heap
// block of 48 to 64 for each.
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
 public:
  ShortString() = default;
  ShortString(std::string_view s) { Assign(s); }    // NOLINT: reads as the text it holds
  ShortString(const char* s) { Assign(s); }         // NOLINT
  ShortString(const std::string& s) { Assign(s); }  // NOLINT
  ShortString(const ShortString& o) { Assign(o.view()); }
  ShortString(ShortString&& o) noexcept {
    std::memcpy(data_, o.data_, sizeof data_);
    size_ = o.size_;
    o.size_ = 0;
  }
  ShortString& operator=(const ShortString& o) {
    if (this != &o) {
      Release();
      Assign(o.view());
    }
    return *this;
  }
  ShortString& operator=(ShortString&& o) noexcept {
    if (this != &o) {
      Release();
      std::memcpy(data_, o.data_, sizeof data_);
      size_ = o.size_;
      o.size_ = 0;
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

  std::string_view view() const {
    if (size_ != kOnHeap) return {data_, size_};
    const char* p;
    size_t n;
    std::memcpy(&p, data_, sizeof p);
    std::memcpy(&n, data_ + sizeof p, sizeof n);
    return {p, n};
  }
  operator std::string_view() const { return view(); }  // NOLINT
  std::string str() const { return std::string(view()); }
  bool empty() const { return size_ == 0; }
  size_t size() const { return view().size(); }

  friend bool operator==(const ShortString& a, const ShortString& b) {
    return a.view() == b.view();
  }
  friend bool operator!=(const ShortString& a, const ShortString& b) { return !(a == b); }
  friend bool operator==(const ShortString& a, std::string_view b) { return a.view() == b; }
  friend bool operator!=(const ShortString& a, std::string_view b) { return a.view() != b; }
  friend bool operator==(const ShortString& a, const char* b) { return a.view() == b; }
  friend bool operator!=(const ShortString& a, const char* b) { return a.view() != b; }
  friend bool operator==(const ShortString& a, const std::string& b) { return a.view() == b; }
  friend bool operator!=(const ShortString& a, const std::string& b) { return a.view() != b; }
  friend bool operator==(const std::string& a, const ShortString& b) { return b == a; }
  friend bool operator!=(const std::string& a, const ShortString& b) { return b != a; }
  friend bool operator<(const ShortString& a, const ShortString& b) { return a.view() < b.view(); }
  friend std::string operator+(const std::string& a, const ShortString& b) {
    std::string out = a;
    out.append(b.view());
    return out;
  }
  friend std::ostream& operator<<(std::ostream& os, const ShortString& s) { return os << s.view(); }

 private:
  static constexpr size_t kInPlace = 39;
  static constexpr uint8_t kOnHeap = 0xff;

  void Assign(std::string_view s) {
    if (s.size() <= kInPlace) {
      if (!s.empty()) std::memcpy(data_, s.data(), s.size());
      size_ = static_cast<uint8_t>(s.size());
      return;
    }
    char* p = new char[s.size()];
    std::memcpy(p, s.data(), s.size());
    size_t n = s.size();
    std::memcpy(data_, &p, sizeof p);
    std::memcpy(data_ + sizeof p, &n, sizeof n);
    size_ = kOnHeap;
  }
  void Release() {
    if (size_ == kOnHeap) {
      char* p;
      std::memcpy(&p, data_, sizeof p);
      delete[] p;
    }
    size_ = 0;
  }

  char data_[kInPlace] = {};
  uint8_t size_ = 0;  // kOnHeap: data_ holds a pointer and a length
};

}  // namespace ipguard

#endif  // IPGUARD_CORE_SHORT_STRING_H_
