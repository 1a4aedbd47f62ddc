#include "sim/scenario/runner.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <span>
#include <thread>

#include <spdlog/spdlog.h>

namespace tailsim {

std::vector<PointModel> build_all_points(const Scenario& scenario) {
  std::vector<PointModel> models;
  models.reserve(scenario.points.size());
  for (const ScenarioPoint& p : scenario.points) models.push_back(build_point(scenario, p));
  return models;
}

namespace {

struct Unit {
  std::size_t point;
  std::int64_t replication;
  std::int64_t steps;
};

struct UnitResult {
  std::vector<PolicyTally> tallies;
  double wall_seconds = 0;
};

}  // namespace

RunResults results_header(const Scenario& sc) {
  RunResults out;
  out.scenario = sc.name;
  out.seed = sc.seed;
  out.steps = sc.steps;
  for (const SweepAxis& a : sc.axes) out.param_names.push_back(a.path);
  return out;
}

namespace {

// The records of one point from its replications' tallies, merged in replication order.
std::vector<Record> point_records(const Scenario& sc, std::size_t p, const PointModel& model,
                                  std::span<UnitResult> replications) {
  const auto& policies = model.policies;
  std::vector<PolicyTally> merged(policies.size());
  double wall = 0;
  for (std::size_t r = 0; r < replications.size(); ++r) {
    for (std::size_t k = 0; k < policies.size(); ++k) {
      if (r == 0) merged[k] = std::move(replications[r].tallies[k]);
      else merged[k].merge(replications[r].tallies[k]);
    }
    wall += replications[r].wall_seconds;
    std::vector<PolicyTally>().swap(replications[r].tallies);  // free the steps as soon as they are merged
  }
  std::vector<Record> out;
  for (std::size_t k = 0; k < policies.size(); ++k) {
    Record rec;
    rec.point = p;
    rec.params = sc.points[p].params;
    rec.policy = policies[k]->label();
    PolicyTally& t = merged[k];
    rec.step_time = summarize_steps(std::move(t.step_ns));
    rec.idle_fraction = t.gpu_time_s > 0 ? std::max(0.0, (t.gpu_time_s - t.busy_s) / t.gpu_time_s) : 0.0;
    if (policies[k]->attempts_drawn() > 1) rec.extra_work_fraction = t.busy_s > 0 ? t.extra_s / t.busy_s : 0.0;
    rec.events = t.events;
    if (t.moe.layer_steps > 0) {
      const MoeTally& m = t.moe;
      const double total = m.compute_s + m.communication_s + m.wait_s;
      MoeRecord mr;
      mr.load_imbalance = m.load_imbalance_sum / static_cast<double>(m.layer_steps);
      mr.compute_fraction = total > 0 ? m.compute_s / total : 0;
      mr.communication_fraction = total > 0 ? m.communication_s / total : 0;
      mr.barrier_wait_fraction = total > 0 ? m.wait_s / total : 0;
      mr.bytes_moved = m.bytes_moved;
      rec.moe = mr;
    }
    rec.wall_seconds = wall;
    out.push_back(std::move(rec));
  }
  return out;
}

}  // namespace

RunResults run_scenario(const Scenario& sc, const std::vector<PointModel>& models, const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  // Replications split a point's steps (the first ones take the remainder); they are the unit of parallel work.
  // Units are point-major, so a point's replications are contiguous.
  const auto runs = [&](std::size_t p) { return options.run_point.empty() || options.run_point[p]; };
  std::vector<Unit> units;
  std::vector<std::size_t> first_unit(sc.points.size(), 0);
  for (std::size_t p = 0; p < sc.points.size(); ++p) {
    first_unit[p] = units.size();
    if (!runs(p)) continue;
    for (std::int64_t r = 0; r < sc.replications; ++r)
      units.push_back({p, r, sc.steps / sc.replications + (r < sc.steps % sc.replications ? 1 : 0)});
  }

  std::vector<UnitResult> results(units.size());
  std::vector<std::vector<const Policy*>> views;
  for (const PointModel& m : models) views.push_back(m.policy_views());
  std::vector<std::atomic<std::int64_t>> remaining(sc.points.size());
  for (std::size_t p = 0; p < sc.points.size(); ++p) remaining[p] = runs(p) ? sc.replications : 0;
  std::vector<std::vector<Record>> records(sc.points.size());
  std::atomic<std::size_t> next{0};
  std::size_t done = 0;
  std::exception_ptr error;
  std::mutex mutex;  // guards error, done and the callbacks
  auto worker = [&] {
    for (std::size_t i = next++; i < units.size(); i = next++) {
      try {
        const Unit& u = units[i];
        const auto t0 = std::chrono::steady_clock::now();
        RunRequest req;
        req.seed = sc.seed;
        req.point = u.point;
        req.replication = static_cast<std::uint64_t>(u.replication);
        req.steps = u.steps;
        req.policies = views[u.point];
        results[i].tallies = models[u.point].workload->run(req);
        results[i].wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        spdlog::debug("point {} replication {}: {} steps in {:.3f} s", u.point, u.replication, u.steps,
                      results[i].wall_seconds);
        // The thread that finishes a point's last replication merges the point.
        if (--remaining[u.point] == 0) {
          records[u.point] = point_records(
              sc, u.point, models[u.point],
              std::span<UnitResult>(results).subspan(first_unit[u.point], static_cast<std::size_t>(sc.replications)));
          std::lock_guard<std::mutex> lock(mutex);
          if (options.on_point && !error) options.on_point(records[u.point]);
        }
        std::lock_guard<std::mutex> lock(mutex);
        ++done;
        if (options.on_progress && !error) options.on_progress(done, units.size());
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        next = units.size();
      }
    }
  };
  const int threads = std::max(1, std::min<int>(options.threads, static_cast<int>(units.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);

  RunResults out = results_header(sc);
  for (std::vector<Record>& point : records)
    for (Record& rec : point) out.records.push_back(std::move(rec));
  assemble_results(out);
  out.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

void assemble_results(RunResults& out) {
  std::stable_sort(out.records.begin(), out.records.end(),
                   [](const Record& a, const Record& b) { return a.point < b.point; });
  const auto gpus_axis = std::find(out.param_names.begin(), out.param_names.end(), "cluster.gpus");
  if (gpus_axis == out.param_names.end()) return;
  const std::size_t axis = static_cast<std::size_t>(gpus_axis - out.param_names.begin());
  for (Record& rec : out.records) {
    rec.slowdown_vs_k1.reset();
    for (const Record& base : out.records) {
      if (base.policy != rec.policy || base.params[axis].second != Json(1)) continue;
      bool same = true;
      for (std::size_t a = 0; a < rec.params.size(); ++a)
        if (a != axis && rec.params[a].second != base.params[a].second) same = false;
      if (same && base.step_time.mean > 0) rec.slowdown_vs_k1 = rec.step_time.mean / base.step_time.mean;
    }
  }
}

}  // namespace tailsim
