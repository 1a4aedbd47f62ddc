// The bsp workload against exact results computed here by numerical integration. Tolerances come from
// the run's own standard error (4 standard errors: with fixed seeds the checks are deterministic, and a
// correct simulator fails them with probability below 1e-4 for any seed).
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

#include "tests/helpers.hpp"
#include "tests/workload/bsp_exact.hpp"

namespace tailsim {

namespace {

using test::density_max;
using test::exact_mean_max;
using test::exact_quantile_max;

std::string textbook(int k, int steps, const std::string& policies, int replications = 1) {
  return R"({"seed": 7, "steps": )" + std::to_string(steps) + R"(, "replications": )" + std::to_string(replications) +
         R"(, "cluster": {"gpus": )" + std::to_string(k) + R"(, "gpu": "h100-sxm"},
            "workload": {"type": "bsp", "compute": {"type": "shifted_lognormal", "shift": 1.0, "mu": -0.7, "sigma": 0.9}},
            "policies": )" + policies + "}";
}

}  // namespace

TEST_CASE("E[max] and the p99 of the barrier match the exact integrals for K = 1, 16, 256, 1024") {
  for (const int k : {1, 16, 256, 1024}) {
    const int steps = 40000;
    const RunResults r = test::run_json(textbook(k, steps, R"([{"type": "none"}])"));
    const StepTimeSummary& s = r.records.at(0).step_time;
    INFO("K = " << k);
    const double se = s.stddev / std::sqrt(steps);
    CHECK(std::fabs(s.mean - exact_mean_max(k)) < 4 * se);
    const double q = exact_quantile_max(k, 0.99);
    const double q_se = std::sqrt(0.99 * 0.01 / steps) / density_max(k, q);
    CHECK(std::fabs(s.p99 - q) < 4 * q_se);
  }
}

TEST_CASE("the exact integrals reproduce the textbook's Output 2.7.1 within its own Monte Carlo error") {
  // Output 2.7.1 (200,000 trials): E[max] 1.744, 2.100, 2.546, 3.770, 5.475, 7.775, 10.765.
  const int ks[] = {1, 2, 4, 16, 64, 256, 1024};
  const double book[] = {1.744, 2.100, 2.546, 3.770, 5.475, 7.775, 10.765};
  for (int i = 0; i < 7; ++i) {
    INFO("K = " << ks[i]);
    CHECK(std::fabs(exact_mean_max(ks[i]) - book[i]) < 0.03);
  }
  CHECK(exact_mean_max(1024) / exact_mean_max(1) == doctest::Approx(6.17).epsilon(0.01));
}

TEST_CASE("backup copies: the barrier waits for the max of K minima (survival S^c)") {
  const int k = 256, steps = 40000;
  const RunResults r = test::run_json(textbook(
      k, steps, R"([{"type": "none"}, {"type": "backup", "copies": 2}, {"type": "backup", "copies": 3, "name": "b3"}])"));
  for (const auto& [label, copies] : {std::pair<std::string, int>{"none", 1}, {"backup", 2}, {"b3", 3}}) {
    const StepTimeSummary& s = test::record(r, label).step_time;
    std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
    info_text << label;
    INFO(info_text.str());
    CHECK(std::fabs(s.mean - exact_mean_max(k, copies)) < 4 * s.stddev / std::sqrt(steps));
    const double q = exact_quantile_max(k, 0.99, copies);
    CHECK(std::fabs(s.p99 - q) < 4 * std::sqrt(0.99 * 0.01 / steps) / density_max(k, q, copies));
  }
  // Textbook Code 2.7.2 at K = 256: 7.776 -> 3.293 (its own Monte Carlo, 200,000 trials).
  CHECK(exact_mean_max(256, 2) == doctest::Approx(3.293).epsilon(0.005));
  CHECK(*test::record(r, "backup").extra_work_fraction == doctest::Approx(1.0));
  CHECK(*test::record(r, "b3").extra_work_fraction == doctest::Approx(2.0));
}

TEST_CASE("exponential workers give H_K / lambda") {
  const double rate = 4.0;
  for (const int k : {1, 10, 1000}) {
    const int steps = 40000;
    const RunResults r = test::run_json(R"({"seed": 3, "steps": 40000, "cluster": {"gpus": )" + std::to_string(k) +
                                        R"(, "gpu": "a100-sxm-80gb"}, "workload": {"type": "bsp",
                                        "compute": {"type": "exponential", "rate": 4}}, "policy": {"type": "none"}})");
    double harmonic = 0;
    for (int j = 1; j <= k; ++j) harmonic += 1.0 / j;
    const StepTimeSummary& s = r.records.at(0).step_time;
    INFO("K = " << k);
    CHECK(std::fabs(s.mean - harmonic / rate) < 4 * s.stddev / std::sqrt(steps));
  }
}

TEST_CASE("drop_slowest waits for the (K-m)-th order statistic: for exponentials sum of 1/(K-i) / lambda") {
  const int k = 64, m = 4, steps = 40000;
  const RunResults r = test::run_json(R"({"seed": 5, "steps": 40000, "cluster": {"gpus": 64, "gpu": "h100-sxm"},
      "workload": {"type": "bsp", "compute": {"type": "exponential", "rate": 1}},
      "policies": [{"type": "none"}, {"type": "drop_slowest", "m": 4}]})");
  double expected = 0;
  for (int i = 0; i < k - m; ++i) expected += 1.0 / (k - i);
  const StepTimeSummary& s = test::record(r, "drop_slowest").step_time;
  CHECK(std::fabs(s.mean - expected) < 4 * s.stddev / std::sqrt(steps));
  CHECK(s.mean < test::record(r, "none").step_time.mean);
}

TEST_CASE("idle fraction: the known-mean estimator and the per-draw sum agree within their errors") {
  // A constant noise of 1 forces per-draw times without changing any draw (of the batched engine).
  const std::string base = R"({"seed": 9, "steps": 20000, "cluster": {"gpus": 64, "gpu": "h100-sxm" NOISE},
      "workload": {"type": "bsp", "engine": "batched", "compute": {"type": "shifted_lognormal", "shift": 1, "mu": -0.7, "sigma": 0.9}},
      "policies": [{"type": "none"}, {"type": "backup", "copies": 2}]})";
  auto with = [&](const std::string& noise) {
    std::string s = base;
    s.replace(s.find("NOISE"), 5, noise);
    return test::run_json(s);
  };
  const RunResults estimated = with("");
  const RunResults exact = with(R"(, "noise": {"type": "constant", "value": 1})");
  for (const char* p : {"none", "backup"}) {
    INFO(p);
    CHECK(test::record(estimated, p).step_time.mean == test::record(exact, p).step_time.mean);
    // Exact idle: 1 - E[T] / E[max]; both estimates sit within 0.5% of each other at 20,000 steps.
    CHECK(test::record(estimated, p).idle_fraction == doctest::Approx(test::record(exact, p).idle_fraction).epsilon(0.005));
  }
  const double idle = test::record(exact, "none").idle_fraction;
  CHECK(idle == doctest::Approx(1.0 - (1.0 + std::exp(-0.7 + 0.405)) / exact_mean_max(64)).epsilon(0.01));
}

TEST_CASE("the textbook's deterministic skew: 63 workers at 100 ms, one at 250 ms") {
  const RunResults r = test::run_json(R"({"steps": 10, "cluster": {"gpus": 64, "gpu": "h100-sxm",
      "slow_gpus": [{"count": 1, "factor": 2.5}]},
      "workload": {"type": "bsp", "compute": {"type": "constant", "value": 0.1}}, "policy": {"type": "none"}})");
  const Record& rec = r.records.at(0);
  CHECK(rec.step_time.mean == doctest::Approx(0.25));
  CHECK(rec.step_time.max == doctest::Approx(0.25));
  // Idle worker-time per step: 63 x 150 ms = 9.45 s; wasted fraction 9.45 / (64 x 0.25) = 59%.
  CHECK(rec.idle_fraction * 64 * 0.25 == doctest::Approx(9.45));
  CHECK(rec.idle_fraction == doctest::Approx(0.590625));
}

TEST_CASE("replications split the steps and change the draws but not the distribution") {
  const RunResults one = test::run_json(textbook(64, 40000, R"([{"type": "none"}])", 1));
  const RunResults four = test::run_json(textbook(64, 40000, R"([{"type": "none"}])", 4));
  const StepTimeSummary& a = one.records.at(0).step_time;
  const StepTimeSummary& b = four.records.at(0).step_time;
  CHECK(b.count == 40000);
  CHECK(a.mean != b.mean);
  CHECK(std::fabs(a.mean - b.mean) < 4 * std::sqrt(2.0) * a.stddev / std::sqrt(40000));
}

}  // namespace tailsim
