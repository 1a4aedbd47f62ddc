// capacity_drop and reroute on hand-built counts, where the kept, dropped and rerouted pairs are known
// exactly; the capacity formula on the examples of the blog seed and the paper; the expectations they use.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <numeric>
#include <sstream>

#include "sim/policy/policy.hpp"
#include "sim/stats/capacity_math.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

using test::moe_run_info;

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
  const MoeRunInfo i = moe_run_info(1, 8, 1, 100);
  const std::vector<std::int64_t> counts = {30, 20, 19, 18, 5, 4, 3, 1};
  const Outcome ceil = apply(R"({"type": "capacity_drop", "capacity_factor": 1.5})", i, counts);
  CHECK(ceil.counts == std::vector<std::int64_t>{19, 19, 19, 18, 5, 4, 3, 1});
  CHECK(ceil.d.dropped_pairs == 11 + 1);
  const Outcome floor = apply(R"({"type": "capacity_drop", "capacity_factor": 1.5, "rounding": "floor"})", i, counts);
  CHECK(floor.counts == std::vector<std::int64_t>{18, 18, 18, 18, 5, 4, 3, 1});
  CHECK(floor.d.dropped_pairs == 12 + 2 + 1);
}

TEST_CASE("capacity: Mixtral at 4,096 tokens, top-2, 8 experts, factor 1.5 keeps 1,536 pairs per expert") {
  const Outcome o = apply(R"({"type": "capacity_drop", "capacity_factor": 1.5})", moe_run_info(1, 8, 2, 4096),
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
  const MoeRunInfo i = moe_run_info(1, 4, 1, 40);
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
  const MoeRunInfo i = moe_run_info(2, 4, 1, 20);
  const Outcome o = apply(R"({"type": "reroute", "candidates": "local"})", i, {18, 8, 5, 3});
  CHECK(o.d.rerouted_pairs == 2 + 4);
  CHECK(o.d.dropped_pairs == 2);
  REQUIRE(o.d.local_pairs.size() == 2);
  CHECK(o.d.local_pairs[0] == 2);
  CHECK(o.d.local_pairs[1] == 4);
  CHECK(o.counts[1] == 10);
  CHECK(sum(o.counts) == 34 - 2);
}

namespace {

// P(N = x) for N ~ Hypergeometric(tokens, local, n), summed independently of the library's recurrence.
double hypergeometric_pmf(std::int64_t tokens, std::int64_t local, std::int64_t n, std::int64_t x) {
  const auto lchoose = [](double a, double b) { return std::lgamma(a + 1) - std::lgamma(b + 1) - std::lgamma(a - b + 1); };
  if (x < 0 || x > local || n - x > tokens - local) return 0.0;
  return std::exp(lchoose(static_cast<double>(local), static_cast<double>(x)) +
                  lchoose(static_cast<double>(tokens - local), static_cast<double>(n - x)) -
                  lchoose(static_cast<double>(tokens), static_cast<double>(n)));
}

double exact_kept(std::int64_t tokens, std::int64_t local, std::int64_t n, std::int64_t c) {
  double kept = 0;
  for (std::int64_t x = 0; x <= n; ++x) kept += hypergeometric_pmf(tokens, local, n, x) * static_cast<double>(std::min(x, c));
  return kept;
}

}  // namespace

TEST_CASE("device scope: each GPU caps its own tokens, so an expert keeps K x E[min(N, C)], N hypergeometric") {
  // One GPU: the device cap is the batch cap.
  const Outcome one = apply(R"({"type": "capacity_drop", "scope": "device"})", moe_run_info(1, 4, 1, 40), {16, 10, 9, 5});
  CHECK(one.counts[0] == 10);
  // 8 GPUs of 100 tokens, top-1, 8 experts, factor 1: C_local = 13. An expert's 100 pairs are 100 distinct
  // tokens of the 800, so a GPU holds N ~ Hypergeometric(800, 100, 100) of them (not Binomial(100, 1/8),
  // which ignores that the tokens are distinct: variance 10.9 instead of 9.6), and the expert keeps
  // 8 E[min(N, 13)]: it loses pairs the batch scope would keep. The expected counts are rounded cumulatively:
  // each within 1 of its expectation, the total within 1/2 of its own.
  const Outcome dev = apply(R"({"type": "capacity_drop", "scope": "device"})", moe_run_info(8, 8, 1, 100), {100, 100, 100, 100, 100, 100, 100, 100});
  const double kept = 8 * exact_kept(800, 100, 100, 13);
  CHECK(kept < 99);
  for (const std::int64_t c : dev.counts) CHECK(std::fabs(static_cast<double>(c) - kept) < 1);
  CHECK(sum(dev.counts) == std::llround(8 * kept));
  CHECK(dev.d.dropped_pairs == 800 - sum(dev.counts));
}

TEST_CASE("expected_device_share agrees with the exact hypergeometric sums on both of its branches") {
  const BetaLowerMean top8(1.0, 7.0);
  for (const auto& [tokens, local, n, c] : std::vector<std::array<std::int64_t, 4>>{
           {800, 100, 100, 13}, {512, 64, 130, 16}, {256, 32, 20, 4}, {256, 256, 40, 32}, {64, 8, 64, 3}}) {
    std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
    info_text << "tokens " << tokens << ", local " << local << ", n " << n << ", c " << c;
    INFO(info_text.str());
    double mass = 0;
    for (std::int64_t x = c + 1; x <= n; ++x)
      mass += hypergeometric_pmf(tokens, local, n, x) * top8.lowest_sum(static_cast<double>(x), static_cast<double>(x - c));
    const DeviceShare s = expected_device_share(n, tokens, local, c, &top8);
    CHECK(s.kept == doctest::Approx(exact_kept(tokens, local, n, c)).epsilon(1e-9));
    CHECK(s.dropped_mass == doctest::Approx(mass).epsilon(1e-9));
    CHECK(expected_device_share(n, tokens, local, c, nullptr).dropped_mass == 0);
  }
  // The normal branch (variance >= 50): E[min] within 0.1 %, the mass within 1 % of the exact sums.
  const std::int64_t tokens = 32768, local = 4096, n = 8192, c = 1024;
  double mass = 0;
  for (std::int64_t x = c + 1; x <= 2000; ++x)
    mass += hypergeometric_pmf(tokens, local, n, x) * top8.lowest_sum(static_cast<double>(x), static_cast<double>(x - c));
  const DeviceShare s = expected_device_share(n, tokens, local, c, &top8);
  CHECK(s.kept == doctest::Approx(exact_kept(tokens, local, n, c)).epsilon(1e-3));
  CHECK(s.dropped_mass == doctest::Approx(mass).epsilon(1e-2));
  CHECK(mass > 0.01);  // the case drops pairs (about 10 a GPU, of the lowest scores), so the check means something
}

TEST_CASE("lowest_sum: the expected sum of the lowest m of n scores, exact for uniform scores") {
  // Uniform order statistics: E[X_(i)] = i / (n + 1), so the lowest m sum to m (m + 1) / (2 (n + 1)); the
  // second-order term is exact there (L is quadratic), where n L(m / n) = m^2 / (2 n) misses by m / (2 (n + 1)).
  const BetaLowerMean uniform(1.0, 1.0);
  for (const auto& [n, m] : std::vector<std::pair<int, int>>{{16, 2}, {32, 1}, {32, 10}, {200, 150}, {5, 5}})
    CHECK(uniform.lowest_sum(n, m) == doctest::Approx(m * (m + 1.0) / (2.0 * (n + 1))).epsilon(1e-3));
  CHECK(uniform.lowest_sum(10, 0) == 0);
  // Top-8 scores, Beta(1, 7): against the exact sum of expected order statistics E[X_(i)], each by
  // numerical integration of x times the order statistic's density.
  const BetaLowerMean top8(1.0, 7.0);
  const auto order_mean = [](int n, int i) {
    const auto lchoose = [](double a, double b) { return std::lgamma(a + 1) - std::lgamma(b + 1) - std::lgamma(a - b + 1); };
    return test::simpson(
        [&](double x) {
          if (x <= 0 || x >= 1) return 0.0;
          const double f = 7 * std::pow(1 - x, 6), cdf = 1 - std::pow(1 - x, 7);
          return x * n * std::exp(lchoose(n - 1, i - 1)) * std::pow(cdf, i - 1) * std::pow(1 - cdf, n - i) * f;
        },
        0, 1, 20000);
  };
  for (const auto& [n, m] : std::vector<std::pair<int, int>>{{32, 1}, {32, 3}, {32, 10}, {32, 28}, {64, 10}}) {
    double exact = 0;
    for (int i = 1; i <= m; ++i) exact += order_mean(n, i);
    std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
    info_text << "n " << n << ", m " << m;
    INFO(info_text.str());
    CHECK(top8.lowest_sum(n, m) == doctest::Approx(exact).epsilon(0.013));
  }
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
  const MoeRunInfo i = moe_run_info(1, 8, 2, 4096);
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
  const std::string cap_decode = error(R"({"type": "capacity_drop", "cap_decode": "yes"})");
  CHECK(cap_decode.find("/policy/cap_decode") != std::string::npos);
  CHECK(cap_decode.find("yes") != std::string::npos);  // what was found
  const std::string file = test::write_temp("capacity_on_bsp.json",
                                            R"({"steps": 1, "cluster": {"gpus": 2, "gpu": "h100-sxm"}, "workload": {"type": "bsp", "compute": )"
                                            R"({"type": "constant", "value": 1}}, "policy": {"type": "capacity_drop"}})");
  const test::CommandResult bsp_run = test::run_cli("validate " + file);
  CHECK(bsp_run.exit_code == 2);
  const std::string bsp = bsp_run.err;
  CHECK(bsp.find("does not apply to workload 'bsp'") != std::string::npos);
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("a hand-built trace: dropped_fraction and rerouted_fraction are the pairs known by hand, and add up "
          "to the overflow share") {
  // 4 GPUs x 20 tokens, top-1 over 4 experts (one a GPU): every layer-step routes 50, 15, 10 and 5 pairs.
  // Factor 0.75: C = ceil(0.75 x 80 x 1 / 4) = 15, so expert 0 overflows by 35 of the 80 pairs; experts 2 and
  // 3 have room for 5 and 10 of them.
  const std::string trace = test::write_temp("capacity_trace.csv", "step,layer,e0,e1,e2,e3\n0,0,50,15,10,5\n1,0,50,15,10,5\n");
  const std::string text = R"({"seed": 1, "steps": 6,
    "cluster": {"gpus": 4, "gpu": "h100-sxm"},
    "workload": {"type": "moe", "tokens_per_gpu": 20, "routing": {"type": "trace", "file": ")" + trace + R"("},
      "model": {"name": "toy", "layers": 1, "experts": 4, "top_k": 1, "hidden": 1024, "expert_intermediate": 512}},
    "policies": [{"type": "none"}, {"type": "capacity_drop", "capacity_factor": 0.75},
                 {"type": "reroute", "capacity_factor": 0.75}]})";
  const RunResults r = test::run_json(text);
  REQUIRE(r.records.size() == 3);
  CHECK_FALSE(r.records[0].moe->routing);  // none sees no routing decisions
  const RoutingCost drop = *r.records[1].moe->routing, reroute = *r.records[2].moe->routing;
  CHECK(drop.dropped_fraction == 35.0 / 80.0);
  CHECK(drop.rerouted_fraction == 0.0);
  CHECK(reroute.rerouted_fraction == 15.0 / 80.0);  // all the room there is
  CHECK(reroute.dropped_fraction == 20.0 / 80.0);
  CHECK(reroute.dropped_fraction + reroute.rerouted_fraction == drop.dropped_fraction);  // the overflow share
}

}  // namespace tailsim
