// The routers behind router_registry(): `generated` (a statistical model of top-k routing, calibrated
// against real OLMoE and Mixtral routing counts; see docs/routing.md) and `trace` (replay of per-layer,
// per-step expert counts from a CSV file). Exposed for tests and tools; scenarios build them by name.
#pragma once
#include <cstdint>
#include <algorithm>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/core/rng.hpp"
#include "sim/stats/sampling.hpp"
#include "sim/workload/routing.hpp"

namespace tailsim {

// One phase of the drift schedule: `steps` steps whose log-popularities take random-walk increments of
// standard deviation `volatility` (nats per step). The last phase lasts for ever.
struct RoutingPhase {
  std::int64_t steps = 1;
  double volatility = 0.0;
};

enum class SkewFamily { kZipf, kDirichlet, kLogNormal };

// Parameters of the generated router. Popularity of expert e in layer l at step t (before the 1/top_k cap):
//   p ∝ base[l][e] * exp(drift[l][e](t) + content[l][e](t))
// base: the long-run popularity; drift: a random walk across steps; content: the batch's own routing.
struct GeneratedRoutingParams {
  SkewFamily skew_family = SkewFamily::kZipf;
  // Zipf exponent s >= 0 (share of rank r ∝ r^-s), Dirichlet alpha > 0, or log-normal sigma >= 0 (nats: the
  // std of an expert's log-popularity within its group)
  double skew = 0.0;
  double layer_spread = 0.0;          // log-normal only: a layer's sigma is skew x exp(spread z - spread^2 / 2)
  int groups = 1;                     // expert groups (contiguous blocks of experts / groups), divides the experts
  double group_skew = 0.0;            // std (nats) of a group's log-popularity, shared by its experts, >= 0
  int group_limit = 0;                // groups a token's experts come from at most (DeepSeek-V3: 4); 0: no limit
  // A static popularity (layers x experts, each row's shares), replacing the skew family: SGLang's
  // expert-distribution JSON (`logical_count`), read once per scenario.
  std::shared_ptr<const std::vector<std::vector<double>>> popularity;
  double layer_correlation = 0.9;     // Spearman correlation of consecutive layers' popularities, in [0, 1]
  double batch_noise = 0.0;           // log-popularity std (nats) of one token group's routing, >= 0
  std::int64_t group_tokens = 2048;   // tokens per group that shares its routing (a document), >= 1
  std::vector<RoutingPhase> phases = {{1, 5e-4}};  // drift schedule; volatility in nats per step
  double reversion = 0.0;             // per-step pull of the drift back to 0, in [0, 1]: 0 = pure random walk
  double gate_concentration = 1.0;    // Dirichlet concentration of a token's top-k gate weights, > 0
};

// The named presets ("deepseek-v3", "deepseek-v3-decode", "mixtral", "olmoe", "uniform"); nullopt for another name.
std::optional<GeneratedRoutingParams> routing_preset(std::string_view name);
std::vector<std::string> routing_preset_names();

// The gate scores of the tokens that a router's last route() call sent to each expert, drawn on demand
// (make_gate_table below), with the router's own stream. Shared by both routers.
class GateScores {
 public:
  GateScores(const char* router, double gate_concentration, const RouterContext& context);
  void remember(std::span<const std::int64_t> counts) { std::copy(counts.begin(), counts.end(), last_counts_.begin()); }
  void draw(int expert, std::span<double> scores);  // Router::gate_scores

 private:
  const char* router_;
  double gate_concentration_;
  int top_k_;
  std::vector<std::int64_t> last_counts_;
  RngStream rng_;
  std::unique_ptr<BetaQuantileTable> table_;  // built on first use
};

// Token-level routing (Router::route_tokens), shared by both routers: the `routing/tokens` stream, built on
// a router's first route_tokens() call. A token's top_k gate weights are Dirichlet(beta), as GateScores
// models one pair's (for top_k = 1 the single weight is Beta(beta, beta), from the same table). Its
// preference past its top-k is in proportion to the layer-step's routed load: count + 1 (MoeTokens).
class TokenDraws {
 public:
  TokenDraws(double gate_concentration, const RouterContext& context);
  // Each token picks top_k distinct experts, expert e with probability top_k x shares[e] (shares sum to 1,
  // each at most 1 / top_k): randomized systematic sampling (a fresh random order of the experts per token,
  // then one uniform start), whose inclusion probabilities are exactly those. `counts` gets the tally.
  void from_shares(std::span<const double> shares, std::int64_t tokens, std::span<std::int64_t> counts,
                   MoeTokens& out);
  // As from_shares under group-limited routing (DeepSeek-V3's node-limited routing): the experts form `groups`
  // contiguous groups and each token's experts come from `limit` of them. A token picks `limit` distinct
  // groups, group g with probability p_g = min(1, c x its share S_g) (summing to limit), gives each picked
  // group its quota top_k S_g / p_g of picks (rounded to whole picks keeping the means, summing to top_k),
  // and draws them among the group's experts in proportion to their shares, all by systematic sampling. So
  // expert e is still picked with probability top_k x shares[e] (exactly, unless an expert would take more
  // than its group's quota allows), as in from_shares and the counts engine.
  void from_shares_grouped(std::span<const double> shares, int groups, int limit, std::int64_t tokens,
                           std::span<std::int64_t> counts, MoeTokens& out);
  // The pairs of `counts` (sum tokens x top_k, each at most tokens) dealt to the tokens, counts kept exactly:
  // the experts in a random order, each repeated count times, slot i to the (i mod tokens)-th token of a random
  // permutation, so an expert's tokens are a uniformly random set of its count.
  void from_counts(std::span<const std::int64_t> counts, std::int64_t tokens, MoeTokens& out);

 private:
  void start(std::int64_t tokens, MoeTokens& out);
  void draw_scores(MoeTokens& out);
  template <class T>
  void shuffle(std::span<T> v);

  RngStream rng_;
  double beta_;
  int top_k_;
  std::size_t experts_;
  std::unique_ptr<BetaQuantileTable> top1_;  // top_k = 1 only
  std::vector<std::int32_t> order_, slots_;
  std::vector<std::int64_t> perm_;
  std::vector<double> gammas_;
  // from_shares_grouped scratch: per group its share and probability; the picked groups, their experts, the
  // experts' shares and probabilities and a visiting order.
  std::vector<double> group_share_, group_p_, group_quota_, pool_share_, pool_p_;
  std::vector<std::int32_t> group_order_, group_ids_, chosen_, pool_, pool_order_;
};

class GeneratedRouter final : public Router {
 public:
  // Throws std::invalid_argument when the context is not a valid MoE shape (experts >= top_k >= 1, layers >= 1).
  GeneratedRouter(GeneratedRoutingParams params, const RouterContext& context);

  void route(std::int64_t step, int layer, std::int64_t tokens, std::span<std::int64_t> counts) override;
  void gate_scores(int expert, std::span<double> scores) override;
  void route_tokens(std::int64_t step, int layer, std::int64_t tokens, std::span<std::int64_t> counts,
                    MoeTokens& out) override;

  const GeneratedRoutingParams& params() const { return params_; }
  // The long-run popularity of each expert of `layer` (sums to 1, each share <= 1 / top_k).
  std::span<const double> base_shares(int layer) const;
  // The log-popularity std (nats) of the content noise of a batch of `tokens` tokens: batch_noise for one
  // group, shrinking as groups are averaged: sigma^2 = log(1 + (exp(batch_noise^2) - 1) min(1, group/tokens)).
  double batch_sigma(std::int64_t tokens) const;
  // The drift volatility (nats per step) that applies on entering `step`.
  double volatility_at(std::int64_t step) const;

 private:
  struct LayerState {
    bool started = false;
    std::int64_t last_step = 0;
  };
  void build_base();
  bool advance_drift(int layer, std::int64_t from, std::int64_t to, bool chained);
  double innovation_variance(std::int64_t from, std::int64_t to) const;
  void cap_shares(std::span<double> weights, double total);
  void cap_counts(std::int64_t tokens, std::span<std::int64_t> counts);

  GeneratedRoutingParams params_;
  RouterContext context_;
  std::size_t experts_;
  double latent_rho_;          // Pearson correlation of the Gaussian latents that gives layer_correlation
  double latent_fresh_;        // sqrt(1 - latent_rho_^2)
  std::vector<std::int64_t> phase_start_;
  std::vector<double> base_log_;    // layers x experts: log of base_shares
  std::vector<double> base_share_;  // layers x experts
  std::vector<double> drift_;       // layers x experts, nats
  std::vector<LayerState> state_;
  // Per-call scratch, reused (route() does not allocate).
  std::vector<double> drift_eps_, content_, normals_, weights_, spill_weights_;
  std::vector<std::uint8_t> capped_;
  std::vector<std::int64_t> spill_counts_;
  MultinomialTree tree_;
  RngStream rng_;
  GateScores gates_;
  std::unique_ptr<TokenDraws> tokens_;  // route_tokens() only
  std::vector<double> shares_;          // route_tokens() scratch
  std::int64_t prev_step_ = -1;
  int prev_layer_ = -1;
  bool prev_drifted_ = false, prev_content_ = false;
  std::int64_t sigma_tokens_ = -1;
  double sigma_cached_ = 0.0;
};

// Per-layer, per-step expert counts read from a CSV file (format in docs/routing.md):
//   step,layer,e0,e1,...,e{E-1}
//   0,0,<count>,...        one row per (step, layer): steps 0..S-1, and within a step layers 0..L-1 in order.
struct RoutingTrace {
  int layers = 0;
  int experts = 0;
  std::int64_t steps = 0;
  std::vector<std::uint32_t> counts;  // steps x layers x experts
  std::vector<std::int64_t> totals;   // steps x layers: sum of the row
};
// Reads and validates a trace against the model's shape. Errors throw InputError(path, "line N", reason).
RoutingTrace read_routing_trace(const std::string& path, int layers, int experts);
// The same from a stream; `path` is only used in error messages.
RoutingTrace parse_routing_trace(std::istream& in, const std::string& path, int layers, int experts);

class TraceRouter final : public Router {
 public:
  TraceRouter(std::shared_ptr<const RoutingTrace> trace, const RouterContext& context, double gate_concentration);
  TraceRouter(RoutingTrace trace, const RouterContext& context, double gate_concentration)
      : TraceRouter(std::make_shared<const RoutingTrace>(std::move(trace)), context, gate_concentration) {}
  // Replays step (step mod trace steps). When the row's total differs from tokens * top_k, the counts are
  // rescaled to that total by cumulative rounding (deterministic; each within 1 of the exact share), then
  // counts above `tokens` are capped and their excess spread over the experts with room.
  void route(std::int64_t step, int layer, std::int64_t tokens, std::span<std::int64_t> counts) override;
  void gate_scores(int expert, std::span<double> scores) override;
  void route_tokens(std::int64_t step, int layer, std::int64_t tokens, std::span<std::int64_t> counts,
                    MoeTokens& out) override;
  std::int64_t trace_steps() const { return trace_->steps; }

 private:
  std::shared_ptr<const RoutingTrace> trace_;  // shared by every run of a scenario
  RouterContext context_;
  GateScores gates_;
  double gate_concentration_;
  std::unique_ptr<TokenDraws> tokens_;  // route_tokens() only
};

// Gate scores shared by both routers: a token's k normalized gate weights are modelled as a symmetric
// Dirichlet(beta, ..., beta), so the score of one routed (token, expert) pair is Beta(beta, (k - 1) beta)
// (mean 1 / k). For k = 1 (renormalized weight always 1) it is Beta(beta, beta): the top-1 probability
// before renormalization, mean 1/2.
std::unique_ptr<BetaQuantileTable> make_gate_table(double gate_concentration, int top_k);

// Caps counts at `cap` and spreads the excess over the entries with room, in proportion to their room
// (cumulative rounding; deterministic). Requires cap * counts.size() >= sum(counts).
void cap_and_spread(std::int64_t cap, std::span<std::int64_t> counts);

}  // namespace tailsim
