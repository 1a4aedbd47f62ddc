// Spark-style speculation (`backup` with `quantile`) for the order_statistics engine, on one group of iid
// healthy workers, exact in law in O(1) per step whatever K is (docs/order-statistics.md):
//  1. the quorum's arrival, the Q-th smallest of n uniforms, is Beta(Q, n - Q + 1) (a ratio of gammas);
//  2. given it, the Q - 1 earlier ones are uniform below it: the median's order statistics are Beta
//     fractions of it (the lower middle one of an even Q is the upper times W^(1/j));
//  3. given the launch time L, each of the n - Q later tasks ends at Z = T if T <= L, else min(T, L + B),
//     with survival S(z) S(z - L) / S(t_Q) beyond L: the step is the largest of n - Q iid Z, one uniform
//     (the group's, shared with the other policies) and one bisection.
// Busy and extra work are unbiased estimates from a few tasks sampled from their conditional laws.
#pragma once
#include <cstdint>

#include "sim/core/rng.hpp"
#include "sim/policy/bsp_policy.hpp"
#include "sim/stats/distribution.hpp"

namespace tailsim {

class ExactSpeculation {
 public:
  // `n` workers drawn from `compute` (factor 1); streams seeded from (seed, replication) and named by the
  // quorum, so that two such policies with the same quorum share their draws.
  ExactSpeculation(const Distribution& compute, std::int64_t n, const BspOrderForm::Speculation& form,
                   std::uint64_t seed, std::uint64_t replication);
  // One step, given the uniform of the group's largest worker this step.
  BspStepResult step(double u_largest);

 private:
  double lower_quantile(double u) const;  // F^-1(u), for mixtures through their survival function
  double median_ns(double below, SimTime t_quorum);

  const Distribution& compute_;
  std::int64_t n_, quorum_;
  double multiplier_;
  RngStream quorum_stream_, sample_stream_;
};

}  // namespace tailsim
