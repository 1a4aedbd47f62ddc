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
#include <stdexcept>
#include <string>

#include "sim/workload/moe_run.hpp"

namespace tailsim {

namespace {
constexpr const char* kComputeNames[2][2] = {{"dense 0", "dense 1"}, {"experts 0", "experts 1"}};
constexpr const char* kPortNames[2][2] = {{"dispatch 0", "dispatch 1"}, {"combine 0", "combine 1"}};
}  // namespace

void MoeRun::begin_overlap() {
  const double t0 = ns_to_seconds(sim_.now() - step_start_);
  for (GpuStreams& s : streams_) s = GpuStreams{{t0, t0}, {t0, t0}, {}, {t0, t0}, {0, 0}};
  segment_ = OverlapSums{t0};
}

// Runs `seconds` of work on GPU g's resource r (kCompute or kPorts) from `ready` or when r is free;
// returns when it ends. Adds its overlap with the other resource's recent intervals.
double MoeRun::stream_op(std::int64_t g, int r, double ready, double seconds) {
  GpuStreams& s = streams_[static_cast<std::size_t>(g)];
  const double start = std::max(ready, s.free[r]), end = start + seconds;
  s.free[r] = end;
  if (seconds <= 0) return end;
  const int other = 1 - r;
  if (start < s.evicted[other])  // an interval that may overlap this one has left the window
    throw std::logic_error("two_batch overlap: an operation overlaps one outside its window");
  for (const Interval& i : s.recent[other]) segment_.overlap += std::max(0.0, std::min(end, i.end) - std::max(start, i.start));
  Interval& slot = s.recent[r][s.next[r]];
  s.evicted[r] = std::max(s.evicted[r], slot.end);
  slot = {start, end};
  s.next[r] = (s.next[r] + 1) % kWindow;
  (r == kCompute ? segment_.compute : segment_.communication) += seconds;
  return end;
}

// One collective of micro-batch m: it starts once every GPU's input to it is ready and its ports are free;
// each GPU's share then takes its own time. Returns the start (seconds from the step's start).
double MoeRun::collective(std::span<double> ready, bool combine, int m) {
  double start = 0;
  for (std::int64_t g = 0; g < gpus_; ++g)
    start = std::max(start, std::max(ready[g], streams_[static_cast<std::size_t>(g)].free[kPorts]));
  sim_.schedule_at(step_start_ + seconds_to_ns(start), self_, combine ? kExpertsDone : kDenseDone);
  sim_.run(step_start_ + seconds_to_ns(start));
  const double hidden = static_cast<double>(c_.model.hidden);
  const double per_copy = hidden * (combine ? 2.0 : dispatch_bytes_per_element_) * micro_share_[m];
  for (std::int64_t g = 0; g < gpus_; ++g) {
    const PortTraffic port = combine ? ports_[g].reversed() : ports_[g];
    const double seconds = all_to_all_seconds(port, per_copy, c_.cluster.nvlink, c_.cluster.nic);
    ready[g] = stream_op(g, kPorts, start, seconds);
    if (trace_)
      trace_ports(g, port, per_copy, kPortNames[combine][m], step_start_ + seconds_to_ns(start),
                  layer_args(trace_layer_, trace_backward_));
  }
  return start;
}

// Every GPU's compute operation `op` (0 dense, 1 experts) of micro-batch m, from `ready`; ready becomes its end.
void MoeRun::compute_ops(std::span<double> ready, int op, int m, double compute_factor) {
  const MoeLayerTimes& t = times_.micro[m];
  const double dense_s = (t.attention_s + t.shared_s) * compute_factor;
  for (std::int64_t g = 0; g < gpus_; ++g) {
    const auto i = static_cast<std::size_t>(g);
    double work = op == 0 ? dense_s + (core_micro_[m].empty() ? 0.0 : core_micro_[m][i])
                          : micro_expert_s_[m][i] * compute_factor * stretch_[i];
    work *= noise_[i] * sm_factor_;
    const double start = std::max(ready[g], streams_[i].free[kCompute]);
    ready[g] = stream_op(g, kCompute, ready[g], work);
    if (trace_ && work > 0)
      trace_->slice(gpu_track_ + g, kComputeNames[op][m], step_start_ + seconds_to_ns(start),
                    step_start_ + seconds_to_ns(ready[g]),
                    layer_args(trace_layer_, trace_backward_).add("expert_tokens", gpu_tokens_[i]));
  }
}

// A layer with the micro-batches' counts placed and the layer's port traffic computed; returns its span,
// from its first dense part to its last combine.
double MoeRun::overlap_layer(double compute_factor) {
  std::vector<double>(&at)[2] = micro_at_;
  for (const int m : {0, 1})
    for (std::int64_t g = 0; g < gpus_; ++g) at[m][g] = streams_[static_cast<std::size_t>(g)].ready[m];
  const double begin = std::min(*std::min_element(at[0].begin(), at[0].end()),
                                *std::min_element(at[1].begin(), at[1].end()));
  compute_ops(at[0], 0, 0, compute_factor);
  compute_ops(at[1], 0, 1, compute_factor);
  collective(at[0], false, 0);
  collective(at[1], false, 1);
  compute_ops(at[0], 1, 0, compute_factor);
  compute_ops(at[1], 1, 1, compute_factor);
  collective(at[0], true, 0);
  collective(at[1], true, 1);
  double end = begin;
  for (std::int64_t g = 0; g < gpus_; ++g) {
    GpuStreams& s = streams_[static_cast<std::size_t>(g)];
    s.ready[0] = at[0][g];
    s.ready[1] = at[1][g];
    end = std::max({end, s.ready[0], s.ready[1]});
  }
  return end - begin;
}

// Ends a run of overlapped layers: time moves to the last combine, and the segment's GPU-time is split into
// computation, exposed communication and barrier wait.
void MoeRun::end_overlap() {
  double end = segment_.start;
  for (const GpuStreams& s : streams_) end = std::max({end, s.ready[0], s.ready[1], s.free[kCompute]});
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
  double dense_max = 0;
  for (std::int64_t g = 0; g < gpus_; ++g)
    dense_max = std::max(dense_max, dense_at((times_.whole.attention_s + times_.whole.shared_s) * compute_factor, g) * noise_[g]);
  LayerSums sums = gpu_phases(compute_factor, (times_.whole.attention_s + times_.whole.shared_s) * compute_factor);
  control_experts(view, compute_factor, dense_max, sums);
  for (std::int64_t g = 0; g < gpus_; ++g) {
    const double planned = expert_s_[g] * compute_factor * noise_[g];
    const double controlled = finish_s_[g] - dispatch_s_[g];
    stretch_[g] = planned > 0 ? controlled / planned : 1.0;
  }
}

}  // namespace tailsim
