// Runs every (sweep point, replication) of a scenario on a pool of threads and merges the results in a
// fixed order, so the output is bit-identical for any thread count.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/scenario/scenario.hpp"
#include "sim/stats/summary.hpp"

namespace tailsim {

// MoE metrics of a record, averaged over layer-steps or as fractions of GPU-time.
struct MoeRecord {
  double load_imbalance = 0;  // mean over layer-steps of max/mean (token, expert) pairs per GPU
  double compute_fraction = 0, communication_fraction = 0, barrier_wait_fraction = 0;  // of GPU-time
  double bytes_moved = 0;     // over NVLink and NICs, whole run
};

struct Record {
  std::vector<std::pair<std::string, Json>> params;  // swept path -> value
  std::string policy;                                // label
  StepTimeSummary step_time;
  std::optional<double> slowdown_vs_k1;       // mean / mean at cluster.gpus == 1, same policy and params
  double idle_fraction = 0;                   // GPU-time waiting at barriers / total GPU-time
  std::optional<double> extra_work_fraction;  // backup compute / useful compute (policies that copy)
  std::uint64_t events = 0;
  std::optional<MoeRecord> moe;
  double wall_seconds = 0;  // summed over the point's replications
};

struct RunResults {
  std::string scenario;
  std::uint64_t seed = 0;
  std::int64_t steps = 0;
  std::vector<std::string> param_names;
  std::vector<Record> records;  // point-major, then policies in scenario order
  double wall_seconds = 0;      // whole run
};

struct RunOptions {
  int threads = 1;
};

RunResults run_scenario(const Scenario& scenario, const std::vector<PointModel>& models, const RunOptions& options);

// Validates every point (throws InputError on the first bad one).
std::vector<PointModel> build_all_points(const Scenario& scenario);

}  // namespace tailsim
