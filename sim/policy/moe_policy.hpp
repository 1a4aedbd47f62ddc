// The moe family of policies: a per-run controller with optional hooks, called by the moe workload in
// layer order. Each MoE layer of a forward pass:
//   before_routing  placement changes (replicate or move experts), weight loads, a load prediction
//   (router)        the layer's (token, expert) counts are drawn
//   after_routing   edit the counts: drop pairs (they skip their expert) or reroute them to other experts
//                   (with the tokens engine, MoeLayer::tokens holds the pairs behind the counts)
//   (costs)         placement, grouped-kernel times, all-to-all traffic of the edited counts
//   on_stragglers   with each GPU's expert finish time known: hedge a straggling GPU's expert work elsewhere
//   after_layer     observe the outcome (history for predictors and straggler detectors)
// A backward pass (training) replays the forward counts: it calls on_stragglers and after_layer only.
// between_steps runs after every step (take ranks out of service by moving their experts away; or put a
// healthy spare in a rank's place: replaced_by_spares).
// Policies decide; the workload computes every cost of a decision (dropped and rerouted pairs, traffic,
// weight bytes and the stalls they cause, backup compute).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "sim/cluster/cluster.hpp"
#include "sim/policy/eviction.hpp"
#include "sim/policy/moe_tokens.hpp"

namespace tailsim {

// Where each expert's weights live, as a map by expert (CSR): the hosts of expert e are
// hosts(e) = [offsets[e], offsets[e + 1]) of a host list. Replicas are allowed (an expert on several GPUs,
// a GPU hosting several experts), for any GPU count. An expert's tokens are shared evenly by its replicas:
// replica j of r takes floor(n / r) tokens, plus one for j < n mod r.
class ExpertPlacement {
 public:
  // One expert replica hosted by a GPU.
  struct Slot {
    int expert = 0;
    int replica = 0;   // index in hosts(expert)
    int replicas = 1;  // hosts(expert).size()
  };

  ExpertPlacement() = default;
  // Expert e's hosts are hosts[e]; throws std::invalid_argument when an expert has none or a host is not
  // in [0, gpus).
  ExpertPlacement(std::int64_t gpus, const std::vector<std::vector<std::int64_t>>& hosts);
  // The default layout: K <= E gives GPU g the contiguous block of experts [g E/K, (g + 1) E/K); K > E gives
  // expert e the K/E replicas on GPUs e, e + E, e + 2E, ... Requires K | E or E | K.
  static ExpertPlacement blocked(int experts, std::int64_t gpus);

  int experts() const { return static_cast<int>(offsets_.size()) - 1; }
  std::int64_t gpus() const { return gpus_; }
  std::span<const std::int64_t> hosts(int expert) const {
    return {hosts_.data() + offsets_[expert], static_cast<std::size_t>(offsets_[expert + 1] - offsets_[expert])};
  }
  // The replicas GPU g hosts, by increasing expert.
  std::span<const Slot> slots(std::int64_t gpu) const {
    return {slots_.data() + gpu_offsets_[gpu], static_cast<std::size_t>(gpu_offsets_[gpu + 1] - gpu_offsets_[gpu])};
  }
  // The tokens a slot runs when its expert received `expert_tokens`.
  static std::int64_t share(const Slot& s, std::int64_t expert_tokens) {
    return expert_tokens / s.replicas + (s.replica < expert_tokens % s.replicas ? 1 : 0);
  }
  bool operator==(const ExpertPlacement& other) const {
    return gpus_ == other.gpus_ && offsets_ == other.offsets_ && hosts_ == other.hosts_;
  }

 private:
  std::int64_t gpus_ = 0;
  std::vector<std::int64_t> offsets_{0};  // experts + 1
  std::vector<std::int64_t> hosts_;
  std::vector<std::int64_t> gpu_offsets_;  // gpus + 1: the inverse map, by GPU
  std::vector<Slot> slots_;
};

// What a controller knows of its run.
struct MoeRunInfo {
  std::int64_t gpus = 0;
  std::int64_t gpus_per_node = 1;
  int experts = 0;
  int top_k = 0;
  int moe_layers = 0;
  std::int64_t tokens_per_gpu = 0;  // tokens each GPU routes per layer (in decode: batch_per_gpu)
  // Decode phase: each step produces one token per request (tokens_per_gpu requests per GPU); false for
  // prefill and training. A capacity policy may size its capacity differently there (cap_decode).
  bool decode = false;
  double gate_concentration = 1.0;  // a token's top-k gate weights ~ Dirichlet(this), as the router draws them
  std::vector<WorkerGroup> groups;  // persistent slowdowns by rank
  std::uint64_t seed = 0, replication = 0;  // for the controller's own RNG streams
  double expert_bytes = 0;  // one routed expert's weights, bytes
  double host_bandwidth = 0;  // each GPU's link to host memory, bytes/s one way (0: none given)
  double gpu_memory_bytes = 0;  // each GPU's HBM (0: not given)
  int expert_groups = 1;    // the router's expert groups (contiguous blocks of experts / groups)
  std::int64_t stable_from_step = 0;  // the routing's stable phase starts here; the steps before fluctuate
  // The routing of the future, for oracles: a private copy of the run's router, to be called for every
  // step from 0 in order and within a step for every layer in order; it then gives exactly the counts the
  // run's router will give (before any controller edits them). Null when the routing cannot be replayed.
  std::function<void(std::int64_t step, int layer, std::span<std::int64_t> counts)> route_ahead;
};

// One MoE layer-step as a controller sees it.
struct MoeLayer {
  std::int64_t step = 0;
  int layer = 0;  // MoE layer index, 0 .. moe_layers - 1
  bool backward = false;
  std::span<std::int64_t> counts;  // (token, expert) pairs per expert: empty before routing
  // The tokens engine only, from routing on (null otherwise): every token's experts and gate scores, of which
  // `counts` are the tally. A controller may decide token by token from them; it still edits `counts`.
  const MoeTokens* tokens = nullptr;
};

// Expert weights a controller copies onto a GPU (a new replica, a prefetch) over the GPU's ingress link:
// NVLink when `from` is in its node, else its NIC. Each link carries its loads first-in-first-out.
struct WeightLoad {
  static constexpr std::int64_t kHostMemory = -2;  // `from`: the GPU's own host memory, over its host link (PCIe)
  std::int64_t gpu = 0;
  std::int64_t from = -1;  // the source GPU, -1 for host memory or storage reached over the NIC, kHostMemory
  double bytes = 0;
  // The GPU's experts in this layer wait for it (weights needed now); false: a prefetch for a later layer,
  // which only occupies the link (a load queued behind it waits).
  bool wait = true;
};

// A backup copy of GPU `from`'s expert work on GPU `to` (which must hold replicas of from's experts):
// launched at `at_s`, it re-runs the tokens `from` has not processed by then, after `to`'s own experts; `from`'s
// experts finish when the first of the two does, and the other is cancelled.
struct Hedge {
  std::int64_t from = 0;
  std::int64_t to = 0;
  double at_s = 0;  // launch, seconds from the layer's dispatch start (0: from the start, every token)
};

// One load prediction, checked against what then happened.
struct PredictorError {
  double error = 0;       // load-weighted: sum |predicted - actual| / sum actual
  bool one_step = false;  // a forecast of the next step (horizon 1); else of the mean over a re-plan's interval
  bool stable = true;     // the first step it forecast lies in the routing's stable phase (else a fluctuating one)
};

// What a controller did in one layer; the workload charges the costs.
struct MoeDecisions {
  std::int64_t dropped_pairs = 0;   // pairs taken out of counts in after_routing
  std::int64_t rerouted_pairs = 0;  // pairs moved between experts in after_routing (counts keep their sum)
  double dropped_gate_mass = 0;     // the gate weight of the dropped pairs (a token's weights sum to 1)
  // Per GPU (empty: none): pairs of the counts that run on the GPU their token lives on, so they skip the
  // all-to-all (a token rerouted to an expert of its own GPU).
  std::vector<std::int64_t> local_pairs;
  std::vector<WeightLoad> loads;
  std::vector<Hedge> hedges;
  // Load predictions that ended this layer: each one's error (predictor_mape and its breakdowns).
  std::vector<PredictorError> predictor_errors;
  // Expert-weight cache (prefetch): the (GPU, expert) weights this layer needed, and how many were in HBM.
  std::int64_t cache_accesses = 0, cache_hits = 0;
  void clear() {
    predictor_errors.clear();
    cache_accesses = cache_hits = 0;
    dropped_pairs = rerouted_pairs = 0;
    dropped_gate_mass = 0;
    local_pairs.clear();
    loads.clear();
    hedges.clear();
  }
};

// A layer's outcome, for after_layer.
struct MoeLayerOutcome {
  std::span<const std::int64_t> gpu_pairs;  // (token, expert) pairs each GPU ran
  std::span<const double> expert_finish_s;  // per GPU: dispatch + experts, from the dispatch start
  double layer_s = 0;                       // the whole layer, dense part to combine
  // Per GPU: its compute factor this layer (slowdown x noise), the time its kernels take on the same work
  // relative to a nominal GPU: what a straggler detector's timers compare across ranks.
  std::span<const double> compute_factor = {};
};

class MoeController {
 public:
  virtual ~MoeController() = default;
  virtual void before_routing(const MoeLayer& /*layer*/, ExpertPlacement& /*placement*/, MoeDecisions& /*d*/) {}
  virtual void after_routing(MoeLayer& /*layer*/, const ExpertPlacement& /*placement*/, MoeDecisions& /*d*/) {}
  virtual void on_stragglers(const MoeLayer& /*layer*/, std::span<const double> /*expert_finish_s*/,
                             MoeDecisions& /*d*/) {}
  virtual void after_layer(const MoeLayer& /*layer*/, const MoeLayerOutcome& /*outcome*/) {}
  virtual void between_steps(std::int64_t /*next_step*/, ExpertPlacement& /*placement*/) {}
  // Bytes of standby expert copies each GPU holds beyond its placement (backup_slots), reported; none: not a
  // policy that holds copies.
  virtual std::optional<double> standby_bytes_per_gpu() const { return std::nullopt; }
  // Asked after between_steps: the GPUs a healthy spare took over from the next step on (their slowdown
  // goes; their noise stays). The controller loads the spare's expert weights itself.
  virtual std::vector<std::int64_t> replaced_by_spares() { return {}; }
  // The GPUs taken out of service so far (evict), in order.
  virtual std::span<const Eviction> evictions() const { return {}; }
};

// A policy's moe hooks (Policy::moe()).
class MoePolicy {
 public:
  virtual ~MoePolicy() = default;
  // The controller of one run (one policy, point and replication); null: no hooks (today's `none`).
  virtual std::unique_ptr<MoeController> make_controller(const MoeRunInfo& info) const = 0;
  // Checks the policy against the run's shape (gpus, gpus_per_node, experts, top_k, moe_layers, expert_groups
  // are set) before any run: bad input fails here with the policy's path (Policy::fail).
  virtual void check(const MoeRunInfo& /*shape*/) const {}
  // Whether the controller sets every layer's placement itself (so the GPUs need not hold the experts evenly).
  virtual bool places_experts() const { return false; }
};

}  // namespace tailsim
