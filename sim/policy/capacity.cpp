// `capacity_drop` and `reroute`: capacity-aware inference (He, Cai, Huang, Li, "Capacity-Aware Inference:
// Mitigating the Straggler Effect in Mixture of Experts"; code CASE-Lab-UMD/Capacity-Aware-MoE). Each
// expert takes at most C = ceil(capacity_factor x T x top_k / E) (token, expert) pairs of a layer-step.
//  - scope `batch` (the paper's Hugging Face code): T is the layer-step's tokens over the whole cluster.
//  - scope `device` (its Megatron deployment): each GPU caps its own T_local tokens per expert before the
//    all-to-all, so expert e keeps sum over source GPUs r of min(N_r,e, C_local). Tokens sit on the GPUs
//    evenly and independently of their routing, so N_r,e ~ Binomial(n_e, 1/K): the kept count is K times
//    its expected min (sim/stats/capacity_math.hpp), rounded; no per-token or per-(GPU, expert) draws.
// What an expert cannot keep is dropped (the pair skips the expert: residual only) or, for `reroute`, goes
// to another expert with room for `rounds` rounds: `any` expert (the paper's Token Reroute: the token's
// next-best expert, taken in proportion to the experts' routed load) or a `local` one (its Expanded Drop:
// an expert on the token's own GPU, which then skips the all-to-all). Orders decide which pairs go: `score`
// (the lowest gate scores, the paper's default), `first`, `last` or `random`; with counts alone only the
// dropped gate mass tells them apart: the lowest n - C of n Beta gate scores carry n L((n - C) / n)
// (BetaLowerMean), any other order (n - C) x the mean score.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include "sim/policy/policy.hpp"
#include "sim/stats/capacity_math.hpp"

namespace tailsim {

namespace {

enum class Scope { kBatch, kDevice };
enum class Order { kScore, kFirst, kLast, kRandom };

struct CapacityParams {
  double factor = 1.0;
  Scope scope = Scope::kBatch;
  Order order = Order::kScore;
  bool floor = false;  // rounding
  bool reroute = false;
  int rounds = 1;
  bool local = false;  // reroute candidates
};

// Moves up to `pool` pairs into entries with room, in proportion to `weights` (cumulative rounding,
// deterministic), never past an entry's room; returns the pairs moved. Rooms and moved are updated.
// Branch-free over the entries (rooms >= 0; a full entry adds no weight, so it is given nothing): which
// entries are full is random, and a branch on it mispredicted for every other expert.
std::int64_t spread(std::int64_t pool, std::span<const double> weights, std::span<std::int64_t> room,
                    std::span<std::int64_t> moved) {
  double total = 0;
  for (std::size_t i = 0; i < room.size(); ++i) total += room[i] > 0 ? weights[i] : 0.0;
  if (pool <= 0 || total <= 0) return 0;
  const double per_weight = static_cast<double>(pool) / total;
  double cum = 0;
  std::int64_t given = 0, placed = 0;
  for (std::size_t i = 0; i < room.size(); ++i) {
    cum += room[i] > 0 ? weights[i] : 0.0;
    // Rounded to nearest (the value is >= 0, so truncating x + 1/2 is floor(x + 1/2)), capped at the pool.
    const auto upto = std::min(pool, static_cast<std::int64_t>(cum * per_weight + 0.5));
    const std::int64_t take = std::min(upto - given, room[i]);
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
      : p_(p), info_(info), scores_(info.gate_concentration, info.gate_concentration * std::max(info.top_k - 1, 1)) {
    const auto e = static_cast<std::size_t>(info.experts);
    kept_.resize(e);
    room_.resize(e);
    moved_.resize(e);
    weights_.resize(e);
  }

  void after_routing(MoeLayer& layer, const ExpertPlacement& placement, MoeDecisions& d) override {
    if (layer.backward) return;
    const std::int64_t cap = keep(layer.counts);
    std::int64_t overflow = 0;
    double overflow_mass = 0;
    for (std::size_t e = 0; e < layer.counts.size(); ++e) {
      const std::int64_t n = layer.counts[e], over = n - kept_[e];
      overflow += over;
      overflow_mass += over > 0 ? dropped_mass(n, over) : 0.0;
      room_[e] = std::max<std::int64_t>(0, cap - kept_[e]);
      weights_[e] = static_cast<double>(n) + 1.0;  // a token's next-best expert, by the experts' routed load
      moved_[e] = 0;
    }
    std::int64_t rerouted = 0;
    if (p_.reroute && overflow > 0) rerouted = p_.local ? reroute_local(overflow, placement, d) : reroute_any(overflow);
    for (std::size_t e = 0; e < layer.counts.size(); ++e) layer.counts[e] = kept_[e] + moved_[e];
    d.rerouted_pairs += rerouted;
    d.dropped_pairs += overflow - rerouted;
    // The pairs that found no room are a random part of those that overflowed.
    if (overflow > 0) d.dropped_gate_mass += overflow_mass * static_cast<double>(overflow - rerouted) / static_cast<double>(overflow);
  }

 private:
  // Fills kept_ with what each expert keeps of its pairs; returns the cluster-wide capacity per expert.
  std::int64_t keep(std::span<const std::int64_t> counts) {
    const double per_expert = static_cast<double>(info_.top_k) / static_cast<double>(info_.experts);
    const auto capacity = [&](std::int64_t tokens) {
      const double c = p_.factor * static_cast<double>(tokens) * per_expert;
      return static_cast<std::int64_t>(p_.floor ? std::floor(c) : std::ceil(c));
    };
    if (p_.scope == Scope::kBatch) {
      const std::int64_t cap = capacity(info_.tokens_per_gpu * info_.gpus);
      for (std::size_t e = 0; e < counts.size(); ++e) kept_[e] = std::min(counts[e], cap);
      return cap;
    }
    const std::int64_t local = capacity(info_.tokens_per_gpu);
    const double k = static_cast<double>(info_.gpus), p = 1.0 / k;
    for (std::size_t e = 0; e < counts.size(); ++e)
      kept_[e] = std::min<std::int64_t>(counts[e], std::llround(k * expected_min_binomial(counts[e], p, local)));
    return local * info_.gpus;
  }

  double dropped_mass(std::int64_t n, std::int64_t over) const {
    if (p_.order == Order::kScore) return static_cast<double>(n) * scores_(static_cast<double>(over) / static_cast<double>(n));
    return static_cast<double>(over) * scores_.mean();
  }

  std::int64_t reroute_any(std::int64_t overflow) {
    std::int64_t placed = 0;
    for (int r = 0; r < p_.rounds && placed < overflow; ++r) placed += spread(overflow - placed, weights_, room_, moved_);
    return placed;
  }

  // Tokens sit evenly on the GPUs, so each GPU holds 1/K of the overflow; a GPU's overflow goes to the
  // replicas it hosts (an expert's room shared by its replicas), and those pairs stay on that GPU.
  std::int64_t reroute_local(std::int64_t overflow, const ExpertPlacement& placement, MoeDecisions& d) {
    d.local_pairs.assign(static_cast<std::size_t>(info_.gpus), 0);
    std::int64_t placed = 0;
    for (std::int64_t g = 0; g < info_.gpus; ++g) {
      const std::int64_t pool = overflow / info_.gpus + (g < overflow % info_.gpus ? 1 : 0);
      slot_room_.clear();
      slot_weight_.clear();
      slot_moved_.assign(placement.slots(g).size(), 0);
      for (const ExpertPlacement::Slot& s : placement.slots(g)) {
        slot_room_.push_back(ExpertPlacement::share(s, room_[static_cast<std::size_t>(s.expert)]));
        slot_weight_.push_back(weights_[static_cast<std::size_t>(s.expert)]);
      }
      std::int64_t here = 0;
      for (int r = 0; r < p_.rounds && here < pool; ++r) here += spread(pool - here, slot_weight_, slot_room_, slot_moved_);
      for (std::size_t i = 0; i < slot_moved_.size(); ++i) {
        const auto e = static_cast<std::size_t>(placement.slots(g)[i].expert);
        moved_[e] += slot_moved_[i];
        room_[e] -= slot_moved_[i];
      }
      d.local_pairs[static_cast<std::size_t>(g)] = here;
      placed += here;
    }
    return placed;
  }

  CapacityParams p_;
  MoeRunInfo info_;
  BetaLowerMean scores_;  // a pair's normalized gate score ~ Beta(beta, (k - 1) beta), as the routers draw it
  std::vector<std::int64_t> kept_, room_, moved_;
  std::vector<double> weights_;
  std::vector<std::int64_t> slot_room_, slot_moved_;  // reroute_local scratch
  std::vector<double> slot_weight_;
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
  p.scope = n.string("scope", "batch", {"batch", "device"}) == "device" ? Scope::kDevice : Scope::kBatch;
  const std::string order = n.string("order", "score", {"score", "first", "last", "random"});
  p.order = order == "score" ? Order::kScore : order == "first" ? Order::kFirst : order == "last" ? Order::kLast : Order::kRandom;
  p.floor = n.string("rounding", "ceil", {"ceil", "floor"}) == "floor";
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
