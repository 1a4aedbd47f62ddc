// Memory that the built parts of a scenario hold for a whole run (samples, traces, cost tables), for the
// memory estimate (sim/run/limits.hpp). Data shared between sweep points (a samples file every point
// resamples, parsed once per run) is counted once, the first time its owner is met.
#pragma once
#include <cstdint>
#include <unordered_set>

namespace tailsim {

class HeldBytes {
 public:
  // Bytes owned by one object alone.
  void add(std::uint64_t bytes) { total_ += bytes; }
  // Bytes of `data`, which several objects may share: counted once.
  void add_shared(const void* data, std::uint64_t bytes) {
    if (seen_.insert(data).second) total_ += bytes;
  }
  std::uint64_t total() const { return total_; }

 private:
  std::unordered_set<const void*> seen_;
  std::uint64_t total_ = 0;
};

}  // namespace tailsim
