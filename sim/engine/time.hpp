// Simulated time: signed 64-bit integer nanoseconds. Integer time gives a total, platform-independent
// order on events; 2^63 ns is about 292 years of simulated time.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

namespace tailsim {

using SimTime = std::int64_t;  // nanoseconds since the start of a run

inline constexpr SimTime kNsPerSecond = 1'000'000'000;
inline constexpr SimTime kMaxSimTime = std::numeric_limits<SimTime>::max() / 4;  // headroom for sums

// Seconds (double) to integer nanoseconds, rounded to nearest. Monotone non-decreasing, so the maximum of
// converted values is the converted maximum (the fast path relies on this).
inline SimTime seconds_to_ns(double seconds) {
  const double ns = std::nearbyint(seconds * 1e9);
  return ns >= static_cast<double>(kMaxSimTime) ? kMaxSimTime : static_cast<SimTime>(ns);
}
inline double ns_to_seconds(SimTime ns) { return static_cast<double>(ns) * 1e-9; }

}  // namespace tailsim
