#include "sim/stats/capacity_math.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "sim/stats/sampling.hpp"

namespace tailsim {

BetaLowerMean::BetaLowerMean(double a, double b, int intervals) {
  if (!(a > 0 && b > 0) || intervals < 2) throw std::invalid_argument("BetaLowerMean: a, b > 0, intervals >= 2");
  const auto cells = static_cast<std::size_t>(intervals);
  cdf_.resize(cells + 1);
  partial_.resize(cells + 1);
  for (std::size_t j = 0; j <= cells; ++j)
    cdf_[j] = regularized_incomplete_beta(a, b, static_cast<double>(j) / static_cast<double>(cells));
  cdf_.front() = 0.0;
  cdf_.back() = 1.0;
  for (std::size_t j = 1; j <= cells; ++j) {
    cdf_[j] = std::max(cdf_[j], cdf_[j - 1]);
    const double mid = (static_cast<double>(j) - 0.5) / static_cast<double>(cells);
    partial_[j] = partial_[j - 1] + mid * (cdf_[j] - cdf_[j - 1]);  // midpoint rule on each cell
  }
  mean_ = partial_.back();
  // Then on a grid of q, so that a call is one interpolation (no search): L is convex with slope Q(q) <= 1,
  // so a chord over a cell of width 1 / intervals is off by at most 1 / (4 intervals) x the cell's rise of Q.
  by_q_.resize(cells + 1);
  for (std::size_t i = 0; i <= cells; ++i) by_q_[i] = search(static_cast<double>(i) / static_cast<double>(cells));
}

double BetaLowerMean::operator()(double q) const {
  if (q <= 0) return 0.0;
  if (q >= 1) return mean_;
  const double at = q * static_cast<double>(by_q_.size() - 1);
  const auto i = std::min(static_cast<std::size_t>(at), by_q_.size() - 2);
  const double frac = at - static_cast<double>(i);
  return by_q_[i] + frac * (by_q_[i + 1] - by_q_[i]);
}

double BetaLowerMean::search(double q) const {
  if (q <= 0) return 0.0;
  if (q >= 1) return mean_;
  // The cell holding the q-quantile; inside it the CDF is taken as linear, so the mass there is at the
  // point's position in the cell.
  const std::size_t j = static_cast<std::size_t>(std::upper_bound(cdf_.begin(), cdf_.end(), q) - cdf_.begin()) - 1;
  const double lo = cdf_[j], hi = cdf_[j + 1];
  const double frac = hi > lo ? (q - lo) / (hi - lo) : 0.0;
  const double cells = static_cast<double>(cdf_.size() - 1);
  const double x = (static_cast<double>(j) + 0.5 * frac) / cells;  // mean score of the part of the cell taken
  return partial_[j] + x * (q - lo);
}

double expected_min_binomial(std::int64_t n, double p, std::int64_t c) {
  if (n <= 0 || c <= 0 || p <= 0) return 0.0;
  if (p >= 1 || c >= n) return static_cast<double>(std::min(n, c));
  const double nd = static_cast<double>(n), mean = nd * p, var = nd * p * (1 - p);
  if (var >= 50) {
    // E[min(X, c)] = E[X] - E[(X - c)+], with X ~ N(mean, var) and c + 1/2 for continuity.
    const double sd = std::sqrt(var), z = (static_cast<double>(c) + 0.5 - mean) / sd;
    const double phi = std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI);
    const double upper = 0.5 * std::erfc(z / std::sqrt(2.0));  // P(Z > z)
    return mean - (sd * phi - (static_cast<double>(c) + 0.5 - mean) * upper);
  }
  // Exact: E[min(X, c)] = sum over x < c of P(X > x) = c - sum_{x < c} P(X <= x). Summed from the pmf, which
  // is negligible below mean - 12 sd (the terms there are added as P(X <= x) = 0).
  const double lp = std::log(p), lq = std::log1p(-p);
  const auto log_pmf = [&](std::int64_t x) {
    const double xd = static_cast<double>(x);
    return std::lgamma(nd + 1) - std::lgamma(xd + 1) - std::lgamma(nd - xd + 1) + xd * lp + (nd - xd) * lq;
  };
  const auto from = std::max<std::int64_t>(0, static_cast<std::int64_t>(mean - 12 * std::sqrt(var) - 2));
  double cdf = 0, kept = static_cast<double>(c);
  for (std::int64_t x = from; x < c; ++x) {
    cdf += std::exp(log_pmf(x));
    if (cdf >= 1.0 - 1e-15) return kept - static_cast<double>(c - x);  // every later term takes 1
    kept -= cdf;
  }
  return kept;
}

}  // namespace tailsim
