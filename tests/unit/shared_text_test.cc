#include "core/shared_text.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace ipguard {
namespace {

// Equal texts share one copy; each SharedText reads, copies, moves, compares
// and converts as the std::string it holds, the empty one included.
TEST(SharedText, EqualTextsShareOneCopyAndReadAsTheirText) {
  const std::vector<std::string> texts = {"",
                                          "v1",
                                          "Service",
                                          "team-a",
                                          "ipguard.io/v1alpha1",
                                          std::string(300, 'n'),
                                          std::string("a\0b", 3)};
  for (const std::string& t : texts) {
    SharedText a(t);
    SharedText b{std::string_view(t)};
    EXPECT_EQ(a.str(), t);
    EXPECT_EQ(a.size(), t.size());
    EXPECT_EQ(a.empty(), t.empty());
    EXPECT_EQ(a, b);
    EXPECT_EQ(a, t);
    EXPECT_EQ(t, a);
    EXPECT_EQ(&a.str(), &b.str()) << "one copy of " << t;
    SharedText copy = a;
    EXPECT_EQ(copy, t);
    SharedText moved = std::move(copy);
    EXPECT_EQ(moved, t);
    EXPECT_TRUE(copy.empty());  // NOLINT: a moved-from SharedText is empty
    for (const std::string& other : texts) {
      SharedText o(other);
      EXPECT_EQ(o == a, other == t);
      EXPECT_EQ(o < a, other < t);
      o = a;
      EXPECT_EQ(o, t);
      const SharedText& itself = o;
      o = itself;
      EXPECT_EQ(o, t);
    }
    EXPECT_EQ("x=" + a, "x=" + t);
    EXPECT_EQ(a + "/y", t + "/y");
    EXPECT_EQ(nlohmann::json(a), nlohmann::json(t));
  }
  EXPECT_EQ(sizeof(SharedText), sizeof(void*));
}

// Past kMaxSharedTexts distinct texts, a new text is a copy of its own (so
// ever new values cannot grow the texts kept for good), and reads the same.
// In a child process: the texts it fills the process with stay there.
TEST(SharedText, PastTheLimitEachTextIsACopyOfItsOwn) {
  auto past_the_limit = [] {
    SharedText kept("Service");
    for (size_t i = 0; SharedText::SharedCount() < kMaxSharedTexts; ++i) {
      SharedText filler("shared-text-test-" + std::to_string(i));
    }
    SharedText a("past-the-limit"), b("past-the-limit");
    SharedText copy = a;
    bool ok = SharedText::SharedCount() == kMaxSharedTexts && a == b && &a.str() != &b.str() &&
              copy == "past-the-limit" && &copy.str() != &a.str();
    a = b;
    ok = ok && a == "past-the-limit" && kept == SharedText("Service") &&
         &kept.str() == &SharedText("Service").str();
    std::exit(ok ? 0 : 1);
  };
  EXPECT_EXIT(past_the_limit(), testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace ipguard
