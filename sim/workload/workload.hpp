// Workloads turn a cluster, random draws and policies into per-step outcomes. A run simulates one
// replication of one sweep point for every policy of the scenario on the same random draws.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sim/cluster/cluster.hpp"
#include "sim/core/time.hpp"
#include "sim/policy/policy.hpp"
#include "sim/config/registry.hpp"
#include "sim/core/compensated_sum.hpp"
#include "sim/core/held_bytes.hpp"
#include "sim/stats/paired.hpp"
#include "sim/stats/step_times.hpp"

namespace tailsim {

class TraceSink;

struct RunRequest {
  std::uint64_t seed = 0;
  std::uint64_t replication = 0;  // replication index (seeds the streams; every sweep point draws alike)
  std::int64_t steps = 0;
  std::span<const Policy* const> policies;
  // When set, the run also records its timeline there (sim/cluster/trace_sink.hpp): slower, for a few steps.
  TraceSink* trace = nullptr;
  // When set and true, the run stops at its next step with RunStopped (--time-limit, Ctrl-C).
  const std::atomic<bool>* stop = nullptr;
  // Keep step times in the bounded-memory quantile sketch instead of every value (sim/stats/step_times.hpp).
  bool sketch_quantiles = false;
  // Batches of consecutive steps whose step-time sums each tally keeps for paired comparisons between
  // policies (sim/stats/paired.hpp, StepBatches::plan); 0: none.
  std::int64_t batches = 0;
};

// Thrown by a run that saw its stop flag; the runner keeps the points completed before it.
struct RunStopped {};

// MoE metrics, summed over every layer-step of a run (zero for other workloads).
struct MoeTally {
  CompensatedSum load_imbalance_sum;  // sum over layer-steps of max/mean tokens per GPU
  CompensatedSum compute_s, communication_s, wait_s;  // GPU-seconds
  CompensatedSum bytes_moved;                         // over links (NVLink and NIC)
  CompensatedSum routed_pairs, routed_tokens;         // forward layer-steps: what the router gave
  CompensatedSum dropped_pairs, rerouted_pairs;       // (token, expert) pairs a controller dropped or moved
  CompensatedSum dropped_gate_mass;                   // gate weight of the dropped pairs (of routed_tokens)
  CompensatedSum weight_bytes;                        // expert weights a controller loaded onto GPUs
  CompensatedSum step_tokens, gpu_step_tokens;        // tokens processed per step, whole cluster and per GPU
  CompensatedSum weight_stall_s;                      // layer time lost waiting for weight loads, seconds
  CompensatedSum predictor_error_sum, predictor_errors;  // load predictions: summed error, and their number
  CompensatedSum cache_accesses, cache_hits;             // expert weights needed, and found in HBM (prefetch)
  CompensatedSum standby_bytes, standby_steps;           // per step: standby copies' bytes per GPU (backup_slots)
  // Load predictions by horizon (the next step) and, over an interval, by the routing's phase: sums and counts.
  CompensatedSum predictor_h1_sum, predictor_h1_n;
  CompensatedSum predictor_stable_sum, predictor_stable_n, predictor_fluctuating_sum, predictor_fluctuating_n;
  std::int64_t layer_steps = 0;
  // Every sum, once: merges, serialization and reports go through this list.
  static constexpr std::array kSums = {&MoeTally::load_imbalance_sum, &MoeTally::compute_s,
                                       &MoeTally::communication_s,    &MoeTally::wait_s,
                                       &MoeTally::bytes_moved,        &MoeTally::routed_pairs,
                                       &MoeTally::routed_tokens,      &MoeTally::dropped_pairs,
                                       &MoeTally::rerouted_pairs,     &MoeTally::dropped_gate_mass,
                                       &MoeTally::weight_bytes,       &MoeTally::step_tokens,
                                       &MoeTally::gpu_step_tokens,    &MoeTally::weight_stall_s,
                                       &MoeTally::predictor_error_sum, &MoeTally::predictor_errors,
                                       &MoeTally::cache_accesses,     &MoeTally::cache_hits,
                                       &MoeTally::standby_bytes,      &MoeTally::standby_steps,
                                       &MoeTally::predictor_h1_sum,   &MoeTally::predictor_h1_n,
                                       &MoeTally::predictor_stable_sum, &MoeTally::predictor_stable_n,
                                       &MoeTally::predictor_fluctuating_sum, &MoeTally::predictor_fluctuating_n};
};

// What-if analysis of a training run (pipeline workload): sums over steps of the step time as run, under
// the counterfactual, and with only one data-parallel rank (or stage) at its own times, the rest at the mean.
struct WhatIfTally {
  CompensatedSum actual_s, counterfactual_s, ideal_s;
  std::vector<CompensatedSum> by_dp_rank_s, by_stage_s;
  std::int64_t steps = 0;
  void merge(const WhatIfTally& o) {
    actual_s += o.actual_s;
    counterfactual_s += o.counterfactual_s;
    ideal_s += o.ideal_s;
    if (by_dp_rank_s.size() < o.by_dp_rank_s.size()) by_dp_rank_s.resize(o.by_dp_rank_s.size());
    if (by_stage_s.size() < o.by_stage_s.size()) by_stage_s.resize(o.by_stage_s.size());
    for (std::size_t i = 0; i < o.by_dp_rank_s.size(); ++i) by_dp_rank_s[i] += o.by_dp_rank_s[i];
    for (std::size_t i = 0; i < o.by_stage_s.size(); ++i) by_stage_s[i] += o.by_stage_s[i];
    steps += o.steps;
  }
};

// One policy's outcome over one replication; tallies of replications merge in a fixed order.
struct PolicyTally {
  StepTimes steps;               // barrier release time of every step, relative to its start
  StepBatches batches;           // step-time sums over batches of steps, alike for every policy of a run
  CompensatedSum gpu_time_s;     // sum over steps of K x step time
  CompensatedSum busy_s;         // GPU-time spent computing (the rest of gpu_time_s waits at barriers)
  CompensatedSum extra_s;        // speculative or replica compute beyond the K primary tasks
  std::uint64_t events = 0;      // events executed by the engine
  MoeTally moe;
  WhatIfTally whatif;
  std::vector<Eviction> evictions;  // ranks an evict policy took out, in order (a merge keeps the first replication's)
  const std::atomic<bool>* stop = nullptr;  // checked every 64 steps (RunRequest::stop)
  static constexpr std::array kSums = {&PolicyTally::gpu_time_s, &PolicyTally::busy_s, &PolicyTally::extra_s};

  // Calls f(CompensatedSum&) on every sum of the tally, its own then the MoE ones, in a fixed order.
  template <class Self, class F>
  static void for_each_sum(Self& self, F&& f) {
    for (const auto member : kSums) f(self.*member);
    for (const auto member : MoeTally::kSums) f(self.moe.*member);
  }

  // Throws RunStopped once the stop flag is up. Workloads call it at least once a step, and within long
  // steps (an MoE layer), so a stop takes effect within a fraction of a second at any scale.
  void check_stop() const {
    if (stop && stop->load(std::memory_order_relaxed)) throw RunStopped{};
  }
  void add_step(SimTime step, std::int64_t gpus, double busy, double extra) {
    if (steps.size() % 64 == 0) check_stop();
    steps.add(step);
    batches.add(step);
    gpu_time_s += static_cast<double>(gpus) * ns_to_seconds(step);
    busy_s += busy;
    extra_s += extra;
  }
  void merge(const PolicyTally& other) {
    steps.merge(other.steps);
    batches.merge(other.batches);
    for (const auto member : kSums) this->*member += other.*member;
    for (const auto member : MoeTally::kSums) moe.*member += other.moe.*member;
    events += other.events;
    moe.layer_steps += other.moe.layer_steps;
    whatif.merge(other.whatif);
  }
};

// One tally per policy of a request, each watching the request's stop flag.
inline std::vector<PolicyTally> make_tallies(const RunRequest& request) {
  std::vector<PolicyTally> tallies(request.policies.size());
  for (PolicyTally& t : tallies) {
    t.stop = request.stop;
    t.steps = StepTimes(request.sketch_quantiles);
    if (!request.sketch_quantiles) t.steps.reserve(static_cast<std::size_t>(request.steps));
    if (request.batches > 0) t.batches = StepBatches(request.steps, request.batches);
  }
  return tallies;
}

// Upper bounds of the events a run adds to a trace for one policy: per step, and once (process and track
// names), so that an oversized trace is refused before it runs.
struct TraceSize {
  double per_step = 0, once = 0;
};

class Workload {
 public:
  virtual ~Workload() = default;
  // Fails (InputError) when a policy cannot run on this workload; called for every point before any run.
  virtual void check_policy(const Policy& policy) const = 0;
  // Why this workload runs without the GPU's figures (`tailsim validate` says so of a cluster without "gpu");
  // "" when it reads them, and then refuses such a cluster (ClusterSpec::require_gpu).
  virtual std::string gpu_not_needed() const { return ""; }
  virtual std::vector<PolicyTally> run(const RunRequest& request) const = 0;
  // An upper estimate of the memory one run needs besides the step times it keeps (8 bytes per step and
  // policy), for the check before a scenario starts (sim/run/limits.hpp).
  virtual std::uint64_t working_bytes(std::size_t policies) const = 0;
  // The relative cost of simulating one step for one policy (K workers for bsp, K x layers for moe): it
  // weighs the units of a run in its progress estimate, where the point count alone misleads.
  virtual double step_work() const = 0;
  // Counts the bytes this built workload holds for as long as its sweep point exists (samples arrays, cost
  // tables, routing traces), besides its own object; what points share (a file parsed once) counts once.
  virtual void count_held(HeldBytes&) const {}
  // The events a traced run of these policies adds (sim/cluster/trace_sink.hpp): the layout of its trace.
  virtual TraceSize trace_size(std::span<const Policy* const> policies) const = 0;
  // working_bytes for these policies, where a workload can say more than their count.
  virtual std::uint64_t working_bytes_for(std::span<const Policy* const> policies) const {
    return working_bytes(policies.size());
  }
  // The engine a run of these policies uses, as results and `tailsim validate` report it; "" where the
  // workload has a single way to run or the choice is the user's alone.
  virtual std::string engine_used(std::span<const Policy* const> /*policies*/) const { return ""; }
  // The most GPUs a run of these policies may have, and why no more (checked when a point is built).
  struct GpuLimit {
    std::int64_t most = kMaxGpusWithArrays;
    std::string why = "the workload keeps per-GPU arrays, whose memory grows with K";
  };
  virtual GpuLimit gpu_limit(std::span<const Policy* const> /*policies*/) const { return {}; }
};

using WorkloadRegistry = Registry<Workload, const ClusterSpec&>;
const WorkloadRegistry& workload_registry();

}  // namespace tailsim
