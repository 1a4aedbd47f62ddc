// Exact order statistics of groups of iid workers, for the bsp workload's order_statistics engine. A group
// of n workers whose times share one law has, each step, a maximum whose law is known: if U ~ Uniform(0,1)
// then W^-1(U^(1/n)) is distributed as the largest of n draws from W. Everything here works with upper-tail
// probabilities q = 1 - U^(1/n) instead of U^(1/n) itself, so that n = 10^12 loses no digits (U^(1/n) would
// round to 1), and with quantile functions written for such q (Distribution::upper_quantile).
#pragma once
#include <cmath>
#include <span>

#include "sim/stats/distribution.hpp"

namespace tailsim {

// The upper-tail probability 1 - u^(1/n) of the largest of n iid uniforms, drawn from one uniform u in (0, 1).
inline double max_upper_tail(double u, double n) { return -std::expm1(std::log(u) / n); }

// The k = tails.size() largest of n iid uniforms (k <= n), from k independent uniforms `u` (the Rényi
// representation: the largest is u_1^(1/n), the j-th largest the (j-1)-th times u_j^(1/(n-j+1))); writes
// their upper-tail probabilities, largest value (smallest tail) first. tails[0] = max_upper_tail(u[0], n).
void top_upper_tails(std::span<const double> u, double n, std::span<double> tails);

// One worker of a group: its time is the first to finish of `copies` attempts, each a draw from `compute`;
// the primary runs on the worker's GPU (slowdown `factor`), the others on spare healthy GPUs (factor 1).
// Survival: S(t / factor) x S(t)^(copies - 1).
class WorkerLaw {
 public:
  WorkerLaw(const Distribution& compute, double factor, int copies);
  // The worker time (seconds) exceeded with probability q in (0, 1]. Closed form where the attempts are
  // alike (factor x F^-1(1 - q) with one copy; F^-1(1 - q^(1/c)) on healthy GPUs); the survival function
  // inverted to the last bit of a double where they are not (copies on a slow GPU).
  double upper_quantile(double q) const;
  // P(worker time > t).
  double survival(double t) const;
  // E[worker time] (seconds; +infinity where it does not exist).
  double mean() const { return mean_; }

 private:
  const Distribution& compute_;
  double factor_;
  int copies_;
  double mean_ = 0;
};

}  // namespace tailsim
