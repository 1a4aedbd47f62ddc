#include "sim/policy/predictor.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace tailsim {

int PredictorSpec::rows() const {
  switch (kind) {
    case PredictorKind::kLast: return 1;
    case PredictorKind::kWindow: return window;
    case PredictorKind::kEma: return std::min(1000, static_cast<int>(std::ceil(6.0 / alpha)));  // weight left: < e^-6
    case PredictorKind::kAr: return history;
    case PredictorKind::kOracle: return 1;
  }
  return 1;
}

namespace {

// Fits x_t = c + sum_{i=1..p} a_i x_{t-i} to one column's last n rows and iterates `horizon` steps; returns
// each of the forecasts 1 .. horizon through `each`.
template <class F>
void ar_forecast(const LoadHistory& h, int column, int p, int n, int horizon, F&& each) {
  const int first = h.rows - n;  // rows used: first .. rows - 1
  const int equations = n - p;
  Eigen::MatrixXd a(equations, p + 1);
  Eigen::VectorXd b(equations);
  for (int t = 0; t < equations; ++t) {
    const int row = first + p + t;
    a(t, 0) = 1.0;
    for (int i = 1; i <= p; ++i) a(t, i) = h.at(row - i, column);
    b(t) = h.at(row, column);
  }
  Eigen::VectorXd coef = a.colPivHouseholderQr().solve(b);
  std::vector<double> lags(static_cast<std::size_t>(p));  // lags[i - 1] = x_{t-i}
  for (int i = 1; i <= p; ++i) lags[i - 1] = h.at(h.rows - i, column);
  // An explosive fit (sum |a_i| > 1: a root may lie outside the unit circle) would diverge when iterated far
  // ahead; it forecasts a random walk instead (the last value). A unit root (a linear trend) is kept.
  if (coef.tail(p).cwiseAbs().sum() > 1.0 + 1e-9) {
    coef.setZero();
    coef(1) = 1.0;
  }
  for (int step = 1; step <= horizon; ++step) {
    double x = coef(0);
    for (int i = 1; i <= p; ++i) x += coef(i) * lags[i - 1];
    x = std::max(0.0, x);  // a load is never negative
    for (int i = p - 1; i > 0; --i) lags[i] = lags[i - 1];
    lags[0] = x;
    each(step, x);
  }
}

void flat(const PredictorSpec& spec, const LoadHistory& h, std::span<double> out) {
  const int w = h.width;
  if (spec.kind == PredictorKind::kLast) {
    for (int c = 0; c < w; ++c) out[c] = h.at(h.rows - 1, c);
  } else if (spec.kind == PredictorKind::kWindow) {
    const int n = std::min(spec.window, h.rows);
    std::fill(out.begin(), out.end(), 0.0);
    for (int r = h.rows - n; r < h.rows; ++r)
      for (int c = 0; c < w; ++c) out[c] += h.at(r, c);
    for (int c = 0; c < w; ++c) out[c] /= n;
  } else {
    for (int c = 0; c < w; ++c) out[c] = h.at(0, c);
    for (int r = 1; r < h.rows; ++r)
      for (int c = 0; c < w; ++c) out[c] = spec.alpha * h.at(r, c) + (1.0 - spec.alpha) * out[c];
  }
}

void check(const PredictorSpec& spec, const LoadHistory& h, int horizon, std::span<double> out) {
  if (spec.kind == PredictorKind::kOracle)
    throw std::invalid_argument("predict_load: the oracle is no function of the history (it routes ahead)");
  if (h.rows < 1 || horizon < 1 || static_cast<int>(out.size()) != h.width ||
      h.data.size() < static_cast<std::size_t>(h.rows) * static_cast<std::size_t>(h.width))
    throw std::invalid_argument("predict_load: " + std::to_string(h.rows) + " rows of " + std::to_string(h.width) +
                                ", horizon " + std::to_string(horizon) + ", out " + std::to_string(out.size()));
}

bool ar_fits(const PredictorSpec& spec, const LoadHistory& h) {
  return spec.kind == PredictorKind::kAr && std::min(h.rows, spec.history) >= 2 * spec.order + 2;
}

}  // namespace

void predict_load(const PredictorSpec& spec, const LoadHistory& h, int horizon, std::span<double> out) {
  check(spec, h, horizon, out);
  if (spec.kind == PredictorKind::kAr && !ar_fits(spec, h)) {
    flat(PredictorSpec{PredictorKind::kLast}, h, out);
    return;
  }
  if (spec.kind != PredictorKind::kAr) {
    flat(spec, h, out);
    return;
  }
  for (int c = 0; c < h.width; ++c)
    ar_forecast(h, c, spec.order, std::min(h.rows, spec.history), horizon, [&](int step, double x) {
      if (step == horizon) out[c] = x;
    });
}

void predict_mean_load(const PredictorSpec& spec, const LoadHistory& h, int span, std::span<double> out) {
  check(spec, h, span, out);
  if (!ar_fits(spec, h)) {
    predict_load(spec, h, 1, out);
    return;
  }
  for (int c = 0; c < h.width; ++c) {
    double sum = 0;
    ar_forecast(h, c, spec.order, std::min(h.rows, spec.history), span, [&](int, double x) { sum += x; });
    out[c] = sum / span;
  }
}

double load_error(std::span<const double> predicted, std::span<const double> actual) {
  double err = 0, total = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    err += std::fabs(predicted[i] - actual[i]);
    total += actual[i];
  }
  return total > 0 ? err / total : 0.0;
}

std::vector<std::string> predictor_names() { return {"ar", "ema", "last", "oracle", "window"}; }

PredictorSpec parse_predictor(const JsonReader& n) {
  n.expect_object();
  PredictorSpec s;
  const std::string type = n.string("type", std::nullopt, predictor_names());
  if (type == "last") s.kind = PredictorKind::kLast;
  if (type == "oracle") s.kind = PredictorKind::kOracle;
  if (type == "window") {
    s.kind = PredictorKind::kWindow;
    s.window = static_cast<int>(n.integer("window", 10, Range{1.0, 100000.0}));
  }
  if (type == "ema") {
    s.kind = PredictorKind::kEma;
    s.alpha = n.number("alpha", 0.2, Range{0.0, 1.0, true, false});
  }
  if (type == "ar") {
    s.kind = PredictorKind::kAr;
    s.order = static_cast<int>(n.integer("order", 2, Range{1.0, 16.0}));
    s.history = static_cast<int>(n.integer("history", 64, Range{static_cast<double>(2 * s.order + 2), 10000.0}));
  }
  n.finish();
  return s;
}

}  // namespace tailsim
