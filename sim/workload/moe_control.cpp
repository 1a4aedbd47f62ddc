// The parts of an MoE layer that a policy's controller drives (sim/workload/moe_run.hpp): weight loads and
// their stalls, hedges, and the node limit of group-limited routing under the controller's placement.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "sim/workload/moe_run.hpp"

namespace tailsim {

// Group-limited routing: a token's experts lie in at most group_limit groups, so its dispatch reaches at most
// group_limit x (the most nodes any group's experts and replicas sit on) nodes; 0 when that is every node.
double MoeRun::node_limit() {
  if (!controller_ && fixed_node_limit_ >= 0) return fixed_node_limit_;  // without a controller nothing moves
  const int per_group = static_cast<int>(experts_) / groups_;
  if (node_of_.empty())
    for (std::int64_t g = 0; g < gpus_; ++g) node_of_.push_back(static_cast<std::int32_t>(g / node_size_));
  std::int64_t widest = 0;
  node_stamp_.assign(static_cast<std::size_t>(nodes_), -1);
  for (int g = 0; g < groups_; ++g) {
    std::int64_t spanned = 0;
    for (int e = g * per_group; e < (g + 1) * per_group; ++e)
      for (const std::int64_t h : placement_.hosts(e)) {
        std::int64_t& stamp = node_stamp_[static_cast<std::size_t>(node_of_[static_cast<std::size_t>(h)])];
        spanned += stamp != g;
        stamp = g;
      }
    widest = std::max(widest, spanned);
  }
  const std::int64_t limit = widest * group_limit_;
  fixed_node_limit_ = limit < nodes_ ? static_cast<double>(limit) : 0.0;
  return fixed_node_limit_;
}

// The controller's weight loads and hedges; then the experts phase ends at the latest GPU. Loads leave
// with the layer (they overlap its dense part) on the GPU's ingress link, NVLink from a GPU of its node,
// else its NIC; each link carries its transfers first-in-first-out, so loads queue behind earlier ones,
// those of earlier layers included. A GPU's experts start once this layer's loads it waits for have arrived.
void MoeRun::control_experts(const MoeLayer& view, double compute_factor, double dense_max, LayerSums& sums) {
  std::fill(load_s_.begin(), load_s_.end(), 0.0);
  for (const WeightLoad& w : decisions_.loads) {
    const bool host = w.from == WeightLoad::kHostMemory;
    if (w.gpu < 0 || w.gpu >= gpus_ || w.from >= gpus_ || !(w.bytes >= 0) || (host && host_in_.empty()) ||
        (w.from < 0 && w.from != -1 && !host))
      throw std::logic_error("MoE controller: weight load onto GPU " + std::to_string(w.gpu) + " from " +
                             std::to_string(w.from) + " of " + std::to_string(w.bytes) + " bytes");
    const bool in_node = w.from >= 0 && &link_between(w.from, w.gpu) == &c_.cluster.nvlink;
    Link& link = (host ? host_in_ : in_node ? nvlink_in_ : nic_in_)[static_cast<std::size_t>(w.gpu)];
    const SimTime arrival = link.transfer(w.bytes, self_, kWeightsArrived, w.gpu);
    if (w.wait) load_s_[w.gpu] = std::max(load_s_[w.gpu], ns_to_seconds(arrival - sim_.now()));
    tally_.moe.weight_bytes += w.bytes;
    tally_.moe.bytes_moved += w.bytes;
  }
  const double unstalled = *std::max_element(finish_s_.begin(), finish_s_.end());
  for (std::int64_t g = 0; g < gpus_; ++g) {
    const double stall = std::max(0.0, load_s_[g] - dense_max - dispatch_s_[g]);  // loads overlap the dense part
    finish_s_[g] += stall;
  }
  tally_.moe.weight_stall_s += *std::max_element(finish_s_.begin(), finish_s_.end()) - unstalled;
  decisions_.hedges.clear();
  controller_->on_stragglers(view, finish_s_, decisions_);
  for (const Hedge& h : decisions_.hedges) hedge(h, compute_factor, sums);
  sums.experts_max = *std::max_element(finish_s_.begin(), finish_s_.end());
}

// A backup copy of GPU h.from's remaining expert work on GPU h.to, launched at h.at_s. The primary has run
// since its experts started (its finish less its compute), through its grouped kernel at an even pace: each
// of its replicas has done floor(done x n) of its n tokens. The rest cross to h.to once launched (and once
// they have reached h.from), run after h.to's own experts at h.to's speed as one grouped kernel, and the
// results cross back. Whichever of the primary and the copy finishes first ends h.from's experts; the other
// is cancelled then (its compute stops).
void MoeRun::hedge(const Hedge& h, double compute_factor, LayerSums& sums) {
  if (h.from < 0 || h.from >= gpus_ || h.to < 0 || h.to >= gpus_ || h.from == h.to || !(h.at_s >= 0))
    throw std::logic_error("MoE controller: hedge from GPU " + std::to_string(h.from) + " to " + std::to_string(h.to) +
                           " at " + std::to_string(h.at_s) + " s");
  const double primary_s = expert_s_[h.from] * compute_factor * noise_[h.from];
  const double primary_end = finish_s_[h.from];
  const double done = primary_s > 0 ? std::clamp((h.at_s - (primary_end - primary_s)) / primary_s, 0.0, 1.0) : 1.0;
  local_.clear();
  std::int64_t left = 0;
  for (const ExpertPlacement::Slot& slot : placement_.slots(h.from)) {
    const std::int64_t n = ExpertPlacement::share(slot, layer_counts_[slot.expert]);
    local_.push_back(n - static_cast<std::int64_t>(std::floor(done * static_cast<double>(n))));
    left += local_.back();
  }
  if (left == 0) return;  // finished before the launch
  const LinkSpec& link = link_between(h.from, h.to);
  const double tokens_bytes = static_cast<double>(left) * static_cast<double>(c_.model.hidden);
  const double in_s = tokens_bytes * dispatch_bytes_per_element_ / link.bandwidth_bytes_per_s + link.latency_s;
  const double out_s = tokens_bytes * 2.0 / link.bandwidth_bytes_per_s + link.latency_s;
  const double copy_s = cost_.grouped_time_s(local_) * compute_factor * noise_[h.to];
  const double start = std::max(finish_s_[h.to], std::max(h.at_s, dispatch_s_[h.from]) + in_s);
  const double copy_end = start + copy_s + out_s;
  double ran = std::max(0.0, std::min(start + copy_s, primary_end) - start);  // cancelled when the primary ends
  if (copy_end < primary_end) {  // the copy wins: the primary stops when its results arrive
    finish_s_[h.from] = copy_end;
    sums.compute -= std::min(primary_s, primary_end - copy_end);
    ran = copy_s;
    tally_.moe.bytes_moved += tokens_bytes * 2.0;
  }
  if (ran > 0) finish_s_[h.to] = std::max(finish_s_[h.to], start + ran);  // else it never started
  extra_s_ += ran;
  sums.compute += ran;
  tally_.moe.bytes_moved += tokens_bytes * dispatch_bytes_per_element_;
}

}  // namespace tailsim
