// Paired comparison of two policies run on the same random draws (common random numbers): the speed-up of
// one over the other with a 95% confidence interval from the paired per-step differences.
//
// Each policy's tally keeps StepBatches: the sums of its step times over batches of consecutive steps, the
// same batches (step indices) for every policy of a run. Batches are what makes the interval honest when
// steps are autocorrelated (drifting routing): a batch mean averages over the correlation, and batches far
// enough apart are nearly independent. Memory is a few batches a replication, whatever the step count, so
// it works as well when the step times themselves are not kept (the quantile sketch).
//
// The estimator (paired_speedup), with X_b and Y_b the baseline's and the policy's step-time sums over
// batch b of the same n_b steps, B batches:
//   S = sum X_b / sum Y_b  (= baseline mean / policy mean: both ran the same steps).
// Delta method: S - s ~ (mean X - s mean Y) / mean Y = sum_b D_b / sum_b Y_b with D_b = X_b - S Y_b, a
// linear function of per-batch sums (the ratio estimator of cluster sampling). Treating batches as
// independent units, Var(sum D_b) ~ B / (B - 1) sum_b D_b^2 (the D_b sum to zero by the definition of S), so
//   Var(S) ~ B / (B - 1) * sum_b D_b^2 / (sum_b Y_b)^2,   S +- t(0.975, B - 1) sqrt(Var(S)).
// D_b pairs the two policies on the same steps: whatever the draws do to both (a slow step, a skewed
// routing) cancels in X_b - S Y_b, which is why the paired interval is much narrower than the one from the
// two means' separate intervals. Equal step times give S = 1 exactly and D_b = 0: a zero-width interval.
//
// Batches (StepBatches::plan): a replication of n steps is split into min(n, ceil(32 / R)) batches for R
// replications (about 32 in all; one per replication from R = 32 on: then the batches are replication
// means, exactly independent). If the D_b of neighbouring batches of a replication are still correlated
// (lag-1 autocorrelation above 1.645 / sqrt(B), a one-sided 5% test of independence), neighbouring batches
// are merged in pairs and the test repeated, down to one batch a replication, or two in all with R = 1.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/core/time.hpp"

namespace tailsim {

class StepBatches {
 public:
  __extension__ using Int128 = __int128;

  StepBatches() = default;
  // One replication of `steps` steps in `batches` batches of consecutive steps (sizes differ by one at most).
  StepBatches(std::int64_t steps, std::int64_t batches);
  // The batches for one of `replications` replications of `steps` steps: min(steps, ceil(32 / replications))
  // (0 for no steps).
  static std::int64_t plan(std::int64_t steps, std::int64_t replications);

  // The next step of the replication.
  void add(SimTime step_ns);
  // Appends another replication's batches (replications merge in a fixed order, like the step times).
  void merge(const StepBatches& other);

  std::size_t batches() const { return sums_.size(); }
  // Index of the first batch of each replication, in merge order.
  const std::vector<std::uint32_t>& replication_starts() const { return starts_; }
  const std::vector<Int128>& sums() const { return sums_; }  // nanoseconds, per batch

  // Bytes for another process of the same binary (MPI), and back.
  void serialize(std::string& out) const;
  static StepBatches deserialize(const std::string& in, std::size_t& pos);
  bool operator==(const StepBatches& other) const = default;

 private:
  std::vector<Int128> sums_;
  std::vector<std::uint32_t> starts_;
  std::int64_t steps_ = 0, added_ = 0;  // of the replication being filled
};

struct PairedSpeedup {
  double speedup = 0;                         // baseline mean step time / policy mean step time
  std::optional<double> ci95_low, ci95_high;  // absent with fewer than two batches (a one-step run)
  std::int64_t batches = 0;                   // B, after merging correlated neighbours
};

// The speed-up of `policy` over `baseline` (the header describes the estimator); nullopt when the policy's
// steps took no time. Throws std::logic_error when the two were not batched alike.
std::optional<PairedSpeedup> paired_speedup(const StepBatches& baseline, const StepBatches& policy);

// The p-quantile (0.5 <= p < 1) of Student's t distribution with `df` >= 1 degrees of freedom.
double student_t_quantile(double p, double df);

}  // namespace tailsim
