#include "sim/workload/moe.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "sim/workload/moe_run.hpp"
#include "sim/workload/routing_models.hpp"
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
  // At most 10^13 weights per layer (a hundred times the largest model's whole size): beyond, the roofline's
  // FLOP and byte products leave the range where its integer shapes and times are meaningful.
  m.attention_params_per_layer = n.number("attention_params_per_layer", 0.0, Range{0.0, kMaxAttentionParams});
  if (const auto a = n.optional_child("attention")) m.attention = parse_attention_shape(*a);
  m.routing_preset = n.has("routing_preset") ? n.string("routing_preset", std::nullopt, routing_preset_names()) : "";
  n.finish();
  return m;
}

std::vector<std::string> moe_model_names() { return config_names("models"); }

namespace {

// A dense GEMM block of `params` weights seen by the cost model as an ungated FFN (same FLOPs and bytes).
ExpertShape dense_block(std::int64_t hidden, double params, const std::string& dtype) {
  return {hidden, std::max<std::int64_t>(1, std::llround(params / (2.0 * static_cast<double>(hidden)))), false, dtype};
}

}  // namespace

// Core attention per layer when it is the same on every GPU and step: prefill, or decode with a constant
// context (sim/cost/attention.hpp); 0 without attention figures or with a drawn context (MoeRun draws it).
double fixed_core_attention_s(const MoeWorkload::Config& c, double share) {
  const MoeModel& m = c.model;
  if (!m.attention || c.context) return 0.0;
  const AttentionRoofline roof = attention_roofline(c.cluster.gpu, core_attention_dtype(m.dtype));
  const double bytes = kCoreAttentionBytesPerElement;
  AttentionWork w = c.phase == MoePhase::kPrefill
                        ? prefill_attention(*m.attention, c.tokens_per_gpu, c.prompt_length, bytes)
                        : decode_attention(*m.attention, static_cast<double>(c.tokens_per_gpu) * c.context_length, bytes);
  w.flops *= share;
  w.bytes *= share;
  return roof.time_s(w);
}

MoeLayerTimes moe_layer_times(const MoeWorkload::Config& c, std::int64_t tokens, double attention_share) {
  const MoeModel& m = c.model;
  const auto gemm_s = [&](ExpertShape shape) {
    return make_cost_model(JsonReader(Json{{"type", "roofline"}}, ""), CostContext{c.cluster.gpu, shape})
        ->expert_time_s(tokens);
  };
  MoeLayerTimes t;
  if (m.attention_params_per_layer > 0) t.attention_s = gemm_s(dense_block(m.hidden, m.attention_params_per_layer, m.dtype));
  t.core_attention_s = fixed_core_attention_s(c, attention_share);
  t.attention_s += t.core_attention_s;
  if (m.shared_experts > 0) t.shared_s = m.shared_experts * gemm_s({m.hidden, m.shared_intermediate, m.gated, m.dtype});
  if (m.dense_layers > 0) t.dense_ffn_s = gemm_s({m.hidden, m.dense_intermediate, m.gated, m.dtype});
  return t;
}

MoeWorkload::MoeWorkload(Config config) : config_(std::move(config)) {
  const std::int64_t t = config_.tokens_per_gpu;
  times_.whole = moe_layer_times(config_, t, 1.0);
  if (config_.overlap == MoeOverlap::kTwoBatch)
    for (const std::int64_t m : {0, 1}) {
      const std::int64_t tokens = (t + 1 - m) / 2;
      times_.micro[m] = moe_layer_times(config_, tokens, static_cast<double>(tokens) / static_cast<double>(t));
    }
}

std::uint64_t MoeWorkload::working_bytes(std::size_t) const {
  const auto k = static_cast<std::uint64_t>(config_.cluster.gpus);
  const auto e = static_cast<std::uint64_t>(config_.model.experts);
  const auto layers = static_cast<std::uint64_t>(config_.model.moe_layers());
  // Per-GPU layer arrays and ports (about 200 bytes a GPU), the router's per-expert state over its layers,
  // training's saved forward routing and the expert-time cache. A trace router's counts are shared with its
  // source (count_held).
  std::uint64_t bytes = GroupedTimeCache::kMaxBytes + k * 200 + e * layers * 64;
  if (config_.mode == MoeMode::kTraining) bytes += e * layers * 8;
  if (config_.engine == MoeEngine::kTokens)  // a layer-step's pairs: expert, score and the policy's per-pair state
    bytes += static_cast<std::uint64_t>(config_.tokens_per_gpu) * k * static_cast<std::uint64_t>(config_.model.top_k) * 64;
  return bytes;
}

void MoeWorkload::count_held(HeldBytes& held) const {
  if (config_.expert_cost) config_.expert_cost->count_held(held);
  if (config_.cluster.noise) config_.cluster.noise->count_held(held);
  config_.router->count_held(held);
}

TraceSize MoeWorkload::trace_size(std::span<const Policy* const>) const {
  const MoeWorkload::Config& c = config_;
  const auto k = static_cast<double>(c.cluster.gpus);
  const double passes = c.mode == MoeMode::kTraining ? 2 : 1;
  const std::int64_t node = std::min(c.cluster.gpus, c.cluster.gpus_per_node);
  const double ports = k * ((node > 1 ? 1 : 0) + (c.cluster.gpus > node ? 1 : 0));
  // An MoE layer: 4 phases and 3 waits per GPU, dispatch and combine per port (two_batch: 4 computations per
  // GPU, 2 dispatches and 2 combines per port); a dense layer: compute and wait per GPU; training ends with
  // an all-reduce on every GPU and port.
  const double moe_layer = c.overlap == MoeOverlap::kTwoBatch ? 4 * k + 4 * ports : 7 * k + 2 * ports;
  return {1 + passes * (c.model.moe_layers() * moe_layer + c.model.dense_layers * 2 * k) +
              (passes - 1) * (k + ports),
          2 * (2 + k + ports)};
}

void MoeWorkload::check_policy(const Policy& policy) const {
  if (!policy.moe()) policy.fail("type", "policy '" + policy.type() + "' does not apply to workload 'moe'");
  if (config_.uneven && !policy.moe()->places_experts())
    throw InputError(config_.model_file, config_.model_path,
                     "impossible placement: " + std::to_string(config_.model.experts) + " experts cannot be spread evenly over " +
                         std::to_string(config_.cluster.gpus) + " GPUs (the GPU count must divide the expert count, or be a "
                         "multiple of it) for policy '" + policy.label() + "'; 'replicate' with redundant_experts places "
                         "experts + redundant_experts slots evenly");
  MoeRunInfo shape;
  shape.gpus = config_.cluster.gpus;
  shape.gpus_per_node = std::min(config_.cluster.gpus_per_node, config_.cluster.gpus);
  shape.experts = config_.model.experts;
  shape.top_k = config_.model.top_k;
  shape.moe_layers = config_.model.moe_layers();
  shape.expert_groups = config_.router->expert_groups();
  shape.expert_bytes = config_.model.expert_shape().weight_bytes();
  shape.host_bandwidth = config_.cluster.gpu.host_link_bandwidth_bytes_per_s;
  shape.gpu_memory_bytes = config_.cluster.gpu.memory_bytes;
  policy.moe()->check(shape);
}

std::vector<PolicyTally> MoeWorkload::run(const RunRequest& req) const {
  std::vector<PolicyTally> tallies = make_tallies(req);
  for (std::size_t p = 0; p < tallies.size(); ++p) {
    PolicyTally& tally = tallies[p];
    if (req.trace) req.trace->begin_process(req.policies[p]->label());
    MoeRun run(config_, times_, req, *req.policies[p]->moe(), tally);
    run.run(req.steps);
  }
  return tallies;
}

namespace {

// `phase` and its keys: prefill reads tokens_per_gpu and prompt_length; decode (inference with attention
// figures only) reads batch_per_gpu and context_length, a number or a distribution of KV entries.
void parse_phase(const JsonReader& n, MoeWorkload::Config& c) {
  c.phase = n.string("phase", "prefill", {"prefill", "decode"}) == "decode" ? MoePhase::kDecode : MoePhase::kPrefill;
  if (c.phase == MoePhase::kPrefill) {
    for (const char* key : {"batch_per_gpu", "context_length"})
      if (n.has(key))
        n.child(key).fail(std::string("'") + key + "' applies to phase 'decode' (this workload's phase is 'prefill')");
    c.tokens_per_gpu = n.integer("tokens_per_gpu", 4096, Range{1.0, 1e8});
    c.prompt_length = n.integer("prompt_length", 4096, Range{1.0, 1e8});
    return;
  }
  const JsonReader phase = n.child("phase");
  if (c.mode == MoeMode::kTraining)
    phase.fail("expected 'prefill' for mode 'training' (decode is inference), got 'decode'");
  if (!c.model.attention)
    phase.fail("model '" + c.model.name + "' cannot run phase 'decode': it has no 'attention' figures (type gqa or "
               "mla, heads, ...; see configs/models/); valid phases for it: prefill");
  for (const char* key : {"tokens_per_gpu", "prompt_length"})
    if (n.has(key))
      n.child(key).fail(std::string("'") + key + "' applies to phase 'prefill'; decode uses batch_per_gpu and context_length");
  c.tokens_per_gpu = n.integer("batch_per_gpu", {}, Range{1.0, 1e8});
  const JsonReader ctx = n.child("context_length");
  if (ctx.is_object()) {
    c.context = make_distribution(ctx);
    if (!(c.context->min_value() >= 0))
      ctx.fail("expected a distribution of context lengths >= 0 (KV entries), got one whose draws reach " +
               std::to_string(c.context->min_value()));
    c.context_length = c.context->mean();
  } else {
    c.context_length = n.number("context_length", {}, Range{0.0, 1e8});
  }
}

// `overlap` and `comm_sms`: two_batch splits each GPU's batch in two, so it needs two tokens (requests) a GPU.
void parse_overlap(const JsonReader& n, MoeWorkload::Config& c) {
  if (n.string("overlap", "none", {"none", "two_batch"}) == "none") {
    if (n.has("comm_sms") && n.integer("comm_sms", 0) != 0)
      n.child("comm_sms").fail("'comm_sms' applies to overlap 'two_batch' (this workload's overlap is 'none'): expected 0 or no "
                               "key, got " + std::to_string(n.integer("comm_sms", 0)));
    return;
  }
  c.overlap = MoeOverlap::kTwoBatch;
  if (c.tokens_per_gpu < 2)
    n.child("overlap").fail(std::string("overlap 'two_batch' splits each GPU's batch into two micro-batches: expected ") +
                            (c.phase == MoePhase::kDecode ? "batch_per_gpu" : "tokens_per_gpu") + " >= 2, got " +
                            std::to_string(c.tokens_per_gpu) + "; use overlap 'none'");
  const int sms = c.cluster.gpu.sm_count;
  c.comm_sms = static_cast<int>(n.integer("comm_sms", 0, Range{0.0, static_cast<double>(std::max(0, sms - 1))}));
}

}  // namespace

std::unique_ptr<Workload> make_moe_workload(const JsonReader& n, const ClusterSpec& cluster) {
  cluster.require_gpu("the moe workload's cost models read the GPU's figures");
  MoeWorkload::Config c;
  c.cluster = cluster;
  c.model = parse_moe_model(n.child("model"));
  const std::int64_t k = cluster.gpus, e = c.model.experts;
  // An uneven layout is left to a policy that places the experts itself (replicate); check_policy refuses the others.
  c.uneven = (k <= e && e % k != 0) || (k > e && k % e != 0);
  c.model_file = n.child("model").file();
  c.model_path = n.child("model").path();
  c.mode = n.string("mode", "inference", {"inference", "training"}) == "training" ? MoeMode::kTraining : MoeMode::kInference;
  parse_phase(n, c);
  // The routers count tokens x GPUs x top_k (token, expert) slots in int64 and scale them in doubles: the
  // product must stay within a double's exact integers.
  // In doubles: the product of three integers below 2^27, 2^27 and 2^17 is within a few ulps, far from the
  // 2^53 bound's neighbours that matter (the bound is a power of two, compared once).
  const double slots = static_cast<double>(c.tokens_per_gpu) * static_cast<double>(k) * static_cast<double>(c.model.top_k);
  if (slots > static_cast<double>(kMaxRoutedSlots))
    (n.has("tokens_per_gpu") ? n.child("tokens_per_gpu") : n.has("batch_per_gpu") ? n.child("batch_per_gpu") : n)
        .fail("expected tokens_per_gpu x GPUs x top_k <= 2^53 (9007199254740992, the routers' exact range), got " +
              std::to_string(c.tokens_per_gpu) + " x " + std::to_string(k) + " x " + std::to_string(c.model.top_k) +
              " = " + (slots >= 1.8e19 ? std::string("more than 2^64") : std::to_string(static_cast<std::uint64_t>(slots))) +
              "; use fewer tokens per GPU or GPUs");
  c.engine = n.string("engine", "counts", {"counts", "tokens"}) == "tokens" ? MoeEngine::kTokens : MoeEngine::kCounts;
  const double token_work = static_cast<double>(c.tokens_per_gpu) * static_cast<double>(k) * static_cast<double>(e);
  if (c.engine == MoeEngine::kTokens && token_work > kMaxTokenEngineWork)
    n.child("engine").fail("engine 'tokens' draws every token of a layer-step: expected tokens_per_gpu x GPUs x "
                           "experts <= 67108864 (2^26), got " + std::to_string(c.tokens_per_gpu) + " x " +
                           std::to_string(k) + " x " + std::to_string(e) +
                           "; use engine 'counts' (the default) or fewer tokens");
  c.backward_factor = n.number("backward_factor", 2.0, above(0));
  c.overlap_grad_reduce = n.boolean("overlap_grad_reduce", false);
  if (c.overlap_grad_reduce && c.mode != MoeMode::kTraining)
    n.child("overlap_grad_reduce").fail("'overlap_grad_reduce' applies to mode 'training' (this workload's mode is 'inference')");
  parse_overlap(n, c);
  if (const auto fs = n.optional_child("fail_slow")) c.fail_slow = read_fail_slow(*fs);
  c.dispatch = n.string("dispatch", "hierarchical", {"hierarchical", "per_expert"}) == "per_expert"
                   ? DispatchScheme::kPerExpert
                   : DispatchScheme::kHierarchical;
  std::string preset = c.model.top_k >= 4 ? "olmoe" : "mixtral";
  if (!c.model.routing_preset.empty()) {
    preset = c.model.routing_preset;
    if (c.phase == MoePhase::kDecode && routing_preset(preset + "-decode")) preset += "-decode";
  }
  std::string router_path;
  if (const auto r = n.optional_child("routing")) {
    c.router_json = r->value();
    c.router_file = r->file();
    router_path = r->path();
  } else {
    c.router_json = Json{{"type", "generated"}, {"preset", preset}};
    c.router_file = n.file();
    router_path = n.path() + "/routing";
  }
  // Built once here, so bad routing input fails before any run.
  c.router = make_router_source(JsonReader(c.router_json, c.router_file, router_path), c.model.router_context());
  if (c.uneven) {  // expert e on GPU e mod K, until a policy places them
    std::vector<std::vector<std::int64_t>> hosts(static_cast<std::size_t>(e));
    for (std::int64_t x = 0; x < e; ++x) hosts[static_cast<std::size_t>(x)] = {x % k};
    c.placement = ExpertPlacement(k, hosts);
  } else {
    c.placement = ExpertPlacement::blocked(c.model.experts, k);
  }
  const CostContext ctx{cluster.gpu, c.model.expert_shape()};
  if (const auto cost = n.optional_child("cost")) c.expert_cost = make_cost_model(*cost, ctx);
  else c.expert_cost = make_cost_model(JsonReader(Json{{"type", "roofline"}}, n.file(), n.path() + "/cost"), ctx);
  return std::make_unique<MoeWorkload>(std::move(c));
}

}  // namespace tailsim
