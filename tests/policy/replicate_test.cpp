// The `replicate` policy (sim/policy/replicate.cpp): the oracle against EPLB applied to the drawn counts,
// weight copies and their stall, and bad input.
#include <doctest/doctest.h>

#include <numeric>
#include <string>
#include <vector>

#include "sim/policy/eplb.hpp"
#include "sim/workload/moe.hpp"
#include "sim/workload/routing_models.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

// 16 GPUs in 2 nodes, 64 experts in 8 groups, top-4; 1024 tokens a GPU. `routing` is the router object.
std::string scenario(const std::string& policies, const std::string& routing, int steps = 20,
                     const std::string& nic = "50GB/s") {
  return R"({"seed": 11, "steps": )" + std::to_string(steps) + R"(,
    "cluster": {"gpus": 16, "gpus_per_node": 8, "gpu": "h100-sxm", "nvlink": {"bandwidth": "450GB/s", "latency": "1us"},
                "nic": {"bandwidth": ")" + nic + R"(", "latency": "1us"}},
    "workload": {"type": "moe", "tokens_per_gpu": 1024, "routing": )" + routing + R"(,
      "model": {"name": "toy", "layers": 3, "experts": 64, "top_k": 4, "hidden": 2048, "expert_intermediate": 1024}},
    "policies": [{"type": "none"}, )" + policies + "]}";
}

// Stationary: no drift and no batch noise, so every step's popularity is the same; counts vary by sampling.
const std::string kStationary =
    R"({"type": "generated", "skew": {"lognormal": 0.8}, "groups": 8, "group_skew": 0.4, "batch_noise": 0,
        "phases": [{"steps": 1, "volatility": 0}]})";
const std::string kDrifting =
    R"({"type": "generated", "skew": {"lognormal": 0.8}, "groups": 8, "group_skew": 0.4, "batch_noise": 0.3,
        "phases": [{"steps": 1, "volatility": 0.05}]})";

}  // namespace

TEST_CASE("replicate with the oracle on stationary routing does what EPLB applied to the drawn counts does (5 %)") {
  const int steps = 20;
  const RunResults r = test::run_json(scenario(
      R"({"type": "replicate", "redundant_experts": 16, "interval": 5, "predictor": {"type": "oracle"}})", kStationary, steps));
  const Record& rec = test::record(r, "replicate");
  // EPLB directly: each layer-step's own counts, planned for and placed (the same router, seed and streams).
  const Json node = Json::parse(kStationary);
  const RouterContext context{3, 64, 4, 11, 0};
  auto router = make_router(JsonReader(node, "test.json", "/routing"), context);
  std::vector<std::int64_t> counts(64);
  std::vector<double> load(64);
  double direct = 0;
  for (int s = 0; s < steps; ++s)
    for (int l = 0; l < 3; ++l) {
      router->route(s, l, 16 * 1024, counts);
      std::copy(counts.begin(), counts.end(), load.begin());
      direct += placement_imbalance(plan_placement(rebalance_experts(load, 80, 8, 2, 16), 64, 16), load);
    }
  direct /= steps * 3;
  MESSAGE("replicate/oracle load_imbalance " << rec.moe->load_imbalance << ", EPLB on the drawn counts " << direct
                                             << ", none " << test::record(r, "none").moe->load_imbalance);
  CHECK(rec.moe->load_imbalance == doctest::Approx(direct).epsilon(0.05));
  CHECK(rec.moe->load_imbalance < test::record(r, "none").moe->load_imbalance);
}

TEST_CASE("replicate pays its weight copies on the links and reports the predictor's error") {
  const std::string policies =
      R"({"type": "replicate", "name": "last", "redundant_experts": 16, "interval": 4, "predictor": {"type": "last"}},
         {"type": "replicate", "name": "ema", "redundant_experts": 16, "interval": 4, "predictor": {"type": "ema", "alpha": 0.3}},
         {"type": "replicate", "name": "oracle", "redundant_experts": 16, "interval": 4, "predictor": {"type": "oracle"}})";
  const RunResults r = test::run_json(scenario(policies, kDrifting, 24));
  // An expert of the toy model: 3 x 2048 x 1024 BF16 weights.
  const double expert_bytes = 3.0 * 2048 * 1024 * 2;
  for (const char* name : {"last", "ema", "oracle"}) {
    CAPTURE(name);
    const Record& rec = test::record(r, name);
    REQUIRE(rec.moe->weights);
    const double copies = rec.moe->weights->bytes_moved / expert_bytes;
    CHECK(copies > 0);
    CHECK(copies == doctest::Approx(std::round(copies)));
    CHECK(rec.moe->weights->stall_s >= 0);
    REQUIRE(rec.moe->predictor_mape);
    CHECK(*rec.moe->predictor_mape >= 0);
  }
  CHECK(!test::record(r, "none").moe->weights);
  // The oracle sees the window's own counts: its error is only the window's sampling noise, below the
  // predictors' (which also miss the drift).
  CHECK(*test::record(r, "oracle").moe->predictor_mape < *test::record(r, "last").moe->predictor_mape);
  // A slow NIC (1 GB/s: 12 ms an expert) cannot hide the copies behind a step: a stall.
  const RunResults slow = test::run_json(scenario(
      R"({"type": "replicate", "name": "last", "redundant_experts": 16, "interval": 4, "predictor": {"type": "last"}})",
      kDrifting, 12, "1GB/s"));
  CHECK(test::record(slow, "last").moe->weights->stall_s > 0);
}

TEST_CASE("replicate's bad input names the key, what was expected and the valid choices") {
  const auto error = [](const std::string& policy) { return test::run_error(scenario(policy, kStationary, 2)); };
  const std::string negative = error(R"({"type": "replicate", "redundant_experts": -1})");
  CHECK(negative.find("/policies/1/redundant_experts") != std::string::npos);
  const std::string uneven = error(R"({"type": "replicate", "redundant_experts": 5})");
  CHECK(uneven.find("/policies/1/redundant_experts") != std::string::npos);
  CHECK(uneven.find("spread evenly") != std::string::npos);
  const std::string predictor = error(R"({"type": "replicate", "predictor": {"type": "crystal_ball"}})");
  CHECK(predictor.find("/policies/1/predictor/type") != std::string::npos);
  CHECK(predictor.find("oracle") != std::string::npos);
  const std::string placement = error(R"({"type": "replicate", "placement": "random"})");
  CHECK(placement.find("/policies/1/placement") != std::string::npos);
  CHECK(placement.find("hierarchical") != std::string::npos);
  CHECK(error(R"({"type": "replicate", "predictor": {"type": "window", "window": 0}})").find("/policies/1/predictor/window") !=
        std::string::npos);
  CHECK(error(R"({"type": "replicate", "interval": 0})").find("/policies/1/interval") != std::string::npos);
  CHECK(error(R"({"type": "replicate", "predictor": {"type": "ema", "alpha": 0}})").find("/policies/1/predictor/alpha") !=
        std::string::npos);
}

TEST_CASE("replicate: hierarchical placement needs the nodes to divide the expert groups") {
  // 2 groups over 2 nodes divide; 1 group does not.
  const std::string routing = R"({"type": "generated", "skew": {"lognormal": 0.5}, "groups": 2})";
  CHECK(test::run_error(scenario(R"({"type": "replicate", "placement": "hierarchical"})", routing, 2)) == "no error");
  const std::string odd = R"({"type": "generated", "skew": {"lognormal": 0.5}, "groups": 1})";
  const std::string e = test::run_error(scenario(R"({"type": "replicate", "placement": "hierarchical"})", odd, 2));
  CHECK(e.find("/policies/1/placement") != std::string::npos);
  CHECK(test::run_error(scenario(R"({"type": "replicate", "placement": "auto"})", odd, 2)) == "no error");
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("replicate runs DeepSeek-V3 decode on EP144 with 32 redundant experts; none is refused there") {
  // 256 experts over 144 GPUs: only a policy that places experts can run (288 slots, 2 a GPU).
  const auto decode = [](const std::string& policy) {
    return R"({"seed": 2, "steps": 3,
      "cluster": {"config": "h800-nvlink-ib400", "gpus": 144},
      "workload": {"type": "moe", "model": "deepseek-v3", "phase": "decode", "batch_per_gpu": 64, "context_length": 2048},
      "policy": )" + policy + "}";
  };
  const RunResults r = test::run_json(decode(R"({"type": "replicate", "redundant_experts": 32, "interval": 1})"));
  const Record& rec = test::record(r, "replicate");
  CHECK(rec.step_time.count == 3);
  CHECK(rec.moe->load_imbalance > 1.0);
  REQUIRE(rec.moe->weights);  // re-planned at steps 1 and 2
  CHECK(rec.moe->weights->bytes_moved > 0);
  const std::string none = test::run_error(decode(R"({"type": "none"})"));
  CHECK(none.find("/workload/model: impossible placement: 256 experts cannot be spread evenly over 144 GPUs") !=
        std::string::npos);
  CHECK(none.find("'replicate' with redundant_experts") != std::string::npos);
  const std::string uneven = test::run_error(decode(R"({"type": "replicate", "redundant_experts": 30})"));
  CHECK(uneven.find("/policy/redundant_experts") != std::string::npos);
}

}  // namespace tailsim
