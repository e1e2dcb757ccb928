// DecodeServiceReview, the in-place reader of Service reviews, against
// DecodeReviewDocument: whatever it takes it reads exactly as the document
// reader does, and what it declines still gets the document reader's answer
// through DecodeReview.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/fixture_cases.h"
#include "tests/review_summary.h"
#include "webhook/admission.h"

namespace ipguard {
namespace {

using nlohmann::json;
using testing_util::ReviewSummary;

std::string ServiceReview(const std::string& op, const std::string& object,
                          const std::string& old_object = "null", const std::string& extra = "") {
  return R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1",)"
         R"("kind":{"group":"","version":"v1","kind":"Service"},)"
         R"("resource":{"group":"","version":"v1","resource":"services"},"namespace":"apps",)"
         R"("operation":")" +
         op + R"(","userInfo":{"username":"alice","groups":["a","b"]},"object":)" + object +
         R"(,"oldObject":)" + old_object + extra + "}}";
}

const char kLoadBalancer[] =
    R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"apps",)"
    R"("uid":"1f","resourceVersion":"42","generation":3,"creationTimestamp":"2026-01-01T00:00:00Z",)"
    R"("labels":{"app":"web"},"annotations":{"metallb.io/loadBalancerIPs":"10.0.0.60,10.0.0.61,10.0.0.60",)"
    R"("metallb.io/allow-shared-ip":"team","note":"caf\u00e9 \"q\""},)"
    R"("managedFields":[{"manager":"kubectl","fieldsV1":{"f:spec":{"k:{\"port\":443}":{}}}}]},)"
    R"("spec":{"type":"LoadBalancer","loadBalancerIP":"10.0.0.62","selector":{"app":"web"},)"
    R"("ports":[{"name":"https","port":443,"protocol":"TCP","targetPort":8443},{"port":53,"protocol":"UDP"},{}]},)"
    R"("status":{"loadBalancer":{"ingress":[{"ip":"10.0.0.60","ipMode":"VIP"},"odd",{"hostname":"h"},)"
    R"({"ip":"not-an-ip"},{"ip":7},{"ip":"10.0.0.61"}]},"conditions":[]}})";

void ExpectSameAnswer(const std::string& body) {
  SCOPED_TRACE(body);
  auto fast = DecodeServiceReview(body);
  ASSERT_TRUE(fast.has_value()) << "declined";
  DecodedReview doc = DecodeReviewDocument(body, {});
  EXPECT_EQ(ReviewSummary(*fast), ReviewSummary(doc));
}

void ExpectDeclined(const std::string& body) {
  SCOPED_TRACE(body);
  EXPECT_FALSE(DecodeServiceReview(body).has_value());
  // DecodeReview still answers, as the document reader does.
  EXPECT_EQ(ReviewSummary(DecodeReview(body, {})), ReviewSummary(DecodeReviewDocument(body, {})));
}

TEST(ServiceReviewTest, ReadsAServiceAsTheDocumentReaderDoes) {
  ExpectSameAnswer(ServiceReview("CREATE", kLoadBalancer));
  ExpectSameAnswer(ServiceReview("CREATE", kLoadBalancer, "null", R"(,"dryRun":true)"));
  ExpectSameAnswer(ServiceReview("UPDATE", kLoadBalancer, kLoadBalancer));
  ExpectSameAnswer(ServiceReview("UPDATE", kLoadBalancer));  // no oldObject sent
  ExpectSameAnswer(ServiceReview("DELETE", "null", kLoadBalancer));
  auto d = DecodeServiceReview(ServiceReview("CREATE", kLoadBalancer));
  ASSERT_TRUE(d && d->obj);
  EXPECT_EQ(d->obj->svc->requested.size(), 3u) << "loadBalancerIP and two annotation addresses";
  EXPECT_EQ(d->obj->svc->held.size(), 2u);
  EXPECT_EQ(d->obj->svc->sharing_key, "team");
  EXPECT_EQ(d->obj->meta.annotations.at("note"), "caf\xC3\xA9 \"q\"");
}

TEST(ServiceReviewTest, NamespacesAndOtherTypes) {
  // The object's namespace, else the request's, else "default".
  ExpectSameAnswer(ServiceReview("CREATE", R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"type":"LoadBalancer"}})"));
  ExpectSameAnswer(ServiceReview("CREATE", R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a","namespace":""}})"));
  std::string no_ns = ServiceReview("CREATE", R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a"}})");
  no_ns.replace(no_ns.find(R"("namespace":"apps",)"), 19, "");
  ExpectSameAnswer(no_ns);
  EXPECT_EQ(DecodeServiceReview(no_ns)->obj->meta.ns, "default");
  // Of a Service that is not a LoadBalancer, only the type counts.
  ExpectSameAnswer(ServiceReview("CREATE", R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a","annotations":{"metallb.io/loadBalancerIPs":"bad"}},"spec":{"type":"ClusterIP","loadBalancerIP":"bad","ports":[{"port":80}]},"status":{"loadBalancer":{"ingress":[{"ip":"10.0.0.1"}]}}})"));
  // Escapes are decoded (raw non-ASCII bytes are left to the document reader).
  ExpectSameAnswer(ServiceReview("CREATE", R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"caf\u00e9"}})"));
  // Key order does not matter, nor does whitespace.
  ExpectSameAnswer(R"( { "request" : { "object" : {"spec":{"type":"LoadBalancer"},"metadata":{"name":"z"},"kind":"Service","apiVersion":"v1"}, "operation":"CREATE", "kind":{"kind":"Service","version":"v1","group":""}, "uid":"u" } , "kind":"AdmissionReview", "apiVersion":"admission.k8s.io/v1" } )");
}

TEST(ServiceReviewTest, DeclinesWhatTheDocumentReaderWords) {
  const std::string named = R"("metadata":{"name":"a"})";
  for (const std::string& object : std::vector<std::string>{
           // Errors the rules report, in the document reader's words.
           R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a","annotations":{"metallb.io/loadBalancerIPs":"10.0.0.300"}},"spec":{"type":"LoadBalancer"}})",
           R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"type":"LoadBalancer","loadBalancerIP":"x"}})",
           R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"type":"LoadBalancer","ports":[{"port":"443"}]}})",
           R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a","namespace":7}})",
           R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a","annotations":{"x":1}}})",
           R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a","generation":1.5}})",
           // No name yet (generateName), nulls, duplicates, other kinds.
           R"({"apiVersion":"v1","kind":"Service","metadata":{"generateName":"web-"}})",
           R"({"apiVersion":"v1","kind":"Service","metadata":{"name":""}})",
           R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a","uid":null}})",
           R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":null})",
           R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"metadata":{"name":"b"}})",
           R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a","annotations":{"k":"1","k":"2"}}})",
           R"({"apiVersion":"ipguard.io/v1alpha1","kind":"WorkloadCluster",)" + named + "}",
           std::string("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"caf\xC3\xA9\"}}"),
           R"("not an object")",
       }) {
    ExpectDeclined(ServiceReview("CREATE", object));
  }
  const std::string ok = R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a"}})";
  ExpectDeclined(ServiceReview("CONNECT", ok));
  ExpectDeclined(ServiceReview("DELETE", "null"));
  ExpectDeclined(ServiceReview("CREATE", "null"));
  ExpectDeclined(ServiceReview("CREATE", ok, "null", R"(,"dryRun":"yes")"));
  ExpectDeclined(ServiceReview("CREATE", ok, "null", R"(,"uid":"twice")"));
  std::string other_kind = ServiceReview("CREATE", ok);
  other_kind.replace(other_kind.find(R"("kind":"Service"})"), 17, R"("kind":"Pod"})");
  ExpectDeclined(other_kind);
  ExpectDeclined(ServiceReview("CREATE", ok) + "x");
  ExpectDeclined(ServiceReview("CREATE", ok).substr(10));
  ExpectDeclined("");
}

// Every Service of the rule fixtures, as a CREATE review: read in place,
// and the same as the document reader's.
TEST(ServiceReviewTest, EveryFixtureServiceReadsTheSame) {
  int services = 0;
  for (const auto& rc : testing_util::LoadCases()) {
    const json& c = rc.spec;
    std::vector<json> docs;
    for (const auto& e : c.value("existing", json::array())) docs.push_back(e);
    if (c.contains("object")) docs.push_back(c["object"]);
    for (const json& doc : docs) {
      if (doc.value("kind", "") != "Service") continue;
      const std::string body = ServiceReview("CREATE", doc.dump());
      auto fast = DecodeServiceReview(body);
      DecodedReview slow = DecodeReviewDocument(body, {});
      if (!fast) {
        // Declined: the document reader has something to say.
        EXPECT_TRUE(slow.answered || !slow.obj->errors.empty() || !slow.named) << rc.name;
        continue;
      }
      ++services;
      EXPECT_EQ(ReviewSummary(*fast), ReviewSummary(slow)) << rc.file << "/" << rc.name;
    }
  }
  EXPECT_GT(services, 20);
}

}  // namespace
}  // namespace ipguard
