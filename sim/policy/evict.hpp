// `evict`: NVIDIA's straggler detector (NeMo / nvidia-resiliency-ext) and what follows from it. Each rank's
// score is a reference median over its own median of a per-step performance measure (its compute time)
// over the last `window` steps: the reference is the best rank's median ("best") or the rank's own best
// window so far ("own"). A rank whose score falls below `threshold` is flagged, leaves service `drain`
// steps later, and is replaced by a healthy spare while `spares` last; without one, its data-parallel
// replica leaves and the others share its work. The policy decides; the workload pays the costs.
// Workloads: pipeline (sim/workload/pipeline.cpp), bsp (BspEviction, both engines: sim/policy/evict_bsp.cpp)
// and moe (a controller that moves an evicted GPU's experts away or onto a spare: sim/policy/evict_moe.cpp).
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

// The bsp workload's side of `evict`, shared by its batched and event engines so that both give the same
// steps: per rank, the task it runs this step and whether it is in service. A spare in a rank's place runs
// at factor 1 (the drawn time over its GPU's factor); without spares the ranks left share the work of those
// gone, each task K / (K - evicted) longer. Fed every rank's task each step, flagged ranks leave.
class BspEviction {
 public:
  BspEviction(const EvictParams& params, const std::vector<WorkerGroup>& groups, std::int64_t gpus);
  // Rank k's task this step from its drawn duration (its GPU's factor applied), or -1 when it is out of
  // service; records the rank's time for the detector (out-of-service ranks too, which it ignores).
  SimTime task_ns(std::int64_t rank, SimTime drawn_ns);
  bool serving(std::int64_t rank) const { return !gone_[static_cast<std::size_t>(rank)]; }
  std::int64_t in_service() const { return gpus_ - gone_count_; }
  // Ends the step: the detector sees every rank's task time; flagged ranks leave or are replaced.
  void end_step();
  const std::vector<Eviction>& evictions() const { return evictions_; }

 private:
  EvictController controller_;
  std::vector<double> factor_;  // per rank: its GPU's slowdown
  std::vector<char> gone_, replaced_;
  std::vector<double> task_s_;
  std::int64_t gpus_, gone_count_ = 0, step_ = 0;
  std::vector<Eviction> evictions_;
};

class EvictPolicy final : public Policy, public BspPolicy, public MoePolicy {
 public:
  explicit EvictPolicy(EvictParams params) : Policy("evict", "evict"), params_(params) {}
  const EvictParams* evict() const override { return &params_; }
  const BspPolicy* bsp() const override { return this; }
  const MoePolicy* moe() const override { return this; }
  // bsp: every rank's time feeds the detector.
  bool needs_worker_times() const override { return true; }
  std::unique_ptr<BspStepper> make_stepper(const BspSetup& setup) const override;
  BspOrderForm order_form() const override;
  // moe: a controller that takes evicted GPUs out of expert service.
  std::unique_ptr<MoeController> make_controller(const MoeRunInfo& info) const override;
  void check(const MoeRunInfo& shape) const override;

 private:
  EvictParams params_;
};

}  // namespace tailsim
