// The fake API server, exercised through the product's real HTTP transport,
// client and reflector, so that each keeps the other honest: a fake that
// drifted from the wire format, or a client that only works against the
// scripted unit-test transport, fails here.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/json_util.h"
#include "fakeapi/fake_apiserver.h"
#include "tests/component/eventually.h"
#include "kube/client.h"
#include "kube/clock.h"
#include "kube/config.h"
#include "kube/http_transport.h"
#include "kube/kept_transport.h"
#include "kube/reflector.h"
#include "kube/store.h"
#include "webhook/certs.h"

namespace ipguard::fakeapi {
namespace {

using kube::ApiResult;
using kube::Client;
using kube::HttpRequest;
using kube::HttpResponse;
using kube::Resource;
using kube::RestConfig;
using kube::Transport;
using nlohmann::json;
using std::chrono::milliseconds;

const Resource kNetworks{"ipguard.io", "v1alpha1", "logicalnetworks", false};
const Resource kServices{"", "v1", "services", true};

using testing_util::Eventually;

json Network(const std::string& name, json labels = json::object()) {
  return {{"apiVersion", "ipguard.io/v1alpha1"},
          {"kind", "LogicalNetwork"},
          {"metadata", {{"name", name}, {"labels", labels}}},
          {"spec", {{"vmSwitchName", "sw"}, {"ipAllocationMethod", "DHCP"}}}};
}

json Service(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", {{"type", "LoadBalancer"}}}};
}

std::string Rv(const json& obj) { return JsonString(obj, "metadata", "resourceVersion"); }

// What one watch request saw.
struct WatchOutcome {
  Result<HttpResponse> response = Status::Error("not run");
  std::vector<json> events;
};

// Watches `path` until `count` events have arrived or the stream ends.
WatchOutcome Watch(Transport* transport, const std::string& path,
                   size_t count = std::numeric_limits<size_t>::max()) {
  WatchOutcome out;
  HttpRequest req;
  req.path = path;
  req.timeout = milliseconds(5000);
  out.response = transport->Stream(req, [&](std::string_view line) {
    out.events.push_back(json::parse(line.begin(), line.end(), nullptr, false));
    return out.events.size() < count;
  });
  return out;
}

// A thread that sets `flag` after `delay` (join it).
std::thread CancelAfter(std::atomic<bool>* flag, milliseconds delay) {
  return std::thread([flag, delay] {
    std::this_thread::sleep_for(delay);
    *flag = true;
  });
}

std::string WatchPath(const Resource& r, const std::string& query, const std::string& ns = "") {
  return r.Path(ns) + "?watch=true&" + query;
}

class FakeApiTest : public testing::Test {
 protected:
  void StartServer(FakeApiOptions options = {}) {
    server_ = std::make_unique<FakeApiServer>(std::move(options));
    server_->AddStandardResources();
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.message();
  }

  // A transport and client for `config` (its server defaults to the fake's).
  void Connect(RestConfig config = {}) {
    if (config.server.empty()) config.server = server_->url();
    auto t = kube::NewHttpTransport(config, kube::RealClock::Get());
    ASSERT_TRUE(t.ok()) << t.error();
    client_.reset();
    transport_ = std::move(t).value();
    client_ = std::make_unique<Client>(transport_.get());
  }

  void SetUp() override {
    StartServer();
    Connect();
  }

  json MustCreate(const Resource& r, const std::string& ns, const json& obj) {
    auto created = client_->Create(r, ns, obj);
    EXPECT_TRUE(created.ok()) << created.error().ToString();
    return created.ok() ? created.value() : json();
  }

  HttpResponse Raw(const std::string& method, const std::string& path, const std::string& body = "",
                   const std::string& content_type = "application/json") {
    HttpRequest req;
    req.method = method;
    req.path = path;
    req.body = body;
    req.content_type = content_type;
    auto resp = transport_->Do(req);
    EXPECT_TRUE(resp.ok()) << resp.error();
    return resp.ok() ? *resp : HttpResponse{};
  }

  // Declared in this order so the client and transport go before the server.
  std::unique_ptr<FakeApiServer> server_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Client> client_;
};

TEST_F(FakeApiTest, CreateSetsServerFieldsAndGetReturnsTheObject) {
  int64_t before = server_->resource_version();
  json created = MustCreate(kNetworks, "", Network("net-a"));
  EXPECT_EQ(created["kind"], "LogicalNetwork");
  EXPECT_EQ(created["apiVersion"], "ipguard.io/v1alpha1");
  EXPECT_EQ(Rv(created), std::to_string(before + 1));
  EXPECT_EQ(created["metadata"]["generation"], 1);
  EXPECT_FALSE(created["metadata"].value("uid", "").empty());
  EXPECT_FALSE(created["metadata"].contains("namespace"));  // cluster-scoped
  std::string ts = created["metadata"].value("creationTimestamp", "");
  ASSERT_EQ(ts.size(), 20u) << ts;  // 2026-11-27T08:00:00Z
  EXPECT_EQ(ts[10], 'T');
  EXPECT_EQ(ts.back(), 'Z');

  auto got = client_->Get(kNetworks, "", "net-a");
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got.value(), created);

  auto again = client_->Create(kNetworks, "", Network("net-a"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, 409);
  EXPECT_EQ(again.error().reason, "AlreadyExists");
  EXPECT_EQ(again.error().message, "logicalnetworks.ipguard.io \"net-a\" already exists");

  json generated = Network("");
  generated["metadata"].erase("name");
  generated["metadata"]["generateName"] = "net-";
  json made = MustCreate(kNetworks, "", generated);
  std::string name = made["metadata"].value("name", "");
  EXPECT_EQ(name.size(), 9u) << name;
  EXPECT_EQ(name.rfind("net-", 0), 0u) << name;
}

TEST_F(FakeApiTest, ListPagesThroughEveryObjectInNameOrder) {
  for (const char* name : {"net-4", "net-2", "net-0", "net-3", "net-1"}) {
    MustCreate(kNetworks, "", Network(name));
  }
  HttpResponse page = Raw("GET", kNetworks.Path() + "?limit=2");
  ASSERT_EQ(page.status, 200) << page.body;
  json first = json::parse(page.body);
  EXPECT_EQ(first["kind"], "LogicalNetworkList");
  EXPECT_EQ(first["apiVersion"], "ipguard.io/v1alpha1");
  EXPECT_EQ(first["items"].size(), 2u);
  EXPECT_FALSE(first["metadata"].value("continue", "").empty());
  EXPECT_EQ(first["metadata"]["resourceVersion"], std::to_string(server_->resource_version()));

  size_t pages_before = server_->CountRequests("GET", "/logicalnetworks");
  kube::ListOptions options;
  options.limit = 2;
  auto list = client_->List(kNetworks, "", options);
  ASSERT_TRUE(list.ok()) << list.error().ToString();
  std::vector<std::string> names;
  for (const json& item : list.value()["items"]) {
    names.push_back(item["metadata"]["name"]);
    EXPECT_EQ(item["kind"], "LogicalNetwork");  // non-core items keep kind and apiVersion
  }
  EXPECT_EQ(names, (std::vector<std::string>{"net-0", "net-1", "net-2", "net-3", "net-4"}));
  EXPECT_EQ(server_->CountRequests("GET", "/logicalnetworks") - pages_before, 3u);

  options.label_selector = "team=blue";
  server_->Upsert("logicalnetworks", Network("net-blue", {{"team", "blue"}}));
  auto blue = client_->List(kNetworks, "", options);
  ASSERT_TRUE(blue.ok()) << blue.error().ToString();
  ASSERT_EQ(blue.value()["items"].size(), 1u);
  EXPECT_EQ(blue.value()["items"][0]["metadata"]["name"], "net-blue");
}

TEST_F(FakeApiTest, CoreGroupListItemsOmitKindAndNamespacesScopeTheList) {
  MustCreate(kServices, "team-a", Service("team-a", "web"));
  MustCreate(kServices, "team-b", Service("team-b", "web"));
  auto all = client_->List(kServices, "");
  ASSERT_TRUE(all.ok()) << all.error().ToString();
  EXPECT_EQ(all.value()["kind"], "ServiceList");
  EXPECT_EQ(all.value()["apiVersion"], "v1");
  ASSERT_EQ(all.value()["items"].size(), 2u);
  for (const json& item : all.value()["items"]) {
    EXPECT_FALSE(item.contains("kind")) << item;
    EXPECT_FALSE(item.contains("apiVersion")) << item;
  }
  auto team_a = client_->List(kServices, "team-a");
  ASSERT_TRUE(team_a.ok());
  ASSERT_EQ(team_a.value()["items"].size(), 1u);
  EXPECT_EQ(team_a.value()["items"][0]["metadata"]["namespace"], "team-a");

  auto one = client_->Get(kServices, "team-b", "web");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one.value()["kind"], "Service");  // a single object always carries its kind
}

TEST_F(FakeApiTest, UpdateWithStaleResourceVersionConflicts) {
  json created = MustCreate(kNetworks, "", Network("net-a"));
  json changed = created;
  changed["spec"]["vmSwitchName"] = "sw2";
  auto updated = client_->Update(kNetworks, changed);
  ASSERT_TRUE(updated.ok()) << updated.error().ToString();
  EXPECT_NE(Rv(updated.value()), Rv(created));
  EXPECT_EQ(updated.value()["metadata"]["generation"], 2);
  EXPECT_EQ(updated.value()["metadata"]["uid"], created["metadata"]["uid"]);

  json stale = created;
  stale["spec"]["vmSwitchName"] = "sw3";
  auto conflict = client_->Update(kNetworks, stale);
  ASSERT_FALSE(conflict.ok());
  EXPECT_TRUE(conflict.error().IsConflict());
  EXPECT_EQ(conflict.error().reason, "Conflict");
  EXPECT_EQ(conflict.error().message,
            "Operation cannot be fulfilled on logicalnetworks.ipguard.io \"net-a\": the object "
            "has been modified; please apply your changes to the latest version and try again");

  auto missing = client_->Update(kNetworks, Network("nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.error().IsNotFound());
  EXPECT_EQ(missing.error().message, "logicalnetworks.ipguard.io \"nope\" not found");

  // A write that changes nothing keeps the version, as on a real server.
  auto noop = client_->Update(kNetworks, updated.value());
  ASSERT_TRUE(noop.ok());
  EXPECT_EQ(Rv(noop.value()), Rv(updated.value()));
}

TEST_F(FakeApiTest, StatusSubresourceWritesOnlyStatus) {
  json with_status = Network("net-s");
  with_status["status"] = {{"ready", true}};
  json created = MustCreate(kNetworks, "", with_status);
  EXPECT_FALSE(created.contains("status"));  // dropped on create

  json write = created;
  write["status"] = {{"observedGeneration", 1}};
  write["spec"]["vmSwitchName"] = "ignored";
  auto status = client_->UpdateStatus(kNetworks, write);
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(status.value()["status"]["observedGeneration"], 1);
  EXPECT_EQ(status.value()["spec"]["vmSwitchName"], "sw");
  EXPECT_EQ(status.value()["metadata"]["generation"], 1);
  EXPECT_NE(Rv(status.value()), Rv(created));

  auto stale = client_->UpdateStatus(kNetworks, write);  // still carries created's version
  ASSERT_FALSE(stale.ok());
  EXPECT_TRUE(stale.error().IsConflict());

  // The main resource ignores status: the stored one stays.
  json main = status.value();
  main["status"] = {{"observedGeneration", 99}};
  main["metadata"]["labels"] = {{"x", "y"}};
  auto updated = client_->Update(kNetworks, main);
  ASSERT_TRUE(updated.ok()) << updated.error().ToString();
  EXPECT_EQ(updated.value()["status"]["observedGeneration"], 1);
  EXPECT_EQ(updated.value()["metadata"]["generation"], 1);  // only metadata changed
}

TEST_F(FakeApiTest, MergeAndJsonPatch) {
  MustCreate(kNetworks, "", Network("net-p"));
  auto merged =
      client_->Patch(kNetworks, "", "net-p", {{"metadata", {{"labels", {{"tier", "gold"}}}}}},
                     Client::PatchType::kMerge);
  ASSERT_TRUE(merged.ok()) << merged.error().ToString();
  EXPECT_EQ(merged.value()["metadata"]["labels"]["tier"], "gold");
  EXPECT_EQ(merged.value()["metadata"]["generation"], 1);

  json ops = json::array({{{"op", "test"}, {"path", "/spec/vmSwitchName"}, {"value", "sw"}},
                          {{"op", "replace"}, {"path", "/spec/vmSwitchName"}, {"value", "sw9"}},
                          {{"op", "add"}, {"path", "/spec/vlanId"}, {"value", 7}},
                          {{"op", "remove"}, {"path", "/metadata/labels/tier"}}});
  auto patched = client_->Patch(kNetworks, "", "net-p", ops, Client::PatchType::kJson);
  ASSERT_TRUE(patched.ok()) << patched.error().ToString();
  EXPECT_EQ(patched.value()["spec"]["vmSwitchName"], "sw9");
  EXPECT_EQ(patched.value()["spec"]["vlanId"], 7);
  EXPECT_FALSE(patched.value()["metadata"]["labels"].contains("tier"));
  EXPECT_EQ(patched.value()["metadata"]["generation"], 2);

  json failing = json::array({{{"op", "test"}, {"path", "/spec/vmSwitchName"}, {"value", "sw"}}});
  auto failed = client_->Patch(kNetworks, "", "net-p", failing, Client::PatchType::kJson);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, 422);

  auto status = client_->Patch(kNetworks, "", "net-p", {{"status", {{"ready", true}}}},
                               Client::PatchType::kStrategicMerge, "status");
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(status.value()["status"]["ready"], true);
  EXPECT_EQ(status.value()["metadata"]["generation"], 2);

  HttpResponse unsupported =
      Raw("PATCH", kNetworks.Path("", "net-p"), "{}", "application/apply-patch+yaml");
  EXPECT_EQ(unsupported.status, 415);
}

TEST_F(FakeApiTest, DeleteThenNotFound) {
  MustCreate(kServices, "team-a", Service("team-a", "web"));
  auto deleted = client_->Delete(kServices, "team-a", "web");
  ASSERT_TRUE(deleted.ok()) << deleted.error().ToString();
  EXPECT_EQ(deleted.value()["metadata"]["name"], "web");
  auto got = client_->Get(kServices, "team-a", "web");
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.error().IsNotFound());
  EXPECT_EQ(got.error().reason, "NotFound");
  EXPECT_EQ(got.error().message, "services \"web\" not found");
  auto again = client_->Delete(kServices, "team-a", "web");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, 404);
}

TEST_F(FakeApiTest, MalformedRequestsGetStatusErrors) {
  HttpResponse bad = Raw("POST", kNetworks.Path(), "{not json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(kube::ErrorFromResponse(bad).reason, "BadRequest");
  HttpResponse unknown = Raw("GET", "/apis/nope.example.com/v1/things");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(kube::ErrorFromResponse(unknown).reason, "NotFound");
  HttpResponse dry = Raw("POST", kNetworks.Path() + "?dryRun=All", Network("dry").dump());
  EXPECT_EQ(dry.status, 201);
  EXPECT_FALSE(server_->Get("logicalnetworks", "", "dry").has_value());

  // Bytes that are not HTTP get a 400 and the server keeps serving.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const char garbage[] = "\x16\x03\x01\x00\xff GARBAGE\r\n\r\n";
  ASSERT_GT(::send(fd, garbage, sizeof(garbage) - 1, 0), 0);
  char buf[64] = {};
  ssize_t n = ::recv(fd, buf, sizeof(buf) - 1, 0);
  ::close(fd);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0).substr(0, 12), "HTTP/1.1 400");
  EXPECT_TRUE(client_->List(kNetworks, "").ok());
}

TEST_F(FakeApiTest, WatchReplaysFromResourceVersionThenStreamsLiveChanges) {
  json a = MustCreate(kNetworks, "", Network("net-a"));
  MustCreate(kNetworks, "", Network("net-b"));
  ASSERT_TRUE(
      client_->Patch(kNetworks, "", "net-a", {{"spec", {{"vlanId", 5}}}}, Client::PatchType::kMerge)
          .ok());
  ASSERT_TRUE(client_->Delete(kNetworks, "", "net-b").ok());

  auto watch = std::async(std::launch::async, [&] {
    return Watch(transport_.get(), WatchPath(kNetworks, "resourceVersion=" + Rv(a)), 4);
  });
  ASSERT_TRUE(Eventually([&] { return server_->open_watches() == 1; }));
  MustCreate(kNetworks, "", Network("net-c"));  // live, after the replay
  WatchOutcome out = watch.get();
  ASSERT_TRUE(out.response.ok()) << out.response.error();
  EXPECT_EQ(out.response->status, 200);
  auto content_type = out.response->headers.find("content-type");
  ASSERT_NE(content_type, out.response->headers.end());
  EXPECT_EQ(content_type->second, "application/json");
  ASSERT_EQ(out.events.size(), 4u);
  std::vector<std::string> seen;
  for (const json& e : out.events) {
    seen.push_back(e["type"].get<std::string>() + " " +
                   e["object"]["metadata"]["name"].get<std::string>());
    EXPECT_EQ(e["object"]["kind"], "LogicalNetwork");
    EXPECT_EQ(e["object"]["apiVersion"], "ipguard.io/v1alpha1");
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED net-b", "MODIFIED net-a", "DELETED net-b",
                                            "ADDED net-c"}));
  // DELETED carries the last object with a version of its own.
  EXPECT_GT(std::stoll(Rv(out.events[2]["object"])), std::stoll(Rv(out.events[1]["object"])));
}

TEST_F(FakeApiTest, WatchFromZeroStartsWithAddedAndKeepsToItsNamespace) {
  MustCreate(kServices, "team-a", Service("team-a", "web"));
  MustCreate(kServices, "team-b", Service("team-b", "web"));
  auto watch = std::async(std::launch::async, [&] {
    return Watch(transport_.get(), WatchPath(kServices, "resourceVersion=0", "team-a"), 2);
  });
  ASSERT_TRUE(Eventually([&] { return server_->open_watches() == 1; }));
  ASSERT_TRUE(client_
                  ->Patch(kServices, "team-b", "web", {{"metadata", {{"labels", {{"a", "b"}}}}}},
                          Client::PatchType::kMerge)
                  .ok());
  ASSERT_TRUE(client_
                  ->Patch(kServices, "team-a", "web", {{"metadata", {{"labels", {{"a", "b"}}}}}},
                          Client::PatchType::kMerge)
                  .ok());
  WatchOutcome out = watch.get();
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0]["type"], "ADDED");
  EXPECT_EQ(out.events[0]["object"]["kind"], "Service");  // watch objects keep their kind
  EXPECT_EQ(out.events[1]["type"], "MODIFIED");
  for (const json& e : out.events) EXPECT_EQ(e["object"]["metadata"]["namespace"], "team-a");
}

TEST_F(FakeApiTest, BookmarksArrive) {
  FakeApiOptions options;
  options.bookmark_interval = milliseconds(20);
  StartServer(options);
  Connect();
  MustCreate(kNetworks, "", Network("net-a"));
  std::string rv = std::to_string(server_->resource_version());
  WatchOutcome out = Watch(
      transport_.get(), WatchPath(kNetworks, "allowWatchBookmarks=true&resourceVersion=" + rv), 1);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0]["type"], "BOOKMARK");
  EXPECT_EQ(out.events[0]["object"]["kind"], "LogicalNetwork");
  EXPECT_EQ(out.events[0]["object"]["apiVersion"], "ipguard.io/v1alpha1");
  EXPECT_EQ(out.events[0]["object"]["metadata"]["resourceVersion"], rv);
}

TEST_F(FakeApiTest, CompactedResourceVersionGetsExpired) {
  json a = MustCreate(kNetworks, "", Network("net-a"));
  MustCreate(kNetworks, "", Network("net-b"));
  json page = json::parse(Raw("GET", kNetworks.Path() + "?limit=1").body);
  std::string token = page["metadata"].value("continue", "");
  ASSERT_FALSE(token.empty());
  MustCreate(kNetworks, "", Network("net-c"));  // so that the token's version is older
  server_->Compact();

  // The stream ends by itself after the one ERROR event.
  WatchOutcome out = Watch(transport_.get(), WatchPath(kNetworks, "resourceVersion=" + Rv(a)));
  ASSERT_TRUE(out.response.ok()) << out.response.error();
  EXPECT_EQ(out.response->status, 200);
  ASSERT_EQ(out.events.size(), 1u);
  const json& e = out.events[0];
  EXPECT_EQ(e["type"], "ERROR");
  EXPECT_EQ(e["object"]["kind"], "Status");
  EXPECT_EQ(e["object"]["code"], 410);
  EXPECT_EQ(e["object"]["reason"], "Expired");
  EXPECT_EQ(
      e["object"]["message"].get<std::string>().rfind("too old resource version: " + Rv(a), 0), 0u);

  HttpResponse expired =
      Raw("GET", kNetworks.Path() + "?limit=1&continue=" + kube::UrlEncode(token));
  EXPECT_EQ(expired.status, 410);
  EXPECT_EQ(kube::ErrorFromResponse(expired).reason, "Expired");

  // A version at or after the compaction point still replays.
  std::string now = std::to_string(server_->resource_version());
  MustCreate(kNetworks, "", Network("net-d"));
  WatchOutcome fresh = Watch(transport_.get(), WatchPath(kNetworks, "resourceVersion=" + now), 1);
  ASSERT_EQ(fresh.events.size(), 1u);
  EXPECT_EQ(fresh.events[0]["type"], "ADDED");
}

TEST_F(FakeApiTest, FailNextAnswersWithTheCodeAndRetryAfter) {
  MustCreate(kNetworks, "", Network("net-a"));
  server_->FailNext(1, 429, 7);
  auto throttled = client_->Get(kNetworks, "", "net-a");
  ASSERT_FALSE(throttled.ok());
  EXPECT_TRUE(throttled.error().IsTooManyRequests());
  EXPECT_EQ(throttled.error().reason, "TooManyRequests");
  EXPECT_EQ(throttled.error().retry_after_seconds, 7);
  EXPECT_TRUE(client_->Get(kNetworks, "", "net-a").ok());

  server_->FailNext(2, 500);
  EXPECT_EQ(client_->Get(kNetworks, "", "net-a").error().code, 500);
  EXPECT_EQ(client_->List(kNetworks, "").error().code, 500);
  EXPECT_TRUE(client_->Get(kNetworks, "", "net-a").ok());
  std::vector<FakeApiServer::Request> log = server_->requests();
  ASSERT_GE(log.size(), 3u);
  EXPECT_EQ(log[log.size() - 2].status, 500);
  EXPECT_EQ(log.back().status, 200);
}

TEST_F(FakeApiTest, SetDelayHoldsEveryResponse) {
  server_->SetDelay(milliseconds(60));
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(client_->List(kNetworks, "").ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(60));
}

TEST_F(FakeApiTest, DropWatchesCutsOpenStreams) {
  auto watch = std::async(std::launch::async, [&] {
    return Watch(transport_.get(), WatchPath(kNetworks, "resourceVersion=0"));
  });
  ASSERT_TRUE(Eventually([&] { return server_->open_watches() == 1; }));
  server_->DropWatches();
  ASSERT_EQ(watch.wait_for(std::chrono::seconds(3)), std::future_status::ready);
  watch.get();
  EXPECT_TRUE(Eventually([&] { return server_->open_watches() == 0; }));
  EXPECT_TRUE(client_->List(kNetworks, "").ok());  // only watches were cut
}

TEST_F(FakeApiTest, StopClosesOpenWatchesPromptly) {
  auto watch = std::async(std::launch::async, [&] {
    return Watch(transport_.get(), WatchPath(kNetworks, "resourceVersion=0"));
  });
  ASSERT_TRUE(Eventually([&] { return server_->open_watches() == 1; }));
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
  ASSERT_EQ(watch.wait_for(std::chrono::seconds(3)), std::future_status::ready);
  server_->Stop();  // idempotent
}

// A watch hands on each event as its line arrives (not when a buffer fills),
// from the watching thread; its deadline and its cancel end it with the
// transport's errors even after the headers are in.
TEST_F(FakeApiTest, WatchEventsArriveOneByOneAndDeadlinesEndWatches) {
  std::atomic<int> seen{0};
  std::atomic<bool> cancel{false};
  HttpRequest req;
  req.path = WatchPath(kNetworks, "resourceVersion=0");
  req.timeout = milliseconds(60000);
  req.cancel = &cancel;
  auto watch = std::async(std::launch::async, [&] {
    return transport_->Stream(req, [&](std::string_view) {
      ++seen;
      return true;
    });
  });
  ASSERT_TRUE(Eventually([&] { return server_->open_watches() == 1; }));
  for (int i = 0; i < 3; ++i) {
    MustCreate(kNetworks, "", Network("net-" + std::to_string(i)));
    EXPECT_TRUE(Eventually([&] { return seen.load() == i + 1; })) << i;
  }
  cancel = true;
  ASSERT_EQ(watch.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  Result<HttpResponse> gone = watch.get();
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error(), "request cancelled");

  HttpRequest quiet;
  quiet.path = WatchPath(kNetworks, "resourceVersion=" + std::to_string(server_->resource_version()));
  quiet.timeout = milliseconds(300);
  Result<HttpResponse> ended = transport_->Stream(quiet, [](std::string_view) { return true; });
  ASSERT_FALSE(ended.ok());
  EXPECT_EQ(ended.error(), "GET " + quiet.path + ": timed out after 300 ms");

  HttpRequest post = quiet;
  post.method = "POST";
  Result<HttpResponse> refused = transport_->Stream(post, [](std::string_view) { return true; });
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("only a GET is streamed"), std::string::npos);
}

TEST_F(FakeApiTest, ReflectorFollowsDirectWritesAndRelistsAfterRestart) {
  kube::Store store;
  kube::ReflectorOptions options;
  options.page_size = 2;
  options.backoff = kube::Backoff(milliseconds(50), milliseconds(200));
  kube::Reflector reflector(client_.get(), kNetworks, "", &store, kube::RealClock::Get(), options);
  server_->Upsert("logicalnetworks", Network("net-0"));
  std::thread run([&] { reflector.Run(); });
  EXPECT_TRUE(Eventually([&] { return store.HasSynced() && store.size() == 1; }));

  server_->Upsert("logicalnetworks", Network("net-1"));
  EXPECT_TRUE(Eventually([&] { return store.Get("net-1").has_value(); }));

  // The reflector's version becomes older than the compaction point, so its
  // next watch gets 410 and it must list again to see these changes. The
  // failures keep it from reconnecting before the history is rewritten.
  server_->FailNext(1000, 503);
  server_->Restart();
  ASSERT_TRUE(server_->Remove("logicalnetworks", "", "net-0"));
  server_->Upsert("logicalnetworks", Network("net-2"));
  server_->Compact();
  server_->FailNext(0, 0);
  EXPECT_TRUE(Eventually(
      [&] { return store.Get("net-2").has_value() && !store.Get("net-0").has_value(); }));
  EXPECT_GE(reflector.relists(), 1);
  reflector.Stop();
  run.join();
}

TEST_F(FakeApiTest, TlsWithServerCertificate) {
  auto ca = certs::GenerateCA("fakeapi-test-ca", std::chrono::hours(1));
  ASSERT_TRUE(ca.ok()) << ca.error();
  auto serving =
      certs::GenerateServing(*ca, "fakeapi", {"localhost"}, {"127.0.0.1"}, std::chrono::hours(1));
  ASSERT_TRUE(serving.ok()) << serving.error();
  FakeApiOptions options;
  options.tls = true;
  options.cert_pem = serving->cert_pem;
  options.key_pem = serving->key_pem;
  StartServer(options);
  EXPECT_EQ(server_->url().rfind("https://127.0.0.1:", 0), 0u);

  RestConfig config;
  config.ca_pem = ca->cert_pem;
  Connect(config);
  MustCreate(kNetworks, "", Network("net-tls"));
  EXPECT_TRUE(client_->Get(kNetworks, "", "net-tls").ok());

  auto other_ca = certs::GenerateCA("someone-else", std::chrono::hours(1));
  ASSERT_TRUE(other_ca.ok());
  config.ca_pem = other_ca->cert_pem;
  Connect(config);
  auto untrusted = client_->Get(kNetworks, "", "net-tls");
  ASSERT_FALSE(untrusted.ok());
  EXPECT_EQ(untrusted.error().code, 0);  // no HTTP answer: the handshake failed
}

TEST_F(FakeApiTest, TlsClientCertificateRequiredWhenClientCaIsSet) {
  auto ca = certs::GenerateCA("fakeapi-test-ca", std::chrono::hours(1));
  ASSERT_TRUE(ca.ok()) << ca.error();
  auto serving =
      certs::GenerateServing(*ca, "fakeapi", {"localhost"}, {"127.0.0.1"}, std::chrono::hours(1));
  auto client_cert = certs::GenerateClient(*ca, "ipguard", std::chrono::hours(1));
  ASSERT_TRUE(serving.ok() && client_cert.ok());
  FakeApiOptions options;
  options.tls = true;
  options.cert_pem = serving->cert_pem;
  options.key_pem = serving->key_pem;
  options.client_ca_pem = ca->cert_pem;
  options.token = "unused-when-a-certificate-is-verified";
  StartServer(options);

  RestConfig config;
  config.ca_pem = ca->cert_pem;
  Connect(config);
  auto anonymous = client_->List(kNetworks, "");
  ASSERT_FALSE(anonymous.ok());
  EXPECT_EQ(anonymous.error().code, 0);

  config.client_cert_pem = client_cert->cert_pem;
  config.client_key_pem = client_cert->key_pem;
  Connect(config);
  auto list = client_->List(kNetworks, "");
  EXPECT_TRUE(list.ok()) << list.error().ToString();
}

TEST_F(FakeApiTest, BearerTokenRequired) {
  FakeApiOptions options;
  options.token = "s3cret";
  StartServer(options);
  Connect();
  auto denied = client_->List(kNetworks, "");
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, 401);
  EXPECT_EQ(denied.error().reason, "Unauthorized");

  RestConfig config;
  config.token = "s3cret";
  Connect(config);
  auto allowed = client_->List(kNetworks, "");
  EXPECT_TRUE(allowed.ok()) << allowed.error().ToString();
}


// A list read as it arrives (Client::StreamList over StreamGet): every item,
// in pieces, over TLS with the client's certificate; the same refusals as any
// other request for an untrusted server, a missing token, a deadline and a
// cancel.
TEST_F(FakeApiTest, StreamedListsOverTlsAndTheirFailures) {
  auto ca = certs::GenerateCA("fakeapi-test-ca", std::chrono::hours(1));
  auto serving =
      certs::GenerateServing(*ca, "fakeapi", {"localhost"}, {"127.0.0.1"}, std::chrono::hours(1));
  auto client_cert = certs::GenerateClient(*ca, "ipguard", std::chrono::hours(1));
  ASSERT_TRUE(ca.ok() && serving.ok() && client_cert.ok());
  FakeApiOptions options;
  options.tls = true;
  options.cert_pem = serving->cert_pem;
  options.key_pem = serving->key_pem;
  options.client_ca_pem = ca->cert_pem;
  StartServer(options);
  for (int i = 0; i < 3000; ++i) {
    json n = Network("net-" + std::to_string(i));
    n["metadata"]["annotations"] = {{"note", std::string(200, 'x') + "}]\"{"}};
    server_->Upsert("logicalnetworks", n);
  }
  RestConfig config;
  config.ca_pem = ca->cert_pem;
  config.client_cert_pem = client_cert->cert_pem;
  config.client_key_pem = client_cert->key_pem;
  Connect(config);
  std::vector<std::string> names;
  auto meta = client_->StreamList(kNetworks, "", "limit=500&resourceVersion=0", [&](std::string_view item) {
    names.push_back(json::parse(item)["metadata"]["name"]);
    return true;
  });
  ASSERT_TRUE(meta.ok()) << meta.error().ToString();
  EXPECT_EQ(names.size(), 3000u) << "served whole, as from the watch cache";
  EXPECT_TRUE(meta.value().cont.empty());
  EXPECT_EQ(meta.value().resource_version, std::to_string(server_->resource_version()));

  // The caller stops: the list fails, nothing else breaks.
  size_t seen = 0;
  auto stopped = client_->StreamList(kNetworks, "", "resourceVersion=0", [&](std::string_view) {
    return ++seen < 10;
  });
  EXPECT_FALSE(stopped.ok());
  EXPECT_EQ(seen, 10u);

  // A deadline: the server answers after it.
  server_->SetDelay(std::chrono::milliseconds(1500));
  HttpRequest slow;
  slow.path = kNetworks.Path() + "?resourceVersion=0";
  slow.timeout = std::chrono::milliseconds(300);
  bool complete = true;
  auto timed_out = transport_->StreamBody(slow, [](std::string_view) { return true; }, &complete);
  ASSERT_FALSE(timed_out.ok());
  EXPECT_NE(timed_out.error().find("timed out"), std::string::npos) << timed_out.error();
  EXPECT_FALSE(complete);
  // A cancel, checked every 100 ms.
  std::atomic<bool> cancel{false};
  slow.timeout = std::chrono::seconds(30);
  slow.cancel = &cancel;
  std::thread canceller = CancelAfter(&cancel, milliseconds(200));
  auto start = std::chrono::steady_clock::now();
  auto cancelled = transport_->StreamBody(slow, [](std::string_view) { return true; }, &complete);
  canceller.join();
  ASSERT_FALSE(cancelled.ok());
  EXPECT_EQ(cancelled.error(), "request cancelled");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  server_->SetDelay(std::chrono::milliseconds(0));

  // No client certificate: no HTTP answer at all.
  RestConfig anonymous = config;
  anonymous.client_cert_pem.clear();
  anonymous.client_key_pem.clear();
  Connect(anonymous);
  auto refused = client_->StreamList(kNetworks, "", "resourceVersion=0", [](std::string_view) { return true; });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, 0);
  // A server certificate of another CA is not trusted.
  auto other = certs::GenerateCA("someone-else", std::chrono::hours(1));
  RestConfig untrusting = config;
  untrusting.ca_pem = other->cert_pem;
  Connect(untrusting);
  auto untrusted = client_->StreamList(kNetworks, "", "resourceVersion=0", [](std::string_view) { return true; });
  ASSERT_FALSE(untrusted.ok());
  EXPECT_NE(untrusted.error().message.find("handshake"), std::string::npos) << untrusted.error().message;
}

TEST_F(FakeApiTest, StreamedListWithoutTheTokenGetsTheServersRefusal) {
  FakeApiOptions options;
  options.token = "s3cret";
  StartServer(options);
  Connect();
  auto denied = client_->StreamList(kNetworks, "", "resourceVersion=0", [](std::string_view) { return true; });
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, 401);
  EXPECT_EQ(denied.error().reason, "Unauthorized");
}


// The kept connections the claim writers use (kube/kept_transport.h): whole
// requests on the caller's thread over connections kept between requests,
// with the same TLS, authentication, deadlines and cancels as the rest.
class KeptTransportTest : public FakeApiTest {
 protected:
  // A TLS fake API server that asks for a client certificate and a token,
  // and a kept transport to it (watches through the ordinary transport).
  void SetUp() override {
    ca_ = std::move(certs::GenerateCA("kept-test-ca", std::chrono::hours(1))).value();
    auto serving =
        certs::GenerateServing(ca_, "fakeapi", {"localhost"}, {"127.0.0.1"}, std::chrono::hours(1));
    client_cert_ = std::move(certs::GenerateClient(ca_, "ipguard", std::chrono::hours(1))).value();
    ASSERT_TRUE(serving.ok());
    FakeApiOptions options;
    options.tls = true;
    options.cert_pem = serving->cert_pem;
    options.key_pem = serving->key_pem;
    options.client_ca_pem = ca_.cert_pem;
    StartServer(options);
    Connect(Config());
    Keep(Config());
  }

  RestConfig Config() const {
    RestConfig config;
    config.server = server_->url();
    config.ca_pem = ca_.cert_pem;
    config.client_cert_pem = client_cert_.cert_pem;
    config.client_key_pem = client_cert_.key_pem;
    return config;
  }

  void Keep(const RestConfig& config, kube::KeptTransportOptions options = {}) {
    kept_client_.reset();
    auto t = kube::NewKeptTransport(config, kube::RealClock::Get(), transport_.get(), options);
    ASSERT_TRUE(t.ok()) << t.error();
    kept_ = std::move(t).value();
    kept_client_ = std::make_unique<Client>(kept_.get());
  }

  void TearDown() override {
    kept_client_.reset();
    kept_.reset();
  }

  certs::KeyPair ca_, client_cert_;
  std::unique_ptr<Transport> kept_;
  std::unique_ptr<Client> kept_client_;
};

TEST_F(KeptTransportTest, RequestsShareOneConnectionAndAnswersComeWhole) {
  size_t before = server_->connections_accepted();
  for (int i = 0; i < 20; ++i) {
    auto created = kept_client_->Create(kNetworks, "", Network("net-" + std::to_string(i)));
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    EXPECT_EQ(JsonString(created.value(), "metadata", "name"), "net-" + std::to_string(i));
    auto got = kept_client_->Get(kNetworks, "", "net-" + std::to_string(i));
    ASSERT_TRUE(got.ok()) << got.error().ToString();
    EXPECT_EQ(Rv(got.value()), Rv(created.value()));
  }
  EXPECT_EQ(server_->connections_accepted() - before, 1u) << "one connection kept for all 40";
  // The server's refusals come back as answers, and the connection stays.
  auto again = kept_client_->Create(kNetworks, "", Network("net-0"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, 409);
  EXPECT_TRUE(again.error().IsConflict());
  auto missing = kept_client_->Get(kNetworks, "", "nobody");
  EXPECT_TRUE(!missing.ok() && missing.error().IsNotFound());
  server_->FailNext(1, 500);
  auto failed = kept_client_->Get(kNetworks, "", "net-1");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, 500);
  EXPECT_TRUE(kept_client_->Delete(kNetworks, "", "net-1").ok());
  EXPECT_EQ(server_->connections_accepted() - before, 1u);
  // A list goes through the streams' transport and is read whole.
  auto list = kept_client_->List(kNetworks, "");
  ASSERT_TRUE(list.ok()) << list.error().ToString();
  EXPECT_EQ(list.value()["items"].size(), 19u);
}

TEST_F(KeptTransportTest, ConcurrentRequestsKeepAtMostMaxIdleConnections) {
  kube::KeptTransportOptions options;
  options.max_idle = 2;
  Keep(Config(), options);
  size_t before = server_->connections_accepted();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        ok += kept_client_->Create(kNetworks, "", Network("c-" + std::to_string(t) + "-" + std::to_string(i))).ok();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 60);
  size_t opened = server_->connections_accepted() - before;
  EXPECT_GE(opened, 1u);
  EXPECT_LE(opened, 60u);
  // Afterwards one thread at a time needs one connection, and finds it kept.
  size_t after_burst = server_->connections_accepted();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(kept_client_->Get(kNetworks, "", "c-0-0").ok());
  EXPECT_EQ(server_->connections_accepted(), after_burst);
}

TEST_F(KeptTransportTest, AConnectionTheServerClosedWhileIdleIsReplaced) {
  ASSERT_TRUE(kept_client_->Create(kNetworks, "", Network("before")).ok());
  size_t before = server_->connections_accepted();
  server_->Restart();  // drops every connection, the kept one too
  auto created = kept_client_->Create(kNetworks, "", Network("after"));
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  EXPECT_EQ(server_->connections_accepted() - before, 1u);
  EXPECT_EQ(server_->CountRequests("POST", "/logicalnetworks"), 2u) << "the create was made once";
  EXPECT_TRUE(server_->Get("logicalnetworks", "", "after").has_value());
}

// A server that reads a request on a kept connection and closes it without
// answering (it went away just as the request came): the request goes once
// more, on a new connection; a new connection that fails the same way is an
// error, not a third try.
TEST(KeptTransportRaw, ARequestUnansweredOnAKeptConnectionIsSentOnceMoreOnANewOne) {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener, 8), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  // Reads one request (headers only: these are GETs); false when the peer went.
  auto read_request = [](int fd) {
    std::string in;
    char buf[1024];
    while (in.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      in.append(buf, static_cast<size_t>(n));
    }
    return true;
  };
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
  std::atomic<int> connections{0}, requests{0};
  // Connection 1 answers one request, then takes the second and closes.
  // Connection 2 answers everything. Connections 3 and 4 close at once
  // after a request.
  std::thread server([&] {
    for (int c = 1; c <= 4; ++c) {
      int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      ++connections;
      for (int r = 0;; ++r) {
        if (!read_request(fd)) break;
        ++requests;
        bool answer = (c == 1 && r == 0) || c == 2;
        if (!answer) break;
        ::send(fd, ok.data(), ok.size(), MSG_NOSIGNAL);
        if (c == 2 && r == 1) break;
      }
      ::close(fd);
    }
  });
  RestConfig config;
  config.server = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto t = kube::NewKeptTransport(config, kube::RealClock::Get(), nullptr);
  ASSERT_TRUE(t.ok()) << t.error();
  HttpRequest get;
  get.path = "/api/v1/namespaces/default";
  get.timeout = std::chrono::seconds(5);
  auto first = t.value()->Do(get);
  ASSERT_TRUE(first.ok()) << first.error();
  EXPECT_EQ(first->status, 200);
  auto second = t.value()->Do(get);  // on the kept connection, which the server drops
  ASSERT_TRUE(second.ok()) << second.error();
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(connections.load(), 2);
  EXPECT_EQ(requests.load(), 3);
  auto third = t.value()->Do(get);  // connection 2 answers it and closes
  ASSERT_TRUE(third.ok()) << third.error();
  // Connection 2 is closed; connection 3, new, drops the request: an error
  // at once (a new connection is not tried again), and nobody answers.
  auto fourth = t.value()->Do(get);
  ASSERT_FALSE(fourth.ok());
  EXPECT_NE(fourth.error().find("GET /api/v1/namespaces/default: "), std::string::npos) << fourth.error();
  ::shutdown(listener, SHUT_RDWR);
  ::close(listener);
  server.join();
}

TEST_F(KeptTransportTest, ConnectionsIdleLongerThanIdleForAreNotUsed) {
  kube::KeptTransportOptions options;
  options.idle_for = std::chrono::seconds(0);
  Keep(Config(), options);
  size_t before = server_->connections_accepted();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(kept_client_->Get(kNetworks, "", "x").error().IsNotFound());
  EXPECT_EQ(server_->connections_accepted() - before, 3u);
}

TEST_F(KeptTransportTest, DeadlinesAndCancelsEndTheRequestAndItsConnection) {
  ASSERT_TRUE(kept_client_->Create(kNetworks, "", Network("slow")).ok());
  server_->SetDelay(std::chrono::milliseconds(1500));
  HttpRequest slow;
  slow.path = kNetworks.Path() + "/slow";
  slow.timeout = std::chrono::milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  auto timed_out = kept_->Do(slow);
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.error(), "GET " + slow.path + ": timed out after 200 ms");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));

  std::atomic<bool> cancel{false};
  slow.timeout = std::chrono::seconds(30);
  slow.cancel = &cancel;
  std::thread canceller = CancelAfter(&cancel, milliseconds(200));
  start = std::chrono::steady_clock::now();
  auto cancelled = kept_->Do(slow);
  canceller.join();
  ASSERT_FALSE(cancelled.ok());
  EXPECT_EQ(cancelled.error(), "request cancelled");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));

  // The cut connections are not kept: the next answer is the next request's.
  server_->SetDelay(std::chrono::milliseconds(0));
  auto got = kept_client_->Get(kNetworks, "", "slow");
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(JsonString(got.value(), "metadata", "name"), "slow");
}

TEST_F(KeptTransportTest, TlsIsVerifiedBothWays) {
  // No client certificate: the server refuses the handshake; no HTTP answer.
  RestConfig anonymous = Config();
  anonymous.client_cert_pem.clear();
  anonymous.client_key_pem.clear();
  Keep(anonymous);
  auto refused = kept_client_->Get(kNetworks, "", "x");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, 0);
  // A server certificate of another CA is not trusted.
  auto other = certs::GenerateCA("someone-else", std::chrono::hours(1));
  ASSERT_TRUE(other.ok());
  RestConfig untrusting = Config();
  untrusting.ca_pem = other->cert_pem;
  Keep(untrusting);
  auto untrusted = kept_client_->Get(kNetworks, "", "x");
  ASSERT_FALSE(untrusted.ok());
  EXPECT_NE(untrusted.error().message.find("TLS handshake"), std::string::npos)
      << untrusted.error().message;
  // A name the certificate does not carry (it names localhost and 127.0.0.1).
  RestConfig renamed = Config();
  renamed.server = "https://127.0.0.2:" + std::to_string(server_->port());
  Keep(renamed);
  auto misnamed = kept_client_->Get(kNetworks, "", "x");
  ASSERT_FALSE(misnamed.ok());
  EXPECT_EQ(misnamed.error().code, 0);
  // Nobody listening.
  RestConfig closed = Config();
  closed.server = "https://127.0.0.1:1";
  Keep(closed);
  auto nobody = kept_client_->Get(kNetworks, "", "x");
  ASSERT_FALSE(nobody.ok());
  EXPECT_NE(nobody.error().message.find("connect"), std::string::npos) << nobody.error().message;
}

TEST_F(KeptTransportTest, BadConfigsAndRequestsAreRefusedBeforeAnythingIsSent) {
  RestConfig plain_remote = Config();
  plain_remote.server = "http://10.0.0.1:6443";
  auto remote = kube::NewKeptTransport(plain_remote, kube::RealClock::Get(), nullptr);
  ASSERT_FALSE(remote.ok());
  EXPECT_NE(remote.error().find("must be https"), std::string::npos) << remote.error();
  RestConfig bad_key = Config();
  bad_key.client_key_pem = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
  EXPECT_FALSE(kube::NewKeptTransport(bad_key, kube::RealClock::Get(), nullptr).ok());

  size_t requests = server_->requests().size();
  HttpRequest injected;
  injected.path = kNetworks.Path() + "/x HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET /";
  auto refused = kept_->Do(injected);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("line break or space"), std::string::npos) << refused.error();
  EXPECT_EQ(server_->requests().size(), requests);

  // Without a streams' transport, streams are refused with a message.
  auto alone = kube::NewKeptTransport(Config(), kube::RealClock::Get(), nullptr);
  ASSERT_TRUE(alone.ok());
  HttpRequest watch;
  watch.path = WatchPath(kNetworks, "resourceVersion=0");
  auto none = alone.value()->Stream(watch, [](std::string_view) { return true; });
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().find("no stream here"), std::string::npos);
}

TEST_F(KeptTransportTest, AnAnswerLargerThanMaxBodyIsAnError) {
  kube::KeptTransportOptions options;
  options.max_body = 4096;
  Keep(Config(), options);
  json big = Network("big");
  big["metadata"]["annotations"] = {{"note", std::string(8000, 'x')}};
  server_->Upsert("logicalnetworks", big);
  auto got = kept_client_->Get(kNetworks, "", "big");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message.find("body limit exceeded"), std::string::npos) << got.error().message;
  // The next request is answered on a new connection.
  EXPECT_TRUE(kept_client_->Get(kNetworks, "", "nothing").error().IsNotFound());
}

}  // namespace
}  // namespace ipguard::fakeapi
