// Two-batch overlap of the moe step (`"overlap": "two_batch"`, sim/workload/moe.hpp). Each GPU's batch is
// split into micro-batches 0 and 1; a GPU has two resources, its compute stream and its ports, and each runs
// its operations in a fixed order, per MoE layer:
//   compute  dense 0, dense 1, experts 0, experts 1        (attention and shared experts, then routed experts)
//   ports    dispatch 0, dispatch 1, combine 0, combine 1
// An operation starts when its input is there and its resource is free: a micro-batch's dense part when its
// previous combine has delivered to this GPU; its experts when its dispatch has reached this GPU. The two
// all-to-alls stay collectives: a micro-batch's dispatch starts once every GPU has finished its dense part
// and freed its ports, its combine once every GPU has finished its experts, so the slowest GPU's experts
// still hold every GPU's combine. So dispatch 0 runs under dense 1, dispatch 1 under experts 0, combine 0
// under experts 1 and combine 1 under the next layer's dense 0 (DeepSeek's prefill profile; its decode
// pipeline overlaps one micro-batch's attention with the other's dispatch, experts and combine the same way).
// Per-GPU times are arrays (O(K) a layer); the four collectives of a layer are events.
//
// While the all-to-all kernels run they hold `comm_sms` of the GPU's SMs (DeepEP's normal kernels: 24 in
// DeepSeek's prefill profile; its low-latency kernels hold none): computation runs on the rest, slower by
// sm_count / (sm_count - comm_sms). The time split counts a GPU's communication only where its compute
// stream is idle (exposed communication); the rest of the step is barrier wait.
#include <algorithm>
#include <string>

#include "sim/workload/moe_run.hpp"

namespace tailsim {

namespace {
constexpr const char* kComputeNames[2][2] = {{"dense 0", "dense 1"}, {"experts 0", "experts 1"}};
constexpr const char* kPortNames[2][2] = {{"dispatch 0", "dispatch 1"}, {"combine 0", "combine 1"}};
}  // namespace

void MoeRun::begin_overlap() {
  const double t0 = ns_to_seconds(sim_.now() - step_start_);
  for (std::vector<double>* v : {&micro_at_[0], &micro_at_[1], &compute_free_, &ports_free_}) std::fill(v->begin(), v->end(), t0);
  std::fill(partner_.begin(), partner_.end(), Interval{});
  segment_ = OverlapSums{t0};
}

// In the fixed orders each all-to-all can run under one computation only, its partner: dispatch 0 under
// dense 1, dispatch 1 under experts 0, combine 0 under experts 1, combine 1 under the next layer's dense 0
// (every other pair is ordered by a dependency or shares a resource). partner_ holds per GPU the interval
// of whichever of the two came first, for the second to take its overlap.
namespace {
double overlap_of(double start, double end, const MoeRun::Interval& other) {
  return std::max(0.0, std::min(end, other.end) - std::max(start, other.start));
}
}  // namespace

// Each GPU's share of the layer's four all-to-alls (its port traffic is the layer's; a micro-batch carries
// its share of the token copies): comm_s_[combine][m].
void MoeRun::time_collectives() {
  const double hidden = static_cast<double>(c_.model.hidden);
  const bool same = micro_share_[0] == micro_share_[1];
  for (std::int64_t g = 0; g < gpus_; ++g) {
    const PortTraffic& port = ports_[g];
    for (const int m : {0, 1}) {
      if (m == 1 && same) {
        comm_s_[0][1][g] = comm_s_[0][0][g];
        comm_s_[1][1][g] = comm_s_[1][0][g];
        continue;
      }
      const double link = link_.empty() ? 1.0 : link_[g];  // a fail-slow episode on the GPU's links
      comm_s_[0][m][g] = all_to_all_seconds(port, hidden * dispatch_bytes_per_element_ * micro_share_[m],
                                            c_.cluster.nvlink, c_.cluster.nic) * link;
      comm_s_[1][m][g] =
          all_to_all_seconds(port.reversed(), hidden * 2.0 * micro_share_[m], c_.cluster.nvlink, c_.cluster.nic) * link;
    }
  }
}

// One collective of micro-batch m, starting at `start` (once every GPU's input to it is ready and its ports
// are free); each GPU's share then takes its own time. `ready` becomes each GPU's end; returns the last.
double MoeRun::collective(double start, std::span<double> ready, bool combine, int m) {
  sim_.schedule_at(step_start_ + seconds_to_ns(start), self_, combine ? kExpertsDone : kDenseDone);
  sim_.run(step_start_ + seconds_to_ns(start));
  const bool takes = m == 0;  // dispatch 0 and combine 0 come after their partners; the 1s before theirs
  const std::vector<double>& seconds = comm_s_[combine][m];
  double busy = 0, overlap = 0, last = start;
  for (std::int64_t g = 0; g < gpus_; ++g) {
    const double end = start + seconds[g];
    busy += seconds[g];
    last = std::max(last, end);
    if (takes) overlap += overlap_of(start, end, partner_[g]);
    else partner_[g] = {start, end};
    ports_free_[g] = ready[g] = end;
  }
  segment_.communication += busy;
  segment_.overlap += overlap;
  if (trace_) {
    const double per_copy = static_cast<double>(c_.model.hidden) * (combine ? 2.0 : dispatch_bytes_per_element_) * micro_share_[m];
    for (std::int64_t g = 0; g < gpus_; ++g)
      trace_ports(g, combine ? ports_[g].reversed() : ports_[g], per_copy, kPortNames[combine][m],
                  step_start_ + seconds_to_ns(start), layer_args(trace_layer_, trace_backward_));
  }
  return last;
}

// Every GPU's compute operation `op` (0 dense, 1 experts) of micro-batch m, from `ready`; ready becomes its
// end. Returns when the collective that follows can start: every GPU done and its ports free.
double MoeRun::compute_ops(std::span<double> ready, int op, int m, double compute_factor) {
  const MoeLayerTimes& t = times_.micro[m];
  const double dense_s = (t.attention_s + t.shared_s) * compute_factor;
  // dense 0 and experts 0 come after their partners (combine 1 of the layer before, dispatch 1); dense 1
  // and experts 1 before theirs (dispatch 0, combine 0).
  const bool takes = m == 0;
  double busy = 0, overlap = 0, gate = 0;
  for (std::int64_t g = 0; g < gpus_; ++g) {
    const auto i = static_cast<std::size_t>(g);
    double work = op == 0 ? dense_s + (core_micro_[m].empty() ? 0.0 : core_micro_[m][i])
                          : micro_expert_s_[m][i] * compute_factor * stretch_[i];
    work *= noise_[i] * sm_factor_;
    const double start = std::max(ready[g], compute_free_[i]), end = start + work;
    busy += work;
    if (takes) overlap += overlap_of(start, end, partner_[i]);
    else partner_[i] = {start, end};
    compute_free_[i] = ready[g] = end;
    gate = std::max({gate, end, ports_free_[i]});
    if (trace_ && work > 0)
      trace_->slice(gpu_track_ + g, kComputeNames[op][m], step_start_ + seconds_to_ns(start),
                    step_start_ + seconds_to_ns(end),
                    layer_args(trace_layer_, trace_backward_).add("expert_tokens", gpu_tokens_[i]));
  }
  segment_.compute += busy;
  segment_.overlap += overlap;
  return gate;
}

// A layer with the micro-batches' counts placed and the layer's port traffic computed; returns its span,
// from its first dense part to its last combine.
double MoeRun::overlap_layer(double compute_factor) {
  std::vector<double>(&at)[2] = micro_at_;  // each micro-batch's input on each GPU, then its phases' ends
  const double begin = std::min(*std::min_element(at[0].begin(), at[0].end()),
                                *std::min_element(at[1].begin(), at[1].end()));
  time_collectives();
  const double dispatch0 = compute_ops(at[0], 0, 0, compute_factor);
  const double dispatch1 = compute_ops(at[1], 0, 1, compute_factor);
  const double ports0 = collective(dispatch0, at[0], false, 0);
  collective(std::max(dispatch1, ports0), at[1], false, 1);
  const double combine0 = compute_ops(at[0], 1, 0, compute_factor);
  const double combine1 = compute_ops(at[1], 1, 1, compute_factor);
  const double ports2 = collective(combine0, at[0], true, 0);
  collective(std::max(combine1, ports2), at[1], true, 1);
  layer_end_ = std::max(*std::max_element(at[0].begin(), at[0].end()), *std::max_element(at[1].begin(), at[1].end()));
  return layer_end_ - begin;
}

// Ends a run of overlapped layers: time moves to the last combine, and the segment's GPU-time is split into
// computation, exposed communication and barrier wait.
void MoeRun::end_overlap() {
  double end = segment_.start;
  for (std::size_t g = 0; g < compute_free_.size(); ++g)
    end = std::max({end, micro_at_[0][g], micro_at_[1][g], compute_free_[g]});
  sim_.schedule_at(step_start_ + seconds_to_ns(end), self_, kLayerDone);
  sim_.run(step_start_ + seconds_to_ns(end));
  const double exposed = segment_.communication - segment_.overlap;
  const double wait = (end - segment_.start) * static_cast<double>(gpus_) - segment_.compute - exposed;
  MoeTally& t = tally_.moe;
  t.compute_s += segment_.compute;
  t.communication_s += exposed;
  t.wait_s += std::max(0.0, wait);
  busy_s_ += segment_.compute + exposed;
}

// With a controller, the layer is first timed whole (its weight loads and hedges decided on those times);
// each GPU's micro-batch experts then take the same factor longer or shorter as its whole experts did.
void MoeRun::control_overlap(const MoeLayer& view, double compute_factor) {
  const double dense_s = (times_.whole.attention_s + times_.whole.shared_s) * compute_factor;
  LayerSums sums = gpu_phases(compute_factor, dense_s);
  control_experts(view, compute_factor, slowest_dense(dense_s), sums);
  for (std::int64_t g = 0; g < gpus_; ++g) {
    const double planned = expert_s_[g] * compute_factor * noise_[g];
    const double controlled = finish_s_[g] - dispatch_s_[g];
    stretch_[g] = planned > 0 ? controlled / planned : 1.0;
  }
}

}  // namespace tailsim
