#include "sim/workload/bsp_speculation.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "sim/stats/order_statistics.hpp"
#include "sim/stats/sampling.hpp"

namespace tailsim {

namespace {

constexpr int kSamples = 8;  // tasks sampled per step on each side of the quorum, for busy and extra work

}  // namespace

ExactSpeculation::ExactSpeculation(const Distribution& compute, std::int64_t n, const BspOrderForm::Speculation& form,
                                   std::uint64_t seed, std::uint64_t replication)
    : compute_(compute), n_(n), quorum_(speculation_quorum(form.quantile, n)), multiplier_(form.multiplier),
      quorum_stream_(seed, "bsp/order_statistics/quorum/" + std::to_string(quorum_), replication),
      sample_stream_(seed, "bsp/order_statistics/quorum/" + std::to_string(quorum_) + "/tasks", replication) {}

double ExactSpeculation::lower_quantile(double u) const {
  return compute_.monotone() ? compute_.from_uniform(u) : compute_.upper_quantile(1.0 - u);
}

// The median of the Q finished tasks (ns; the mean of the two middle ones for an even Q), given the
// quorum's uniform `below` = U_(Q) and its duration.
double ExactSpeculation::median_ns(double below, SimTime t_quorum) {
  const double q = static_cast<double>(quorum_);
  if (quorum_ == 1) return static_cast<double>(t_quorum);
  if (quorum_ % 2 == 1) {  // the j-th smallest of the Q - 1 below U_(Q): U_(Q) x Beta(j, Q - j)
    const double j = static_cast<double>((quorum_ + 1) / 2);
    return static_cast<double>(seconds_to_ns(lower_quantile(below * beta_variate(quorum_stream_, j, q - j))));
  }
  const double j = static_cast<double>(quorum_ / 2);  // the j-th and (j + 1)-th smallest of Q
  const bool upper_is_quorum = quorum_ == 2;
  const double upper = upper_is_quorum ? below : below * beta_variate(quorum_stream_, j + 1, q - j - 1);
  const double lower = upper * std::pow(quorum_stream_.uniform(), 1.0 / j);  // the largest of j below it
  const SimTime hi = upper_is_quorum ? t_quorum : seconds_to_ns(lower_quantile(upper));
  return 0.5 * (static_cast<double>(seconds_to_ns(lower_quantile(lower))) + static_cast<double>(hi));
}

BspStepResult ExactSpeculation::step(double u_largest) {
  const double q = static_cast<double>(quorum_), rest = static_cast<double>(n_ - quorum_);
  // The quorum's uniform U_(Q) ~ Beta(Q, n - Q + 1), and its upper tail 1 - U_(Q), kept exact.
  const double ga = standard_gamma(quorum_stream_, q), gb = standard_gamma(quorum_stream_, rest + 1);
  const double below = ga / (ga + gb), tail = gb / (ga + gb);
  const SimTime t_quorum = seconds_to_ns(compute_.upper_quantile(tail));
  // The launch time as the other engines compute it (backup.cpp): no earlier than the quorum's arrival.
  const SimTime launch = std::max(t_quorum, static_cast<SimTime>(std::llround(multiplier_ * median_ns(below, t_quorum))));
  const double launch_s = ns_to_seconds(launch);
  BspStepResult r;
  r.step_ns = t_quorum;
  if (n_ > quorum_) {
    const auto survival = [&](double z) {
      const double s = std::min(1.0, compute_.survival(z) / tail);
      return z < launch_s ? s : s * compute_.survival(z - launch_s);
    };
    const double z = smallest_with_survival_at_most(survival, max_upper_tail(u_largest, rest));
    r.step_ns = std::max(t_quorum, seconds_to_ns(z));
  }
  // Busy and extra work: the Q - 1 before the quorum and the n - Q after it, each side's sum estimated from
  // kSamples tasks of its conditional law (a fixed number of draws a step).
  double before_sum = 0, after_sum = 0, extra_sum = 0;
  for (int i = 0; i < kSamples; ++i) {
    before_sum += lower_quantile(below * sample_stream_.uniform());
    const double t = compute_.upper_quantile(tail * sample_stream_.uniform());
    const double backup = lower_quantile(sample_stream_.uniform());
    const double finish = t <= launch_s ? t : std::min(t, launch_s + backup);
    after_sum += finish;
    if (t > launch_s) extra_sum += finish - launch_s;
  }
  r.busy_s = ns_to_seconds(t_quorum) + (q - 1) * before_sum / kSamples + rest * after_sum / kSamples;
  r.extra_s = rest * extra_sum / kSamples;
  return r;
}

}  // namespace tailsim
