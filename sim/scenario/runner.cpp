#include "sim/scenario/runner.hpp"

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
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

RunResults run_scenario(const Scenario& sc, const std::vector<PointModel>& models, const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  // Replications split a point's steps (the first ones take the remainder); they are the unit of parallel work.
  std::vector<Unit> units;
  for (std::size_t p = 0; p < sc.points.size(); ++p)
    for (std::int64_t r = 0; r < sc.replications; ++r)
      units.push_back({p, r, sc.steps / sc.replications + (r < sc.steps % sc.replications ? 1 : 0)});

  std::vector<UnitResult> results(units.size());
  std::vector<std::vector<const Policy*>> views;
  for (const PointModel& m : models) views.push_back(m.policy_views());
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
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
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
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

  RunResults out;
  out.scenario = sc.name;
  out.seed = sc.seed;
  out.steps = sc.steps;
  for (const SweepAxis& a : sc.axes) out.param_names.push_back(a.path);
  std::size_t u = 0;
  for (std::size_t p = 0; p < sc.points.size(); ++p) {
    const auto& policies = models[p].policies;
    std::vector<PolicyTally> merged(policies.size());
    double wall = 0;
    for (std::int64_t r = 0; r < sc.replications; ++r, ++u) {
      for (std::size_t k = 0; k < policies.size(); ++k) {
        if (r == 0) merged[k] = std::move(results[u].tallies[k]);
        else merged[k].merge(results[u].tallies[k]);
      }
      wall += results[u].wall_seconds;
      std::vector<PolicyTally>().swap(results[u].tallies);  // free the steps as soon as they are merged
    }
    for (std::size_t k = 0; k < policies.size(); ++k) {
      Record rec;
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
      out.records.push_back(std::move(rec));
    }
  }
  // Slowdown against the K = 1 point with the same other parameters and policy.
  const auto gpus_axis = std::find(out.param_names.begin(), out.param_names.end(), "cluster.gpus");
  if (gpus_axis != out.param_names.end()) {
    const std::size_t axis = static_cast<std::size_t>(gpus_axis - out.param_names.begin());
    for (Record& rec : out.records) {
      for (const Record& base : out.records) {
        if (base.policy != rec.policy || base.params[axis].second != Json(1)) continue;
        bool same = true;
        for (std::size_t a = 0; a < rec.params.size(); ++a)
          if (a != axis && rec.params[a].second != base.params[a].second) same = false;
        if (same && base.step_time.mean > 0) rec.slowdown_vs_k1 = rec.step_time.mean / base.step_time.mean;
      }
    }
  }
  out.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace tailsim
