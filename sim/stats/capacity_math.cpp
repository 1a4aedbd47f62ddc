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
  // L is convex with slope Q(q) <= 1, so a chord over a cell of width 1 / intervals is off by at most
  // 1 / (4 intervals) x the cell's rise of Q.
  l_by_q_.resize(cells + 1);
  slope_by_q_.resize(cells + 1);
  for (std::size_t i = 0; i <= cells; ++i) {
    const double q = static_cast<double>(i) / static_cast<double>(cells);
    l_by_q_[i] = search(q);
    slope_by_q_[i] = slope(std::min(q, std::nextafter(1.0, 0.0)));
  }
}

std::size_t BetaLowerMean::cell(double q) const {
  const auto j = static_cast<std::size_t>(std::upper_bound(cdf_.begin(), cdf_.end(), q) - cdf_.begin()) - 1;
  return std::min(j, cdf_.size() - 2);
}

double BetaLowerMean::search(double q) const {
  if (q <= 0) return 0.0;
  if (q >= 1) return mean_;
  // Inside the cell holding the q-quantile the CDF is taken as linear, so the mass there is at the point's
  // position in the cell.
  const std::size_t j = cell(q);
  const double lo = cdf_[j], hi = cdf_[j + 1];
  const double frac = hi > lo ? (q - lo) / (hi - lo) : 0.0;
  const double cells = static_cast<double>(cdf_.size() - 1);
  const double x = (static_cast<double>(j) + 0.5 * frac) / cells;  // mean score of the part of the cell taken
  return partial_[j] + x * (q - lo);
}

double BetaLowerMean::slope(double q) const {
  const std::size_t j = cell(q);
  const double width = cdf_[j + 1] - cdf_[j];
  return width > 0 ? 1.0 / (static_cast<double>(cdf_.size() - 1) * width) : 0.0;
}

double BetaLowerMean::operator()(double q) const {
  if (q <= 0) return 0.0;
  if (q >= 1) return mean_;
  const double at = q * static_cast<double>(l_by_q_.size() - 1);
  const auto i = std::min(static_cast<std::size_t>(at), l_by_q_.size() - 2);
  const double frac = at - static_cast<double>(i);
  return l_by_q_[i] + frac * (l_by_q_[i + 1] - l_by_q_[i]);
}

double BetaLowerMean::lowest_sum(double n, double m) const {
  if (!(m > 0) || !(n > 0)) return 0.0;
  if (m >= n) return n * mean_;
  const double q = m / n, var = m * (n - m) / (n * n * (n + 1));
  const double at = q * static_cast<double>(slope_by_q_.size() - 1);
  const auto i = std::min(static_cast<std::size_t>(at), slope_by_q_.size() - 2);
  const double frac = at - static_cast<double>(i);
  const double q_slope = slope_by_q_[i] + frac * (slope_by_q_[i + 1] - slope_by_q_[i]);  // Q'(q)
  // The lowest m average at most the mean.
  return std::min(n * ((*this)(q) + 0.5 * var * q_slope), m * mean_);
}

namespace {

// N ~ Hypergeometric(tokens, local, n) over [first, last], its pmf by the ratio of consecutive terms from
// P(N = first) (terms below mean - 12 sd, about 1e-31, are left out).
template <class F>
void for_each_pmf(std::int64_t n, std::int64_t tokens, std::int64_t local, double mean, double sd, F&& f) {
  const std::int64_t lo = std::max<std::int64_t>(0, n - (tokens - local)), hi = std::min(n, local);
  const std::int64_t first = std::max(lo, static_cast<std::int64_t>(std::floor(mean - 12 * sd - 1)));
  const std::int64_t last = std::min(hi, static_cast<std::int64_t>(std::ceil(mean + 12 * sd + 1)));
  const auto lchoose = [](double a, double b) { return std::lgamma(a + 1) - std::lgamma(b + 1) - std::lgamma(a - b + 1); };
  const double t = static_cast<double>(tokens), l = static_cast<double>(local), nd = static_cast<double>(n);
  double x = static_cast<double>(first);
  double pmf = std::exp(lchoose(l, x) + lchoose(t - l, nd - x) - lchoose(t, nd));
  for (std::int64_t i = first; i <= last; ++i, x += 1) {
    f(i, pmf);
    pmf *= (l - x) * (nd - x) / ((x + 1) * (t - l - nd + x + 1));
  }
}

}  // namespace

DeviceShare expected_device_share(std::int64_t n, std::int64_t tokens, std::int64_t local_tokens, std::int64_t c,
                                  const BetaLowerMean* scores) {
  DeviceShare s;
  if (n <= 0 || local_tokens <= 0) return s;
  const double p = static_cast<double>(local_tokens) / static_cast<double>(tokens);
  const double nd = static_cast<double>(n), mean = nd * p, cd = static_cast<double>(c);
  const double var = tokens > 1 ? nd * p * (1 - p) * static_cast<double>(tokens - n) / static_cast<double>(tokens - 1) : 0.0;
  const double sd = std::sqrt(std::max(var, 0.0));
  const auto dropped = [&](double held) { return scores && held > cd ? scores->lowest_sum(held, held - cd) : 0.0; };
  if (var < 50) {
    for_each_pmf(n, tokens, local_tokens, mean, sd, [&](std::int64_t x, double pmf) {
      s.kept += pmf * static_cast<double>(std::min(x, c));
      s.dropped_mass += pmf * dropped(static_cast<double>(x));
    });
    return s;
  }
  // E[min(N, c)] = E[N] - E[(N - c)+] with N ~ Normal(mean, var) and c + 1/2 for continuity.
  const double z = (cd + 0.5 - mean) / sd;
  const double phi = std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI);
  s.kept = mean - (sd * phi - (cd + 0.5 - mean) * 0.5 * std::erfc(z / std::sqrt(2.0)));
  const double from = std::max(cd + 0.5, mean - 8 * sd), to = mean + 8 * sd;
  if (scores && from < to) {
    constexpr int kIntervals = 32;
    const double h = (to - from) / kIntervals;
    for (int i = 0; i <= kIntervals; ++i) {
      const double x = from + i * h, u = (x - mean) / sd;
      const double w = (i == 0 || i == kIntervals ? 1.0 : i % 2 ? 4.0 : 2.0) * h / 3.0;
      s.dropped_mass += w * std::exp(-0.5 * u * u) / (sd * std::sqrt(2 * M_PI)) * dropped(x);
    }
  }
  return s;
}

}  // namespace tailsim
