// The token-level form of capacity_drop and reroute (sim/policy/capacity.hpp): every (token, expert) pair
// of a layer-step kept, rerouted or dropped one by one. O(pairs log pairs) a layer-step, plus O(experts)
// per proposal with candidates any: for tests and small runs, against which the count-level form is checked.
#include <algorithm>
#include <numeric>

#include "sim/policy/capacity.hpp"

namespace tailsim {

TokenCapacity::TokenCapacity(const CapacityParams& p, const MoeRunInfo& info)
    : p_(p), info_(info), rng_(info.seed, "policy/capacity/tokens", info.replication) {}

bool TokenCapacity::before(std::size_t a, std::size_t b) const {
  switch (p_.order) {
    case CapacityOrder::kScore: {
      const double sa = tokens_->scores[a], sb = tokens_->scores[b];
      return sa > sb || (sa == sb && a < b);
    }
    case CapacityOrder::kFirst: return a < b;
    case CapacityOrder::kLast: return a > b;
    case CapacityOrder::kRandom: return random_key_[a] < random_key_[b] || (random_key_[a] == random_key_[b] && a < b);
  }
  return a < b;
}

std::int64_t TokenCapacity::gpu_of(std::size_t pair) const {
  return static_cast<std::int64_t>(pair / k_) / info_.tokens_per_gpu;
}

std::int64_t TokenCapacity::bucket_of(std::size_t pair) const {
  const std::int64_t e = tokens_->experts[pair];
  return p_.scope == CapacityScope::kDevice ? gpu_of(pair) * static_cast<std::int64_t>(experts_) + e : e;
}

void TokenCapacity::apply(const MoeTokens& tokens, const ExpertPlacement& placement, std::span<std::int64_t> counts,
                          MoeDecisions& d) {
  tokens_ = &tokens;
  k_ = static_cast<std::size_t>(tokens.top_k);
  experts_ = counts.size();
  const std::size_t pairs = tokens.experts.size();
  state_.assign(pairs, kKept);
  held_.resize(experts_);
  runs_on_.assign(tokens.experts.begin(), tokens.experts.end());
  proposal_.assign(pairs, -1);
  if (p_.order == CapacityOrder::kRandom) {
    random_key_.resize(pairs);
    for (double& u : random_key_) u = rng_.uniform();
  }
  keep();
  if (p_.reroute) reroute(placement, d);
  std::fill(counts.begin(), counts.end(), std::int64_t{0});
  std::int64_t dropped = 0, rerouted = 0;
  double mass = 0;
  for (std::size_t i = 0; i < pairs; ++i) {
    if (state_[i] == kKept || state_[i] == kRerouted) {
      ++counts[static_cast<std::size_t>(runs_on_[i])];
      rerouted += state_[i] == kRerouted;
    } else {
      ++dropped;
      mass += tokens.scores[i];
    }
  }
  d.dropped_pairs += dropped;
  d.rerouted_pairs += rerouted;
  d.dropped_gate_mass += mass;
}

// Groups the pairs by bucket (in token order) and keeps each bucket's best C; the rest are pending.
void TokenCapacity::keep() {
  const bool device = p_.scope == CapacityScope::kDevice;
  const auto buckets = static_cast<std::size_t>(device ? info_.gpus : 1) * experts_;
  const std::int64_t cap =
      p_.capacity(device ? info_.tokens_per_gpu : info_.tokens_per_gpu * info_.gpus, info_.top_k, info_.experts);
  offsets_.assign(buckets + 1, 0);
  for (std::size_t i = 0; i < state_.size(); ++i) ++offsets_[static_cast<std::size_t>(bucket_of(i)) + 1];
  std::partial_sum(offsets_.begin(), offsets_.end(), offsets_.begin());
  members_.resize(state_.size());
  room_.assign(offsets_.begin(), offsets_.end() - 1);  // a cursor per bucket while filling
  for (std::size_t i = 0; i < state_.size(); ++i) members_[static_cast<std::size_t>(room_[static_cast<std::size_t>(bucket_of(i))]++)] = static_cast<std::int64_t>(i);
  const auto by_order = [this](std::int64_t a, std::int64_t b) { return before(static_cast<std::size_t>(a), static_cast<std::size_t>(b)); };
  for (std::size_t b = 0; b < buckets; ++b) {
    const auto first = members_.begin() + offsets_[b], last = members_.begin() + offsets_[b + 1];
    const std::int64_t n = last - first;
    room_[b] = std::max<std::int64_t>(0, cap - n);
    if (n <= cap) continue;
    std::nth_element(first, first + cap, last, by_order);
    for (auto it = first + cap; it != last; ++it) state_[static_cast<std::size_t>(*it)] = kPending;
  }
}

void TokenCapacity::reroute(const ExpertPlacement& placement, MoeDecisions& d) {
  make_targets(placement);
  pending_.clear();
  for (std::size_t i = 0; i < state_.size(); ++i)
    if (state_[i] == kPending) pending_.push_back(i);
  for (int round = 0; round < p_.rounds && !pending_.empty(); ++round) {
    for (std::size_t t = 0; t < target_room_.size(); ++t) target_open_[t] = target_room_[t] > 0;
    propose(round);
    accept();
  }
  if (p_.local) {
    d.local_pairs.assign(static_cast<std::size_t>(info_.gpus), 0);
    for (std::size_t i = 0; i < state_.size(); ++i)
      if (state_[i] == kRerouted) ++d.local_pairs[static_cast<std::size_t>(gpu_of(i))];
  }
}

// Candidates any: the capacity buckets themselves. Local: each GPU's replicas, with (scope batch) an
// expert's room shared by its replicas as its tokens are, or (scope device) the GPU's own room at the expert.
void TokenCapacity::make_targets(const ExpertPlacement& placement) {
  target_room_.clear();
  target_expert_.clear();
  if (!p_.local) {
    target_room_.assign(room_.begin(), room_.end());
    for (std::size_t b = 0; b < room_.size(); ++b) target_expert_.push_back(static_cast<std::int32_t>(b % experts_));
  } else {
    slot_base_.assign(static_cast<std::size_t>(info_.gpus) + 1, 0);
    for (std::int64_t g = 0; g < info_.gpus; ++g) {
      for (const ExpertPlacement::Slot& s : placement.slots(g)) {
        const auto e = static_cast<std::size_t>(s.expert);
        target_room_.push_back(p_.scope == CapacityScope::kDevice ? room_[static_cast<std::size_t>(g) * experts_ + e]
                                                                  : ExpertPlacement::share(s, room_[e]));
        target_expert_.push_back(s.expert);
      }
      slot_base_[static_cast<std::size_t>(g) + 1] = static_cast<std::int64_t>(target_room_.size());
    }
  }
  target_open_.assign(target_room_.size(), 0);
}

// Marks the experts the token of `pair` holds (kept, rerouted, or proposed to this round) with a new stamp.
void TokenCapacity::mark_held(std::size_t pair) {
  ++stamp_;
  const std::size_t first = pair / k_ * k_;
  for (std::size_t j = first; j < first + k_; ++j) {
    if (state_[j] == kKept || state_[j] == kRerouted) held_[static_cast<std::size_t>(runs_on_[j])] = stamp_;
    if (state_[j] == kPending && proposal_[j] >= 0)
      held_[static_cast<std::size_t>(target_expert_[static_cast<std::size_t>(proposal_[j])])] = stamp_;
  }
}

// Each pending pair proposes to its token's most preferred open target whose expert the token does not hold
// (drawn in proportion to popularity, MoeTokens::preference_uniform); a pair with no such target is dropped
// for good (rooms only shrink).
void TokenCapacity::propose(int round) {
  proposals_.clear();
  for (const std::size_t i : pending_) {
    const std::int64_t g = gpu_of(i);
    std::int64_t first = 0, last = 0;
    if (p_.local) {
      first = slot_base_[static_cast<std::size_t>(g)];
      last = slot_base_[static_cast<std::size_t>(g) + 1];
    } else {
      first = p_.scope == CapacityScope::kDevice ? g * static_cast<std::int64_t>(experts_) : 0;
      last = first + static_cast<std::int64_t>(experts_);
    }
    mark_held(i);
    candidate_weight_.clear();
    double total = 0;
    for (std::int64_t t = first; t < last; ++t) {
      const auto e = static_cast<std::size_t>(target_expert_[static_cast<std::size_t>(t)]);
      const bool open = target_open_[static_cast<std::size_t>(t)] && held_[e] != stamp_;
      total += candidate_weight_.emplace_back(open ? tokens_->popularity[e] : 0.0);
    }
    if (!(total > 0)) {
      state_[i] = kDropped;
      continue;
    }
    const auto draw = static_cast<std::uint64_t>(round) * k_ + i % k_;
    double left = tokens_->preference_uniform(static_cast<std::int64_t>(i / k_), draw) * total;
    for (std::size_t c = 0; c < candidate_weight_.size() && left > 0; ++c) {
      if (candidate_weight_[c] <= 0) continue;
      proposal_[i] = first + static_cast<std::int64_t>(c);
      left -= candidate_weight_[c];
    }
    proposals_.push_back(i);
  }
}

// Each target takes its proposals best first up to its room; the others stay pending for the next round.
void TokenCapacity::accept() {
  std::sort(proposals_.begin(), proposals_.end(), [this](std::size_t a, std::size_t b) {
    return proposal_[a] < proposal_[b] || (proposal_[a] == proposal_[b] && before(a, b));
  });
  for (const std::size_t i : proposals_) {
    const auto t = static_cast<std::size_t>(proposal_[i]);
    if (target_room_[t] > 0) {
      --target_room_[t];
      state_[i] = kRerouted;
      runs_on_[i] = target_expert_[t];
    }
    proposal_[i] = -1;
  }
  pending_.clear();
  for (const std::size_t i : proposals_)
    if (state_[i] == kPending) pending_.push_back(i);
  std::sort(pending_.begin(), pending_.end());
}

}  // namespace tailsim
