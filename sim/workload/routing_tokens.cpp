// Token-level routing (Router::route_tokens, the moe workload's tokens engine): every token's top-k experts
// and gate scores, drawn from the same layer-step as the counts engine's multinomial. Costs O(tokens x
// experts) for drawn tokens (a random order of the experts per token) and O(tokens x top_k) for dealt ones.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "sim/workload/routing_models.hpp"

namespace tailsim {

TokenDraws::TokenDraws(double gate_concentration, const RouterContext& context)
    : rng_(context.seed, "routing/tokens", context.replication),
      beta_(gate_concentration),
      top_k_(context.top_k),
      experts_(static_cast<std::size_t>(context.experts)),
      order_(experts_) {
  if (top_k_ == 1) top1_ = make_gate_table(gate_concentration, 1);
}

// Fisher-Yates with a 52-bit uniform per swap (the index's bias is below 2^-26 for a million entries).
template <class T>
void TokenDraws::shuffle(std::span<T> v) {
  for (std::size_t i = v.size(); i > 1; --i) {
    const auto j = std::min(i - 1, static_cast<std::size_t>(rng_.uniform() * static_cast<double>(i)));
    std::swap(v[i - 1], v[j]);
  }
}

namespace {

// Inclusion probabilities for n distinct draws in proportion to `weights` (n <= the count of positive weights,
// else the excess falls to none): p_i = min(1, c w_i) with sum n, the items at the cap taking 1.
void inclusion(std::span<const double> weights, int n, std::span<double> p) {
  std::fill(p.begin(), p.end(), 0.0);
  double free = std::accumulate(weights.begin(), weights.end(), 0.0);
  int capped = 0;
  double c = 0;
  for (bool changed = true; changed && capped < n && free > 0;) {
    c = (n - capped) / free;
    changed = false;
    for (std::size_t i = 0; i < weights.size(); ++i)
      if (p[i] != 1.0 && c * weights[i] >= 1.0) {
        p[i] = 1.0;
        free -= weights[i];
        ++capped;
        changed = true;
      }
  }
  if (capped >= n || !(free > 0)) c = 0;
  for (std::size_t i = 0; i < weights.size(); ++i)
    if (p[i] != 1.0) p[i] = c * weights[i];
}

// Systematic sampling: the items in `order` cover [cum_i, cum_i + p_i) of [0, n) in turn; the points u, u + 1,
// ..., u + n - 1 pick n distinct items, item i with probability p_i. Picks items[i] into out[0 .. n).
void systematic(std::span<const double> p, std::span<const std::int32_t> order, std::span<const std::int32_t> items,
                double u, int n, std::int32_t* out) {
  double cum = 0;
  int m = 0;
  for (std::size_t j = 0; j < order.size() && m < n; ++j) {
    cum += p[static_cast<std::size_t>(order[j])];
    if (cum > u + m) out[m++] = items[static_cast<std::size_t>(order[j])];
  }
  // Rounding can leave the last points just past the total: they belong to the last items of the order.
  for (std::size_t j = order.size(); m < n && j-- > 0;) {
    const std::int32_t item = items[static_cast<std::size_t>(order[j])];
    if (std::find(out, out + m, item) == out + m) out[m++] = item;
  }
}

}  // namespace

void TokenDraws::from_shares_grouped(std::span<const double> shares, int groups, int limit, std::int64_t tokens,
                                     std::span<std::int64_t> counts, MoeTokens& out) {
  start(tokens, out);
  const auto g_count = static_cast<std::size_t>(groups), size = experts_ / g_count;
  group_share_.assign(g_count, 0.0);
  for (std::size_t e = 0; e < experts_; ++e) group_share_[e / size] += shares[e];
  group_p_.resize(g_count);
  inclusion(group_share_, limit, group_p_);
  // A picked group's expected picks, top_k x its share / its probability: they sum to top_k over any set of
  // groups the sampling picks (those at probability 1, and limit - their number of the others, whose quotas
  // are equal), so every expert keeps its marginal top_k x share.
  group_quota_.resize(g_count);
  for (std::size_t g = 0; g < g_count; ++g)
    group_quota_[g] = group_p_[g] > 0 ? top_k_ * group_share_[g] / group_p_[g] : 0.0;
  group_order_.resize(g_count);
  std::iota(group_order_.begin(), group_order_.end(), 0);
  group_ids_ = group_order_;  // the groups' items are their own indices
  chosen_.resize(static_cast<std::size_t>(limit));
  pool_order_.resize(size);
  pool_.resize(size);
  pool_share_.resize(size);
  pool_p_.resize(size);
  std::fill(counts.begin(), counts.end(), std::int64_t{0});
  for (std::int64_t t = 0; t < tokens; ++t) {
    shuffle(std::span<std::int32_t>(group_order_));
    systematic(group_p_, group_order_, group_ids_, rng_.uniform(), limit, chosen_.data());
    std::int32_t* picked = &out.experts[static_cast<std::size_t>(t) * static_cast<std::size_t>(top_k_)];
    // The quotas rounded to whole picks that keep their means and sum to top_k (one uniform offset).
    const double u = rng_.uniform();
    double cum = 0;
    int m = 0;
    for (std::size_t c = 0; c < chosen_.size(); ++c) {
      const auto g = static_cast<std::size_t>(chosen_[c]);
      const double before = cum;
      cum += group_quota_[g];
      const int last = c + 1 == chosen_.size() ? top_k_ - m : static_cast<int>(std::floor(cum + u) - std::floor(before + u));
      const int n = std::clamp(last, 0, std::min(static_cast<int>(size), top_k_ - m));
      if (n == 0) continue;
      for (std::size_t i = 0; i < size; ++i) {
        pool_[i] = static_cast<std::int32_t>(g * size + i);
        pool_share_[i] = shares[g * size + i];
      }
      inclusion(pool_share_, n, pool_p_);
      std::iota(pool_order_.begin(), pool_order_.end(), 0);
      shuffle(std::span<std::int32_t>(pool_order_));
      systematic(pool_p_, pool_order_, pool_, rng_.uniform(), n, picked + m);
      m += n;
    }
    for (int j = 0; j < top_k_; ++j) ++counts[static_cast<std::size_t>(picked[j])];
  }
  for (std::size_t e = 0; e < experts_; ++e) out.popularity[e] = static_cast<double>(counts[e]) + 1.0;
  draw_scores(out);
}

void TokenDraws::start(std::int64_t tokens, MoeTokens& out) {
  out.tokens = tokens;
  out.top_k = top_k_;
  const auto pairs = static_cast<std::size_t>(tokens) * static_cast<std::size_t>(top_k_);
  out.experts.resize(pairs);
  out.scores.resize(pairs);
  out.popularity.resize(experts_);
  out.preference_seed = rng_.next();
}

void TokenDraws::from_shares(std::span<const double> shares, std::int64_t tokens, std::span<std::int64_t> counts,
                             MoeTokens& out) {
  start(tokens, out);
  const double k = top_k_;
  const double total = std::accumulate(shares.begin(), shares.end(), 0.0);
  std::iota(order_.begin(), order_.end(), 0);
  std::fill(counts.begin(), counts.end(), std::int64_t{0});
  for (std::int64_t t = 0; t < tokens; ++t) {
    std::int32_t* picked = &out.experts[static_cast<std::size_t>(t) * static_cast<std::size_t>(top_k_)];
    shuffle(std::span<std::int32_t>(order_));
    // Expert order_[i] covers [cum_i, cum_i + pi) of [0, k) with pi = k x share <= 1, so exactly one of the
    // points u, u + 1, ..., u + k - 1 falls in each unit-length stretch: k distinct experts, each picked with
    // probability pi.
    const double u = rng_.uniform();
    double cum = 0;
    int m = 0;
    for (std::size_t i = 0; i < experts_ && m < top_k_; ++i) {
      const std::int32_t e = order_[i];
      cum += k * shares[static_cast<std::size_t>(e)] / total;
      if (cum > u + m) picked[m++] = e;
    }
    // Rounding can leave the last point just past the total: it belongs to the last experts of the order.
    for (std::size_t i = experts_; m < top_k_ && i-- > 0;)
      if (std::find(picked, picked + m, order_[i]) == picked + m) picked[m++] = order_[i];
    for (int j = 0; j < top_k_; ++j) ++counts[static_cast<std::size_t>(picked[j])];
  }
  for (std::size_t e = 0; e < experts_; ++e) out.popularity[e] = static_cast<double>(counts[e]) + 1.0;
  draw_scores(out);
}

void TokenDraws::from_counts(std::span<const std::int64_t> counts, std::int64_t tokens, MoeTokens& out) {
  start(tokens, out);
  const auto k = static_cast<std::size_t>(top_k_), t = static_cast<std::size_t>(tokens);
  std::iota(order_.begin(), order_.end(), 0);
  shuffle(std::span<std::int32_t>(order_));
  slots_.clear();
  for (const std::int32_t e : order_) {
    const std::int64_t n = counts[static_cast<std::size_t>(e)];
    if (n > tokens) throw std::logic_error("TokenDraws::from_counts: an expert has more pairs than tokens");
    slots_.insert(slots_.end(), static_cast<std::size_t>(n), e);
    out.popularity[static_cast<std::size_t>(e)] = static_cast<double>(n) + 1.0;
  }
  if (slots_.size() != t * k) throw std::logic_error("TokenDraws::from_counts: counts do not sum to tokens x top_k");
  perm_.resize(t);
  std::iota(perm_.begin(), perm_.end(), std::int64_t{0});
  shuffle(std::span<std::int64_t>(perm_));
  // An expert's slots are contiguous and at most `tokens` long, so they go to distinct tokens.
  for (std::size_t i = 0; i < slots_.size(); ++i)
    out.experts[static_cast<std::size_t>(perm_[i % t]) * k + i / t] = slots_[i];
  draw_scores(out);
}

void TokenDraws::draw_scores(MoeTokens& out) {
  if (top1_) {
    for (double& s : out.scores) s = top1_->from_uniform(rng_.uniform());
    return;
  }
  const auto k = static_cast<std::size_t>(top_k_);
  for (std::size_t first = 0; first < out.scores.size(); first += k) {
    double sum = 0;
    for (std::size_t j = 0; j < k; ++j) sum += out.scores[first + j] = standard_gamma(rng_, beta_);
    for (std::size_t j = 0; j < k; ++j) out.scores[first + j] /= sum;
  }
}

void GeneratedRouter::route_tokens(std::int64_t step, int layer, std::int64_t tokens, std::span<std::int64_t> counts,
                                   MoeTokens& out) {
  route(step, layer, tokens, counts);  // this layer-step's popularity, in weights_
  if (!tokens_) tokens_ = std::make_unique<TokenDraws>(params_.gate_concentration, context_);
  shares_.resize(experts_);
  const double total = std::accumulate(weights_.begin(), weights_.end(), 0.0);
  for (std::size_t e = 0; e < experts_; ++e) shares_[e] = weights_[e] / total;
  if (params_.groups > 1 && params_.group_limit > 0)
    tokens_->from_shares_grouped(shares_, params_.groups, params_.group_limit, tokens, counts, out);
  else
    tokens_->from_shares(shares_, tokens, counts, out);
}

void TraceRouter::route_tokens(std::int64_t step, int layer, std::int64_t tokens, std::span<std::int64_t> counts,
                               MoeTokens& out) {
  route(step, layer, tokens, counts);
  if (!tokens_) tokens_ = std::make_unique<TokenDraws>(gate_concentration_, context_);
  tokens_->from_counts(counts, tokens, out);
}

}  // namespace tailsim
