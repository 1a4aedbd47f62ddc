#include "sim/workload/pipeline_whatif.hpp"

#include <algorithm>

namespace tailsim {

PipelineWhatIf::PipelineWhatIf(const PipelineConfig& cfg, const std::vector<std::vector<PipeOp>>& orders)
    : cfg_(cfg), orders_(orders), ideal_(empty_replicas(cfg)), mixed_(empty_replicas(cfg)) {
  if (!cfg.trace) return;
  // A replay's means are over the whole trace, every rank at its replayed (factored) times.
  const PipelineTrace& t = *cfg.trace;
  double fwd = 0, bwd = 0;
  for (std::size_t sp = 0; sp < t.steps.size(); ++sp)
    for (int d = 0; d < t.dp; ++d)
      for (int s = 0; s < t.pp; ++s) {
        const double k = cfg.rank_factor[static_cast<std::size_t>(cfg.rank(d, s))];
        for (int mb = 0; mb < t.microbatches; ++mb) {
          fwd += static_cast<double>(seconds_to_ns(t.fwd_s[t.index(sp, d, s, mb)] * k));
          bwd += static_cast<double>(seconds_to_ns(t.bwd_s[t.index(sp, d, s, mb)] * k));
        }
      }
  const double n = static_cast<double>(t.fwd_s.size());
  mean_fwd_ns_ = static_cast<SimTime>(fwd / n + 0.5);
  mean_bwd_ns_ = static_cast<SimTime>(bwd / n + 0.5);
  global_means_ = true;
}

bool PipelineWhatIf::fixed(int d, int stage) const {
  const WhatIfSpec& w = *cfg_.whatif;
  if (w.ranks.empty() && w.stages.empty()) return true;
  return std::find(w.ranks.begin(), w.ranks.end(), cfg_.rank(d, stage)) != w.ranks.end() ||
         std::find(w.stages.begin(), w.stages.end(), stage) != w.stages.end();
}

void PipelineWhatIf::set_means(const std::vector<ReplicaDurations>& reps) {
  if (!global_means_) {
    double fwd = 0, bwd = 0, n = 0;
    for (const ReplicaDurations& r : reps) {
      for (const SimTime x : r.fwd_ns) fwd += static_cast<double>(x);
      for (const SimTime x : r.bwd_ns) bwd += static_cast<double>(x);
      n += static_cast<double>(r.fwd_ns.size());
    }
    mean_fwd_ns_ = static_cast<SimTime>(fwd / n + 0.5);
    mean_bwd_ns_ = static_cast<SimTime>(bwd / n + 0.5);
  }
  for (ReplicaDurations& r : ideal_) {
    std::fill(r.fwd_ns.begin(), r.fwd_ns.end(), mean_fwd_ns_);
    std::fill(r.bwd_ns.begin(), r.bwd_ns.end(), mean_bwd_ns_);
  }
}

SimTime PipelineWhatIf::step(const std::vector<ReplicaDurations>& reps) {
  return pipeline_step_ns(cfg_, orders_, reps, false, scratch_);
}

void PipelineWhatIf::add_step(const std::vector<ReplicaDurations>& reps, SimTime actual_ns, WhatIfTally& out) {
  set_means(reps);
  const SimTime ideal_ns = step(ideal_);
  const PipeShape& s = cfg_.shape;
  const int p = s.stages, m = s.microbatches;
  // Copies the tasks of (replica d, stage) from `from` into `to`.
  const auto copy_stage = [&](ReplicaDurations& to, const ReplicaDurations& from, int stage) {
    for (int v = stage; v < s.virtual_stages(); v += p)
      for (int mb = 0; mb < m; ++mb) {
        const auto i = static_cast<std::size_t>(v * m + mb);
        to.fwd_ns[i] = from.fwd_ns[i];
        to.bwd_ns[i] = from.bwd_ns[i];
      }
  };
  const auto reset = [&] {
    for (std::size_t d = 0; d < mixed_.size(); ++d) {
      mixed_[d].fwd_ns = ideal_[d].fwd_ns;
      mixed_[d].bwd_ns = ideal_[d].bwd_ns;
    }
  };
  // The counterfactual: the fixed ranks at the mean, the others as run.
  reset();
  for (int d = 0; d < cfg_.dp; ++d)
    for (int st = 0; st < p; ++st)
      if (!fixed(d, st)) copy_stage(mixed_[static_cast<std::size_t>(d)], reps[static_cast<std::size_t>(d)], st);
  out.actual_s += ns_to_seconds(actual_ns);
  out.counterfactual_s += ns_to_seconds(step(mixed_));
  out.ideal_s += ns_to_seconds(ideal_ns);
  ++out.steps;
  if (!cfg_.whatif->decompose) return;
  out.by_dp_rank_s.resize(static_cast<std::size_t>(cfg_.dp));
  out.by_stage_s.resize(static_cast<std::size_t>(p));
  for (int d = 0; d < cfg_.dp; ++d) {
    reset();
    for (int st = 0; st < p; ++st) copy_stage(mixed_[static_cast<std::size_t>(d)], reps[static_cast<std::size_t>(d)], st);
    out.by_dp_rank_s[static_cast<std::size_t>(d)] += ns_to_seconds(step(mixed_));
  }
  for (int st = 0; st < p; ++st) {
    reset();
    for (int d = 0; d < cfg_.dp; ++d) copy_stage(mixed_[static_cast<std::size_t>(d)], reps[static_cast<std::size_t>(d)], st);
    out.by_stage_s[static_cast<std::size_t>(st)] += ns_to_seconds(step(mixed_));
  }
}

}  // namespace tailsim
