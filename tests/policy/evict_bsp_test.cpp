// `evict` on the bsp workload: exact departures, spares or shared work, and both engines alike.
#include <doctest/doctest.h>

#include "sim/workload/bsp.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

// K = 8 workers at 0.1 s, the last one 2x slow; `policy` is an evict object. Each policy's step times, in s.
std::vector<std::vector<double>> bsp_steps(const std::string& engine, const std::string& policy,
                                           int steps = 10) {
  const Json doc =
      Json::parse(R"({"seed": 3, "steps": 10, "cluster": {"gpus": 8, "slow_gpus": [{"count": 1, "factor": 2}]},
    "workload": {"type": "bsp", "engine": ")" +
                  engine + R"(", "compute": {"type": "constant", "value": 0.1}},
    "policies": [{"type": "none"}, )" +
                  policy + "]}");
  std::vector<std::vector<double>> out;
  for (const PolicyTally& t : test::run_first_point(load_scenario_json(doc, "evict.json"), steps)) {
    out.emplace_back();
    for (const SimTime s : t.steps.values()) out.back().push_back(ns_to_seconds(s));
  }
  return out;
}

}  // namespace

TEST_CASE(
    "bsp evict: a worker 2x slow leaves at step window + drain and a spare brings back the healthy step") {
  for (const char* engine : {"batched", "events"}) {
    CAPTURE(engine);
    const auto s = bsp_steps(engine, R"({"type": "evict", "window": 3, "drain": 2, "spares": 1})");
    for (int i = 0; i < 10; ++i) {
      CAPTURE(i);
      CHECK(s[0][static_cast<std::size_t>(i)] == 0.2);
      // Window 3: flagged after step 2; drain 2: serves steps 3 and 4, then the spare from step 5 = 3 + 2.
      CHECK(s[1][static_cast<std::size_t>(i)] == (i < 5 ? 0.2 : 0.1));
    }
  }
  // The results name the rank and the first step without it.
  const RunResults r =
      test::run_json(R"({"steps": 10, "cluster": {"gpus": 8, "slow_gpus": [{"count": 1, "factor": 2}]},
    "workload": {"type": "bsp", "compute": {"type": "constant", "value": 0.1}},
    "policies": [{"type": "none"}, {"type": "evict", "window": 3, "drain": 2, "spares": 1}]})");
  CHECK(test::record(r, "evict").evicted == std::vector<Eviction>{{7, 5, true}});
  CHECK_FALSE(test::record(r, "none").evicted);
}

TEST_CASE("bsp evict without spares: the K - 1 workers left share the work, each task K / (K - 1) longer") {
  for (const char* engine : {"batched", "events"}) {
    CAPTURE(engine);
    const auto s = bsp_steps(engine, R"({"type": "evict", "window": 2})", 6);
    CHECK(s[1][1] == 0.2);
    CHECK(s[1][2] == doctest::Approx(0.1 * 8 / 7).epsilon(1e-9));
    CHECK(s[1][5] == s[1][2]);
  }
}

TEST_CASE("bsp evict: a 1.2x slow worker scores 0.83 and stays at threshold 0.75") {
  const Json doc =
      Json::parse(R"({"seed": 3, "steps": 10, "cluster": {"gpus": 8, "slow_gpus": [{"count": 1, "factor": 1.2}]},
    "workload": {"type": "bsp", "compute": {"type": "constant", "value": 0.1}},
    "policies": [{"type": "evict", "window": 2}]})");
  for (const PolicyTally& t : test::run_first_point(load_scenario_json(doc, "evict.json"), 6))
    for (const SimTime s : t.steps.values()) CHECK(ns_to_seconds(s) == doctest::Approx(0.12));
}

TEST_CASE("bsp evict runs on batched draws under engine fast and is refused by engine order_statistics") {
  const std::string head =
      R"({"name": "e", "steps": 4, "cluster": {"gpus": 8}, "workload": {"type": "bsp", )";
  const std::string tail =
      R"("compute": {"type": "constant", "value": 0.1}}, "policies": [{"type": "evict"}]})";
  const RunResults r = test::run_json(head + tail);
  CHECK(test::record(r, "evict").engine == "batched");
  const std::string error = test::run_error(head + R"("engine": "order_statistics", )" + tail);
  CHECK(error.find("/workload/engine") != std::string::npos);
  CHECK(error.find(
            "engine 'order_statistics' cannot run policy 'evict' exactly: evict changes each rank's law") !=
        std::string::npos);
}

TEST_CASE("bad evict parameters on bsp and moe fail with their JSON path") {
  const std::string bsp = R"({"name": "e", "steps": 2, "cluster": {"gpus": 4}, "workload": {"type": "bsp",
    "compute": {"type": "constant", "value": 0.01}}, "policies": [{"type": "none"}, {"type": "evict", )";
  const std::string moe =
      R"({"name": "e", "steps": 2, "cluster": {"gpus": 4, "gpu": "h100-sxm"}, "workload": {"type": "moe",
    "tokens_per_gpu": 64, "routing": {"type": "generated", "preset": "uniform"},
    "model": {"name": "toy", "layers": 1, "experts": 8, "top_k": 2, "hidden": 256, "expert_intermediate": 128}},
    "policies": [{"type": "none"}, {"type": "evict", )";
  for (const std::string& head : {bsp, moe}) {
    CHECK(test::run_error(head + R"("window": 0}]})").find("/policies/1/window: expected an integer >= 1") !=
          std::string::npos);
    CHECK(test::run_error(head + R"("threshold": 0}]})").find("/policies/1/threshold") != std::string::npos);
    CHECK(test::run_error(head + R"("threshold": 1.5}]})").find("/policies/1/threshold") !=
          std::string::npos);
    CHECK(test::run_error(head + R"("spares": -1}]})").find("/policies/1/spares: expected an integer >= 0") !=
          std::string::npos);
    CHECK(test::run_error(head + R"("threshold": 1, "spares": 2}]})") == "no error");
  }
}

}  // namespace tailsim
