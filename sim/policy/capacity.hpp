// Internal to `capacity_drop` and `reroute`: their parameters, the capacity formula, and the token-level
// form of their decision (sim/policy/capacity_tokens.cpp), which the controller (sim/policy/capacity.cpp)
// uses when the workload gives it every token (MoeLayer::tokens) and the count-level form otherwise.
#pragma once
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "sim/core/rng.hpp"
#include "sim/policy/moe_policy.hpp"

namespace tailsim {

enum class CapacityScope { kBatch, kDevice };
enum class CapacityOrder { kScore, kFirst, kLast, kRandom };

struct CapacityParams {
  double factor = 1.0;
  CapacityScope scope = CapacityScope::kBatch;
  CapacityOrder order = CapacityOrder::kScore;
  bool floor = false;  // rounding
  bool reroute = false;
  int rounds = 1;
  bool local = false;  // reroute candidates
  bool cap_decode = false;  // cap decode steps too (the paper's code caps only sequences of more than one token)

  // C = ceil (or floor) of factor x tokens x top_k / experts: the pairs an expert keeps of `tokens` tokens.
  std::int64_t capacity(std::int64_t tokens, int top_k, int experts) const {
    const double c = factor * static_cast<double>(tokens) * (static_cast<double>(top_k) / static_cast<double>(experts));
    return static_cast<std::int64_t>(floor ? std::floor(c) : std::ceil(c));
  }
};

// The decision pair by pair, as the capacity-aware paper's code takes it (sim/policy/capacity.cpp says what
// each parameter means). Each capacity bucket (an expert; with scope device, an expert's pairs from one
// source GPU) keeps its best C pairs by `order`: the highest gate scores, the first or the last tokens, or
// at random. With reroute, each round every overflowed pair proposes to its token's most preferred expert
// (MoeTokens::preference_uniform) among those with room at the round's start that the token does not hold yet
// (with candidates local: the replicas on its own GPU); an expert accepts proposals up to its room, best
// first by the same order, and the rest try again next round. What is left after `rounds` is dropped.
class TokenCapacity {
 public:
  TokenCapacity(const CapacityParams& p, const MoeRunInfo& info);
  // Fills counts with what each expert runs, and the decisions (dropped and rerouted pairs, the dropped pairs'
  // gate mass, local pairs).
  void apply(const MoeTokens& tokens, const ExpertPlacement& placement, std::span<std::int64_t> counts,
             MoeDecisions& d);

 private:
  enum State : std::uint8_t { kKept, kPending, kRerouted, kDropped };
  // True when pair a goes before pair b (a is kept or accepted first).
  bool before(std::size_t a, std::size_t b) const;
  std::int64_t gpu_of(std::size_t pair) const;
  void keep();
  void reroute(const ExpertPlacement& placement, MoeDecisions& d);
  std::int64_t bucket_of(std::size_t pair) const;
  void make_targets(const ExpertPlacement& placement);
  void propose(int round);
  void accept();
  void mark_held(std::size_t pair);

  CapacityParams p_;
  MoeRunInfo info_;
  RngStream rng_;  // order random: the policy's own stream
  const MoeTokens* tokens_ = nullptr;
  std::size_t k_ = 1, experts_ = 1;
  // Per pair: state, the expert it runs on (its own, or where it was rerouted), this round's proposal (a
  // target index, -1 for none) and the random order's key.
  std::vector<std::uint8_t> state_;
  std::vector<std::int32_t> runs_on_;
  std::vector<std::int64_t> proposal_;
  std::vector<double> random_key_;
  // Capacity buckets: room left, and (scratch) their pairs grouped by bucket.
  std::vector<std::int64_t> room_, offsets_, members_;
  // Reroute targets: an expert's bucket (candidates any) or a (GPU, replica) slot (local, the slots of GPU g
  // from slot_base_[g]), with the room left and whether it had room when the round began.
  std::vector<std::int64_t> target_room_, slot_base_;
  std::vector<std::int32_t> target_expert_;
  std::vector<std::uint8_t> target_open_;
  std::vector<std::size_t> pending_, proposals_;
  std::vector<std::uint64_t> held_;  // per expert: the stamp of the last token that holds it
  std::uint64_t stamp_ = 0;
  std::vector<double> candidate_weight_;  // propose() scratch
};

}  // namespace tailsim
