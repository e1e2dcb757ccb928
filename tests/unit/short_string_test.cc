#include "core/short_string.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace ipguard {
namespace {

// Text up to 39 bytes sits in place, longer text on the heap; both read back
// exactly, through copies, moves and assignments (including from its own
// text), and compare as the text they hold.
TEST(ShortString, HoldsShortAndLongTextThroughCopiesAndMoves) {
  const std::vector<std::string> texts = {"",
                                          "u",
                                          "2026-01-01T00:00:00Z",
                                          "00000005-1d2c-4b5a-9e8f-000000009aab",
                                          std::string(39, 'a'),
                                          std::string(40, 'b'),
                                          std::string(1000, 'c'),
                                          std::string("a\0b", 3)};
  for (const std::string& t : texts) {
    ShortString s(t);
    EXPECT_EQ(s.view(), t);
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
      a = std::string_view(a);  // its own text
      EXPECT_EQ(a, other);
      a = a.view().substr(a.size() / 2);  // part of its own text
      EXPECT_EQ(a, other.substr(other.size() / 2));
      EXPECT_EQ(ShortString(other) < s, other < t);
    }
    EXPECT_EQ("x=" + s, "x=" + t);
  }
  EXPECT_NE(ShortString("abc"), "abd");
  EXPECT_NE(ShortString(std::string(50, 'a')), std::string(51, 'a'));
  EXPECT_EQ(sizeof(ShortString), 40u);
}

}  // namespace
}  // namespace ipguard
