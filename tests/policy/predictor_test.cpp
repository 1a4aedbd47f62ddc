// Load predictors (sim/policy/predictor.hpp) on series with known answers.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "sim/core/rng.hpp"
#include "sim/policy/predictor.hpp"
#include "sim/stats/sampling.hpp"

namespace tailsim {

namespace {

PredictorSpec spec(PredictorKind kind) {
  PredictorSpec s;
  s.kind = kind;
  return s;
}

double predict(const PredictorSpec& s, const std::vector<double>& series, int horizon) {
  double out = 0;
  predict_load(s, LoadHistory{series, static_cast<int>(series.size()), 1}, horizon, {&out, 1});
  return out;
}

}  // namespace

TEST_CASE("predictors: a constant series is predicted exactly at every horizon") {
  const std::vector<double> c(64, 42.0);
  for (const PredictorKind k : {PredictorKind::kLast, PredictorKind::kWindow, PredictorKind::kEma, PredictorKind::kAr})
    for (const int h : {1, 10, 100}) {
      CAPTURE(static_cast<int>(k));
      CAPTURE(h);
      CHECK(predict(spec(k), c, h) == doctest::Approx(42.0).epsilon(1e-9));
    }
}

TEST_CASE("predictors: a linear trend") {
  std::vector<double> x(64);
  for (int t = 0; t < 64; ++t) x[t] = 100.0 + 2.0 * t;  // last row 226
  // last lags by the horizon's slope; window w by (w - 1) / 2 + h steps; AR(p) fits the trend exactly
  // (AR(1): x_t = 2 + x_{t-1}, the unique least-squares solution), so it extrapolates it.
  CHECK(predict(spec(PredictorKind::kLast), x, 5) == doctest::Approx(226.0));
  PredictorSpec w = spec(PredictorKind::kWindow);
  w.window = 10;
  CHECK(predict(w, x, 1) == doctest::Approx(226.0 - 9.0));
  // EMA of a line lags it by (1 - alpha) / alpha steps in the limit: 2 x 4 = 8 below the last row for alpha 0.2.
  CHECK(predict(spec(PredictorKind::kEma), x, 1) == doctest::Approx(218.0).epsilon(1e-3));
  PredictorSpec ar1 = spec(PredictorKind::kAr);
  ar1.order = 1;
  CHECK(predict(ar1, x, 1) == doctest::Approx(228.0).epsilon(1e-9));
  CHECK(predict(ar1, x, 10) == doctest::Approx(246.0).epsilon(1e-9));
  // The mean of horizons 1..10: 226 + 2 x 5.5.
  double mean = 0;
  predict_mean_load(ar1, LoadHistory{x, 64, 1}, 10, {&mean, 1});
  CHECK(mean == doctest::Approx(237.0).epsilon(1e-9));
}

TEST_CASE("predictors: AR(1) recovers a known coefficient") {
  // x_t = 50 + 0.7 (x_{t-1} - 50) + eps, eps ~ N(0, 1): 4000 steps; the least-squares coefficient's standard
  // error is sqrt((1 - 0.7^2) / n) ~ 0.0113, so 0.7 +- 0.045 is a 4-sigma band; the h-step forecast is
  // 50 + 0.7^h (x_last - 50) up to the coefficient's error.
  RngStream rng(7, "test/ar1", 0);
  std::vector<double> x(4000);
  x[0] = 50;
  for (std::size_t t = 1; t < x.size(); ++t) x[t] = 50 + 0.7 * (x[t - 1] - 50) + standard_normal(rng);
  PredictorSpec ar = spec(PredictorKind::kAr);
  ar.order = 1;
  ar.history = 4000;
  const double last = x.back();
  const double one = predict(ar, x, 1);
  const double implied = (one - 50) / (last - 50);  // the fitted coefficient (the intercept near 50 (1 - a))
  CHECK(std::fabs(last - 50) > 0.5);  // the seed gives a last value away from the mean, so the ratio is informative
  CHECK(implied == doctest::Approx(0.7).epsilon(0.1));
  CHECK(predict(ar, x, 3) == doctest::Approx(50 + std::pow(0.7, 3) * (last - 50)).epsilon(0.02));
  // Far ahead, the forecast returns to the mean.
  CHECK(predict(ar, x, 200) == doctest::Approx(50).epsilon(0.02));
}

TEST_CASE("predictors: an explosive AR fit forecasts the last value instead of diverging") {
  // x_t = 1.5 x_{t-1}: the exact fit has a = 1.5; iterated 100 steps it would reach 1.5^100 times the last value.
  std::vector<double> x(20);
  x[0] = 1;
  for (std::size_t t = 1; t < x.size(); ++t) x[t] = 1.5 * x[t - 1];
  PredictorSpec ar1 = spec(PredictorKind::kAr);
  ar1.order = 1;
  CHECK(predict(ar1, x, 100) == doctest::Approx(x.back()));
}

TEST_CASE("predictors: per column, and the load-weighted error") {
  const std::vector<double> rows = {1, 10, 3, 30};  // 2 rows x 2 columns
  std::vector<double> out(2);
  predict_load(spec(PredictorKind::kLast), LoadHistory{rows, 2, 2}, 1, out);
  CHECK(out == std::vector<double>{3, 30});
  PredictorSpec w = spec(PredictorKind::kWindow);
  w.window = 2;
  predict_load(w, LoadHistory{rows, 2, 2}, 1, out);
  CHECK(out == std::vector<double>{2, 20});
  CHECK(load_error(std::vector<double>{2, 20}, std::vector<double>{3, 30}) == doctest::Approx(11.0 / 33.0));
  CHECK(load_error(std::vector<double>{1, 1}, std::vector<double>{0, 0}) == 0.0);
  CHECK_THROWS_AS(predict_load(spec(PredictorKind::kOracle), LoadHistory{rows, 2, 2}, 1, out), std::invalid_argument);
}

}  // namespace tailsim
