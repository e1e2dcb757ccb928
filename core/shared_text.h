// SharedText: text that many stored objects repeat (the cluster, kind,
// apiVersion and namespace of a claim's holder), kept once for the process:
// 8 bytes in each object, where a std::string took 32 and a heap block for
// anything past 15 bytes.
//
// The first kMaxSharedTexts distinct texts are kept for good. Past them
// (no plan has that many namespaces and clusters; a writer of claims with
// ever new values might) each SharedText owns a copy of its own, so that
// memory never grows but with the objects that hold the text.
//
// Reads as the std::string it holds. Thread-safe: the texts kept for good
// are shared under a lock taken only to make a SharedText from text.
#ifndef IPGUARD_CORE_SHARED_TEXT_H_
#define IPGUARD_CORE_SHARED_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

namespace ipguard {

inline constexpr size_t kMaxSharedTexts = 65536;

class SharedText {
 public:
  SharedText() = default;
  SharedText(std::string_view s) : p_(Make(s)) {}  // NOLINT: reads as its text
  SharedText(const std::string& s) : SharedText(std::string_view(s)) {}  // NOLINT
  SharedText(const char* s) : SharedText(std::string_view(s)) {}         // NOLINT
  SharedText(const SharedText& o) : p_(o.Owned() ? Own(o.str()) : o.p_) {}
  SharedText(SharedText&& o) noexcept : p_(o.p_) { o.p_ = 0; }
  SharedText& operator=(const SharedText& o) {
    if (this != &o) {
      SharedText copy(o);
      *this = std::move(copy);
    }
    return *this;
  }
  SharedText& operator=(SharedText&& o) noexcept {
    if (this != &o) {
      Release();
      p_ = o.p_;
      o.p_ = 0;
    }
    return *this;
  }
  ~SharedText() { Release(); }

  const std::string& str() const {
    return p_ ? *reinterpret_cast<const std::string*>(p_ & ~uintptr_t{1}) : Empty();
  }
  operator const std::string&() const { return str(); }  // NOLINT: reads as its text
  bool empty() const { return str().empty(); }
  size_t size() const { return str().size(); }
  const char* c_str() const { return str().c_str(); }

  friend bool operator==(const SharedText& a, const SharedText& b) {
    return (a.p_ == b.p_ && !a.Owned()) || a.str() == b.str();
  }
  friend bool operator!=(const SharedText& a, const SharedText& b) { return !(a == b); }
  friend bool operator==(const SharedText& a, const std::string& b) { return a.str() == b; }
  friend bool operator!=(const SharedText& a, const std::string& b) { return a.str() != b; }
  friend bool operator==(const std::string& a, const SharedText& b) { return a == b.str(); }
  friend bool operator!=(const std::string& a, const SharedText& b) { return a != b.str(); }
  friend bool operator==(const SharedText& a, const char* b) { return a.str() == b; }
  friend bool operator!=(const SharedText& a, const char* b) { return a.str() != b; }
  friend bool operator<(const SharedText& a, const SharedText& b) { return a.str() < b.str(); }
  friend std::string operator+(const std::string& a, const SharedText& b) { return a + b.str(); }
  friend std::string operator+(const SharedText& a, const std::string& b) { return a.str() + b; }
  friend std::string operator+(const char* a, const SharedText& b) { return a + b.str(); }
  friend std::string operator+(const SharedText& a, const char* b) { return a.str() + b; }
  friend std::ostream& operator<<(std::ostream& os, const SharedText& s) { return os << s.str(); }

  // Distinct texts kept for good so far (at most kMaxSharedTexts).
  static size_t SharedCount();

 private:
  static const std::string& Empty();
  // The text kept for good, or past the limit a copy of its own (the low
  // bit set); 0 for the empty text.
  static uintptr_t Make(std::string_view s);
  static uintptr_t Own(std::string_view s);
  bool Owned() const { return (p_ & 1) != 0; }
  void Release() {
    if (Owned()) delete reinterpret_cast<std::string*>(p_ & ~uintptr_t{1});
    p_ = 0;
  }

  uintptr_t p_ = 0;
};

}  // namespace ipguard

#endif  // IPGUARD_CORE_SHARED_TEXT_H_
