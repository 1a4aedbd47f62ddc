// Expectations that capacity-limited MoE policies need without per-token work (sim/policy/capacity.cpp):
// the gate mass of the lowest-scored tokens of an expert, and the tokens a per-device cap keeps.
#pragma once
#include <cstdint>
#include <vector>

namespace tailsim {

// The lower partial mean of a Beta(a, b) score: L(q) = integral of Q(u) over [0, q], Q the quantile function.
// Of n iid scores, the lowest m sum to about n L(m / n) (exact as n grows; the sum of a sample's lowest
// order statistics converges to it). Tabulated once, on a grid of the score and from it on a grid of q, so a
// call is one linear interpolation.
class BetaLowerMean {
 public:
  BetaLowerMean(double a, double b, int intervals = 4096);
  double operator()(double q) const;  // q in [0, 1]; L(1) is the mean a / (a + b)
  double mean() const { return mean_; }

 private:
  std::vector<double> cdf_;      // F(j / intervals)
  std::vector<double> partial_;  // integral of x dF(x) over [0, j / intervals]
  std::vector<double> by_q_;     // L(i / intervals)
  double mean_ = 0;
  double search(double q) const;  // L(q) from the score grid
};

// E[min(X, c)] for X ~ Binomial(n, p): the tokens an expert keeps from one source device that caps it at c.
// Exact summation where the variance is small; a normal approximation with continuity correction beyond
// (variance >= 50, where its error is below 0.1 % of the standard deviation's scale).
double expected_min_binomial(std::int64_t n, double p, std::int64_t c);

}  // namespace tailsim
