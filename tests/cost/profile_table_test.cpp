// Measured tables: every bad entry is an InputError naming the file and the line; a table measured for
// another GPU or expert shape is refused unless "strict" is false.
#include <doctest/doctest.h>

#include "sim/config/error.hpp"
#include "tests/cost/cost_helpers.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

// The InputError that parsing `text` as bad.csv throws (fails the test when it throws none).
InputError parse_error(const std::string& text) {
  try {
    parse_profile_table(text, "bad.csv");
  } catch (const InputError& e) {
    return e;
  }
  FAIL("no error for: " << text);
  return InputError("", "", "");
}

void check_error(const std::string& text, const std::string& line, const std::string& words) {
  const InputError e = parse_error(text);
  CHECK(e.file() == "bad.csv");
  CHECK(e.path() == line);
  INFO("message: " << e.message());
  CHECK(e.message().find(words) != std::string::npos);
}

const std::string kHeader =
    "# gpu_config: h100-sxm\n# hidden: 4096\n\ntokens,time_us\n";  // rows start on line 5

}  // namespace

TEST_CASE("a good table parses with its metadata, skipping blank and comment lines") {
  const ProfileTable t = parse_profile_table(kHeader + "1,10.5\n\n# a note\n2,11\n", "good.csv");
  CHECK(t.tokens == std::vector<std::int64_t>{1, 2});
  CHECK(t.time_s == std::vector<double>{10.5e-6, 11e-6});
  CHECK(t.meta("gpu_config") == "h100-sxm");
  CHECK(t.meta_integer("hidden") == 4096);
  CHECK_FALSE(t.meta("intermediate").has_value());
}

TEST_CASE("bad table rows are InputErrors naming the file, the line and the column") {
  check_error(kHeader + "1,10\n2,abc\n", "line 6", "column 'time_us': expected a number");
  check_error(kHeader + "1,-3\n", "line 5", "negative");
  check_error(kHeader + "1,0\n", "line 5", "expected a time > 0");
  check_error(kHeader + "1,inf\n", "line 5", "finite");
  check_error(kHeader + "1,1\n2,7e307\n", "line 6", "expected at most 1e9 (1000 s)");  // extrapolation overflowed
  check_error(kHeader + "0,10\n", "line 5", "column 'tokens': expected an integer from 1");
  check_error(kHeader + "2.5,10\n", "line 5", "column 'tokens'");
  check_error(kHeader + "4,10\n2,11\n", "line 6", "token counts must increase, got 2 after 4 (line 5)");
  check_error(kHeader + "4,10\n4,11\n", "line 6", "duplicate token count 4 (also on line 5)");
  check_error(kHeader + "4,10,3\n", "line 5", "expected 2 comma-separated fields");
  check_error("tokens,time\n1,10\n", "line 1", "no column 'time_us'");
  check_error("# only: metadata\n", "", "no CSV header");
  check_error("", "", "no CSV header");
  check_error(kHeader, "", "no data rows after the header on line 4");
}

TEST_CASE("a missing table file and malformed metadata are InputErrors naming the file") {
  try {
    read_profile_table("/nonexistent/table.csv");
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(e.file() == "/nonexistent/table.csv");
    CHECK(e.message().find("cannot open") != std::string::npos);
  }
  const ProfileTable t =
      parse_profile_table("# hidden: many\n# gated: perhaps\ntokens,time_us\n1,1\n", "meta.csv");
  CHECK_THROWS_WITH_AS(t.meta_integer("hidden"), doctest::Contains("meta.csv: metadata 'hidden'"),
                       InputError);
  CHECK_THROWS_WITH_AS(t.meta_bool("gated"), doctest::Contains("expected true or false"), InputError);
  CHECK_THROWS_WITH_AS(test::cost_model({{"type", "profiled"}, {"table", "h100-sxm/no_such_table.csv"}},
                                        "h100-sxm", test::kMixtralExpert),
                       doctest::Contains("no table file 'h100-sxm/no_such_table.csv'"), InputError);
}

TEST_CASE("a table measured for another expert shape, GPU or dtype is refused unless strict is false") {
  const Json mixtral = {{"type", "profiled"}, {"table", "h100-sxm/mixtral-8x7b_expert_ffn.csv"}};
  const ExpertShape qwen3{2048, 768, true, "bf16"};
  CHECK_THROWS_WITH_AS(
      test::cost_model(mixtral, "h100-sxm", qwen3),
      doctest::Contains("is for experts 4096 -> 14336, but the model's experts are 2048 -> 768 "
                        "(set \"strict\": false"),
      InputError);
  CHECK_THROWS_WITH_AS(
      test::cost_model(mixtral, "a100-sxm-80gb", test::kMixtralExpert),
      doctest::Contains("was measured on 'h100-sxm', not on 'a100-sxm-80gb' (set \"strict\""), InputError);
  ExpertShape ungated = test::kMixtralExpert, fp8 = test::kMixtralExpert;
  ungated.gated = false;
  fp8.dtype = "fp8";
  CHECK_THROWS_WITH_AS(test::cost_model(mixtral, "h100-sxm", ungated), doctest::Contains("strict"),
                       InputError);
  CHECK_THROWS_WITH_AS(test::cost_model(mixtral, "h100-sxm", fp8), doctest::Contains("strict"), InputError);
  // The fitted kind transfers the GPU's parameters to any shape, so it checks only the GPU.
  CHECK_THROWS_WITH_AS(
      test::cost_model({{"type", "fitted"}, {"table", "h100-sxm/mixtral-8x7b_expert_ffn.csv"}},
                       "a100-sxm-80gb", test::kMixtralExpert),
      doctest::Contains("strict"), InputError);
  Json relaxed = mixtral;
  relaxed["strict"] = false;
  CHECK(test::cost_model(relaxed, "h100-sxm", qwen3)->expert_time_s(1) > 0);
}

TEST_CASE("tailsim cost exits 2 on a bad table, naming the file and the line") {
  const std::string file = test::write_temp("bad_table.csv", "# hidden: 4096\ntokens,time_us\n1,10\n2,-1\n");
  const auto r = test::run_cli("cost --gpu h100-sxm --model mixtral-8x7b --table " + file);
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find(file + ": line 4: column 'time_us'") != std::string::npos);
}

}  // namespace tailsim
