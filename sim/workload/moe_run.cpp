#include "sim/workload/moe_run.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace tailsim {

MoeRun::MoeRun(const MoeWorkload::Config& c, const MoeTimes& times, const RunRequest& req,
               const MoePolicy& policy, PolicyTally& tally)
    : c_(c), times_(times), tally_(tally), gpus_(c.cluster.gpus), experts_(c.model.experts),
      noise_stream_(req.seed, "moe/noise", req.replication), placement_(c.placement), cost_(*c.expert_cost),
      context_stream_(req.seed, "moe/context", req.replication),
      trace_(req.trace) {
  router_ = c.router->make(c.model.router_context(req.seed, req.replication));
  node_size_ = std::min(c.cluster.gpus_per_node, gpus_);
  nodes_ = (gpus_ + node_size_ - 1) / node_size_;
  groups_ = std::max(1, c.router->expert_groups());
  group_limit_ = groups_ > 1 ? c.router->group_limit() : 0;
  MoeRunInfo info;
  info.gpus = gpus_;
  info.gpus_per_node = node_size_;
  info.experts = static_cast<int>(experts_);
  info.top_k = c.model.top_k;
  info.moe_layers = c.model.moe_layers();
  info.tokens_per_gpu = c.tokens_per_gpu;
  info.decode = c.phase == MoePhase::kDecode;
  info.gate_concentration = c.router->gate_concentration();
  info.groups = c.cluster.groups();
  info.seed = req.seed;
  info.replication = req.replication;
  info.expert_bytes = c.model.expert_shape().weight_bytes();
  info.host_bandwidth = c.cluster.gpu.host_link_bandwidth_bytes_per_s;
  info.gpu_memory_bytes = c.cluster.gpu.memory_bytes;
  info.expert_groups = c.router->expert_groups();
  info.stable_from_step = c.router->stable_from();
  info.route_ahead = [this, seed = req.seed, replication = req.replication](std::int64_t step, int layer,
                                                                           std::span<std::int64_t> counts) {
    if (!ahead_) ahead_ = c_.router->make(c_.model.router_context(seed, replication));
    ahead_->route(step, layer, gpus_ * c_.tokens_per_gpu, counts);
  };
  controller_ = policy.make_controller(info);
  if (controller_) standby_bytes_ = controller_->standby_bytes_per_gpu();

  const auto k = static_cast<std::size_t>(gpus_);
  counts_.resize(static_cast<std::size_t>(experts_));
  gpu_tokens_.resize(k);
  expert_s_.resize(k);
  noise_.assign(k, 1.0);
  slow_.assign(k, 1.0);
  two_batch_ = c.overlap == MoeOverlap::kTwoBatch;
  if (c.context && c.model.attention) (two_batch_ ? core_micro_[0] : core_s_).resize(k);
  if (two_batch_) {
    for (int m : {0, 1}) {
      micro_expert_s_[m].resize(k);
      micro_at_[m].resize(k);
      if (!core_micro_[0].empty()) core_micro_[m].resize(k);
      micro_share_[m] = static_cast<double>((c.tokens_per_gpu + 1 - m) / 2) / static_cast<double>(c.tokens_per_gpu);
    }
    stretch_.assign(k, 1.0);
    compute_free_.resize(k);
    ports_free_.resize(k);
    partner_.resize(k);
    for (auto& phase : comm_s_)
      for (std::vector<double>& v : phase) v.resize(k);
    if (c.comm_sms > 0)  // (comm_sms < sm_count, checked when parsed; a GPU without an SM count allows only 0)
      sm_factor_ = static_cast<double>(c.cluster.gpu.sm_count) / static_cast<double>(c.cluster.gpu.sm_count - c.comm_sms);
  }
  for (const WorkerGroup& g : info.groups) std::fill(slow_.begin() + g.first, slow_.begin() + g.first + g.count, g.factor);
  if (!c.fail_slow.empty()) {
    episodes_.emplace(c.fail_slow, gpus_, req.seed, req.replication);
    link_.assign(k, 1.0);
  }
  pairs_.resize(k);
  ports_.resize(k);
  busiest_.resize(k);
  node_scratch_.resize(3 * static_cast<std::size_t>(nodes_) + static_cast<std::size_t>(c.model.top_k));
  if (controller_) {
    dispatch_s_.resize(k);
    finish_s_.resize(k);
    load_s_.resize(k);
    nic_in_.reserve(k);
    nvlink_in_.reserve(k);
    host_in_.reserve(k);
    for (std::size_t g = 0; g < k; ++g) {
      nic_in_.emplace_back(sim_, c.cluster.nic.bandwidth_bytes_per_s, seconds_to_ns(c.cluster.nic.latency_s));
      if (info.host_bandwidth > 0) host_in_.emplace_back(sim_, info.host_bandwidth, 0);
      nvlink_in_.emplace_back(sim_, c.cluster.nvlink.bandwidth_bytes_per_s, seconds_to_ns(c.cluster.nvlink.latency_s));
    }
  }
  share_q_.resize(static_cast<std::size_t>(experts_));
  share_r_.resize(static_cast<std::size_t>(experts_));
  if (c.twin_nodes && !controller_ && !two_batch_ && gpus_ > experts_ && experts_ % node_size_ == 0 &&
      placement_ == ExpertPlacement::blocked(static_cast<int>(experts_), gpus_)) {
    twin_back_ = experts_ / node_size_;
    twins_.assign(static_cast<std::size_t>(nodes_), -1);
    twin_comm_.resize(k);
  }
  if (c.overlap_grad_reduce) grad_ready_.assign(static_cast<std::size_t>(c.model.layers), 0.0);
  if (c.mode == MoeMode::kTraining)
    saved_counts_.resize(static_cast<std::size_t>(c.model.moe_layers()) * static_cast<std::size_t>(experts_));
  dispatch_bytes_per_element_ = c.model.dtype == "fp8" ? 1.0 : 2.0;  // FP8 dispatch, BF16 combine (as DeepEP)
  self_ = sim_.add_handler(this);
  if (trace_) open_tracks();
}

void MoeRun::run(std::int64_t steps) {
  for (step_ = 0; step_ < steps; ++step_) {
    step_start_ = sim_.now();
    if (episodes_) {
      step_slow_ = slow_;
      std::fill(link_.begin(), link_.end(), 1.0);
      episodes_->at_step(step_, step_slow_, link_);
    }
    simulate_step();
    const SimTime step_ns = sim_.now() - step_start_;
    tally_.add_step(step_ns, gpus_, busy_s_, extra_s_);
    if (standby_bytes_) {
      tally_.moe.standby_bytes += *standby_bytes_;
      tally_.moe.standby_steps += 1.0;
    }
    tally_.moe.step_tokens += static_cast<double>(gpus_ * c_.tokens_per_gpu);
    tally_.moe.gpu_step_tokens += static_cast<double>(c_.tokens_per_gpu);
    if (trace_)
      trace_->slice(step_track_, "step " + std::to_string(step_), step_start_, sim_.now(),
                    TraceArgs().add("step", step_).add("step_ns", step_ns));
    busy_s_ = extra_s_ = 0;
    if (!controller_) continue;
    controller_->between_steps(step_ + 1, placement_);
    for (const std::int64_t g : controller_->replaced_by_spares()) {
      slow_.at(static_cast<std::size_t>(g)) = 1.0;
      if (episodes_) episodes_->end(g);
    }
  }
  tally_.events += sim_.events_executed();
  if (controller_) tally_.evictions.assign(controller_->evictions().begin(), controller_->evictions().end());
}

void MoeRun::sync_after(double seconds, Kind kind) {
  const SimTime at = sim_.now() + seconds_to_ns(seconds);
  sim_.schedule_at(at, self_, kind);
  sim_.run(at);  // weight loads still on their links arrive in a later layer
}

void MoeRun::draw_noise() {
  const std::vector<double>& slow = episodes_ ? step_slow_ : slow_;
  if (!c_.cluster.noise) {
    std::copy(slow.begin(), slow.end(), noise_.begin());
    return;
  }
  for (std::int64_t g = 0; g < gpus_; ++g) noise_[g] = slow[g] * c_.cluster.noise->from_uniform(noise_stream_.uniform());
}

void MoeRun::simulate_step() {
  const int moe_layers = c_.model.moe_layers();
  const double dense_layer_s = times_.whole.attention_s + times_.whole.dense_ffn_s;
  if (!core_s_.empty() || !core_micro_[0].empty()) draw_contexts();
  for (int l = 0; l < c_.model.dense_layers; ++l) dense_layer(dense_layer_s, l, false);
  if (two_batch_) begin_overlap();
  for (int l = 0; l < moe_layers; ++l) moe_layer(l, 1.0, false);
  if (c_.mode == MoeMode::kTraining)
    for (int l = moe_layers - 1; l >= 0; --l) moe_layer(l, c_.backward_factor, true);
  if (two_batch_) end_overlap();
  if (c_.mode != MoeMode::kTraining) return;
  for (int l = c_.model.dense_layers - 1; l >= 0; --l) {
    dense_layer(dense_layer_s * c_.backward_factor, l, true);
    mark_backward_done(l, ns_to_seconds(sim_.now() - step_start_));
  }
  all_reduce();
}

// A layer without experts (a dense layer, or the all-reduce): every GPU computes `seconds` x its factor.
void MoeRun::dense_layer(double seconds, int layer, bool backward) {
  tally_.check_stop();
  draw_noise();
  double slowest = 0, sum = 0;
  for (std::int64_t g = 0; g < gpus_; ++g) {
    slowest = std::max(slowest, dense_at(seconds, g) * noise_[g]);
    sum += dense_at(seconds, g) * noise_[g];
  }
  tally_.moe.compute_s += sum;
  tally_.moe.wait_s += slowest * static_cast<double>(gpus_) - sum;
  busy_s_ += sum;
  if (trace_) trace_dense_layer(seconds, layer, backward, slowest);
  sync_after(slowest, kLayerDone);
}

void MoeRun::moe_layer(int layer, double compute_factor, bool backward) {
  tally_.check_stop();
  draw_noise();
  decisions_.clear();  // a backward pass replays the forward counts, not the forward's other decisions
  MoeLayer view{step_, layer, backward, {}};
  place(route_layer(view));

  // Dispatch (hidden x dispatch bytes per token copy) and combine (BF16) all-to-alls, aggregated per GPU port.
  const double k = static_cast<double>(gpus_);
  double total_pairs = 0, max_pairs = 0;
  for (std::int64_t g = 0; g < gpus_; ++g) {  // one pass: the same sums, in the same order
    pairs_[g] = static_cast<double>(gpu_tokens_[g]);
    total_pairs += pairs_[g];
    max_pairs = std::max(max_pairs, pairs_[g]);
  }
  if (controller_ && !decisions_.local_pairs.empty())  // pairs that stay on their token's GPU skip the network
    for (std::int64_t g = 0; g < gpus_; ++g) pairs_[g] -= static_cast<double>(decisions_.local_pairs[g]);
  if (c_.dispatch == DispatchScheme::kHierarchical)
    hierarchical_traffic(pairs_, busiest_, node_size_, static_cast<int>(experts_), c_.model.top_k, node_scratch_, ports_,
                         group_limit_ > 0 ? node_limit() : 0.0, twins_);
  else
    all_to_all_traffic(pairs_, node_size_, node_scratch_, ports_);
  LayerSums s;
  double layer_s = 0;
  if (two_batch_) {
    trace_layer_ = c_.model.dense_layers + layer;
    trace_backward_ = backward;
    if (controller_) control_overlap(view, compute_factor);
    for (std::int64_t g = 0; g < gpus_; ++g) s.moved += ports_[g].moved();
    layer_s = overlap_layer(compute_factor);
  } else {
    layer_s = serial_layer(view, compute_factor, s);
    layer_end_ = ns_to_seconds(sim_.now() - step_start_);
  }
  if (backward) mark_backward_done(c_.model.dense_layers + layer, layer_end_);
  MoeTally& t = tally_.moe;
  t.bytes_moved += s.moved * static_cast<double>(c_.model.hidden) * (dispatch_bytes_per_element_ + 2.0);
  t.load_imbalance_sum += total_pairs > 0 ? max_pairs / (total_pairs / k) : 1.0;
  ++t.layer_steps;
  if (controller_) controller_->after_layer(view, MoeLayerOutcome{gpu_tokens_, finish_s_, layer_s, noise_});
}

// The latest end of the layer's dense part over the GPUs: dense_s (plus a GPU's drawn core attention) x noise.
double MoeRun::slowest_dense(double dense_s) const {
  // dense_s >= 0 and rounding is monotone, so this is exactly the largest dense_s x noise[g]. (Reductions by
  // algorithm keep their accumulator in a register; a hand loop here was kept on the stack, 10 % slower.)
  double dense_max = dense_s * *std::max_element(noise_.begin(), noise_.end());
  for (std::size_t g = 0; g < core_s_.size(); ++g) dense_max = std::max(dense_max, (dense_s + core_s_[g]) * noise_[g]);
  return dense_max;
}

// The layer in sequence: the dense part, then three collectives (dispatch, experts, combine) as events.
double MoeRun::serial_layer(const MoeLayer& view, double compute_factor, LayerSums& s) {
  const double dense_s = (times_.whole.attention_s + times_.whole.shared_s) * compute_factor;
  const double dense_max = slowest_dense(dense_s);
  s = gpu_phases(compute_factor, dense_s);
  if (controller_) control_experts(view, compute_factor, dense_max, s);
  const double layer_s = dense_max + s.experts_max + s.combine_max;
  if (trace_)
    trace_moe_layer(c_.model.dense_layers + view.layer, view.backward, dense_s, compute_factor, dense_max,
                    s.experts_max, s.combine_max);
  sync_after(dense_max, kDenseDone);
  sync_after(s.experts_max, kExpertsDone);
  sync_after(s.combine_max, kLayerDone);
  busy_s_ += s.compute + s.communication;  // idle_fraction counts only barrier waits
  MoeTally& t = tally_.moe;
  t.compute_s += s.compute;
  t.communication_s += s.communication;
  t.wait_s += layer_s * static_cast<double>(gpus_) - s.compute - s.communication;
  return layer_s;
}

// The layer's counts: routed (between the controller's before- and after-routing hooks) in a forward pass,
// the forward pass's in a backward pass.
const std::int64_t* MoeRun::route_layer(MoeLayer& view) {
  const std::ptrdiff_t saved_at = static_cast<std::ptrdiff_t>(view.layer) * experts_;
  if (view.backward) {
    view.counts = {saved_counts_.data() + saved_at, static_cast<std::size_t>(experts_)};
    return view.counts.data();
  }
  if (controller_) controller_->before_routing(view, placement_, decisions_);
  if (c_.engine == MoeEngine::kTokens) {
    router_->route_tokens(step_, view.layer, gpus_ * c_.tokens_per_gpu, counts_, tokens_);
    view.tokens = &tokens_;
  } else {
    router_->route(step_, view.layer, gpus_ * c_.tokens_per_gpu, counts_);
  }
  view.counts = counts_;
  if (controller_) {
    const std::int64_t before = std::accumulate(counts_.begin(), counts_.end(), std::int64_t{0});
    controller_->after_routing(view, placement_, decisions_);
    const std::int64_t after = std::accumulate(counts_.begin(), counts_.end(), std::int64_t{0});
    if (before - after != decisions_.dropped_pairs || *std::min_element(counts_.begin(), counts_.end()) < 0)
      throw std::logic_error("MoE controller: counts lost " + std::to_string(before - after) + " pairs but " +
                             std::to_string(decisions_.dropped_pairs) + " were reported dropped (or went negative)");
    MoeTally& t = tally_.moe;
    t.routed_pairs += static_cast<double>(before);
    t.routed_tokens += static_cast<double>(gpus_ * c_.tokens_per_gpu);
    t.dropped_pairs += static_cast<double>(decisions_.dropped_pairs);
    t.rerouted_pairs += static_cast<double>(decisions_.rerouted_pairs);
    t.dropped_gate_mass += decisions_.dropped_gate_mass;
    t.cache_accesses += static_cast<double>(decisions_.cache_accesses);
    t.cache_hits += static_cast<double>(decisions_.cache_hits);
    for (const PredictorError& e : decisions_.predictor_errors) {
      if (e.one_step) {
        t.predictor_h1_sum += e.error;
        t.predictor_h1_n += 1.0;
        continue;
      }
      t.predictor_error_sum += e.error;
      t.predictor_errors += 1.0;
      (e.stable ? t.predictor_stable_sum : t.predictor_fluctuating_sum) += e.error;
      (e.stable ? t.predictor_stable_n : t.predictor_fluctuating_n) += 1.0;
    }
  }
  if (!saved_counts_.empty()) std::copy(counts_.begin(), counts_.end(), saved_counts_.begin() + saved_at);
  return counts_.data();
}

const LinkSpec& MoeRun::link_between(std::int64_t a, std::int64_t b) const {
  return a / node_size_ == b / node_size_ ? c_.cluster.nvlink : c_.cluster.nic;
}

// Ring all-reduces of the BF16 gradients, limited by the slowest link in the ring (2 (r-1)/r x bytes /
// bandwidth plus a latency per ring step, over r GPUs): the replicated (non-expert) weights over all K
// GPUs, then, when K > E, each expert's weights over its K/E replicas (the expert groups run in parallel).
void MoeRun::all_reduce() {
  if (gpus_ == 1) return;
  const MoeModel& m = c_.model;
  const double ffn = (m.gated ? 3.0 : 2.0) * static_cast<double>(m.hidden);  // weights per intermediate unit
  const double params = m.attention_params_per_layer * m.layers +
                        ffn * (m.shared_experts * m.shared_intermediate * m.moe_layers() +
                               m.dense_intermediate * m.dense_layers);
  const LinkSpec& link = gpus_ > node_size_ ? c_.cluster.nic : c_.cluster.nvlink;
  const double k = static_cast<double>(gpus_);
  const double replicas = gpus_ > experts_ ? static_cast<double>(gpus_ / experts_) : 1.0;
  const double expert_params = replicas > 1 ? ffn * static_cast<double>(m.expert_intermediate) * m.moe_layers() : 0.0;
  const auto ring = [&](double r, double bytes) {
    return r > 1 ? 2.0 * (r - 1.0) / r * bytes / link.bandwidth_bytes_per_s + 2.0 * (r - 1.0) * link.latency_s : 0.0;
  };
  const double seconds = c_.overlap_grad_reduce
                            ? grad_reduce_overlapped(
                                  ring(k, (m.attention_params_per_layer + ffn * m.dense_intermediate) * 2.0),
                                  ring(k, (m.attention_params_per_layer + ffn * m.shared_experts * m.shared_intermediate) * 2.0) +
                                      ring(replicas, expert_params * 2.0 / m.moe_layers()))
                            : ring(k, params * 2.0) + ring(replicas, expert_params * 2.0);
  const double bytes_per_gpu = 2.0 * (k - 1.0) / k * params * 2.0 + 2.0 * (replicas - 1.0) / replicas * expert_params * 2.0;
  tally_.moe.communication_s += seconds * k;
  busy_s_ += seconds * k;
  tally_.moe.bytes_moved += bytes_per_gpu * k;
  if (trace_) trace_all_reduce(seconds, bytes_per_gpu);
  sync_after(seconds, kLayerDone);
}

void MoeRun::mark_backward_done(int layer, double at_s) {
  if (!grad_ready_.empty()) grad_ready_[static_cast<std::size_t>(layer)] = at_s;
}

// overlap_grad_reduce: one bucket a layer (a dense layer's attention and FFN weights; a MoE layer's attention
// and shared experts over all GPUs, then its expert replicas' weights), all-reduced in backward order as each
// layer's backward ends, first-in-first-out on the link; returns how long the reduction runs past the
// backward pass (the exposed part, which the step waits for). The link is not shared with the backward's
// all-to-alls in this model.
double MoeRun::grad_reduce_overlapped(double dense_bucket_s, double moe_bucket_s) {
  const double now = ns_to_seconds(sim_.now() - step_start_);
  double link_free = 0;
  for (int l = c_.model.layers - 1; l >= 0; --l) {
    const double bucket_s = l >= c_.model.dense_layers ? moe_bucket_s : dense_bucket_s;
    link_free = std::max(link_free, grad_ready_[static_cast<std::size_t>(l)]) + bucket_s;
  }
  return std::max(0.0, link_free - now);
}

}  // namespace tailsim
