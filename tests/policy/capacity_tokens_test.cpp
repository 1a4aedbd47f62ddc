// capacity_drop and reroute pair by pair (the tokens engine's form, sim/policy/capacity.hpp) on hand-built
// tokens, where which pairs are kept, dropped and rerouted is known exactly.
#include <doctest/doctest.h>

#include <numeric>

#include "sim/policy/policy.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

using test::moe_run_info;

// Tokens with the given experts and scores (token-major, top_k each). Preference weights make one expert
// win every comparison it enters: `favourite` gets 1e12, the others 1 (so it is each token's next-best
// expert with probability 1 - 1e-11 whenever it is a candidate).
MoeTokens make_tokens(int top_k, std::vector<std::int32_t> experts, std::vector<double> scores, int n_experts,
                      int favourite = -1) {
  MoeTokens t;
  t.top_k = top_k;
  t.tokens = static_cast<std::int64_t>(experts.size()) / top_k;
  t.experts = std::move(experts);
  t.scores = std::move(scores);
  t.popularity.assign(static_cast<std::size_t>(n_experts), 1.0);
  if (favourite >= 0) t.popularity[static_cast<std::size_t>(favourite)] = 1e12;
  t.preference_seed = 42;
  return t;
}

struct Outcome {
  std::vector<std::int64_t> counts;
  MoeDecisions d;
};

Outcome apply(const std::string& policy, const MoeRunInfo& i, const MoeTokens& tokens) {
  const auto p = make_policy(JsonReader(Json::parse(policy), "test.json", "/policy"));
  auto controller = p->moe()->make_controller(i);
  Outcome o{std::vector<std::int64_t>(static_cast<std::size_t>(i.experts), 0), {}};
  for (const std::int32_t e : tokens.experts) ++o.counts[static_cast<std::size_t>(e)];
  MoeLayer layer{0, 0, false, o.counts};
  layer.tokens = &tokens;
  controller->after_routing(layer, ExpertPlacement::blocked(i.experts, i.gpus), o.d);
  return o;
}

}  // namespace

TEST_CASE("tokens: an expert keeps its C highest-scored pairs; the dropped pairs' scores are the gate mass") {
  // 8 tokens, top-1, 2 experts, factor 1: C = 4. Expert 0 gets 6 tokens: it keeps the 4 best and drops the
  // pairs scored 0.1 and 0.2.
  const MoeTokens t = make_tokens(1, {0, 0, 0, 0, 0, 0, 1, 1}, {0.9, 0.1, 0.8, 0.2, 0.7, 0.6, 0.5, 0.5}, 2);
  const Outcome o = apply(R"({"type": "capacity_drop"})", moe_run_info(1, 2, 1, 8), t);
  CHECK(o.counts == std::vector<std::int64_t>{4, 2});
  CHECK(o.d.dropped_pairs == 2);
  CHECK(o.d.rerouted_pairs == 0);
  CHECK(o.d.dropped_gate_mass == doctest::Approx(0.1 + 0.2));
  // first keeps the first four tokens (drops those scored 0.7 and 0.6), last the last four (0.9 and 0.1 go).
  CHECK(apply(R"({"type": "capacity_drop", "order": "first"})", moe_run_info(1, 2, 1, 8), t).d.dropped_gate_mass ==
        doctest::Approx(0.7 + 0.6));
  CHECK(apply(R"({"type": "capacity_drop", "order": "last"})", moe_run_info(1, 2, 1, 8), t).d.dropped_gate_mass ==
        doctest::Approx(0.9 + 0.1));
  // random drops two of the six, whichever.
  const Outcome random = apply(R"({"type": "capacity_drop", "order": "random"})", moe_run_info(1, 2, 1, 8), t);
  CHECK(random.counts == std::vector<std::int64_t>{4, 2});
  CHECK(random.d.dropped_pairs == 2);
}

TEST_CASE("tokens: scope device caps each GPU's own pairs before the all-to-all") {
  // 2 GPUs of 4 tokens, top-1, 4 experts, factor 2: C_local = 2, the batch's C = 4. GPU 0 sends all 4 of its
  // tokens to expert 0, which keeps its 2 best of them; the batch cap would keep all 4.
  const MoeTokens t = make_tokens(1, {0, 0, 0, 0, 1, 1, 2, 3}, {0.4, 0.3, 0.2, 0.1, 0.5, 0.5, 0.5, 0.5}, 4);
  const Outcome dev = apply(R"({"type": "capacity_drop", "scope": "device", "capacity_factor": 2})", moe_run_info(2, 4, 1, 4), t);
  CHECK(dev.counts == std::vector<std::int64_t>{2, 2, 1, 1});
  CHECK(dev.d.dropped_pairs == 2);
  CHECK(dev.d.dropped_gate_mass == doctest::Approx(0.2 + 0.1));
  const Outcome batch = apply(R"({"type": "capacity_drop", "capacity_factor": 2})", moe_run_info(2, 4, 1, 4), t);
  CHECK(batch.counts == std::vector<std::int64_t>{4, 2, 1, 1});
  CHECK(batch.d.dropped_pairs == 0);
}

TEST_CASE("tokens: reroute sends an overflowed pair to its token's next-best expert with room, never one it holds") {
  // 4 tokens, top-2, 4 experts, factor 1: C = 2. Expert 0 has all 4 tokens and drops the two lowest scored
  // (tokens 1 and 3). Experts 1 and 3 have room 1, expert 2 none. Expert 3 is everyone's favourite: token 1
  // goes there, but token 3 holds it already, so its pair goes to expert 1.
  const MoeTokens t = make_tokens(2, {0, 1, 0, 2, 0, 2, 0, 3}, {0.9, 0.1, 0.3, 0.7, 0.8, 0.2, 0.4, 0.6}, 4, 3);
  const Outcome o = apply(R"({"type": "reroute"})", moe_run_info(1, 4, 2, 4), t);
  CHECK(o.d.rerouted_pairs == 2);
  CHECK(o.d.dropped_pairs == 0);
  CHECK(o.counts == std::vector<std::int64_t>{2, 2, 2, 2});
  CHECK(o.d.dropped_gate_mass == 0);
  // Token 1 picking experts 1 and 2 instead: expert 0 drops only token 3's pair, and the one expert with
  // room is expert 3, which token 3 holds: the pair is dropped however many rounds.
  MoeTokens other = t;
  other.experts[2] = 1;
  const Outcome stuck = apply(R"({"type": "reroute", "rounds": 4})", moe_run_info(1, 4, 2, 4), other);
  CHECK(stuck.d.rerouted_pairs == 0);
  CHECK(stuck.d.dropped_pairs == 1);
  CHECK(stuck.d.dropped_gate_mass == doctest::Approx(0.4));
}

TEST_CASE("tokens: a target takes proposals best first up to its room; the others try again next round") {
  // 6 tokens, top-1, 3 experts, factor 1: C = 2. Expert 1 holds one pair (room 1), expert 2 none (room 2),
  // expert 0 five: it keeps 0.8 and 0.4, and 0.3, 0.2 and 0.1 overflow. Round 1: all three propose to the
  // favourite, expert 2, which takes the two best; 0.1 waits. With one round it is dropped; a second round
  // sends it to expert 1.
  MoeTokens t = make_tokens(1, {1, 0, 0, 0, 0, 0}, {0.9, 0.4, 0.8, 0.3, 0.2, 0.1}, 3, 2);
  const Outcome one = apply(R"({"type": "reroute"})", moe_run_info(1, 3, 1, 6), t);
  CHECK(one.d.rerouted_pairs == 2);
  CHECK(one.d.dropped_pairs == 1);
  CHECK(one.d.dropped_gate_mass == doctest::Approx(0.1));
  const Outcome two = apply(R"({"type": "reroute", "rounds": 2})", moe_run_info(1, 3, 1, 6), t);
  CHECK(two.d.rerouted_pairs == 3);
  CHECK(two.d.dropped_pairs == 0);
  CHECK(two.counts == std::vector<std::int64_t>{2, 2, 2});
}

TEST_CASE("tokens: reroute to local experts stays on the token's GPU and is counted local") {
  // 2 GPUs of 2 tokens, top-1, 4 experts (GPU 0 hosts 0 and 1, GPU 1 hosts 2 and 3), factor 1: C = 1.
  // Expert 0 gets all 4 tokens, keeps token 0 (score 0.9). Token 1 (GPU 0) goes to expert 1; tokens 2 and 3
  // (GPU 1) both propose to expert 3, the favourite, which takes token 2; token 3 goes to expert 2 in the
  // second round. All stay on their GPU.
  const MoeTokens t = make_tokens(1, {0, 0, 0, 0}, {0.9, 0.5, 0.4, 0.3}, 4, 3);
  const Outcome o = apply(R"({"type": "reroute", "candidates": "local", "rounds": 2})", moe_run_info(2, 4, 1, 2), t);
  CHECK(o.counts == std::vector<std::int64_t>{1, 1, 1, 1});
  CHECK(o.d.rerouted_pairs == 3);
  REQUIRE(o.d.local_pairs.size() == 2);
  CHECK(o.d.local_pairs[0] == 1);
  CHECK(o.d.local_pairs[1] == 2);
}

TEST_CASE("tokens: the decision is a fixed function of the tokens and the seed") {
  const MoeTokens t = make_tokens(2, {0, 1, 0, 2, 0, 2, 0, 3, 1, 3, 0, 1}, {0.9, 0.1, 0.3, 0.7, 0.8, 0.2, 0.4, 0.6, 0.5, 0.5, 0.45, 0.55}, 4);
  for (const char* policy : {R"({"type": "reroute", "order": "random", "rounds": 3})", R"({"type": "reroute", "scope": "device"})"}) {
    const Outcome a = apply(policy, moe_run_info(2, 4, 2, 3), t), b = apply(policy, moe_run_info(2, 4, 2, 3), t);
    CHECK(a.counts == b.counts);
    CHECK(a.d.rerouted_pairs == b.d.rerouted_pairs);
    CHECK(a.d.dropped_gate_mass == b.d.dropped_gate_mass);
    CHECK(std::accumulate(a.counts.begin(), a.counts.end(), std::int64_t{0}) == 12 - a.d.dropped_pairs);
  }
}

}  // namespace tailsim
