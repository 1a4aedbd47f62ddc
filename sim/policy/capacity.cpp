// `capacity_drop` and `reroute`: capacity-aware inference (He, Cai, Huang, Li, "Capacity-Aware Inference:
// Mitigating the Straggler Effect in Mixture of Experts"; code CASE-Lab-UMD/Capacity-Aware-MoE). Each
// expert takes at most C = ceil(capacity_factor x T x top_k / E) (token, expert) pairs of a layer-step.
//  - scope `batch` (the paper's Hugging Face code): T is the layer-step's tokens over the whole cluster.
//  - scope `device` (its Megatron deployment): each GPU caps its own T_local tokens per expert before the
//    all-to-all, so expert e keeps sum over source GPUs r of min(N_r,e, C_local). Its n_e pairs are n_e
//    distinct tokens, which sit on the GPUs independently of their routing, so N_r,e ~ Hypergeometric(T,
//    T_local, n_e): the kept count is K times its expected min (sim/stats/capacity_math.hpp), rounded
//    cumulatively over the experts; no per-token or per-(GPU, expert) draws.
// What an expert cannot keep is dropped (the pair skips the expert: residual only) or, for `reroute`, goes
// to another expert with room for `rounds` rounds: `any` expert (the paper's Token Reroute: the token's
// next-best expert, taken in proportion to the experts' routed load, never one the token holds already) or
// a `local` one (its Expanded Drop: an expert on the token's own GPU, which then skips the all-to-all).
// Orders decide which pairs go: `score` (the lowest gate scores, the paper's default), `first` (the first
// tokens stay), `last` or `random`; with counts alone only the dropped gate mass tells them apart: the
// lowest n - C of n Beta gate scores carry BetaLowerMean::lowest_sum(n, n - C), any other order (n - C) x
// the mean score.
// With the tokens engine (MoeLayer::tokens) the same decision is taken pair by pair (capacity_tokens.cpp),
// the reference the count-level form here is tested against (tests/workload/moe_engines_test.cpp, which
// also bounds the count-level reroute's known biases).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include "sim/policy/capacity.hpp"
#include "sim/policy/policy.hpp"
#include "sim/stats/capacity_math.hpp"

namespace tailsim {

namespace {

// Moves up to `pool` pairs into entries with room, in proportion to `weights`, never past an entry's room. A
// pair cannot go to an expert its token holds already: `hold` is the share of the pool's tokens holding each
// entry, taken as independent, so the part of the pool whose tokens hold every entry with room stays.
// Cumulative rounding (deterministic); returns the pairs moved. Rooms and moved are updated.
std::int64_t spread(std::int64_t pool, std::span<const double> weights, std::span<const double> hold,
                    std::span<std::int64_t> room, std::span<std::int64_t> moved) {
  // Branch-free over the entries (a full entry adds no weight and so is given nothing): which entries are
  // full is random, and a branch on it mispredicted for every other expert.
  double total = 0, all_held = 1;
  for (std::size_t i = 0; i < room.size(); ++i) {
    const bool open = room[i] > 0;
    total += open ? weights[i] : 0.0;
    all_held *= open ? hold[i] : 1.0;
  }
  const auto eligible = static_cast<std::int64_t>(std::floor(static_cast<double>(pool) * (1.0 - all_held) + 0.5));
  if (eligible <= 0 || total <= 0) return 0;
  double cum = 0;
  std::int64_t given = 0, placed = 0;
  for (std::size_t i = 0; i < room.size(); ++i) {
    cum += room[i] > 0 ? weights[i] : 0.0;
    // floor(x + 1/2) of x >= 0, as a truncation (no libm call)
    const auto upto = static_cast<std::int64_t>(static_cast<double>(eligible) * (cum / total) + 0.5);
    const std::int64_t take = std::min(upto - given, std::max<std::int64_t>(room[i], 0));
    given = upto;
    room[i] -= take;
    moved[i] += take;
    placed += take;
  }
  return placed;
}

class CapacityController final : public MoeController {
 public:
  CapacityController(const CapacityParams& p, const MoeRunInfo& info)
      : p_(p), info_(info), scores_(info.gate_concentration, info.gate_concentration * std::max(info.top_k - 1, 1)),
        tokens_(p, info) {
    const auto e = static_cast<std::size_t>(info.experts);
    for (auto* v : {&kept_, &room_, &moved_}) v->resize(e);
    for (auto* v : {&over_mass_, &hold_, &weights_}) v->resize(e);
  }

  void after_routing(MoeLayer& layer, const ExpertPlacement& placement, MoeDecisions& d) override {
    // The backward pass replays the forward routing; a decode step (one token a sequence) is capped only
    // when asked, as the paper's code leaves single-token sequences alone.
    if (layer.backward || (info_.decode && !p_.cap_decode)) return;
    if (layer.tokens) {
      tokens_.apply(*layer.tokens, placement, layer.counts, d);
      return;
    }
    const std::int64_t cap = keep(layer.counts);
    // Of the tokens with a pair over capacity, a share pi_e (k - 1) / (k - k / E) picked expert e too (exact
    // for uniform routing), pi_e = n_e / T the share of tokens that picked it.
    const double k = info_.top_k, tokens = static_cast<double>(info_.tokens_per_gpu * info_.gpus);
    const double also = (k - 1) / (k - k / static_cast<double>(info_.experts)) / tokens;
    std::int64_t overflow = 0;
    for (std::size_t e = 0; e < layer.counts.size(); ++e) {
      const std::int64_t n = layer.counts[e];
      overflow += n - kept_[e];
      room_[e] = std::max<std::int64_t>(0, cap - kept_[e]);
      hold_[e] = std::min(1.0, also * static_cast<double>(n));
      weights_[e] = (static_cast<double>(n) + 1.0) * (1.0 - hold_[e]);  // by the routed load, if not held
      moved_[e] = 0;
    }
    std::int64_t rerouted = 0;
    if (p_.reroute && overflow > 0) rerouted = p_.local ? reroute_local(overflow, placement, d) : reroute_any(overflow);
    if (overflow > 0)
      d.dropped_gate_mass += unplaced_mass(layer.counts, static_cast<double>(overflow - rerouted) / static_cast<double>(overflow));
    for (std::size_t e = 0; e < layer.counts.size(); ++e) layer.counts[e] = kept_[e] + moved_[e];
    d.rerouted_pairs += rerouted;
    d.dropped_pairs += overflow - rerouted;
  }

 private:
  // Fills kept_ with what each expert keeps of its pairs and over_mass_ with the gate mass of the rest;
  // returns the cluster-wide capacity per expert.
  std::int64_t keep(std::span<const std::int64_t> counts) {
    const bool by_score = p_.order == CapacityOrder::kScore;
    const auto mass = [&](std::size_t e) { return static_cast<double>(counts[e] - kept_[e]) * scores_.mean(); };
    const std::int64_t tokens = info_.tokens_per_gpu * info_.gpus;
    if (p_.scope == CapacityScope::kBatch) {
      const std::int64_t cap = p_.capacity(tokens, info_.top_k, info_.experts);
      for (std::size_t e = 0; e < counts.size(); ++e) {
        kept_[e] = std::min(counts[e], cap);
        const auto n = static_cast<double>(counts[e]);
        over_mass_[e] = by_score ? scores_.lowest_sum(n, n - static_cast<double>(kept_[e])) : mass(e);
      }
      return cap;
    }
    // Expected kept counts rounded cumulatively, so the total is unbiased: a hot expert keeps just under
    // K x C in expectation, and rounding each alone would round all of them up.
    const std::int64_t local = p_.capacity(info_.tokens_per_gpu, info_.top_k, info_.experts);
    const auto k = static_cast<double>(info_.gpus);
    double cum = 0;
    std::int64_t given = 0;
    for (std::size_t e = 0; e < counts.size(); ++e) {
      const DeviceShare share = expected_device_share(counts[e], tokens, info_.tokens_per_gpu, local, by_score ? &scores_ : nullptr);
      cum += k * share.kept;
      const auto upto = static_cast<std::int64_t>(std::floor(cum + 0.5));
      kept_[e] = std::clamp<std::int64_t>(upto - given, 0, counts[e]);
      given = upto;
      over_mass_[e] = by_score ? k * share.dropped_mass : mass(e);
    }
    return local * info_.gpus;
  }

  // The gate mass of the overflow pairs that found no room, a share f of them. Any order but score: a random
  // part, f x the overflow's mass. By score, targets take rerouted pairs best first, so the pairs left are
  // the lower-scored of their targets' proposers: their mass lies between the lowest f of each expert's
  // overflow (were every target short by the same share; L is convex, so this is a lower bound) and the
  // random part (an upper bound). The midpoint is taken; against the tokens engine it is within 15 % where
  // the bounds are 50 % apart (tests/workload/moe_engines_test.cpp).
  double unplaced_mass(std::span<const std::int64_t> counts, double f) const {
    double mass = 0;
    for (std::size_t e = 0; e < counts.size(); ++e) {
      const std::int64_t over = counts[e] - kept_[e];
      if (over <= 0) continue;
      double lowest = f * over_mass_[e];
      if (p_.order == CapacityOrder::kScore && f < 1) {
        const auto n = static_cast<double>(counts[e]);
        const double all = scores_.lowest_sum(n, static_cast<double>(over));
        if (all > 0) lowest = over_mass_[e] * scores_.lowest_sum(n, f * static_cast<double>(over)) / all;
      }
      mass += 0.5 * (f * over_mass_[e] + lowest);
    }
    return mass;
  }

  std::int64_t reroute_any(std::int64_t overflow) {
    std::int64_t placed = 0;
    for (int r = 0; r < p_.rounds && placed < overflow; ++r) placed += spread(overflow - placed, weights_, hold_, room_, moved_);
    return placed;
  }

  // Tokens sit evenly on the GPUs, so each GPU holds 1/K of the overflow; a GPU's overflow goes to the
  // replicas it hosts, and those pairs stay on that GPU. The room a GPU finds there is, with scope batch, its
  // replica's share of the expert's room (shared by replicas as tokens are); with scope device, its own room
  // at the expert (what its own cap left): 1/K of the expert's room, as every GPU caps its own tokens.
  std::int64_t reroute_local(std::int64_t overflow, const ExpertPlacement& placement, MoeDecisions& d) {
    d.local_pairs.assign(static_cast<std::size_t>(info_.gpus), 0);
    const bool device = p_.scope == CapacityScope::kDevice;
    std::int64_t placed = 0;
    for (std::int64_t g = 0; g < info_.gpus; ++g) {
      const std::int64_t pool = overflow / info_.gpus + (g < overflow % info_.gpus ? 1 : 0);
      slot_room_.clear();
      slot_weight_.clear();
      slot_hold_.clear();
      slot_moved_.assign(placement.slots(g).size(), 0);
      for (const ExpertPlacement::Slot& s : placement.slots(g)) {
        const auto e = static_cast<std::size_t>(s.expert);
        const std::int64_t r = room_[e];  // shares of the room before any GPU's part
        slot_room_.push_back(device ? r / info_.gpus + (g < r % info_.gpus ? 1 : 0) : ExpertPlacement::share(s, r));
        slot_weight_.push_back(weights_[e]);
        slot_hold_.push_back(hold_[e]);
      }
      std::int64_t here = 0;
      for (int r = 0; r < p_.rounds && here < pool; ++r)
        here += spread(pool - here, slot_weight_, slot_hold_, slot_room_, slot_moved_);
      for (std::size_t i = 0; i < slot_moved_.size(); ++i) moved_[static_cast<std::size_t>(placement.slots(g)[i].expert)] += slot_moved_[i];
      d.local_pairs[static_cast<std::size_t>(g)] = here;
      placed += here;
    }
    return placed;
  }

  CapacityParams p_;
  MoeRunInfo info_;
  BetaLowerMean scores_;  // a pair's normalized gate score ~ Beta(beta, (k - 1) beta), as the routers draw it
  TokenCapacity tokens_;  // the same decision pair by pair, when the workload gives the tokens
  std::vector<std::int64_t> kept_, room_, moved_;
  std::vector<double> over_mass_, hold_, weights_;
  std::vector<std::int64_t> slot_room_, slot_moved_;  // reroute_local scratch
  std::vector<double> slot_weight_, slot_hold_;
};

class CapacityPolicy final : public Policy, public MoePolicy {
 public:
  CapacityPolicy(std::string type, CapacityParams p) : Policy(type, type), p_(p) {}
  const MoePolicy* moe() const override { return this; }
  std::unique_ptr<MoeController> make_controller(const MoeRunInfo& info) const override {
    return std::make_unique<CapacityController>(p_, info);
  }

 private:
  CapacityParams p_;
};

CapacityParams read_capacity(const JsonReader& n) {
  CapacityParams p;
  p.factor = n.number("capacity_factor", 1.0, Range{0.0, 1e6, true, false});
  p.scope = n.string("scope", "batch", {"batch", "device"}) == "device" ? CapacityScope::kDevice : CapacityScope::kBatch;
  const std::string order = n.string("order", "score", {"score", "first", "last", "random"});
  p.order = order == "score" ? CapacityOrder::kScore : order == "first" ? CapacityOrder::kFirst : order == "last" ? CapacityOrder::kLast : CapacityOrder::kRandom;
  p.floor = n.string("rounding", "ceil", {"ceil", "floor"}) == "floor";
  p.cap_decode = n.boolean("cap_decode", false);
  return p;
}

}  // namespace

std::unique_ptr<Policy> make_capacity_drop_policy(const JsonReader& n) {
  return std::make_unique<CapacityPolicy>("capacity_drop", read_capacity(n));
}

std::unique_ptr<Policy> make_reroute_policy(const JsonReader& n) {
  CapacityParams p = read_capacity(n);
  p.reroute = true;
  p.rounds = static_cast<int>(n.integer("rounds", 1, Range{1.0, 64.0}));
  p.local = n.string("candidates", "any", {"any", "local"}) == "local";
  return std::make_unique<CapacityPolicy>("reroute", p);
}

}  // namespace tailsim
