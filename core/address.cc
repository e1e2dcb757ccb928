#include "core/address.h"

#include <cstdio>
#include <limits>
#include <vector>

namespace ipguard {

size_t Utf8PrefixLength(std::string_view s, size_t max) {
  if (s.size() <= max) return s.size();
  size_t n = max;
  // Back off continuation bytes (10xxxxxx) so that no character is split.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

std::string CutUtf8(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  return std::string(s.substr(0, Utf8PrefixLength(s, max >= 3 ? max - 3 : 0))) + "...";
}

std::string QuoteValue(std::string_view s) {
  if (s.size() <= kMaxQuoted) return "\"" + std::string(s) + "\"";
  return "\"" + std::string(s.substr(0, Utf8PrefixLength(s, kMaxQuoted))) + "...\" (" +
         std::to_string(s.size()) + " bytes)";
}

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Quote(std::string_view s) { return QuoteValue(s); }

// Checks what both families reject before looking at the syntax proper.
Status CheckCommon(std::string_view text) {
  if (text.empty()) return Status::Error("it is empty");
  if (IsSpace(text.front()) || IsSpace(text.back())) {
    return Status::Error("it has surrounding spaces");
  }
  for (char c : text) {
    if (IsSpace(c)) return Status::Error("it contains a space");
  }
  if (text.find('%') != std::string_view::npos) {
    return Status::Error("zone ids (the part after %) are not allowed");
  }
  if (text.front() == '[') return Status::Error("brackets are not allowed");
  return Status::Ok();
}

Result<uint32_t> ParseV4(std::string_view text) {
  uint32_t value = 0;
  int octets = 0;
  size_t pos = 0;
  while (true) {
    size_t dot = text.find('.', pos);
    std::string_view part = text.substr(pos, dot == std::string_view::npos ? dot : dot - pos);
    if (part.empty()) {
      return Status::Error(octets == 0 && pos == 0 && text.front() == '.'
                               ? "it starts with a dot"
                               : "it has an empty octet");
    }
    for (char c : part) {
      if (!IsDigit(c)) return Status::Error("octet " + Quote(part) + " is not a decimal number");
    }
    if (part.size() > 1 && part[0] == '0') {
      return Status::Error("octet " + Quote(part) + " has a leading zero");
    }
    if (part.size() > 3) return Status::Error("octet " + Quote(part) + " is larger than 255");
    int v = 0;
    for (char c : part) v = v * 10 + (c - '0');
    if (v > 255) return Status::Error("octet " + Quote(part) + " is larger than 255");
    if (++octets > 4) return Status::Error("it has more than 4 octets");
    value = (value << 8) | static_cast<uint32_t>(v);
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  if (octets != 4) {
    return Status::Error("it has " + std::to_string(octets) + " octets, an IPv4 address needs 4");
  }
  return value;
}

// Parses 1-4 hex digits into a 16-bit group.
Result<uint16_t> ParseGroup(std::string_view g) {
  if (g.empty()) return Status::Error("it has an empty group");
  if (g.size() > 4) return Status::Error("group " + Quote(g) + " has more than 4 hex digits");
  uint32_t v = 0;
  for (char c : g) {
    int h = HexValue(c);
    if (h < 0) return Status::Error("group " + Quote(g) + " is not hexadecimal");
    v = (v << 4) | static_cast<uint32_t>(h);
  }
  return static_cast<uint16_t>(v);
}

// Splits on ':' into groups; an embedded IPv4 tail becomes two groups.
Result<std::vector<uint16_t>> ParseGroups(std::string_view part, bool allow_v4_tail) {
  std::vector<uint16_t> groups;
  if (part.empty()) return groups;
  size_t pos = 0;
  while (true) {
    size_t colon = part.find(':', pos);
    std::string_view g = part.substr(pos, colon == std::string_view::npos ? colon : colon - pos);
    bool last = colon == std::string_view::npos;
    if (last && allow_v4_tail && g.find('.') != std::string_view::npos) {
      auto v4 = ParseV4(g);
      if (!v4.ok()) return Status::Error("its IPv4 tail is invalid: " + v4.error());
      groups.push_back(static_cast<uint16_t>(*v4 >> 16));
      groups.push_back(static_cast<uint16_t>(*v4 & 0xffff));
      break;
    }
    auto v = ParseGroup(g);
    if (!v.ok()) return v.status();
    groups.push_back(*v);
    if (last) break;
    pos = colon + 1;
  }
  return groups;
}

Result<u128> ParseV6(std::string_view text) {
  for (char c : text) {
    if (HexValue(c) < 0 && c != ':' && c != '.') {
      return Status::Error("character '" + std::string(1, c) + "' is not allowed in an IPv6 address");
    }
  }
  size_t dc = text.find("::");
  std::vector<uint16_t> groups;
  if (dc == std::string_view::npos) {
    auto g = ParseGroups(text, true);
    if (!g.ok()) return g.status();
    if (g->size() != 8) {
      return Status::Error("it has " + std::to_string(g->size()) +
                           " groups, an IPv6 address needs 8 (or ::)");
    }
    groups = *g;
  } else {
    if (text.find("::", dc + 1) != std::string_view::npos) {
      return Status::Error(":: appears more than once");
    }
    std::string_view head = text.substr(0, dc);
    std::string_view tail = text.substr(dc + 2);
    auto h = ParseGroups(head, false);
    if (!h.ok()) return h.status();
    auto t = ParseGroups(tail, true);
    if (!t.ok()) return t.status();
    if (h->size() + t->size() > 7) return Status::Error("it has too many groups for ::");
    groups = *h;
    groups.resize(8 - t->size(), 0);
    groups.insert(groups.end(), t->begin(), t->end());
  }
  u128 v = 0;
  for (uint16_t g : groups) v = (v << 16) | g;
  return v;
}

constexpr u128 kMappedMask = (static_cast<u128>(0xffff) << 32);

// Appends the decimal digits of `n` (0-255).
void AppendOctet(std::string* out, uint32_t n) {
  if (n >= 100) out->push_back(static_cast<char>('0' + n / 100));
  if (n >= 10) out->push_back(static_cast<char>('0' + n / 10 % 10));
  out->push_back(static_cast<char>('0' + n % 10));
}

void AppendV4(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    AppendOctet(out, (v >> shift) & 0xff);
    if (shift > 0) out->push_back('.');
  }
}

std::string V4ToString(uint32_t v) {
  std::string out;
  AppendV4(&out, v);
  return out;
}

u128 HostMask(int bits, int prefix_len) {
  int host = bits - prefix_len;
  if (host <= 0) return 0;
  if (host >= 128) return ~static_cast<u128>(0);
  return (static_cast<u128>(1) << host) - 1;
}

}  // namespace

std::string IpAddr::ToString() const {
  std::string out;
  AppendTo(&out);
  return out;
}

void IpAddr::AppendTo(std::string* out) const {
  if (is_v4()) {
    AppendV4(out, static_cast<uint32_t>(value_));
    return;
  }
  uint16_t g[8];
  for (int i = 0; i < 8; ++i) g[i] = static_cast<uint16_t>(value_ >> (16 * (7 - i)));
  // RFC 5952: compress the longest run of two or more zero groups, the first on a tie.
  int best = -1, best_len = 1;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t start = out->size();
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out->append("::");
      i += best_len - 1;
      continue;
    }
    if (out->size() > start && out->back() != ':') out->push_back(':');
    bool digits = false;  // lowercase, without leading zeros
    for (int shift = 12; shift >= 0; shift -= 4) {
      const int d = (g[i] >> shift) & 0xf;
      if (d == 0 && !digits && shift > 0) continue;
      digits = true;
      out->push_back(kHex[d]);
    }
  }
}

Result<IpAddr> ParseIp(std::string_view text) {
  Status common = CheckCommon(text);
  if (!common.ok()) return common;
  if (text.find(':') == std::string_view::npos) {
    auto v4 = ParseV4(text);
    if (!v4.ok()) return v4.status();
    return IpAddr::V4(*v4);
  }
  auto v6 = ParseV6(text);
  if (!v6.ok()) return v6.status();
  if ((*v6 >> 32) == (kMappedMask >> 32)) {
    return Status::Error("IPv4-mapped IPv6 addresses are not allowed; write the IPv4 address " +
                         V4ToString(static_cast<uint32_t>(*v6)));
  }
  return IpAddr::V6(*v6);
}

Block Block::Cidr(IpAddr network, int prefix_len) {
  u128 mask = HostMask(network.bits(), prefix_len);
  IpAddr last = network.is_v4() ? IpAddr::V4(static_cast<uint32_t>(network.value() | mask))
                                : IpAddr::V6(network.value() | mask);
  return Block(network, last, Form::kCidr, prefix_len);
}

uint64_t Block::Size() const {
  u128 span = last_.value() - first_.value();
  if (span >= std::numeric_limits<uint64_t>::max()) return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(span) + 1;
}

std::string Block::ToString() const {
  std::string out;
  AppendTo(&out);
  return out;
}

void Block::AppendTo(std::string* out) const {
  first_.AppendTo(out);
  switch (form_) {
    case Form::kSingle:
      return;
    case Form::kCidr:
      out->push_back('/');
      out->append(std::to_string(prefix_len_));
      return;
    case Form::kRange:
      out->push_back('-');
      last_.AppendTo(out);
      return;
  }
}

namespace {

// A CIDR's address and prefix length, checked as ParseCidr checks them but
// for the host bits.
Status ParseCidrParts(std::string_view text, IpAddr* ip_out, int* len_out) {
  Status common = CheckCommon(text);
  if (!common.ok()) return common;
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return Status::Error("it has no /prefix-length");
  std::string_view len_text = text.substr(slash + 1);
  auto ip = ParseIp(text.substr(0, slash));
  if (!ip.ok()) return ip.status();
  if (len_text.empty()) return Status::Error("the prefix length is empty");
  for (char c : len_text) {
    if (!IsDigit(c)) return Status::Error("the prefix length " + Quote(len_text) + " is not a number");
  }
  if (len_text.size() > 1 && len_text[0] == '0') {
    return Status::Error("the prefix length " + Quote(len_text) + " has a leading zero");
  }
  if (len_text.size() > 3) return Status::Error("the prefix length " + Quote(len_text) + " is too large");
  int len = std::stoi(std::string(len_text));
  if (len > ip->bits()) {
    return Status::Error("the prefix length /" + std::to_string(len) + " is larger than /" +
                         std::to_string(ip->bits()));
  }
  *ip_out = *ip;
  *len_out = len;
  return Status::Ok();
}

// The network of `ip` at `len`: its host bits cleared.
IpAddr NetworkOf(const IpAddr& ip, int len) {
  u128 mask = HostMask(ip.bits(), len);
  return ip.is_v4() ? IpAddr::V4(static_cast<uint32_t>(ip.value() & ~mask))
                    : IpAddr::V6(ip.value() & ~mask);
}

}  // namespace

Result<Block> ParseCidr(std::string_view text) {
  IpAddr ip;
  int len = 0;
  Status s = ParseCidrParts(text, &ip, &len);
  if (!s.ok()) return s;
  if ((ip.value() & HostMask(ip.bits(), len)) != 0) {
    return Status::Error("host bits are set; the network is " + NetworkOf(ip, len).ToString() + "/" +
                         std::to_string(len));
  }
  return Block::Cidr(ip, len);
}

Result<Block> ParseCidrCovering(std::string_view text) {
  IpAddr ip;
  int len = 0;
  Status s = ParseCidrParts(text, &ip, &len);
  if (!s.ok()) return s;
  return Block::Cidr(NetworkOf(ip, len), len);
}

Result<Block> MakeRange(const IpAddr& start, const IpAddr& end) {
  if (start.family() != end.family()) {
    return Status::Error("start " + start.ToString() + " and end " + end.ToString() +
                         " are of different IP families");
  }
  if (end.value() < start.value()) {
    return Status::Error("start " + start.ToString() + " is after end " + end.ToString());
  }
  return Block::Range(start, end);
}

Result<Block> ParseRange(std::string_view text) {
  // Spaces are allowed around the dash only (MetalLB accepts them); each side
  // is then parsed as strictly as any IP.
  if (text.empty()) return Status::Error("it is empty");
  if (IsSpace(text.front()) || IsSpace(text.back())) {
    return Status::Error("it has surrounding spaces");
  }
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) return Status::Error("it has no '-'");
  if (text.find('-', dash + 1) != std::string_view::npos) return Status::Error("it has more than one '-'");
  std::string_view a = text.substr(0, dash);
  std::string_view b = text.substr(dash + 1);
  while (!a.empty() && IsSpace(a.back())) a.remove_suffix(1);
  while (!b.empty() && IsSpace(b.front())) b.remove_prefix(1);
  auto start = ParseIp(a);
  if (!start.ok()) return Status::Error("start: " + start.error());
  auto end = ParseIp(b);
  if (!end.ok()) return Status::Error("end: " + end.error());
  return MakeRange(*start, *end);
}

Result<Block> ParseBlock(std::string_view text) {
  if (text.find('-') != std::string_view::npos) return ParseRange(text);
  if (text.find('/') != std::string_view::npos) return ParseCidr(text);
  auto ip = ParseIp(text);
  if (!ip.ok()) return ip.status();
  return Block::Single(*ip);
}

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  uint64_t s = a + b;
  return s < a ? std::numeric_limits<uint64_t>::max() : s;
}

}  // namespace ipguard
