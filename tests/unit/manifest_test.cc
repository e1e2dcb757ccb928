#include "core/manifest.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/yaml_reader.h"
#include "tests/files.h"

namespace ipguard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using yaml_reader::Reader;
using yaml_reader::YamlDocument;

std::vector<Document> Parse(const std::string& text, Status* status = nullptr) {
  std::vector<Document> docs;
  Status s = ParseManifests(text, "f.yaml", &docs);
  if (status) *status = s;
  return docs;
}

// The text must parse; its documents.
std::vector<Document> Ok(const std::string& text) {
  Status s;
  auto docs = Parse(text, &s);
  EXPECT_TRUE(s.ok()) << s.message() << "\n" << text;
  return docs;
}

// The text must be refused; the message.
std::string Refused(const std::string& text) {
  Status s;
  auto docs = Parse(text, &s);
  EXPECT_FALSE(s.ok()) << text;
  EXPECT_TRUE(docs.empty());
  return s.message();
}

bool Has(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

// ---------------------------------------------------------------------------
// Inputs the tests below use, replayed through both YAML readers at the end.
// ---------------------------------------------------------------------------

const char kMultiDocument[] = "---\na: 1\n---\n---\nb: [x, 2, true, null, 1.5, '3', 0x10]\n...\n";

const char kScalars[] =
    "a: [null, ~, Null, NULL, nULL, '', 1_000, +1, -0, 0o17, 0x1F, 0X1F, 1e3, .5, 1., +.5, .inf, "
    "nan, 012]\n"
    "big: 99999999999999999999\n"
    "hex_too_big: 0xFFFFFFFFFFFFFFFFFF\n"
    "inf: 1e400\n"
    "long: 12345678901234567890123456789012345678901\n"
    "bools: [true, True, TRUE, false, False, FALSE, yes, on]\n"
    "ip: 10.0.0.1\n"
    "odd: 010.1.1.1\n"
    "quoted: [\"10\", 'true', \"null\"]\n"
    "tagged: [!!str 5, !!int '010', !!int 0x1F, !!int abc, !foo 5, ! 5, !!bool true, !!str null]\n";

const char kMergeSingle[] =
    "base: &base\n"
    "  a: 1\n"
    "  b: 2\n"
    "derived:\n"
    "  <<: *base\n"
    "  b: 3\n"
    "  c: 4\n";

const char kMergeList[] =
    "first: &first {x: 1, y: 1}\n"
    "second: &second {y: 2, z: 2}\n"
    "both:\n"
    "  w: 0\n"
    "  <<: [*first, *second]\n"
    "flow: {<<: [*second, *first], z: 9}\n";

const char kMergeNested[] =
    "defaults: &defaults\n"
    "  spec: &spec {vmSwitchName: sw, ipAllocationMethod: Static}\n"
    "  meta: {team: a}\n"
    "more: &more\n"
    "  <<: *defaults\n"
    "  meta: {team: b}\n"
    "net:\n"
    "  <<: *more\n"
    "  spec:\n"
    "    <<: *spec\n"
    "    vlanId: 7\n";

const char kMergeNotAMapping[] = "a: &a [1, 2]\nb:\n  <<: *a\n";
const char kMergeListWithAScalar[] = "a: &a {x: 1}\nb:\n  <<: [*a, 5]\n";

const char kAnchors[] =
    "pool: &pool {start: 10.0.0.50, end: 10.0.0.99}\n"
    "list: &list\n"
    "  - 1\n"
    "  - 2\n"
    "copies: [*pool, *list]\n"
    "name: &name svc-1\n"
    "other: *name\n"
    "empty: &empty\n"
    "again: *empty\n";

const char kAliasAcrossDocuments[] = "a: &x 1\n---\nb: *x\n";
const char kUndefinedAlias[] = "a: 1\nb: *nowhere\n";

const char kDuplicateYaml[] =
    "apiVersion: ipguard.io/v1alpha1\n"
    "kind: LogicalNetwork\n"
    "metadata:\n"
    "  name: a\n"
    "  name: b\n"
    "spec:\n"
    "  vlanId: 1\n"
    "  ipPools:\n"
    "  - start: 10.0.0.1\n"
    "    start: 10.0.0.2\n"
    "  vlanId: 2\n"
    "kind: LogicalNetwork\n";

const char kDuplicateFlow[] = "a: {b: 1, b: 2, \"c d\": 1, 'c d': 2}\n";

const char kMergedKeysAreNotDuplicates[] =
    "base: &base {a: 1, b: 2}\n"
    "x:\n"
    "  <<: *base\n"
    "  a: 3\n"
    "y:\n"
    "  <<: [*base, *base]\n";

const char kWorkloadClusterList[] =
    "apiVersion: ipguard.io/v1alpha1\n"
    "kind: WorkloadClusterList\n"
    "items:\n"
    "- apiVersion: ipguard.io/v1alpha1\n"
    "  kind: WorkloadCluster\n"
    "  metadata: {name: one, namespace: a}\n"
    "- apiVersion: ipguard.io/v1alpha1\n"
    "  kind: WorkloadCluster\n"
    "  metadata: {name: two, namespace: a, name: three}\n"
    "  spec:\n"
    "    nodePools:\n"
    "    - {name: np, count: 1, count: 2}\n";

const char kServiceListAfterADocument[] =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: ServiceList\n"
    "metadata: {resourceVersion: \"1\"}\n"
    "items:\n"
    "- {apiVersion: v1, kind: Service, metadata: {name: s1}}\n"
    "- {apiVersion: v1, kind: Service, metadata: {name: s2}}\n"
    "- {apiVersion: v1, kind: Service, metadata: {name: s3}}\n";

const char kGenericList[] =
    "apiVersion: v1\n"
    "kind: List\n"
    "kind: List\n"
    "items:\n"
    "- {apiVersion: v1, kind: Service, metadata: {name: s1}}\n"
    "- {apiVersion: apps/v1, kind: Deployment, metadata: {name: d, name: e}}\n";

const char kDeploymentList[] =
    "apiVersion: apps/v1\n"
    "kind: DeploymentList\n"
    "items:\n"
    "- {apiVersion: apps/v1, kind: Deployment, metadata: {name: d1}}\n"
    "- {apiVersion: apps/v1, kind: Deployment, metadata: {name: d2}}\n";

const char kListWithoutAList[] =
    "apiVersion: ipguard.io/v1alpha1\nkind: LogicalNetworkList\nitems: {a: 1}\n";

const char kBlockScalars[] =
    "literal: |\n"
    "  line one\n"
    "    indented\n"
    "\n"
    "  # not a comment\n"
    "folded: >\n"
    "  folded\n"
    "  line\n"
    "\n"
    "  next\n"
    "    more indented\n"
    "  last\n"
    "strip: |-\n"
    "  no newline\n"
    "\n"
    "keep: |+\n"
    "  all newlines\n"
    "\n"
    "\n"
    "indicator: |2\n"
    "   three extra\n"
    "  two\n"
    "folded_strip: >-\n"
    "  a\n"
    "  b\n"
    "in_list:\n"
    "- |\n"
    "  entry\n"
    "- key: >\n"
    "    folded in a mapping\n"
    "    in a list\n"
    "# a comment after\n"
    "end: |\n"
    "  the text ends without a line break";

const char kBlockScalarZeroIndent[] = "a: |0\n  x\n";

const char kFlow[] =
    "x: {a: 1, b: [1, 2], c}\n"
    "y: [a, {b: c}, [d, e], \"f\", 'g', a b]\n"
    "z: []\n"
    "w: {}\n"
    "json: {\"a\": 1, \"b\": [true, null]}\n"
    "multi: [\n"
    "    \"a\", # comment\n"
    "    b\n"
    "  ]\n";

const char kFlowUnterminated[] = "a: 1\nb: [1, 2\nc: 3\n";

const char kQuoted[] =
    "single: 'it''s # not a comment'\n"
    "double: \"tab\\there \\u00e9\\x41 \\\"q\\\" \\\\ \\/ \\e \\0end\"\n"
    "folded: \"one\n"
    "  two\n"
    "\n"
    "  three\"\n"
    "single_folded: 'a\n"
    "  b'\n"
    "\"quoted key\": 1\n"
    "'a: b': 2\n";

const char kBadEscape[] = "a: \"\\q\"\n";

const char kPlain[] =
    "url: http://example.com/a?b=c#frag\n"
    "image: nginx:1.25\n"
    "hash: a#b\n"
    "spaced:    words with spaces   \n"
    "comment: value # comment\n"
    "multi: first\n"
    "  second\n"
    "\n"
    "  third\n"
    "empty:\n"
    "tilde: ~\n"
    "dash: -1\n"
    "list:\n"
    "- a\n"
    "# between\n"
    "- - nested\n"
    "  - again\n"
    "-\n"
    "  late: entry\n"
    "key with spaces: 1\n"
    "a[0]: bracket\n";

const char kGarbageMapping[] = "a: b: c\n";
const char kGarbageIndent[] = "a:\n    b: 1\n  c: 2\n";
const char kNotYamlAtAll[] =
    "\x7f"
    "ELF\x02\x01\x01\n{{{ ]]] : : :\n";

const char kCrlf[] = "a: 1\r\nb:\r\n  - x\r\n  - \"y\"\r\nc: |\r\n  text\r\n";
const char kDirective[] = "%YAML 1.2\n---\na: 1\n";
const char kComplexKey[] = "? a\n: b\n";
const char kTabs[] = "a:\tb\nc: d\t\n";

std::string Nested(int levels, const std::string& leaf) {
  std::string text;
  for (int i = 0; i < levels; ++i)
    text += std::string(2 * i, ' ') + "k" + std::to_string(i) + ":\n";
  return text + std::string(2 * levels, ' ') + leaf + "\n";
}

std::string AliasBomb() {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'k'; ++c) {
    const std::string prev(1, static_cast<char>(c - 1));
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += (i ? ", *" : "*") + prev;
    bomb += "]\n";
  }
  return bomb;
}

// ---------------------------------------------------------------------------

TEST(Manifest, MultiDocumentYamlWithEmptyDocuments) {
  auto docs = Ok(kMultiDocument);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].index, 1);
  EXPECT_EQ(docs[0].json["a"], 1);
  EXPECT_EQ(docs[1].index, 3);
  EXPECT_EQ(docs[1].json["b"].dump(), R"(["x",2,true,null,1.5,"3",16])");
  EXPECT_EQ(docs[1].item, 0);
  EXPECT_TRUE(docs[1].problems.empty());
}

TEST(Manifest, CoreSchemaScalars) {
  auto docs = Ok(kScalars);
  ASSERT_EQ(docs.size(), 1u);
  const json& j = docs[0].json;
  EXPECT_EQ(
      j["a"].dump(),
      R"([null,null,null,null,"nULL","","1_000",1,0,15,31,"0X1F",1000.0,0.5,1.0,0.5,".inf","nan",12])");
  EXPECT_TRUE(j["big"].is_number_float());
  EXPECT_EQ(j["hex_too_big"], "0xFFFFFFFFFFFFFFFFFF");
  EXPECT_EQ(j["inf"], "1e400");
  EXPECT_EQ(j["long"], "12345678901234567890123456789012345678901");
  EXPECT_EQ(j["bools"].dump(), R"([true,true,true,false,false,false,"yes","on"])");
  EXPECT_EQ(j["ip"], "10.0.0.1");
  EXPECT_EQ(j["odd"], "010.1.1.1");
  EXPECT_EQ(j["quoted"].dump(), R"(["10","true","null"])");
  EXPECT_EQ(j["tagged"].dump(), R"(["5",8,31,"abc","5","5","true","null"])");
}

TEST(Manifest, MergeKeysAsKubectlMergesThem) {
  auto single = Ok(kMergeSingle);
  ASSERT_EQ(single.size(), 1u);
  EXPECT_EQ(single[0].json["derived"].dump(), R"({"a":1,"b":3,"c":4})");  // written keys win
  EXPECT_TRUE(single[0].problems.empty());

  auto list = Ok(kMergeList);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].json["both"].dump(), R"({"w":0,"x":1,"y":1,"z":2})");  // the earlier map wins
  EXPECT_EQ(list[0].json["flow"].dump(), R"({"x":1,"y":2,"z":9})");

  auto nested = Ok(kMergeNested);
  ASSERT_EQ(nested.size(), 1u);
  EXPECT_EQ(nested[0].json["more"]["meta"].dump(), R"({"team":"b"})");
  EXPECT_EQ(
      nested[0].json["net"].dump(),
      R"({"meta":{"team":"b"},"spec":{"ipAllocationMethod":"Static","vlanId":7,"vmSwitchName":"sw"}})");
}

TEST(Manifest, MergeKeyOfNoMappingIsRefused) {
  std::string m = Refused(kMergeNotAMapping);
  EXPECT_TRUE(Has(m, "f.yaml: document 1: the value of a merge key (<<) must be a mapping")) << m;
  EXPECT_TRUE(Has(m, "line 3, column 3")) << m;
  m = Refused(kMergeListWithAScalar);
  EXPECT_TRUE(Has(m, "merge key")) << m;
  // A quoted "<<" is an ordinary key.
  auto docs = Ok("\"<<\": 5\n");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].json["<<"], 5);
}

TEST(Manifest, AnchorsAndAliases) {
  auto docs = Ok(kAnchors);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].json["copies"].dump(), R"([{"end":"10.0.0.99","start":"10.0.0.50"},[1,2]])");
  EXPECT_EQ(docs[0].json["other"], "svc-1");
  EXPECT_TRUE(docs[0].json["again"].is_null());
}

TEST(Manifest, AliasesDoNotReachOtherDocuments) {
  std::string m = Refused(kAliasAcrossDocuments);
  EXPECT_TRUE(Has(m, "f.yaml: document 2: not YAML: the referenced anchor is not defined")) << m;
  EXPECT_TRUE(Has(m, "line 3, column 4")) << m;
  m = Refused(kUndefinedAlias);
  EXPECT_TRUE(Has(m, "document 1")) << m;
}

TEST(Manifest, DuplicateKeysInYamlAreProblemsNotErrors) {
  auto docs = Ok(kDuplicateYaml);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].json["metadata"]["name"], "b");  // the last one
  EXPECT_EQ(docs[0].json["spec"]["vlanId"], 2);
  EXPECT_EQ(docs[0].json["spec"]["ipPools"][0]["start"], "10.0.0.2");
  EXPECT_EQ(docs[0].problems,
            (std::vector<std::string>{"duplicate key metadata.name",
                                      "duplicate key spec.ipPools[0].start",
                                      "duplicate key spec.vlanId", "duplicate key kind"}));
  auto flow = Ok(kDuplicateFlow);
  ASSERT_EQ(flow.size(), 1u);
  EXPECT_EQ(flow[0].json["a"].dump(), R"({"b":2,"c d":2})");
  EXPECT_EQ(flow[0].problems,
            (std::vector<std::string>{"duplicate key a.b", "duplicate key a.c d"}));
}

TEST(Manifest, KeysMergedInAreNotDuplicates) {
  auto docs = Ok(kMergedKeysAreNotDuplicates);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].json["x"].dump(), R"({"a":3,"b":2})");
  EXPECT_TRUE(docs[0].problems.empty());
  // Two merge keys in one mapping are a repeated key: the last is used.
  auto twice = Ok("a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: *a\n  <<: *b\n");
  ASSERT_EQ(twice.size(), 1u);
  EXPECT_EQ(twice[0].json["c"].dump(), R"({"y":2})");
  EXPECT_EQ(twice[0].problems, (std::vector<std::string>{"duplicate key c.<<"}));
}

TEST(Manifest, DuplicateKeysInJson) {
  auto docs = Ok(
      R"({"kind": "A", "spec": {"vlanId": 1, "pools": [{"s": 1, "s": 2}], "vlanId": 2}, "kind": "B"})");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].json["kind"], "B");
  EXPECT_EQ(docs[0].json["spec"]["vlanId"], 2);
  EXPECT_EQ(docs[0].problems,
            (std::vector<std::string>{"duplicate key spec.pools[0].s", "duplicate key spec.vlanId",
                                      "duplicate key kind"}));
  auto clean = Ok(R"({"kind": "A", "spec": {"a": {"a": 1}}})");
  ASSERT_EQ(clean.size(), 1u);
  EXPECT_TRUE(clean[0].problems.empty());
  // In a top-level array and a List, relative to the element.
  auto arr = Ok(R"([{"a": 1}, {"b": {"c": 1, "c": 2}}])");
  ASSERT_EQ(arr.size(), 2u);
  EXPECT_EQ(arr[1].item, 2);
  EXPECT_TRUE(arr[0].problems.empty());
  EXPECT_EQ(arr[1].problems, (std::vector<std::string>{"duplicate key b.c"}));
  auto list = Ok(
      R"({"apiVersion": "v1", "kind": "List", "items": [{"kind": "A"}, {"kind": "B", "kind": "C"}]})");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1].json["kind"], "C");
  EXPECT_EQ(list[1].problems, (std::vector<std::string>{"duplicate key kind"}));
}

TEST(Manifest, JsonAndLists) {
  auto docs = Ok(R"({"apiVersion":"v1","kind":"List","items":[{"kind":"A"},{"kind":"B"}]})");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[1].json["kind"], "B");
  EXPECT_EQ(docs[1].item, 2);
  auto arr = Ok(R"([{"kind":"A"},{"kind":"B"},{"kind":"C"}])");
  EXPECT_EQ(arr.size(), 3u);
  auto yaml_list = Ok("apiVersion: v1\nkind: List\nitems:\n- kind: A\n");
  EXPECT_EQ(yaml_list.size(), 1u);
  // JSON that is not JSON after all is read as YAML.
  auto flow = Ok("{a: 1, b: [x]}");
  ASSERT_EQ(flow.size(), 1u);
  EXPECT_EQ(flow[0].json.dump(), R"({"a":1,"b":["x"]})");
}

TEST(Manifest, KindListsOfJudgedKindsAreReadItemByItem) {
  auto wlc = Ok(kWorkloadClusterList);
  ASSERT_EQ(wlc.size(), 2u);
  EXPECT_EQ(wlc[0].json["metadata"]["name"], "one");
  EXPECT_EQ(wlc[0].index, 1);
  EXPECT_EQ(wlc[0].item, 1);
  EXPECT_TRUE(wlc[0].problems.empty());
  EXPECT_EQ(wlc[1].item, 2);
  EXPECT_EQ(wlc[1].json["metadata"]["name"], "three");
  EXPECT_EQ(wlc[1].problems, (std::vector<std::string>{"duplicate key metadata.name",
                                                       "duplicate key spec.nodePools[0].count"}));

  auto svc = Ok(kServiceListAfterADocument);
  ASSERT_EQ(svc.size(), 4u);
  EXPECT_EQ(svc[0].item, 0);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(svc[i].index, 2);
    EXPECT_EQ(svc[i].item, i);
    EXPECT_EQ(svc[i].json["metadata"]["name"], "s" + std::to_string(i));
  }

  // A List's own repeated keys go to its first item.
  auto list = Ok(kGenericList);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].problems, (std::vector<std::string>{"duplicate key kind"}));
  EXPECT_EQ(list[1].problems, (std::vector<std::string>{"duplicate key metadata.name"}));
  EXPECT_EQ(list[1].json["kind"], "Deployment");
}

TEST(Manifest, ListsOfOtherKindsStayWhole) {
  auto docs = Ok(kDeploymentList);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].json["kind"], "DeploymentList");
  EXPECT_EQ(docs[0].item, 0);
  // A list of a judged kind without a list of items is refused.
  std::string m = Refused(kListWithoutAList);
  EXPECT_TRUE(Has(m, "f.yaml: document 1: items of a LogicalNetworkList must be a list")) << m;
  EXPECT_TRUE(Has(Refused("kind: List\nitems: 5\n"), "items of a List must be a list"));
}

TEST(Manifest, BlockScalars) {
  auto docs = Ok(kBlockScalars);
  ASSERT_EQ(docs.size(), 1u);
  const json& j = docs[0].json;
  EXPECT_EQ(j["literal"], "line one\n  indented\n\n# not a comment\n");
  EXPECT_EQ(j["folded"], "folded line\nnext\n  more indented\nlast\n");
  EXPECT_EQ(j["strip"], "no newline");
  EXPECT_EQ(j["keep"], "all newlines\n\n\n");
  EXPECT_EQ(j["indicator"], " three extra\ntwo\n");
  EXPECT_EQ(j["folded_strip"], "a b");
  EXPECT_EQ(j["in_list"].dump(), R"(["entry\n",{"key":"folded in a mapping in a list\n"}])");
  EXPECT_EQ(j["end"], "the text ends without a line break");
  std::string m = Refused(kBlockScalarZeroIndent);
  EXPECT_TRUE(Has(m, "f.yaml: document 1: not YAML")) << m;
  EXPECT_TRUE(Has(m, "line 1")) << m;
}

TEST(Manifest, FlowCollections) {
  auto docs = Ok(kFlow);
  ASSERT_EQ(docs.size(), 1u);
  const json& j = docs[0].json;
  EXPECT_EQ(j["x"].dump(), R"({"a":1,"b":[1,2],"c":null})");
  EXPECT_EQ(j["y"].dump(), R"(["a",{"b":"c"},["d","e"],"f","g","a b"])");
  EXPECT_EQ(j["z"].dump(), "[]");
  EXPECT_EQ(j["w"].dump(), "{}");
  EXPECT_EQ(j["json"].dump(), R"({"a":1,"b":[true,null]})");
  EXPECT_EQ(j["multi"].dump(), R"(["a","b"])");
  std::string m = Refused(kFlowUnterminated);
  EXPECT_TRUE(Has(m, "f.yaml: document 1: not YAML")) << m;
  EXPECT_TRUE(Has(m, "at line ")) << m;
}

TEST(Manifest, QuotedScalarsAndEscapes) {
  auto docs = Ok(kQuoted);
  ASSERT_EQ(docs.size(), 1u);
  const json& j = docs[0].json;
  EXPECT_EQ(j["single"], "it's # not a comment");
  EXPECT_EQ(j["double"], std::string("tab\there \xc3\xa9"
                                     "A \"q\" \\ / \x1b ") +
                             '\0' + "end");
  EXPECT_EQ(j["folded"], "one two\nthree");
  EXPECT_EQ(j["single_folded"], "a b");
  EXPECT_EQ(j["quoted key"], 1);
  EXPECT_EQ(j["a: b"], 2);
  std::string m = Refused(kBadEscape);
  EXPECT_TRUE(Has(m, "f.yaml: document 1: not YAML")) << m;
  EXPECT_TRUE(Has(m, "line 1, column")) << m;
}

TEST(Manifest, PlainScalarsAndBlockCollections) {
  auto docs = Ok(kPlain);
  ASSERT_EQ(docs.size(), 1u);
  const json& j = docs[0].json;
  EXPECT_EQ(j["url"], "http://example.com/a?b=c#frag");
  EXPECT_EQ(j["image"], "nginx:1.25");
  EXPECT_EQ(j["hash"], "a#b");
  EXPECT_EQ(j["spaced"], "words with spaces");
  EXPECT_EQ(j["comment"], "value");
  EXPECT_EQ(j["multi"], "first second\nthird");
  EXPECT_TRUE(j["empty"].is_null());
  EXPECT_TRUE(j["tilde"].is_null());
  EXPECT_EQ(j["dash"], -1);
  EXPECT_EQ(j["list"].dump(), R"(["a",["nested","again"],{"late":"entry"}])");
  EXPECT_EQ(j["key with spaces"], 1);
  EXPECT_EQ(j["a[0]"], "bracket");
}

TEST(Manifest, QuotedScalarsStayStrings) {
  auto docs = Ok("a: \"10\"\nb: 'true'\nc: 010.1.1.1\nd: 10.0.0.1\ne: !!str 5\n");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_TRUE(docs[0].json["a"].is_string());
  EXPECT_TRUE(docs[0].json["b"].is_string());
  EXPECT_EQ(docs[0].json["c"], "010.1.1.1");
  EXPECT_EQ(docs[0].json["d"], "10.0.0.1");
  EXPECT_EQ(docs[0].json["e"], "5");
}

TEST(Manifest, LineBreaksDirectivesComplexKeysAndTabs) {
  auto crlf = Ok(kCrlf);
  ASSERT_EQ(crlf.size(), 1u);
  EXPECT_EQ(crlf[0].json.dump(), R"({"a":1,"b":["x","y"],"c":"text\n"})");
  auto directive = Ok(kDirective);
  ASSERT_EQ(directive.size(), 1u);
  EXPECT_EQ(directive[0].json["a"], 1);
  auto complex = Ok(kComplexKey);
  ASSERT_EQ(complex.size(), 1u);
  EXPECT_EQ(complex[0].json["a"], "b");
  auto tabs = Ok(kTabs);
  ASSERT_EQ(tabs.size(), 1u);
  EXPECT_EQ(tabs[0].json.dump(), R"({"a":"b","c":"d"})");
}

TEST(Manifest, ErrorsNameTheDocument) {
  Status s;
  auto docs = Parse("a: 1\n---\nb: [1, 2\n", &s);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(docs.empty());
  EXPECT_NE(s.message().find("f.yaml: document 2: not YAML"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("at line "), std::string::npos) << s.message();
}

TEST(Manifest, GarbageIsRefusedWithLineAndColumn) {
  std::string m = Refused(kGarbageMapping);
  EXPECT_TRUE(Has(m, "f.yaml: document 1: not YAML: illegal map value at line 1, column 5")) << m;
  m = Refused(std::string("a: 1\n---\n") + kGarbageIndent);
  EXPECT_TRUE(Has(m, "f.yaml: document 2: not YAML")) << m;
  EXPECT_TRUE(Has(m, "at line 5, column 3")) << m;
  m = Refused(kNotYamlAtAll);
  EXPECT_TRUE(Has(m, "not YAML")) << m;
  EXPECT_TRUE(Has(m, "at line ")) << m;
  // Nothing of a refused text is appended.
  std::vector<Document> docs = Ok("a: 1\n");
  EXPECT_FALSE(ParseManifests("b: 2\n---\nc: d: e\n", "g.yaml", &docs).ok());
  EXPECT_EQ(docs.size(), 1u);
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
  Parse(AliasBomb(), &s);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("too large"), std::string::npos) << s.message();
}

TEST(Manifest, SixtyFourLevelsAreReadAndSixtyFiveRefused) {
  auto docs = Ok(Nested(63, "leaf: 1"));  // 64 mappings
  ASSERT_EQ(docs.size(), 1u);
  std::string m = Refused(Nested(64, "leaf: 1"));
  EXPECT_TRUE(Has(m, "f.yaml: document 1: nesting is too deep")) << m;
  EXPECT_TRUE(Has(m, "line 65")) << m;
  Ok(std::string(64, '[') + std::string(64, ']'));
  EXPECT_TRUE(Has(Refused(std::string(65, '[') + std::string(65, ']')), "nesting is too deep"));
  Ok(Nested(62, "leaf: [1]"));
  EXPECT_TRUE(Has(Refused(Nested(63, "leaf: [1]")), "nesting is too deep"));
  // An alias is as deep as what it copies.
  std::string deep = "a: &a " + std::string(10, '[') + std::string(10, ']') + "\n";
  Ok(Nested(53, "leaf: *a").insert(0, deep));
  EXPECT_TRUE(Has(Refused(Nested(54, "leaf: *a").insert(0, deep)), "nesting is too deep"));
}

// yaml-cpp 0.7 allocates without bound on these (found by fuzz_manifest).
TEST(Manifest, RefusesRootsThatStartWithAComma) {
  for (const char* text :
       {", x}\n", "# c\n, }\n", "!t ,\n", "&a !t ,\n", "--- ,\n", "a: 1\n---\n, }\n",
        "a: 1\n...\n,\n", "%YAML 1.2\n---\n,\n", "&a\n,\n"}) {
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
  Parse(
      "{\"apiVersion\":\"\xe3\xe3\xe3rst\",lancer\",\"\"},\"spec\":{\"type\":\"Lo\"10.0.\xff"
      "0.1\"}}]}",
      &s);
  EXPECT_FALSE(s.ok());
  // It starts as JSON: the JSON parser's reason is the one given.
  EXPECT_NE(s.message().find("not JSON: parse error"), std::string::npos) << s.message();
}

TEST(Manifest, NonMapKeysAreRefused) {
  Status s;
  Parse("? [a, b]\n: c\n", &s);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Has(Refused("null: 1\n"), "a map key is not a plain value"));
}

// ---------------------------------------------------------------------------
// The two YAML readers give one answer on every input above and every
// manifest file of the repository.
// ---------------------------------------------------------------------------

std::string Render(const Status& s, const std::vector<YamlDocument>& docs) {
  if (!s.ok()) return "error";
  std::string out;
  for (const YamlDocument& d : docs) {
    out += "#" + std::to_string(d.index) + " " +
           d.json.dump(-1, ' ', false, json::error_handler_t::replace);
    for (const std::string& k : d.duplicate_keys) out += " [duplicate " + k + "]";
    out += "\n";
  }
  return out;
}

// Both readers; true when the fast one read the text itself.
bool ExpectSameAnswer(const std::string& text, const std::string& name) {
  std::vector<YamlDocument> fast, yamlcpp, automatic;
  yaml_reader::ReadInfo info;
  Status f = yaml_reader::ReadYaml(text, "t", Reader::kFast, &fast, &info);
  Status y = yaml_reader::ReadYaml(text, "t", Reader::kYamlCpp, &yamlcpp);
  Status a = yaml_reader::ReadYaml(text, "t", Reader::kAuto, &automatic);
  EXPECT_EQ(Render(a, automatic), Render(y, yamlcpp)) << name << "\n" << text;
  if (info.handed_over) return false;
  EXPECT_EQ(Render(f, fast), Render(y, yamlcpp)) << name << "\n" << text;
  if (!f.ok()) {
    EXPECT_EQ(f.message(), y.message()) << name;  // the errors both readers word
  }
  return true;
}

TEST(Manifest, BothYamlReadersGiveOneAnswerOnTheTestInputs) {
  const std::vector<std::string> inputs = {
      kMultiDocument,
      kScalars,
      kMergeSingle,
      kMergeList,
      kMergeNested,
      kMergeNotAMapping,
      kMergeListWithAScalar,
      kAnchors,
      kAliasAcrossDocuments,
      kUndefinedAlias,
      kDuplicateYaml,
      kDuplicateFlow,
      kMergedKeysAreNotDuplicates,
      kWorkloadClusterList,
      kServiceListAfterADocument,
      kGenericList,
      kDeploymentList,
      kListWithoutAList,
      kBlockScalars,
      kBlockScalarZeroIndent,
      kFlow,
      kFlowUnterminated,
      kQuoted,
      kBadEscape,
      kPlain,
      kGarbageMapping,
      kGarbageIndent,
      kNotYamlAtAll,
      kCrlf,
      kDirective,
      kComplexKey,
      kTabs,
      Nested(63, "leaf: 1"),
      Nested(64, "leaf: 1"),
      Nested(62, "leaf: [1]"),
      Nested(63, "leaf: [1]"),
      AliasBomb(),
      "a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: *a\n  <<: *b\n",
      "\"<<\": 5\n",
      "null: 1\n",
      "a: 1\n...\nb: 2\n",
      "...\n...\na: 1\n",
      "- a\nb: c\n",
      "a: |\n  x\n b: 1\n",
      "a: \"x\ny\"\n",
      "a:\n  - b\n  -\n  - c\n",
      "a: 'x' # c\nb: \"y\"   # c\nc: [1]  # c\n",
  };
  // The fast reader must read these itself (the rest it may hand over).
  const std::vector<std::string> fast_reads = {kMultiDocument,
                                               kMergeSingle,
                                               kMergeList,
                                               kMergeNested,
                                               kAnchors,
                                               kDuplicateYaml,
                                               kDuplicateFlow,
                                               kWorkloadClusterList,
                                               kServiceListAfterADocument,
                                               kBlockScalars,
                                               kFlow,
                                               kQuoted,
                                               kPlain,
                                               kCrlf,
                                               AliasBomb()};
  for (const std::string& text : inputs) {
    ExpectSameAnswer(text, "input");
    std::string crlf;
    for (char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    ExpectSameAnswer(crlf, "input with CRLF");
  }
  for (const std::string& text : fast_reads) EXPECT_TRUE(ExpectSameAnswer(text, "fast")) << text;
}

// What a sink holds after ReadYaml: the documents handed over and not
// taken back, and how often it was asked to take them back.
struct SinkRecord {
  Status status;
  std::vector<YamlDocument> live;
  int adds = 0;
  int take_backs = 0;
};

SinkRecord ReadIntoSink(const std::string& text, Reader reader) {
  SinkRecord r;
  yaml_reader::YamlSink sink{[&](YamlDocument&& d) {
                               ++r.adds;
                               r.live.push_back(std::move(d));
                             },
                             [&] {
                               ++r.take_backs;
                               r.live.clear();
                             }};
  r.status = yaml_reader::ReadYaml(text, "t", reader, sink);
  return r;
}

// Documents are handed over one at a time as they are read; what an error
// or a fresh start with yaml-cpp undoes is taken back, so that the sink ends
// with what the whole text holds, or with nothing.
TEST(Manifest, TheSinkEndsWithTheDocumentsOfTheTextOrNothing) {
  const std::vector<std::string> inputs = {
      kMultiDocument, kScalars, kDuplicateYaml, kWorkloadClusterList, kComplexKey, kTabs, kCrlf,
      kDirective, kGarbageIndent, kFlowUnterminated, kNotYamlAtAll,
      // read fast, then a document for yaml-cpp, then a tab that sends the whole text to it
      "a: 1\n---\n? x\n: y\n...\n\t# c\nc: 3\n",
      // good documents, then one that is not YAML
      "a: 1\n---\nb: 2\n---\nc: [unclosed\n",
  };
  for (const std::string& text : inputs) {
    SinkRecord fast = ReadIntoSink(text, Reader::kAuto);
    SinkRecord whole = ReadIntoSink(text, Reader::kYamlCpp);
    EXPECT_EQ(Render(fast.status, fast.live), Render(whole.status, whole.live)) << text;
    if (!fast.status.ok()) EXPECT_TRUE(fast.live.empty()) << text;
  }
  // Two documents read before the error were handed over and taken back.
  SinkRecord broken = ReadIntoSink("a: 1\n---\nb: 2\n---\nc: [unclosed\n", Reader::kAuto);
  EXPECT_FALSE(broken.status.ok());
  EXPECT_GE(broken.adds, 2);
  EXPECT_GE(broken.take_backs, 1);
  // A fresh start with yaml-cpp hands every document over again, once.
  SinkRecord restarted = ReadIntoSink("a: 1\n---\n? x\n: y\n...\n\t# c\nc: 3\n", Reader::kAuto);
  ASSERT_TRUE(restarted.status.ok()) << restarted.status.message();
  EXPECT_EQ(restarted.take_backs, 1);
  EXPECT_GT(restarted.adds, 3);
  ASSERT_EQ(restarted.live.size(), 3u);
  EXPECT_EQ(restarted.live[2].json["c"], 3);
}

// ParseManifests hands over the items of a List one by one, and keeps or
// takes back what it handed over with its text.
TEST(Manifest, ParseManifestsKeepsOrTakesBackWithTheText) {
  std::vector<Document> live;
  int keeps = 0;
  DocumentSink sink{[&](Document&& d) { live.push_back(std::move(d)); }, [&] { live.clear(); },
                    [&] { ++keeps; }};
  ASSERT_TRUE(ParseManifests(kWorkloadClusterList, "l.yaml", sink).ok());
  EXPECT_EQ(keeps, 1);
  const size_t items = live.size();
  EXPECT_GE(items, 2u);
  for (size_t i = 0; i < items; ++i) EXPECT_EQ(live[i].item, static_cast<int>(i) + 1);
  live.clear();
  Status s = ParseManifests(std::string(kWorkloadClusterList) + "---\nc: [unclosed\n", "l.yaml", sink);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(live.empty()) << "the List read before the error is taken back";
  EXPECT_EQ(keeps, 1);
}

TEST(Manifest, BothYamlReadersGiveOneAnswerOnEveryManifestFile) {
  const fs::path root(IPGUARD_SOURCE_DIR);
  int files = 0;
  for (const char* dir : {"examples", "tests/fixtures", "crds", "charts/ipguard/crds",
                          "tests/fuzz/corpus/manifest"}) {
    for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
      const std::string ext = e.path().extension().string();
      if (!e.is_regular_file() || (ext != ".yaml" && ext != ".yml" && ext != ".json")) continue;
      ++files;
      const bool fast = ExpectSameAnswer(testing_util::ReadFile(e.path()), e.path().string());
      // Manifests as people write them never leave the fast reader.
      if (std::string(dir) != "tests/fuzz/corpus/manifest") {
        EXPECT_TRUE(fast) << e.path();
      }
    }
  }
  EXPECT_GT(files, 30);
}

}  // namespace
}  // namespace ipguard
