#include "sim/workload/bsp.hpp"

#include <algorithm>
#include <array>
#include <string>

#include "sim/cluster/components.hpp"
#include "sim/config/error.hpp"
#include "sim/core/rng.hpp"
#include "sim/engine/simulator.hpp"
#include "sim/cluster/trace_sink.hpp"
#include "sim/policy/evict.hpp"

namespace tailsim {

namespace {

// The random inputs of a bsp run: one stream per attempt for compute draws and one per attempt for noise,
// each consumed in rank order, so the fast path (chunks) and the event path (whole steps) see the same
// numbers, and every policy sees the same numbers (common random numbers).
class BspDraws {
 public:
  BspDraws(const RunRequest& req, int attempts, const Distribution& compute, const Distribution* noise,
           bool per_draw_times)
      : attempts_(attempts), compute_(compute), noise_(noise), per_draw_times_(per_draw_times) {
    for (int a = 0; a < attempts; ++a) {
      const std::string suffix = a == 0 ? "compute" : "backup/" + std::to_string(a);
      compute_streams_[a] = RngStream(req.seed, "bsp/" + suffix, req.replication);
      noise_streams_[a] = RngStream(req.seed, "bsp/noise/" + std::to_string(a), req.replication);
    }
  }

  // Draws workers [0, n) of a range of group `g`: raw uniforms into keys[a], and durations into times[a]
  // when per-draw times are on. `scratch` holds n noise uniforms; `episode` (null: none) the n workers'
  // fail-slow factors this step, which slow their primary attempt.
  void draw(const WorkerGroup& g, std::int64_t n, std::uint64_t* const* keys, SimTime* const* times,
            std::uint64_t* scratch, const double* episode = nullptr) {
    for (int a = 0; a < attempts_; ++a) {
      compute_streams_[a].fill({keys[a], static_cast<std::size_t>(n)});
      if (!per_draw_times_) continue;
      if (noise_) noise_streams_[a].fill({scratch, static_cast<std::size_t>(n)});
      for (std::int64_t i = 0; i < n; ++i) {
        const double noise = noise_ ? noise_->from_uniform(raw_to_open_uniform(scratch[i])) : 1.0;
        const double factor = BspSetup::attempt_factor(g, a) * (episode && a == 0 ? episode[i] : 1.0);
        times[a][i] = BspSetup::task_ns(factor, noise, compute_.from_uniform(raw_to_open_uniform(keys[a][i])));
      }
    }
  }

 private:
  int attempts_;
  const Distribution& compute_;
  const Distribution* noise_;
  bool per_draw_times_;
  std::array<RngStream, kMaxAttempts> compute_streams_;
  std::array<RngStream, kMaxAttempts> noise_streams_;
};

// Every worker's fail-slow factor at `step` (bsp has no links: link episodes are refused when parsed).
void step_episodes(FailSlowEpisodes& episodes, std::int64_t step, std::vector<double>& factor) {
  std::fill(factor.begin(), factor.end(), 1.0);
  std::vector<double> links(factor.size(), 1.0);
  episodes.at_step(step, factor, links);
}

constexpr std::int64_t kChunk = 2048;  // workers drawn and reduced at a time: fits L1 for every attempt

// The event-driven engine for one policy: each step starts every task's attempts on the GpuArray, arrivals
// go to a Barrier whose release starts the next step, and speculative launches are events too. With
// `evict` (BspEviction) ranks out of service start nothing and the barrier waits for those in service.
class BspEventRun final : public EventHandler, public GpuListener {
 public:
  enum Kind : std::uint32_t { kStepStart, kRelease, kLaunchBackups };

  BspEventRun(const BspSetup& setup, const Policy& policy, BspDraws& draws, int attempts, std::int64_t steps,
              PolicyTally& tally, TraceSink* trace, FailSlowEpisodes* episodes)
      : setup_(setup), policy_(*policy.bsp()), draws_(draws), attempts_(attempts), steps_(steps), tally_(tally),
        self_(sim_.add_handler(this)), gpus_(sim_, setup.gpus, *this), barrier_(sim_, self_, kRelease),
        trace_(trace), episodes_(episodes) {
    if (episodes_) episode_.assign(static_cast<std::size_t>(setup.gpus), 1.0);
    if (policy.evict()) evict_.emplace(*policy.evict(), setup.groups, setup.gpus);
    const auto k = static_cast<std::size_t>(setup.gpus);
    for (int a = 0; a < attempts; ++a) {
      keys_[a].resize(k);
      times_[a].resize(k);
    }
    scratch_.resize(k);
    finish_ns_.resize(k);
    launched_at_.resize(k * kMaxAttempts);
    if (trace_) {
      step_track_ = trace_->add_track("steps");
      gpu_track_ = trace_->add_gpu_tracks(setup.groups);
      winner_.resize(k);
    }
  }

  void run() {
    sim_.schedule_in(0, self_, kStepStart);
    sim_.run();
    tally_.events += sim_.events_executed();
  }

  void handle(Simulator& sim, const Event& e) override {
    switch (e.kind) {
      case kStepStart: start_step(sim); break;
      case kLaunchBackups: launch_backups(sim); break;
      case kRelease: release(sim); break;
    }
  }

  void on_task_done(Simulator& sim, std::int64_t gpu, int attempt) override {
    const SimTime rel = sim.now() - step_start_;
    finish_ns_[gpu] = rel;
    finished_.push_back(rel);
    if (!launch_event_) {
      if (const auto at = policy_.speculate(finished_, setup_.gpus, rel))
        launch_event_ = sim.schedule_at(step_start_ + *at, self_, kLaunchBackups);
    }
    barrier_.arrive();
    if (trace_) {
      winner_[gpu] = attempt;
      if (barrier_.arrived() == quorum_) straggler_ = gpu;  // this arrival releases the barrier
    }
  }

 private:
  void start_step(Simulator& sim) {
    tally_.check_stop();
    step_start_ = sim.now();
    if (episodes_) step_episodes(*episodes_, step_index_, episode_);
    std::array<std::uint64_t*, kMaxAttempts> keys{};
    std::array<SimTime*, kMaxAttempts> times{};
    for (const WorkerGroup& g : setup_.groups) {
      for (int a = 0; a < attempts_; ++a) {
        keys[a] = keys_[a].data() + g.first;
        times[a] = times_[a].data() + g.first;
      }
      draws_.draw(g, g.count, keys.data(), times.data(), scratch_.data(),
                  episodes_ ? episode_.data() + g.first : nullptr);
    }
    finished_.clear();
    launch_event_.reset();
    for (std::int64_t k = 0; k < setup_.gpus; ++k) {
      finish_ns_[k] = -1;
      if (evict_ && (times_[0][k] = evict_->task_ns(k, times_[0][k])) < 0) {
        std::fill_n(launched_at_.begin() + k * kMaxAttempts, kMaxAttempts, SimTime{-1});
        continue;
      }
      gpus_.start_task(k);
      for (int a = 0; a < policy_.attempts_at_start(); ++a) {
        gpus_.start_attempt(k, a, times_[a][k]);
        launched_at_[k * kMaxAttempts + a] = 0;
      }
      for (int a = policy_.attempts_at_start(); a < kMaxAttempts; ++a) launched_at_[k * kMaxAttempts + a] = -1;
    }
    quorum_ = evict_ ? evict_->in_service() : policy_.barrier_quorum(setup_.gpus);
    barrier_.arm(quorum_);
  }

  void launch_backups(Simulator& sim) {
    const SimTime rel = sim.now() - step_start_;
    const int a = policy_.attempts_at_start();
    for (std::int64_t k = 0; k < setup_.gpus; ++k) {
      if (gpus_.done(k)) continue;
      gpus_.start_attempt(k, a, times_[a][k]);
      launched_at_[k * kMaxAttempts + a] = rel;
    }
  }

  void release(Simulator& sim) {
    const SimTime step = sim.now() - step_start_;
    if (launch_event_) sim.cancel(*launch_event_);  // backups not yet launched are moot
    SimTime busy = 0, extra = 0;
    for (std::int64_t k = 0; k < setup_.gpus; ++k) {
      if (evict_ && !evict_->serving(k)) continue;
      if (!gpus_.done(k)) gpus_.abandon(k);
      const SimTime end = finish_ns_[k] < 0 ? step : finish_ns_[k];
      busy += end;
      for (int a = 1; a < kMaxAttempts; ++a)
        if (const SimTime at = launched_at_[k * kMaxAttempts + a]; at >= 0) extra += end - at;
    }
    tally_.add_step(step, evict_ ? evict_->in_service() : setup_.gpus, static_cast<double>(busy) * 1e-9,
                    static_cast<double>(extra) * 1e-9);
    if (trace_) trace_step(step);
    if (evict_) evict_->end_step();
    if (++step_index_ < steps_) sim.schedule_in(0, self_, kStepStart);
    else if (evict_) tally_.evictions = evict_->evictions();
  }

  // Every attempt (a cancelled one until its task ends), each GPU's wait for the release, and the step.
  void trace_step(SimTime step) {
    for (std::int64_t k = 0; k < setup_.gpus; ++k) {
      if (evict_ && !evict_->serving(k)) continue;
      const bool dropped = finish_ns_[k] < 0;
      const SimTime end = dropped ? step : finish_ns_[k];
      for (int a = 0; a < attempts_; ++a) {
        const SimTime at = launched_at_[k * kMaxAttempts + a];
        if (at < 0) continue;
        const bool straggler = k == straggler_ && a == winner_[k];
        TraceArgs args;
        args.add("step", step_index_).add("attempt", a);
        if (a > 0) args.add("runs_on", "a spare healthy GPU");
        if (straggler) args.flag("straggler");
        if (dropped) args.flag("dropped");
        const char* mark = straggler ? " (straggler)" : dropped ? " (dropped)" : "";
        const SimTime stop = std::min(end, at + times_[a][k]);
        trace_->slice(gpu_track_ + k, std::string(a == 0 ? "compute" : "backup") + mark, step_start_ + at,
                      step_start_ + stop, args);
      }
      trace_->slice(gpu_track_ + k, "barrier wait", step_start_ + end, step_start_ + step,
                    TraceArgs().add("step", step_index_));
    }
    trace_->slice(step_track_, "step " + std::to_string(step_index_), step_start_, step_start_ + step,
                  TraceArgs().add("step", step_index_).add("straggler_gpu", straggler_).add("step_ns", step));
  }

  BspSetup setup_;
  const BspPolicy& policy_;
  BspDraws& draws_;
  int attempts_;
  std::int64_t steps_;
  PolicyTally& tally_;
  Simulator sim_;
  std::uint32_t self_;
  GpuArray gpus_;
  Barrier barrier_;
  std::array<std::vector<std::uint64_t>, kMaxAttempts> keys_;
  std::array<std::vector<SimTime>, kMaxAttempts> times_;
  std::vector<std::uint64_t> scratch_;
  std::vector<SimTime> finish_ns_;    // per GPU: finish time relative to the step start, -1 while running
  std::vector<SimTime> launched_at_;  // per GPU and attempt: launch time relative to the step start, -1 if none
  std::vector<SimTime> finished_;     // finish times in arrival order
  std::optional<EventId> launch_event_;
  SimTime step_start_ = 0;
  std::int64_t step_index_ = 0;
  std::int64_t quorum_ = 0;
  TraceSink* trace_;  // null unless tracing
  std::int64_t step_track_ = 0, gpu_track_ = 0;
  std::vector<int> winner_;      // tracing: per GPU, the attempt that finished first
  std::int64_t straggler_ = -1;  // tracing: the GPU whose arrival released the barrier
  std::optional<BspEviction> evict_;  // `evict` only
  FailSlowEpisodes* episodes_;        // null without fail-slow episodes
  std::vector<double> episode_;       // per GPU: this step's fail-slow factor
};

}  // namespace

BspSetup BspWorkload::setup(std::span<const Policy* const> policies) const {
  BspSetup s;
  s.gpus = cluster_.gpus;
  s.groups = cluster_.groups();
  s.compute = compute_.get();
  s.per_draw_times = cluster_.noise != nullptr || !compute_->monotone() || !fail_slow_.empty() ||
                     std::any_of(policies.begin(), policies.end(),
                                 [](const Policy* p) { return p->bsp()->needs_worker_times(); });
  return s;
}

int BspWorkload::attempts_drawn(std::span<const Policy* const> policies) const {
  int attempts = 1;
  for (const Policy* p : policies) attempts = std::max(attempts, p->bsp()->attempts_drawn());
  return attempts;
}

void BspWorkload::check_policy(const Policy& policy) const {
  if (!policy.bsp()) policy.fail("type", "policy '" + policy.type() + "' does not apply to workload 'bsp'");
  if (policy.evict() && !fail_slow_.empty())
    policy.fail("type", "evict with fail_slow on workload 'bsp' is not modelled: a spare would inherit the running "
                        "episode of the worker it replaces (the pipeline workload with pp = 1 runs both)");
  policy.bsp()->check_gpus(cluster_.gpus);
  if (engine_ != BspEngine::kOrderStatistics) return;
  const Policy* const one[] = {&policy};
  if (const std::string why = order_statistics_refusal(one); !why.empty())
    throw InputError(engine_at_.first, engine_at_.second,
                     "engine 'order_statistics' cannot run policy '" + policy.label() + "' exactly: " + why +
                         " (\"engine\": \"fast\" runs it on batched draws)");
}

std::vector<PolicyTally> BspWorkload::run(const RunRequest& request) const {
  // A trace needs every attempt's times: the event path has them, and agrees with the batched path step by step.
  if (request.trace || engine_ == BspEngine::kEvents) return run_events(request);
  const std::string engine = engine_used(request.policies);
  return engine == "order_statistics" ? run_order_statistics(request) : run_fast(request);
}

std::vector<PolicyTally> BspWorkload::run_fast(const RunRequest& req) const {
  const BspSetup s = setup(req.policies);
  const int attempts = attempts_drawn(req.policies);
  BspDraws draws(req, attempts, *compute_, cluster_.noise.get(), s.per_draw_times);
  std::optional<FailSlowEpisodes> episodes;
  std::vector<double> episode;
  if (!fail_slow_.empty()) {
    episodes.emplace(fail_slow_, s.gpus, req.seed, req.replication);
    episode.resize(static_cast<std::size_t>(s.gpus));
  }
  std::vector<std::unique_ptr<BspStepper>> steppers;
  for (const Policy* p : req.policies) steppers.push_back(p->bsp()->make_stepper(s));
  std::vector<PolicyTally> tallies = make_tallies(req);

  std::vector<std::uint64_t> key_buffer(static_cast<std::size_t>(kChunk) * attempts);
  std::vector<SimTime> time_buffer(s.per_draw_times ? static_cast<std::size_t>(kChunk) * attempts : 0);
  std::vector<std::uint64_t> scratch(kChunk);
  BspChunk chunk;
  std::array<std::uint64_t*, kMaxAttempts> keys{};
  std::array<SimTime*, kMaxAttempts> times{};
  for (int a = 0; a < attempts; ++a) {
    keys[a] = key_buffer.data() + a * kChunk;
    chunk.keys[a] = keys[a];
    if (s.per_draw_times) {
      times[a] = time_buffer.data() + a * kChunk;
      chunk.times_ns[a] = times[a];
    }
  }
  for (std::int64_t step = 0; step < req.steps; ++step) {
    // Every step once steps are large (a stop then waits for at most one step of drawing), else every 64.
    if ((step % 64 == 0 || s.gpus >= kChunk) && req.stop && req.stop->load(std::memory_order_relaxed))
      throw RunStopped{};
    for (auto& st : steppers) st->begin_step();
    if (episodes) step_episodes(*episodes, step, episode);
    for (std::size_t gi = 0; gi < s.groups.size(); ++gi) {
      const WorkerGroup& g = s.groups[gi];
      chunk.group = &g;
      chunk.group_index = gi;
      for (std::int64_t first = g.first; first < g.first + g.count; first += kChunk) {
        chunk.first = first;
        chunk.n = std::min(kChunk, g.first + g.count - first);
        draws.draw(g, chunk.n, keys.data(), times.data(), scratch.data(), episodes ? episode.data() + first : nullptr);
        for (auto& st : steppers) st->add_chunk(chunk);
      }
    }
    for (std::size_t p = 0; p < steppers.size(); ++p) {
      const BspStepResult r = steppers[p]->end_step();
      tallies[p].add_step(r.step_ns, r.gpus > 0 ? r.gpus : s.gpus, r.busy_s, r.extra_s);
      tallies[p].events += 1;  // the barrier release: the only event that interacts
    }
  }
  for (std::size_t p = 0; p < steppers.size(); ++p)
    tallies[p].evictions.assign(steppers[p]->evictions().begin(), steppers[p]->evictions().end());
  return tallies;
}

std::vector<PolicyTally> BspWorkload::run_events(const RunRequest& req) const {
  BspSetup with_times = setup(req.policies);
  with_times.per_draw_times = true;  // the event path always knows each attempt's duration
  const int attempts = attempts_drawn(req.policies);
  std::vector<PolicyTally> tallies = make_tallies(req);
  for (std::size_t p = 0; p < req.policies.size(); ++p) {
    // Each policy replays the same streams from their start: common random numbers.
    BspDraws draws(req, attempts, *compute_, cluster_.noise.get(), true);
    std::optional<FailSlowEpisodes> episodes;
    if (!fail_slow_.empty()) episodes.emplace(fail_slow_, with_times.gpus, req.seed, req.replication);
    if (req.trace) req.trace->begin_process(req.policies[p]->label());
    BspEventRun run(with_times, *req.policies[p], draws, attempts, req.steps, tallies[p], req.trace,
                    episodes ? &*episodes : nullptr);
    if (req.steps > 0) run.run();
  }
  return tallies;
}

std::uint64_t BspWorkload::working_bytes(std::size_t policies) const {
  const auto k = static_cast<std::uint64_t>(cluster_.gpus);
  // Fast path: chunk buffers, plus per-worker arrays for policies that need every worker (speculation,
  // drop_slowest: about 24 bytes a worker each). Events: per GPU the draws of every attempt, its state, its
  // pending events (about 256 bytes), one policy at a time.
  const std::uint64_t fast = (1u << 18) + k * 32 * policies;
  return engine_ == BspEngine::kEvents ? fast + k * 256 : fast;
}

void BspWorkload::count_held(HeldBytes& held) const {
  compute_->count_held(held);
  if (cluster_.noise) cluster_.noise->count_held(held);
}

TraceSize BspWorkload::trace_size(std::span<const Policy* const> policies) const {
  const auto k = static_cast<double>(cluster_.gpus);
  // The step, each GPU's attempts and barrier wait.
  return {1 + k * (attempts_drawn(policies) + 1), 2 * (2 + k)};
}

}  // namespace tailsim
