// What the component tests of the manager and the agent share: a fake API
// server over TLS with the ipguard kinds, the shipped clean example plan
// loaded into it, a RestConfig for it, and AdmissionReviews and Services to
// send.
#ifndef IPGUARD_TESTS_COMPONENT_FAKE_CLUSTER_H_
#define IPGUARD_TESTS_COMPONENT_FAKE_CLUSTER_H_

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/kinds.h"
#include "kube/config.h"
#include "tests/fakeapi/fake_apiserver.h"
#include "tests/files.h"
#include "webhook/certs.h"

namespace ipguard::testing_util {

inline const std::map<Kind, std::string>& Plurals() {
  static const std::map<Kind, std::string> kPlural = {
      {Kind::kLogicalNetwork, "logicalnetworks"},
      {Kind::kWorkloadCluster, "workloadclusters"},
      {Kind::kLoadBalancerPool, "loadbalancerpools"},
      {Kind::kIPReservation, "ipreservations"},
      {Kind::kService, "services"},
      {Kind::kIPClaim, "ipclaims"},
  };
  return kPlural;
}

// A fake API server over TLS (a certificate of `ca` for 127.0.0.1) with the
// standard resources, started on `port` (0: any).
inline std::unique_ptr<fakeapi::FakeApiServer> StartFakeApi(const certs::KeyPair& ca,
                                                            int port = 0) {
  auto serving = *certs::GenerateServing(ca, "fake-apiserver", {"localhost"}, {"127.0.0.1"},
                                         std::chrono::hours(24));
  fakeapi::FakeApiOptions o;
  o.tls = true;
  o.cert_pem = serving.cert_pem;
  o.key_pem = serving.key_pem;
  o.bookmark_interval = std::chrono::milliseconds(200);
  o.port = port;
  auto fake = std::make_unique<fakeapi::FakeApiServer>(o);
  fake->AddStandardResources();
  EXPECT_TRUE(fake->Start().ok());
  return fake;
}

inline kube::RestConfig ConfigOf(const fakeapi::FakeApiServer& fake, const certs::KeyPair& ca) {
  kube::RestConfig c;
  c.server = fake.url();
  c.ca_pem = ca.cert_pem;
  return c;
}

// Stores the objects of examples/clean whose kind `take` accepts, created
// long ago (so that objects a test adds are younger); WorkloadClusters and
// Services without a namespace go to "default".
inline void LoadExamples(fakeapi::FakeApiServer* fake, const std::function<bool(Kind)>& take) {
  namespace fs = std::filesystem;
  for (auto& f : ReadManifestDir(fs::path(IPGUARD_SOURCE_DIR) / "examples" / "clean")) {
    ASSERT_TRUE(f.status.ok()) << f.status.message();
    for (auto& d : f.docs) {
      std::string kind = d.json.value("kind", "");
      for (const auto& [k, plural] : Plurals()) {
        if (kind != KindName(k) || !take(k)) continue;
        if (!d.json["metadata"].contains("namespace") &&
            (k == Kind::kWorkloadCluster || k == Kind::kService)) {
          d.json["metadata"]["namespace"] = "default";
        }
        d.json["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z";
        ASSERT_FALSE(fake->Upsert(plural, d.json).is_null()) << kind;
      }
      if (kind == "IPAddressPool" && take(Kind::kIPAddressPool)) {
        fake->Upsert("ipaddresspools", d.json);
      }
    }
  }
}

// An AdmissionReview of `obj` (its kind and namespace from the object); an
// UPDATE carries the same object as oldObject.
inline nlohmann::json ReviewOf(const std::string& uid, const std::string& op,
                               const nlohmann::json& obj, bool dry_run = false,
                               const std::string& user = "") {
  std::string api_version = obj.value("apiVersion", "");
  size_t slash = api_version.find('/');
  nlohmann::json kind = {
      {"group", slash == std::string::npos ? "" : api_version.substr(0, slash)},
      {"version", api_version.substr(slash == std::string::npos ? 0 : slash + 1)},
      {"kind", obj.value("kind", "")}};
  nlohmann::json request = {{"uid", uid},
                            {"kind", kind},
                            {"operation", op},
                            {"namespace", obj["metadata"].value("namespace", "")},
                            {"object", obj}};
  if (dry_run) request["dryRun"] = true;
  if (!user.empty()) request["userInfo"] = {{"username", user}};
  if (op == "UPDATE") request["oldObject"] = obj;
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request", request}};
}

// A Service of type LoadBalancer in "default" asking for `ip`, port 80.
inline nlohmann::json LbService(const std::string& name, const std::string& ip) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", {{"type", "LoadBalancer"}, {"loadBalancerIP", ip}, {"ports", {{{"port", 80}}}}}}};
}

}  // namespace ipguard::testing_util

#endif  // IPGUARD_TESTS_COMPONENT_FAKE_CLUSTER_H_
