// Address parsing must never crash, and whatever parses must print back to
// text that parses to the same value.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto ip = ipguard::ParseIp(text);
  if (ip.ok()) {
    auto again = ipguard::ParseIp(ip->ToString());
    if (!again.ok() || !(*again == *ip)) std::abort();
  }
  auto block = ipguard::ParseBlock(text);
  if (block.ok()) {
    if (block->last().value() < block->first().value()) std::abort();
    auto again = ipguard::ParseBlock(block->ToString());
    if (!again.ok() || !(*again == *block)) std::abort();
    if (block->Size() == 0) std::abort();
  }
  (void)ipguard::ParseCidr(text);
  return 0;
}
