// Every token's routing in one MoE layer-step: the token-level reference path (the moe workload's
// `"engine": "tokens"`), for tests and small runs. The routers fill it (sim/workload/routing.hpp); a
// controller that can decide token by token reads it (MoeLayer::tokens), the others see only the counts.
#pragma once
#include <cstdint>
#include <vector>

#include "sim/core/rng.hpp"

namespace tailsim {

struct MoeTokens {
  std::int64_t tokens = 0;  // T over the cluster; tokens sit evenly on the GPUs in order: token t on GPU t / (T / K)
  int top_k = 0;
  std::vector<std::int32_t> experts;  // T x top_k: token t's distinct experts at [t * top_k, (t + 1) * top_k)
  std::vector<double> scores;         // T x top_k: their normalized gate weights (a token's sum to 1 for top_k > 1)
  // Per expert, > 0 where a token may prefer it: the preference weights of the experts a token did not pick.
  // The routers give the layer-step's routed load, count + 1, the weights the count-level reroute spreads by.
  std::vector<double> popularity;
  std::uint64_t preference_seed = 0;  // new every layer-step

  // A token's order over the experts it did not pick is Plackett-Luce in `popularity`: its best of any set
  // of experts is e with probability popularity[e] / (the set's total), whichever experts were set aside
  // before (the memoryless property of the exponential race behind it). So the order is drawn as needed:
  // the best of a set with this uniform, a fixed function of (seed, token, draw); a token's successive
  // choices use draws 0, 1, 2, ... No T x E table, and only a policy that looks past a token's top-k pays.
  double preference_uniform(std::int64_t token, std::uint64_t draw) const {
    std::uint64_t s = preference_seed ^ (static_cast<std::uint64_t>(token) * 0xD1B54A32D192ED03ull);
    s = splitmix64(s) ^ (draw * 0x8CB92BA72F3D8DD7ull);
    return raw_to_open_uniform(splitmix64(s));
  }
};

}  // namespace tailsim
