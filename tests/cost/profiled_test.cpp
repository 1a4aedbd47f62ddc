// The `profiled` cost model: measured values exactly, straight lines between them, a sane slope past the end.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "sim/cost/profiled.hpp"
#include "tests/cost/cost_helpers.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

const std::string kMixtralH100 = "h100-sxm/mixtral-8x7b_expert_ffn.csv";

ProfiledCostModel profiled_from_text(const std::string& text) {
  return ProfiledCostModel(parse_profile_table(text, "hand.csv"), 0.0);
}

}  // namespace

TEST_CASE("profiled returns the measured time exactly at every measured token count") {
  const auto model =
      test::cost_model({{"type", "profiled"}, {"table", kMixtralH100}}, "h100-sxm", test::kMixtralExpert);
  const auto columns = test::read_csv_columns(test::shipped(kMixtralH100));
  const std::vector<double>& tokens = columns.at("tokens");
  const std::vector<double>& time_us = columns.at("time_us");
  REQUIRE(tokens.size() == 2048);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    INFO("tokens = " << tokens[i]);
    // stod and from_chars both round the same decimal to the nearest double, so equality is exact.
    CHECK(model->expert_time_s(static_cast<std::int64_t>(tokens[i])) == time_us[i] * 1e-6);
  }
  CHECK(model->expert_time_s(0) == 0.0);
  CHECK(model->expert_time_s(-5) == 0.0);
}

TEST_CASE("profiled interpolates linearly between measured points and holds the first value below them") {
  const ProfiledCostModel m = profiled_from_text("tokens,time_us\n4,10\n8,18\n16,18\n32,50\n");
  CHECK(m.expert_time_s(0) == 0.0);
  for (const std::int64_t n : {1, 2, 3, 4})
    CHECK(m.expert_time_s(n) == doctest::Approx(10e-6).epsilon(1e-12));
  CHECK(m.expert_time_s(6) == doctest::Approx(14e-6).epsilon(1e-12));
  CHECK(m.expert_time_s(12) == doctest::Approx(18e-6).epsilon(1e-12));
  CHECK(m.expert_time_s(24) == doctest::Approx(34e-6).epsilon(1e-12));
  CHECK(m.expert_time_s(31) == doctest::Approx(48e-6).epsilon(1e-12));

  // Every gap of a shipped table with a coarse grid (Vidur's: steps of 8 to 1024, then 16, 32, ...).
  const auto columns = test::read_csv_columns(test::shipped("a100-sxm-80gb/mixtral-8x7b_expert_ffn.csv"));
  const std::vector<double>& tok = columns.at("tokens");
  const std::vector<double>& us = columns.at("time_us");
  const auto model =
      test::cost_model({{"type", "profiled"}, {"table", "a100-sxm-80gb/mixtral-8x7b_expert_ffn.csv"}},
                       "a100-sxm-80gb", test::kMixtralExpert);
  std::size_t interior = 0;
  for (std::size_t i = 0; i + 1 < tok.size(); ++i) {
    for (auto n = static_cast<std::int64_t>(tok[i]) + 1; n < static_cast<std::int64_t>(tok[i + 1]);
         ++n, ++interior) {
      const double expected_us =
          us[i] + (us[i + 1] - us[i]) * (static_cast<double>(n) - tok[i]) / (tok[i + 1] - tok[i]);
      INFO("tokens = " << n);
      CHECK(model->expert_time_s(n) * 1e6 == doctest::Approx(expected_us).epsilon(1e-12));
    }
  }
  CHECK(interior > 30000);  // the grid does have gaps to interpolate (it reaches 32768 in 451 rows)
}

TEST_CASE("profiled extrapolates past the end with the slope of the table's upper half, never negative") {
  SUBCASE("points on a line: the line's slope") {
    const ProfiledCostModel m = profiled_from_text("tokens,time_us\n1,5.5\n2,6\n4,7\n8,9\n16,13\n32,21\n");
    CHECK(m.extrapolation_slope_s_per_token() == doctest::Approx(0.5e-6).epsilon(1e-9));
    CHECK(m.expert_time_s(64) == doctest::Approx(37e-6).epsilon(1e-9));
  }
  SUBCASE("a falling upper half extrapolates flat") {
    const ProfiledCostModel m = profiled_from_text("tokens,time_us\n1,10\n2,20\n4,30\n8,25\n16,20\n");
    CHECK(m.extrapolation_slope_s_per_token() == 0.0);
    CHECK(m.expert_time_s(1000) == m.expert_time_s(16));
  }
  SUBCASE("one high last point does not set the slope") {
    // 1 us per token from 8 to 64 tokens, the last point 20 us high: the last two points alone would give
    // (20 + 8) / 8 = 3.5 us per token.
    std::string text = "tokens,time_us\n";
    for (int n = 8; n <= 64; n += 8)
      text += std::to_string(n) + "," + std::to_string(n + (n == 64 ? 20 : 0)) + "\n";
    const ProfiledCostModel m = profiled_from_text(text);
    CHECK(m.extrapolation_slope_s_per_token() > 1e-6);
    CHECK(m.extrapolation_slope_s_per_token() < 2e-6);
  }
  SUBCASE("the shipped H100 Mixtral table: about its compute-bound throughput") {
    const auto model =
        test::cost_model({{"type", "profiled"}, {"table", kMixtralH100}}, "h100-sxm", test::kMixtralExpert);
    const auto& m = dynamic_cast<const ProfiledCostModel&>(*model);
    const double slope = m.extrapolation_slope_s_per_token();
    CHECK(slope > 0.0);
    // The secant from 1024 to 2048 tokens measures the same compute-bound throughput; the least-squares slope
    // over 1024..2048 differs from it by 2.8 % (measured), the bound leaves room for the table's steps.
    const double secant = (m.expert_time_s(2048) - m.expert_time_s(1024)) / 1024.0;
    CHECK(slope == doctest::Approx(secant).epsilon(0.10));
    CHECK(m.expert_time_s(4096) == doctest::Approx(m.expert_time_s(2048) + 2048 * slope).epsilon(1e-12));
  }
}

// The measured tables are not monotone (cuBLAS switches algorithms with the token count: the H100 Mixtral
// table drops 18 % below its running maximum at 463 tokens), and the model returns measured values exactly,
// so it cannot be monotone everywhere. What it guarantees: it never adds a dip of its own, i.e. it is
// monotone on every segment between two measured points and past the last one.
TEST_CASE("profiled never decreases except where the measured table itself does, on every shipped table") {
  for (const auto& [gpu, file] : test::shipped_ffn_tables()) {
    std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
    info_text << "table " << file;
    INFO(info_text.str());
    const auto model = test::cost_model({{"type", "profiled"}, {"table", file}, {"strict", false}}, gpu,
                                        test::kMixtralExpert);
    const ProfileTable& t = dynamic_cast<const ProfiledCostModel&>(*model).table();
    std::size_t segment = 0;
    for (std::int64_t n = 1; n < 2 * t.max_tokens(); ++n) {
      if (segment + 1 < t.tokens.size() && t.tokens[segment + 1] <= n) ++segment;
      // n and n + 1 lie in [tokens[segment], tokens[segment + 1]], or past the end when there is no next row.
      const bool falling = segment + 1 < t.tokens.size() && t.time_s[segment + 1] < t.time_s[segment];
      INFO("tokens = " << n);
      if (falling)
        CHECK(model->expert_time_s(n + 1) <= model->expert_time_s(n));
      else
        CHECK(model->expert_time_s(n + 1) >= model->expert_time_s(n));
    }
    CHECK(model->expert_time_s(0) == 0.0);
  }
}


TEST_CASE("a table next to the scenario is found, also when the scenario is named without a folder") {
  const auto dir = test::temp_dir("table-next-to-scenario");
  {
    std::ofstream(dir / "mine.csv") << "tokens,time_us\n1,10\n8,17\n";
  }
  const Json spec{{"type", "profiled"}, {"table", "mine.csv"}};
  const CostContext ctx{test::gpu_spec("h100-sxm"), test::kMixtralExpert};
  CHECK(make_cost_model(JsonReader(spec, (dir / "s.json").string()), ctx)->expert_time_s(8) == 17e-6);
  const auto previous = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  double bare = 0;
  try {
    bare = make_cost_model(JsonReader(spec, "s.json"), ctx)->expert_time_s(8);  // once looked for in models/ only
  } catch (const InputError&) {
  }
  std::filesystem::current_path(previous);
  CHECK(bare == 17e-6);
  std::filesystem::remove_all(dir);
}

}  // namespace tailsim
