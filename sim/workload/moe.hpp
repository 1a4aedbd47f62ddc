// Mixture-of-Experts expert parallelism over the cluster. Per MoE layer of a step:
//   dense part (attention, shared experts) on every GPU -> gate/routing -> dispatch all-to-all over NVLink
//   and NICs -> each GPU runs its local experts (grouped-kernel cost model) -> combine all-to-all -> the
//   layer's barrier.
// The two all-to-alls are collectives: dispatch starts when every GPU has finished its dense part, combine
// when every GPU has finished its experts, so the most burdened GPU sets the pace of each layer. Per-GPU
// work is computed in arrays (O(K) per layer: one multinomial draw of expert counts, K cost look-ups,
// per-GPU aggregated traffic, never a K x K matrix); the three synchronisations of a layer are events.
// Experts sit where an ExpertPlacement puts them (default: blocks, or replicas when K > E); a policy's
// MoeController may move them, edit the counts and hedge stragglers (sim/policy/moe_policy.hpp).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/cluster/all_to_all.hpp"
#include "sim/cost/attention.hpp"
#include "sim/cost/cost_model.hpp"
#include "sim/policy/moe_policy.hpp"
#include "sim/stats/distribution.hpp"
#include "sim/workload/pipeline_failslow.hpp"
#include "sim/workload/routing.hpp"
#include "sim/workload/workload.hpp"

namespace tailsim {

// Bounds that keep the workload's products exact (issue 12): weights of attention per layer, and
// tokens_per_gpu x GPUs x top_k, the (token, expert) slots a layer routes.
inline constexpr double kMaxAttentionParams = 1e13;
inline constexpr std::uint64_t kMaxRoutedSlots = std::uint64_t{1} << 53;

struct MoeModel {
  std::string name;
  int layers = 0;        // transformer layers
  int dense_layers = 0;  // leading layers with a dense FFN instead of experts
  int experts = 0;       // routed experts per MoE layer
  int top_k = 0;
  int shared_experts = 0;
  std::int64_t hidden = 0;
  std::int64_t expert_intermediate = 0;
  std::int64_t shared_intermediate = 0;
  std::int64_t dense_intermediate = 0;
  bool gated = true;
  std::string dtype = "bf16";
  double attention_params_per_layer = 0;
  std::optional<AttentionShape> attention;  // core attention figures; absent: projections only (no core attention)
  // The generated router's preset when a scenario gives no `routing` (decode takes "<preset>-decode" when
  // there is one); empty: olmoe for top_k >= 4, else mixtral.
  std::string routing_preset;

  int moe_layers() const { return layers - dense_layers; }
  ExpertShape expert_shape() const { return {hidden, expert_intermediate, gated, dtype}; }
  // The routing shape of this model, with a run's seeds (zeros when building a RouterSource).
  RouterContext router_context(std::uint64_t seed = 0, std::uint64_t replication = 0) const {
    return {moe_layers(), experts, top_k, seed, replication};
  }
};
MoeModel parse_moe_model(const JsonReader& node);  // an object, or a name in configs/models/
std::vector<std::string> moe_model_names();

enum class MoeMode { kInference, kTraining };
// How a layer-step is routed: `counts`, one multinomial of (token, expert) pairs per expert (O(experts));
// `tokens`, every token's experts and gate scores (O(tokens x experts)): the reference the counts engine and
// the count-level policy decisions are checked against, for tests and small runs.
enum class MoeEngine { kCounts, kTokens };
// The tokens engine's bound on tokens x GPUs x experts per layer-step: its cost, about 10 ns each (0.6 s).
inline constexpr double kMaxTokenEngineWork = 67108864.0;  // 2^26
// Prefill: each step processes tokens_per_gpu prompt tokens per GPU; decode: one new token per request.
enum class MoePhase { kPrefill, kDecode };
// How a layer's all-to-alls meet its computation: `none`, in sequence (dense, dispatch, experts, combine);
// `two_batch`, the GPU's batch split into two micro-batches whose all-to-alls run while the other computes
// (DeepSeek's prefill and decode, SGLang's two-batch overlap; sim/workload/moe_overlap.cpp).
enum class MoeOverlap { kNone, kTwoBatch };

// Per-layer times that do not depend on routing, seconds (before noise and slowdown factors).
struct MoeLayerTimes {
  double attention_s = 0;       // projections and, when the context is fixed, core attention
  double core_attention_s = 0;  // the core attention part of attention_s (0 when drawn per step)
  double shared_s = 0, dense_ffn_s = 0;
};
// The whole batch's, and with two_batch each micro-batch's: 0 holds ceil(T / 2) tokens, 1 floor(T / 2).
struct MoeTimes {
  MoeLayerTimes whole, micro[2];
};

class MoeWorkload final : public Workload {
 public:
  struct Config {
    ClusterSpec cluster;
    MoeModel model;
    MoeMode mode = MoeMode::kInference;
    std::int64_t tokens_per_gpu = 4096;  // tokens each GPU holds per step (and sends through each layer)
    std::shared_ptr<const RouterSource> router;  // read once; each run makes its own Router from it
    Json router_json;                             // the router object, for the memory estimate
    std::string router_file;                      // where it was read (relative trace paths)
    ExpertPlacement placement;                    // where experts start (a controller may move them)
    bool uneven = false;  // the GPUs cannot hold the experts evenly: only a policy that places experts may run
    std::string model_file, model_path;  // where the model was given (errors about the placement)
    std::shared_ptr<const CostModel> expert_cost;  // the routed experts
    double backward_factor = 2.0;                  // backward compute / forward compute (training)
    DispatchScheme dispatch = DispatchScheme::kHierarchical;  // how tokens reach their experts' GPUs
    MoeEngine engine = MoeEngine::kCounts;
    MoePhase phase = MoePhase::kPrefill;
    std::int64_t prompt_length = 4096;  // prefill: tokens per causal sequence
    // Decode: tokens_per_gpu is batch_per_gpu (one new token per request); each request attends to
    // context_length KV entries, a constant or, when `context` is set, drawn per request and step.
    double context_length = 0;
    std::shared_ptr<const Distribution> context;
    MoeOverlap overlap = MoeOverlap::kNone;
    int comm_sms = 0;  // two_batch: SMs the all-to-all kernels hold; the computation runs on the others
    // Training: each layer's gradients are all-reduced as soon as its backward pass is done (one bucket a
    // layer, in backward order, first-in-first-out on the link), as Megatron's and DDP's overlap_grad_reduce.
    bool overlap_grad_reduce = false;
    // Fail-slow episodes (sim/workload/pipeline_failslow.hpp): per step, a GPU's compute (every layer) or
    // its links (its all-to-all time) slowed by a factor; a spare that replaces a GPU ends its episodes.
    std::vector<FailSlowSpec> fail_slow;
    // Twin nodes (sim/workload/moe_run.cpp, place_twins) computed once; false computes every node, for the
    // tests that show both give the same results. Not a scenario key.
    bool twin_nodes = true;
  };
  explicit MoeWorkload(Config config);
  void check_policy(const Policy& policy) const override;
  std::vector<PolicyTally> run(const RunRequest& request) const override;
  std::uint64_t working_bytes(std::size_t policies) const override;
  double step_work() const override { return static_cast<double>(config_.cluster.gpus) * config_.model.layers; }
  void count_held(HeldBytes& held) const override;
  TraceSize trace_size(std::span<const Policy* const> policies) const override;
  const Config& config() const { return config_; }

 private:
  Config config_;
  MoeTimes times_;
};

// Core attention per layer and GPU when it is fixed (prefill, or decode with a constant context), seconds,
// for `share` of the GPU's attention work (a micro-batch's: DeepSeek balances it over the two by tokens).
double fixed_core_attention_s(const MoeWorkload::Config& c, double share = 1.0);
// A layer's routing-independent times for `tokens` of a GPU's tokens and `share` of its core attention.
MoeLayerTimes moe_layer_times(const MoeWorkload::Config& c, std::int64_t tokens, double attention_share);

std::unique_ptr<Workload> make_moe_workload(const JsonReader& node, const ClusterSpec& cluster);

}  // namespace tailsim
