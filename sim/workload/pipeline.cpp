#include "sim/workload/pipeline.hpp"

#include <algorithm>

#include "sim/cluster/trace_sink.hpp"
#include "sim/core/rng.hpp"
#include "sim/policy/evict.hpp"
#include "sim/workload/pipeline_whatif.hpp"

namespace tailsim {

DpBarrier::DpBarrier(const DpPhase& phase, int stages)
    : phase_(phase), stages_(stages), ready_ns_(static_cast<std::size_t>(stages * phase.buckets), 0) {}

void DpBarrier::begin_step() { std::fill(ready_ns_.begin(), ready_ns_.end(), 0); }

void DpBarrier::add(const ReplicaTimes& t) {
  const int nb = phase_.buckets;
  for (int s = 0; s < stages_; ++s) {
    const SimTime start = t.last_bwd_start_ns[static_cast<std::size_t>(s)], end = t.flush_ns[static_cast<std::size_t>(s)];
    for (int b = 0; b < nb; ++b) {
      // Overlapped: bucket b's gradients are complete (b + 1) / nb of the way through the last backward.
      const SimTime ready = phase_.overlap ? start + (end - start) * (b + 1) / nb : end;
      SimTime& slot = ready_ns_[static_cast<std::size_t>(s * nb + b)];
      slot = std::max(slot, ready);
    }
  }
}

SimTime DpBarrier::step_ns() const {
  const int nb = phase_.buckets;
  SimTime step = 0;
  for (int s = 0; s < stages_; ++s) {
    const SimTime reduce = phase_.reduce_ns[static_cast<std::size_t>(s)];
    SimTime done = 0;
    for (int b = 0; b < nb; ++b) {
      // Buckets all-reduce one after another on the stage's ring; the last one takes the remainder.
      const SimTime share = reduce / nb + (b == nb - 1 ? reduce % nb : 0);
      done = std::max(done, ready_ns_[static_cast<std::size_t>(s * nb + b)]) + share;
    }
    step = std::max(step, done + phase_.tail_ns[static_cast<std::size_t>(s)]);
  }
  return step;
}

namespace {

// Fills every replica's task durations for one step: drawn (compute and noise streams, consumed in replica,
// stage, chunk, microbatch order) or replayed from the trace (step `step` cycles through it).
class PipelineDraws {
 public:
  PipelineDraws(const PipelineConfig& cfg, const ClusterSpec& cluster, const RunRequest& req)
      : cfg_(cfg), noise_(cluster.noise.get()), compute_(req.seed, "pipeline/compute", req.replication),
        noise_stream_(req.seed, "pipeline/noise", req.replication) {}

  void fill(std::int64_t step, std::vector<ReplicaDurations>& reps, const std::vector<double>& rank_factor) {
    const PipeShape& s = cfg_.shape;
    const int p = s.stages, m = s.microbatches;
    for (int d = 0; d < cfg_.dp; ++d) {
      ReplicaDurations& r = reps[static_cast<std::size_t>(d)];
      for (int v = 0; v < s.virtual_stages(); ++v) {
        const int stage = v % p;
        const double factor = rank_factor[static_cast<std::size_t>(cfg_.rank(d, stage))];
        for (int mb = 0; mb < m; ++mb) {
          const std::size_t i = static_cast<std::size_t>(v * m + mb);
          double f = 0, b = 0;
          if (cfg_.trace) {
            const PipelineTrace& t = *cfg_.trace;
            const std::size_t at = t.index(static_cast<std::size_t>(step) % t.steps.size(), d, stage, mb);
            f = t.fwd_s[at];
            b = t.bwd_s[at];
          } else {
            const Distribution& fd = *cfg_.forward[static_cast<std::size_t>(stage)];
            f = fd.from_uniform(compute_.uniform()) / s.chunks;
            const double u = compute_.uniform();
            b = cfg_.backward.empty() ? cfg_.backward_factor * fd.from_uniform(u) / s.chunks
                                      : cfg_.backward[static_cast<std::size_t>(stage)]->from_uniform(u) / s.chunks;
            if (noise_) {
              f *= noise_->from_uniform(noise_stream_.uniform());
              b *= noise_->from_uniform(noise_stream_.uniform());
            }
          }
          r.fwd_ns[i] = seconds_to_ns(f * factor);
          r.bwd_ns[i] = seconds_to_ns(b * factor);
        }
      }
    }
  }

 private:
  const PipelineConfig& cfg_;
  const Distribution* noise_;
  RngStream compute_, noise_stream_;
};

}  // namespace

std::vector<ReplicaDurations> empty_replicas(const PipelineConfig& cfg) {
  const PipeShape& s = cfg.shape;
  std::vector<ReplicaDurations> reps(static_cast<std::size_t>(cfg.dp));
  const auto n = static_cast<std::size_t>(s.virtual_stages() * s.microbatches);
  const auto p = static_cast<std::size_t>(s.stages);
  for (std::size_t d = 0; d < reps.size(); ++d) {
    reps[d].fwd_ns.assign(n, 0);
    reps[d].bwd_ns.assign(n, 0);
    reps[d].p2p_fwd_ns.assign(cfg.p2p_fwd_ns.begin() + static_cast<std::ptrdiff_t>(d * p),
                              cfg.p2p_fwd_ns.begin() + static_cast<std::ptrdiff_t>((d + 1) * p));
    reps[d].p2p_bwd_ns.assign(cfg.p2p_bwd_ns.begin() + static_cast<std::ptrdiff_t>(d * p),
                              cfg.p2p_bwd_ns.begin() + static_cast<std::ptrdiff_t>((d + 1) * p));
  }
  return reps;
}

SimTime pipeline_step_ns(const PipelineConfig& cfg, const std::vector<std::vector<PipeOp>>& orders,
                         const std::vector<ReplicaDurations>& reps, bool events, ReplicaTimes& scratch,
                         SimTime* busy_ns, std::uint64_t* events_run, int drop, const DpPhase* phase) {
  DpBarrier barrier(phase ? *phase : cfg.phase, cfg.shape.stages);
  barrier.begin_step();
  std::vector<ReplicaTimes> kept;
  for (const ReplicaDurations& r : reps) {
    if (events) replica_times_events(cfg.shape, orders, r, scratch, events_run);
    else replica_times_fast(cfg.shape, orders, r, scratch);
    if (busy_ns) *busy_ns += scratch.busy_ns;
    if (drop > 0) kept.push_back(scratch);
    else barrier.add(scratch);
  }
  if (drop > 0) {
    // The replicas whose gradients are complete last are left out (ties: the higher replica index).
    const auto done = [](const ReplicaTimes& t) { return *std::max_element(t.flush_ns.begin(), t.flush_ns.end()); };
    std::stable_sort(kept.begin(), kept.end(), [&](const ReplicaTimes& a, const ReplicaTimes& b) { return done(a) < done(b); });
    for (std::size_t i = 0; i + static_cast<std::size_t>(drop) < kept.size(); ++i) barrier.add(kept[i]);
  }
  return barrier.step_ns();
}

void PipelineWorkload::check_policy(const Policy& policy) const {
  if (policy.type() != "none" && policy.type() != "drop_slowest" && !policy.evict())
    policy.fail("type", "policy '" + policy.type() + "' does not apply to workload 'pipeline' (valid: none, drop_slowest, evict)");
  if (policy.type() == "drop_slowest") policy.bsp()->check_gpus(cfg_.dp);
}

namespace {

// Per policy: each rank's compute factor this step (episodes on top of the persistent factors; a rank
// replaced by a spare keeps only its stage's factor), and which replicas are still in service.
struct RankState {
  std::vector<double> factor, step_factor;
  std::vector<bool> replaced, replica_gone;
  int replicas = 0;
  void begin_step(const PipelineConfig& cfg, std::int64_t step) {
    step_factor = factor;
    for (const SlowEpisode& e : cfg.episodes)
      if (step >= e.first_step && (e.end_step < 0 || step < e.end_step))
        for (const std::int64_t r : e.ranks)
          if (!replaced[static_cast<std::size_t>(r)]) step_factor[static_cast<std::size_t>(r)] *= e.factor;
    // Without spares the replicas left share the step's work (the same global batch).
    const double share = static_cast<double>(cfg.dp) / replicas;
    if (share != 1.0)
      for (double& f : step_factor) f *= share;
  }
  // Ranks leaving service: a spare takes a rank's place (keeping only its stage's factor; its fail-slow
  // episode ends), else the rank's replica leaves (the last one stays).
  void depart(const PipelineConfig& cfg, const std::vector<std::int64_t>& leaving, EvictController& evict,
              FailSlowEpisodes* episodes, std::int64_t next_step, std::vector<Eviction>& out) {
    for (const std::int64_t r : leaving) {
      if (evict.take_spare()) {
        out.push_back({r, next_step, true});
        replaced[static_cast<std::size_t>(r)] = true;
        factor[static_cast<std::size_t>(r)] = cfg.stage_factor[static_cast<std::size_t>(cfg.stage_of(r))];
        evict.replaced(r);
        if (episodes) episodes->end(r);
        continue;
      }
      const int d = cfg.replica_of(r);
      if (replica_gone[static_cast<std::size_t>(d)] || replicas == 1) continue;
      out.push_back({r, next_step, false});
      replica_gone[static_cast<std::size_t>(d)] = true;
      --replicas;
    }
  }
};

// Slow links this step: the rank's p2p transfers, and the ring of its stage (its slowest member).
void slow_links(const PipelineConfig& cfg, const std::vector<double>& lf, std::vector<ReplicaDurations>& rs, DpPhase& ph) {
  const int p = cfg.shape.stages;
  for (int s = 0; s < p; ++s) {
    double worst = 1.0;
    for (int d = 0; d < cfg.dp; ++d) {
      const double f = lf[static_cast<std::size_t>(cfg.rank(d, s))];
      const auto i = static_cast<std::size_t>(d * p + s);
      rs[static_cast<std::size_t>(d)].p2p_fwd_ns[static_cast<std::size_t>(s)] = static_cast<SimTime>(static_cast<double>(cfg.p2p_fwd_ns[i]) * f);
      rs[static_cast<std::size_t>(d)].p2p_bwd_ns[static_cast<std::size_t>(s)] = static_cast<SimTime>(static_cast<double>(cfg.p2p_bwd_ns[i]) * f);
      worst = std::max(worst, f);
    }
    ph.reduce_ns[static_cast<std::size_t>(s)] = static_cast<SimTime>(static_cast<double>(cfg.phase.reduce_ns[static_cast<std::size_t>(s)]) * worst);
  }
}

// Each rank's compute time this step (the detector's per-step measure).
void rank_times(const PipelineConfig& cfg, const std::vector<ReplicaDurations>& reps, std::vector<double>& out) {
  const PipeShape& s = cfg.shape;
  std::fill(out.begin(), out.end(), 0.0);
  for (int d = 0; d < cfg.dp; ++d)
    for (int v = 0; v < s.virtual_stages(); ++v) {
      SimTime sum = 0;
      const ReplicaDurations& r = reps[static_cast<std::size_t>(d)];
      for (int mb = 0; mb < s.microbatches; ++mb)
        sum += r.fwd_ns[static_cast<std::size_t>(v * s.microbatches + mb)] + r.bwd_ns[static_cast<std::size_t>(v * s.microbatches + mb)];
      out[static_cast<std::size_t>(cfg.rank(d, v % s.stages))] += ns_to_seconds(sum);
    }
}

}  // namespace

namespace {

// The step's timeline: every task on its rank's track, and the step on the first track.
void trace_step(TraceSink& sink, const PipelineConfig& cfg, const std::vector<std::vector<PipeOp>>& orders,
                const std::vector<ReplicaDurations>& reps, SimTime t0, SimTime step_ns, std::int64_t track0) {
  sink.slice(track0, "step", t0, t0 + step_ns);
  ReplicaTimes rt;
  rt.record = true;
  for (int d = 0; d < static_cast<int>(reps.size()); ++d) {
    rt.spans.clear();
    replica_times_fast(cfg.shape, orders, reps[static_cast<std::size_t>(d)], rt);
    for (const TaskSpan& s : rt.spans)
      sink.slice(track0 + 1 + cfg.rank(d, s.rank), s.op.backward ? "B" : "F", t0 + s.start_ns, t0 + s.end_ns,
                 TraceArgs().add("microbatch", s.op.mb).add("chunk", s.op.chunk));
  }
}

}  // namespace

TraceSize PipelineWorkload::trace_size(std::span<const Policy* const>) const {
  // Per step the step and every task; once the process and its tracks' names.
  const double ranks = static_cast<double>(cfg_.dp) * cfg_.shape.stages;
  return {1 + static_cast<double>(cfg_.dp) * cfg_.shape.tasks(), 2 * (2 + ranks)};
}

std::vector<PolicyTally> PipelineWorkload::run(const RunRequest& req) const {
  std::vector<PolicyTally> tallies = make_tallies(req);
  // Each policy replays the same streams from their start: common random numbers.
  for (std::size_t p = 0; p < req.policies.size(); ++p) run_policy(req, *req.policies[p], tallies[p]);
  return tallies;
}

void PipelineWorkload::run_policy(const RunRequest& req, const Policy& policy, PolicyTally& tally) const {
  const auto orders = pipe_orders(cfg_.shape);
  std::vector<ReplicaDurations> reps = empty_replicas(cfg_), active;
  PipelineDraws draws(cfg_, cluster_, req);
  std::optional<PipelineWhatIf> whatif;
  if (cfg_.whatif) whatif.emplace(cfg_, orders);
  const std::int64_t ranks = static_cast<std::int64_t>(cfg_.dp) * cfg_.shape.stages;
  RankState state{cfg_.rank_factor, {}, std::vector<bool>(static_cast<std::size_t>(ranks), false),
                  std::vector<bool>(static_cast<std::size_t>(cfg_.dp), false), cfg_.dp};
  std::optional<EvictController> evict;
  if (policy.evict()) evict.emplace(*policy.evict(), ranks);
  std::vector<double> times(static_cast<std::size_t>(ranks));
  std::optional<FailSlowEpisodes> episodes;
  if (!cfg_.fail_slow.empty()) episodes.emplace(cfg_.fail_slow, ranks, req.seed, req.replication);
  std::vector<double> link(static_cast<std::size_t>(ranks), 1.0);
  DpPhase phase = cfg_.phase;
  // drop_slowest: the step goes on without the m slowest replicas' gradients (m / dp of the samples).
  const int drop = policy.type() == "drop_slowest" ? static_cast<int>(cfg_.dp - policy.bsp()->barrier_quorum(cfg_.dp)) : 0;
  ReplicaTimes scratch;
  std::int64_t track0 = 0;
  SimTime clock_ns = 0;
  if (req.trace) {
    req.trace->begin_process(policy.label());
    track0 = req.trace->add_track("steps");
    for (std::int64_t r = 0; r < ranks; ++r)
      req.trace->add_track("rank " + std::to_string(r) + " (replica " + std::to_string(cfg_.replica_of(r)) + ", stage " +
                           std::to_string(cfg_.stage_of(r)) + ")");
  }
  for (std::int64_t step = 0; step < req.steps; ++step) {
    tally.check_stop();
    state.begin_step(cfg_, step);
    if (episodes) {
      std::fill(link.begin(), link.end(), 1.0);
      episodes->at_step(step, state.step_factor, link);
    }
    draws.fill(step, reps, state.step_factor);
    const bool all = state.replicas == cfg_.dp;
    if (!all) {
      active.clear();
      for (int d = 0; d < cfg_.dp; ++d)
        if (!state.replica_gone[static_cast<std::size_t>(d)]) active.push_back(reps[static_cast<std::size_t>(d)]);
    }
    SimTime busy = 0;
    std::uint64_t events = 0;
    if (episodes) slow_links(cfg_, link, reps, phase);
    const SimTime step_ns = pipeline_step_ns(cfg_, orders, all ? reps : active, cfg_.events, scratch, &busy, &events,
                                             drop, &phase);
    if (req.trace) trace_step(*req.trace, cfg_, orders, all ? reps : active, clock_ns, step_ns, track0);
    clock_ns += step_ns;
    if (whatif) whatif->add_step(reps, step_ns, tally.whatif);
    tally.add_step(step_ns, state.replicas * static_cast<std::int64_t>(cfg_.shape.stages), ns_to_seconds(busy), 0);
    tally.events += cfg_.events ? events : 1;  // the fast path: the barrier is the only event
    if (!evict) continue;
    rank_times(cfg_, reps, times);
    state.depart(cfg_, evict->end_step(times), *evict, episodes ? &*episodes : nullptr, step + 1, tally.evictions);
  }
}

std::uint64_t PipelineWorkload::working_bytes(std::size_t) const {
  // Every replica's durations (two per task, 8 bytes) and the schedule's scratch; three copies with what-if.
  const auto tasks = static_cast<std::uint64_t>(cfg_.dp) * static_cast<std::uint64_t>(cfg_.shape.tasks());
  return (1u << 16) + tasks * 8 * (cfg_.whatif ? 3 : 1);
}

void PipelineWorkload::count_held(HeldBytes& held) const {
  for (const auto& d : cfg_.forward) d->count_held(held);
  for (const auto& d : cfg_.backward) d->count_held(held);
  if (const auto& t = cfg_.trace) held.add_shared(t.get(), (t->fwd_s.size() + t->bwd_s.size()) * sizeof(double));
}

}  // namespace tailsim
