// One policy's run of the moe workload (sim/workload/moe.hpp describes the layer). Internal to the
// workload: MoeWorkload::run makes one MoeRun per policy, on the same random streams (common random
// numbers). Per-GPU work is computed in arrays; the three synchronisations of a layer are events.
// The policy's MoeController (sim/policy/moe_policy.hpp), when it has one, is called in layer order; the
// run charges the cost of each of its decisions.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "sim/cluster/all_to_all.hpp"
#include "sim/cluster/components.hpp"
#include "sim/cluster/trace_sink.hpp"
#include "sim/core/rng.hpp"
#include "sim/cost/grouped_time_cache.hpp"
#include "sim/engine/simulator.hpp"
#include "sim/workload/moe.hpp"

namespace tailsim {

class MoeRun final : public EventHandler {
 public:
  struct Interval {  // seconds from the step's start
    double start = 0, end = 0;
  };
  MoeRun(const MoeWorkload::Config& c, const MoeTimes& times, const RunRequest& req, const MoePolicy& policy,
         PolicyTally& tally);
  void run(std::int64_t steps);
  void handle(Simulator&, const Event&) override {}  // the synchronisation events only advance time

 private:
  enum Kind : std::uint32_t { kDenseDone, kExpertsDone, kLayerDone, kWeightsArrived };
  struct GpuPhases {
    double dispatch, expert, combine;  // seconds
  };
  // A layer's sums over GPUs.
  struct LayerSums {
    double experts_max = 0, combine_max = 0, communication = 0, compute = 0, moved = 0;
  };

  void sync_after(double seconds, Kind kind);  // advances simulated time through one synchronisation event
  void draw_noise();
  void draw_contexts();  // decode with a drawn context: core_s_ for this step (sim/workload/moe_context.cpp)
  // A GPU's dense part: the layer's fixed dense_s plus, with a drawn context, its own core attention.
  double dense_at(double dense_s, std::int64_t g) const { return core_s_.empty() ? dense_s : dense_s + core_s_[g]; }
  void simulate_step();
  void dense_layer(double seconds, int layer, bool backward);
  void moe_layer(int layer, double compute_factor, bool backward);
  const std::int64_t* route_layer(MoeLayer& view);
  void place(const std::int64_t* counts);
  void place_twins();
  // A replica's tokens: ExpertPlacement::share from this layer's share_q_ and share_r_.
  std::int64_t share(const ExpertPlacement::Slot& slot) const {
    return share_q_[slot.expert] + (slot.replica < share_r_[slot.expert] ? 1 : 0);
  }
  // One GPU's dispatch and combine seconds from its port traffic, before a fail-slow episode on its links.
  std::array<double, 2> port_seconds(std::int64_t g) const {
    const double hidden = static_cast<double>(c_.model.hidden);
    const PortTraffic& port = ports_[g];
    return {all_to_all_seconds(port, hidden * dispatch_bytes_per_element_, c_.cluster.nvlink, c_.cluster.nic),
            all_to_all_seconds(port.reversed(), hidden * 2.0, c_.cluster.nvlink, c_.cluster.nic)};
  }
  // One GPU's all-to-all and expert times in the current layer (once place() and the traffic are done; the
  // trace's view of what gpu_phases() computes for every GPU).
  GpuPhases phases(std::int64_t g, double compute_factor) const {
    const std::array<double, 2> port_s = port_seconds(g);
    const double link = link_.empty() ? 1.0 : link_[g];  // a fail-slow episode on the GPU's links
    return {port_s[0] * link, expert_s_[g] * compute_factor * noise_[g], port_s[1] * link};
  }
  LayerSums gpu_phases(double compute_factor, double dense_s);
  void control_experts(const MoeLayer& view, double compute_factor, double dense_max, LayerSums& sums);
  void hedge(const Hedge& h, double compute_factor, LayerSums& sums);
  double slowest_dense(double dense_s) const;
  double serial_layer(const MoeLayer& view, double compute_factor, LayerSums& s);

  // Two-batch overlap (sim/workload/moe_overlap.cpp); times in seconds from the step's start.
  struct OverlapSums {
    double start = 0, compute = 0, communication = 0, overlap = 0;  // GPU-seconds since start
  };
  void begin_overlap();
  void time_collectives();
  double collective(double start, std::span<double> ready, bool combine, int micro);
  double compute_ops(std::span<double> ready, int op, int micro, double compute_factor);
  double overlap_layer(double compute_factor);
  void control_overlap(const MoeLayer& view, double compute_factor);
  void end_overlap();
  const LinkSpec& link_between(std::int64_t a, std::int64_t b) const;
  double node_limit();
  void all_reduce();
  double grad_reduce_overlapped(double dense_bucket_s, double moe_bucket_s);
  void mark_backward_done(int layer, double at_s);

  // Tracing (sim/workload/moe_trace.cpp).
  void open_tracks();
  TraceArgs layer_args(int layer, bool backward) const;
  void trace_dense_layer(double seconds, int layer, bool backward, double slowest);
  void trace_moe_layer(int layer, bool backward, double dense_s, double compute_factor, double dense_max,
                       double experts_max, double combine_max);
  void trace_ports(std::int64_t g, const PortTraffic& p, double bytes_per_copy, std::string_view phase, SimTime at,
                   const TraceArgs& args);
  void trace_all_reduce(double seconds, double bytes_per_gpu);

  const MoeWorkload::Config& c_;
  MoeTimes times_;
  PolicyTally& tally_;
  std::int64_t gpus_, experts_;
  RngStream noise_stream_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<Router> ahead_;  // MoeRunInfo::route_ahead's router, made on its first call
  std::unique_ptr<MoeController> controller_;  // null: no hooks
  ExpertPlacement placement_;
  GroupedTimeCache cost_;  // the expert cost model, memoized for one-expert GPUs
  MoeDecisions decisions_;
  // Per-GPU state of one layer, reused across layers (no allocation per layer-step).
  std::vector<std::int64_t> counts_;      // tokens per expert
  std::vector<std::int64_t> gpu_tokens_;  // (token, expert) pairs hosted per GPU
  std::vector<std::int64_t> local_;       // scratch: one GPU's tokens per local expert replica
  std::vector<std::int64_t> share_q_, share_r_;  // per expert: its count's quotient and remainder by its replicas
  // Twin nodes (place_twins): per node, the earlier node it copies, or -1; per GPU, its dispatch and combine
  // seconds. Empty unless the layout allows twins.
  std::vector<std::int64_t> twins_;
  std::vector<std::array<double, 2>> twin_comm_;
  std::int64_t twin_back_ = 0;
  const std::int64_t* layer_counts_ = nullptr;  // the layer's counts per expert, as placed (for hedges)
  std::optional<double> standby_bytes_;  // the controller's standby copies, bytes per GPU (backup_slots)
  std::vector<double> expert_s_;          // expert compute per GPU, before noise
  std::vector<double> noise_;             // per-GPU factor this layer (noise x slowdown)
  std::vector<double> pairs_;             // gpu_tokens_ as doubles, for the all-to-all
  std::vector<double> busiest_;           // pairs of each GPU's busiest expert (or its replica slice)
  std::vector<double> node_scratch_;      // scratch: three values per node, and top-k more
  std::vector<PortTraffic> ports_;        // per-GPU port traffic of the dispatch (token copies)
  std::vector<double> dispatch_s_, finish_s_, load_s_;  // with a controller: per GPU, from the dispatch start
  std::vector<Link> nic_in_, nvlink_in_, host_in_;  // with a controller: each GPU's ingress links for weight loads
  std::vector<double> slow_;
  // Fail-slow episodes (Config::fail_slow): this step's per-GPU compute factor (slow_ x episodes) and link factor.
  std::optional<FailSlowEpisodes> episodes_;
  std::vector<double> step_slow_, link_;
  std::vector<double> core_s_;  // decode with a drawn context: each GPU's core attention per layer this step
  RngStream context_stream_;    // "moe/context": the requests' context lengths, one draw per request and step
  // two_batch: per GPU, each micro-batch's experts (before noise), core attention (drawn contexts) and when
  // its input is there; when the compute stream and the ports are free; the controller's factor on the
  // experts; the interval an all-to-all or computation leaves for its partner; each micro-batch's share.
  bool two_batch_ = false;
  std::vector<double> micro_expert_s_[2], core_micro_[2], micro_at_[2], compute_free_, ports_free_, stretch_;
  std::vector<Interval> partner_;
  std::vector<double> comm_s_[2][2];  // per GPU: [dispatch, combine][micro-batch] seconds of its ports
  OverlapSums segment_;
  double micro_share_[2] = {0.5, 0.5};
  double sm_factor_ = 1.0;
  int trace_layer_ = 0;
  bool trace_backward_ = false;
  std::vector<std::int64_t> saved_counts_;  // training: forward routing, replayed by the backward pass
  MoeTokens tokens_;                        // the tokens engine: this layer-step's tokens
  std::int64_t node_size_ = 1, nodes_ = 1;
  int groups_ = 1, group_limit_ = 0;  // the router's expert groups and group limit (node-limited dispatch)
  std::vector<std::int64_t> node_stamp_;  // node_limit() scratch
  std::vector<std::int32_t> node_of_;     // node of each GPU
  double fixed_node_limit_ = -1;          // node_limit() without a controller: computed once
  double dispatch_bytes_per_element_ = 2.0;  // FP8 dispatch for FP8 models, else BF16 (the combine is BF16)
  Simulator sim_;
  std::uint32_t self_ = 0;
  std::vector<double> grad_ready_;  // overlap_grad_reduce: when each layer's backward ended (s from step start)
  double layer_end_ = 0;            // the last MoE layer's end, seconds from the step's start
  std::int64_t step_ = 0;
  SimTime step_start_ = 0;
  double busy_s_ = 0, extra_s_ = 0;
  TraceSink* trace_;  // null unless tracing
  std::int64_t step_track_ = -1, gpu_track_ = -1, nvlink_track_ = -1, nic_track_ = -1;  // first track ids
};

}  // namespace tailsim
