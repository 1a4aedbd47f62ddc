// The paired speed-up and its interval (sim/stats/paired.hpp) on hand-built batches, where every number
// can be worked out on paper; Student's t quantiles against published values.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "sim/stats/paired.hpp"

namespace tailsim {

namespace {

// One replication of one-step batches holding `steps` (ns).
StepBatches one_step_batches(const std::vector<SimTime>& steps) {
  StepBatches b(static_cast<std::int64_t>(steps.size()), static_cast<std::int64_t>(steps.size()));
  for (const SimTime s : steps) b.add(s);
  return b;
}

}  // namespace

TEST_CASE("Student's t quantiles match the tables") {
  CHECK(student_t_quantile(0.975, 1) == doctest::Approx(12.706204736174698).epsilon(1e-12));
  CHECK(student_t_quantile(0.975, 3) == doctest::Approx(3.182446305284263).epsilon(1e-12));
  CHECK(student_t_quantile(0.975, 31) == doctest::Approx(2.0395134463964077).epsilon(1e-12));
  CHECK(student_t_quantile(0.975, 1e6) == doctest::Approx(1.959966).epsilon(1e-6));
  CHECK(student_t_quantile(0.5, 7) == doctest::Approx(0.0));
}

TEST_CASE("batches split a replication into contiguous runs of steps and merge in replication order") {
  CHECK(StepBatches::plan(200, 1) == 32);
  CHECK(StepBatches::plan(200, 3) == 11);
  CHECK(StepBatches::plan(200, 4) == 8);
  CHECK(StepBatches::plan(200, 32) == 1);
  CHECK(StepBatches::plan(200, 1000) == 1);
  CHECK(StepBatches::plan(5, 1) == 5);
  CHECK(StepBatches::plan(0, 1) == 0);
  StepBatches a(10, 3);  // steps 0-3, 4-6, 7-9 (step i in batch floor(3 i / 10))
  for (int i = 0; i < 10; ++i) a.add(1 << i);
  CHECK(a.sums() == std::vector<StepBatches::Int128>{1 + 2 + 4 + 8, 16 + 32 + 64, 128 + 256 + 512});
  StepBatches b(2, 2);
  b.add(5);
  b.add(7);
  a.merge(b);
  CHECK(a.sums() == std::vector<StepBatches::Int128>{15, 112, 896, 5, 7});
  CHECK(a.replication_starts() == std::vector<std::uint32_t>{0, 3});
  CHECK_THROWS_AS(StepBatches(3, 4), std::invalid_argument);
}

TEST_CASE("a hand-computed paired interval: the delta method over four batches") {
  // Baseline 3, 5, 4, 8 against 2, 2, 2, 2: S = 20 / 8 = 2.5; D_b = X_b - S Y_b = -2, 0, -1, 3 (lag-1
  // product sum -3: not correlated). Var(S) = 4/3 x 14 / 8^2 = 0.2916...; half-width t(0.975, 3) x 0.54006.
  const auto s = paired_speedup(one_step_batches({3, 5, 4, 8}), one_step_batches({2, 2, 2, 2}));
  REQUIRE(s);
  CHECK(s->speedup == 2.5);
  CHECK(s->batches == 4);
  const double half = 3.182446305284263 * std::sqrt(4.0 / 3.0 * 14.0 / 64.0);
  REQUIRE(s->ci95_low);
  CHECK(*s->ci95_low == doctest::Approx(2.5 - half).epsilon(1e-12));
  CHECK(*s->ci95_high == doctest::Approx(2.5 + half).epsilon(1e-12));
  CHECK(*s->ci95_high - 2.5 == doctest::Approx(1.7187174).epsilon(1e-6));
}

TEST_CASE("a policy whose steps equal the baseline's has speed-up exactly 1 and a zero-width interval") {
  const std::vector<SimTime> steps = {1'234'567'891, 987'654'321, 1'500'000'003, 2'000'000'017, 999};
  const auto s = paired_speedup(one_step_batches(steps), one_step_batches(steps));
  REQUIRE(s);
  CHECK(s->speedup == 1.0);
  CHECK(*s->ci95_low == 1.0);
  CHECK(*s->ci95_high == 1.0);
}

TEST_CASE("neighbouring batches whose differences are correlated are merged, and the interval widens") {
  // D_b = 2b - 31 over 32 one-step batches: a trend, lag-1 autocorrelation near 1. Independent batches would
  // give a half-width of t(0.975, 31) sqrt(32/31 x 10912) / 3200 = 0.0677; merging in pairs while the
  // correlation is significant stops at 4 batches (D = -96, -32, 32, 96: lag-1 0.25 < 1.645 / 2), whose
  // half-width is t(0.975, 3) sqrt(4/3 x 20480 x 4) / 3200.
  std::vector<SimTime> base, policy(32, 100);
  for (int b = 0; b < 32; ++b) base.push_back(200 + 2 * b - 31);
  const auto s = paired_speedup(one_step_batches(base), one_step_batches(policy));
  REQUIRE(s);
  CHECK(s->speedup == 2.0);
  CHECK(s->batches == 4);
  const double half = 3.182446305284263 * std::sqrt(4.0 / 3.0 * 81920.0) / 3200.0;
  CHECK(*s->ci95_high - 2.0 == doctest::Approx(half).epsilon(1e-12));
  CHECK(half > 4 * 2.0395134463964077 * std::sqrt(32.0 / 31.0 * 10912.0) / 3200.0);
  // Two replications with the trend D = 2b - 15 inside each: batches merge within a replication, never
  // across, and stop at 4 a replication.
  std::vector<SimTime> trend;
  for (int b = 0; b < 16; ++b) trend.push_back(200 + 2 * b - 15);
  StepBatches two_base = one_step_batches(trend), two_policy = one_step_batches(std::vector<SimTime>(16, 100));
  two_base.merge(one_step_batches(trend));
  two_policy.merge(one_step_batches(std::vector<SimTime>(16, 100)));
  const auto r = paired_speedup(two_base, two_policy);
  REQUIRE(r);
  CHECK(r->batches == 8);
}

TEST_CASE("the paired speed-up needs batches alike, and a policy that took time") {
  CHECK_FALSE(paired_speedup(one_step_batches({1, 2}), one_step_batches({0, 0})));
  CHECK_THROWS_AS(paired_speedup(one_step_batches({1, 2}), one_step_batches({1, 2, 3})), std::logic_error);
  const auto single = paired_speedup(one_step_batches({4}), one_step_batches({2}));  // one batch: no interval
  REQUIRE(single);
  CHECK(single->speedup == 2.0);
  CHECK_FALSE(single->ci95_low);
}

}  // namespace tailsim
