// The order_statistics engine of the bsp workload: exact in law. Its means and p99 against the exact
// integrals (tests/workload/bsp_exact.hpp) up to K = 10^9, its step times against the batched engine's in
// distribution (two-sample Kolmogorov-Smirnov) for every policy it serves, its coupling of the policies,
// and its refusals. Tolerances: 4 standard errors, or the KS critical value at alpha = 10^-4.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "sim/stats/order_statistics.hpp"
#include "sim/workload/bsp.hpp"
#include "tests/helpers.hpp"
#include "tests/workload/bsp_exact.hpp"

namespace tailsim {

namespace {

const std::string kLognormal = R"({"type": "shifted_lognormal", "shift": 1.0, "mu": -0.7, "sigma": 0.9})";

std::string scenario(const std::string& engine, const std::string& cluster, const std::string& compute,
                     const std::string& policies, std::int64_t steps, int seed = 7) {
  return R"({"seed": )" + std::to_string(seed) + R"(, "steps": )" + std::to_string(steps) + R"(, "cluster": )" + cluster +
         R"(, "workload": {"type": "bsp", "engine": ")" + engine + R"(", "compute": )" + compute +
         R"(}, "policies": )" + policies + "}";
}

std::string gpus(double k) { return R"({"gpus": )" + std::to_string(static_cast<std::int64_t>(k)) + "}"; }

// Every policy's step times from one replication of a scenario, straight from the workload.
std::vector<std::vector<SimTime>> step_times(const std::string& text, std::int64_t steps) {
  std::vector<std::vector<SimTime>> out;
  for (const PolicyTally& t : test::run_first_point(load_scenario_json(Json::parse(text), "os.json"), steps))
    out.push_back(t.steps.values());
  return out;
}

// The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs.
double ks_statistic(std::vector<SimTime> a, std::vector<SimTime> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::size_t i = 0, j = 0;
  double d = 0;
  while (i < a.size() && j < b.size()) {
    const SimTime x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] == x) ++i;
    while (j < b.size() && b[j] == x) ++j;
    d = std::max(d, std::fabs(static_cast<double>(i) / a.size() - static_cast<double>(j) / b.size()));
  }
  return d;
}

// Rejects "same law" at alpha = 10^-4 (c(alpha) = sqrt(-ln(alpha / 2) / 2)); conservative for ties.
double ks_critical(std::size_t n, std::size_t m) {
  return std::sqrt(-std::log(0.5e-4) / 2) * std::sqrt(static_cast<double>(n + m) / (static_cast<double>(n) * m));
}

void check_same_law(const std::string& cluster, const std::string& compute, const std::string& policies,
                    std::int64_t steps) {
  const auto os = step_times(scenario("order_statistics", cluster, compute, policies, steps), steps);
  const auto batched = step_times(scenario("batched", cluster, compute, policies, steps, 8), steps);
  REQUIRE(os.size() == batched.size());
  for (std::size_t p = 0; p < os.size(); ++p) {
    INFO("policy " << p << " of " << policies << " on " << cluster << " with " << compute);
    CHECK(ks_statistic(os[p], batched[p]) < ks_critical(os[p].size(), batched[p].size()));
  }
}

}  // namespace

TEST_CASE("order statistics: E[max] and p99 match the exact integrals for K = 1, 16, 1024, 10^6 and 10^9") {
  const std::int64_t steps = 100000;
  for (const double k : {1.0, 16.0, 1024.0, 1e6, 1e9}) {
    const RunResults r = test::run_json(scenario("order_statistics", gpus(k), kLognormal,
                                                 R"([{"type": "none"}, {"type": "backup", "copies": 2}])", steps));
    for (const auto& [label, copies] : {std::pair<std::string, int>{"none", 1}, {"backup", 2}}) {
      const StepTimeSummary& s = test::record(r, label).step_time;
      std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
      info_text << "K = " << k << ", " << label;
      INFO(info_text.str());
      CHECK(std::fabs(s.mean - test::exact_mean_max(k, copies)) < 4 * s.stddev / std::sqrt(steps));
      const double q = test::exact_quantile_max(k, 0.99, copies);
      CHECK(std::fabs(s.p99 - q) < 4 * std::sqrt(0.99 * 0.01 / steps) / test::density_max(k, q, copies));
    }
  }
}

TEST_CASE("order statistics: the k-th largest of n uniforms has mean tail k / (n + 1), for n = 10 and 10^12") {
  for (const double n : {10.0, 1e12}) {
    RngStream rng(11, "test/renyi", 0);
    const int draws = 200000, k = 4;
    double sum[k] = {}, sum_sq[k] = {};
    double u[k], tails[k];
    for (int i = 0; i < draws; ++i) {
      for (double& x : u) x = rng.uniform();
      top_upper_tails(u, n, tails);
      for (int j = 0; j < k; ++j) {
        sum[j] += tails[j] * (n + 1);  // E = j + 1, Var = (j + 1)(n - j)/(n + 2) ~ j + 1 in these units
        sum_sq[j] += tails[j] * (n + 1) * tails[j] * (n + 1);
      }
    }
    for (int j = 0; j < k; ++j) {
      INFO("n = " << n << ", " << j + 1 << "-th largest");
      const double mean = sum[j] / draws, var = sum_sq[j] / draws - mean * mean;
      CHECK(std::fabs(mean - (j + 1)) < 4 * std::sqrt(var / draws));
      if (j > 0) CHECK(sum[j] > sum[j - 1]);
    }
  }
}

TEST_CASE("order statistics and batched draws agree in distribution (two-sample KS) for every policy served") {
  const std::string policies = R"([{"type": "none"}, {"type": "backup", "copies": 2}, {"type": "backup", "copies": 3, "name": "b3"},
      {"type": "drop_slowest", "m": 3}])";
  const std::string slow = R"({"gpus": 200, "slow_gpus": [{"count": 3, "factor": 1.7}, {"count": 1, "factor": 3}]})";
  const std::string mixture = R"({"type": "mixture", "components": [{"weight": 0.97, "dist": {"type": "constant", "value": 1}},
      {"weight": 0.03, "dist": )" + kLognormal + "}]}";
  const std::string empirical = R"({"type": "empirical", "samples": [1.0, 1.1, 1.1, 1.3, 2.0, 2.5, 4.0]})";
  const std::int64_t steps = 20000;
  check_same_law(gpus(64), kLognormal, policies, steps);
  check_same_law(slow, kLognormal, policies, steps);
  check_same_law(gpus(64), mixture, policies, steps);
  check_same_law(slow, mixture, policies, steps);
  check_same_law(gpus(16), empirical, policies, steps);
  check_same_law(gpus(3000), R"({"type": "pareto", "scale": 1, "shape": 2.5})",
                 R"([{"type": "none"}, {"type": "drop_slowest", "m": 40}])", steps);
}

TEST_CASE("order statistics: speculation on one healthy group agrees with batched draws in distribution") {
  // Odd and even quorums (the median of one or two middle tasks), a quorum of 1, a quorum of every task.
  const std::string policies = R"([{"type": "none"}, {"type": "backup", "quantile": 0.9, "multiplier": 1.5},
      {"type": "backup", "quantile": 0.75, "multiplier": 1.2, "name": "b75"}, {"type": "backup", "quantile": 0.5, "name": "b50"}])";
  const std::string mixture = R"({"type": "mixture", "components": [{"weight": 0.9, "dist": {"type": "uniform", "min": 1, "max": 1.2}},
      {"weight": 0.1, "dist": )" + kLognormal + "}]}";
  const std::int64_t steps = 20000;
  for (const double k : {256.0, 37.0, 9.0, 2.0, 1.0}) check_same_law(gpus(k), kLognormal, policies, steps);
  check_same_law(gpus(64), mixture, policies, steps);
  check_same_law(gpus(20), R"({"type": "exponential", "rate": 1})",
                 R"([{"type": "backup", "quantile": 0.95, "multiplier": 1.0}, {"type": "backup", "quantile": 0.99, "name": "all"}])", steps);
  // Busy and extra work: unbiased estimates from sampled tasks, within 1 % of the batched engine's sums.
  const RunResults os = test::run_json(scenario("order_statistics", gpus(256), kLognormal, policies, 40000));
  const RunResults batched = test::run_json(scenario("batched", gpus(256), kLognormal, policies, 40000, 9));
  for (const char* p : {"backup", "b75", "b50"}) {
    INFO(p);
    CHECK(test::record(os, p).idle_fraction == doctest::Approx(test::record(batched, p).idle_fraction).epsilon(0.01));
    CHECK(*test::record(os, p).extra_work_fraction ==
          doctest::Approx(*test::record(batched, p).extra_work_fraction).epsilon(0.03));
  }
}

TEST_CASE("order statistics: idle and extra work match the batched engine's, from the groups' known means") {
  const std::string slow = R"({"gpus": 256, "slow_gpus": [{"count": 4, "factor": 2}]})";
  const std::string policies = R"([{"type": "none"}, {"type": "backup", "copies": 2}, {"type": "drop_slowest", "m": 8}])";
  const RunResults os = test::run_json(scenario("order_statistics", slow, kLognormal, policies, 40000));
  const RunResults batched = test::run_json(scenario("batched", slow, kLognormal, policies, 40000, 9));
  for (const char* p : {"none", "backup", "drop_slowest"}) {
    INFO(p);
    CHECK(test::record(os, p).engine == "order_statistics");
    CHECK(test::record(batched, p).engine == "batched");
    CHECK(test::record(os, p).idle_fraction == doctest::Approx(test::record(batched, p).idle_fraction).epsilon(0.005));
  }
  CHECK(*test::record(os, "backup").extra_work_fraction == doctest::Approx(1.0));
}

TEST_CASE("common random numbers: the paired speed-up CI at K = 10^6 is no wider than at K = 10^3") {
  auto width = [](double k) {
    const RunResults r = test::run_json(scenario("fast", gpus(k), kLognormal,
                                                 R"([{"type": "none"}, {"type": "backup", "copies": 2}])", 200000));
    const VsBaseline& v = *test::record(r, "backup").vs_baseline;
    CHECK(test::record(r, "backup").engine == "order_statistics");
    return *v.ci95_high - *v.ci95_low;
  };
  const double at_thousand = width(1e3), at_million = width(1e6);
  CHECK(at_million <= at_thousand);
  CHECK(at_million > 0);
}

TEST_CASE("order statistics: a policy's steps do not depend on which other policies run beside it") {
  const std::string slow = R"({"gpus": 100, "slow_gpus": [{"count": 2, "factor": 2}]})";
  const auto alone = step_times(scenario("order_statistics", slow, kLognormal, R"([{"type": "none"}])", 2000), 2000);
  const auto together = step_times(scenario("order_statistics", slow, kLognormal, R"([{"type": "backup", "copies": 3},
      {"type": "drop_slowest", "m": 5}, {"type": "none"}])", 2000), 2000);
  CHECK(alone.at(0) == together.at(2));
  // Comonotone: on the same uniforms, backup's maximum of minima never exceeds none's maximum.
  for (std::size_t s = 0; s < 2000; ++s) CHECK(together[0][s] <= together[2][s]);
  for (std::size_t s = 0; s < 2000; ++s) CHECK(together[1][s] <= together[2][s]);
}

TEST_CASE("fast picks order statistics only where it is exact, and says which in results and validate") {
  const std::string none = R"([{"type": "none"}])";
  const std::string spec = R"([{"type": "none"}, {"type": "backup", "quantile": 0.9}])";
  const std::string slow = R"({"gpus": 64, "slow_gpus": [{"count": 1, "factor": 2}]})";
  CHECK(test::record(test::run_json(scenario("fast", gpus(64), kLognormal, none, 10)), "none").engine == "order_statistics");
  CHECK(test::record(test::run_json(scenario("fast", gpus(64), kLognormal, spec, 10)), "none").engine == "order_statistics");
  CHECK(test::record(test::run_json(scenario("fast", slow, kLognormal, spec, 10)), "none").engine == "batched");
  const std::string noisy = R"({"gpus": 64, "noise": {"type": "uniform", "min": 1, "max": 1.2}})";
  CHECK(test::record(test::run_json(scenario("fast", noisy, kLognormal, none, 10)), "none").engine == "batched");
  const std::string file = test::write_temp("os_validate.json", scenario("fast", gpus(1e9), kLognormal, none, 10));
  const test::CommandResult v = test::run_cli("validate " + file);
  CHECK(v.exit_code == 0);
  CHECK(v.out.find("engine: order_statistics") != std::string::npos);
}

TEST_CASE("order statistics runs K = 10^12 in the memory of K = 1; K beyond 10^8 elsewhere is refused with the reason") {
  const RunResults huge = test::run_json(scenario("fast", gpus(1e12), kLognormal, R"([{"type": "none"}])", 1000));
  const double mean = test::record(huge, "none").step_time.mean;
  CHECK(mean > test::exact_mean_max(1e9));
  CHECK(std::isfinite(mean));
  const std::pair<std::string, std::string> cases[] = {
      {scenario("batched", gpus(1e9), kLognormal, R"([{"type": "none"}])", 10),
       "/cluster/gpus: expected at most 100000000 GPUs here (engine 'batched' keeps per-GPU arrays"},
      {scenario("fast", R"({"gpus": 1000000000, "slow_gpus": [{"count": 1, "factor": 2}]})", kLognormal,
                R"([{"type": "backup", "quantile": 0.9}])", 10),
       "the order_statistics engine, which goes to 1000000000000, cannot run here: speculation (backup with 'quantile') on slow GPUs"},
      {scenario("fast", R"({"gpus": 1000000000, "noise": {"type": "uniform", "min": 1, "max": 2}})", kLognormal,
                R"([{"type": "none"}])", 10),
       "cannot run here: cluster.noise multiplies each task by its own factor"}};
  for (const auto& [text, message] : cases) {
    const std::string err = test::run_error(text);
    INFO(err);
    CHECK(err.find(message) != std::string::npos);
  }
}

TEST_CASE("engine order_statistics on a case it cannot do exactly is exit 2 naming what prevents it") {
  const auto fails = [](const std::string& text, const std::string& message) {
    const std::string file = test::write_temp("os_bad.json", text);
    const test::CommandResult r = test::run_cli("validate " + file);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(message) != std::string::npos);
  };
  fails(scenario("order_statistics", R"({"gpus": 8, "noise": {"type": "uniform", "min": 1, "max": 2}})", kLognormal,
                 R"([{"type": "none"}])", 10),
        "/workload/engine: engine 'order_statistics' cannot run cluster.noise exactly");
  fails(scenario("order_statistics", R"({"gpus": 8, "slow_gpus": [{"count": 1, "factor": 2}]})", kLognormal,
                 R"([{"type": "none"}, {"type": "backup", "quantile": 0.9}])", 10),
        "/workload/engine: engine 'order_statistics' cannot run policy 'backup' exactly: speculation (backup with 'quantile') on slow GPUs");
  fails(scenario("order_statistics", gpus(1e7), kLognormal, R"([{"type": "drop_slowest", "m": 2000000}])", 10),
        "keeps the m + 1 largest of each group every step (m <= 1048576 here)");
  fails(scenario("quick", gpus(8), kLognormal, R"([{"type": "none"}])", 10),
        "/workload/engine: unknown value 'quick'");
}

TEST_CASE("upper quantiles stay exact where 1 - q rounds to 1, and invert the survival function") {
  const std::string dists[] = {kLognormal, R"({"type": "exponential", "rate": 2})", R"({"type": "pareto", "scale": 1, "shape": 1.5})",
                               R"({"type": "normal", "mean": 2, "stddev": 0.5})",
                               R"({"type": "mixture", "components": [{"weight": 1, "dist": {"type": "exponential", "rate": 1}},
                                   {"weight": 3, "dist": {"type": "uniform", "min": 0.5, "max": 1}}]})"};
  for (const std::string& text : dists) {
    const Json doc = Json::parse(text);
    const auto d = make_distribution(JsonReader(doc, "d.json"));
    INFO(text);
    for (const double q : {0.5, 0.1, 1e-3, 1e-9, 1e-15, 1e-25}) {
      const double x = d->upper_quantile(q);
      CHECK(std::isfinite(x));
      CHECK(d->survival(x) == doctest::Approx(q).epsilon(1e-9));
      if (q >= 1e-3 && d->monotone()) CHECK(x == doctest::Approx(d->from_uniform(1 - q)).epsilon(1e-12));
    }
  }
  // A bounded support: the upper quantile of a tiny q is the top of it.
  const Json uniform = Json::parse(R"({"type": "uniform", "min": 1, "max": 3})");
  const auto u = make_distribution(JsonReader(uniform, "u.json"));
  CHECK(u->upper_quantile(0.25) == doctest::Approx(2.5));
  CHECK(u->survival(2.5) == doctest::Approx(0.25));
  CHECK(u->upper_quantile(1e-25) == 3.0);
}

}  // namespace tailsim
