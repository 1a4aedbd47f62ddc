// Runs every (sweep point, replication) of a scenario on a pool of threads and merges the results in a
// fixed order, so the output is bit-identical for any thread count.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sim/scenario/scenario.hpp"
#include "sim/stats/summary.hpp"

namespace tailsim {

// What a policy that edits the routing (capacity_drop, reroute) cost, over the forward layer-steps.
struct RoutingCost {
  double dropped_fraction = 0;   // dropped (token, expert) pairs / the pairs the router gave
  double rerouted_fraction = 0;  // pairs moved to another expert / the pairs the router gave
  double dropped_gate_mass = 0;  // gate weight of the dropped pairs / the routed tokens' (one per token)
};

// MoE metrics of a record, averaged over layer-steps or as fractions of GPU-time.
struct MoeRecord {
  double load_imbalance = 0;  // mean over layer-steps of max/mean (token, expert) pairs per GPU
  double compute_fraction = 0, communication_fraction = 0, barrier_wait_fraction = 0;  // of GPU-time
  double bytes_moved = 0;     // what the run charged over NVLink and NICs (after drops and reroutes)
  // Tokens processed (prefill, training) or produced (decode) per second: tokens per step / mean step time.
  double tokens_per_s = 0, tokens_per_s_per_gpu = 0;
  std::optional<RoutingCost> routing;  // policies whose controller saw the routing
  struct Weights {
    double bytes_moved = 0;  // expert weights loaded onto GPUs (replicas, prefetches), bytes over the run
    double stall_s = 0;      // per step: layer time lost waiting for them, seconds
  };
  std::optional<Weights> weights;       // policies that loaded weights
  std::optional<double> predictor_mape;  // policies that predicted expert load: mean load-weighted error
  // The same for forecasts of the next step (horizon 1), and over the interval by the routing's phase.
  std::optional<double> predictor_mape_h1, predictor_mape_stable, predictor_mape_fluctuating;
  std::optional<double> prefetch_hit_rate;  // policies with an expert-weight cache: needed weights found in HBM
  std::optional<double> backup_bytes_per_gpu;  // backup: HBM each GPU gives its standby expert copies, bytes
};

// A policy's speed-up over the scenario's baseline policy at the same point, paired over steps
// (sim/stats/paired.hpp).
struct VsBaseline {
  std::string policy;  // the baseline's label
  double speedup = 0;  // the baseline's mean step time / this policy's
  std::optional<double> ci95_low, ci95_high;  // the paired 95% interval; absent from a one-step run
};

// What-if analysis of a training run: actual / counterfactual mean step time, and per data-parallel rank and
// per stage the slowdown left when only it keeps its own times (empty without `decompose`).
struct WhatIfRecord {
  double slowdown = 0;
  std::vector<double> by_dp_rank, by_stage;
};

struct Record {
  std::size_t point = 0;                             // sweep point index
  std::vector<std::pair<std::string, Json>> params;  // swept path -> value
  std::string policy;                                // label
  StepTimeSummary step_time;
  std::optional<double> slowdown_vs_k1;       // mean / mean at cluster.gpus == 1, same policy and params (set by
                                              // assemble_results)
  double idle_fraction = 0;                   // GPU-time waiting at barriers / total GPU-time
  std::optional<double> extra_work_fraction;  // backup compute / useful compute (policies that copy)
  std::uint64_t events = 0;
  std::string engine;                         // the engine that ran the point, where a workload has a choice
  std::optional<MoeRecord> moe;
  std::optional<WhatIfRecord> whatif;  // pipeline workload with `whatif`
  std::optional<std::vector<Eviction>> evicted;  // evict: the first replication's evictions, in order
  std::optional<VsBaseline> vs_baseline;      // policies other than the baseline (when its mean is not 0)
  double wall_seconds = 0;  // summed over the point's replications
};

struct RunResults {
  std::string scenario;
  std::uint64_t seed = 0;
  std::int64_t steps = 0;
  std::vector<std::string> param_names;
  std::vector<Record> records;  // point-major, then policies in scenario order
  double wall_seconds = 0;      // whole run
  bool stopped = false;         // RunOptions::stop ended the run early: some points are missing
  bool sketch_quantiles = false;  // quantiles from the sketch (relative error <= 2^-11)
};

// Spreads a run's (point, replication) units over processes (MPI ranks): rank r runs the units u with
// u % size == r; rank 0 gathers every unit's tallies, merges them in the fixed order and reports, so its
// results are byte-identical to a one-process run. The other ranks return no records.
class Distributor {
 public:
  virtual ~Distributor() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank 0's bytes to every rank.
  virtual void broadcast(std::string& bytes) = 0;
  // Every rank's bytes to rank 0 (in rank order; empty elsewhere).
  virtual std::vector<std::string> gather(const std::string& bytes) = 0;
};

// How far a run is: its (point, replication) units, and their work (steps x policies x the workload's
// step_work), which the time left is proportional to where the unit count is not.
struct RunProgress {
  std::size_t units_done = 0, units = 0;
  double work_done = 0, work = 0;
};

struct RunOptions {
  explicit RunOptions(int thread_count = 1) : threads(thread_count) {}
  int threads = 1;
  // Points to run (empty: all); the others are left out of the results (resumed, or another shard's).
  std::vector<bool> run_point;
  // Called once per completed point with its records (policies in scenario order), one call at a time, in
  // completion order (which depends on the thread count; the final results do not).
  std::function<void(const std::vector<Record>&)> on_point;
  // Called after every (point, replication) unit, one call at a time.
  std::function<void(const RunProgress&)> on_progress;
  Distributor* distributor = nullptr;  // null: this process runs every unit
  // When it turns true the run stops (--time-limit, Ctrl-C): units under way end at their next step and
  // the results hold the points completed before (RunResults::stopped).
  const std::atomic<bool>* stop = nullptr;
  bool sketch_quantiles = false;  // bounded-memory quantiles (sim/stats/step_times.hpp) instead of exact
};

// The request for replication `replication` of any sweep point (its seed and replication index seed the
// random streams, so every point draws alike): the runner's units and the trace's re-runs both
// start from it. No trace, stop flag or sketch: the caller sets those.
RunRequest make_run_request(const Scenario& scenario, std::uint64_t replication, std::int64_t steps,
                            std::span<const Policy* const> policies);

// Runs the selected points and returns their records, assembled (see assemble_results).
RunResults run_scenario(const Scenario& scenario, const std::vector<PointModel>& models, const RunOptions& options);

// Sorts records by point (policies keep their order) and sets slowdown_vs_k1 against the K = 1 point with
// the same other parameters and policy.
void assemble_results(RunResults& results);
// The results header of a scenario (name, seed, steps, swept parameter names), without records.
RunResults results_header(const Scenario& scenario);

// Validates every point (throws InputError on the first bad one).
std::vector<PointModel> build_all_points(const Scenario& scenario);

}  // namespace tailsim
