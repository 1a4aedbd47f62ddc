// `evict` on the moe workload: a slow GPU's experts go to a spare or to the GPUs left, paying the copies.
#include <doctest/doctest.h>

#include "tests/helpers.hpp"

namespace tailsim {

namespace {

// K = 8 GPUs with two experts each (the GPU's roofline cost), links fast enough to vanish, no dense part,
// GPU 7 `slow` x slow.
std::string scenario(const std::string& policies, double slow, int steps = 8) {
  const std::string slow_gpus =
      slow == 1.0 ? "" : R"(, "slow_gpus": [{"count": 1, "factor": )" + std::to_string(slow) + "}]";
  return R"({"seed": 5, "steps": )" + std::to_string(steps) + R"(,
    "cluster": {"gpus": 8, "gpu": "h100-sxm", "nvlink": {"bandwidth": "1e30B/s", "latency": "0s"},
                "nic": {"bandwidth": "1e30B/s", "latency": "0s"})" +
         slow_gpus + R"(},
    "workload": {"type": "moe", "tokens_per_gpu": 256, "routing": {"type": "generated", "preset": "uniform"},
      "model": {"name": "toy", "layers": 3, "experts": 16, "top_k": 2, "hidden": 1024, "expert_intermediate": 512}},
    "policies": )" +
         policies + "}";
}

std::vector<std::vector<SimTime>> steps_of(const std::string& doc, int steps) {
  std::vector<std::vector<SimTime>> out;
  for (const PolicyTally& t :
       test::run_first_point(load_scenario_json(Json::parse(doc), "evict.json"), steps))
    out.push_back(t.steps.values());
  return out;
}

constexpr double kExpertBytes = 3.0 * 1024 * 512 * 2;  // one toy expert's BF16 weights, one layer

}  // namespace

TEST_CASE(
    "moe evict: a spare takes the slow GPU's place at step window + drain and the step is the healthy one") {
  const std::string policies =
      R"([{"type": "none"}, {"type": "evict", "window": 2, "drain": 1, "spares": 1}])";
  const auto slow = steps_of(scenario(policies, 3.0), 8);
  const auto healthy = steps_of(scenario(R"([{"type": "none"}])", 1.0), 8);
  for (std::size_t i = 0; i < 8; ++i) {
    CAPTURE(i);
    CHECK(slow[0][i] > healthy[0][i]);
    // Window 2: flagged after step 1; drain 1: it serves step 2, the spare from step 3 on.
    if (i < 3)
      CHECK(slow[1][i] == slow[0][i]);
    else if (i == 3)
      CHECK(slow[1][i] - healthy[0][i] <= 1);  // the spare's weight loads: 1 ns on these links
    else
      CHECK(slow[1][i] == healthy[0][i]);
  }
  // The spare loads the GPU's two experts in each of the 3 MoE layers.
  const RunResults r = test::run_json(scenario(policies, 3.0));
  REQUIRE(test::record(r, "evict").moe->weights);
  CHECK(test::record(r, "evict").moe->weights->bytes_moved == doctest::Approx(2 * 3 * kExpertBytes));
  CHECK(!test::record(r, "none").moe->weights);
  CHECK(test::record(r, "evict").evicted == std::vector<Eviction>{{7, 3, true}});
}

TEST_CASE("moe evict without spares moves the slow GPU's experts to the GPUs left, paying the copies") {
  const std::string policies = R"([{"type": "none"}, {"type": "evict", "window": 2}])";
  const auto s = steps_of(scenario(policies, 3.0), 8);
  CHECK(s[1][1] == s[0][1]);
  for (std::size_t i = 2; i < 8; ++i)
    CHECK(s[1][i] < s[0][i]);  // GPUs 0 and 1 run three experts at 1x, not two at 3x
  const RunResults r = test::run_json(scenario(policies, 3.0));
  CHECK(test::record(r, "evict").moe->weights->bytes_moved == doctest::Approx(2 * 3 * kExpertBytes));
  CHECK(test::record(r, "evict").evicted == std::vector<Eviction>{{7, 2, false}});
  // A healthy cluster keeps every GPU: nothing moves.
  const RunResults healthy = test::run_json(scenario(policies, 1.0));
  CHECK(!test::record(healthy, "evict").moe->weights);
}

}  // namespace tailsim
