#include <doctest/doctest.h>

#include <cmath>

#include "sim/core/rng.hpp"
#include "sim/stats/distribution.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {
std::unique_ptr<Distribution> dist(const std::string& text) {
  static std::vector<Json> keep;  // readers point into the JSON
  keep.push_back(Json::parse(text));
  return make_distribution(JsonReader(keep.back(), "test.json", "/d"));
}
}  // namespace

TEST_CASE("the normal quantile matches reference values to 1e-12") {
  CHECK(normal_quantile(0.5) == doctest::Approx(0.0));
  CHECK(normal_quantile(0.975) == doctest::Approx(1.959963984540054).epsilon(1e-13));
  CHECK(normal_quantile(0.01) == doctest::Approx(-2.326347874040841).epsilon(1e-13));
  CHECK(normal_quantile(1e-10) == doctest::Approx(-6.361340902404056).epsilon(1e-12));
  for (double p : {1e-8, 0.001, 0.2, 0.7, 0.999999}) CHECK(normal_cdf(normal_quantile(p)) == doctest::Approx(p).epsilon(1e-12));
}

TEST_CASE("each distribution's quantile function inverts its CDF") {
  const double u = 0.8;
  CHECK(dist(R"({"type":"constant","value":2.5})")->from_uniform(u) == 2.5);
  CHECK(dist(R"({"type":"uniform","min":1,"max":3})")->from_uniform(u) == doctest::Approx(2.6));
  CHECK(dist(R"({"type":"exponential","rate":2})")->from_uniform(u) == doctest::Approx(-std::log(0.2) / 2));
  CHECK(dist(R"({"type":"exponential","mean":0.5})")->from_uniform(u) == doctest::Approx(-std::log(0.2) / 2));
  CHECK(dist(R"({"type":"normal","mean":1,"stddev":0.1})")->from_uniform(u) == doctest::Approx(1 + 0.1 * 0.8416212335729143));
  CHECK(dist(R"({"type":"normal","mean":0,"stddev":1})")->from_uniform(0.2) == 0.0);  // clipped at min = 0
  CHECK(dist(R"({"type":"lognormal","mu":-0.7,"sigma":0.9})")->from_uniform(u) ==
        doctest::Approx(std::exp(-0.7 + 0.9 * 0.8416212335729143)));
  CHECK(dist(R"({"type":"shifted_lognormal","shift":1,"mu":-0.7,"sigma":0.9})")->from_uniform(u) ==
        doctest::Approx(1 + std::exp(-0.7 + 0.9 * 0.8416212335729143)));
  CHECK(dist(R"({"type":"pareto","scale":2,"shape":3})")->from_uniform(u) == doctest::Approx(2 * std::pow(0.2, -1.0 / 3)));
  CHECK(dist(R"({"type":"empirical","samples":[3,1,2,4]})")->from_uniform(0.6) == 3.0);
}

TEST_CASE("analytic means agree with Monte Carlo means within 4 standard errors") {
  for (const char* text : {R"({"type":"shifted_lognormal","shift":1,"mu":-0.7,"sigma":0.9})",
                           R"({"type":"normal","mean":0.2,"stddev":0.3})", R"({"type":"pareto","scale":1,"shape":4})",
                           R"({"type":"mixture","components":[{"weight":0.9,"dist":{"type":"constant","value":1}},
                                                                {"weight":0.1,"dist":{"type":"exponential","rate":0.5}}]})",
                           R"({"type":"empirical","samples":[1,2,2,7]})"}) {
    const auto d = dist(text);
    RngStream s(11);
    const int n = 400000;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; ++i) {
      const double x = d->from_uniform(s.uniform());
      sum += x;
      sum2 += x * x;
    }
    const double mean = sum / n, sd = std::sqrt(sum2 / n - mean * mean);
    INFO(text);
    CHECK(std::fabs(mean - d->mean()) < 4 * sd / std::sqrt(n));
  }
}

TEST_CASE("the expected minimum of c draws is exact for exponentials and matches the survival integral") {
  const auto e = dist(R"({"type":"exponential","rate":2})");
  for (int c = 1; c <= 4; ++c) CHECK(e->expected_min(c) == doctest::Approx(1.0 / (2.0 * c)).epsilon(1e-8));
  // Shifted lognormal: E[min of c] = shift + integral of S(x)^c.
  const auto l = dist(R"({"type":"shifted_lognormal","shift":1,"mu":-0.7,"sigma":0.9})");
  for (int c = 2; c <= 4; ++c) {
    const double exact = 1.0 + test::simpson(
                                   [&](double z) {
                                     return std::pow(1.0 - test::phi_cdf(z), c) * std::exp(-0.7 + 0.9 * z) * 0.9;
                                   },
                                   -60, 12, 60000);
    CHECK(l->expected_min(c) == doctest::Approx(exact).epsilon(1e-8));
  }
}

TEST_CASE("only the mixture is flagged as not monotone") {
  CHECK(dist(R"({"type":"lognormal","mu":0,"sigma":1})")->monotone());
  CHECK_FALSE(dist(R"({"type":"mixture","components":[{"weight":1,"dist":{"type":"constant","value":1}},
                                                        {"weight":1,"dist":{"type":"constant","value":2}}]})")
                  ->monotone());
}

TEST_CASE("bad distribution parameters name the JSON path and the valid choices") {
  auto message = [](const std::string& text) {
    try {
      dist(text);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message(R"({"type":"lognormal","mu":0,"sigma":-1})") == "test.json: /d/sigma: expected a number >= 0, got -1");
  CHECK(message(R"({"type":"lognormal","mu":0})") == "test.json: /d: missing required key 'sigma'");
  CHECK(message(R"({"type":"lognormal","mu":"x","sigma":1})") == "test.json: /d/mu: expected a number, got a string \"x\"");
  const std::string unknown = message(R"({"type":"lognormla","mu":0,"sigma":1})");
  CHECK(unknown.find("/d/type: unknown value 'lognormla' (did you mean 'lognormal'?)") != std::string::npos);
  CHECK(unknown.find("valid: constant, uniform, exponential, normal, lognormal, shifted_lognormal, pareto, mixture, "
                     "empirical") != std::string::npos);
  CHECK(message(R"({"type":"lognormal","mu":0,"sigma":1,"sigam":2})").find("unknown key 'sigam' (did you mean 'sigma'?") !=
        std::string::npos);
  CHECK(message(R"({"type":"exponential","rate":1,"mean":1})").find("exactly one of 'rate' or 'mean'") != std::string::npos);
  CHECK(message(R"({"type":"pareto","scale":0,"shape":1})") == "test.json: /d/scale: expected a duration (seconds, or a string such as \"20ms\") > 0, got 0");
  CHECK(dist(R"({"type":"normal","mean":"410ms","stddev":"4ms"})")->mean() == doctest::Approx(0.41));
  CHECK(message(R"({"type":"empirical","file":"does-not-exist.txt"})").find("cannot open samples file") != std::string::npos);
  // A device or a folder would never end, or never start: refused before reading.
  CHECK(message(R"({"type":"empirical","file":"/dev/zero"})") ==
        "test.json: /d/file: cannot read samples file: not a regular file: '/dev/zero'");
  CHECK(message(R"({"type":"empirical","file":"/tmp"})").find("not a regular file") != std::string::npos);
}

TEST_CASE("empirical samples can come from a file, with comments and a header") {
  const std::string path = test::write_temp("samples.csv", "step_time_s\n# measured\n0.5\n1.5\n1.0\n");
  const Json j = Json{{"type", "empirical"}, {"file", path}};
  const auto d = make_distribution(JsonReader(j, "x.json"));
  CHECK(d->mean() == doctest::Approx(1.0));
  CHECK(d->from_uniform(0.99) == 1.5);
  // '#' comment lines may come before the header too (as the README allows), and blank lines anywhere.
  for (const std::string text : {"# from run 12\n# seconds per step\nstep_time_s\n0.5\n1.5\n1.0\n",
                                 "\n# measured\n\nstep_time_s\n# a comment\n0.5\n\n1.5\n1.0\n",
                                 "\xEF\xBB\xBF# measured\r\nstep_time_s\r\n0.5\r\n1.5\r\n1.0\r\n"}) {
    const std::string commented = test::write_temp("commented" + std::to_string(text.size()) + ".csv", text);
    const auto c = make_distribution(JsonReader(Json{{"type", "empirical"}, {"file", commented}}, "x.json"));
    CHECK(c->mean() == doctest::Approx(1.0));
  }
  const std::string bad = test::write_temp("bad.csv", "1.0\nabc\n");
  const Json jb = Json{{"type", "empirical"}, {"file", bad}};
  CHECK_THROWS_WITH_AS(make_distribution(JsonReader(jb, "x.json")), doctest::Contains("line 2: expected a number, got 'abc'"),
                       InputError);
}

}  // namespace tailsim
