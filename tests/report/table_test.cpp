// The results table: one precision per column, and no column that repeats another.
#include <doctest/doctest.h>

#include <sstream>
#include <string>

#include "sim/report/report.hpp"

namespace tailsim {

namespace {

Record moe_record(std::int64_t gpus, double mean, double p99) {
  Record rec;
  rec.params = {{"cluster.gpus", Json(gpus)}};
  rec.policy = "none";
  rec.step_time.count = 10;
  rec.step_time.mean = mean;
  rec.step_time.p50 = mean;
  rec.step_time.p99 = p99;
  rec.step_time.p999 = p99;
  rec.idle_fraction = 0.25;
  rec.moe = MoeRecord{};
  rec.moe->compute_fraction = 0.5;
  rec.moe->communication_fraction = 0.25;
  rec.moe->barrier_wait_fraction = 0.25;  // the idle column already
  return rec;
}

std::string table_of(std::vector<Record> records) {
  RunResults r;
  r.scenario = "s";
  r.param_names = {"cluster.gpus"};
  r.records = std::move(records);
  std::ostringstream out;
  print_table(out, r, {});
  return out.str();
}

}  // namespace

TEST_CASE("an moe table shows the barrier wait once, as idle") {
  const std::string t = table_of({moe_record(8, 0.5, 0.6)});
  CHECK(t.find("|  idle | extra work | imbalance | compute |  comm | tok/s/GPU\n") != std::string::npos);
  CHECK(t.find("wait") == std::string::npos);
  CHECK(t.find("| 25.0% |          - |      0.00 |   50.0% | 25.0% |         0\n") != std::string::npos);
}

TEST_CASE("a step-time column has one precision: six digits when any of its values is under 0.1 s") {
  // E[step] spans 0.05 s and 2.5 s: both with six digits; p99 is over 0.1 s everywhere: three digits.
  const std::string t = table_of({moe_record(8, 0.05, 0.25), moe_record(64, 2.5, 3.0)});
  INFO(t);
  CHECK(t.find("|  0.050000 | 0.050000 | 0.250 |   0.250 |") != std::string::npos);
  CHECK(t.find("|  2.500000 | 2.500000 | 3.000 |   3.000 |") != std::string::npos);
}

}  // namespace tailsim
