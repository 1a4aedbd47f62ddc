// The step-time store: exact values, or the bounded-memory sketch whose quantiles are within 2^-11 of the
// exact ones and whose count, mean and maximum are exact.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "sim/core/rng.hpp"
#include "sim/stats/step_times.hpp"

namespace tailsim {

namespace {

constexpr double kBucketError = 1.0 / 2048;  // 2^-11: half a bucket's width over its lower edge

// Step times in ns spanning nine decades, as heavy-tailed runs produce.
std::vector<SimTime> draws(std::uint64_t seed, std::size_t n) {
  RngStream rng(seed, "step-times-test", 0);
  std::vector<SimTime> out(n);
  for (SimTime& v : out) v = static_cast<SimTime>(std::exp(2.0 + 18.0 * rng.uniform()));
  return out;
}

}  // namespace

TEST_CASE("sketch buckets are exact below 1024 ns and within 2^-11 above, and ordered") {
  for (SimTime v = 0; v < 1024; ++v) CHECK(StepTimes::bucket_value(StepTimes::bucket_of(v)) == static_cast<double>(v));
  std::size_t last = 0;
  for (const SimTime v : draws(1, 100000)) {
    const double rep = StepTimes::bucket_value(StepTimes::bucket_of(v));
    CHECK(std::fabs(rep - static_cast<double>(v)) <= kBucketError * static_cast<double>(v));
  }
  for (SimTime v = 1; v < (SimTime{1} << 62); v = v * 3 + 1) {  // monotone buckets over the whole clock
    CHECK(StepTimes::bucket_of(v) >= last);
    last = StepTimes::bucket_of(v);
  }
  CHECK(StepTimes::bucket_of(std::numeric_limits<SimTime>::max()) < kStepSketchBytes / 8);
}

TEST_CASE("the sketch's summary: exact count, mean and max; quantiles within 2^-11 of the exact method") {
  const std::vector<SimTime> values = draws(2, 200000);
  StepTimes exact, sketch(true);
  for (const SimTime v : values) {
    exact.add(v);
    sketch.add(v);
  }
  CHECK(sketch.size() == values.size());
  const StepTimeSummary e = std::move(exact).summarize(), s = std::move(sketch).summarize();
  CHECK(s.count == e.count);
  CHECK(s.mean == e.mean);
  CHECK(s.max == e.max);
  CHECK(s.stddev == doctest::Approx(e.stddev).epsilon(1e-9));
  CHECK(s.ci95_high == doctest::Approx(e.ci95_high).epsilon(1e-9));
  for (const auto& [name, a, b] : {std::tuple{"p50", s.p50, e.p50}, std::tuple{"p90", s.p90, e.p90},
                                   std::tuple{"p99", s.p99, e.p99}, std::tuple{"p999", s.p999, e.p999}}) {
    std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
    info_text << name << ": sketch " << a << " exact " << b;
    INFO(info_text.str());
    CHECK(std::fabs(a - b) <= kBucketError * b);
  }
}

TEST_CASE("sketches merge like their data, exact values join a sketch, and both survive serialization") {
  const std::vector<SimTime> a = draws(3, 5000), b = draws(4, 7000);
  StepTimes sa(true), sb(true), all(true), ea, eb;
  for (const SimTime v : a) sa.add(v), ea.add(v), all.add(v);
  for (const SimTime v : b) sb.add(v), eb.add(v), all.add(v);
  StepTimes merged = sa;
  merged.merge(sb);
  CHECK(merged == all);
  StepTimes mixed = ea;  // exact + sketch -> sketch
  mixed.merge(sb);
  CHECK(mixed.is_sketch());
  CHECK(mixed == all);
  StepTimes exact = ea;
  exact.merge(eb);
  CHECK_FALSE(exact.is_sketch());
  CHECK(exact.size() == a.size() + b.size());
  for (const StepTimes* t : {&all, &exact}) {
    std::string bytes;
    t->serialize(bytes);
    std::size_t pos = 0;
    CHECK(StepTimes::deserialize(bytes, pos) == *t);
    CHECK(pos == bytes.size());
  }
  const StepTimeSummary m = std::move(merged).summarize(), w = std::move(all).summarize();
  CHECK(m.stddev == doctest::Approx(w.stddev).epsilon(1e-12));  // Chan's merge of Welford sums
}

}  // namespace tailsim
