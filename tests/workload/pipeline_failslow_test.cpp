// Fail-slow presets: Falcon's episodes in time units, turned into steps with the scenario's step time.
#include "sim/workload/pipeline_failslow.hpp"

#include <doctest/doctest.h>

#include "tests/helpers.hpp"

namespace tailsim {

TEST_CASE("the falcon fail-slow preset gives per-step rates and durations at the scenario's step time") {
  const Json node = Json::parse(R"({"preset": "falcon-fail-slow", "step_s": "400ms"})");
  const std::vector<FailSlowSpec> specs =
      read_fail_slow(JsonReader(node, "test.json", "/workload/fail_slow"));
  REQUIRE(specs.size() == 2);
  CHECK(!specs[0].link);
  CHECK(specs[1].link);
  CHECK(specs[0].rate_per_rank_step == doctest::Approx(0.0153 * 0.4 / 3600));
  CHECK(specs[1].rate_per_rank_step == doctest::Approx(0.117 * 0.4 / 3600));
  // Communication fail-slows are the more frequent and the longer (means 24 and 10 minutes).
  CHECK(specs[1].rate_per_rank_step > 5 * specs[0].rate_per_rank_step);
  CHECK(specs[0].steps_per_duration_unit == doctest::Approx(2.5));
  CHECK(specs[0].duration_steps->mean() == doctest::Approx(600).epsilon(1e-3));
  CHECK(specs[1].duration_steps->mean() == doctest::Approx(1440).epsilon(1e-3));
  CHECK(specs[0].factor->min_value() >= 1.1);
}

TEST_CASE("a fail-slow preset needs a step time and is not a cluster noise") {
  const std::string head = R"({"name": "f", "steps": 2, "cluster": {"gpus": 4)";
  const std::string workload =
      R"(, "workload": {"type": "pipeline", "pp": 2, "forward": {"type": "constant", "value": 0.01})";
  const std::string tail = R"(}, "policies": [{"type": "none"}]})";
  const std::string no_step =
      test::run_error(head + "}" + workload + R"(, "fail_slow": {"preset": "falcon-fail-slow"})" + tail);
  CHECK(no_step.find("/workload/fail_slow") != std::string::npos);
  CHECK(no_step.find("step_s") != std::string::npos);
  const std::string unknown =
      test::run_error(head + "}" + workload + R"(, "fail_slow": {"preset": "falcon", "step_s": 1})" + tail);
  CHECK(unknown.find("/workload/fail_slow/preset") != std::string::npos);
  CHECK(unknown.find("unknown noise preset 'falcon' (did you mean 'falcon-fail-slow'?)") != std::string::npos);
  const std::string as_noise = test::run_error(head + R"(, "noise": "falcon-fail-slow"})" + workload + tail);
  CHECK(as_noise.find("/cluster/noise: 'falcon-fail-slow' is a preset of fail-slow episodes") !=
        std::string::npos);
  CHECK(test::run_error(head + "}" + workload +
                        R"(, "fail_slow": {"preset": "falcon-fail-slow", "step_s": 0.5})" + tail) ==
        "no error");
}

}  // namespace tailsim

namespace tailsim {

namespace {

// K = 8 GPUs, 16 toy experts, H100 links; `extra` adds cluster and workload keys. Step times of the policy.
std::vector<SimTime> moe_steps(const std::string& cluster_extra, const std::string& workload_extra) {
  const Json doc = Json::parse(R"({"seed": 5, "steps": 6, "cluster": {"gpus": 8, "gpu": "h100-sxm")" + cluster_extra +
                               R"(}, "workload": {"type": "moe", "tokens_per_gpu": 256,
      "routing": {"type": "generated", "preset": "uniform"},
      "model": {"name": "toy", "layers": 3, "experts": 16, "top_k": 2, "hidden": 1024, "expert_intermediate": 512})" +
                               workload_extra + R"(}, "policies": [{"type": "none"}]})");
  return test::run_first_point(load_scenario_json(doc, "moe.json"), 6).at(0).steps.values();
}

std::string episodes(const char* kind, double rate, double factor) {
  return std::string(R"(, "fail_slow": [{"kind": ")") + kind + R"(", "rate_per_rank_step": )" + std::to_string(rate) +
         R"(, "duration_steps": {"type": "constant", "value": 1}, "factor": {"type": "constant", "value": )" +
         std::to_string(factor) + "}}]";
}

}  // namespace

TEST_CASE("moe: fail-slow episodes slow a GPU's compute or its links while they last") {
  const std::vector<SimTime> healthy = moe_steps("", "");
  // An episode on every GPU at every step, 3x compute: the cluster with every GPU 3x slow.
  CHECK(moe_steps("", episodes("compute", 1, 3)) == moe_steps(R"(, "slow_gpus": [{"count": 8, "factor": 3}])", ""));
  CHECK(moe_steps("", episodes("compute", 0, 3)) == healthy);
  const std::vector<SimTime> link = moe_steps("", episodes("link", 1, 4));
  for (std::size_t i = 0; i < healthy.size(); ++i) CHECK(link[i] > healthy[i]);
  CHECK(moe_steps("", episodes("link", 0, 4)) == healthy);
}

}  // namespace tailsim

namespace tailsim {

namespace {

// K = 16 workers at 0.1 s (normal, CV 2 %); `extra` adds workload keys. Each policy's step times.
std::vector<std::vector<SimTime>> bsp_steps(const std::string& cluster_extra, const std::string& extra,
                                            const std::string& engine = "batched") {
  const Json doc = Json::parse(R"({"seed": 4, "steps": 30, "cluster": {"gpus": 16)" + cluster_extra +
                               R"(}, "workload": {"type": "bsp", "engine": ")" + engine +
                               R"(", "compute": {"type": "normal", "mean": 0.1, "stddev": 0.002})" + extra +
                               R"(}, "policies": [{"type": "none"}, {"type": "backup", "copies": 2}]})");
  std::vector<std::vector<SimTime>> out;
  for (const PolicyTally& t : test::run_first_point(load_scenario_json(doc, "bsp.json"), 30))
    out.push_back(t.steps.values());
  return out;
}

}  // namespace

TEST_CASE("bsp: fail-slow episodes slow a worker's primary task while they last, alike on both engines") {
  // An episode on every worker at every step, 3x: the cluster with every GPU 3x slow (backups too run on
  // healthy spares in both).
  const auto all = bsp_steps("", episodes("compute", 1, 3));
  CHECK(all == bsp_steps(R"(, "slow_gpus": [{"count": 16, "factor": 3}])", ""));
  CHECK(bsp_steps("", episodes("compute", 0, 3)) == bsp_steps("", ""));
  // Random episodes: the batched and event engines meet the same ones.
  const std::string random = R"(, "fail_slow": [{"kind": "compute", "rate_per_rank_step": 0.05,
      "duration_steps": {"type": "exponential", "mean": 4}, "factor": {"type": "uniform", "min": 1.2, "max": 2}}])";
  const auto batched = bsp_steps("", random), events = bsp_steps("", random, "events");
  CHECK(batched == events);
  CHECK(batched != bsp_steps("", ""));
}

TEST_CASE("bsp refuses link fail-slows, order_statistics with fail-slows, and evict beside them") {
  const std::string head = R"({"name": "f", "steps": 2, "cluster": {"gpus": 4}, "workload": {"type": "bsp", )";
  const std::string compute = R"("compute": {"type": "constant", "value": 0.1})";
  const std::string tail = R"(}, "policies": [{"type": "none"}]})";
  CHECK(test::run_error(head + compute + episodes("link", 0.1, 2) + tail)
            .find("/workload/fail_slow: bsp workers exchange nothing but the barrier") != std::string::npos);
  CHECK(test::run_error(head + R"("engine": "order_statistics", )" + compute + episodes("compute", 0.1, 2) + tail)
            .find("/workload/engine: engine 'order_statistics' cannot run fail_slow exactly") != std::string::npos);
  const std::string evict = R"(}, "policies": [{"type": "none"}, {"type": "evict"}]})";
  CHECK(test::run_error(head + compute + episodes("compute", 0.1, 2) + evict)
            .find("/policies/1/type: evict with fail_slow on workload 'bsp' is not modelled") != std::string::npos);
  const RunResults r = test::run_json(head + compute + episodes("compute", 0.1, 2) + tail);
  CHECK(test::record(r, "none").engine == "batched");
}

}  // namespace tailsim
