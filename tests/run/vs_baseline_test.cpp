// vs_baseline on whole runs: every policy of a point runs on the same draws, so its speed-up over the
// baseline is paired step by step, and its interval is far narrower than the two means' own intervals
// would allow; exact where the two policies are one; the same with the quantile sketch and any thread count.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/helpers.hpp"

namespace tailsim {

namespace {

// OLMoE on 8 H100s with noisy GPUs (a lognormal factor of sigma 0.5 on each GPU's experts, every layer):
// the noise and the routing are shared by every policy, and dominate the variance of a step.
std::string moe_scenario(const std::string& policies, const std::string& extra = "") {
  return R"({"seed": 3, "steps": 400, "replications": 4,)" + extra + R"(
    "cluster": {"config": "h100-nvlink-ib400", "gpus": 8, "noise": {"type": "lognormal", "mu": 0, "sigma": 0.5}},
    "workload": {"type": "moe", "model": "olmoe-1b-7b", "tokens_per_gpu": 2048},
    "policies": )" + policies + "}";
}

const std::string kCapacity = R"([{"type": "none"}, {"type": "capacity_drop", "capacity_factor": 1.5}])";

RunResults run_with(const std::string& text, bool sketch, int threads) {
  const Scenario sc = load_scenario_json(Json::parse(text), "test.json");
  RunOptions options(threads);
  options.sketch_quantiles = sketch;
  return run_scenario(sc, build_all_points(sc), options);
}

// Half-width of the speed-up's interval from the two means' own (unpaired, independent) intervals.
double unpaired_half_width(const Record& base, const Record& policy) {
  const auto rel = [](const Record& r) { return (r.step_time.ci95_high - r.step_time.mean) / r.step_time.mean; };
  return base.step_time.mean / policy.step_time.mean * std::hypot(rel(base), rel(policy));
}

}  // namespace

TEST_CASE("the paired interval of a speed-up is less than a third of the unpaired one on the same run") {
  const RunResults r = test::run_json(moe_scenario(kCapacity));
  const Record &none = test::record(r, "none"), &capped = test::record(r, "capacity_drop");
  CHECK_FALSE(none.vs_baseline);
  REQUIRE(capped.vs_baseline);
  const VsBaseline& v = *capped.vs_baseline;
  CHECK(v.policy == "none");
  CHECK(v.speedup == doctest::Approx(none.step_time.mean / capped.step_time.mean).epsilon(1e-12));
  REQUIRE(v.ci95_low);
  const double paired = *v.ci95_high - v.speedup, unpaired = unpaired_half_width(none, capped);
  MESSAGE("speed-up " << v.speedup << ": paired half-width " << paired << ", unpaired " << unpaired);
  CHECK(v.speedup > 1.05);
  CHECK(*v.ci95_low < v.speedup);
  CHECK(v.speedup - *v.ci95_low == doctest::Approx(paired).epsilon(1e-9));  // symmetric (delta method)
  CHECK(paired > 0);
  CHECK(paired < unpaired / 3);
}

TEST_CASE("the paired interval covers the mean speed-up of independent runs about 95 % of the time") {
  // 200 runs of the textbook model at K = 16 that differ only in their seed; the truth is their mean, known
  // to +-0.0012.
  std::vector<VsBaseline> v;
  for (int seed = 1; seed <= 200; ++seed) {
    const RunResults r = test::run_json(R"({"seed": )" + std::to_string(seed) + R"(, "steps": 2000,
      "cluster": {"gpus": 16, "gpu": "h100-sxm"},
      "workload": {"type": "bsp", "compute": {"type": "shifted_lognormal", "shift": 1, "mu": -0.7, "sigma": 0.9}},
      "policies": [{"type": "none"}, {"type": "backup", "copies": 2}]})");
    for (const Record& rec : r.records)
      if (rec.vs_baseline) v.push_back(*rec.vs_baseline);
  }
  REQUIRE(v.size() == 200);
  double truth = 0;
  for (const VsBaseline& x : v) truth += x.speedup / 200;
  int covered = 0;
  for (const VsBaseline& x : v) covered += *x.ci95_low <= truth && truth <= *x.ci95_high ? 1 : 0;
  MESSAGE("mean speed-up " << truth << ": " << covered << " of 200 intervals cover it");
  CHECK(covered >= 180);  // 95 % of 200 is 190, with a binomial standard deviation of 3.1
  CHECK(covered <= 199);
}

TEST_CASE("a policy identical to the baseline has speed-up exactly 1 and a zero-width interval") {
  const std::string twins = R"([{"type": "none", "name": "a"}, {"type": "none", "name": "b"}])";
  const std::string bsp = R"({"seed": 1, "steps": 3000, "replications": 3, "cluster": {"gpus": 64, "gpu": "h100-sxm"},
    "workload": {"type": "bsp", "compute": {"type": "shifted_lognormal", "shift": 1, "mu": -0.7, "sigma": 0.9}},
    "policies": )" + twins + "}";
  for (const std::string& text : {bsp, moe_scenario(twins)}) {
    const RunResults r = test::run_json(text);
    const VsBaseline& v = test::record(r, "b").vs_baseline.value();
    CHECK(v.policy == "a");
    CHECK(v.speedup == 1.0);
    CHECK(v.ci95_low.value() == 1.0);
    CHECK(v.ci95_high.value() == 1.0);
  }
}

TEST_CASE("vs_baseline is the same with the quantile sketch and with any thread count") {
  const std::string text = moe_scenario(kCapacity + R"(, "sweep": {"cluster.gpus": [8, 16]})");
  const RunResults exact = run_with(text, false, 1), sketch = run_with(text, true, 3);
  REQUIRE(exact.records.size() == 4);
  for (std::size_t i = 0; i < exact.records.size(); ++i) {
    const auto &a = exact.records[i].vs_baseline, &b = sketch.records[i].vs_baseline;
    REQUIRE(a.has_value() == b.has_value());
    if (!a) continue;
    CHECK(a->speedup == b->speedup);
    CHECK(a->ci95_low == b->ci95_low);
    CHECK(a->ci95_high == b->ci95_high);
  }
}

TEST_CASE("\"baseline\" names the policy the others are compared with; an unknown label is exit 2 with the labels") {
  const RunResults r = test::run_json(moe_scenario(kCapacity, R"( "baseline": "capacity_drop",)"));
  CHECK(test::record(r, "none").vs_baseline.value().policy == "capacity_drop");
  CHECK(test::record(r, "none").vs_baseline->speedup < 1);
  CHECK_FALSE(test::record(r, "capacity_drop").vs_baseline);
  const std::string bad = test::write_temp("bad_baseline.json", moe_scenario(kCapacity, R"( "baseline": "capacity",)"));
  const test::CommandResult v = test::run_cli("validate " + bad);
  CHECK(v.exit_code == 2);
  CHECK(v.err.find("bad_baseline.json: /baseline: expected the label of one of the policies, got 'capacity' (did you "
                   "mean 'capacity_drop'?); valid: none, capacity_drop") != std::string::npos);
  const std::string number = test::write_temp("number_baseline.json", moe_scenario(kCapacity, R"( "baseline": 1,)"));
  const test::CommandResult n = test::run_cli("validate " + number);
  CHECK(n.exit_code == 2);
  CHECK(n.err.find("/baseline: expected a string") != std::string::npos);
}

}  // namespace tailsim
