#include "sim/run/tally_records.hpp"

namespace tailsim {

MoeRecord moe_record(const MoeTally& m) {
  const double compute = m.compute_s, communication = m.communication_s, wait = m.wait_s;
  const double total = compute + communication + wait;
  MoeRecord mr;
  mr.load_imbalance = m.load_imbalance_sum / static_cast<double>(m.layer_steps);
  mr.compute_fraction = total > 0 ? compute / total : 0;
  mr.communication_fraction = total > 0 ? communication / total : 0;
  mr.barrier_wait_fraction = total > 0 ? wait / total : 0;
  mr.bytes_moved = m.bytes_moved;
  // Gate weights are normalized per token, so the routed tokens carry one unit of gate weight each.
  const double pairs = m.routed_pairs, tokens = m.routed_tokens;
  if (pairs > 0 && tokens > 0)
    mr.routing = RoutingCost{m.dropped_pairs / pairs, m.rerouted_pairs / pairs, m.dropped_gate_mass / tokens};
  if (m.weight_bytes > 0) mr.weights = MoeRecord::Weights{m.weight_bytes, m.weight_stall_s};  // stall: per step below
  const double predictions = m.predictor_errors;
  if (predictions > 0) mr.predictor_mape = m.predictor_error_sum / predictions;
  const auto mean = [](const CompensatedSum& sum, const CompensatedSum& n) {
    return static_cast<double>(n) > 0 ? std::optional<double>(static_cast<double>(sum) / static_cast<double>(n)) : std::nullopt;
  };
  mr.predictor_mape_h1 = mean(m.predictor_h1_sum, m.predictor_h1_n);
  mr.predictor_mape_stable = mean(m.predictor_stable_sum, m.predictor_stable_n);
  mr.predictor_mape_fluctuating = mean(m.predictor_fluctuating_sum, m.predictor_fluctuating_n);
  const double accesses = m.cache_accesses;
  if (accesses > 0) mr.prefetch_hit_rate = m.cache_hits / accesses;
  const double standby_steps = m.standby_steps;
  if (standby_steps > 0) mr.backup_bytes_per_gpu = m.standby_bytes / standby_steps;
  return mr;
}

WhatIfRecord whatif_record(const WhatIfTally& w) {
  WhatIfRecord r;
  const double cf = w.counterfactual_s, ideal = w.ideal_s;
  r.slowdown = cf > 0 ? w.actual_s / cf : 0;
  for (const CompensatedSum& v : w.by_dp_rank_s) r.by_dp_rank.push_back(ideal > 0 ? v / ideal : 0);
  for (const CompensatedSum& v : w.by_stage_s) r.by_stage.push_back(ideal > 0 ? v / ideal : 0);
  return r;
}

}  // namespace tailsim
