// Summary statistics of a sample of step times: exact quantiles (numpy's default "linear" method) and a
// normal-approximation 95% confidence interval of the mean.
#pragma once
#include <cstdint>
#include <vector>

#include "sim/core/time.hpp"

namespace tailsim {

struct StepTimeSummary {
  std::int64_t count = 0;
  double mean = 0, stddev = 0, ci95_low = 0, ci95_high = 0;  // seconds
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;        // seconds
};

// `values` is taken by value: it is partially reordered to find the quantiles.
StepTimeSummary summarize_steps(std::vector<SimTime> values);

// The q-quantile (0 <= q <= 1) of sorted values by linear interpolation between order statistics
// (Hyndman and Fan type 7, numpy.percentile's default).
double quantile_sorted(const std::vector<double>& sorted, double q);

}  // namespace tailsim
