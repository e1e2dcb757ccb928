// fake-apiserver: the component tests' fake Kubernetes API server as a
// process, for benchmarks and manual poking with kubectl or curl.
//
//   fake-apiserver [--port N] [--tls-dir DIR] [--token T] [--bookmark-interval-ms N]
//
// With --tls-dir it serves HTTPS with DIR/tls.crt and DIR/tls.key, and when
// DIR/client-ca.crt exists it requires client certificates signed by it.
// Prints the URL on stdout once listening, then serves until SIGTERM or
// SIGINT.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "fakeapi/fake_apiserver.h"

namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

int Usage() {
  std::cerr << "usage: fake-apiserver [--port N] [--tls-dir DIR] [--token T] "
               "[--bookmark-interval-ms N]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  ipguard::fakeapi::FakeApiOptions options;
  std::string tls_dir;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return Usage();
    }
    if (arg == "--port") {
      options.port = std::atoi(value.c_str());
    } else if (arg == "--tls-dir") {
      tls_dir = value;
    } else if (arg == "--token") {
      options.token = value;
    } else if (arg == "--bookmark-interval-ms") {
      options.bookmark_interval = std::chrono::milliseconds(std::atoi(value.c_str()));
    } else {
      return Usage();
    }
  }
  if (!tls_dir.empty()) {
    options.tls = true;
    if (!ReadFile(tls_dir + "/tls.crt", &options.cert_pem) ||
        !ReadFile(tls_dir + "/tls.key", &options.key_pem)) {
      std::cerr << "fake-apiserver: cannot read " << tls_dir << "/tls.crt and tls.key\n";
      return 2;
    }
    ReadFile(tls_dir + "/client-ca.crt", &options.client_ca_pem);
  }

  // Block the signals before any thread starts so that every thread
  // inherits the mask and only sigwait() below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ipguard::fakeapi::FakeApiServer server(options);
  server.AddStandardResources();
  ipguard::Status s = server.Start();
  if (!s.ok()) {
    std::cerr << "fake-apiserver: " << s.message() << "\n";
    return 1;
  }
  std::cout << server.url() << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  server.Stop();
  return 0;
}
