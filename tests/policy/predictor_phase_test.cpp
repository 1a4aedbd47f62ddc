// The predictor errors `replicate` reports (sim/policy/replicate.cpp): at horizon 1 and over the re-plan
// interval, and by the routing's phase, on series whose answers are known.
#include <doctest/doctest.h>

#include <string>

#include "tests/helpers.hpp"

namespace tailsim {

namespace {

// 2 GPUs, 2 experts, top-1, `tokens` a GPU: `routing` is the router object.
std::string scenario(const std::string& policy, const std::string& routing, int steps, int tokens = 200) {
  return R"({"seed": 2, "steps": )" + std::to_string(steps) + R"(,
    "cluster": {"gpus": 2, "gpu": "h100-sxm"},
    "workload": {"type": "moe", "tokens_per_gpu": )" + std::to_string(tokens) + R"(, "routing": )" + routing + R"(,
      "model": {"name": "toy", "layers": 1, "experts": 2, "top_k": 1, "hidden": 1024, "expert_intermediate": 512}},
    "policies": [{"type": "none"}, )" + policy + "]}";
}

// A linear trend: step t gives expert 0 100 + t pairs and expert 1 300 - t (400 in all).
std::string trend(int steps) {
  std::string csv = "step,layer,e0,e1\n";
  for (int t = 0; t < steps; ++t) csv += std::to_string(t) + ",0," + std::to_string(100 + t) + "," + std::to_string(300 - t) + "\n";
  return R"({"type": "trace", "file": ")" + test::write_temp("predictor_trend.csv", csv) + R"("})";
}

}  // namespace

TEST_CASE("predictor errors on a linear trend: last lags one step at horizon 1 and (interval + 3) / 2 over it") {
  // Re-plans at steps 4, 8, 12, 16 from the history up to the step before. Horizon 1: the forecast of step s
  // is step s - 1's load, off by 1 pair on each expert: 2 / 400. Over the interval: the plan at s is checked
  // against the mean of steps s + 1 .. s + 4 (complete for s = 4, 8, 12), off by 1 + 2.5 on each: 7 / 400.
  const int steps = 20;
  const RunResults r = test::run_json(
      scenario(R"({"type": "replicate", "interval": 4, "predictor": {"type": "last"}})", trend(steps), steps));
  const MoeRecord& m = *test::record(r, "replicate").moe;
  REQUIRE(m.predictor_mape_h1);
  CHECK(*m.predictor_mape_h1 == doctest::Approx(2.0 / 400).epsilon(1e-12));
  REQUIRE(m.predictor_mape);
  CHECK(*m.predictor_mape == doctest::Approx(7.0 / 400).epsilon(1e-12));
  // A trace has no drift schedule: every step is in the stable phase.
  REQUIRE(m.predictor_mape_stable);
  CHECK(*m.predictor_mape_stable == *m.predictor_mape);
  CHECK(!m.predictor_mape_fluctuating);
  // window 2 lags by 1.5 steps at horizon 1: 3 / 400.
  const RunResults w = test::run_json(scenario(
      R"({"type": "replicate", "interval": 4, "predictor": {"type": "window", "window": 2}})", trend(steps), steps));
  CHECK(*test::record(w, "replicate").moe->predictor_mape_h1 == doctest::Approx(3.0 / 400).epsilon(1e-12));
}

TEST_CASE("predictor errors by phase: a drifting first phase is harder to forecast than the still one after it") {
  // Phases: 8 steps of strong drift, then none (and no batch noise: only the sampling noise of 40,000 tokens
  // is left). Interval
  // errors are checked at steps 8, 12, 16, 20: the first covers steps 5 .. 8 (fluctuating), the others the
  // stable phase, so the overall figure is their mix, 1 : 3.
  const std::string routing =
      R"({"type": "generated", "skew": {"lognormal": 0.5}, "batch_noise": 0,
          "phases": [{"steps": 8, "volatility": 0.5}, {"steps": 1, "volatility": 0}]})";
  const RunResults r = test::run_json(
      scenario(R"({"type": "replicate", "interval": 4, "predictor": {"type": "last"}})", routing, 24, 20000));
  const MoeRecord& m = *test::record(r, "replicate").moe;
  REQUIRE(m.predictor_mape_stable);
  REQUIRE(m.predictor_mape_fluctuating);
  CHECK(*m.predictor_mape == doctest::Approx((*m.predictor_mape_fluctuating + 3 * *m.predictor_mape_stable) / 4).epsilon(1e-12));
  CHECK(*m.predictor_mape_fluctuating > 3 * *m.predictor_mape_stable);
}

}  // namespace tailsim
