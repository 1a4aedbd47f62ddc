// Random variates built on RngStream and implemented here (never std::*_distribution, whose output differs
// between standard libraries): normal, gamma, beta, Dirichlet, binomial and multinomial. Every sampler is a
// fixed function of the stream's raw draws, so a seed gives the same values on every platform (up to the
// last bit of libm's exp/log, which the slow paths use).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "sim/core/rng.hpp"

namespace tailsim {

// Standard normal by the 256-layer ziggurat (Marsaglia & Tsang 2000, in Doornik's 2005 ZIGNOR form: layer
// index and uniform come from disjoint bits of one raw draw). About 99 % of values cost one raw draw and
// a multiply; the rest take the exact wedge or tail path, so the distribution is exact.
double standard_normal(RngStream& rng);
// Fills `out` with standard normals: the raw draws are taken in bulk (a fixed function of the stream, but
// not the same values as out.size() calls of standard_normal).
void fill_standard_normal(RngStream& rng, std::span<double> out);

// Gamma(shape, scale 1), shape > 0: Marsaglia & Tsang (2000); shape < 1 through Gamma(shape + 1) U^(1/shape).
double standard_gamma(RngStream& rng, double shape);
// Beta(a, b), a, b > 0, as G_a / (G_a + G_b).
double beta_variate(RngStream& rng, double a, double b);
// A Dirichlet(alpha) vector: out[i] = G_i / sum G, with G_i ~ Gamma(alpha[i]); out.size() == alpha.size().
void dirichlet(RngStream& rng, std::span<const double> alpha, std::span<double> out);
// Symmetric Dirichlet(alpha, ..., alpha) of dimension out.size().
void symmetric_dirichlet(RngStream& rng, double alpha, std::span<double> out);

// Binomial(n, p), n >= 0, p in [0, 1]. With q = min(p, 1 - p) and mean m = n q:
//  - m < kBinomialInversionMean: exact inversion of the CDF (sequential search from 0, about m + 1 steps);
//  - otherwise a normal approximation with the Cornish-Fisher correction for the binomial's skewness,
//    rounded to the nearest integer and clamped to [0, n]. Its total-variation distance from the exact
//    binomial is at most 2.5e-3 at the switch-over (m = 16), 1.2e-3 at m = 32, 8e-4 at m = 50 and 1e-4 at
//    m = 200 (tests/stats/sampling_test.cpp computes it exactly); mean and variance are right to O(1 / m).
inline constexpr double kBinomialInversionMean = 16.0;
std::int64_t binomial(RngStream& rng, std::int64_t n, double p);

// Multinomial(n, weights / sum(weights)) by sequential conditional binomials: counts[0] ~ Bin(n, w0 / W),
// counts[1] ~ Bin(n - counts[0], w1 / (W - w0)), ... Weights are >= 0 with a positive sum when n > 0.
// Exact in distribution whenever each binomial is (see binomial()).
void multinomial(RngStream& rng, std::int64_t n, std::span<const double> weights, std::span<std::int64_t> counts);

// The same multinomial by conditional binomials on a binary tree over the categories: the count of a node
// is split between its two halves by Bin(count, weight(left) / weight(node)), with the same binomial
// approximation as binomial(). The chain of dependent draws is log2(categories) long instead of
// `categories`, and the splits of one level form a loop of independent arithmetic that vectorizes: about
// 3x faster than multinomial() for 256 categories (~9 ns per split). Holds its scratch space, so sample()
// does not allocate.
class MultinomialTree {
 public:
  explicit MultinomialTree(std::size_t categories);
  std::size_t categories() const { return categories_; }
  // counts.size() == weights.size() == categories(); sum(counts) == n; 0 <= n <= 2^52.
  void sample(RngStream& rng, std::int64_t n, std::span<const double> weights, std::span<std::int64_t> counts);

 private:
  std::size_t categories_;
  std::size_t leaves_;              // categories rounded up to a power of two
  std::vector<double> weight_;  // node weights, heap order: node i has children 2i and 2i + 1
  std::vector<double> count_;   // node counts (exact integers), same layout
  // Per split node (index 1 .. leaves - 1), scratch of one sample() call:
  std::vector<std::uint64_t> raw_;  // its raw draw (the inversion's uniform or the normal's)
  std::vector<double> p_, normal_;  // the left share; a standard normal from raw_
};

// The regularized incomplete beta function I_x(a, b) (continued fraction, relative error about 1e-14).
double regularized_incomplete_beta(double a, double b, double x);

// The quantile function of Beta(a, b): the CDF is tabulated on `intervals` equal steps of x and inverted by
// linear interpolation, with a guide table (Chen & Asau 1974) so that from_uniform(u) is a lookup and a
// step or two of search: a few nanoseconds, within 1 / intervals of the exact quantile.
class BetaQuantileTable {
 public:
  BetaQuantileTable(double a, double b, int intervals = 4096);
  double from_uniform(double u) const;
  double a() const { return a_; }
  double b() const { return b_; }

 private:
  double a_, b_;
  std::vector<double> cdf_;     // cdf_[j] = I_{j / intervals}(a, b), non-decreasing, cdf_[0] = 0, back() = 1
  std::vector<int> guide_;      // guide_[i]: the last j with cdf_[j] <= i / guide_.size()
};

}  // namespace tailsim
