#include "sim/run/runner.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <span>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <spdlog/spdlog.h>

#include "sim/core/bytes.hpp"
#include "sim/core/time.hpp"
#include "sim/run/tally_records.hpp"

namespace tailsim {

std::vector<PointModel> build_all_points(const Scenario& scenario) {
  std::vector<PointModel> models;
  models.reserve(scenario.points.size());
  std::set<std::string> warned;
  for (const ScenarioPoint& p : scenario.points) models.push_back(build_point(scenario, p, &warned));
  return models;
}

RunRequest make_run_request(const Scenario& scenario, std::uint64_t replication, std::int64_t steps,
                            std::span<const Policy* const> policies) {
  RunRequest req;
  req.seed = scenario.seed;
  req.replication = replication;
  req.steps = steps;
  req.policies = policies;
  req.batches = StepBatches::plan(steps, scenario.replications);
  return req;
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
  bool done = false;
};

// Binary form of unit results for another process of the same binary (MPI ranks).
void serialize_unit(std::string& out, std::size_t index, const UnitResult& u) {
  put_bytes(out, static_cast<std::uint64_t>(index));
  put_bytes(out, u.wall_seconds);
  put_bytes(out, static_cast<std::uint64_t>(u.tallies.size()));
  for (const PolicyTally& t : u.tallies) {
    t.steps.serialize(out);
    t.batches.serialize(out);
    PolicyTally::for_each_sum(t, [&](const CompensatedSum& v) {
      put_bytes(out, v.sum());
      put_bytes(out, v.compensation());
    });
    put_bytes(out, t.events);
    put_bytes(out, t.moe.layer_steps);
    const WhatIfTally& w = t.whatif;
    put_bytes(out, w.steps);
    put_bytes(out, static_cast<std::uint64_t>(w.by_dp_rank_s.size()));
    put_bytes(out, static_cast<std::uint64_t>(w.by_stage_s.size()));
    const auto put_sum = [&](const CompensatedSum& v) {
      put_bytes(out, v.sum());
      put_bytes(out, v.compensation());
    };
    for (const CompensatedSum* v : {&w.actual_s, &w.counterfactual_s, &w.ideal_s}) put_sum(*v);
    for (const CompensatedSum& v : w.by_dp_rank_s) put_sum(v);
    for (const CompensatedSum& v : w.by_stage_s) put_sum(v);
    put_bytes(out, static_cast<std::uint64_t>(t.evictions.size()));
    for (const Eviction& e : t.evictions) put_bytes(out, std::array<std::int64_t, 3>{e.rank, e.step, e.spare});
  }
}

void deserialize_units(const std::string& in, std::vector<UnitResult>& results) {
  std::size_t pos = 0;
  while (pos < in.size()) {
    const auto index = take_bytes<std::uint64_t>(in, pos);
    if (index >= results.size()) throw std::runtime_error("unit index out of range from another rank");
    UnitResult& u = results[index];
    u.wall_seconds = take_bytes<double>(in, pos);
    u.done = true;
    u.tallies.resize(take_bytes<std::uint64_t>(in, pos));
    for (PolicyTally& t : u.tallies) {
      t.steps = StepTimes::deserialize(in, pos);
      t.batches = StepBatches::deserialize(in, pos);
      PolicyTally::for_each_sum(t, [&](CompensatedSum& v) {
        const double sum = take_bytes<double>(in, pos);
        v = CompensatedSum::from_parts(sum, take_bytes<double>(in, pos));
      });
      t.events = take_bytes<std::uint64_t>(in, pos);
      t.moe.layer_steps = take_bytes<std::int64_t>(in, pos);
      WhatIfTally& w = t.whatif;
      w.steps = take_bytes<std::int64_t>(in, pos);
      w.by_dp_rank_s.resize(take_bytes<std::uint64_t>(in, pos));
      w.by_stage_s.resize(take_bytes<std::uint64_t>(in, pos));
      const auto take_sum = [&](CompensatedSum& v) {
        const double sum = take_bytes<double>(in, pos);
        v = CompensatedSum::from_parts(sum, take_bytes<double>(in, pos));
      };
      for (CompensatedSum* v : {&w.actual_s, &w.counterfactual_s, &w.ideal_s}) take_sum(*v);
      for (CompensatedSum& v : w.by_dp_rank_s) take_sum(v);
      for (CompensatedSum& v : w.by_stage_s) take_sum(v);
      t.evictions.resize(take_bytes<std::uint64_t>(in, pos));
      for (Eviction& e : t.evictions) {
        const auto v = take_bytes<std::array<std::int64_t, 3>>(in, pos);
        e = {v[0], v[1], v[2] != 0};
      }
    }
  }
}

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
  const std::string engine = model.workload->engine_used(model.policy_views());
  for (std::size_t k = 0; k < policies.size(); ++k) {
    Record rec;
    rec.engine = engine;
    rec.point = p;
    rec.params = sc.points[p].params;
    rec.policy = policies[k]->label();
    PolicyTally& t = merged[k];
    rec.step_time = std::move(t.steps).summarize();
    const double gpu_time = t.gpu_time_s, busy = t.busy_s, extra = t.extra_s;
    rec.idle_fraction = gpu_time > 0 ? std::max(0.0, (gpu_time - busy) / gpu_time) : 0.0;
    // The moe workload's busy time counts communication: its copies are set against the useful compute.
    const double useful = t.moe.layer_steps > 0 ? static_cast<double>(t.moe.compute_s) - extra : busy;
    if (policies[k]->copies_work()) rec.extra_work_fraction = useful > 0 ? extra / useful : 0.0;
    rec.events = t.events;
    if (t.moe.layer_steps > 0) {
      rec.moe = moe_record(t.moe);
      const double steps = static_cast<double>(rec.step_time.count), mean = rec.step_time.mean;
      if (rec.moe->weights && steps > 0) rec.moe->weights->stall_s /= steps;
      if (steps > 0 && mean > 0) {
        rec.moe->tokens_per_s = t.moe.step_tokens / steps / mean;
        rec.moe->tokens_per_s_per_gpu = t.moe.gpu_step_tokens / steps / mean;
      }
    }
    if (t.whatif.steps > 0) rec.whatif = whatif_record(t.whatif);
    if (policies[k]->evict()) rec.evicted = std::move(t.evictions);
    if (k != model.baseline)
      if (const auto s = paired_speedup(merged[model.baseline].batches, t.batches))
        rec.vs_baseline = VsBaseline{policies[model.baseline]->label(), s->speedup, s->ci95_low, s->ci95_high};
    rec.wall_seconds = wall;
    out.push_back(std::move(rec));
  }
  return out;
}

}  // namespace

namespace {

// One call of run_scenario: the (point, replication) units, the threads that run them, and the merge.
class ScenarioRun {
 public:
  ScenarioRun(const Scenario& sc, const std::vector<PointModel>& models, const RunOptions& options)
      : sc_(sc), models_(models), options_(options), remaining_(sc.points.size()), records_(sc.points.size()) {
    plan_units();
    for (const PointModel& m : models) views_.push_back(m.policy_views());
    // With a distributor this process runs its share of the units; points are merged after the gather.
    if (options.distributor && options.distributor->size() > 1) dist_ = options.distributor;
    for (std::size_t i = 0; i < units_.size(); ++i)
      if (!dist_ || static_cast<int>(i % static_cast<std::size_t>(dist_->size())) == dist_->rank()) mine_.push_back(i);
    progress_.units = mine_.size();
    for (const std::size_t i : mine_) progress_.work += unit_work(i);
  }

  RunResults run() {
    run_threads();
    if (error_) std::rethrow_exception(error_);
    RunResults out = results_header(sc_);
    if (dist_ && !gather(out)) return out;  // not rank 0: no records
    for (std::vector<Record>& point : records_)
      for (Record& rec : point) out.records.push_back(std::move(rec));
    out.stopped = out.stopped || stopped_;
    out.sketch_quantiles = options_.sketch_quantiles;
    assemble_results(out);
    return out;
  }

 private:
  bool runs(std::size_t p) const { return options_.run_point.empty() || options_.run_point[p]; }

  // Replications split a point's steps (the first ones take the remainder); they are the unit of parallel
  // work. Units are point-major, so a point's replications are contiguous.
  void plan_units() {
    first_unit_.assign(sc_.points.size(), 0);
    for (std::size_t p = 0; p < sc_.points.size(); ++p) {
      first_unit_[p] = units_.size();
      remaining_[p] = runs(p) ? sc_.replications : 0;
      if (!runs(p)) continue;
      for (std::int64_t r = 0; r < sc_.replications; ++r)
        units_.push_back({p, r, sc_.steps / sc_.replications + (r < sc_.steps % sc_.replications ? 1 : 0)});
    }
    results_.resize(units_.size());
  }

  // The calling thread works too; a thread the system cannot create is a warning, not an abort (the run
  // goes on with fewer, and its results do not depend on how many). TAILSIM_FAULT_THREADS=N, fault
  // injection for the tests: the system refuses every thread past the N-th.
  void run_threads() {
    const int threads = std::max(1, std::min<int>(options_.threads, static_cast<int>(mine_.size())));
    const char* fault = std::getenv("TAILSIM_FAULT_THREADS");
    const int allowed = fault && *fault ? std::atoi(fault) : threads;
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) {
      try {
        if (t >= allowed) throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
        pool.emplace_back([this] { work(); });
      } catch (const std::system_error& e) {
        spdlog::warn("could not start thread {} of {} ({}): running on {}", t + 1, threads, e.what(), t);
        break;
      }
    }
    work();
    for (std::thread& t : pool) t.join();
  }

  void work() {
    for (std::size_t m = next_++; m < mine_.size(); m = next_++) {
      if (options_.stop && options_.stop->load()) {
        stopped_ = true;
        break;
      }
      try {
        run_unit(mine_[m]);
      } catch (const RunStopped&) {
        stopped_ = true;
        next_ = mine_.size();
      } catch (const ClockOverflow& e) {  // a duration the workload drew: name the scenario and the point
        const ScenarioPoint& point = sc_.points[units_[mine_[m]].point];
        fail(std::make_exception_ptr(InputError(
            sc_.file, "/workload", std::string(e.what()) + (point.params.empty() ? "" : " (at sweep point " + point.label() + ")"))));
      } catch (...) {
        fail(std::current_exception());
      }
    }
  }

  void fail(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = std::move(e);
    next_ = mine_.size();
  }

  double unit_work(std::size_t i) const {
    const Unit& u = units_[i];
    return static_cast<double>(u.steps) * static_cast<double>(views_[u.point].size()) *
           models_[u.point].workload->step_work();
  }

  void run_unit(std::size_t i) {
    const Unit& u = units_[i];
    const auto t0 = std::chrono::steady_clock::now();
    RunRequest req = make_run_request(sc_, static_cast<std::uint64_t>(u.replication), u.steps, views_[u.point]);
    req.stop = options_.stop;
    req.sketch_quantiles = options_.sketch_quantiles;
    results_[i].tallies = models_[u.point].workload->run(req);
    results_[i].done = true;
    results_[i].wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spdlog::debug("point {} replication {}: {} steps in {:.3f} s", u.point, u.replication, u.steps, results_[i].wall_seconds);
    // The thread that finishes a point's last replication merges the point.
    if (!dist_ && --remaining_[u.point] == 0) {
      finish_point(u.point);
      std::lock_guard<std::mutex> lock(mutex_);
      if (options_.on_point && !error_) options_.on_point(records_[u.point]);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ++progress_.units_done;
    progress_.work_done += unit_work(i);
    if (options_.on_progress && !error_) options_.on_progress(progress_);
  }

  void finish_point(std::size_t p) {
    records_[p] = point_records(sc_, p, models_[p],
                                std::span<UnitResult>(results_).subspan(first_unit_[p], static_cast<std::size_t>(sc_.replications)));
  }

  // Every rank's units to rank 0, which merges the points; false on the other ranks.
  bool gather(RunResults& out) {
    std::string bytes;
    for (const std::size_t i : mine_)
      if (results_[i].done) serialize_unit(bytes, i, results_[i]);
    const std::vector<std::string> all = dist_->gather(bytes);
    if (dist_->rank() != 0) return false;
    for (std::size_t r = 1; r < all.size(); ++r) deserialize_units(all[r], results_);
    for (std::size_t p = 0; p < sc_.points.size(); ++p) {
      if (!runs(p)) continue;
      const auto first = results_.begin() + static_cast<std::ptrdiff_t>(first_unit_[p]);
      if (!std::all_of(first, first + sc_.replications, [](const UnitResult& u) { return u.done; })) {
        out.stopped = true;  // another rank stopped before this point completed
        continue;
      }
      finish_point(p);
      if (options_.on_point) options_.on_point(records_[p]);
    }
    return true;
  }

  const Scenario& sc_;
  const std::vector<PointModel>& models_;
  const RunOptions& options_;
  std::vector<Unit> units_;
  std::vector<std::size_t> first_unit_;  // per point
  std::vector<UnitResult> results_;      // per unit
  std::vector<std::vector<const Policy*>> views_;
  std::vector<std::atomic<std::int64_t>> remaining_;  // per point: replications not yet run
  std::vector<std::vector<Record>> records_;          // per point, once merged
  Distributor* dist_ = nullptr;
  std::vector<std::size_t> mine_;  // the units this process runs
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> stopped_{false};
  RunProgress progress_;  // of this process's units
  std::exception_ptr error_;
  std::mutex mutex_;  // guards error_, progress_ and the callbacks
};

}  // namespace

RunResults run_scenario(const Scenario& sc, const std::vector<PointModel>& models, const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  RunResults out = ScenarioRun(sc, models, options).run();
  out.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

void assemble_results(RunResults& out) {
  std::stable_sort(out.records.begin(), out.records.end(),
                   [](const Record& a, const Record& b) { return a.point < b.point; });
  const auto gpus_axis = std::find(out.param_names.begin(), out.param_names.end(), "cluster.gpus");
  if (gpus_axis == out.param_names.end()) return;
  const std::size_t axis = static_cast<std::size_t>(gpus_axis - out.param_names.begin());
  // Key: the policy and every other parameter; one pass to find the K = 1 means, one to divide by them.
  const auto key = [&](const Record& rec) {
    std::string k = rec.policy;
    for (std::size_t a = 0; a < rec.params.size(); ++a)
      if (a != axis) k += '\x1f' + rec.params[a].second.dump();
    return k;
  };
  std::map<std::string, double> base_mean;
  for (const Record& rec : out.records)
    if (rec.params[axis].second == Json(1) && rec.step_time.mean > 0) base_mean[key(rec)] = rec.step_time.mean;
  for (Record& rec : out.records) {
    const auto base = base_mean.find(key(rec));
    if (base == base_mean.end()) rec.slowdown_vs_k1.reset();
    else rec.slowdown_vs_k1 = rec.step_time.mean / base->second;
  }
}

}  // namespace tailsim
