// capacity_drop and reroute on hand-built counts, where the kept, dropped and rerouted pairs are known
// exactly; the capacity formula on the examples of the blog seed and the paper; the expectations they use.
#include <doctest/doctest.h>

#include <numeric>

#include "sim/policy/policy.hpp"
#include "sim/stats/capacity_math.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

MoeRunInfo info(std::int64_t gpus, int experts, int top_k, std::int64_t tokens_per_gpu) {
  MoeRunInfo i;
  i.gpus = gpus;
  i.experts = experts;
  i.top_k = top_k;
  i.moe_layers = 1;
  i.tokens_per_gpu = tokens_per_gpu;
  return i;
}

struct Outcome {
  std::vector<std::int64_t> counts;
  MoeDecisions d;
};

Outcome apply(const std::string& policy, const MoeRunInfo& i, std::vector<std::int64_t> counts,
              const ExpertPlacement& placement = {}) {
  const Json node = Json::parse(policy);
  const auto p = make_policy(JsonReader(node, "test.json", "/policy"));
  REQUIRE(p->moe() != nullptr);
  CHECK(p->bsp() == nullptr);
  auto controller = p->moe()->make_controller(i);
  Outcome o{std::move(counts), {}};
  MoeLayer layer{0, 0, false, o.counts};
  controller->after_routing(layer, placement.experts() > 0 ? placement : ExpertPlacement::blocked(i.experts, i.gpus), o.d);
  return o;
}

std::int64_t sum(const std::vector<std::int64_t>& v) { return std::accumulate(v.begin(), v.end(), std::int64_t{0}); }

}  // namespace

TEST_CASE("capacity: the blog's 100 tokens, top-1, 8 experts, factor 1.5 give C = 19 (ceil) or 18 (floor)") {
  const MoeRunInfo i = info(1, 8, 1, 100);
  const std::vector<std::int64_t> counts = {30, 20, 19, 18, 5, 4, 3, 1};
  const Outcome ceil = apply(R"({"type": "capacity_drop", "capacity_factor": 1.5})", i, counts);
  CHECK(ceil.counts == std::vector<std::int64_t>{19, 19, 19, 18, 5, 4, 3, 1});
  CHECK(ceil.d.dropped_pairs == 11 + 1);
  const Outcome floor = apply(R"({"type": "capacity_drop", "capacity_factor": 1.5, "rounding": "floor"})", i, counts);
  CHECK(floor.counts == std::vector<std::int64_t>{18, 18, 18, 18, 5, 4, 3, 1});
  CHECK(floor.d.dropped_pairs == 12 + 2 + 1);
}

TEST_CASE("capacity: Mixtral at 4,096 tokens, top-2, 8 experts, factor 1.5 keeps 1,536 pairs per expert") {
  const Outcome o = apply(R"({"type": "capacity_drop", "capacity_factor": 1.5})", info(1, 8, 2, 4096),
                          {1600, 1536, 1537, 900, 900, 900, 900, 919});
  CHECK(o.counts[0] == 1536);
  CHECK(o.counts[1] == 1536);
  CHECK(o.counts[2] == 1536);
  CHECK(o.d.dropped_pairs == 64 + 1);
}

TEST_CASE("reroute moves overflow into experts with room; what finds none is dropped") {
  // Capacity 10 (factor 1, 40 tokens, top-1, 4 experts): 6 pairs overflow; experts 2 and 3 have room 1 and
  // 5. One round sends the overflow to the next-best experts by routed load (10 : 6, so 4 and 2): expert 2
  // takes 1, expert 3 takes 2, and the 3 pairs whose next-best expert was full are dropped. A second round
  // places those 3 on expert 3.
  const MoeRunInfo i = info(1, 4, 1, 40);
  const Outcome o = apply(R"({"type": "reroute"})", i, {16, 10, 9, 5});
  CHECK(o.d.rerouted_pairs == 3);
  CHECK(o.d.dropped_pairs == 3);
  CHECK(o.counts == std::vector<std::int64_t>{10, 10, 10, 7});
  const Outcome two = apply(R"({"type": "reroute", "rounds": 2})", i, {16, 10, 9, 5});
  CHECK(two.d.rerouted_pairs == 6);
  CHECK(two.d.dropped_pairs == 0);
  CHECK(two.counts == std::vector<std::int64_t>{10, 10, 10, 10});
  // Enough room everywhere: nothing is dropped, dropped + rerouted equals the overflow.
  const Outcome all = apply(R"({"type": "reroute", "capacity_factor": 2})", i, {25, 5, 5, 5});
  CHECK(all.d.rerouted_pairs == 5);
  CHECK(all.d.dropped_pairs == 0);
  CHECK(all.counts[0] == 20);
}

TEST_CASE("reroute to local experts keeps the moved pairs on their token's GPU") {
  // 2 GPUs, 2 experts each; capacity 10 per expert; expert 0 (GPU 0) overflows by 8: 4 of those pairs sit on
  // each GPU. GPU 0's other expert has room 2, GPU 1's experts room 5 and 7 (4 move there).
  const MoeRunInfo i = info(2, 4, 1, 20);
  const Outcome o = apply(R"({"type": "reroute", "candidates": "local"})", i, {18, 8, 5, 3});
  CHECK(o.d.rerouted_pairs == 2 + 4);
  CHECK(o.d.dropped_pairs == 2);
  REQUIRE(o.d.local_pairs.size() == 2);
  CHECK(o.d.local_pairs[0] == 2);
  CHECK(o.d.local_pairs[1] == 4);
  CHECK(o.counts[1] == 10);
  CHECK(sum(o.counts) == 34 - 2);
}

TEST_CASE("device scope: each GPU caps its own share, so an expert keeps K x E[min(Binomial(n, 1/K), C)]") {
  // One GPU: the device cap is the batch cap.
  const Outcome one = apply(R"({"type": "capacity_drop", "scope": "device"})", info(1, 4, 1, 40), {16, 10, 9, 5});
  CHECK(one.counts[0] == 10);
  // 8 GPUs of 100 tokens, top-1, 8 experts, factor 1: C_local = 13. An expert with 800 pairs keeps
  // 8 E[min(Bin(800, 1/8), 13)] (the normal branch) and loses more than the batch scope would (it loses none).
  const Outcome dev = apply(R"({"type": "capacity_drop", "scope": "device"})", info(8, 8, 1, 100), {100, 100, 100, 100, 100, 100, 100, 100});
  CHECK(dev.counts[0] == std::llround(8 * expected_min_binomial(100, 1.0 / 8, 13)));
  CHECK(dev.counts[0] < 100);
  CHECK(dev.d.dropped_pairs == 8 * (100 - dev.counts[0]));
}

TEST_CASE("expected_min_binomial agrees with the exact sum on both of its branches") {
  const auto exact = [](std::int64_t n, double p, std::int64_t c) {
    double e = 0, pmf = std::pow(1 - p, static_cast<double>(n));
    for (std::int64_t x = 0; x <= n; ++x) {
      e += pmf * static_cast<double>(std::min(x, c));
      pmf *= static_cast<double>(n - x) / static_cast<double>(x + 1) * p / (1 - p);
    }
    return e;
  };
  CHECK(expected_min_binomial(100, 0.125, 13) == doctest::Approx(exact(100, 0.125, 13)).epsilon(1e-9));
  CHECK(expected_min_binomial(30, 0.5, 12) == doctest::Approx(exact(30, 0.5, 12)).epsilon(1e-9));
  CHECK(expected_min_binomial(5000, 0.1, 510) == doctest::Approx(exact(5000, 0.1, 510)).epsilon(2e-3));  // normal
  CHECK(expected_min_binomial(10, 0.5, 100) == 10);
}

TEST_CASE("the lowest-scored pairs carry n L(q) of gate mass: by order statistics of Beta draws") {
  const BetaLowerMean l(1.0, 1.0);  // uniform scores: L(q) = q^2 / 2
  CHECK(l(0.5) == doctest::Approx(0.125).epsilon(1e-4));
  for (double q : {0.001, 0.1234567, 1.0 / 3.0, 0.77777, 0.999})  // between grid points: a chord's error, h^2 / 8
    CHECK(std::abs(l(q) - q * q / 2) < 1e-8);
  CHECK(l(1.0) == doctest::Approx(0.5).epsilon(1e-6));
  const BetaLowerMean top8(1.0, 7.0);  // top-8 gate scores, mean 1/8
  CHECK(top8.mean() == doctest::Approx(0.125).epsilon(1e-4));
  CHECK(top8(0.3) < 0.3 * 0.125);  // the lowest 30 % carry less than 30 % of the mass
  // score order drops less gate mass than random order for the same pairs.
  const MoeRunInfo i = info(1, 8, 2, 4096);
  const std::vector<std::int64_t> counts = {2000, 1536, 1500, 900, 900, 900, 900, 1556};
  const Outcome score = apply(R"({"type": "capacity_drop", "capacity_factor": 1.5})", i, counts);
  const Outcome random = apply(R"({"type": "capacity_drop", "capacity_factor": 1.5, "order": "random"})", i, counts);
  CHECK(score.d.dropped_pairs == random.d.dropped_pairs);
  CHECK(random.d.dropped_gate_mass == doctest::Approx(static_cast<double>(random.d.dropped_pairs) * 0.5).epsilon(1e-3));
  CHECK(score.d.dropped_gate_mass < random.d.dropped_gate_mass);
}

TEST_CASE("capacity policies refuse bad input with the JSON path, and do not serve bsp") {
  const auto error = [](const std::string& text) {
    try {
      make_policy(JsonReader(Json::parse(text), "test.json", "/policy"));
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error(R"({"type": "capacity_drop", "capacity_factor": 0})").find("/policy/capacity_factor") != std::string::npos);
  CHECK(error(R"({"type": "reroute", "rounds": 0})").find("/policy/rounds") != std::string::npos);
  CHECK(error(R"({"type": "capacity_drop", "order": "best"})").find("/policy/order") != std::string::npos);
  CHECK(error(R"({"type": "reroute", "candidates": "near"})").find("/policy/candidates") != std::string::npos);
  const std::string file = test::write_temp("capacity_on_bsp.json",
                                            R"({"steps": 1, "cluster": {"gpus": 2, "gpu": "h100-sxm"}, "workload": {"type": "bsp", "compute": )"
                                            R"({"type": "constant", "value": 1}}, "policy": {"type": "capacity_drop"}})");
  const test::CommandResult bsp_run = test::run_cli("validate " + file);
  CHECK(bsp_run.exit_code == 2);
  const std::string bsp = bsp_run.err;
  CHECK(bsp.find("does not apply to workload 'bsp'") != std::string::npos);
}

}  // namespace tailsim
