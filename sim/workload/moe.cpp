#include "sim/workload/moe.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "sim/cluster/all_to_all.hpp"
#include "sim/core/rng.hpp"
#include "sim/engine/simulator.hpp"
#include "sim/cluster/trace_sink.hpp"
#include "sim/config/configs.hpp"

namespace tailsim {

MoeModel parse_moe_model(const JsonReader& at) {
  std::optional<ConfigDoc> doc;
  JsonReader n = at;
  if (at.is_string()) {
    doc = load_config(at, "models", at.value().get<std::string>());
    n = JsonReader(doc->json, doc->file);
  }
  n.expect_object();
  MoeModel m;
  m.name = n.string("name");
  n.string("description", "");
  n.string("source", "");
  m.layers = static_cast<int>(n.integer("layers", {}, Range{1.0, 10000.0}));
  m.dense_layers = static_cast<int>(n.integer("dense_layers", 0, Range{0.0, static_cast<double>(m.layers - 1)}));
  m.experts = static_cast<int>(n.integer("experts", {}, Range{1.0, 65536.0}));
  m.top_k = static_cast<int>(n.integer("top_k", {}, Range{1.0, static_cast<double>(m.experts)}));
  m.shared_experts = static_cast<int>(n.integer("shared_experts", 0, Range{0.0, 64.0}));
  m.hidden = n.integer("hidden", {}, Range{1.0, 1e6});
  m.expert_intermediate = n.integer("expert_intermediate", {}, Range{1.0, 1e6});
  m.shared_intermediate = n.integer("shared_intermediate", m.shared_experts ? m.expert_intermediate : 0, Range{0.0, 1e6});
  m.dense_intermediate = n.integer("dense_intermediate", 0, Range{0.0, 1e6});
  if (m.dense_layers > 0 && m.dense_intermediate == 0)
    n.fail("a model with dense_layers needs 'dense_intermediate' (the dense FFN size)");
  m.gated = n.boolean("gated", true);
  m.dtype = n.string("dtype", "bf16", {"fp16", "bf16", "fp8"});
  m.attention_params_per_layer = n.number("attention_params_per_layer", 0.0, at_least(0));
  n.finish();
  return m;
}

std::vector<std::string> moe_model_names() { return config_names("models"); }

namespace {

// A dense GEMM block of `params` weights seen by the cost model as an ungated FFN (same FLOPs and bytes).
ExpertShape dense_block(std::int64_t hidden, double params, const std::string& dtype) {
  return {hidden, std::max<std::int64_t>(1, std::llround(params / (2.0 * static_cast<double>(hidden)))), false, dtype};
}

// Per-GPU state of one layer, reused across layers (no allocation per layer-step).
struct LayerArrays {
  std::vector<std::int64_t> counts;       // tokens per expert
  std::vector<std::int64_t> gpu_tokens;   // (token, expert) pairs hosted per GPU
  std::vector<double> expert_s;           // expert compute per GPU, before noise
  std::vector<double> noise;              // per-GPU factor this layer (noise x slowdown)
  std::vector<double> pairs;              // the same as doubles, for the all-to-all
  std::vector<double> busiest;            // pairs of each GPU's busiest expert (or its replica slice)
  std::vector<double> node_scratch;       // scratch: three values per node, and top-k more
  std::vector<PortTraffic> ports;         // per-GPU port traffic of the dispatch (token copies)
  std::vector<std::int64_t> replica_tokens;  // scratch for replicas
};

class MoeRun final : public EventHandler {
 public:
  enum Kind : std::uint32_t { kDenseDone, kExpertsDone, kLayerDone };

  MoeRun(const MoeWorkload::Config& c, double attention_s, double shared_s, double dense_ffn_s, const RunRequest& req,
         PolicyTally& tally)
      : c_(c), attention_s_(attention_s), shared_s_(shared_s), dense_ffn_s_(dense_ffn_s), tally_(tally),
        gpus_(c.cluster.gpus), experts_(c.model.experts),
        noise_stream_(req.seed, "moe/noise", req.point, req.replication), trace_(req.trace) {
    RouterContext rc;
    rc.layers = c.model.moe_layers();
    rc.experts = experts_;
    rc.top_k = c.model.top_k;
    rc.seed = req.seed;
    rc.point = req.point;
    rc.replication = req.replication;
    const JsonReader router_node(c.router, c.router_file, c.router_path);
    router_ = make_router(router_node, rc);
    a_.counts.resize(static_cast<std::size_t>(experts_));
    a_.gpu_tokens.resize(static_cast<std::size_t>(gpus_));
    a_.expert_s.resize(static_cast<std::size_t>(gpus_));
    a_.noise.assign(static_cast<std::size_t>(gpus_), 1.0);
    slow_.assign(static_cast<std::size_t>(gpus_), 1.0);
    for (const WorkerGroup& g : c.cluster.groups())
      std::fill(slow_.begin() + g.first, slow_.begin() + g.first + g.count, g.factor);
    node_size_ = std::min(c.cluster.gpus_per_node, gpus_);
    nodes_ = (gpus_ + node_size_ - 1) / node_size_;
    a_.pairs.resize(static_cast<std::size_t>(gpus_));
    a_.ports.resize(static_cast<std::size_t>(gpus_));
    a_.busiest.resize(static_cast<std::size_t>(gpus_));
    a_.node_scratch.resize(3 * static_cast<std::size_t>(nodes_) + static_cast<std::size_t>(c.model.top_k));
    if (c.mode == MoeMode::kTraining)
      saved_counts_.resize(static_cast<std::size_t>(c.model.moe_layers()) * static_cast<std::size_t>(experts_));
    dispatch_bytes_ = c.model.dtype == "fp8" ? 1.0 : 2.0;  // FP8 dispatch, BF16 combine (as DeepEP)
    self_ = sim_.add_handler(this);
    if (trace_) {
      const std::vector<WorkerGroup> groups = c.cluster.groups();
      step_track_ = trace_->add_track("steps");
      gpu_track_ = trace_->add_gpu_tracks(groups);
      if (node_size_ > 1) nvlink_track_ = trace_->add_gpu_tracks(groups, "nvlink");
      if (nodes_ > 1) nic_track_ = trace_->add_gpu_tracks(groups, "nic");
    }
  }

  void run(std::int64_t steps) {
    for (step_ = 0; step_ < steps; ++step_) {
      step_start_ = sim_.now();
      simulate_step();
      sim_.run();
      const SimTime step_ns = sim_.now() - step_start_;
      tally_.add_step(step_ns, gpus_, busy_s_, 0.0);
      if (trace_)
        trace_->slice(step_track_, "step " + std::to_string(step_), step_start_, sim_.now(),
                      TraceArgs().add("step", step_).add("step_ns", step_ns));
      busy_s_ = 0;
    }
    tally_.events += sim_.events_executed();
  }

  void handle(Simulator&, const Event&) override {}  // the synchronisation events only advance time

 private:
  // Advances simulated time by `seconds` through one synchronisation event.
  void sync_after(double seconds, Kind kind) {
    sim_.schedule_in(seconds_to_ns(seconds), self_, kind);
    sim_.run();
  }

  void draw_noise() {
    if (!c_.cluster.noise) {
      std::copy(slow_.begin(), slow_.end(), a_.noise.begin());
      return;
    }
    for (std::int64_t g = 0; g < gpus_; ++g)
      a_.noise[g] = slow_[g] * c_.cluster.noise->from_uniform(noise_stream_.uniform());
  }

  // A layer without experts (a dense layer, or the all-reduce): every GPU computes `seconds` x its factor.
  void dense_layer(double seconds, int layer, bool backward) {
    draw_noise();
    double slowest = 0, sum = 0;
    for (std::int64_t g = 0; g < gpus_; ++g) {
      slowest = std::max(slowest, seconds * a_.noise[g]);
      sum += seconds * a_.noise[g];
    }
    tally_.moe.compute_s += sum;
    tally_.moe.wait_s += slowest * static_cast<double>(gpus_) - sum;
    busy_s_ += sum;
    if (trace_) {
      const SimTime start = sim_.now(), end = start + seconds_to_ns(slowest);
      for (std::int64_t g = 0; g < gpus_; ++g) {
        const SimTime done = start + seconds_to_ns(seconds * a_.noise[g]);
        trace_->slice(gpu_track_ + g, "dense", start, done, layer_args(layer, backward));
        trace_->slice(gpu_track_ + g, "barrier wait", done, end, layer_args(layer, backward));
      }
    }
    sync_after(slowest, kLayerDone);
  }

  void moe_layer(int layer, double compute_factor, bool backward) {
    draw_noise();
    std::int64_t* counts = a_.counts.data();
    if (!backward) {
      router_->route(step_, layer, gpus_ * c_.tokens_per_gpu, a_.counts);
      if (!saved_counts_.empty())
        std::copy(a_.counts.begin(), a_.counts.end(), saved_counts_.begin() + static_cast<std::ptrdiff_t>(layer) * experts_);
    } else {
      counts = saved_counts_.data() + static_cast<std::ptrdiff_t>(layer) * experts_;  // backward: same routing
    }
    place(counts);

    // Dense part, then the dispatch collective.
    const double dense_s = (attention_s_ + shared_s_) * compute_factor;
    // dense_s >= 0 and rounding is monotone, so this is exactly the largest dense_s x noise[g]. (Reductions by
    // algorithm keep their accumulator in a register; a hand loop here was kept on the stack, 10 % slower.)
    const double dense_max = dense_s * *std::max_element(a_.noise.begin(), a_.noise.end());

    // Dispatch (hidden x dispatch bytes per token copy) and combine (BF16) all-to-alls, aggregated per GPU port.
    const double hidden = static_cast<double>(c_.model.hidden);
    const double k = static_cast<double>(gpus_);
    std::copy(a_.gpu_tokens.begin(), a_.gpu_tokens.end(), a_.pairs.begin());
    const double total_pairs = std::accumulate(a_.pairs.begin(), a_.pairs.end(), 0.0);
    const double max_pairs = *std::max_element(a_.pairs.begin(), a_.pairs.end());
    if (c_.dispatch == DispatchScheme::kHierarchical)
      hierarchical_traffic(a_.pairs, a_.busiest, node_size_, experts_, c_.model.top_k, a_.node_scratch, a_.ports);
    else
      all_to_all_traffic(a_.pairs, node_size_, a_.node_scratch, a_.ports);
    double dispatch_compute_max = 0, combine_max = 0, comm_sum = 0, compute_sum = 0, moved = 0;
    for (std::int64_t g = 0; g < gpus_; ++g) {
      const GpuPhases ph = phases(g, compute_factor);
      dispatch_compute_max = std::max(dispatch_compute_max, ph.dispatch + ph.expert);
      combine_max = std::max(combine_max, ph.combine);
      comm_sum += ph.dispatch + ph.combine;
      compute_sum += dense_s * a_.noise[g] + ph.expert;
      moved += a_.ports[g].moved();
    }
    const double bytes = moved * hidden * (dispatch_bytes_ + 2.0);
    const double max_tokens = max_pairs;
    const double layer_s = dense_max + dispatch_compute_max + combine_max;
    if (trace_)
      trace_moe_layer(c_.model.dense_layers + layer, backward, dense_s, compute_factor, dense_max,
                      dispatch_compute_max, combine_max);
    sync_after(dense_max, kDenseDone);
    sync_after(dispatch_compute_max, kExpertsDone);
    sync_after(combine_max, kLayerDone);
    busy_s_ += compute_sum + comm_sum;  // idle_fraction counts only barrier waits
    MoeTally& t = tally_.moe;
    t.compute_s += compute_sum;
    t.communication_s += comm_sum;
    t.wait_s += layer_s * k - compute_sum - comm_sum;
    t.bytes_moved += bytes;
    t.load_imbalance_sum += total_pairs > 0 ? max_tokens / (total_pairs / k) : 1.0;
    ++t.layer_steps;
  }

  struct GpuPhases {
    double dispatch, expert, combine;  // seconds
  };
  // One GPU's all-to-all and expert times in the current layer (once place() and the traffic are done).
  GpuPhases phases(std::int64_t g, double compute_factor) const {
    const double hidden = static_cast<double>(c_.model.hidden);
    const PortTraffic& port = a_.ports[g];
    return {all_to_all_seconds(port, hidden * dispatch_bytes_, c_.cluster.nvlink, c_.cluster.nic),
            a_.expert_s[g] * compute_factor * a_.noise[g],
            all_to_all_seconds(port.reversed(), hidden * 2.0, c_.cluster.nvlink, c_.cluster.nic)};
  }

  TraceArgs layer_args(int layer, bool backward) const {
    TraceArgs args;
    args.add("step", step_).add("layer", layer);
    if (backward) args.add("pass", "backward");
    return args;
  }

  // Every GPU's phases and waits in a layer that starts now, and its ports' transfers, from the values that
  // time the layer. The GPUs whose experts finish last (to the nanosecond) are the layer's stragglers.
  void trace_moe_layer(int layer, bool backward, double dense_s, double compute_factor, double dense_max,
                       double experts_max, double combine_max) {
    const SimTime start = sim_.now(), dispatch_at = start + seconds_to_ns(dense_max);
    const SimTime combine_at = dispatch_at + seconds_to_ns(experts_max), end = combine_at + seconds_to_ns(combine_max);
    const double hidden = static_cast<double>(c_.model.hidden);
    for (std::int64_t g = 0; g < gpus_; ++g) {
      const GpuPhases ph = phases(g, compute_factor);
      const TraceArgs wait = layer_args(layer, backward);
      TraceArgs args = wait;
      args.add("expert_tokens", a_.gpu_tokens[g]);
      // Each phase ends by the synchronisation that follows it (the maximum of the same values; the clamps
      // only guard against a different rounding or contraction of the recomputed sums).
      const SimTime dense_end = std::min(dispatch_at, start + seconds_to_ns(dense_s * a_.noise[g]));
      const SimTime experts_at = dispatch_at + seconds_to_ns(ph.dispatch);
      const SimTime experts_end = std::min(combine_at, dispatch_at + seconds_to_ns(ph.dispatch + ph.expert));
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
      trace_ports(g, a_.ports[g], hidden * dispatch_bytes_, "dispatch", dispatch_at, wait);
      trace_ports(g, a_.ports[g].reversed(), hidden * 2.0, "combine", combine_at, wait);
    }
  }

  // One GPU's share of an all-to-all phase on its NVLink and NIC ports, which carry it in parallel.
  void trace_ports(std::int64_t g, const PortTraffic& p, double bytes_per_copy, std::string_view phase,
                   SimTime at, const TraceArgs& args) {
    const std::pair<std::int64_t, PortTraffic> ports[] = {{nvlink_track_, {p.recv_intra, p.send_intra, 0, 0}},
                                                          {nic_track_, {0, 0, p.recv_inter, p.send_inter}}};
    for (const auto& [track, port] : ports) {
      if (track < 0) continue;
      TraceArgs a = args;
      a.add("bytes_sent", (port.send_intra + port.send_inter) * bytes_per_copy)
          .add("bytes_received", (port.recv_intra + port.recv_inter) * bytes_per_copy);
      const double seconds = all_to_all_seconds(port, bytes_per_copy, c_.cluster.nvlink, c_.cluster.nic);
      trace_->slice(track + g, phase, at, at + seconds_to_ns(seconds), a);
    }
  }

  // Expert placement: K <= E gives each GPU a contiguous block of E/K experts (one grouped kernel); K > E
  // gives each expert K/E replicas (GPUs e, e + E, ...) that share its tokens evenly.
  void place(const std::int64_t* counts) {
    if (gpus_ <= experts_) {
      const std::int64_t per_gpu = experts_ / gpus_;
      for (std::int64_t g = 0; g < gpus_; ++g) {
        const std::span<const std::int64_t> local(counts + g * per_gpu, static_cast<std::size_t>(per_gpu));
        std::int64_t sum = 0, busiest = 0;
        for (const std::int64_t n : local) {
          sum += n;
          busiest = std::max(busiest, n);
        }
        a_.gpu_tokens[g] = sum;
        a_.busiest[g] = static_cast<double>(busiest);
        a_.expert_s[g] = c_.expert_cost->grouped_time_s(local);
      }
      return;
    }
    const std::int64_t replicas = gpus_ / experts_;
    for (std::int64_t g = 0; g < gpus_; ++g) {
      const std::int64_t e = g % experts_, j = g / experts_;
      const std::int64_t n = counts[e] / replicas + (j < counts[e] % replicas ? 1 : 0);
      a_.gpu_tokens[g] = n;
      a_.busiest[g] = static_cast<double>(n);
      a_.expert_s[g] = c_.expert_cost->grouped_time_s(std::span<const std::int64_t>(&n, 1));
    }
  }

  void simulate_step() {
    const int moe_layers = c_.model.moe_layers();
    for (int l = 0; l < c_.model.dense_layers; ++l) dense_layer(attention_s_ + dense_ffn_s_, l, false);
    for (int l = 0; l < moe_layers; ++l) moe_layer(l, 1.0, false);
    if (c_.mode != MoeMode::kTraining) return;
    for (int l = moe_layers - 1; l >= 0; --l) moe_layer(l, c_.backward_factor, true);
    for (int l = 0; l < c_.model.dense_layers; ++l)
      dense_layer((attention_s_ + dense_ffn_s_) * c_.backward_factor, l, true);
    all_reduce();
  }

  // Ring all-reduces of the BF16 gradients, limited by the slowest link in the ring (2 (r-1)/r x bytes /
  // bandwidth plus a latency per ring step, over r GPUs): the replicated (non-expert) weights over all K
  // GPUs, then, when K > E, each expert's weights over its K/E replicas (the expert groups run in parallel).
  void all_reduce() {
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
    const double seconds = ring(k, params * 2.0) + ring(replicas, expert_params * 2.0);
    const double bytes_per_gpu = 2.0 * (k - 1.0) / k * params * 2.0 + 2.0 * (replicas - 1.0) / replicas * expert_params * 2.0;
    tally_.moe.communication_s += seconds * k;
    busy_s_ += seconds * k;
    tally_.moe.bytes_moved += bytes_per_gpu * k;
    if (trace_) {
      const SimTime start = sim_.now(), end = start + seconds_to_ns(seconds);
      const std::int64_t link_track = gpus_ > node_size_ ? nic_track_ : nvlink_track_;
      const TraceArgs args = TraceArgs().add("step", step_).add("bytes_sent", bytes_per_gpu);
      for (std::int64_t g = 0; g < gpus_; ++g) {
        trace_->slice(gpu_track_ + g, "all-reduce", start, end, args);
        trace_->slice(link_track + g, "all-reduce", start, end, args);
      }
    }
    sync_after(seconds, kLayerDone);
  }

  const MoeWorkload::Config& c_;
  double attention_s_, shared_s_, dense_ffn_s_;
  PolicyTally& tally_;
  std::int64_t gpus_, experts_;
  RngStream noise_stream_;
  std::unique_ptr<Router> router_;
  LayerArrays a_;
  std::vector<double> slow_;
  std::vector<std::int64_t> saved_counts_;  // training: forward routing, replayed by the backward pass
  std::int64_t node_size_ = 1, nodes_ = 1;
  double dispatch_bytes_ = 2.0;
  Simulator sim_;
  std::uint32_t self_ = 0;
  std::int64_t step_ = 0;
  SimTime step_start_ = 0;
  double busy_s_ = 0;
  TraceSink* trace_;  // null unless tracing
  std::int64_t step_track_ = -1, gpu_track_ = -1, nvlink_track_ = -1, nic_track_ = -1;  // first track ids
};

}  // namespace

MoeWorkload::MoeWorkload(Config config) : config_(std::move(config)) {
  const MoeModel& m = config_.model;
  const double tokens = static_cast<double>(config_.tokens_per_gpu);
  const auto t = static_cast<std::int64_t>(tokens);
  attention_s_ = m.attention_params_per_layer > 0
                     ? make_cost_model(JsonReader(Json{{"type", "roofline"}}, ""),
                                       CostContext{config_.cluster.gpu, dense_block(m.hidden, m.attention_params_per_layer, m.dtype)})
                           ->expert_time_s(t)
                     : 0.0;
  if (m.shared_experts > 0)
    shared_s_ = m.shared_experts *
                make_cost_model(JsonReader(Json{{"type", "roofline"}}, ""),
                                CostContext{config_.cluster.gpu, {m.hidden, m.shared_intermediate, m.gated, m.dtype}})
                    ->expert_time_s(t);
  if (m.dense_layers > 0)
    dense_ffn_s_ = make_cost_model(JsonReader(Json{{"type", "roofline"}}, ""),
                                   CostContext{config_.cluster.gpu, {m.hidden, m.dense_intermediate, m.gated, m.dtype}})
                       ->expert_time_s(t);
}

std::uint64_t MoeWorkload::working_bytes(std::size_t) const {
  const auto k = static_cast<std::uint64_t>(config_.cluster.gpus);
  const auto e = static_cast<std::uint64_t>(config_.model.experts);
  const auto layers = static_cast<std::uint64_t>(config_.model.moe_layers());
  // Per-GPU layer arrays and ports (about 200 bytes a GPU), the router's per-expert state over its layers,
  // training's saved forward routing, and a trace router's counts (at most twice its file's size).
  std::uint64_t bytes = (1u << 16) + k * 200 + e * layers * 64;
  if (config_.mode == MoeMode::kTraining) bytes += e * layers * 8;
  if (config_.router.value("type", "") == "trace" && config_.router.contains("file")) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(config_.router_file.empty()
                                                      ? std::filesystem::path(config_.router["file"].get<std::string>())
                                                      : std::filesystem::path(config_.router_file).parent_path() /
                                                            config_.router["file"].get<std::string>(),
                                                  ec);
    if (!ec) bytes += 2 * size;
  }
  return bytes;
}

TraceSize MoeWorkload::trace_size(std::span<const Policy* const>) const {
  const MoeWorkload::Config& c = config_;
  const auto k = static_cast<double>(c.cluster.gpus);
  const double passes = c.mode == MoeMode::kTraining ? 2 : 1;
  const std::int64_t node = std::min(c.cluster.gpus, c.cluster.gpus_per_node);
  const double ports = k * ((node > 1 ? 1 : 0) + (c.cluster.gpus > node ? 1 : 0));
  // An MoE layer: 4 phases and 3 waits per GPU, dispatch and combine per port; a dense layer: compute and
  // wait per GPU; training ends with an all-reduce on every GPU and port.
  return {1 + passes * (c.model.moe_layers() * (7 * k + 2 * ports) + c.model.dense_layers * 2 * k) +
              (passes - 1) * (k + ports),
          2 * (2 + k + ports)};
}

void MoeWorkload::check_policy(const Policy& policy) const {
  if (!policy.applies_to_moe()) policy.fail("type", "policy '" + policy.type() + "' does not apply to workload 'moe'");
}

std::vector<PolicyTally> MoeWorkload::run(const RunRequest& req) const {
  std::vector<PolicyTally> tallies = make_tallies(req);
  for (std::size_t p = 0; p < tallies.size(); ++p) {
    PolicyTally& tally = tallies[p];
    if (req.trace) req.trace->begin_process(req.policies[p]->label());
    MoeRun run(config_, attention_s_, shared_s_, dense_ffn_s_, req, tally);
    run.run(req.steps);
  }
  return tallies;
}

std::unique_ptr<Workload> make_moe_workload(const JsonReader& n, const ClusterSpec& cluster) {
  MoeWorkload::Config c;
  c.cluster = cluster;
  c.model = parse_moe_model(n.child("model"));
  const std::int64_t k = cluster.gpus, e = c.model.experts;
  if ((k <= e && e % k != 0) || (k > e && k % e != 0))
    n.child("model").fail("impossible placement: " + std::to_string(e) + " experts cannot be spread evenly over " +
                          std::to_string(k) + " GPUs (the GPU count must divide the expert count, or be a multiple of it)");
  c.mode = n.string("mode", "inference", {"inference", "training"}) == "training" ? MoeMode::kTraining : MoeMode::kInference;
  c.tokens_per_gpu = n.integer("tokens_per_gpu", 4096, Range{1.0, 1e8});
  c.backward_factor = n.number("backward_factor", 2.0, above(0));
  c.dispatch = n.string("dispatch", "hierarchical", {"hierarchical", "per_expert"}) == "per_expert"
                   ? DispatchScheme::kPerExpert
                   : DispatchScheme::kHierarchical;
  const std::string preset = c.model.top_k >= 4 ? "olmoe" : "mixtral";
  if (const auto r = n.optional_child("routing")) {
    c.router = r->value();
    c.router_file = r->file();
    c.router_path = r->path();
  } else {
    c.router = Json{{"type", "generated"}, {"preset", preset}};
    c.router_file = n.file();
    c.router_path = n.path() + "/routing";
  }
  RouterContext probe;  // builds one router now so bad routing input fails before any run
  probe.layers = c.model.moe_layers();
  probe.experts = c.model.experts;
  probe.top_k = c.model.top_k;
  make_router(JsonReader(c.router, c.router_file, c.router_path), probe);
  const CostContext ctx{cluster.gpu, c.model.expert_shape()};
  if (const auto cost = n.optional_child("cost")) c.expert_cost = make_cost_model(*cost, ctx);
  else c.expert_cost = make_cost_model(JsonReader(Json{{"type", "roofline"}}, n.file(), n.path() + "/cost"), ctx);
  return std::make_unique<MoeWorkload>(std::move(c));
}

}  // namespace tailsim
