// The experts phase of a MoE layer in one MoeRun (sim/workload/moe_run.hpp): where each GPU's tokens go
// (place: the token share of each expert replica, the grouped-kernel time), twin nodes, and each GPU's
// dispatch, experts and combine times with the layer's sums.
#include <algorithm>
#include <array>
#include <cstdint>
#include <span>

#include "sim/workload/moe_run.hpp"

namespace tailsim {

// Each GPU runs its expert replicas (ExpertPlacement::slots) as one grouped kernel; with two_batch, each
// micro-batch's share of every replica's tokens (ceil and floor of half) as one grouped kernel each. Each
// expert's quotient and remainder by its replicas (ExpertPlacement::share) are computed once, not per replica.
void MoeRun::place(const std::int64_t* counts) {
  for (std::int64_t e = 0; e < experts_; ++e) {
    const auto r = static_cast<std::int64_t>(placement_.hosts(static_cast<int>(e)).size());
    share_q_[e] = r == 1 ? counts[e] : counts[e] / r;
    share_r_[e] = r == 1 ? 0 : counts[e] % r;
  }
  layer_counts_ = counts;
  if (!twins_.empty()) return place_twins();
  const bool whole = !two_batch_ || controller_;
  for (std::int64_t g = 0; g < gpus_; ++g) {
    const std::span<const ExpertPlacement::Slot> slots = placement_.slots(g);
    if (slots.size() == 1 && !two_batch_) {  // one expert (or a replica of one): the common case at scale
      const std::int64_t n = share(slots[0]);
      gpu_tokens_[g] = n;
      busiest_[g] = static_cast<double>(n);
      expert_s_[g] = cost_.grouped_time_s({&n, 1});
      continue;
    }
    local_.clear();
    std::int64_t sum = 0, busiest = 0;
    for (const ExpertPlacement::Slot& slot : slots) {
      const std::int64_t n = share(slot);
      local_.push_back(n);
      sum += n;
      busiest = std::max(busiest, n);
    }
    gpu_tokens_[g] = sum;
    busiest_[g] = static_cast<double>(busiest);
    if (whole) expert_s_[g] = cost_.grouped_time_s(local_);
    if (!two_batch_) continue;
    for (std::int64_t& n : local_) n -= n / 2;  // micro-batch 0: ceil(n / 2)
    micro_expert_s_[0][g] = cost_.grouped_time_s(local_);
    std::size_t i = 0;
    for (const ExpertPlacement::Slot& slot : slots) local_[i++] = share(slot) / 2;
    micro_expert_s_[1][g] = cost_.grouped_time_s(local_);
  }
}

// Twin nodes: with the blocked layout and K > E (one expert replica a GPU), node m holds the same experts as
// node m - twin_back_ (the previous replica of each); when its GPUs' token shares are the same too,
// everything of theirs but the noise is the same, so their expert times, traffic and all-to-all times are
// copied, not computed again (the same values: results unchanged).
void MoeRun::place_twins() {
  const std::int64_t back = twin_back_ * node_size_;
  std::int64_t* tokens = gpu_tokens_.data();
  double *busiest = busiest_.data(), *expert_s = expert_s_.data();
  const std::int64_t *q = share_q_.data(), *r = share_r_.data();
  // The blocked layout: GPU g holds replica g / E of expert g mod E, so node m holds replica j of the experts
  // e0 .. e0 + node_size - 1 (ExpertPlacement::blocked).
  for (std::int64_t m = 0, g = 0, e0 = 0, j = 0; m < nodes_; ++m) {
    const std::int64_t first = g;
    bool twin = m >= twin_back_;
    for (std::int64_t e = e0; e < e0 + node_size_; ++e, ++g) {
      tokens[g] = q[e] + (j < r[e] ? 1 : 0);
      twin = twin && tokens[g] == tokens[g - back];
    }
    twins_[m] = twin ? m - twin_back_ : -1;
    for (g = first; g < first + node_size_; ++g) {
      busiest[g] = static_cast<double>(tokens[g]);
      expert_s[g] = twin ? expert_s[g - back] : cost_.grouped_time_s({&tokens[g], 1});
    }
    if ((e0 += node_size_) == experts_) e0 = 0, ++j;
  }
}

// The hot loop of the workload (once per GPU and layer): member arrays read through local pointers and the
// sums kept in locals, so nothing is reloaded per GPU; the same operations, in the same order, as phases().
MoeRun::LayerSums MoeRun::gpu_phases(double compute_factor, double dense_s) {
  const double *noise = noise_.data(), *expert_s = expert_s_.data();
  const double* link = link_.empty() ? nullptr : link_.data();  // fail-slow episodes on the GPUs' links
  const double* core = core_s_.empty() ? nullptr : core_s_.data();
  const PortTraffic* ports = ports_.data();
  std::array<double, 2>* comm = twin_comm_.empty() ? nullptr : twin_comm_.data();
  double experts_max = 0, combine_max = 0, communication = 0, compute = 0, moved = 0;
  for (std::int64_t node = 0, g = 0; node < nodes_; ++node) {  // a twin node's GPUs copy their port times
    const std::int64_t twin = twins_.empty() ? -1 : twins_[node], back = twin < 0 ? 0 : (node - twin) * node_size_;
    for (const std::int64_t end = std::min(g + node_size_, gpus_); g < end; ++g) {
      const std::array<double, 2> port_s = back == 0 ? port_seconds(g) : comm[g - back];
      if (comm) comm[g] = port_s;
      const double dispatch = link ? port_s[0] * link[g] : port_s[0], combine = link ? port_s[1] * link[g] : port_s[1];
      const double expert = expert_s[g] * compute_factor * noise[g];
      experts_max = std::max(experts_max, dispatch + expert);
      combine_max = std::max(combine_max, combine);
      communication += dispatch + combine;
      compute += (core ? dense_s + core[g] : dense_s) * noise[g] + expert;
      moved += ports[g].moved();
      if (controller_) {
        dispatch_s_[g] = dispatch;
        finish_s_[g] = dispatch + expert;
      }
    }
  }
  LayerSums s;
  s.experts_max = experts_max;
  s.combine_max = combine_max;
  s.communication = communication;
  s.compute = compute;
  s.moved = moved;
  return s;
}

}  // namespace tailsim
