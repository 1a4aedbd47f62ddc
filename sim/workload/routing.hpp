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

namespace tailsim {

struct RouterContext {
  int layers = 0;   // MoE layers per step
  int experts = 0;  // routed experts per layer
  int top_k = 0;    // experts each token picks (distinct)
  std::uint64_t seed = 0, point = 0, replication = 0;  // for the router's own RNG streams
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
};

using RouterRegistry = Registry<Router, const RouterContext&>;
const RouterRegistry& router_registry();
std::unique_ptr<Router> make_router(const JsonReader& node, const RouterContext& context);

}  // namespace tailsim
