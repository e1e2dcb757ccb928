// IP addresses and address blocks, IPv4 and IPv6 in one 128-bit type.
//
// Parsing is strict on purpose (see docs/rules.md, "Address syntax"): leading
// zeros in IPv4 octets, missing octets, zone ids, surrounding spaces,
// IPv4-mapped IPv6 addresses and CIDRs with host bits set are all rejected with
// a reason that says why. The reason never repeats the input; callers prefix it
// with the field path and the text.
//
// Pure value types: no I/O, thread-compatible.
#ifndef IPGUARD_CORE_ADDRESS_H_
#define IPGUARD_CORE_ADDRESS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ipguard {

using u128 = unsigned __int128;

enum class Family : uint8_t { kV4 = 4, kV6 = 6 };

class IpAddr {
 public:
  IpAddr() = default;
  static IpAddr V4(uint32_t v) { return IpAddr(Family::kV4, v); }
  static IpAddr V6(u128 v) { return IpAddr(Family::kV6, v); }

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kV4; }
  // For IPv4 only the low 32 bits are used.
  u128 value() const { return value_; }
  int bits() const { return is_v4() ? 32 : 128; }

  std::string ToString() const;
  // Appends ToString() to `out` (a report of a million messages builds them
  // without a string per address).
  void AppendTo(std::string* out) const;

  friend bool operator==(const IpAddr& a, const IpAddr& b) {
    return a.family_ == b.family_ && a.value_ == b.value_;
  }
  friend bool operator!=(const IpAddr& a, const IpAddr& b) { return !(a == b); }
  // Orders IPv4 before IPv6, then by value.
  friend bool operator<(const IpAddr& a, const IpAddr& b) {
    return a.family_ != b.family_ ? a.family_ < b.family_ : a.value_ < b.value_;
  }
  friend bool operator<=(const IpAddr& a, const IpAddr& b) { return !(b < a); }

 private:
  IpAddr(Family f, u128 v) : value_(v), family_(f) {}
  // Stored 8-byte aligned: an address is 24 bytes instead of 32 and a Block
  // 56 instead of 80, which 100k stored Services feel; loads are the same
  // two 64-bit moves either way.
  using Packed = u128 __attribute__((aligned(8)));
  Packed value_ = 0;
  Family family_ = Family::kV4;
};

// The length of the longest prefix of `s` of at most `max` bytes that does
// not end inside a UTF-8 sequence.
size_t Utf8PrefixLength(std::string_view s, size_t max);

// `s` whole when it has at most `max` bytes; otherwise its longest prefix that
// ends on a UTF-8 character boundary and, with "..." after it, fits in `max`.
std::string CutUtf8(std::string_view s, size_t max);

// `s` in double quotes, for a message: at most kMaxQuoted bytes of it (cut on
// a UTF-8 character boundary, then "..."), so that no input makes a message,
// a denial or a log line grow with the size of a bad value.
constexpr size_t kMaxQuoted = 253;
std::string QuoteValue(std::string_view s);

// Parses one IP address. Errors carry only the reason.
Result<IpAddr> ParseIp(std::string_view text);

// An inclusive range of addresses of one family, remembering how it was
// written so messages can print it back in the user's terms.
class Block {
 public:
  enum class Form : uint8_t { kSingle, kCidr, kRange };

  Block() = default;
  static Block Single(IpAddr ip) { return Block(ip, ip, Form::kSingle, ip.bits()); }
  // Caller guarantees first <= last and same family.
  static Block Range(IpAddr first, IpAddr last) { return Block(first, last, Form::kRange, 0); }
  // Caller guarantees host bits of `network` are zero.
  static Block Cidr(IpAddr network, int prefix_len);

  const IpAddr& first() const { return first_; }
  const IpAddr& last() const { return last_; }
  Family family() const { return first_.family(); }
  Form form() const { return form_; }
  int prefix_len() const { return prefix_len_; }

  bool is_single() const { return first_ == last_; }
  // Number of addresses, saturating at UINT64_MAX (a /64 and larger).
  uint64_t Size() const;
  bool Contains(const IpAddr& ip) const {
    return ip.family() == family() && first_.value() <= ip.value() && ip.value() <= last_.value();
  }
  bool Contains(const Block& b) const {
    return b.family() == family() && first_.value() <= b.first_.value() &&
           b.last_.value() <= last_.value();
  }
  bool Overlaps(const Block& b) const {
    return b.family() == family() && first_.value() <= b.last_.value() &&
           b.first_.value() <= last_.value();
  }

  // `10.0.0.5`, `10.0.0.0/24` or `10.0.0.1-10.0.0.9`.
  std::string ToString() const;
  void AppendTo(std::string* out) const;

  friend bool operator==(const Block& a, const Block& b) {
    return a.first_ == b.first_ && a.last_ == b.last_;
  }

 private:
  Block(IpAddr f, IpAddr l, Form form, int len)
      : first_(f), last_(l), form_(form), prefix_len_(len) {}
  IpAddr first_;
  IpAddr last_;
  Form form_ = Form::kSingle;
  int prefix_len_ = 0;
};

// `a.b.c.d/len` or `v6/len`; host bits must be zero.
Result<Block> ParseCidr(std::string_view text);
// The same, but host bits set are cleared instead of refused
// (`192.168.50.1/24` is `192.168.50.0/24`): Azure's reading of a CIDR.
Result<Block> ParseCidrCovering(std::string_view text);
// `start-end` (spaces around the dash allowed, as MetalLB does); same family,
// start <= end.
Result<Block> ParseRange(std::string_view text);
// One IP, a CIDR or a range: what API.md calls an "address block".
Result<Block> ParseBlock(std::string_view text);
// A range from two already-parsed endpoints, e.g. an ipPools entry.
Result<Block> MakeRange(const IpAddr& start, const IpAddr& end);

// Saturating helpers for address counts.
uint64_t SaturatingAdd(uint64_t a, uint64_t b);

}  // namespace ipguard

#endif  // IPGUARD_CORE_ADDRESS_H_
