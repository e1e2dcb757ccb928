#include "core/manifest.h"

#include <gtest/gtest.h>

namespace ipguard {
namespace {

std::vector<Document> Parse(const std::string& text, Status* status = nullptr) {
  std::vector<Document> docs;
  Status s = ParseManifests(text, "f.yaml", &docs);
  if (status) *status = s;
  return docs;
}

TEST(Manifest, MultiDocumentYamlWithEmptyDocuments) {
  auto docs = Parse("---\na: 1\n---\n---\nb: [x, 2, true, null, 1.5, '3', 0x10]\n...\n");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].index, 1);
  EXPECT_EQ(docs[0].json["a"], 1);
  EXPECT_EQ(docs[1].index, 3);
  EXPECT_EQ(docs[1].json["b"].dump(), R"(["x",2,true,null,1.5,"3",16])");
}

TEST(Manifest, QuotedScalarsStayStrings) {
  auto docs = Parse("a: \"10\"\nb: 'true'\nc: 010.1.1.1\nd: 10.0.0.1\ne: !!str 5\n");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_TRUE(docs[0].json["a"].is_string());
  EXPECT_TRUE(docs[0].json["b"].is_string());
  EXPECT_EQ(docs[0].json["c"], "010.1.1.1");
  EXPECT_EQ(docs[0].json["d"], "10.0.0.1");
  EXPECT_EQ(docs[0].json["e"], "5");
}

TEST(Manifest, JsonAndLists) {
  auto docs = Parse(R"({"apiVersion":"v1","kind":"List","items":[{"kind":"A"},{"kind":"B"}]})");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[1].json["kind"], "B");
  auto arr = Parse(R"([{"kind":"A"},{"kind":"B"},{"kind":"C"}])");
  EXPECT_EQ(arr.size(), 3u);
  auto yaml_list = Parse("apiVersion: v1\nkind: List\nitems:\n- kind: A\n");
  EXPECT_EQ(yaml_list.size(), 1u);
}

TEST(Manifest, ErrorsNameTheDocument) {
  Status s;
  auto docs = Parse("a: 1\n---\nb: [1, 2\n", &s);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(docs.empty());
  EXPECT_NE(s.message().find("f.yaml: document 2: not YAML"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("at line "), std::string::npos) << s.message();
}

TEST(Manifest, RefusesDeepNestingAndAliasBombs) {
  Status s;
  Parse(std::string(100000, '[') + std::string(100000, ']'), &s);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("nesting is too deep"), std::string::npos);
  std::string dashes;
  for (int i = 0; i < 5000; ++i) dashes += "- ";
  Parse(dashes + "x\n", &s);
  EXPECT_FALSE(s.ok());
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'k'; ++c) {
    std::string prev(1, static_cast<char>(c - 1));
    bomb += std::string(1, c) + ": &" + c + " [*" + prev + ", *" + prev + ", *" + prev + ", *" +
            prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" +
            prev + "]\n";
  }
  Parse(bomb, &s);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("too large"), std::string::npos) << s.message();
}

// yaml-cpp 0.7 allocates without bound on these (found by fuzz_manifest).
TEST(Manifest, RefusesRootsThatStartWithAComma) {
  for (const char* text : {", x}\n", "# c\n, }\n", "!t ,\n", "&a !t ,\n", "--- ,\n",
                           "a: 1\n---\n, }\n", "a: 1\n...\n,\n", "%YAML 1.2\n---\n,\n",
                           "&a\n,\n"}) {
    Status s;
    Parse(text, &s);
    EXPECT_FALSE(s.ok()) << text;
    EXPECT_NE(s.message().find("cannot start with ','"), std::string::npos) << s.message();
  }
  Status ok;
  Parse("a: [b, c]\nd: x, y\n", &ok);
  EXPECT_TRUE(ok.ok()) << ok.message();
}

// yaml-cpp 0.7 loops allocating on this one too (found by fuzz_manifest);
// the allocation budget stops it.
TEST(Manifest, StopsAParserThatLoopsAllocating) {
  Status s;
  Parse("{\"apiVersion\":\"\xe3\xe3\xe3rst\",lancer\",\"\"},\"spec\":{\"type\":\"Lo\"10.0.\xff" "0.1\"}}]}", &s);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("the parser gave up"), std::string::npos) << s.message();
}

TEST(Manifest, NonMapKeysAreRefused) {
  Status s;
  Parse("? [a, b]\n: c\n", &s);
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace ipguard
