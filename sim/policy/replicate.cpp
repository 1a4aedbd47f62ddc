// `replicate`: EPLB-style redundant experts (deepseek-ai/EPLB; DeepSeek-V3 serves with 32 redundant experts
// re-planned from load statistics). Each layer has experts + redundant_experts slots, redundant / K more per
// GPU; which experts they hold is EPLB's plan (sim/policy/eplb.hpp) for the predicted load of the coming
// `interval` steps. Tokens of a replicated expert are shared evenly by its replicas (ExpertPlacement).
// Timeline of a re-plan at step s (a multiple of interval, s > 0): in layer l of step s the controller
// predicts the layer's load from its history (or, oracle, routes ahead), plans, and starts copying each
// expert that lands on a GPU without it (from a GPU holding it, NVLink within a node, else the NIC); the
// copies overlap step s on the links (the workload queues them per link); in step s + 1 layer l switches to
// the new placement, after a fence on each link that carried copies: a GPU whose copies are still on the way
// stalls (weight_stall_s). The first plan (step 0) is free: the deployment starts with it; without history
// it is the plan for uniform load (the oracle plans it from the routing ahead).
// predictor_mape: each re-plan's estimate against the mean load its interval then saw, per layer; by the
// routing's phase of the interval's first step; and (not the oracle) a forecast of the re-plan's own step from
// the same history (horizon 1) against that step's load.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <utility>

#include "sim/policy/eplb.hpp"
#include "sim/policy/policy.hpp"
#include "sim/policy/predictor.hpp"

namespace tailsim {

namespace {

struct ReplicateParams {
  int redundant = 0;
  int per_gpu = -1;  // redundant_per_gpu when given: redundant = per_gpu x K
  EplbPlacement placement = EplbPlacement::kAuto;
  PredictorSpec predictor;
  int interval = 100;
};

class ReplicateController final : public MoeController {
 public:
  ReplicateController(const ReplicateParams& p, const MoeRunInfo& info)
      : p_(p), info_(info), experts_(static_cast<std::size_t>(info.experts)),
        rows_(p.predictor.kind == PredictorKind::kOracle ? 1 : p.predictor.rows()) {
    const auto layers = static_cast<std::size_t>(info.moe_layers);
    plans_.resize(layers);
    next_.resize(layers);
    history_.assign(layers * static_cast<std::size_t>(rows_) * experts_, 0.0);
    one_step_.assign(layers * experts_, -1.0);
    estimate_.assign(layers * experts_, 0.0);
    previous_.assign(layers * experts_, 0.0);
    fences_.resize(layers);
    window_sum_.assign(layers * experts_, 0.0);
    scratch_.resize(experts_);
    counts_.resize(experts_);
    nodes_ = static_cast<int>((info.gpus + info.gpus_per_node - 1) / info.gpus_per_node);
    const bool oracle = p_.predictor.kind == PredictorKind::kOracle;
    if (oracle) route_ahead(0, p_.interval - 1);
    std::fill(scratch_.begin(), scratch_.end(), 1.0);
    for (std::size_t l = 0; l < layers; ++l) plans_[l] = plan(oracle ? std::span<const double>(&ahead_load_[l * experts_], experts_) : scratch_);
  }

  void before_routing(const MoeLayer& view, ExpertPlacement& placement, MoeDecisions& d) override {
    const auto l = static_cast<std::size_t>(view.layer);
    // The workload's placement holds the plan of the layer last routed (swapped in, O(1)): give it back.
    if (held_ >= 0) std::swap(placement, plans_[static_cast<std::size_t>(held_)]);
    if (!view.backward) {
      if (next_[l]) {  // the step after a re-plan: switch, once the copies have arrived
        for (const auto& [gpu, from] : fences_[l]) d.loads.push_back(WeightLoad{gpu, from, 0.0, true});
        plans_[l] = std::move(*next_[l]);
        next_[l].reset();
        fences_[l].clear();
      }
      if (view.step > 0 && view.step % p_.interval == 0) replan(view, d);
      d.predictor_errors.insert(d.predictor_errors.end(), errors_.begin(), errors_.end());
      errors_.clear();
    }
    std::swap(placement, plans_[l]);
    held_ = view.layer;
  }

  void after_layer(const MoeLayer& view, const MoeLayerOutcome&) override {
    if (view.backward) return;
    const auto l = static_cast<std::size_t>(view.layer);
    // History: a ring of rows_ rows per layer; step t's row is row t mod rows_.
    double* h = &history_[(l * static_cast<std::size_t>(rows_) + static_cast<std::size_t>(view.step % rows_)) * experts_];
    for (std::size_t e = 0; e < experts_; ++e) h[e] = static_cast<double>(view.counts[e]);
    double* next = &one_step_[l * experts_];
    if (next[0] >= 0) {  // this step's forecast, made at its re-plan
      errors_.push_back({load_error({next, experts_}, {h, experts_}), true, view.step >= info_.stable_from_step});
      next[0] = -1.0;
    }
    // The window that the re-plan at s predicted, s + 1 .. s + interval, ends at the next re-plan (which moved
    // the estimate into previous_).
    if (view.step <= p_.interval) return;
    double* w = &window_sum_[l * experts_];
    for (std::size_t e = 0; e < experts_; ++e) w[e] += static_cast<double>(view.counts[e]);
    if (view.step % p_.interval != 0) return;
    for (std::size_t e = 0; e < experts_; ++e) w[e] /= p_.interval;
    errors_.push_back({load_error({&previous_[l * experts_], experts_}, {w, experts_}), false,
                       view.step - p_.interval + 1 >= info_.stable_from_step});
    std::fill(w, w + experts_, 0.0);
  }

 private:
  // EPLB's plan for `load`; with a previous placement, its GPUs relabelled to keep experts in place.
  ExpertPlacement plan(std::span<const double> load, const ExpertPlacement* previous = nullptr) const {
    const EplbPlan plan = rebalance_experts(load, info_.experts + p_.redundant, info_.expert_groups, nodes_,
                                            static_cast<int>(info_.gpus), p_.placement);
    if (!previous) return plan_placement(plan, info_.experts, static_cast<int>(info_.gpus));
    const bool by_node = p_.placement == EplbPlacement::kHierarchical ||
                         (p_.placement == EplbPlacement::kAuto && info_.expert_groups % nodes_ == 0 && info_.gpus % nodes_ == 0);
    return plan_placement(plan, info_.experts, static_cast<int>(info_.gpus),
                          keep_in_place(plan, *previous, info_.gpus_per_node, by_node));
  }

  // The oracle's estimate: the mean counts of steps first .. last, every layer (routing every step from the
  // last one routed, as route_ahead requires).
  void route_ahead(std::int64_t first, std::int64_t last) {
    ahead_load_.assign(static_cast<std::size_t>(info_.moe_layers) * experts_, 0.0);
    for (std::int64_t s = ahead_; s <= last; ++s)
      for (int l = 0; l < info_.moe_layers; ++l) {
        info_.route_ahead(s, l, counts_);
        if (s < first) continue;
        double* est = &ahead_load_[static_cast<std::size_t>(l) * experts_];
        for (std::size_t e = 0; e < experts_; ++e) est[e] += static_cast<double>(counts_[e]) / static_cast<double>(last - first + 1);
      }
    ahead_ = last + 1;
  }

  void replan(const MoeLayer& view, MoeDecisions& d) {
    const auto l = static_cast<std::size_t>(view.layer);
    std::copy_n(&estimate_[l * experts_], experts_, &previous_[l * experts_]);
    if (p_.predictor.kind == PredictorKind::kOracle) {
      if (view.layer == 0) route_ahead(view.step + 1, view.step + p_.interval);
      std::copy_n(&ahead_load_[l * experts_], experts_, &estimate_[l * experts_]);
    } else {
      // The ring's rows in order, oldest first: steps s - rows .. s - 1.
      const int rows = static_cast<int>(std::min<std::int64_t>(rows_, view.step));
      ordered_.resize(static_cast<std::size_t>(rows) * experts_);
      for (int r = 0; r < rows; ++r) {
        const std::size_t from = l * static_cast<std::size_t>(rows_) + static_cast<std::size_t>((view.step - rows + r) % rows_);
        std::copy_n(&history_[from * experts_], experts_, &ordered_[static_cast<std::size_t>(r) * experts_]);
      }
      const LoadHistory h{ordered_, rows, info_.experts};
      predict_mean_load(p_.predictor, h, p_.interval, {&estimate_[l * experts_], experts_});
      predict_load(p_.predictor, h, 1, {&one_step_[l * experts_], experts_});
    }
    ExpertPlacement next = plan({&estimate_[l * experts_], experts_}, &plans_[l]);
    copy_weights(plans_[l], next, l, d);
    next_[l] = std::move(next);
  }

  // Each (GPU, expert) of `next` that `now` lacks is copied from a GPU holding the expert, in the GPU's node if
  // one does (NVLink), else the first holder (NIC). Not waited for now: a fence waits in the switching step.
  void copy_weights(const ExpertPlacement& now, const ExpertPlacement& next, std::size_t l, MoeDecisions& d) {
    for (std::int64_t g = 0; g < info_.gpus; ++g) {
      for (const ExpertPlacement::Slot& s : next.slots(g)) {
        const auto hosts = now.hosts(s.expert);
        if (std::find(hosts.begin(), hosts.end(), g) != hosts.end()) continue;
        std::int64_t from = hosts[0];
        for (const std::int64_t h : hosts)
          if (h / info_.gpus_per_node == g / info_.gpus_per_node) from = h;
        d.loads.push_back(WeightLoad{g, from, info_.expert_bytes, false});
        const bool in_node = from / info_.gpus_per_node == g / info_.gpus_per_node;
        const std::pair<std::int64_t, std::int64_t> fence{g, in_node ? from : -1};
        if (std::find(fences_[l].begin(), fences_[l].end(), fence) == fences_[l].end()) fences_[l].push_back(fence);
      }
    }
  }

  ReplicateParams p_;
  MoeRunInfo info_;
  std::size_t experts_;
  int rows_, nodes_ = 1;
  std::vector<ExpertPlacement> plans_;
  std::vector<std::optional<ExpertPlacement>> next_;
  std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>> fences_;  // per layer: (GPU, source or -1: NIC)
  std::vector<double> history_;     // layers x rows x experts: a ring per layer (step t in row t mod rows)
  std::vector<double> ordered_;     // one layer's history in order, for the predictor
  std::vector<double> estimate_;    // layers x experts: the last re-plan's estimate
  std::vector<double> previous_;    // layers x experts: the one before (its window ends at the last re-plan)
  std::vector<double> ahead_load_;  // layers x experts: the oracle's mean counts of the coming window
  std::vector<double> window_sum_;  // layers x experts: counts since the last re-plan
  std::vector<double> one_step_;     // layers x experts: the re-plan's forecast of its own step (-1 first: none)
  std::vector<double> scratch_;
  std::vector<PredictorError> errors_;
  std::vector<std::int64_t> counts_;
  std::int64_t ahead_ = 0;
  int held_ = -1;  // the layer whose plan is swapped into the workload's placement
};

class ReplicatePolicy final : public Policy, public MoePolicy {
 public:
  explicit ReplicatePolicy(ReplicateParams p) : Policy("replicate", "replicate"), p_(p) {}
  const MoePolicy* moe() const override { return this; }
  bool copies_work() const override { return false; }
  bool places_experts() const override { return true; }
  std::unique_ptr<MoeController> make_controller(const MoeRunInfo& info) const override {
    check(info);
    ReplicateParams p = p_;
    p.redundant = redundant(info);
    return std::make_unique<ReplicateController>(p, info);
  }
  int redundant(const MoeRunInfo& info) const {
    return p_.per_gpu >= 0 ? static_cast<int>(p_.per_gpu * info.gpus) : p_.redundant;
  }
  void check(const MoeRunInfo& info) const override {
    if (p_.per_gpu >= 0 && info.experts % info.gpus != 0)
      fail("redundant_per_gpu", "expected the " + std::to_string(info.gpus) + " GPUs to divide the " +
           std::to_string(info.experts) + " experts (each GPU gets the same number of them and redundant_per_gpu "
           "more); give redundant_experts instead");
    if ((info.experts + redundant(info)) % info.gpus != 0)
      fail("redundant_experts", "expected the " + std::to_string(info.experts) + " experts plus redundant_experts to spread "
           "evenly over the " + std::to_string(info.gpus) + " GPUs (a multiple of " + std::to_string(info.gpus) +
           " slots), got " + std::to_string(info.experts) + " + " + std::to_string(p_.redundant) + " = " +
           std::to_string(info.experts + p_.redundant));
    const int nodes = static_cast<int>((info.gpus + info.gpus_per_node - 1) / info.gpus_per_node);
    if (p_.placement == EplbPlacement::kHierarchical && (info.expert_groups % nodes != 0 || info.gpus % nodes != 0))
      fail("placement", "'hierarchical' packs the " + std::to_string(info.expert_groups) + " expert groups onto the " +
           std::to_string(nodes) + " nodes: the nodes must divide the groups; valid here: global, auto");
  }

 private:
  ReplicateParams p_;
};

}  // namespace

std::unique_ptr<Policy> make_replicate_policy(const JsonReader& n) {
  ReplicateParams p;
  if (n.has("redundant_experts") && n.has("redundant_per_gpu"))
    n.child("redundant_per_gpu").fail("give one of 'redundant_experts' (in all) and 'redundant_per_gpu'");
  p.redundant = static_cast<int>(n.integer("redundant_experts", 0, Range{0.0, 65536.0}));
  if (n.has("redundant_per_gpu")) p.per_gpu = static_cast<int>(n.integer("redundant_per_gpu", 0, Range{0.0, 1024.0}));
  const std::string placement = n.string("placement", "auto", {"auto", "hierarchical", "global"});
  p.placement = placement == "hierarchical" ? EplbPlacement::kHierarchical
                : placement == "global"     ? EplbPlacement::kGlobal
                                            : EplbPlacement::kAuto;
  if (const auto pred = n.optional_child("predictor")) p.predictor = parse_predictor(*pred);
  p.interval = static_cast<int>(n.integer("interval", 100, Range{1.0, 1e9}));
  return std::make_unique<ReplicatePolicy>(p);
}

}  // namespace tailsim
