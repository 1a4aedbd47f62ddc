// Straggler policies. A policy decides; workloads and the engine act. For the bsp workload a policy
// answers the event path's questions (how many attempts, how many arrivals release the barrier, when to
// launch speculative copies) and builds a BspStepper, the batched equivalent used by the fast path. Both
// must give the same result on the same draws (tests/workload/bsp_paths_test.cpp checks each policy).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sim/cluster/cluster.hpp"
#include "sim/cluster/components.hpp"
#include "sim/core/rng.hpp"
#include "sim/core/time.hpp"
#include "sim/config/registry.hpp"
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
};

class BspStepper {
 public:
  virtual ~BspStepper() = default;
  virtual void begin_step() = 0;
  virtual void add_chunk(const BspChunk& chunk) = 0;
  virtual BspStepResult end_step() = 0;
};

class Policy {
 public:
  Policy(std::string type, std::string label) : type_(std::move(type)), label_(std::move(label)) {}
  virtual ~Policy() = default;
  const std::string& type() const { return type_; }
  const std::string& label() const { return label_; }
  void set_label(std::string label) { label_ = std::move(label); }
  // Where the policy was defined, for errors found once the cluster is known.
  void set_origin(std::string file, std::string path) {
    file_ = std::move(file);
    path_ = std::move(path);
  }
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  // --- moe workload ---
  virtual bool applies_to_moe() const { return false; }

  // --- bsp workload ---
  virtual bool applies_to_bsp() const { return false; }
  // Attempts drawn per task each step (1 + the most backup copies this policy may launch).
  virtual int attempts_drawn() const { return 1; }
  // Attempts launched at the start of a step.
  virtual int attempts_at_start() const { return 1; }
  // Needs every worker's duration each step (cannot reduce on the uniforms).
  virtual bool needs_worker_times() const { return false; }
  // Arrivals that release the barrier.
  virtual std::int64_t barrier_quorum(std::int64_t gpus) const { return gpus; }
  // Throws InputError (through fail) when the policy cannot run on a cluster of `gpus`.
  virtual void check_bsp(std::int64_t /*gpus*/) const {}
  // Called after each arrival with the durations of the finished tasks so far (in arrival order);
  // returns the time (relative to the step start, >= now) at which still-running tasks get one more
  // attempt, or nothing. Called until it returns a time once in a step.
  virtual std::optional<SimTime> speculate(std::span<const SimTime> /*finished_ns*/, std::int64_t /*gpus*/,
                                           SimTime /*now_rel*/) const {
    return std::nullopt;
  }
  virtual std::unique_ptr<BspStepper> make_bsp_stepper(const BspSetup& setup) const;

 private:
  std::string type_;
  std::string label_;
  std::string file_;
  std::string path_;
};

using PolicyRegistry = Registry<Policy>;
const PolicyRegistry& policy_registry();
// Builds one policy (its "name" becomes the label; the default label is the type).
std::unique_ptr<Policy> make_policy(const JsonReader& node);

// The bsp policies, exposed for their steppers' tests.
std::unique_ptr<Policy> make_none_policy(const JsonReader& node);
std::unique_ptr<Policy> make_backup_policy(const JsonReader& node);
std::unique_ptr<Policy> make_drop_slowest_policy(const JsonReader& node);

}  // namespace tailsim
