// The batched path (draws reduced per step, "engine": "batched") and the event path (every completion
// through the event queue) must give identical results on the same draws, for every policy.
#include <doctest/doctest.h>

#include "sim/workload/bsp.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

struct Both {
  std::vector<PolicyTally> fast, events;
  std::vector<std::string> labels;
};

Both run_both(const std::string& cluster, const std::string& compute, const std::string& policies, int steps) {
  Both out;
  for (const char* engine : {"batched", "events"}) {
    const Json doc = Json::parse(R"({"steps": )" + std::to_string(steps) + R"(, "seed": 21, "cluster": )" + cluster +
                                 R"(, "workload": {"type": "bsp", "engine": ")" + engine + R"(", "compute": )" + compute +
                                 R"(}, "policies": )" + policies + "}");
    (std::string(engine) == "batched" ? out.fast : out.events) =
        test::run_first_point(load_scenario_json(doc, "paths.json"), steps, out.labels.empty() ? &out.labels : nullptr);
  }
  return out;
}

// With `exact_busy` false the fast path may report the expected busy time (iid groups), so only step
// times are compared.
void check_identical(const Both& b, bool exact_busy = true) {
  REQUIRE(b.fast.size() == b.events.size());
  for (std::size_t p = 0; p < b.fast.size(); ++p) {
    INFO("policy " << b.labels[p]);
    CHECK(b.fast[p].steps == b.events[p].steps);
    CHECK(b.fast[p].gpu_time_s == b.events[p].gpu_time_s);
    if (exact_busy) {
      CHECK(b.fast[p].busy_s == doctest::Approx(b.events[p].busy_s).epsilon(1e-12));
      CHECK(b.fast[p].extra_s == doctest::Approx(b.events[p].extra_s).epsilon(1e-12));
    }
    CHECK(b.events[p].events > b.fast[p].events);  // the event path really queued every completion
  }
}

const std::string kAllPolicies = R"([{"type": "none"}, {"type": "backup", "copies": 2}, {"type": "backup", "copies": 3, "name": "b3"},
    {"type": "backup", "quantile": 0.75, "multiplier": 1.2, "name": "spec"}, {"type": "drop_slowest", "m": 3}])";
const std::string kLognormal = R"({"type": "shifted_lognormal", "shift": 1, "mu": -0.7, "sigma": 0.9})";

}  // namespace

TEST_CASE("fast and event paths agree step by step for every bsp policy") {
  check_identical(run_both(R"({"gpus": 37, "gpu": "h100-sxm"})", kLognormal, kAllPolicies, 300));
}

TEST_CASE("fast and event paths agree with noise and persistent slow GPUs") {
  check_identical(run_both(R"({"gpus": 50, "gpu": "h100-sxm", "noise": {"type": "normal", "mean": 1, "stddev": 0.05},
                               "slow_gpus": [{"count": 2, "factor": 1.7}, {"count": 1, "factor": 3}]})",
                           kLognormal, kAllPolicies, 200));
}

TEST_CASE("fast and event paths agree step by step for evict, with spares and without") {
  // Noise and slow GPUs: ranks leave at different steps; a spare's task is the drawn one over its GPU's factor,
  // and once spares run out the ranks left share the work.
  const std::string policies = R"([{"type": "none"}, {"type": "evict", "window": 4, "spares": 1},
      {"type": "evict", "name": "shrink", "window": 3, "drain": 2}])";
  const Both b = run_both(R"({"gpus": 40, "gpu": "h100-sxm", "noise": {"type": "normal", "mean": 1, "stddev": 0.05},
                              "slow_gpus": [{"count": 2, "factor": 1.7}, {"count": 1, "factor": 3}]})",
                          R"({"type": "normal", "mean": 1, "stddev": 0.02})", policies, 60);
  check_identical(b);
  // Evictions happened: both evict policies end faster than none.
  for (std::size_t p : {1u, 2u}) CHECK(b.fast[p].steps.values().back() < b.fast[0].steps.values().back());
}

TEST_CASE("fast and event paths agree across fast-path chunk boundaries (K > 2048)") {
  const std::string policies = R"([{"type": "none"}, {"type": "backup", "copies": 2}])";
  check_identical(run_both(R"({"gpus": 4500, "gpu": "h100-sxm", "slow_gpus": [{"count": 3, "factor": 2}]})", kLognormal,
                           policies, 20),
                  false);
  check_identical(run_both(R"({"gpus": 4500, "gpu": "h100-sxm", "slow_gpus": [{"count": 3, "factor": 2}],
                               "noise": {"type": "constant", "value": 1}})",
                           kLognormal, policies, 20));
}

TEST_CASE("fast and event paths agree for a non-monotone mixture and for ties of a discrete distribution") {
  check_identical(run_both(R"({"gpus": 40, "gpu": "h100-sxm"})",
                           R"({"type": "mixture", "components": [{"weight": 0.97, "dist": {"type": "constant", "value": 1}},
                               {"weight": 0.03, "dist": {"type": "exponential", "mean": 2}}]})",
                           kAllPolicies, 200));
  check_identical(run_both(R"({"gpus": 40, "gpu": "h100-sxm"})", R"({"type": "empirical", "samples": [1, 1, 1, 2, 5]})",
                           kAllPolicies, 200));
}

TEST_CASE("reducing on raw uniforms gives the same step times as transforming every draw") {
  // Same draws; the second run's constant noise of 1 forces the per-draw path.
  auto run = [](const std::string& noise) {
    return test::run_json(R"({"seed": 4, "steps": 3000, "cluster": {"gpus": 300, "gpu": "h100-sxm",
        "slow_gpus": [{"count": 5, "factor": 1.5}] )" + noise + R"(}, "workload": {"type": "bsp", "engine": "batched", "compute": )" + kLognormal +
                          R"(}, "policies": [{"type": "none"}, {"type": "backup", "copies": 4}]})");
  };
  const RunResults keys = run("");
  const RunResults draws = run(R"(, "noise": {"type": "constant", "value": 1})");
  for (std::size_t i = 0; i < keys.records.size(); ++i) {
    CHECK(keys.records[i].step_time.mean == draws.records[i].step_time.mean);
    CHECK(keys.records[i].step_time.p99 == draws.records[i].step_time.p99);
    CHECK(keys.records[i].step_time.max == draws.records[i].step_time.max);
  }
}

TEST_CASE("backups run on spare healthy GPUs, so they rescue a persistently slow GPU") {
  const RunResults r = test::run_json(R"({"seed": 2, "steps": 200, "cluster": {"gpus": 16, "gpu": "h100-sxm",
      "slow_gpus": [{"count": 1, "factor": 3}]}, "workload": {"type": "bsp", "compute": {"type": "constant", "value": 1}},
      "policies": [{"type": "none"}, {"type": "backup", "copies": 2}, {"type": "backup", "quantile": 0.5, "multiplier": 1.5,
      "name": "spec"}]})");
  CHECK(test::record(r, "none").step_time.mean == doctest::Approx(3.0));
  CHECK(test::record(r, "backup").step_time.mean == doctest::Approx(1.0));
  CHECK(test::record(r, "spec").step_time.mean == doctest::Approx(2.5));  // launched at 1.5 x median, runs 1 s
}

TEST_CASE("speculative backups cut the tail at a modest extra-work cost") {
  const RunResults r = test::run_json(R"({"seed": 2, "steps": 5000, "cluster": {"gpus": 256, "gpu": "h100-sxm"},
      "workload": {"type": "bsp", "compute": )" + kLognormal + R"(},
      "policies": [{"type": "none"}, {"type": "backup", "quantile": 0.9, "multiplier": 1.5}]})");
  const Record& none = test::record(r, "none");
  const Record& spec = test::record(r, "backup");
  CHECK(spec.step_time.mean < 0.8 * none.step_time.mean);
  REQUIRE(spec.extra_work_fraction.has_value());
  CHECK(*spec.extra_work_fraction > 0.0);
  CHECK(*spec.extra_work_fraction < 0.2);  // backups only for the slow ~10%
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("policies share the draws: a policy's steps do not depend on which other policies run beside it") {
  // On one engine: "fast" picks order_statistics only where every policy has its form, so there a speculative
  // policy beside `none` moves the point to batched draws (tests/workload/bsp_order_statistics_test.cpp).
  auto run = [](const std::string& policies) {
    return test::run_json(R"({"seed": 8, "steps": 2000, "replications": 2, "cluster": {"gpus": 100, "gpu": "h100-sxm"},
        "workload": {"type": "bsp", "engine": "batched", "compute": {"type": "shifted_lognormal", "shift": 1, "mu": -0.7, "sigma": 0.9}},
        "policies": )" + policies + "}");
  };
  const RunResults alone = run(R"([{"type": "none"}])");
  const RunResults together = run(R"([{"type": "backup", "copies": 3}, {"type": "none"},
                                      {"type": "backup", "quantile": 0.9, "name": "spec"}, {"type": "drop_slowest", "m": 2}])");
  const StepTimeSummary& a = test::record(alone, "none").step_time;
  const StepTimeSummary& b = test::record(together, "none").step_time;
  CHECK(a.mean == b.mean);
  CHECK(a.p99 == b.p99);
  CHECK(a.max == b.max);
  // On common draws a backup's step is never slower than waiting for the same primaries.
  CHECK(test::record(together, "backup").step_time.max <= b.max);
}

}  // namespace tailsim
