// The pipeline-parallel training workload: dp data-parallel replicas of a pp-stage pipeline (tensor- and
// context-parallel peers move in lockstep: one simulated rank each). Per step each replica runs its
// schedule (sim/workload/pipeline_schedule.hpp) over `microbatches`, activations and gradients crossing
// between stages over NVLink or the NIC by placement; after the flush each stage's gradients are
// all-reduced across the replicas (a ring over the slowest link of the stage's replicas, bucketed and
// overlapped with the last backward when `overlap_grad_reduce` is on), then the optimizer runs, and the
// step ends at the data-parallel barrier. Task times come from distributions (per stage, per rank, noise)
// or are replayed from a measured trace (sim/workload/pipeline_trace.hpp); `whatif` re-simulates each
// step with a counterfactual (sim/workload/pipeline_whatif.hpp).
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "sim/stats/distribution.hpp"
#include "sim/workload/pipeline_failslow.hpp"
#include "sim/workload/pipeline_schedule.hpp"
#include "sim/workload/pipeline_trace.hpp"
#include "sim/workload/workload.hpp"

namespace tailsim {

// What the data-parallel phase after the flush costs, per stage.
struct DpPhase {
  std::vector<SimTime> reduce_ns;  // the stage's gradient all-reduce
  std::vector<SimTime> tail_ns;    // after it: optimizer step (and, in replays, the other post-flush ops)
  int buckets = 1;
  bool overlap = false;  // buckets start while the last backward runs
};

// The step time from every replica's schedule times: per stage and bucket the slowest replica, then the
// ring all-reduces in bucket order, the tail, and the barrier over the stages.
class DpBarrier {
 public:
  DpBarrier(const DpPhase& phase, int stages);
  void begin_step();
  void add(const ReplicaTimes& t);
  SimTime step_ns() const;

 private:
  const DpPhase& phase_;
  int stages_;
  std::vector<SimTime> ready_ns_;  // [stage * buckets + bucket]: the latest replica's gradient ready time
};

// Which compute ops a counterfactual sets to their op type's mean: all of them (`ranks` and `stages`
// empty), or only those of the listed global ranks and stages. `decompose`: also the slowdown left with
// only one data-parallel rank (or stage) at its measured times, the rest at the mean (the artifact's S_w).
struct WhatIfSpec {
  std::vector<std::int64_t> ranks;
  std::vector<int> stages;
  bool decompose = false;
};

// A rank slowed by `factor` for steps [first_step, end_step) (a fail-slow episode: thermal throttling, a
// degraded link); end_step -1: to the end of the run.
struct SlowEpisode {
  std::vector<std::int64_t> ranks;
  double factor = 1.0;
  std::int64_t first_step = 0, end_step = -1;
};

struct PipelineConfig {
  PipeShape shape;
  int dp = 1;
  bool stage_major = false;  // placement: rank = stage * dp + d (else d * pp + stage)
  bool events = false;       // the reference engine
  // Per stage (one entry per stage; shared when the scenario gives one distribution); backward empty:
  // backward_factor x a forward draw.
  std::vector<std::shared_ptr<const Distribution>> forward, backward;
  double backward_factor = 2.0;
  std::vector<double> rank_factor;   // per global rank: slow_gpus, `slow` entries and stage_factors
  std::vector<double> stage_factor;  // per stage (what a healthy spare keeps)
  std::vector<SlowEpisode> episodes;  // `slow` entries with from_step / until_step
  std::vector<FailSlowSpec> fail_slow;  // episodes arriving at random (sim/workload/pipeline_failslow.hpp)
  std::vector<SimTime> p2p_fwd_ns, p2p_bwd_ns;  // per (replica, stage): [d * pp + s], as in ReplicaDurations
  DpPhase phase;
  std::shared_ptr<const PipelineTrace> trace;  // replay instead of draws when set
  std::optional<WhatIfSpec> whatif;
  std::int64_t rank(int d, int stage) const {
    return stage_major ? static_cast<std::int64_t>(stage) * dp + d
                       : static_cast<std::int64_t>(d) * shape.stages + stage;
  }
  int stage_of(std::int64_t rank) const { return static_cast<int>(stage_major ? rank / dp : rank % shape.stages); }
  int replica_of(std::int64_t rank) const { return static_cast<int>(stage_major ? rank % dp : rank / shape.stages); }
};

class PipelineWorkload final : public Workload {
 public:
  PipelineWorkload(ClusterSpec cluster, PipelineConfig config) : cluster_(std::move(cluster)), cfg_(std::move(config)) {}
  void check_policy(const Policy& policy) const override;
  std::string gpu_not_needed() const override { return "task times are distributions or a trace"; }
  std::vector<PolicyTally> run(const RunRequest& request) const override;
  std::uint64_t working_bytes(std::size_t policies) const override;
  double step_work() const override { return static_cast<double>(cfg_.dp) * cfg_.shape.tasks(); }
  void count_held(HeldBytes& held) const override;
  TraceSize trace_size(std::span<const Policy* const> policies) const override;
  const PipelineConfig& config() const { return cfg_; }

 private:
  void run_policy(const RunRequest& req, const Policy& policy, PolicyTally& tally) const;

  ClusterSpec cluster_;
  PipelineConfig cfg_;
};

std::unique_ptr<Workload> make_pipeline_workload(const JsonReader& node, const ClusterSpec& cluster);

}  // namespace tailsim
