// `tailsim cost`: expert service time per cost-model kind, as a table or CSV; bad input exits 2 naming the
// choices.
#include <doctest/doctest.h>

#include <cmath>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "sim/cli/cost_verb.hpp"
#include "sim/cost/roofline.hpp"
#include "sim/config/error.hpp"
#include "sim/workload/moe.hpp"
#include "tests/cost/cost_helpers.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

std::string cost(const std::vector<std::string>& args) {
  std::ostringstream out;
  const int exit_code = verb_cost(args, out);  // outside CHECK, so that a throw reaches CHECK_THROWS
  CHECK(exit_code == 0);
  return out.str();
}

struct CsvRow {
  std::string kind;
  std::int64_t tokens = 0;
  double time_us = 0;
};

// Parses the whole CSV output; fails the test on any malformed line.
std::vector<CsvRow> parse_csv(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  REQUIRE(std::getline(in, line));
  CHECK(line == "kind,tokens,time_us");
  std::vector<CsvRow> rows;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string kind, tokens, time;
    REQUIRE(std::getline(fields, kind, ','));
    REQUIRE(std::getline(fields, tokens, ','));
    REQUIRE(std::getline(fields, time));
    std::size_t used_tokens = 0, used_time = 0;
    rows.push_back({kind, std::stoll(tokens, &used_tokens), std::stod(time, &used_time)});
    CHECK(used_tokens == tokens.size());
    CHECK(used_time == time.size());
  }
  return rows;
}

std::string percent(double fraction) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << 100 * fraction << " %";
  return s.str();
}

}  // namespace

TEST_CASE("tailsim cost --format csv prints every kind at every token count, the measured values exactly") {
  const auto r =
      test::run_cli("cost --gpu h100-sxm --model mixtral-8x7b --format csv --tokens 1,7,448,2048,3000");
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  const std::vector<CsvRow> rows = parse_csv(r.out);
  const std::vector<std::int64_t> tokens = {1, 7, 448, 2048, 3000};
  const std::vector<std::string> kinds = {"profiled", "roofline", "fitted"};
  REQUIRE(rows.size() == kinds.size() * tokens.size());
  const auto table = test::read_csv_columns(test::shipped("h100-sxm/mixtral-8x7b_expert_ffn.csv"));
  for (std::size_t k = 0; k < kinds.size(); ++k) {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const CsvRow& row = rows[k * tokens.size() + i];
      CHECK(row.kind == kinds[k]);
      CHECK(row.tokens == tokens[i]);
      CHECK(row.time_us > 0);
      // Printed to the nanosecond, as the table's values are.
      if (row.kind == "profiled" && row.tokens <= 2048)
        CHECK(std::fabs(row.time_us - table.at("time_us")[static_cast<std::size_t>(row.tokens - 1)]) <=
              0.0005);
    }
  }
}

TEST_CASE("tailsim cost prints the default token counts and the fit errors against the table") {
  const std::string out = cost({"--gpu", "h100-sxm", "--model", "mixtral-8x7b"});
  for (const char* n : {"\n     1 ", "\n     8 ", "\n    64 ", "\n   256 ", "\n   512 ", "\n  1024 ",
                        "\n  2048 ", "\n  4096 "})
    CHECK(out.find(n) != std::string::npos);
  CHECK(out.find("tokens    profiled    roofline      fitted\n") != std::string::npos);
  CHECK(out.find("* past the table's last measured token count") != std::string::npos);
  const std::string table = test::shipped("h100-sxm/mixtral-8x7b_expert_ffn.csv");
  const ProfileTable t = read_profile_table(table);
  const ErrorStats roofline =
      table_error(*test::cost_model({{"type", "roofline"}}, "h100-sxm", *measured_shape(t, "fp16")), t);
  const ErrorStats fitted =
      fit_roofline(t, *measured_shape(t, "fp16"), test::gpu_spec("h100-sxm"), 64, 128).error;
  CHECK(out.find("error against models/h100-sxm/mixtral-8x7b_expert_ffn.csv (2048 rows") !=
        std::string::npos);
  CHECK(out.find("  roofline  MAPE " + percent(roofline.mape) + ", max " + percent(roofline.max_error) +
                 " at " + std::to_string(roofline.max_error_tokens) + " tokens\n") != std::string::npos);
  CHECK(out.find("  fitted    MAPE " + percent(fitted.mape) + ", max " + percent(fitted.max_error) + " at " +
                 std::to_string(fitted.max_error_tokens) + " tokens\n") != std::string::npos);
}

TEST_CASE("tailsim cost without the model's own table fits another of the GPU's tables and says which") {
  const std::string out = cost({"--gpu", "h100-sxm", "--model", "qwen3-30b-a3b", "--tokens", "1,64"});
  CHECK(out.find("tokens    roofline    fitted\n") != std::string::npos);  // no profiled column
  // 8192 x 3584 is the shipped H100 shape closest in weight size to Qwen3-30B-A3B's 2048 x 768.
  CHECK(out.find("fitted    fitted to models/h100-sxm/llama-2-70b-tp8_ffn.csv") != std::string::npos);
  CHECK(out.find("not this model's experts") != std::string::npos);

  const std::vector<CsvRow> rows =
      parse_csv(cost({"--gpu", "h200", "--model", "olmoe-1b-7b", "--format", "csv"}));
  std::set<std::string> kinds;
  for (const CsvRow& r : rows) kinds.insert(r.kind);
  CHECK(kinds == std::set<std::string>{"roofline"});  // models/ has no H200 table
  CHECK(rows.size() == 8);
}

TEST_CASE("tailsim cost --cost evaluates one given cost model") {
  const std::vector<CsvRow> rows =
      parse_csv(cost({"--gpu", "h100-sxm", "--model", "mixtral-8x7b", "--format", "csv", "--tokens", "1",
                      "--cost", R"({"type": "roofline", "launch_overhead": "20us"})"}));
  REQUIRE(rows.size() == 1);
  const auto defaults = test::cost_model({{"type", "roofline"}}, "h100-sxm", test::kMixtralExpert);
  CHECK(rows[0].kind == "roofline");
  CHECK(std::fabs(rows[0].time_us - (defaults->expert_time_s(1) * 1e6 + 12)) <= 0.0005);  // printed to the ns
  CHECK_THROWS_WITH_AS(
      cost({"--gpu", "h100-sxm", "--model", "mixtral-8x7b", "--cost", R"({"type": "rooflin"})"}),
      doctest::Contains("did you mean 'roofline'"), InputError);
}

TEST_CASE("tailsim cost gives every shipped GPU a roofline that scales with its datasheet figures") {
  // Mixtral's expert at 4096 tokens is compute-bound on every GPU: its time follows the dense bf16 peak.
  std::map<std::string, double> at_4096;
  for (const std::string& gpu : gpu_names()) {
    INFO(gpu);
    const std::vector<CsvRow> rows =
        parse_csv(cost({"--gpu", gpu, "--model", "mixtral-8x7b", "--format", "csv", "--tokens", "1,4096",
                        "--cost", R"({"type": "roofline"})"}));
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].time_us > 0);
    CHECK(rows[1].time_us > rows[0].time_us);
    at_4096[gpu] = rows[1].time_us;
  }
  REQUIRE(at_4096.count("b200"));
  REQUIRE(at_4096.count("mi300x"));
  CHECK(at_4096["b200"] < at_4096["mi300x"]);
  CHECK(at_4096["mi300x"] < at_4096["h100-sxm"]);
}

TEST_CASE("tailsim cost exits 2 on an unknown GPU or model, naming the valid ones") {
  const auto gpu = test::run_cli("cost --gpu h100 --model mixtral-8x7b");
  CHECK(gpu.exit_code == 2);
  CHECK(gpu.out.empty());
  CHECK(gpu.err.find("--gpu: unknown gpu 'h100' (did you mean 'h100-sxm'?)") != std::string::npos);
  for (const std::string& name : gpu_names()) CHECK(gpu.err.find(name) != std::string::npos);

  const auto model = test::run_cli("cost --gpu h100-sxm --model mixtral-8x22b");
  CHECK(model.exit_code == 2);
  CHECK(model.err.find("--model: unknown model 'mixtral-8x22b'") != std::string::npos);
  for (const std::string& name : moe_model_names()) CHECK(model.err.find(name) != std::string::npos);
}

TEST_CASE("tailsim cost refuses bad token lists, formats and missing options") {
  const std::vector<std::string> base = {"--gpu", "h100-sxm", "--model", "mixtral-8x7b"};
  const auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), base.begin(), base.end());
    return extra;
  };
  for (const std::string tokens : {"0,x", "1,,8", "3,-4", "8,1e3", "", "2000000000"})
    CHECK_THROWS_WITH_AS(cost(with({"--tokens", tokens})),
                         doctest::Contains("--tokens: expected a comma-separated list"), InputError);
  CHECK_THROWS_WITH_AS(cost(with({"--format", "json"})), doctest::Contains("valid: table, csv"), InputError);
  CHECK_THROWS_WITH_AS(cost({"--model", "mixtral-8x7b"}), doctest::Contains("valid: a100-sxm-80gb"),
                       InputError);
  CHECK_THROWS_WITH_AS(cost({"--gpu", "h100-sxm"}), doctest::Contains("valid: deepseek-v3"), InputError);
  const auto r = test::run_cli("cost --gpu h100-sxm --model mixtral-8x7b --tokens 0,x");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("got '0' in '0,x'") != std::string::npos);
}

}  // namespace tailsim
