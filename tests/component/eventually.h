// Eventually(): polls a condition until it holds or a deadline passes, for
// component tests that wait on other threads and processes (never a timed
// assertion: the deadline only bounds a failure).
#ifndef IPGUARD_TESTS_COMPONENT_EVENTUALLY_H_
#define IPGUARD_TESTS_COMPONENT_EVENTUALLY_H_

#include <chrono>
#include <thread>

namespace ipguard::testing_util {

template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(15000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

}  // namespace ipguard::testing_util

#endif  // IPGUARD_TESTS_COMPONENT_EVENTUALLY_H_
