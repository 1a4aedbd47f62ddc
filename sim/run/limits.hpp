// Resource limits checked before a scenario starts: an estimate of the memory it needs, compared with the
// memory available (or --max-memory), so that a run too big for the machine is refused with a message that
// says why, instead of being killed part-way by the kernel.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/config/files.hpp"
#include "sim/scenario/scenario.hpp"

namespace tailsim {

struct MemoryEstimate {
  std::uint64_t step_times = 0;  // step times kept for quantiles (every one, or the sketches), at the peak
  std::uint64_t working = 0;     // the runs under way (per-GPU arrays, routers, buffers)
  std::uint64_t held = 0;        // what every built point holds for the whole run (samples, cost tables)
  std::uint64_t results = 0;     // per run (point x replication): its slot and its tallies, and the records
  std::uint64_t units = 0;       // points x replications
  bool sketch = false;           // quantiles from the sketch, not from every step time
  std::uint64_t total() const { return step_times + working + held + results; }
  std::string describe() const;  // "2.1 GiB (step times 1.9 GiB, working memory 0.2 GiB)"
};

// Peak memory of running `scenario` with `threads` threads: the runs under way hold their step times and
// working memory; a point being merged holds all its replications' step times, and summarizing it sorts a
// copy. With `gathered_by_one_process` (rank 0 under MPI) every point's step times meet in one process.
// With `sketch`, step times take a fixed-size quantile sketch per policy and run instead of 8 bytes a step.
MemoryEstimate estimate_memory(const Scenario& scenario, const std::vector<PointModel>& models, int threads,
                               bool gathered_by_one_process = false, bool sketch = false);

// Builds every point of `scenario` (as build_all_points), refusing with InputError before the memory is
// used: first when the runs' results alone would pass `limit` (--max-memory, or the memory available), then
// as soon as the data the points built so far hold passes it (what points share is counted once).
std::vector<PointModel> build_points_within(const Scenario& scenario, std::optional<std::uint64_t> limit);

// Parses a size such as "512MiB", "8GB", "1.5GiB" or a plain number of bytes; InputError naming `flag`.
std::uint64_t parse_memory_flag(const std::string& text, const std::string& flag);

// Throws InputError when the estimate exceeds `limit` (--max-memory) or, without one, the available memory.
void check_memory(const MemoryEstimate& estimate, std::optional<std::uint64_t> limit, const std::string& file);

// How a run keeps its quantiles, for --quantiles `method` (auto, exact or sketch): auto keeps every step time
// while one thread's worth fits in `limit` (or the memory available) and switches to the sketch beyond, saying
// so on stderr; the choice never depends on `threads`. When `threads` runs would not fit, lowers `threads` to
// as many as fit (saying so on stderr). Returns true for the sketch; throws InputError (check_memory) when the
// run fits neither way.
bool plan_quantiles(const Scenario& scenario, const std::vector<PointModel>& models, int& threads, bool gathered,
                    const std::string& method, std::optional<std::uint64_t> limit);

}  // namespace tailsim
