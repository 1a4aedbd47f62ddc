// The timeline of a traced moe run (RunRequest::trace): every GPU's phases and waits, and its ports'
// transfers, from the same values that time the run.
#include <algorithm>
#include <string>

#include "sim/workload/moe_run.hpp"

namespace tailsim {

void MoeRun::open_tracks() {
  const std::vector<WorkerGroup> groups = c_.cluster.groups();
  step_track_ = trace_->add_track("steps");
  gpu_track_ = trace_->add_gpu_tracks(groups);
  if (node_size_ > 1) nvlink_track_ = trace_->add_gpu_tracks(groups, "nvlink");
  if (nodes_ > 1) nic_track_ = trace_->add_gpu_tracks(groups, "nic");
}

void MoeRun::trace_dense_layer(double seconds, int layer, bool backward, double slowest) {
  const SimTime start = sim_.now(), end = start + seconds_to_ns(slowest);
  for (std::int64_t g = 0; g < gpus_; ++g) {
    const SimTime done = start + seconds_to_ns(dense_at(seconds, g) * noise_[g]);
    trace_->slice(gpu_track_ + g, "dense", start, done, layer_args(layer, backward));
    trace_->slice(gpu_track_ + g, "barrier wait", done, end, layer_args(layer, backward));
  }
}

void MoeRun::trace_all_reduce(double seconds, double bytes_per_gpu) {
  const SimTime start = sim_.now(), end = start + seconds_to_ns(seconds);
  const std::int64_t link_track = gpus_ > node_size_ ? nic_track_ : nvlink_track_;
  const TraceArgs args = TraceArgs().add("step", step_).add("bytes_sent", bytes_per_gpu);
  for (std::int64_t g = 0; g < gpus_; ++g) {
    trace_->slice(gpu_track_ + g, "all-reduce", start, end, args);
    trace_->slice(link_track + g, "all-reduce", start, end, args);
  }
}

TraceArgs MoeRun::layer_args(int layer, bool backward) const {
  TraceArgs args;
  args.add("step", step_).add("layer", layer);
  if (backward) args.add("pass", "backward");
  return args;
}

// Every GPU's phases and waits in a layer that starts now, and its ports' transfers, from the values that
// time the layer. The GPUs whose experts finish last (to the nanosecond) are the layer's stragglers.
void MoeRun::trace_moe_layer(int layer, bool backward, double dense_s, double compute_factor, double dense_max,
                             double experts_max, double combine_max) {
  const SimTime start = sim_.now(), dispatch_at = start + seconds_to_ns(dense_max);
  const SimTime combine_at = dispatch_at + seconds_to_ns(experts_max), end = combine_at + seconds_to_ns(combine_max);
  const double hidden = static_cast<double>(c_.model.hidden);
  for (std::int64_t g = 0; g < gpus_; ++g) {
    const GpuPhases ph = phases(g, compute_factor);
    const TraceArgs wait = layer_args(layer, backward);
    TraceArgs args = wait;
    args.add("expert_tokens", gpu_tokens_[g]);
    // Each phase ends by the synchronisation that follows it (the maximum of the same values; the clamps
    // only guard against a different rounding or contraction of the recomputed sums).
    const SimTime dense_end = std::min(dispatch_at, start + seconds_to_ns(dense_at(dense_s, g) * noise_[g]));
    const SimTime experts_at = dispatch_at + seconds_to_ns(ph.dispatch);
    const double finish = controller_ ? finish_s_[g] : ph.dispatch + ph.expert;  // with weight stalls and hedges
    const SimTime experts_end = std::min(combine_at, dispatch_at + seconds_to_ns(finish));
    const SimTime combine_end = std::min(end, combine_at + seconds_to_ns(ph.combine));
    const std::int64_t t = gpu_track_ + g;
    trace_->slice(t, "dense", start, dense_end, args);
    trace_->slice(t, "barrier wait", dense_end, dispatch_at, wait);
    trace_->slice(t, "dispatch", dispatch_at, experts_at, args);
    const char* experts = experts_end == combine_at ? "experts (straggler)" : "experts";
    trace_->slice(t, experts, experts_at, experts_end, args);
    trace_->slice(t, "barrier wait", experts_end, combine_at, wait);
    trace_->slice(t, "combine", combine_at, combine_end, args);
    trace_->slice(t, "barrier wait", combine_end, end, wait);
    trace_ports(g, ports_[g], hidden * dispatch_bytes_per_element_, "dispatch", dispatch_at, wait);
    trace_ports(g, ports_[g].reversed(), hidden * 2.0, "combine", combine_at, wait);
  }
}

// One GPU's share of an all-to-all phase on its NVLink and NIC ports, which carry it in parallel.
void MoeRun::trace_ports(std::int64_t g, const PortTraffic& p, double bytes_per_copy, std::string_view phase,
                         SimTime at, const TraceArgs& args) {
  const std::pair<std::int64_t, PortTraffic> ports[] = {{nvlink_track_, {p.recv_intra, p.send_intra, 0, 0}},
                                                        {nic_track_, {0, 0, p.recv_inter, p.send_inter}}};
  for (const auto& [track, port] : ports) {
    if (track < 0) continue;
    TraceArgs a = args;
    a.add("bytes_sent", (port.send_intra + port.send_inter) * bytes_per_copy)
        .add("bytes_received", (port.recv_intra + port.recv_inter) * bytes_per_copy);
    const double seconds =
        all_to_all_seconds(port, bytes_per_copy, c_.cluster.nvlink, c_.cluster.nic) * (link_.empty() ? 1.0 : link_[g]);
    trace_->slice(track + g, phase, at, at + seconds_to_ns(seconds), a);
  }
}

}  // namespace tailsim
