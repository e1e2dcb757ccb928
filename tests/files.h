// Reading files in tests: whole files, and the manifests of a directory.
#ifndef IPGUARD_TESTS_FILES_H_
#define IPGUARD_TESTS_FILES_H_

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/manifest.h"

namespace ipguard::testing_util {

// The whole file; empty when it cannot be read (the caller's assertions on
// the content then fail with the content in view).
inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ManifestFile {
  std::filesystem::path path;
  Status status;  // of splitting the file into documents
  std::vector<Document> docs;
};

// The .yaml files of `dir`, in name order, each split into documents.
inline std::vector<ManifestFile> ReadManifestDir(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> paths;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") paths.push_back(e.path());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<ManifestFile> out;
  for (const auto& p : paths) {
    ManifestFile f{p, Status::Ok(), {}};
    f.status = ParseManifests(ReadFile(p), p.string(), &f.docs);
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace ipguard::testing_util

#endif  // IPGUARD_TESTS_FILES_H_
