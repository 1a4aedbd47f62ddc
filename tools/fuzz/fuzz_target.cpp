// One libFuzzer target per reader: built four times with TAILSIM_FUZZ_ENTRY naming an entry point of
// fuzz_entry.hpp (CMake option TAILSIM_FUZZ; see tools/fuzz/run).
#include <cstddef>
#include <cstdint>

#include "tools/fuzz/fuzz_entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tailsim::fuzz::TAILSIM_FUZZ_ENTRY(data, size);
  return 0;
}
