#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "sim/core/compensated_sum.hpp"
#include "sim/core/rng.hpp"
#include "sim/stats/summary.hpp"

namespace tailsim {

TEST_CASE("quantiles interpolate linearly between order statistics like numpy.percentile") {
  // numpy.percentile([1, 2, 3, 4, 10], [50, 90, 99]) == [3.0, 7.6, 9.76]
  const std::vector<double> sorted = {1, 2, 3, 4, 10};
  CHECK(quantile_sorted(sorted, 0.5) == doctest::Approx(3.0));
  CHECK(quantile_sorted(sorted, 0.9) == doctest::Approx(7.6));
  CHECK(quantile_sorted(sorted, 0.99) == doctest::Approx(9.76));
}

TEST_CASE("a step-time summary reports mean, sample stddev, CI and quantiles in seconds") {
  const std::vector<SimTime> ns = {4'000'000'000, 1'000'000'000, 3'000'000'000, 2'000'000'000};
  const StepTimeSummary s = summarize_steps(ns);
  CHECK(s.count == 4);
  CHECK(s.mean == doctest::Approx(2.5));
  CHECK(s.stddev == doctest::Approx(std::sqrt(5.0 / 3.0)));
  CHECK(s.ci95_low == doctest::Approx(2.5 - 1.959963984540054 * std::sqrt(5.0 / 3.0) / 2));
  CHECK(s.p50 == doctest::Approx(2.5));
  CHECK(s.max == doctest::Approx(4.0));
}

TEST_CASE("compensated sums of 10^8 terms keep every digit a plain sum loses") {
  // 0.1 is not a binary fraction: a plain double sum of 10^8 of them is off by about 1.5e-8 relative; the
  // compensated sum is within an ulp of the correctly rounded 1e7.
  CompensatedSum sum;
  double plain = 0;
  for (int i = 0; i < 100000000; ++i) {
    sum += 0.1;
    plain += 0.1;
  }
  CHECK(std::fabs(plain - 1e7) > 1e-2);
  CHECK(std::fabs(static_cast<double>(sum) - 1e7) <= 2e-9);
  CompensatedSum a, b;  // merged halves equal the whole
  for (int i = 0; i < 1000; ++i) (i % 2 ? a : b) += 1e-3 * i;
  a += b;
  CHECK(static_cast<double>(a) == doctest::Approx(499.5).epsilon(1e-15));
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("large step-time lists (radix sorted) summarize exactly as a std::sort reference does") {
  // Values spread over all eight bytes and both signs, with ties, and a list whose high bytes are all equal
  // (the passes that are skipped).
  RngStream rng(5, "summary/radix", 0);
  for (const std::uint64_t mask : {~std::uint64_t{0}, std::uint64_t{0xFFFFFFF}, std::uint64_t{0x3FF}}) {
    std::vector<SimTime> values(100'003);
    for (SimTime& v : values) v = static_cast<SimTime>(rng.next() & mask);
    std::vector<SimTime> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    std::vector<double> seconds(sorted.size());
    std::transform(sorted.begin(), sorted.end(), seconds.begin(), [](SimTime v) { return ns_to_seconds(v); });
    const StepTimeSummary s = summarize_steps(values);
    CHECK(s.p50 == quantile_sorted(seconds, 0.50));
    CHECK(s.p90 == quantile_sorted(seconds, 0.90));
    CHECK(s.p99 == quantile_sorted(seconds, 0.99));
    CHECK(s.p999 == quantile_sorted(seconds, 0.999));
    CHECK(s.max == seconds.back());
  }
}

}  // namespace tailsim
