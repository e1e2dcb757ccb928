// AllocationBudget: caps what the current thread may allocate with operator
// new while it is alive, so a third-party parser that loops allocating on
// malformed input (yaml-cpp 0.7 does, on inputs the fuzzer found) throws
// std::bad_alloc instead of taking the machine's memory.
//
// Counts bytes requested, not bytes live: a parse that allocates more than
// the budget in total is stopped. Budgets nest; the innermost one counts.
#ifndef IPGUARD_CORE_ALLOC_BUDGET_H_
#define IPGUARD_CORE_ALLOC_BUDGET_H_

#include <cstddef>

namespace ipguard {

class AllocationBudget {
 public:
  explicit AllocationBudget(size_t bytes);
  ~AllocationBudget();
  AllocationBudget(const AllocationBudget&) = delete;
  AllocationBudget& operator=(const AllocationBudget&) = delete;

  bool exceeded() const { return exceeded_; }

 private:
  friend void* BudgetedAllocate(size_t n);
  size_t left_;
  bool exceeded_ = false;
  AllocationBudget* outer_;
};

}  // namespace ipguard

#endif  // IPGUARD_CORE_ALLOC_BUDGET_H_
