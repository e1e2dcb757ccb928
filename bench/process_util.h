// Helpers of the scenario benchmarks that run the manager as a child process.
#ifndef IPGUARD_BENCH_PROCESS_UTIL_H_
#define IPGUARD_BENCH_PROCESS_UTIL_H_

#include <sys/types.h>

#include <boost/asio.hpp>
#include <fstream>
#include <string>

namespace ipguard::bench {

// A field of /proc/PID/status in kB ("VmHWM:" is the peak RSS); -1 when absent.
inline long ProcStatusKb(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::string(field).size()));
  }
  return -1;
}

// A TCP port on 127.0.0.1 that nothing listened on a moment ago.
inline int FreePort() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acc(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return acc.local_endpoint().port();
}

}  // namespace ipguard::bench

#endif  // IPGUARD_BENCH_PROCESS_UTIL_H_
