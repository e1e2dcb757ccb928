#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "core/address.h"
#include "kube/client.h"
#include "kube/events.h"
#include "kube/list_stream.h"
#include "kube/metrics.h"
#include "kube/reflector.h"
#include "tests/unit/fake_transport.h"

namespace ipguard::kube {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

const Resource kLnet{"ipguard.io", "v1alpha1", "logicalnetworks", false};
const Resource kServices{"", "v1", "services", true};

std::string Obj(const std::string& name, const std::string& rv, const std::string& ns = "") {
  json m = {{"name", name}, {"resourceVersion", rv}};
  if (!ns.empty()) m["namespace"] = ns;
  return json{{"apiVersion", "ipguard.io/v1alpha1"}, {"kind", "LogicalNetwork"}, {"metadata", m}}
      .dump();
}

std::string Event(const std::string& type, const std::string& obj) {
  return "{\"type\":\"" + type + "\",\"object\":" + obj + "}";
}

TEST(Resource, Paths) {
  EXPECT_EQ(kLnet.Path(), "/apis/ipguard.io/v1alpha1/logicalnetworks");
  EXPECT_EQ(kLnet.Path("", "a", "status"), "/apis/ipguard.io/v1alpha1/logicalnetworks/a/status");
  EXPECT_EQ(kServices.Path("shop", "web"), "/api/v1/namespaces/shop/services/web");
  EXPECT_EQ(kServices.Path(), "/api/v1/services");
}

TEST(Client, ListFetchesEveryPage) {
  FakeTransport t;
  t.Script(
      {"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=2", 200,
       R"({"kind":"LogicalNetworkList","metadata":{"resourceVersion":"10","continue":"tok en"},"items":[)" +
           Obj("a", "5") + "," + Obj("b", "6") + "]}"});
  t.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=2&continue=tok%20en", 200,
            R"({"kind":"LogicalNetworkList","metadata":{"resourceVersion":"10"},"items":[)" +
                Obj("c", "7") + "]}"});
  Client c(&t);
  ListOptions o;
  o.limit = 2;
  auto list = c.List(kLnet, "", o);
  ASSERT_TRUE(list.ok()) << list.error().ToString();
  EXPECT_EQ(list.value()["items"].size(), 3u);
  EXPECT_EQ(list.value()["metadata"]["resourceVersion"], "10");
  EXPECT_FALSE(list.value()["metadata"].contains("continue"));
}

TEST(Client, ErrorsCarryTheApiStatus) {
  FakeTransport t;
  t.Script(
      {"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks/x", 404,
       R"({"kind":"Status","status":"Failure","reason":"NotFound","message":"logicalnetworks \"x\" not found","code":404})"});
  t.Script(
      {"PUT", "/apis/ipguard.io/v1alpha1/logicalnetworks/a/status", 409,
       R"({"kind":"Status","reason":"Conflict","message":"the object has been modified","code":409})"});
  t.Script({"GET", "/api/v1/services", 429, "slow down", {}, false, false, {{"retry-after", "3"}}});
  t.Script({"DELETE", "/api/v1/namespaces/d/services/s", 0, "", {}, false, true});
  Client c(&t);
  auto got = c.Get(kLnet, "", "x");
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.error().IsNotFound());
  EXPECT_EQ(got.error().message, "logicalnetworks \"x\" not found");
  auto st = c.UpdateStatus(kLnet, json::parse(Obj("a", "3")));
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().IsConflict());
  auto list = c.List(kServices, "");
  ASSERT_FALSE(list.ok());
  EXPECT_TRUE(list.error().IsTooManyRequests());
  EXPECT_EQ(list.error().retry_after_seconds, 3);
  EXPECT_EQ(list.error().message, "slow down");
  auto del = c.Delete(kServices, "d", "s");
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.error().code, 0);
  EXPECT_EQ(del.error().ToString(), "no answer from the API server: connection reset");
}

TEST(Client, PatchContentTypes) {
  FakeTransport t;
  for (int i = 0; i < 2; ++i)
    t.Script({"PATCH", "/apis/ipguard.io/v1alpha1/logicalnetworks/a", 200, Obj("a", "4")});
  Client c(&t);
  ASSERT_TRUE(c.Patch(kLnet, "", "a", json{{"metadata", {{"labels", {{"x", "y"}}}}}},
                      Client::PatchType::kMerge)
                  .ok());
  ASSERT_TRUE(c.Patch(kLnet, "", "a", json::array(), Client::PatchType::kJson).ok());
  auto reqs = t.requests();
  EXPECT_EQ(reqs[0].content_type, "application/merge-patch+json");
  EXPECT_EQ(reqs[1].content_type, "application/json-patch+json");
}


// The list read as it arrives: cut anywhere, items with every kind of tricky
// text come out whole, one at a time.
TEST(ListSplitter, ItemsComeOutWholeWhereverTheChunksAreCut) {
  const std::string a = R"({"metadata":{"name":"a","annotations":{"x":"}]\"{[,:"}},"spec":{"k":[1,{"z":null}]}})";
  const std::string b = R"({"metadata":{"name":"b\\"},"spec":{"s":"caf\u00e9 \\\\"}})";
  const std::string text = " {\"kind\":\"XList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"42\","
                           "\"continue\":\"c\\\"t\"},\"items\":[ " + a + " ,\n" + b + "],\"extra\":{\"items\":[1]}}\n";
  auto run = [&](const std::vector<size_t>& cuts) {
    std::vector<std::string> items;
    ListSplitter sp([&](std::string_view item) {
      items.emplace_back(item);
      return true;
    });
    size_t from = 0;
    for (size_t cut : cuts) {
      EXPECT_TRUE(sp.Feed(std::string_view(text).substr(from, cut - from))) << sp.error();
      from = cut;
    }
    EXPECT_TRUE(sp.Feed(std::string_view(text).substr(from))) << sp.error();
    EXPECT_TRUE(sp.Finish()) << sp.error();
    EXPECT_EQ(items, (std::vector<std::string>{a, b}));
    EXPECT_EQ(json::parse(sp.metadata())["continue"], "c\"t");
  };
  run({});
  for (size_t i = 1; i < text.size(); ++i) run({i});
  std::vector<size_t> every;
  for (size_t i = 1; i < text.size(); ++i) every.push_back(i);
  run(every);
}

TEST(ListSplitter, WhatIsNotAListIsAnError) {
  for (const std::string& bad :
       {std::string("[]"), std::string("\"x\""), std::string("{\"items\":[1]}"),
        std::string("{\"items\":[{}]"), std::string("{\"items\":[]}}"), std::string("{\"kind\":\"X\"}"),
        std::string("{\"items\":[]} {}"), std::string(""), std::string(600, '[')}) {
    ListSplitter sp([](std::string_view) { return true; });
    bool ok = sp.Feed(bad) && sp.Finish();
    EXPECT_FALSE(ok) << bad;
    EXPECT_FALSE(sp.error().empty()) << bad;
  }
  ListSplitter empty([](std::string_view) { return true; });
  EXPECT_TRUE(empty.Feed(R"({"items":[],"metadata":{}})") && empty.Finish()) << empty.error();
}

class ReflectorTest : public testing::Test {
 protected:
  void Start() {
    ReflectorOptions o;
    o.min_watch = milliseconds(0);
    reflector_ = std::make_unique<Reflector>(&client_, kLnet, "", &store_, &clock_, o);
    thread_ = std::thread([this] { reflector_->Run(); });
  }
  void TearDown() override {
    if (reflector_) reflector_->Stop();
    if (thread_.joinable()) thread_.join();
  }
  // Advances the fake clock in steps until cond() holds (or gives up).
  bool Eventually(const std::function<bool()>& cond) {
    for (int i = 0; i < 2000; ++i) {
      if (cond()) return true;
      clock_.Advance(milliseconds(100));
      std::this_thread::sleep_for(milliseconds(1));
    }
    return cond();
  }
  std::string ListBody(const std::string& rv, std::vector<std::string> items) {
    std::string out =
        R"({"kind":"LogicalNetworkList","metadata":{"resourceVersion":")" + rv + R"("},"items":[)";
    for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
    return out + "]}";
  }
  FakeTransport transport_;
  Client client_{&transport_};
  Store store_;
  FakeClock clock_;
  std::unique_ptr<Reflector> reflector_;
  std::thread thread_;
};

TEST_F(ReflectorTest, ListsThenAppliesWatchEventsAndResumesFromTheLastVersion) {
  transport_.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=", 200,
                     ListBody("100", {Obj("a", "90"), Obj("b", "95")})});
  transport_.Script({"GET",
                     "/apis/ipguard.io/v1alpha1/logicalnetworks?watch=true",
                     200,
                     "",
                     {Event("ADDED", Obj("c", "101")), Event("MODIFIED", Obj("a", "102")),
                      Event("DELETED", Obj("b", "103")), Event("BOOKMARK", Obj("", "110"))}});
  Start();
  ASSERT_TRUE(Eventually(
      [&] { return store_.HasSynced() && transport_.CountRequests("resourceVersion=110") > 0; }));
  EXPECT_EQ(store_.size(), 2u);
  EXPECT_EQ((*store_.Get("a"))["metadata"]["resourceVersion"], "102");
  EXPECT_FALSE(store_.Get("b").has_value());
  auto reqs = transport_.requests();
  EXPECT_NE(reqs[1].path.find("allowWatchBookmarks=true"), std::string::npos);
  EXPECT_NE(reqs[1].path.find("resourceVersion=100"), std::string::npos);
  EXPECT_NE(reqs[1].path.find("timeoutSeconds="), std::string::npos);
  EXPECT_EQ(transport_.CountRequests("?limit="), 1u) << "an ended watch resumes without a relist";
  EXPECT_GE(reflector_->restarts(), 1);
}


// The first list is served from the API server's watch cache
// (resourceVersion=0), as client-go's informers ask; when the server pages
// it anyway, the pages follow; a list after a 410 is a consistent read.
TEST_F(ReflectorTest, FirstListFromTheWatchCacheRelistsConsistent) {
  transport_.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=500&resourceVersion=0", 200,
                     R"({"kind":"LogicalNetworkList","metadata":{"resourceVersion":"100","continue":"p2"},"items":[)" +
                         Obj("a", "90") + "]}"});
  transport_.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=500&continue=p2", 200,
                     ListBody("100", {Obj("b", "95")})});
  transport_.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?watch=true", 410, "gone"});
  transport_.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=500", 200,
                     ListBody("200", {Obj("a", "150")})});
  Start();
  ASSERT_TRUE(Eventually([&] { return reflector_->relists() == 1 && store_.size() == 1; }));
  auto reqs = transport_.requests();
  ASSERT_GE(reqs.size(), 4u);
  EXPECT_EQ(reqs[0].path, "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=500&resourceVersion=0");
  EXPECT_EQ(reqs[1].path, "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=500&continue=p2");
  EXPECT_EQ(reqs[3].path, "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=500")
      << "after a 410 the list is consistent, not from the cache";
}

// A list whose body is cut or is not a list changes nothing and is tried again.
TEST_F(ReflectorTest, ABrokenListChangesNothing) {
  transport_.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=", 200,
                     R"({"kind":"LogicalNetworkList","metadata":{"resourceVersion":"9"},"items":[)" + Obj("a", "5")});
  transport_.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=", 200,
                     R"({"kind":"LogicalNetworkList","items":[{"metadata":]})"});
  transport_.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=", 200, ListBody("9", {Obj("b", "6")})});
  Start();
  ASSERT_TRUE(Eventually([&] { return store_.HasSynced(); }));
  EXPECT_EQ(store_.Keys(), std::vector<std::string>{"b"}) << "nothing of the broken lists";
  EXPECT_EQ(transport_.CountRequests("?limit="), 3u);
}

TEST_F(ReflectorTest, GoneRelistsAndDropsWhatVanished) {
  transport_.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=", 200,
                     ListBody("100", {Obj("a", "90"), Obj("b", "95")})});
  transport_.Script(
      {"GET",
       "/apis/ipguard.io/v1alpha1/logicalnetworks?watch=true",
       200,
       "",
       {R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})"}});
  transport_.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=", 200,
                     ListBody("200", {Obj("a", "150")})});
  transport_.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?watch=true", 410, "gone"});
  transport_.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=", 200,
                     ListBody("300", {Obj("a", "150"), Obj("d", "290")})});
  std::vector<std::string> deleted;
  store_.AddHandler([&](EventType t, const json& o) {
    if (t == EventType::kDeleted) deleted.push_back(o["metadata"]["name"]);
  });
  Start();
  ASSERT_TRUE(Eventually([&] { return reflector_->relists() == 2 && store_.size() == 2; }));
  EXPECT_EQ(deleted, std::vector<std::string>{"b"});
  EXPECT_TRUE(store_.Get("d").has_value());
  EXPECT_EQ(reflector_->resource_version(), "300");
}

TEST_F(ReflectorTest, BacksOffOnErrorsAndHonoursRetryAfter) {
  transport_.Script({"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=", 500, "boom"});
  transport_.Script({"GET",
                     "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=",
                     429,
                     "",
                     {},
                     false,
                     false,
                     {{"retry-after", "20"}}});
  transport_.Script(
      {"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=", 200, ListBody("5", {})});
  Start();
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(transport_.CountRequests("?limit="), 1u)
      << "no retry before the clock moves: no busy loop";
  clock_.Advance(milliseconds(300));  // past the first backoff
  for (int i = 0; i < 200 && transport_.CountRequests("?limit=") < 2; ++i)
    std::this_thread::sleep_for(milliseconds(2));
  EXPECT_EQ(transport_.CountRequests("?limit="), 2u);
  clock_.Advance(std::chrono::seconds(5));
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(transport_.CountRequests("?limit="), 2u) << "Retry-After: 20 must be waited out";
  clock_.Advance(std::chrono::seconds(16));
  ASSERT_TRUE(Eventually([&] { return store_.HasSynced(); }));
}

TEST_F(ReflectorTest, BrokenStreamResumesAndStopIsPrompt) {
  transport_.Script(
      {"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?limit=", 200, ListBody("10", {})});
  transport_.Script({"GET",
                     "/apis/ipguard.io/v1alpha1/logicalnetworks?watch=true",
                     200,
                     "",
                     {Event("ADDED", Obj("a", "11")), "{not json"}});
  transport_.Script(
      {"GET", "/apis/ipguard.io/v1alpha1/logicalnetworks?watch=true", 0, "", {}, false, true});
  Start();
  ASSERT_TRUE(Eventually([&] { return transport_.CountRequests("watch=true") >= 3; }));
  EXPECT_TRUE(store_.Get("a").has_value());
  EXPECT_GE(transport_.CountRequests("resourceVersion=11"), 2u);
  EXPECT_EQ(transport_.CountRequests("?limit="), 1u);
  auto t0 = std::chrono::steady_clock::now();
  reflector_->Stop();
  thread_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

}  // namespace
}  // namespace ipguard::kube

namespace ipguard::kube {
namespace {

// A cache that keeps less than the object (the manager keeps only a
// Service's resourceVersion) must still hand a relist's deletions to the
// handlers as objects they can read: named, and through the transform.
TEST(StoreKeep, RelistDeletionsGoThroughTheTransform) {
  Store store;
  store.SetTransform([](const json& o) {
    json out = o;
    out["kind"] = "Service";
    return out;
  });
  store.SetKeep([](const json& o) { return json(o["metadata"].value("resourceVersion", "")); });
  std::vector<std::pair<EventType, json>> seen;
  store.AddHandler([&](EventType t, const json& o) { seen.emplace_back(t, o); });
  auto svc = [](const std::string& name, const std::string& rv) {
    return json{{"metadata", {{"name", name}, {"namespace", "apps"}, {"resourceVersion", rv}}}};
  };
  store.Replace({svc("a", "1"), svc("b", "2")});
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(store.Get("apps/a"), json("1")) << "only the resourceVersion is kept";
  seen.clear();
  store.Replace({svc("a", "1")});
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].first, EventType::kDeleted);
  EXPECT_EQ(seen[0].second["kind"], "Service");
  EXPECT_EQ(seen[0].second["metadata"]["name"], "b");
  EXPECT_EQ(seen[0].second["metadata"]["namespace"], "apps");
  EXPECT_EQ(store.Keys(), std::vector<std::string>{"apps/a"});
}

// Each list decides alone what is gone: what it did not show (whether an
// earlier list or a watch event brought it) is deleted when it ends, what
// it showed unchanged emits nothing and stays, through list after list.
TEST(StoreRelist, WhatTheLatestListDidNotShowIsGone) {
  Store store;
  std::vector<std::pair<EventType, std::string>> seen;
  store.AddHandler([&](EventType t, const json& o) { seen.emplace_back(t, KeyOf(o)); });
  auto obj = [](const std::string& name, const std::string& rv) {
    return json{{"metadata", {{"name", name}, {"resourceVersion", rv}}}};
  };
  using Events = std::vector<std::pair<EventType, std::string>>;
  store.Replace({obj("a", "1"), obj("b", "2"), obj("c", "3")});
  EXPECT_EQ(seen.size(), 3u);
  seen.clear();
  store.Apply(EventType::kAdded, obj("w", "4"));
  EXPECT_EQ(seen, (Events{{EventType::kAdded, "w"}}));
  seen.clear();
  store.Replace({obj("a", "1"), obj("b", "5")});
  EXPECT_EQ(seen, (Events{{EventType::kModified, "b"},
                          {EventType::kDeleted, "c"},
                          {EventType::kDeleted, "w"}}));
  EXPECT_EQ(store.Keys(), (std::vector<std::string>{"a", "b"}));
  seen.clear();
  // A watch event in the middle of a list, for an object the list then
  // leaves out, is gone with it.
  store.BeginReplace();
  store.ReplaceAdd(obj("b", "5"));
  store.Apply(EventType::kModified, obj("a", "6"));
  store.EndReplace();
  EXPECT_EQ(seen, (Events{{EventType::kModified, "a"}, {EventType::kDeleted, "a"}}));
  EXPECT_EQ(store.Keys(), std::vector<std::string>{"b"});
  seen.clear();
  store.Replace({obj("b", "5"), obj("a", "7")});
  EXPECT_EQ(seen, (Events{{EventType::kAdded, "a"}}));
  EXPECT_EQ(store.Keys(), (std::vector<std::string>{"a", "b"}));
}

TEST(EventRecorder, WritesEventsV1AboutTheObject) {
  FakeTransport t;
  t.Script({"POST", "/apis/events.k8s.io/v1/namespaces/team-a/events", 201, "{}"});
  t.Script({"POST", "/apis/events.k8s.io/v1/namespaces/default/events", 201, "{}"});
  Client c(&t);
  FakeClock clock;
  EventRecorder r(&c, &clock, "ipguard.io/manager", "pod-1");
  json wlc = {{"apiVersion", "ipguard.io/v1alpha1"},
              {"kind", "WorkloadCluster"},
              {"metadata", {{"name", "prod"}, {"namespace", "team-a"}, {"uid", "u-1"}}}};
  ASSERT_TRUE(r.Emit(wlc, "Warning", "IPConflict", std::string(2000, 'x')).ok());
  json lnet = {{"apiVersion", "ipguard.io/v1alpha1"},
               {"kind", "LogicalNetwork"},
               {"metadata", {{"name", "lnet"}}}};
  ASSERT_TRUE(r.Emit(lnet, "Normal", "ConflictResolved", "no longer collides").ok());
  auto reqs = t.requests();
  ASSERT_EQ(reqs.size(), 2u);
  json e = json::parse(reqs[0].body);
  EXPECT_EQ(e["apiVersion"], "events.k8s.io/v1");
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["reason"], "IPConflict");
  EXPECT_EQ(e["note"].get<std::string>().size(), 1024u);
  EXPECT_EQ(e["regarding"]["uid"], "u-1");
  EXPECT_EQ(e["regarding"]["namespace"], "team-a");
  EXPECT_EQ(e["eventTime"], "2026-01-01T00:00:00.000000Z");
  EXPECT_EQ(e["reportingController"], "ipguard.io/manager");
  json e2 = json::parse(reqs[1].body);
  EXPECT_EQ(e2["metadata"]["namespace"], "default");
  EXPECT_FALSE(e2["regarding"].contains("namespace"));
  EXPECT_NE(e["metadata"]["name"], e2["metadata"]["name"]);
}

// The API server refuses an event whose name is not a lowercase RFC 1123
// subdomain (422), whatever the reporting instance is called.
bool IsDnsSubdomain(const std::string& s) {
  static const std::regex re("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  return s.size() <= 253 && std::regex_match(s, re);
}

TEST(EventRecorder, NamesAreDnsSubdomainsWhateverTheInstance) {
  FakeTransport t;
  for (int i = 0; i < 3; ++i) t.Script({"POST", "/apis/events.k8s.io/v1/namespaces/default/events", 201, "{}"});
  Client c(&t);
  FakeClock clock;
  // The manager's identity is "<host>_<hex>": '_' is not allowed in a name.
  EventRecorder r(&c, &clock, "ipguard.io/manager", "ipguard-7d9f_0a1b2c3d");
  for (const std::string& name : {std::string("lnet-prod"), std::string(253, 'a'),
                                  std::string(236, 'a') + "-b.c"}) {
    json o = {{"apiVersion", "ipguard.io/v1alpha1"},
              {"kind", "LogicalNetwork"},
              {"metadata", {{"name", name}}}};
    ASSERT_TRUE(r.Emit(o, "Warning", "IPConflict", "x").ok());
  }
  auto reqs = t.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (const auto& req : reqs) {
    std::string name = json::parse(req.body)["metadata"]["name"];
    EXPECT_TRUE(IsDnsSubdomain(name)) << name;
  }
  EXPECT_EQ(json::parse(reqs[0].body)["metadata"]["name"].get<std::string>().rfind("lnet-prod.", 0), 0u);
  EXPECT_EQ(json::parse(reqs[0].body)["reportingInstance"], "ipguard-7d9f_0a1b2c3d");
}

TEST(EventRecorder, CountsWrittenAndFailedEvents) {
  FakeTransport t;
  t.Script({"POST", "/apis/events.k8s.io/v1/namespaces/default/events", 201, "{}"});
  t.Script({"POST", "/apis/events.k8s.io/v1/namespaces/default/events", 422,
            R"({"kind":"Status","code":422,"reason":"Invalid","message":"bad name"})"});
  Client c(&t);
  std::vector<WriteFailure> failures;
  c.SetWriteFailureObserver([&](const WriteFailure& f) { failures.push_back(f); });
  FakeClock clock;
  Metrics m;
  DescribeEventMetrics(&m);
  EventRecorder r(&c, &clock, "ipguard.io/manager", "pod-1", &m);
  json o = {{"apiVersion", "ipguard.io/v1alpha1"}, {"kind", "IPReservation"}, {"metadata", {{"name", "r"}}}};
  EXPECT_TRUE(r.Emit(o, "Warning", "IPConflict", "x").ok());
  auto failed = r.Emit(o, "Normal", "ConflictResolved", "y");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().reason, "Invalid");
  EXPECT_EQ(m.Value("ipguard_events_total", {{"type", "Warning"}, {"reason", "IPConflict"}, {"result", "written"}}), 1);
  EXPECT_EQ(m.Value("ipguard_events_total", {{"type", "Normal"}, {"reason", "ConflictResolved"}, {"result", "failed"}}), 1);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].verb, "POST");
  EXPECT_EQ(failures[0].resource, "events");
  EXPECT_EQ(failures[0].error.code, 422);
  EXPECT_EQ(failures[0].error.message, "bad name");
}

TEST(EventRecorder, NotesAreCutOnACharacterBoundary) {
  std::string s = std::string(1020, 'x') + "\u00e9\u00e9\u00e9";  // 2-byte characters at 1020..1025
  std::string cut = CutUtf8(s, 1024);
  EXPECT_LE(cut.size(), 1024u);
  EXPECT_EQ(cut.substr(cut.size() - 3), "...");
  EXPECT_NO_THROW(json(cut).dump()) << "a cut inside a UTF-8 sequence would not serialize";
  EXPECT_EQ(CutUtf8("short", 1024), "short");
}

TEST(Client, ReportsEveryFailedWriteButNoRead) {
  FakeTransport t;
  t.Script({"GET", "/api/v1/namespaces/a/services/b", 404, R"({"kind":"Status","code":404,"reason":"NotFound"})"});
  t.Script({"PUT", "/apis/ipguard.io/v1alpha1/workloadclusters/x/status", 409,
            R"({"kind":"Status","code":409,"reason":"Conflict","message":"stale"})"});
  t.Script({"DELETE", "/apis/coordination.k8s.io/v1/namespaces/n/leases/l", 403,
            R"({"kind":"Status","code":403,"reason":"Forbidden","message":"no"})"});
  Client c(&t);
  std::vector<WriteFailure> failures;
  c.SetWriteFailureObserver([&](const WriteFailure& f) { failures.push_back(f); });
  Resource svc{"", "v1", "services", true};
  Resource wlc{"ipguard.io", "v1alpha1", "workloadclusters", false};
  Resource lease{"coordination.k8s.io", "v1", "leases", true};
  EXPECT_FALSE(c.Get(svc, "a", "b").ok());
  EXPECT_FALSE(c.UpdateStatus(wlc, json{{"metadata", {{"name", "x"}}}}).ok());
  EXPECT_FALSE(c.Delete(lease, "n", "l").ok());
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(failures[0].resource, "workloadclusters/status");
  EXPECT_EQ(failures[0].error.code, 409);
  EXPECT_EQ(failures[1].resource, "leases");
  EXPECT_EQ(failures[1].verb, "DELETE");
  EXPECT_EQ(ResourceOfPath("/api/v1/namespaces/x"), "namespaces");
  EXPECT_EQ(ResourceOfPath("/api/v1/namespaces/x/events"), "events");
}

}  // namespace
}  // namespace ipguard::kube
