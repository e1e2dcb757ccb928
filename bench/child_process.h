// The built `ipguard` run as a child process by the benchmarks: wall time
// and the child's own peak RSS (wait4), stdout to /dev/null.
//
// A child forked from a benchmark that holds a large plan would count the
// benchmark's pages in its peak until its exec, so RunChild runs it from a
// fresh, small copy of the benchmark program (`<self> --run-child ...`),
// which main hands to MaybeRunChild first thing.
#ifndef IPGUARD_BENCH_CHILD_PROCESS_H_
#define IPGUARD_BENCH_CHILD_PROCESS_H_

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace ipguard::bench {

// A child that outgrows these is stopped and reported, not waited for: the
// machine is shared.
constexpr double kChildTimeoutSeconds = 120;
constexpr rlim_t kChildAddressSpaceLimit = rlim_t{4} << 30;

struct ChildRun {
  double seconds = 0;
  long peak_rss_kb = 0;
  std::string outcome;  // "exit N", or what stopped it
};

// `binary args...` forked from this process, stdout (and, with quiet,
// stderr) to /dev/null, waited for with wait4.
inline ChildRun RunChildHere(const std::string& binary, const std::vector<std::string>& args,
                             bool quiet) {
  ChildRun r;
  std::fflush(stdout);  // or the child's stdio would write our buffer again
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit limit {
      kChildAddressSpaceLimit, kChildAddressSpaceLimit
    };
    setrlimit(RLIMIT_AS, &limit);
    if (!std::freopen("/dev/null", "w", stdout)) _exit(127);
    if (quiet && !std::freopen("/dev/null", "w", stderr)) _exit(127);
    std::vector<char*> argv{const_cast<char*>(binary.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  bool killed = false;
  while (wait4(pid, &status, WNOHANG, &usage) == 0) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() >
        kChildTimeoutSeconds) {
      kill(pid, SIGKILL);
      killed = true;
      wait4(pid, &status, 0, &usage);
      break;
    }
    usleep(2000);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.peak_rss_kb = usage.ru_maxrss;
  if (killed) {
    r.outcome = "timeout";
  } else if (WIFEXITED(status)) {
    r.outcome = "exit " + std::to_string(WEXITSTATUS(status));
  } else {
    r.outcome = "signal " + std::to_string(WTERMSIG(status));
  }
  return r;
}

// `s` in single quotes for the shell.
inline std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// RunChildHere in a fresh copy of this program, its figures read back.
inline ChildRun RunChild(const std::string& binary, const std::vector<std::string>& args,
                         bool quiet) {
  ChildRun r{0, 0, "--run-child failed"};
  std::string cmd = ShellQuote(std::filesystem::canonical("/proc/self/exe").string()) +
                    " --run-child " + (quiet ? "quiet " : "loud ") + ShellQuote(binary);
  for (const auto& a : args) cmd += " " + ShellQuote(a);
  std::fflush(stdout);
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char outcome[64] = {0};
  if (std::fscanf(p, "%lf %ld %63[^\n]", &r.seconds, &r.peak_rss_kb, outcome) == 3) {
    r.outcome = outcome;
  }
  pclose(p);
  return r;
}

// First thing in main: when this process is RunChild's fresh copy, runs the
// child, prints its figures and returns true (main then returns 0).
inline bool MaybeRunChild(int argc, char** argv) {
  if (argc < 4 || std::string(argv[1]) != "--run-child") return false;
  std::vector<std::string> args(argv + 4, argv + argc);
  ChildRun r = RunChildHere(argv[3], args, std::string(argv[2]) == "quiet");
  std::printf("%f %ld %s\n", r.seconds, r.peak_rss_kb, r.outcome.c_str());
  return true;
}

}  // namespace ipguard::bench

#endif  // IPGUARD_BENCH_CHILD_PROCESS_H_
