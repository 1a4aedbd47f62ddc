// Exact results for the textbook's bsp workload (shift + lognormal(mu, sigma) workers), by numerical
// integration, shared by the tests of every bsp engine. Written with upper-tail probabilities so that they
// stay exact for K = 10^9, where Phi(z)^K would lose its digits.
#pragma once
#include <cmath>

#include "sim/stats/distribution.hpp"
#include "tests/helpers.hpp"

namespace tailsim::test {

constexpr double kMu = -0.7, kSigma = 0.9, kShift = 1.0;  // the textbook's worker time

// P(max of K workers, each the min of `copies` attempts, <= the worker value at z) = (1 - S(z)^c)^K.
inline double max_cdf_at_z(double k, double z, int copies) {
  const double s = 0.5 * std::erfc(z / std::sqrt(2.0));  // one attempt's survival
  return std::exp(k * std::log1p(-std::pow(s, copies)));
}

// E[max of K]: shift + integral over z of (1 - CDF of the max) e^(mu + sigma z) sigma dz.
inline double exact_mean_max(double k, int copies = 1) {
  return kShift + simpson([&](double z) { return (1.0 - max_cdf_at_z(k, z, copies)) * std::exp(kMu + kSigma * z) * kSigma; },
                          -60, 12, 60000);
}

// The p-quantile of the max: one worker's survival is 1 - p^(1/K), one attempt's its c-th root.
inline double exact_quantile_max(double k, double p, int copies = 1) {
  const double worker_tail = -std::expm1(std::log(p) / k);
  const double attempt_tail = std::pow(worker_tail, 1.0 / copies);
  return kShift + std::exp(kMu - kSigma * normal_quantile(attempt_tail));
}

// Density of the max at x (for the standard error of a sample quantile).
inline double density_max(double k, double x, int copies = 1) {
  const double z = (std::log(x - kShift) - kMu) / kSigma;
  const double f1 = std::exp(-0.5 * z * z) / (std::sqrt(2 * M_PI) * kSigma * (x - kShift));
  const double s1 = 0.5 * std::erfc(z / std::sqrt(2.0));
  const double gdens = copies * std::pow(s1, copies - 1) * f1;
  return k * std::exp((k - 1) * std::log1p(-std::pow(s1, copies))) * gdens;
}

}  // namespace tailsim::test
