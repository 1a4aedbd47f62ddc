// A rank a policy took out of service (`evict`), as workloads report it in their results.
#pragma once
#include <cstdint>

namespace tailsim {

struct Eviction {
  std::int64_t rank = 0;
  std::int64_t step = 0;  // the first step run without it (or with a spare in its place)
  bool spare = false;     // a healthy spare took its place; else its work went to the ranks left
  bool operator==(const Eviction&) const = default;
};

}  // namespace tailsim
