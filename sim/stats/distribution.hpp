// Probability distributions, implemented in the project so draws are identical on every standard library.
// Every draw is x = from_uniform(u) for one uniform u in (0, 1). For all but `mixture` from_uniform is the
// quantile function F^-1, monotone in u: then the maximum (or minimum) of several draws can be taken on the
// uniforms and transformed once, which is what makes the bsp fast path cheap. Location and scale
// parameters (value, min, max, mean, stddev, shift, scale) are durations: seconds or "20ms"-style strings.
#pragma once
#include <bit>
#include <cstdint>
#include <functional>
#include <memory>

#include "sim/core/held_bytes.hpp"
#include <string>
#include <vector>

#include "sim/config/json_reader.hpp"
#include "sim/config/registry.hpp"

namespace tailsim {

class Distribution {
 public:
  virtual ~Distribution() = default;
  // A draw from one uniform u in the open interval (0, 1).
  virtual double from_uniform(double u) const = 0;
  // True when from_uniform is non-decreasing in u (it is then the quantile function).
  virtual bool monotone() const { return true; }
  // The value exceeded with probability q in (0, 1]: F^-1(1 - q), computed without forming 1 - q, so it
  // stays exact for the q of 10^-20 that the maximum of 10^12 draws needs (sim/stats/order_statistics.hpp).
  virtual double upper_quantile(double q) const = 0;
  // P(X > x), the survival function (1 - F(x)), accurate in the far tail.
  virtual double survival(double x) const = 0;
  // E[X]; +infinity where it does not exist.
  virtual double mean() const = 0;
  // Smallest and largest values a draw can take (the support), used to validate factors.
  virtual double min_value() const = 0;
  // Counts the bytes this distribution holds besides its own object (an empirical distribution's samples,
  // shared by every point that reads the same file), for the memory estimate (sim/run/limits.hpp).
  virtual void count_held(HeldBytes&) const {}

  // E[min of `copies` independent draws] (copies >= 1), by quadrature of the quantile function
  // against the density of the minimum's uniform, c (1 - u)^(c - 1). Exact for copies == 1.
  double expected_min(int copies) const;
};

using DistributionRegistry = Registry<Distribution>;
const DistributionRegistry& distribution_registry();

// Builds a distribution from a JSON object with a "type" (see `tailsim list distributions`).
std::unique_ptr<Distribution> make_distribution(const JsonReader& node);

// The integral of f over (0, 1), by 10-point Gauss-Legendre on panels that shrink geometrically toward
// both ends, where quantile functions have their singularities (f is never called at 0 or 1).
double integrate_unit_interval(const std::function<double(double)>& f);

// The smallest double x >= 0 with survival(x) <= q: the generalized upper quantile of a non-increasing
// survival function on [0, inf), found by bisection on the bit patterns of doubles (non-negative doubles
// order like their bits), so it is exact to the last bit in at most 64 evaluations.
template <class Survival>
double smallest_with_survival_at_most(Survival survival, double q) {
  if (survival(0.0) <= q) return 0.0;
  std::uint64_t lo = 0, hi = 0x7FF0000000000000ull;  // survival(lo) > q >= survival(hi = +inf) = 0
  while (hi - lo > 1) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (survival(std::bit_cast<double>(mid)) <= q) hi = mid;
    else lo = mid;
  }
  return std::bit_cast<double>(hi);
}

// The standard normal quantile (Wichura's AS 241, relative error about 1e-16).
double normal_quantile(double p);
double normal_cdf(double x);

}  // namespace tailsim
