#include "sim/run/limits.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <spdlog/spdlog.h>

#include "sim/config/error.hpp"
#include "sim/core/held_bytes.hpp"
#include "sim/stats/step_times.hpp"
#include "sim/workload/workload.hpp"

namespace tailsim {

namespace {

std::string gib(std::uint64_t bytes) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1);
  if (bytes < (1ull << 30)) os << static_cast<double>(bytes) / static_cast<double>(1ull << 20) << " MiB";
  else os << static_cast<double>(bytes) / static_cast<double>(1ull << 30) << " GiB";
  return os.str();
}

std::optional<std::uint64_t> memory_allowed(std::optional<std::uint64_t> limit) {
  return limit ? limit : available_memory_bytes();
}

std::string allowed_text(std::uint64_t available, std::optional<std::uint64_t> limit) {
  return gib(available) + (limit ? " allowed by --max-memory" : " of memory available");
}

// Per run (point x replication) the runner keeps a slot (about 64 bytes) and, from its end until its point
// is merged, its tallies (kTallyBytes a policy); the points under way (one per thread, at most) each gather
// all their replications'. Each point then keeps its records (about kRecordBytes a policy). A tally holds at
// most 32 step-time batch sums (StepBatches::plan).
std::uint64_t results_bytes(std::uint64_t points, std::uint64_t reps, std::uint64_t policies, std::uint64_t in_flight) {
  constexpr std::uint64_t kUnitBytes = 64, kRecordBytes = 1024;
  constexpr std::uint64_t kTallyBytes = sizeof(PolicyTally) + 64 + 32 * sizeof(StepBatches::Int128);
  return points * reps * kUnitBytes + std::min<std::uint64_t>(points, in_flight + 1) * reps * policies * kTallyBytes +
         points * policies * kRecordBytes;
}

}  // namespace

std::string MemoryEstimate::describe() const {
  return gib(total()) + (sketch ? " (quantile sketches " : " (step times kept for exact quantiles ") + gib(step_times) +
         ", working memory of the runs " + gib(working) + ", data held by the sweep points " + gib(held) +
         ", results of the " + std::to_string(units) + " runs " + gib(results) + ")";
}

MemoryEstimate estimate_memory(const Scenario& sc, const std::vector<PointModel>& models, int threads,
                               bool gathered_by_one_process, bool sketch) {
  MemoryEstimate e;
  e.sketch = sketch;
  const auto steps = static_cast<std::uint64_t>(sc.steps);
  const auto reps = static_cast<std::uint64_t>(sc.replications);
  const std::uint64_t unit_steps = (steps + reps - 1) / reps;
  // Runs under way at once: one per thread, at most one per (point, replication).
  const auto in_flight = std::min<std::uint64_t>(static_cast<std::uint64_t>(std::max(1, threads)),
                                                 std::max<std::uint64_t>(1, models.size() * reps));
  std::uint64_t largest_point = 0, all_points = 0, largest_working = 0, largest_policies = 0;
  HeldBytes held;
  for (const PointModel& m : models) {
    const std::uint64_t policies = m.policies.size();
    largest_policies = std::max(largest_policies, policies);
    m.workload->count_held(held);
    const std::uint64_t point = sketch ? reps * policies * kStepSketchBytes : steps * policies * 8;
    largest_point = std::max(largest_point, point);
    all_points += point;
    // Each run under way holds its working memory and reserves its own step times.
    largest_working = std::max(largest_working, m.workload->working_bytes_for(m.policy_views()) +
                                                    policies * (sketch ? kStepSketchBytes : unit_steps * 8));
  }
  // A point being merged holds all its replications' step times; summarizing it sorts a copy (16 bytes a
  // step for one policy at a time); the other threads' runs may belong to other points.
  e.step_times = (gathered_by_one_process ? all_points : std::min<std::uint64_t>(models.size(), 2) * largest_point) +
                 (sketch ? 0 : steps * 16);
  e.working = in_flight * largest_working;
  e.held = held.total();
  e.units = models.size() * reps;
  e.results = results_bytes(models.size(), reps, largest_policies, in_flight);
  return e;
}

std::vector<PointModel> build_points_within(const Scenario& sc, std::optional<std::uint64_t> limit) {
  const std::optional<std::uint64_t> available = memory_allowed(limit);
  const std::uint64_t points = sc.points.size(), reps = static_cast<std::uint64_t>(sc.replications);
  // Before any point is built: the runs' slots and records, counted for one policy a point (the least).
  if (const std::uint64_t least = results_bytes(points, reps, 1, 1); available && least > *available)
    throw InputError(sc.file, "", "this run needs at least " + gib(least) + " for the results of the " +
                                      std::to_string(points * reps) + " runs (points x replications), more than the " +
                                      allowed_text(*available, limit) + "; use fewer replications or sweep fewer values");
  std::vector<PointModel> models;
  models.reserve(sc.points.size());
  HeldBytes held;
  std::set<std::string> warned;
  for (const ScenarioPoint& p : sc.points) {
    models.push_back(build_point(sc, p, &warned));
    models.back().workload->count_held(held);
    // Stops at the first point that passes the limit, before the others are built.
    if (available && held.total() > *available)
      throw InputError(sc.file, "", "the data the sweep's points hold (samples, traces, cost tables) comes to " +
                                        gib(held.total()) + " after " + std::to_string(models.size()) + " of " +
                                        std::to_string(points) + " points, more than the " +
                                        allowed_text(*available, limit) + "; sweep fewer values or use smaller files");
  }
  return models;
}

std::uint64_t parse_memory_flag(const std::string& text, const std::string& flag) {
  double v = 0;
  try {
    v = parse_size_bytes(text);
  } catch (const std::invalid_argument& e) {
    throw InputError("", flag, e.what());
  }
  if (!(v >= 1 && v < 1.8e19)) throw InputError("", flag, "expected a size >= 1 byte (e.g. 8GiB), got '" + text + "'");
  return static_cast<std::uint64_t>(v);
}

void check_memory(const MemoryEstimate& estimate, std::optional<std::uint64_t> limit, const std::string& file) {
  const std::optional<std::uint64_t> available = memory_allowed(limit);
  if (!available || estimate.total() <= *available) return;
  throw InputError(file, "",
                   "this run needs about " + estimate.describe() + ", more than the " + allowed_text(*available, limit) +
                       (estimate.sketch ? "; use fewer threads (--threads), fewer GPUs or a smaller model"
                                        : "; every step time is kept for exact quantiles, so use fewer steps per point, "
                                          "--quantiles sketch, fewer threads (--threads) or fewer GPUs"));
}

bool plan_quantiles(const Scenario& sc, const std::vector<PointModel>& models, int& threads, bool gathered,
                    const std::string& method, std::optional<std::uint64_t> limit) {
  const std::optional<std::uint64_t> available = memory_allowed(limit);
  bool sketch = method == "sketch";
  if (method == "auto") {
    // Decided on one thread's worth, so that the method (and the results) never depend on --threads.
    const MemoryEstimate exact = estimate_memory(sc, models, 1, gathered);
    if (available && exact.total() > *available) {
      sketch = true;
      spdlog::warn("exact quantiles would need about {}; keeping step times in the quantile sketch instead "
                   "(relative error <= 2^-11; --quantiles exact to insist)", exact.describe());
    }
  }
  // More threads than fit run fewer threads, not another method.
  const int asked = std::max(1, threads);
  if (available) {
    int fit = asked;
    while (fit > 1 && estimate_memory(sc, models, fit, gathered, sketch).total() > *available) --fit;
    if (fit < asked) {
      spdlog::warn("running {} thread{} instead of {}: {} would need about {}, more than the {}", fit, fit == 1 ? "" : "s",
                   asked, asked, estimate_memory(sc, models, asked, gathered, sketch).describe(),
                   allowed_text(*available, limit));
      threads = fit;
    }
  }
  check_memory(estimate_memory(sc, models, threads, gathered, sketch), limit, sc.file);
  return sketch;
}

}  // namespace tailsim
