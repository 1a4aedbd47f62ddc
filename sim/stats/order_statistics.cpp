#include "sim/stats/order_statistics.hpp"

namespace tailsim {

void top_upper_tails(std::span<const double> u, double n, std::span<double> tails) {
  // log of the j-th largest uniform, accumulated: exact sums of small negatives, turned into a tail by
  // expm1 at the end, so a tail of 10^-20 keeps its digits.
  double log_value = 0;
  for (std::size_t j = 0; j < tails.size(); ++j) {
    log_value += std::log(u[j]) / (n - static_cast<double>(j));
    tails[j] = -std::expm1(log_value);
  }
}

WorkerLaw::WorkerLaw(const Distribution& compute, double factor, int copies)
    : compute_(compute), factor_(factor), copies_(copies) {
  if (copies == 1) {
    mean_ = factor * compute.mean();
  } else if (factor == 1.0 && compute.monotone()) {
    mean_ = compute.expected_min(copies);
  } else {
    // E[W] = integral over q in (0, 1) of W's upper quantile at q.
    mean_ = integrate_unit_interval([this](double q) { return upper_quantile(q); });
  }
}

double WorkerLaw::upper_quantile(double q) const {
  if (copies_ == 1) return factor_ * compute_.upper_quantile(q);
  // S(t)^c = q: the survival of one attempt is q^(1/c), exact for small q.
  if (factor_ == 1.0) return compute_.upper_quantile(std::exp(std::log(q) / copies_));
  return smallest_with_survival_at_most([this](double t) { return survival(t); }, q);
}

double WorkerLaw::survival(double t) const {
  double s = compute_.survival(t / factor_);
  for (int a = 1; a < copies_; ++a) s *= compute_.survival(t);
  return s;
}

}  // namespace tailsim
