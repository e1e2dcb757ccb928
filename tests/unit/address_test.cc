#include "core/address.h"

#include <gtest/gtest.h>

namespace ipguard {
namespace {

struct Reject {
  const char* text;
  const char* reason;  // substring of the error
};

// Each case must fail with a reason that contains its expected text.
template <typename Parse, size_t N>
void ExpectRejects(Parse parse, const Reject (&cases)[N]) {
  for (const auto& c : cases) {
    auto r = parse(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.error().find(c.reason), std::string::npos) << c.text << " -> " << r.error();
  }
}

TEST(ParseIp, AcceptsCanonicalV4) {
  for (const char* s : {"0.0.0.0", "10.0.0.1", "255.255.255.255", "192.168.100.7"}) {
    auto ip = ParseIp(s);
    ASSERT_TRUE(ip.ok()) << s << ": " << ip.error();
    EXPECT_TRUE(ip->is_v4());
    EXPECT_EQ(ip->ToString(), s);
  }
  EXPECT_EQ(ParseIp("10.1.2.3")->value(), (10u << 24) | (1u << 16) | (2u << 8) | 3u);
}

TEST(ParseIp, RejectsBadV4WithReason) {
  const Reject cases[] = {
      {"010.1.1.1", "octet \"010\" has a leading zero"},
      {"10.01.1.1", "leading zero"},
      {"10.1.1", "it has 3 octets, an IPv4 address needs 4"},
      {"10.1.1.1.1", "more than 4 octets"},
      {"10.1..1", "empty octet"},
      {".10.1.1", "starts with a dot"},
      {"10.1.1.", "empty octet"},
      {"256.1.1.1", "larger than 255"},
      {"1000.1.1.1", "larger than 255"},
      {"10.1.1.a", "not a decimal number"},
      {"+1.1.1.1", "not a decimal number"},
      {" 10.0.0.1", "surrounding spaces"},
      {"10.0.0.1 ", "surrounding spaces"},
      {"10.0. 0.1", "contains a space"},
      {"", "empty"},
      {"10.0.0.1%eth0", "zone ids"},
  };
  ExpectRejects(ParseIp, cases);
}

TEST(ParseIp, AcceptsV6Forms) {
  struct {
    const char* in;
    const char* canonical;
  } cases[] = {
      {"::", "::"},
      {"::1", "::1"},
      {"2001:db8::1", "2001:db8::1"},
      {"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
      {"2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:db8::ff00:42:8329"},
      {"fe80::", "fe80::"},
      {"1:0:0:2:0:0:0:3", "1:0:0:2::3"},
      {"1:0:0:2:0:0:3:4", "1::2:0:0:3:4"},
      {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},
      {"64:ff9b::192.0.2.33", "64:ff9b::c000:221"},
  };
  for (const auto& c : cases) {
    auto ip = ParseIp(c.in);
    ASSERT_TRUE(ip.ok()) << c.in << ": " << ip.error();
    EXPECT_FALSE(ip->is_v4());
    EXPECT_EQ(ip->ToString(), c.canonical) << c.in;
  }
}

TEST(ParseIp, RejectsBadV6WithReason) {
  const Reject cases[] = {
      {"fe80::1%eth0", "zone ids"},
      {"::ffff:10.0.0.1", "IPv4-mapped IPv6 addresses are not allowed; write the IPv4 address 10.0.0.1"},
      {"::ffff:a00:1", "IPv4-mapped"},
      {"1::2::3", ":: appears more than once"},
      {"1:2:3:4:5:6:7", "it has 7 groups"},
      {"1:2:3:4:5:6:7:8:9", "it has 9 groups"},
      {"1:2:3:4:5:6:7::8", "too many groups"},
      {"12345::1", "more than 4 hex digits"},
      {"g::1", "is not allowed in an IPv6 address"},
      {":1:2:3:4:5:6:7", "empty group"},
      {"1:2:3:4:5:6:7:", "empty group"},
      {"[2001:db8::1]", "brackets"},
      {" ::1", "surrounding spaces"},
      {"::1.2.3", "IPv4 tail is invalid"},
  };
  ExpectRejects(ParseIp, cases);
}

TEST(ParseCidr, AcceptsAndSizes) {
  auto b = ParseCidr("10.20.0.0/24");
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(b->ToString(), "10.20.0.0/24");
  EXPECT_EQ(b->first().ToString(), "10.20.0.0");
  EXPECT_EQ(b->last().ToString(), "10.20.0.255");
  EXPECT_EQ(b->Size(), 256u);
  EXPECT_EQ(ParseCidr("0.0.0.0/0")->Size(), 1ull << 32);
  EXPECT_EQ(ParseCidr("10.0.0.1/32")->Size(), 1u);
  EXPECT_EQ(ParseCidr("2001:db8::/64")->Size(), UINT64_MAX);  // saturates
  EXPECT_EQ(ParseCidr("2001:db8::/120")->Size(), 256u);
  EXPECT_EQ(ParseCidr("2001:db8::/120")->last().ToString(), "2001:db8::ff");
  EXPECT_EQ(ParseCidr("::/0")->Size(), UINT64_MAX);
}

TEST(ParseCidr, RejectsWithReason) {
  const Reject cases[] = {
      {"10.0.0.5/24", "host bits are set; the network is 10.0.0.0/24"},
      {"2001:db8::1/64", "the network is 2001:db8::/64"},
      {"10.0.0.0/33", "/33 is larger than /32"},
      {"2001:db8::/129", "larger than /128"},
      {"10.0.0.0/", "prefix length is empty"},
      {"10.0.0.0/08", "leading zero"},
      {"10.0.0.0/a", "not a number"},
      {"10.0.0.0", "no /prefix-length"},
      {"010.0.0.0/8", "leading zero"},
      {"::ffff:10.0.0.0/104", "IPv4-mapped"},
  };
  ExpectRejects(ParseCidr, cases);
}

TEST(ParseBlock, AcceptsThreeForms) {
  auto single = ParseBlock("10.0.0.5");
  ASSERT_TRUE(single.ok());
  EXPECT_TRUE(single->is_single());
  EXPECT_EQ(single->ToString(), "10.0.0.5");
  auto range = ParseBlock("10.0.0.10-10.0.0.19");
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->Size(), 10u);
  EXPECT_EQ(range->ToString(), "10.0.0.10-10.0.0.19");
  auto spaced = ParseBlock("10.0.0.10 - 10.0.0.19");  // MetalLB accepts spaces at the dash
  ASSERT_TRUE(spaced.ok()) << spaced.error();
  EXPECT_EQ(spaced->ToString(), "10.0.0.10-10.0.0.19");
  auto v6 = ParseBlock("2001:db8::10-2001:db8::1f");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->Size(), 16u);
  auto cidr = ParseBlock("10.0.0.0/30");
  ASSERT_TRUE(cidr.ok());
  EXPECT_EQ(cidr->Size(), 4u);
}

TEST(ParseBlock, RejectsBadRanges) {
  const Reject cases[] = {
      {"10.0.0.9-10.0.0.1", "start 10.0.0.9 is after end 10.0.0.1"},
      {"10.0.0.1-2001:db8::1", "different IP families"},
      {"10.0.0.1-10.0.0.2-10.0.0.3", "more than one '-'"},
      {"10.0.0.1-", "end: it is empty"},
      {"-10.0.0.1", "start: it is empty"},
      {" 10.0.0.1-10.0.0.2", "surrounding spaces"},
      {"10.0.0.01-10.0.0.2", "leading zero"},
  };
  ExpectRejects(ParseBlock, cases);
}

TEST(Block, ContainmentAndOverlap) {
  Block a = *ParseBlock("10.0.0.0/24");
  Block b = *ParseBlock("10.0.0.200-10.0.1.10");
  Block c = *ParseBlock("10.0.0.7");
  Block d = *ParseBlock("10.0.1.0/24");
  Block v6 = *ParseBlock("::a00:7");  // same low bits as 10.0.0.7, other family
  EXPECT_TRUE(a.Overlaps(b));
  EXPECT_TRUE(b.Overlaps(a));
  EXPECT_FALSE(a.Contains(b));
  EXPECT_TRUE(a.Contains(c));
  EXPECT_TRUE(a.Contains(c.first()));
  EXPECT_FALSE(a.Overlaps(d));
  EXPECT_TRUE(b.Overlaps(d));
  EXPECT_FALSE(a.Overlaps(v6));
  EXPECT_FALSE(a.Contains(v6.first()));
  // Touching ends overlap: ranges are inclusive.
  EXPECT_TRUE(ParseBlock("10.0.0.1-10.0.0.5")->Overlaps(*ParseBlock("10.0.0.5-10.0.0.9")));
  EXPECT_FALSE(ParseBlock("10.0.0.1-10.0.0.4")->Overlaps(*ParseBlock("10.0.0.5-10.0.0.9")));
}

TEST(IpAddr, OrdersV4BeforeV6) {
  EXPECT_LT(*ParseIp("255.255.255.255"), *ParseIp("::"));
  EXPECT_LT(*ParseIp("10.0.0.1"), *ParseIp("10.0.0.2"));
  EXPECT_NE(*ParseIp("::a00:1"), *ParseIp("10.0.0.1"));
}

}  // namespace
}  // namespace ipguard

namespace ipguard {
namespace {

// Azure's reading of a CIDR: host bits cleared, everything else as strict as ParseCidr.
TEST(Address, ParseCidrCoveringClearsHostBitsOnly) {
  auto v4 = ParseCidrCovering("192.168.50.1/24");
  ASSERT_TRUE(v4.ok()) << v4.error();
  EXPECT_EQ(v4->ToString(), "192.168.50.0/24");
  auto v6 = ParseCidrCovering("fd00::1:2/64");
  ASSERT_TRUE(v6.ok()) << v6.error();
  EXPECT_EQ(v6->ToString(), "fd00::/64");
  EXPECT_EQ(ParseCidrCovering("10.0.0.0/8")->ToString(), "10.0.0.0/8");
  EXPECT_EQ(ParseCidrCovering("10.0.0.1/0")->ToString(), "0.0.0.0/0");
  EXPECT_FALSE(ParseCidrCovering("192.168.50.1/024").ok());
  EXPECT_FALSE(ParseCidrCovering("192.168.50.1/33").ok());
  EXPECT_FALSE(ParseCidrCovering("192.168.050.1/24").ok());
}

}  // namespace
}  // namespace ipguard
