// The CRD schemas against the objects ipguard admits: every ipguard object in
// examples/ and every object a rule fixture expects the webhook to admit must
// also pass the CRD's structural schema (types, enums, ranges, lengths,
// patterns, required fields, no unknown fields as server-side strict field
// validation would have it, and no repeated item in a set or key in a map
// list). Otherwise a plan that `ipguard check` passes would still be refused by
// `kubectl apply`. The CEL rules are run by tests/js/check_cel.mjs, and the
// e2e suite meets them on a real API server.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "core/manifest.h"
#include "tests/files.h"
#include "tests/fixture_cases.h"

namespace ipguard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// kind -> openAPIV3Schema of its served version.
std::map<std::string, json> LoadSchemas() {
  std::map<std::string, json> out;
  for (const auto& f : testing_util::ReadManifestDir(fs::path(IPGUARD_SOURCE_DIR) / "crds")) {
    if (!f.status.ok() || f.docs.empty()) continue;
    const json& crd = f.docs[0].json;
    for (const auto& v : crd["spec"]["versions"]) {
      if (v.value("served", false))
        out[crd["spec"]["names"]["kind"]] = v["schema"]["openAPIV3Schema"];
    }
  }
  return out;
}

void Validate(const json& value, const json& schema, const std::string& path,
              std::vector<std::string>* errors) {
  auto fail = [&](const std::string& why) { errors->push_back(path + ": " + why); };
  if (schema.value("x-kubernetes-int-or-string", false)) {
    if (!value.is_number_integer() && !value.is_string()) fail("must be an integer or a string");
    return;
  }
  const std::string type = schema.value("type", "");
  if (value.is_null()) {
    if (!schema.value("nullable", false)) fail("must not be null");
    return;
  }
  if (type == "object" && !value.is_object()) return fail("must be an object");
  if (type == "array" && !value.is_array()) return fail("must be an array");
  if (type == "string" && !value.is_string()) return fail("must be a string");
  if (type == "integer" && !value.is_number_integer()) return fail("must be an integer");
  if (type == "number" && !value.is_number()) return fail("must be a number");
  if (type == "boolean" && !value.is_boolean()) return fail("must be a boolean");
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || e == value;
    if (!found) fail("must be one of " + schema["enum"].dump());
  }
  if (value.is_number()) {
    if (schema.contains("minimum") && value.get<double>() < schema["minimum"].get<double>())
      fail("below minimum");
    if (schema.contains("maximum") && value.get<double>() > schema["maximum"].get<double>())
      fail("above maximum");
  }
  if (value.is_string()) {
    const std::string s = value.get<std::string>();
    if (schema.contains("minLength") && s.size() < schema["minLength"].get<size_t>())
      fail("shorter than minLength");
    if (schema.contains("maxLength") && s.size() > schema["maxLength"].get<size_t>())
      fail("longer than maxLength");
    if (schema.contains("pattern") &&
        !std::regex_search(s, std::regex(schema["pattern"].get<std::string>()))) {
      fail("does not match " + schema["pattern"].get<std::string>());
    }
  }
  if (value.is_array()) {
    if (schema.contains("minItems") && value.size() < schema["minItems"].get<size_t>())
      fail("fewer than minItems");
    if (schema.contains("maxItems") && value.size() > schema["maxItems"].get<size_t>())
      fail("more than maxItems");
    if (schema.contains("items")) {
      for (size_t i = 0; i < value.size(); ++i) {
        Validate(value[i], schema["items"], path + "[" + std::to_string(i) + "]", errors);
      }
    }
    // The API server refuses a set with a repeated item, and a map list with two items
    // of one key ("Duplicate value").
    const std::string list_type = schema.value("x-kubernetes-list-type", "atomic");
    std::set<std::string> seen;
    for (size_t i = 0; i < value.size() && list_type != "atomic"; ++i) {
      json key = value[i];
      if (list_type == "map" && value[i].is_object()) {
        key = json::object();
        for (const auto& k : schema.value("x-kubernetes-list-map-keys", json::array())) {
          key[k.get<std::string>()] = value[i].value(k.get<std::string>(), json());
        }
      }
      if (!seen.insert(key.dump()).second) {
        fail("duplicate value " + key.dump() + " in a list of type " + list_type);
      }
    }
  }
  if (value.is_object() && path != "metadata" &&
      !schema.value("x-kubernetes-preserve-unknown-fields", false)) {
    const json props = schema.value("properties", json::object());
    for (const auto& r : schema.value("required", json::array())) {
      if (!value.contains(r.get<std::string>()))
        fail("missing required field " + r.get<std::string>());
    }
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (props.contains(it.key())) {
        Validate(*it, props[it.key()], path.empty() ? it.key() : path + "." + it.key(), errors);
      } else if (schema.contains("additionalProperties") &&
                 schema["additionalProperties"].is_object()) {
        Validate(*it, schema["additionalProperties"], path + "." + it.key(), errors);
      } else if (!(path.empty() && (it.key() == "apiVersion" || it.key() == "kind"))) {
        fail("unknown field " + it.key());
      }
    }
  }
}

// Schema problems of one object, or nothing for kinds without a CRD here.
std::vector<std::string> Check(const std::map<std::string, json>& schemas, const json& obj) {
  std::vector<std::string> errors;
  auto it = schemas.find(obj.value("kind", ""));
  if (it == schemas.end()) return errors;
  json body = obj;
  body.erase("status");  // written by the controller, not by users
  Validate(body, it->second, "", &errors);
  return errors;
}

// The API server refuses a CRD whose default does not pass its own schema.
// Returns how many defaults it checked.
int CheckDefaults(const json& schema, const std::string& path, std::vector<std::string>* errors) {
  if (!schema.is_object()) return 0;
  int n = 0;
  if (schema.contains("default")) {
    Validate(schema["default"], schema, path + " (default)", errors);
    ++n;
  }
  const json properties = schema.value("properties", json::object());
  for (const auto& [name, sub] : properties.items()) {
    n += CheckDefaults(sub, path.empty() ? name : path + "." + name, errors);
  }
  if (schema.contains("items")) n += CheckDefaults(schema["items"], path + "[]", errors);
  if (schema.contains("additionalProperties")) {
    n += CheckDefaults(schema["additionalProperties"], path + "{}", errors);
  }
  return n;
}

TEST(CrdSchemas, EveryDefaultPassesItsOwnSchema) {
  int defaults = 0;
  for (const auto& [kind, schema] : LoadSchemas()) {
    std::vector<std::string> errors;
    defaults += CheckDefaults(schema, "", &errors);
    for (const auto& e : errors) ADD_FAILURE() << kind << ": " << e;
  }
  EXPECT_GE(defaults, 3) << "vlanId, controlPlane.count and upgradeSurge have defaults";
}

TEST(CrdSchemas, AreLoaded) { EXPECT_EQ(LoadSchemas().size(), 5u); }

TEST(CrdSchemas, AcceptEveryExampleObject) {
  auto schemas = LoadSchemas();
  int checked = 0;
  for (const char* plan : {"clean", "broken"}) {
    for (const auto& f :
         testing_util::ReadManifestDir(fs::path(IPGUARD_SOURCE_DIR) / "examples" / plan)) {
      ASSERT_TRUE(f.status.ok()) << f.status.message();
      for (const auto& d : f.docs) {
        auto errors = Check(schemas, d.json);
        checked += schemas.count(d.json.value("kind", ""));
        for (const auto& err : errors) ADD_FAILURE() << f.path << " #" << d.index << ": " << err;
      }
    }
  }
  EXPECT_GT(checked, 10);
}

TEST(CrdSchemas, AcceptEveryObjectTheWebhookAdmits) {
  auto schemas = LoadSchemas();
  int checked = 0;
  for (const auto& c : testing_util::LoadCases()) {
    if (!c.spec.contains("expect") || !c.spec["expect"].value("allowed", true)) continue;
    if (c.spec.value("operation", "CREATE") == "DELETE" || !c.spec.contains("object")) continue;
    auto errors = Check(schemas, c.spec["object"]);
    checked += schemas.count(c.spec["object"].value("kind", ""));
    for (const auto& err : errors) ADD_FAILURE() << c.file << "/" << c.name << ": " << err;
  }
  EXPECT_GT(checked, 50);
}

TEST(CrdSchemas, RefuseWhatTheSchemaForbids) {
  auto schemas = LoadSchemas();
  json lnet = {
      {"apiVersion", "ipguard.io/v1alpha1"},
      {"kind", "LogicalNetwork"},
      {"metadata", {{"name", "x"}}},
      {"spec",
       {{"vmSwitchName", "sw"}, {"ipAllocationMethod", "Static"}, {"vlanId", 5000}, {"bogus", 1}}}};
  auto errors = Check(schemas, lnet);
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  EXPECT_NE(all.find("spec.vlanId: above maximum"), std::string::npos) << all;
  EXPECT_NE(all.find("unknown field bogus"), std::string::npos) << all;
}

// What server-side apply's list markers make the API server refuse: a repeated item of a
// set, two items of a map list with one key.
TEST(CrdSchemas, RefuseDuplicatesInSetsAndMapLists) {
  auto schemas = LoadSchemas();
  json wlc = {{"apiVersion", "ipguard.io/v1alpha1"},
              {"kind", "WorkloadCluster"},
              {"metadata", {{"name", "x"}, {"namespace", "team-a"}}},
              {"spec",
               {{"logicalNetworkName", "lnet-prod"},
                {"controlPlaneIP", "10.10.0.20"},
                {"nodePools", {{{"name", "a"}, {"count", 1}}, {{"name", "a"}, {"count", 2}}}}}}};
  json ipres = {{"apiVersion", "ipguard.io/v1alpha1"},
                {"kind", "IPReservation"},
                {"metadata", {{"name", "y"}}},
                {"spec", {{"addresses", {"10.10.0.5", "10.10.0.5"}}}}};
  std::string all;
  for (const json& obj : {wlc, ipres}) {
    for (const auto& e : Check(schemas, obj)) all += e + "\n";
  }
  EXPECT_NE(all.find("spec.nodePools: duplicate value {\"name\":\"a\"} in a list of type map"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("spec.addresses: duplicate value \"10.10.0.5\" in a list of type set"),
            std::string::npos)
      << all;
}

}  // namespace
}  // namespace ipguard
