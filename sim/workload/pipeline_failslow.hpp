// Fail-slow episodes arriving over time: a rank's compute, or its links, slow by a factor for a while, then
// recover (thermal throttling, a degraded NIC or cable). Each kind arrives at each rank as a Bernoulli
// process in steps (rate per rank and step), lasts a drawn number of steps, with a drawn factor; draws
// come from the stream "pipeline/fail_slow/I" (I: the entry's index), so every policy meets the same
// episodes (common random numbers). A preset (configs/noise/, e.g. falcon-fail-slow) gives rates per rank and
// hour and durations in seconds, turned into steps with the scenario's nominal step time.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "sim/config/json_reader.hpp"
#include "sim/core/rng.hpp"
#include "sim/stats/distribution.hpp"

namespace tailsim {

struct FailSlowSpec {
  bool link = false;  // the rank's p2p links and its share of the gradient all-reduce, else its compute
  double rate_per_rank_step = 0;
  std::shared_ptr<const Distribution> duration_steps, factor;
  double steps_per_duration_unit = 1;  // a preset's durations are seconds: 1 / step_s
};

// The workload's `fail_slow` key: an array of entries in steps, or {"preset": NAME, "step_s": S}.
std::vector<FailSlowSpec> read_fail_slow(const JsonReader& node);

class FailSlowEpisodes {
 public:
  FailSlowEpisodes(const std::vector<FailSlowSpec>& specs, std::int64_t ranks, std::uint64_t seed,
                   std::uint64_t replication);
  // Multiplies each rank's compute and link factors by the episodes active at `step` (steps in order).
  void at_step(std::int64_t step, std::vector<double>& compute, std::vector<double>& link);
  // Ends the rank's episodes (a spare took its place).
  void end(std::int64_t rank);
  std::int64_t started() const { return started_; }

 private:
  struct State {
    std::int64_t next = 0, end = -1;
    double factor = 1;
  };
  std::int64_t gap(std::size_t spec);
  const std::vector<FailSlowSpec>& specs_;
  std::int64_t ranks_;
  std::vector<RngStream> streams_;
  std::vector<State> state_;  // [spec * ranks + rank]
  std::int64_t started_ = 0;
};

}  // namespace tailsim
