// What-if analysis of the pipeline workload, as the StragglerAnalysis artifact (Lin et al., OSDI'25) does
// it: each step is simulated again with a counterfactual where compute ops take their op type's mean
// (forward and backward apart; over the whole trace in a replay, over the step's draws otherwise), for
// every rank or only the chosen ranks and stages. Communication keeps its (median) times in both runs.
// The decomposition sets everything to the mean except one data-parallel rank (or one stage), which keeps
// its own times: the slowdown that rank alone causes (the artifact's per-worker attribution).
#pragma once
#include <vector>

#include "sim/workload/pipeline.hpp"

namespace tailsim {

// Every replica's durations, sized for the config, with the config's p2p times and zero compute.
std::vector<ReplicaDurations> empty_replicas(const PipelineConfig& cfg);
// One step of every replica through the schedule and the data-parallel barrier: its time; adds the busy
// time and (reference engine) the events run. `drop` > 0: the step goes on without the gradients of the
// `drop` replicas whose last backward ends latest (drop_slowest). `phase`: this step's, else the config's.
SimTime pipeline_step_ns(const PipelineConfig& cfg, const std::vector<std::vector<PipeOp>>& orders,
                         const std::vector<ReplicaDurations>& reps, bool events, ReplicaTimes& scratch,
                         SimTime* busy_ns = nullptr, std::uint64_t* events_run = nullptr, int drop = 0,
                         const DpPhase* phase = nullptr);

class PipelineWhatIf {
 public:
  PipelineWhatIf(const PipelineConfig& cfg, const std::vector<std::vector<PipeOp>>& orders);
  // Adds one step (its durations `reps` and time as run) to `out`.
  void add_step(const std::vector<ReplicaDurations>& reps, SimTime actual_ns, WhatIfTally& out);

 private:
  bool fixed(int d, int stage) const;
  void set_means(const std::vector<ReplicaDurations>& reps);
  SimTime step(const std::vector<ReplicaDurations>& reps);

  const PipelineConfig& cfg_;
  const std::vector<std::vector<PipeOp>>& orders_;
  bool global_means_ = false;
  SimTime mean_fwd_ns_ = 0, mean_bwd_ns_ = 0;
  std::vector<ReplicaDurations> ideal_, mixed_;
  ReplicaTimes scratch_;
};

}  // namespace tailsim
