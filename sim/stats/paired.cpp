#include "sim/stats/paired.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "sim/core/bytes.hpp"
#include "sim/stats/sampling.hpp"

namespace tailsim {

namespace {

// Batches in all, over a point's replications (Schmeiser 1982: from 10 to 30 or so).
constexpr std::int64_t kTargetBatches = 32;

// A batch, or neighbouring batches merged, of one replication.
struct Group {
  double x = 0, y = 0;  // baseline and policy step-time sums, ns
  std::size_t replication = 0;
};

// Merges neighbouring groups of each replication in pairs (an odd last one stays alone).
std::vector<Group> halve(const std::vector<Group>& groups) {
  std::vector<Group> out;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    Group g = groups[i];
    if (i + 1 < groups.size() && groups[i + 1].replication == g.replication) {
      g.x += groups[i + 1].x;
      g.y += groups[i + 1].y;
      ++i;
    }
    out.push_back(g);
  }
  return out;
}

}  // namespace

StepBatches::StepBatches(std::int64_t steps, std::int64_t batches)
    : sums_(static_cast<std::size_t>(std::max<std::int64_t>(1, batches)), 0), starts_{0}, steps_(steps) {
  if (steps < 1 || batches < 1 || batches > steps)
    throw std::invalid_argument("StepBatches: expected 1 <= batches <= steps, got " +
                                std::to_string(batches) + " batches of " + std::to_string(steps) + " steps");
}

std::int64_t StepBatches::plan(std::int64_t steps, std::int64_t replications) {
  if (steps < 1) return 0;
  const std::int64_t per = (kTargetBatches + replications - 1) / std::max<std::int64_t>(1, replications);
  return std::max<std::int64_t>(1, std::min(steps, per));
}

void StepBatches::add(SimTime step_ns) {
  if (sums_.empty()) return;  // not batched (a tally made without a plan)
  // Step i of n goes to batch floor(i b / n): contiguous batches whose sizes differ by one at most.
  const auto b = static_cast<std::int64_t>(sums_.size() - starts_.back());
  const std::int64_t i = std::min(added_, steps_ - 1);
  sums_[starts_.back() + static_cast<std::size_t>(static_cast<Int128>(i) * b / steps_)] += step_ns;
  ++added_;
}

void StepBatches::merge(const StepBatches& other) {
  const auto offset = static_cast<std::uint32_t>(sums_.size());
  for (const std::uint32_t s : other.starts_) starts_.push_back(offset + s);
  sums_.insert(sums_.end(), other.sums_.begin(), other.sums_.end());
  steps_ = other.steps_;
  added_ = other.added_;
}

void StepBatches::serialize(std::string& out) const {
  put_bytes(out, static_cast<std::uint64_t>(sums_.size()));
  for (const Int128 s : sums_) put_bytes(out, s);
  put_bytes(out, static_cast<std::uint64_t>(starts_.size()));
  for (const std::uint32_t s : starts_) put_bytes(out, s);
  put_bytes(out, steps_);
  put_bytes(out, added_);
}

StepBatches StepBatches::deserialize(const std::string& in, std::size_t& pos) {
  StepBatches b;
  b.sums_.resize(take_bytes<std::uint64_t>(in, pos));
  for (Int128& s : b.sums_) s = take_bytes<Int128>(in, pos);
  b.starts_.resize(take_bytes<std::uint64_t>(in, pos));
  for (std::uint32_t& s : b.starts_) s = take_bytes<std::uint32_t>(in, pos);
  b.steps_ = take_bytes<std::int64_t>(in, pos);
  b.added_ = take_bytes<std::int64_t>(in, pos);
  return b;
}

std::optional<PairedSpeedup> paired_speedup(const StepBatches& baseline, const StepBatches& policy) {
  if (baseline.sums().size() != policy.sums().size() ||
      baseline.replication_starts() != policy.replication_starts())
    throw std::logic_error("paired_speedup: the two policies' step times were not batched alike");
  StepBatches::Int128 total_x = 0, total_y = 0;
  std::vector<Group> groups(baseline.sums().size());
  const auto& starts = baseline.replication_starts();
  for (std::size_t b = 0, r = 0; b < groups.size(); ++b) {
    while (r + 1 < starts.size() && starts[r + 1] <= b) ++r;
    groups[b] = {static_cast<double>(baseline.sums()[b]), static_cast<double>(policy.sums()[b]), r};
    total_x += baseline.sums()[b];
    total_y += policy.sums()[b];
  }
  if (total_y <= 0) return std::nullopt;
  PairedSpeedup out;
  const double sum_y = static_cast<double>(total_y);
  out.speedup = static_cast<double>(total_x) / sum_y;
  // Residuals D_b; merge neighbours while they are significantly correlated (see the header).
  double squares = 0;
  for (;;) {
    squares = 0;
    double lag = 0;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const double d = groups[g].x - out.speedup * groups[g].y;
      squares += d * d;
      if (g + 1 < groups.size() && groups[g + 1].replication == groups[g].replication)
        lag += d * (groups[g + 1].x - out.speedup * groups[g + 1].y);
    }
    const auto count = static_cast<double>(groups.size());
    const bool correlated = squares > 0 && lag / squares > 1.645 / std::sqrt(count);
    std::vector<Group> merged = correlated ? halve(groups) : std::vector<Group>{};
    if (merged.empty() || merged.size() == groups.size() || merged.size() < 2) break;
    groups = std::move(merged);
  }
  out.batches = static_cast<std::int64_t>(groups.size());
  if (groups.size() < 2) return out;
  const auto b = static_cast<double>(groups.size());
  const double half = student_t_quantile(0.975, b - 1) * std::sqrt(b / (b - 1) * squares) / sum_y;
  out.ci95_low = out.speedup - half;
  out.ci95_high = out.speedup + half;
  return out;
}

double student_t_quantile(double p, double df) {
  if (!(p >= 0.5 && p < 1) || !(df >= 1))
    throw std::invalid_argument("student_t_quantile: expected 0.5 <= p < 1, df >= 1");
  // P(T <= t) = 1 - I_{df / (df + t^2)}(df / 2, 1 / 2) / 2 for t >= 0; bisection to double precision.
  const auto cdf = [&](double t) {
    return 1.0 - 0.5 * regularized_incomplete_beta(df / 2, 0.5, df / (df + t * t));
  };
  double lo = 0, hi = 2;
  while (cdf(hi) < p) {
    lo = hi;
    hi *= 2;
  }
  for (int i = 0; i < 200 && hi - lo > 4e-16 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (cdf(mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace tailsim
