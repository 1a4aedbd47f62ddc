// Simulated time: signed 64-bit integer nanoseconds. Integer time gives a total, platform-independent
// order on events; 2^63 ns is about 292 years of simulated time.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace tailsim {

using SimTime = std::int64_t;  // nanoseconds since the start of a run

inline constexpr SimTime kNsPerSecond = 1'000'000'000;
inline constexpr SimTime kMaxSimTime = std::numeric_limits<SimTime>::max() / 4;  // headroom for sums

// A duration or time the integer clock cannot hold (about 73 years, kMaxSimTime), or not a number: a heavy
// tail (pareto with shape <= 1, say) or an absurd input, reported as such instead of wrapping around.
class ClockOverflow : public std::overflow_error {
 public:
  using std::overflow_error::overflow_error;
};

std::string clock_overflow_message(double seconds);

// Seconds (double) to integer nanoseconds, rounded to nearest. Monotone non-decreasing, so the maximum of
// converted values is the converted maximum (the fast path relies on this). Throws ClockOverflow beyond
// +-kMaxSimTime and for NaN.
inline SimTime seconds_to_ns(double seconds) {
  const double ns = std::nearbyint(seconds * 1e9);
  if (!(std::fabs(ns) <= static_cast<double>(kMaxSimTime)))
    throw ClockOverflow(clock_overflow_message(seconds));
  return static_cast<SimTime>(ns);
}
inline double ns_to_seconds(SimTime ns) { return static_cast<double>(ns) * 1e-9; }

}  // namespace tailsim
