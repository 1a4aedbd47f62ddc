// The `generated` router and the gate scores of both routers (the registry is in routing_sources.cpp). The model and its calibration are in docs/routing.md.
//
// Cost: route() is O(experts), independent of the token count: per call a random sign per expert (drift),
// a normal per expert (content noise), an exp per expert and experts - 1 binomial splits arranged as a
// tree (MultinomialTree, one normal each), all in buffers allocated at construction: about 4.5 us for 256
// experts (tools/bench_routing measures it).
#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <functional>
#include <numeric>
#include <stdexcept>

#include "sim/workload/routing_models.hpp"

namespace tailsim {

namespace {

void check_shape(const RouterContext& c) {
  if (c.layers < 1 || c.experts < 1 || c.top_k < 1 || c.top_k > c.experts)
    throw std::invalid_argument("router: need layers >= 1 and experts >= top_k >= 1, got layers " +
                                std::to_string(c.layers) + ", experts " + std::to_string(c.experts) + ", top_k " +
                                std::to_string(c.top_k));
}

// Scales `weights` (sum `total`) so that no share exceeds 1 / k: the experts above the cap get exactly 1 / k
// of the new total and the rest keep their proportions (water filling). `capped` is scratch of the same size.
void water_fill(std::span<double> weights, double total, int k, std::span<std::uint8_t> capped) {
  std::fill(capped.begin(), capped.end(), std::uint8_t{0});
  const double kd = k;
  double free_sum = total;
  int n_capped = 0;
  for (;;) {
    // With c experts capped at T / k each: T = free_sum / (1 - c / k).
    const double level = free_sum / (1.0 - n_capped / kd) / kd;
    bool changed = false;
    for (std::size_t e = 0; e < weights.size(); ++e) {
      if (!capped[e] && weights[e] > level) {
        capped[e] = 1;
        free_sum -= weights[e];
        ++n_capped;
        changed = true;
      }
    }
    if (!changed || n_capped >= k) {
      const double final_level = n_capped >= k ? 0.0 : free_sum / (1.0 - n_capped / kd) / kd;
      for (std::size_t e = 0; e < weights.size(); ++e)
        if (capped[e]) weights[e] = n_capped >= k ? 1.0 : final_level;
      if (n_capped >= k)  // k experts take everything: the rest get nothing
        for (std::size_t e = 0; e < weights.size(); ++e)
          if (!capped[e]) weights[e] = 0.0;
      return;
    }
  }
}

// e^x for -700 <= x <= 0 (the caller clamps: a comparison here would stop the loop vectorizing under
// the default trapping-math rules), in plain arithmetic so that the loop over experts vectorizes and the
// result is the same on every platform: x = k ln2 + r with |r| <= ln2 / 2 (Cody-Waite split of ln2), e^r
// by its Taylor polynomial of degree 11 in Estrin's form (short dependency chains), times 2^k built in the
// exponent bits. Relative error below 1e-14 against std::exp on [-700, 0].
inline double exp_nonpositive(double x) {
  constexpr double kLog2e = 1.4426950408889634, kLn2Hi = 6.93147180369123816490e-01,
                   kLn2Lo = 1.90821492927058770002e-10, kShifter = 0x1.8p52;
  const double shifted = x * kLog2e + kShifter;  // rounds x log2(e) to the nearest integer k
  const double k = shifted - kShifter;
  const std::int64_t ki = static_cast<std::int64_t>(std::bit_cast<std::uint64_t>(shifted) -
                                                    std::bit_cast<std::uint64_t>(kShifter));
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
  const double p01 = 1.0 + r, p23 = 0.5 + r * (1.0 / 6.0), p45 = 1.0 / 24.0 + r * (1.0 / 120.0),
               p67 = 1.0 / 720.0 + r * (1.0 / 5040.0), p89 = 1.0 / 40320.0 + r * (1.0 / 362880.0),
               pab = 1.0 / 3628800.0 + r * (1.0 / 39916800.0);
  const double p = (p01 + r2 * p23) + r4 * (p45 + r2 * p67) + r8 * (p89 + r2 * pab);
  return p * std::bit_cast<double>(static_cast<std::uint64_t>(ki + 1023) << 52);
}

}  // namespace

// ---- generated router ----------------------------------------------------------------------------------

GeneratedRouter::GeneratedRouter(GeneratedRoutingParams params, const RouterContext& context)
    : params_(std::move(params)),
      context_(context),
      experts_(static_cast<std::size_t>(std::max(context.experts, 1))),
      tree_(experts_),
      rng_(context.seed, "routing/counts", context.replication),
      gates_("GeneratedRouter", params_.gate_concentration, context) {
  check_shape(context);
  if (params_.groups < 1 || context.experts % params_.groups != 0)
    throw std::invalid_argument("router: groups must divide the experts, got " + std::to_string(params_.groups) +
                                " groups of " + std::to_string(context.experts) + " experts");
  if (params_.popularity && (params_.popularity->size() != static_cast<std::size_t>(context.layers) ||
                             (*params_.popularity)[0].size() != static_cast<std::size_t>(context.experts)))
    throw std::invalid_argument("router: the popularity has " + std::to_string(params_.popularity->size()) +
                                " layers of " + std::to_string((*params_.popularity)[0].size()) +
                                " experts, the model " + std::to_string(context.layers) + " MoE layers of " +
                                std::to_string(context.experts));
  if (params_.phases.empty()) params_.phases = {{1, 0.0}};
  // Spearman rho_s of a Gaussian pair with Pearson r is (6 / pi) asin(r / 2); invert it.
  latent_rho_ = 2.0 * std::sin(M_PI * std::clamp(params_.layer_correlation, 0.0, 1.0) / 6.0);
  latent_rho_ = std::min(latent_rho_, 1.0);
  latent_fresh_ = std::sqrt(std::max(0.0, 1.0 - latent_rho_ * latent_rho_));
  std::int64_t start = 0;
  for (const RoutingPhase& ph : params_.phases) {
    phase_start_.push_back(start);
    start += std::max<std::int64_t>(ph.steps, 1);
  }
  const std::size_t layers = static_cast<std::size_t>(context.layers);
  base_log_.assign(layers * experts_, 0.0);
  base_share_.assign(layers * experts_, 0.0);
  drift_.assign(layers * experts_, 0.0);
  state_.assign(layers, LayerState{});
  drift_eps_.assign(experts_, 0.0);
  content_.assign(experts_, 0.0);
  normals_.assign(experts_, 0.0);
  weights_.assign(experts_, 0.0);
  spill_weights_.assign(experts_, 0.0);
  capped_.assign(experts_, 0);
  spill_counts_.assign(experts_, 0);
  build_base();
}

// The long-run popularity: per layer, the family's sorted shares (Zipf r^-s, or a sorted Dirichlet draw)
// are given to the experts in the order of a Gaussian latent that follows an AR(1) across layers, so
// consecutive layers rank their experts alike (Spearman layer_correlation) while each layer keeps the
// family's shape. The log-normal family takes the latent itself, times the layer's sigma. With groups, each
// group's experts share a log-popularity offset (its own latent, AR(1) across layers, times group_skew). A
// static popularity (SGLang's counts) replaces all of it. The stream depends on the seed only, not on the
// sweep point or replication: the same model routes alike at every point, so points and replications
// differ by sampling, not by the model.
void GeneratedRouter::build_base() {
  RngStream rng(context_.seed, "routing/base", 0);
  const std::size_t n = experts_;
  const auto groups = static_cast<std::size_t>(std::max(params_.groups, 1));
  const bool grouped = groups > 1 && params_.group_skew > 0;
  std::vector<double> latent(n), fresh(n), sorted(n), group_latent(groups), group_fresh(groups);
  std::vector<std::size_t> order(n);
  for (int layer = 0; layer < context_.layers; ++layer) {
    double* share = &base_share_[static_cast<std::size_t>(layer) * n];
    double total = 0;  // (the rank families sum in rank order, as they always have: their shares stay bit-identical)
    if (params_.popularity) {
      const std::vector<double>& row = (*params_.popularity)[static_cast<std::size_t>(layer)];
      for (std::size_t e = 0; e < n; ++e) share[e] = std::max(row[e], 1e-300);
    } else {
      fill_standard_normal(rng, fresh);
      for (std::size_t e = 0; e < n; ++e)
        latent[e] = layer == 0 ? fresh[e] : latent_rho_ * latent[e] + latent_fresh_ * fresh[e];
      if (params_.skew_family == SkewFamily::kLogNormal) {
        const double s = params_.layer_spread;
        const double sigma = params_.skew * std::exp(s * standard_normal(rng) - s * s / 2.0);
        for (std::size_t e = 0; e < n; ++e) sorted[e] = sigma * latent[e];
        const double top = *std::max_element(sorted.begin(), sorted.end());
        for (std::size_t e = 0; e < n; ++e) share[e] = std::max(std::exp(sorted[e] - top), 1e-300);
      } else {
        if (params_.skew_family == SkewFamily::kZipf) {
          for (std::size_t r = 0; r < n; ++r) sorted[r] = std::pow(static_cast<double>(r + 1), -params_.skew);
        } else {
          symmetric_dirichlet(rng, params_.skew, sorted);
          std::sort(sorted.begin(), sorted.end(), std::greater<>());
        }
        std::iota(order.begin(), order.end(), std::size_t{0});
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
          return latent[a] > latent[b] || (latent[a] == latent[b] && a < b);
        });
        for (std::size_t r = 0; r < n; ++r) total += share[order[r]] = std::max(sorted[r], 1e-300);
      }
      if (grouped) {
        fill_standard_normal(rng, group_fresh);
        for (std::size_t g = 0; g < groups; ++g)
          group_latent[g] = layer == 0 ? group_fresh[g] : latent_rho_ * group_latent[g] + latent_fresh_ * group_fresh[g];
        const std::size_t size = n / groups;
        for (std::size_t e = 0; e < n; ++e) share[e] *= std::exp(params_.group_skew * group_latent[e / size]);
      }
    }
    if (total == 0 || grouped || params_.popularity) total = std::accumulate(share, share + n, 0.0);
    water_fill(std::span<double>(share, n), total, context_.top_k, capped_);
    total = std::accumulate(share, share + n, 0.0);
    for (std::size_t e = 0; e < n; ++e) {
      share[e] /= total;
      base_log_[static_cast<std::size_t>(layer) * n + e] = std::log(std::max(share[e], 1e-300));
    }
  }
}

std::span<const double> GeneratedRouter::base_shares(int layer) const {
  return {&base_share_[static_cast<std::size_t>(layer) * experts_], experts_};
}

double GeneratedRouter::batch_sigma(std::int64_t tokens) const {
  const double s = params_.batch_noise;
  if (s <= 0 || tokens <= 0) return 0.0;
  const double groups_share = std::min(1.0, static_cast<double>(params_.group_tokens) / static_cast<double>(tokens));
  return std::sqrt(std::log1p(std::expm1(s * s) * groups_share));
}

double GeneratedRouter::volatility_at(std::int64_t step) const {
  const auto it = std::upper_bound(phase_start_.begin(), phase_start_.end(), step);
  const std::size_t i = it == phase_start_.begin() ? 0 : static_cast<std::size_t>(it - phase_start_.begin()) - 1;
  return params_.phases[i].volatility;
}

// Variance of the drift's innovation from `from` to `to` (> from): sum over s in (from, to] of
// decay^(2 (to - s)) v(s)^2, summed in closed form over each phase's stretch.
double GeneratedRouter::innovation_variance(std::int64_t from, std::int64_t to) const {
  if (to == from + 1) {
    const double v = volatility_at(to);
    return v * v;
  }
  const double a2 = (1.0 - params_.reversion) * (1.0 - params_.reversion);
  double var = 0;
  std::int64_t s = from + 1;
  while (s <= to) {
    const auto it = std::upper_bound(phase_start_.begin(), phase_start_.end(), s);
    const std::size_t i = static_cast<std::size_t>(it - phase_start_.begin()) - 1;
    const std::int64_t end = i + 1 < phase_start_.size() ? std::min(to, phase_start_[i + 1] - 1) : to;
    const double v2 = params_.phases[i].volatility * params_.phases[i].volatility;
    const double len = static_cast<double>(end - s + 1);
    const double tail = std::pow(a2, static_cast<double>(to - end));  // decay after this stretch
    const double sum = a2 >= 1.0 ? len : (1.0 - std::pow(a2, len)) / (1.0 - a2);
    var += v2 * tail * sum;
    s = end + 1;
  }
  return var;
}

// One step of the walk moves each log-popularity by +-volatility (a simple random walk: a sign per expert,
// 64 from one raw draw; over ten steps and more it is indistinguishable from Gaussian increments, at a
// fraction of the cost). A jump over several steps takes one Gaussian increment of the summed variance.
bool GeneratedRouter::advance_drift(int layer, std::int64_t from, std::int64_t to, bool chained) {
  const std::size_t n = experts_;
  double* d = &drift_[static_cast<std::size_t>(layer) * n];
  const double decay = params_.reversion > 0 ? std::pow(1.0 - params_.reversion, static_cast<double>(to - from)) : 1.0;
  const double sd = std::sqrt(innovation_variance(from, to));
  if (!(sd > 0)) {
    if (decay != 1.0)
      for (std::size_t e = 0; e < n; ++e) d[e] *= decay;
    return false;
  }
  double* fresh = normals_.data();
  if (to - from == 1) {
    for (std::size_t e = 0; e < n; e += 64) {
      const std::uint64_t bits = rng_.next();
      const std::size_t end = std::min(n, e + 64);
      for (std::size_t j = e; j < end; ++j) fresh[j] = static_cast<double>(static_cast<int>((bits >> (j - e)) & 1) * 2 - 1);
    }
  } else {
    fill_standard_normal(rng_, normals_);
  }
  // The innovations follow the same AR(1) across layers as the latents, so drift moves neighbouring
  // layers alike.
  double* eps = drift_eps_.data();
  if (chained)
    for (std::size_t e = 0; e < n; ++e) eps[e] = latent_rho_ * eps[e] + latent_fresh_ * fresh[e];
  else
    for (std::size_t e = 0; e < n; ++e) eps[e] = fresh[e];
  for (std::size_t e = 0; e < n; ++e) d[e] = decay * d[e] + sd * eps[e];
  return true;
}

void GeneratedRouter::cap_shares(std::span<double> weights, double total) {
  water_fill(weights, total, context_.top_k, capped_);
}

// Counts above `tokens` (possible by sampling noise, as the multinomial on tokens * top_k slots does not
// know that a token picks distinct experts) go to experts with room, drawn in proportion to popularity.
void GeneratedRouter::cap_counts(std::int64_t tokens, std::span<std::int64_t> counts) {
  std::int64_t most = 0;
  for (const std::int64_t c : counts) most = std::max(most, c);
  if (most <= tokens) return;
  for (int round = 0; round < 16; ++round) {
    std::int64_t excess = 0;
    for (std::size_t e = 0; e < experts_; ++e) {
      if (counts[e] > tokens) {
        excess += counts[e] - tokens;
        counts[e] = tokens;
      }
      spill_weights_[e] = counts[e] < tokens ? weights_[e] : 0.0;
    }
    if (excess == 0) return;
    if (!(std::accumulate(spill_weights_.begin(), spill_weights_.end(), 0.0) > 0)) break;
    tree_.sample(rng_, excess, spill_weights_, spill_counts_);
    for (std::size_t e = 0; e < experts_; ++e) counts[e] += spill_counts_[e];
  }
  cap_and_spread(tokens, counts);  // deterministic finish if sampling keeps overshooting
}

void GeneratedRouter::route(std::int64_t step, int layer, std::int64_t tokens, std::span<std::int64_t> counts) {
  if (layer < 0 || layer >= context_.layers || counts.size() != experts_ || tokens < 0)
    throw std::invalid_argument("GeneratedRouter::route: layer " + std::to_string(layer) + " of " +
                                std::to_string(context_.layers) + ", counts.size() " + std::to_string(counts.size()) +
                                " for " + std::to_string(experts_) + " experts, tokens " + std::to_string(tokens));
  const std::size_t n = experts_;
  const bool chained = layer > 0 && prev_step_ == step && prev_layer_ == layer - 1;

  // 1. Drift: advance this layer's random walk to `step`.
  LayerState& st = state_[static_cast<std::size_t>(layer)];
  bool drifted = false;
  if (!st.started) {
    st.started = true;
    st.last_step = step;
  } else if (step < st.last_step) {
    throw std::logic_error("GeneratedRouter::route: step " + std::to_string(step) + " after step " +
                           std::to_string(st.last_step) + " (steps must not decrease)");
  } else if (step > st.last_step) {
    drifted = advance_drift(layer, st.last_step, step, chained && prev_drifted_);
    st.last_step = step;
  }

  // 2. Content noise of this batch, correlated with the previous layer's for the same batch.
  if (tokens != sigma_tokens_) {
    sigma_tokens_ = tokens;
    sigma_cached_ = batch_sigma(tokens);
  }
  const double sigma = sigma_cached_;
  const bool content = sigma > 0;
  if (content) {
    fill_standard_normal(rng_, normals_);
    if (chained && prev_content_)
      for (std::size_t e = 0; e < n; ++e) content_[e] = latent_rho_ * content_[e] + latent_fresh_ * normals_[e];
    else
      std::copy(normals_.begin(), normals_.end(), content_.begin());
  }

  // 3. Popularity: exp of the log-popularity, shifted by its maximum against overflow. Four partial
  // maxima and sums keep the reductions short and their order fixed.
  const double* base = &base_log_[static_cast<std::size_t>(layer) * n];
  const double* d = &drift_[static_cast<std::size_t>(layer) * n];
  double* x = weights_.data();
  if (content)
    for (std::size_t e = 0; e < n; ++e) x[e] = base[e] + d[e] + sigma * content_[e];
  else
    for (std::size_t e = 0; e < n; ++e) x[e] = base[e] + d[e];
  double top4[4] = {-HUGE_VAL, -HUGE_VAL, -HUGE_VAL, -HUGE_VAL};
  std::size_t e4 = 0;
  for (; e4 + 4 <= n; e4 += 4)
    for (std::size_t j = 0; j < 4; ++j) top4[j] = x[e4 + j] > top4[j] ? x[e4 + j] : top4[j];
  for (; e4 < n; ++e4) top4[0] = std::max(top4[0], x[e4]);
  const double top = std::max(std::max(top4[0], top4[1]), std::max(top4[2], top4[3]));
  for (std::size_t e = 0; e < n; ++e) x[e] = std::max(x[e] - top, -700.0);
  for (std::size_t e = 0; e < n; ++e) x[e] = exp_nonpositive(x[e]);
  double sum4[4] = {0, 0, 0, 0};
  e4 = 0;
  for (; e4 + 4 <= n; e4 += 4)
    for (std::size_t j = 0; j < 4; ++j) sum4[j] += x[e4 + j];
  for (; e4 < n; ++e4) sum4[0] += x[e4];
  const double total = (sum4[0] + sum4[1]) + (sum4[2] + sum4[3]);
  // The largest weight is 1: its share exceeds 1 / k exactly when the total is below k.
  if (total < static_cast<double>(context_.top_k)) cap_shares(weights_, total);

  // 4. Counts: the multinomial on tokens * top_k slots, then the cap counts[e] <= tokens.
  if (tokens == 0) {
    std::fill(counts.begin(), counts.end(), std::int64_t{0});
  } else {
    tree_.sample(rng_, tokens * context_.top_k, weights_, counts);
    cap_counts(tokens, counts);
  }
  gates_.remember(counts);
  prev_step_ = step;
  prev_layer_ = layer;
  prev_drifted_ = drifted;
  prev_content_ = content;
}

void GeneratedRouter::gate_scores(int expert, std::span<double> scores) { gates_.draw(expert, scores); }

GateScores::GateScores(const char* router, double gate_concentration, const RouterContext& context)
    : router_(router),
      gate_concentration_(gate_concentration),
      top_k_(context.top_k),
      last_counts_(static_cast<std::size_t>(std::max(context.experts, 1)), 0),
      rng_(context.seed, "routing/gate", context.replication) {}

void GateScores::draw(int expert, std::span<double> scores) {
  if (expert < 0 || static_cast<std::size_t>(expert) >= last_counts_.size() ||
      static_cast<std::int64_t>(scores.size()) > last_counts_[static_cast<std::size_t>(expert)])
    throw std::invalid_argument(std::string(router_) + "::gate_scores: expert " + std::to_string(expert) + ", " +
                                std::to_string(scores.size()) + " scores for the tokens of the last route()");
  if (!table_) table_ = make_gate_table(gate_concentration_, top_k_);
  for (double& s : scores) s = table_->from_uniform(rng_.uniform());
}

std::unique_ptr<BetaQuantileTable> make_gate_table(double gate_concentration, int top_k) {
  const double b = gate_concentration * static_cast<double>(std::max(top_k - 1, 1));
  return std::make_unique<BetaQuantileTable>(gate_concentration, b);
}

}  // namespace tailsim
