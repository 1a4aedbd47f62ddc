#include "sim/policy/policy.hpp"


namespace tailsim {

void Policy::fail(const std::string& key, const std::string& message) const {
  throw InputError(file_, path_ + (key.empty() ? "" : "/" + key), message);
}

const PolicyRegistry& policy_registry() {
  static const PolicyRegistry registry = [] {
    PolicyRegistry r("policies");
    r.add("none", "wait for the slowest worker at every barrier", {}, make_none_policy);
    r.add("backup", "speculative copies: `copies` attempts per task keeping the first, or (with `quantile`) "
                    "Spark-style backups for tasks slower than multiplier x the median; moe: a straggling GPU's remaining tokens re-run "
                    "on a GPU holding copies of its experts (the trigger, or the known slow GPUs)",
          {{"copies", "attempts per task, first finisher wins (integer 1..8, default 2); fixed form"},
           {"quantile", "fraction of tasks finished before backups are considered, in (0, 1); trigger form"},
           {"multiplier", "a task is slow once it has run multiplier x the median finished time (> 0, default 1.5)"},
           {"backup_slots", "moe: standby expert copies per GPU, a multiple of the experts a GPU hosts (integer >= 0; "
                            "default: one GPU's experts, or 0 with more GPUs than experts, when replicas serve)"},
           {"backup_on", "moe: where a GPU's copies are, \"node\" (default: the next GPUs of its node, over NVLink) or "
                         "\"next_node\" (the next nodes first: a slow node's GPUs do not back each other up)"}},
          make_backup_policy);
    r.add("drop_slowest", "finish each step with the first K - m arrivals, abandoning the last m",
          {{"m", "workers dropped per step (integer >= 0, < K)"}}, make_drop_slowest_policy);
    const std::vector<ParamDoc> capacity = {
        {"capacity_factor", "each expert keeps at most ceil(factor x T x top_k / E) pairs a layer-step (> 0, default 1)"},
        {"scope", "\"batch\" (default: T = the layer-step's tokens over the cluster) or \"device\" (each GPU caps its "
                  "own tokens per expert before the all-to-all)"},
        {"order", "which pairs an expert over capacity gives up: \"score\" (lowest gate scores, default), \"first\", "
                  "\"last\" or \"random\""},
        {"rounding", "\"ceil\" (default, as the paper's code) or \"floor\""}};
    r.add("capacity_drop", "moe: experts over capacity drop their extra (token, expert) pairs (residual only)", capacity,
          make_capacity_drop_policy);
    std::vector<ParamDoc> reroute = capacity;
    reroute.push_back({"rounds", "rounds of rerouting before what finds no room is dropped (integer 1..64, default 1)"});
    reroute.push_back({"candidates", "\"any\" (default: the token's next-best expert anywhere) or \"local\" (an expert "
                                     "on the token's own GPU, which skips the all-to-all)"});
    r.add("reroute", "moe: pairs over an expert's capacity go to another expert with room; the rest are dropped", reroute,
          make_reroute_policy);
    r.add("replicate", "moe: EPLB-style redundant experts, re-planned every `interval` steps from a load predictor; "
                       "weight copies paid on the links",
          {{"redundant_experts", "extra expert slots per layer, spread evenly over the GPUs (experts + redundant a "
                                 "multiple of K; integer >= 0, default 0)"},
           {"redundant_per_gpu", "instead of redundant_experts: that many per GPU (integer >= 0; K must divide the experts)"},
           {"placement", "\"auto\" (default: hierarchical when the nodes divide the expert groups, as EPLB), "
                         "\"hierarchical\" or \"global\""},
           {"predictor", "{\"type\": last | window{window} | ema{alpha} | ar{order, history} | oracle}, default "
                         "{\"type\": \"ema\", \"alpha\": 0.2}; oracle routes ahead (an upper bound)"},
           {"interval", "steps between re-plans (integer >= 1, default 100)"}},
          make_replicate_policy);
    r.add("prefetch", "moe: offloaded experts, a per-GPU cache of `cache_experts` a layer in HBM (LRU); misses load over "
                      "the host link; a strategy loads predicted experts ahead",
          {{"cache_experts", "experts a GPU keeps in HBM per layer (integer >= 1, at most the experts it holds); required"},
           {"strategy", "\"lru\" (default: on demand), \"next_layer\" (layer l+1's experts from layer l's routing) or "
                        "\"previous_step\" (layer l+1's busiest of the previous step)"},
           {"prefetch_k", "experts loaded ahead per GPU and layer (integer 1 .. cache_experts, default 1)"}},
          make_prefetch_policy);
    r.add("evict", "bsp, pipeline and moe: ranks whose score (reference median / own median step compute over `window` "
                   "steps, as NVIDIA's straggler detector) falls below `threshold` leave after `drain` steps, replaced by "
                   "spares",
          {{"window", "steps of each rank's median (integer >= 1, default 10)"},
           {"threshold", "score below which a rank is flagged, in (0, 1] (default 0.75)"},
           {"reference", "\"best\" (default: the best rank's median) or \"own\" (the rank's own best window)"},
           {"drain", "steps between flagging and leaving (integer >= 0, default 0)"},
           {"spares", "healthy spare ranks that replace evicted ones (integer >= 0, default 0); without one the "
                      "rank leaves and the others share its work (bsp: the workers; pipeline: its data-parallel "
                      "replica; moe: its experts move, paying weight transfer)"}},
          make_evict_policy);
    return r;
  }();
  return registry;
}

std::unique_ptr<Policy> make_policy(const JsonReader& node) {
  node.expect_object();
  const std::string label = node.string("name", node.has("type") && node.value().at("type").is_string()
                                                    ? node.value().at("type").get<std::string>()
                                                    : std::string());
  std::unique_ptr<Policy> p = policy_registry().build(node);
  p->set_label(label);
  p->set_origin(node.file(), node.path());
  return p;
}

}  // namespace tailsim
