// Token-to-expert routing for MoE layers: per layer and step, how many tokens each expert receives under
// top-k gating, with skew, drift across steps, similarity between consecutive layers and gate scores; or
// replayed from a trace of per-layer, per-step expert counts.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "sim/config/json_reader.hpp"
#include "sim/config/registry.hpp"
#include "sim/core/held_bytes.hpp"
#include "sim/policy/moe_tokens.hpp"

namespace tailsim {

struct RouterContext {
  int layers = 0;   // MoE layers per step
  int experts = 0;  // routed experts per layer
  int top_k = 0;    // experts each token picks (distinct)
  std::uint64_t seed = 0, replication = 0;  // for the router's own RNG streams
};

class Router {
 public:
  virtual ~Router() = default;
  // Fills counts[e] (counts.size() == experts) with the tokens routed to expert e in `layer` of `step`, for
  // `tokens` tokens each picking top_k distinct experts: sum(counts) == tokens * top_k and counts[e] <= tokens.
  // Called for steps in increasing order and, within a step, for layers 0 .. layers-1 in order.
  virtual void route(std::int64_t step, int layer, std::int64_t tokens, std::span<std::int64_t> counts) = 0;
  // Normalized top-k gate scores of the tokens that the last route() call sent to `expert` (one per token,
  // scores.size() <= counts[expert]), for policies that drop the lowest-scored tokens. Drawn on demand.
  virtual void gate_scores(int expert, std::span<double> scores) = 0;
  // The same layer-step token by token (the tokens engine): as route(), then every token's top_k distinct
  // experts and gate scores into `out`, with `counts` their tally. O(tokens x experts) for the generated
  // router (each token drawn from the layer-step's popularity), O(tokens x top_k + experts) for a trace
  // (its counts dealt to tokens, kept exactly). Token draws come from the router's `routing/tokens` stream,
  // so the route() draws, and with them drift and content noise, are those of the counts engine.
  virtual void route_tokens(std::int64_t step, int layer, std::int64_t tokens, std::span<std::int64_t> counts,
                            MoeTokens& out) = 0;
};

// A router as a scenario defines it, read once (a trace router's file is parsed here, not per run); every
// run makes its own Router from it, since routers hold per-run state (drift, RNG streams).
class RouterSource {
 public:
  virtual ~RouterSource() = default;
  // A router for one run; `context` has the shape the source was built for, and the run's seeds.
  virtual std::unique_ptr<Router> make(const RouterContext& context) const = 0;
  // The Dirichlet concentration of a token's top-k gate weights (Router::gate_scores draws from it).
  virtual double gate_concentration() const = 0;
  // The router's expert groups (contiguous blocks of experts; 1 when it has none), for placements by group.
  virtual int expert_groups() const { return 1; }
  // The groups a token's experts come from at most (group-limited routing); 0: no limit.
  virtual int group_limit() const { return 0; }
  // The first step of the routing's stable phase, the last phase of its drift schedule (the one that lasts);
  // the steps before it are its fluctuating phases. 0: no schedule, every step is stable.
  virtual std::int64_t stable_from() const { return 0; }
  // Counts what the source holds for the run (a trace's counts, shared by every point replaying the file).
  virtual void count_held(HeldBytes&) const {}
};

// Builds sources from a router object; the context gives the model's shape (its seeds are not used).
using RouterRegistry = Registry<RouterSource, const RouterContext&>;
const RouterRegistry& router_registry();
std::shared_ptr<const RouterSource> make_router_source(const JsonReader& node, const RouterContext& shape);
// make_router_source(node, context)->make(context), for a single router.
std::unique_ptr<Router> make_router(const JsonReader& node, const RouterContext& context);

}  // namespace tailsim
