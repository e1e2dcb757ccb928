#include "core/short_string.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace ipguard {
namespace {

// Text up to 22 bytes sits in place, a uid in the canonical form as its 16
// bytes, other text on the heap; each reads back exactly, through copies,
// moves and assignments (including from its own text), and compares as the
// text it holds. Text that is nearly a canonical uid (upper case, a dash
// moved, a character short or past) reads back as given.
TEST(ShortString, HoldsShortAndLongTextThroughCopiesAndMoves) {
  const std::vector<std::string> texts = {"",
                                          "u",
                                          "2026-01-01T00:00:00Z",
                                          "00000005-1d2c-4b5a-9e8f-000000009aab",
                                          "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
                                          "F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6",
                                          "f81d4fae7-dec-11d0-a765-00a0c91e6bf6",
                                          "f81d4fae-7dec-11d0-a765-00a0c91e6bf",
                                          "f81d4fae-7dec-11d0-a765-00a0c91e6bf6a",
                                          "f81d4fae-7dec-11d0-a765-00a0c91e6bg6",
                                          "f81d4fae-7dec-11d0-a765+00a0c91e6bf6",
                                          std::string(22, 'a'),
                                          std::string(23, 'b'),
                                          std::string(36, '-'),
                                          std::string(1000, 'c'),
                                          std::string("a\0b", 3)};
  for (const std::string& t : texts) {
    ShortString s(t);
    ShortString::Buffer buf;
    EXPECT_EQ(s.View(&buf), t);
    EXPECT_EQ(s.size(), t.size());
    EXPECT_EQ(s.empty(), t.empty());
    EXPECT_EQ(s, t);
    EXPECT_EQ(s.str(), t);
    ShortString copy = s;
    EXPECT_EQ(copy, s);
    ShortString moved = std::move(copy);
    EXPECT_EQ(moved, t);
    EXPECT_TRUE(copy.empty());  // NOLINT: a moved-from ShortString is empty
    for (const std::string& other : texts) {
      ShortString a(other);
      a = s;
      EXPECT_EQ(a, t);
      a = ShortString(other);
      EXPECT_EQ(a, other);
      ShortString::Buffer own;
      a = a.View(&own);  // its own text
      EXPECT_EQ(a, other);
      a = a.View(&own).substr(a.size() / 2);  // part of its own text
      EXPECT_EQ(a, other.substr(other.size() / 2));
      EXPECT_EQ(ShortString(other) < s, other < t);
    }
    EXPECT_EQ("x=" + s, "x=" + t);
    std::string appended = "y=";
    s.AppendTo(&appended);
    EXPECT_EQ(appended, "y=" + t);
  }
  EXPECT_NE(ShortString("abc"), "abd");
  EXPECT_NE(ShortString(std::string(50, 'a')), std::string(51, 'a'));
  EXPECT_EQ(sizeof(ShortString), 24u);
}

}  // namespace
}  // namespace ipguard
