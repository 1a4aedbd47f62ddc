// grouped_time_s: all of one GPU's local experts in one call, for every kind, and the grouped roofline
// against vLLM's fused-MoE kernel measured over (tokens x activated experts) on an H100.
#include <doctest/doctest.h>

#include <cmath>
#include <iomanip>
#include <sstream>

#include "sim/cost/grouped_time_cache.hpp"
#include "sim/cost/profiled.hpp"
#include "sim/cost/roofline.hpp"
#include "tests/cost/cost_helpers.hpp"

namespace tailsim {

namespace {

const std::string kMixtralH100 = "h100-sxm/mixtral-8x7b_expert_ffn.csv";

std::vector<std::unique_ptr<CostModel>> all_kinds() {
  std::vector<std::unique_ptr<CostModel>> out;
  for (const Json& spec : {Json{{"type", "profiled"}, {"table", kMixtralH100}}, Json{{"type", "roofline"}},
                           Json{{"type", "fitted"}, {"table", kMixtralH100}}})
    out.push_back(test::cost_model(spec, "h100-sxm", test::kMixtralExpert));
  return out;
}

double grouped(const CostModel& m, std::vector<std::int64_t> tokens) {
  return m.grouped_time_s(tokens);
}

}  // namespace

TEST_CASE("a group with one activated expert costs exactly that expert's time, for every kind") {
  for (const auto& model : all_kinds()) {
    INFO("kind " << model->kind());
    for (const std::int64_t n : {1, 7, 64, 65, 448, 2048, 3000}) {
      INFO("tokens = " << n);
      // The profiled kind computes overhead + (time - overhead): equal up to one rounding.
      CHECK(grouped(*model, {n}) == doctest::Approx(model->expert_time_s(n)).epsilon(1e-12));
      CHECK(grouped(*model, {0, n, 0, 0}) == doctest::Approx(model->expert_time_s(n)).epsilon(1e-12));
    }
    CHECK(grouped(*model, {}) == 0.0);
    CHECK(grouped(*model, {0, 0, 0}) == 0.0);
  }
}

TEST_CASE("grouping two activated experts saves at least the fixed overhead of one call") {
  for (const auto& model : all_kinds()) {
    INFO("kind " << model->kind());
    double overhead = 0;
    if (const auto* p = dynamic_cast<const ProfiledCostModel*>(model.get()))
      overhead = p->grouped_overhead_s();
    if (const auto* r = dynamic_cast<const RooflineCostModel*>(model.get()))
      overhead = r->params().grouped_overhead_s;
    if (const auto* f = dynamic_cast<const FittedCostModel*>(model.get()))
      overhead = f->fit().params.grouped_overhead_s;
    REQUIRE(overhead > 0);
    for (const auto& [a, b] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {64, 512}, {100, 3000}}) {
      std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
      info_text << "tokens " << a << " and " << b;
      INFO(info_text.str());
      const double separate = model->expert_time_s(a) + model->expert_time_s(b);
      const double together = grouped(*model, {a, b});
      CHECK(together <= separate - overhead * (1 - 1e-9));
      CHECK(together > std::max(model->expert_time_s(a), model->expert_time_s(b)));
    }
  }
}

// models/h100-sxm/qwen3.6-35b-a3b_fused_moe.csv: vLLM 0.19's FusedMoE module (eager, one measurement per
// point) for Qwen3.6-35B-A3B experts (2048 -> 512, gated, bf16) with `tokens` tokens x top-8 spread over
// exactly `activated_experts` experts. Validated row: 64 tokens, 512 token-expert pairs split evenly.
//
// Measured (this test prints them): the default roofline is off by -66 %, -49 %, -32 %, -16 %, -6 %, +2 % at
// 8, 16, 32, 64, 128, 256 experts. The grid is ~47 us + 2.0 us per activated expert: one expert's 6.3 MB at
// ~3.0 TB/s, plus a fixed part that the defaults (8 us, the launch overhead of a cuBLAS expert chain, fitted
// on the per-expert tables) do not have: vLLM's module also sorts the tokens by expert and sums the weighted
// expert outputs, and may include the top-k selection. The formula is not at fault: with the fixed part and
// the bandwidth taken from the grid's other rows it lands within a few percent once weight streaming
// dominates.
TEST_CASE("the grouped roofline predicts vLLM's fused-MoE grid on H100 once calibrated on other rows") {
  const auto grid = test::read_csv_columns(test::shipped("h100-sxm/qwen3.6-35b-a3b_fused_moe.csv"));
  const std::vector<double>& tokens = grid.at("tokens");
  const std::vector<double>& experts = grid.at("activated_experts");
  const std::vector<double>& time_us = grid.at("time_us");
  REQUIRE(tokens.size() == 51);
  const GpuSpec h100 = test::gpu_spec("h100-sxm");
  RooflineParams p;
  p.peak_flops = kDefaultComputeEfficiency * h100.peak_flops_bf16;
  p.sm_count = h100.sm_count;
  const auto split = [](double t, double e) {  // t x 8 pairs spread evenly over e experts
    const auto pairs = static_cast<std::int64_t>(t) * 8, n = static_cast<std::int64_t>(e);
    std::vector<std::int64_t> v(static_cast<std::size_t>(n), pairs / n);
    for (std::int64_t i = 0; i < pairs % n; ++i) ++v[static_cast<std::size_t>(i)];
    return v;
  };

  // Calibration rows: up to 16 tokens (at most 16 per expert, far below the machine balance), where the
  // grouped roofline is fixed + bytes / bandwidth. Least squares on relative errors for (fixed, 1 /
  // bandwidth).
  double s11 = 0, s12 = 0, s22 = 0, r1 = 0, r2 = 0;
  std::size_t calibration_rows = 0;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] > 16) continue;
    const std::vector<std::int64_t> v = split(tokens[i], experts[i]);
    std::int64_t sum = 0, m_tiles = 0;
    for (const std::int64_t n : v) sum += n, m_tiles += (n + p.tile_m - 1) / p.tile_m;
    const FfnTerms t = ffn_terms(test::kQwen36Expert, p, sum, m_tiles, static_cast<std::int64_t>(v.size()));
    REQUIRE(t.up.flops / p.peak_flops < t.up.bytes / (0.5 * h100.memory_bandwidth_bytes_per_s));
    REQUIRE(t.down.flops / p.peak_flops < t.down.bytes / (0.5 * h100.memory_bandwidth_bytes_per_s));
    const double bytes = t.up.count * t.up.bytes + t.down.count * t.down.bytes + t.act_bytes;
    const double a = 1 / (time_us[i] * 1e-6), b = bytes / (time_us[i] * 1e-6);
    s11 += a * a, s12 += a * b, s22 += b * b, r1 += a, r2 += b;
    ++calibration_rows;
  }
  REQUIRE(calibration_rows == 15);
  const double det = s11 * s22 - s12 * s12;
  p.overhead_s = p.grouped_overhead_s = (r1 * s22 - r2 * s12) / det;
  p.bandwidth_bytes_per_s = det / (s11 * r2 - s12 * r1);
  std::ostringstream report;
  report << std::fixed << std::setprecision(1)
         << "grouped roofline vs fused-MoE grid, calibrated on tokens <= 16: fixed " << p.overhead_s * 1e6
         << " us, " << std::setprecision(2) << p.bandwidth_bytes_per_s / 1e12 << " TB/s\n"
         << std::setprecision(1);
  CHECK(p.overhead_s >= 0);
  CHECK(p.bandwidth_bytes_per_s <= h100.memory_bandwidth_bytes_per_s);
  // The bandwidth must keep the calibrated model in the memory-bound regime assumed above.
  CHECK(p.bandwidth_bytes_per_s >= 0.5 * h100.memory_bandwidth_bytes_per_s);
  const RooflineCostModel calibrated(test::kQwen36Expert, p);
  const auto defaults = test::cost_model({{"type", "roofline"}}, "h100-sxm", test::kQwen36Expert);

  std::size_t checked = 0;
  double default_at_64 = 0, default_at_256 = 0, measured_at_64 = 0, measured_at_256 = 0;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] != 64) continue;
    const std::vector<std::int64_t> v = split(tokens[i], experts[i]);
    const double error = calibrated.grouped_time_s(v) / (time_us[i] * 1e-6) - 1;
    const double default_us = defaults->grouped_time_s(v) * 1e6;
    report << "  64 tokens x " << static_cast<int>(experts[i]) << " experts: measured " << time_us[i]
           << " us, calibrated " << 100 * error << " %, default roofline " << default_us << " us ("
           << 100 * (default_us / time_us[i] - 1) << " %)\n";
    INFO("activated experts = " << experts[i]);
    // From 32 experts on, weight streaming is >= 55 % of the time and the model is within 2.5 % (measured);
    // single measurements of neighbouring points differ by up to 1.3 % (62.7 us at 1 token vs 61.9 at 2),
    // so the bound is 6 %. Below, the Triton kernel's token-proportional work (the 8-expert column rises
    // from 63 to 86 us between 1 and 64 tokens, while the roofline keeps compute under the weight streaming)
    // leaves -21 % at 8 experts and -8 % at 16: bound 25 %.
    CHECK(std::fabs(error) < (experts[i] >= 32 ? 0.06 : 0.25));
    if (experts[i] == 64) default_at_64 = default_us, measured_at_64 = time_us[i];
    if (experts[i] == 256) default_at_256 = default_us, measured_at_256 = time_us[i];
    ++checked;
  }
  CHECK(checked == 6);
  MESSAGE(report.str());
  // What the defaults do get right is the marginal cost of one more activated expert (what load imbalance
  // costs): 2.21 us against 2.00 measured, +10 %, since 85 % of the datasheet bandwidth is below the ~91 %
  // this kernel streams at; bound 15 %.
  const double measured_slope = (measured_at_256 - measured_at_64) / 192;
  const double default_slope = (default_at_256 - default_at_64) / 192;
  CHECK(default_slope == doctest::Approx(measured_slope).epsilon(0.15));
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("the grouped-time cache returns exactly the model's values, through collisions and for several experts") {
  for (const auto& model : all_kinds()) {
    INFO("kind " << model->kind());
    GroupedTimeCache cache(*model);
    // About 5,700 distinct counts, more than the 4,096-entry table holds: entries are evicted and refilled.
    int checked = 0;
    for (int pass = 0; pass < 2; ++pass)
      for (std::int64_t n = 0; n < 100'000; n += 1 + n / 1024) {
        const std::vector<std::int64_t> one{n};
        REQUIRE(cache.grouped_time_s(one) == model->grouped_time_s(one));
        ++checked;
      }
    const std::vector<std::int64_t> several{3, 0, 700, 12};
    CHECK(cache.grouped_time_s(several) == model->grouped_time_s(several));
    CHECK(checked > 2 * 4'096);
  }
}

}  // namespace tailsim
