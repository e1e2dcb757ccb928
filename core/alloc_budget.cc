#include "core/alloc_budget.h"

#include <cstdlib>
#include <new>

namespace ipguard {
namespace {
thread_local AllocationBudget* current = nullptr;
}  // namespace

AllocationBudget::AllocationBudget(size_t bytes) : left_(bytes), outer_(current) { current = this; }
AllocationBudget::~AllocationBudget() { current = outer_; }

void* BudgetedAllocate(size_t n) {
  if (AllocationBudget* b = current) {
    if (n > b->left_) {
      b->exceeded_ = true;
      throw std::bad_alloc();
    }
    b->left_ -= n;
  }
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace ipguard

// The replaceable global allocation functions ([new.delete]); the aligned
// forms keep the standard library's own definitions.
void* operator new(std::size_t n) { return ipguard::BudgetedAllocate(n); }
void* operator new[](std::size_t n) { return ipguard::BudgetedAllocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return ipguard::BudgetedAllocate(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return ipguard::BudgetedAllocate(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
