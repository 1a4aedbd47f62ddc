// `evict`: NVIDIA's straggler detector (NeMo / nvidia-resiliency-ext) and what follows from it. Each rank's
// score is a reference median over its own median of a per-step performance measure (its compute time)
// over the last `window` steps: the reference is the best rank's median ("best") or the rank's own best
// window so far ("own"). A rank whose score falls below `threshold` is flagged, leaves service `drain`
// steps later, and is replaced by a healthy spare while `spares` last; without one, its data-parallel
// replica leaves and the others share its work. The policy decides; the workload pays the costs.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "sim/policy/policy.hpp"

namespace tailsim {

struct EvictParams {
  int window = 10;
  double threshold = 0.75;
  bool own_reference = false;
  std::int64_t drain_steps = 0;
  std::int64_t spares = 0;
};

// Scores ranks from their per-step times. Before `window` steps every score is 1.
class StragglerDetector {
 public:
  StragglerDetector(std::int64_t ranks, int window, bool own_reference);
  void add_step(std::span<const double> rank_times);
  // Per rank: reference median / own median over the last window steps.
  const std::vector<double>& scores() const { return scores_; }
  bool ready() const { return seen_ >= window_; }
  // Forgets a rank's history (a spare took its place): it scores 1 until it has a window of its own.
  void reset(std::int64_t rank);

 private:
  std::int64_t ranks_;
  int window_;
  bool own_reference_;
  std::int64_t seen_ = 0;
  std::vector<double> history_;  // [rank * window + step % window]
  std::vector<double> scores_, best_own_;
  std::vector<std::int64_t> since_;  // per rank: steps seen since it (re)started
  std::vector<double> scratch_;
};

// Per-run state of the policy: which ranks are flagged, since when, and which have left.
class EvictController {
 public:
  EvictController(const EvictParams& params, std::int64_t ranks);
  // One step's per-rank times; returns the ranks that leave service after this step.
  std::vector<std::int64_t> end_step(std::span<const double> rank_times);
  const StragglerDetector& detector() const { return detector_; }
  // Resets a replaced rank's history (a spare starts afresh).
  void replaced(std::int64_t rank);
  std::int64_t spares_left() const { return spares_left_; }
  bool take_spare();

 private:
  EvictParams params_;
  StragglerDetector detector_;
  std::vector<std::int64_t> flagged_at_;  // -1: not flagged
  std::vector<bool> gone_;
  std::int64_t step_ = 0, spares_left_;
};

class EvictPolicy final : public Policy {
 public:
  explicit EvictPolicy(EvictParams params) : Policy("evict", "evict"), params_(params) {}
  const EvictParams* evict() const override { return &params_; }

 private:
  EvictParams params_;
};

}  // namespace tailsim
