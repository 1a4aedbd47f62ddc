// The bsp family of policies: what the bulk-synchronous workload asks a policy. The event path asks how
// many attempts to draw and launch, how many arrivals release the barrier and when to launch speculative
// copies; the fast path gets a BspStepper, the batched equivalent. Both must give the same result on the
// same draws (tests/workload/bsp_paths_test.cpp checks each policy).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sim/cluster/cluster.hpp"
#include "sim/core/rng.hpp"
#include "sim/core/time.hpp"
#include "sim/policy/eviction.hpp"
#include "sim/stats/distribution.hpp"

namespace tailsim {

// What a bsp policy needs to know of the run.
struct BspSetup {
  std::int64_t gpus = 0;
  std::vector<WorkerGroup> groups;
  const Distribution* compute = nullptr;  // worker compute time, seconds
  bool per_draw_times = false;            // chunks carry per-attempt durations (noise, non-monotone draws)

  // The duration of one attempt: GPU factor x noise factor x compute draw, in integer ns. Backup attempts
  // (attempt > 0) run on spare, healthy GPUs: factor 1, whatever the slowdown of the task's own GPU.
  static SimTime task_ns(double gpu_factor, double noise_factor, double compute_s) {
    return seconds_to_ns(gpu_factor * noise_factor * compute_s);
  }
  static double attempt_factor(const WorkerGroup& g, int attempt) { return attempt == 0 ? g.factor : 1.0; }
  // An attempt's duration from its raw uniform when there is no noise (key mode); equal to the per-draw
  // duration with a noise factor of 1.
  SimTime key_ns(const WorkerGroup& g, int attempt, std::uint64_t key) const {
    return task_ns(attempt_factor(g, attempt), 1.0, compute->from_uniform(raw_to_open_uniform(key)));
  }
};

// One step's draws for a contiguous chunk of workers of one group. Shared by every policy of the
// scenario (common random numbers). Attempt 0 is the primary; attempt a > 0 is the a-th backup copy.
struct BspChunk {
  const WorkerGroup* group = nullptr;
  std::size_t group_index = 0;  // index of `group` in BspSetup::groups
  std::int64_t first = 0;  // rank of the chunk's first worker
  std::int64_t n = 0;
  const std::uint64_t* keys[kMaxAttempts] = {};  // raw uniforms (duration is monotone in them per attempt)
  const SimTime* times_ns[kMaxAttempts] = {};    // per-attempt durations; null unless per_draw_times
};

struct BspStepResult {
  SimTime step_ns = 0;  // barrier release time relative to the step start
  double busy_s = 0;    // sum over the K GPUs of time spent computing until the release
  double extra_s = 0;   // speculative-copy compute (GPU-seconds on spare workers)
  std::int64_t gpus = 0;  // GPUs in service this step (evict); 0: all K
};

class BspStepper {
 public:
  virtual ~BspStepper() = default;
  virtual void begin_step() = 0;
  virtual void add_chunk(const BspChunk& chunk) = 0;
  virtual BspStepResult end_step() = 0;
  // The ranks taken out of service so far (evict), in order.
  virtual std::span<const Eviction> evictions() const { return {}; }
};

// A policy as the order-statistics engine sees it (sim/workload/bsp_order_statistics.cpp): each task is
// the first of `copies` attempts launched together, and the barrier releases when all but the `dropped`
// slowest tasks have arrived; or, with `speculation`, Spark's trigger (`backup` with `quantile`). `refusal`
// says why a policy has no such form ("" when it has one).
struct BspOrderForm {
  int copies = 1;
  std::int64_t dropped = 0;
  std::string refusal;
  struct Speculation {
    double quantile = 0, multiplier = 0;
  };
  std::optional<Speculation> speculation;
};

// Spark's quorum: the tasks that must have finished before speculative copies launch, ceil(quantile x gpus)
// (at least 1). The guard keeps 0.9 x 10 at 9 despite binary rounding.
inline std::int64_t speculation_quorum(double quantile, std::int64_t gpus) {
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(quantile * static_cast<double>(gpus) - 1e-9)));
}

// Spark's threshold: multiplier x the median of the finished durations (the mean of the two middle values
// for an even count). Reorders `finished` (not empty). Shared by the bsp and moe sides of `backup`.
template <class T>
double speculation_threshold(std::vector<T>& finished, double multiplier) {
  const std::size_t n = finished.size();
  const auto mid = finished.begin() + static_cast<std::ptrdiff_t>(n / 2);
  std::nth_element(finished.begin(), mid, finished.end());
  const double hi = static_cast<double>(*mid);
  if (n % 2 == 1) return multiplier * hi;
  const double lo = static_cast<double>(*std::max_element(finished.begin(), mid));
  return multiplier * (0.5 * (lo + hi));
}

// A policy's bsp hooks (Policy::bsp()).
class BspPolicy {
 public:
  virtual ~BspPolicy() = default;
  // Attempts drawn per task each step (1 + the most backup copies this policy may launch).
  virtual int attempts_drawn() const { return 1; }
  // Attempts launched at the start of a step.
  virtual int attempts_at_start() const { return 1; }
  // Needs every worker's duration each step (cannot reduce on the uniforms).
  virtual bool needs_worker_times() const { return false; }
  // Arrivals that release the barrier.
  virtual std::int64_t barrier_quorum(std::int64_t gpus) const { return gpus; }
  // Throws InputError (through Policy::fail) when the policy cannot run on a cluster of `gpus`.
  virtual void check_gpus(std::int64_t /*gpus*/) const {}
  // Called after each arrival with the durations of the finished tasks so far (in arrival order);
  // returns the time (relative to the step start, >= now) at which still-running tasks get one more
  // attempt, or nothing. Called until it returns a time once in a step.
  virtual std::optional<SimTime> speculate(std::span<const SimTime> /*finished_ns*/, std::int64_t /*gpus*/,
                                           SimTime /*now_rel*/) const {
    return std::nullopt;
  }
  virtual std::unique_ptr<BspStepper> make_stepper(const BspSetup& setup) const = 0;
  // The policy's order-statistics form; by default none.
  virtual BspOrderForm order_form() const { return {1, 0, "it has no order-statistics form", std::nullopt}; }
};

// The stepper shared by `none` (copies = 1) and the fixed form of `backup` (sim/policy/none.cpp).
std::unique_ptr<BspStepper> make_first_of_copies_stepper(const BspSetup& setup, int copies);

}  // namespace tailsim
