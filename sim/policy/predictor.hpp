// Expert-load predictors: pure functions of a history of per-expert loads (one row per step, oldest first)
// that estimate the load `horizon` steps after the last row. The replicate policy plans from them; the
// oracle, which sees the future, is the policy's own (it routes ahead) and is an upper bound, not a
// predictor a deployment could run.
#pragma once
#include <span>
#include <string>
#include <vector>

#include "sim/config/json_reader.hpp"

namespace tailsim {

enum class PredictorKind { kLast, kWindow, kEma, kAr, kOracle };

struct PredictorSpec {
  PredictorKind kind = PredictorKind::kEma;
  int window = 10;     // window: the mean of the last `window` rows
  double alpha = 0.2;  // ema: weight of the newest row
  int order = 2;       // ar: p, lags of the least-squares AR(p) fitted per expert
  int history = 64;    // ar: rows the fit uses (the newest), >= order + 2
  // Rows of history the predictor reads (the policy keeps this many).
  int rows() const;
};

// A history: `rows` rows of `width` loads, row r at data[r * width].
struct LoadHistory {
  std::span<const double> data;
  int rows = 0;
  int width = 0;
  double at(int row, int column) const { return data[static_cast<std::size_t>(row) * width + column]; }
};

// The estimate of each column's value `horizon` (>= 1) steps after the last row, into out (width entries).
// last: the last row; window: the mean of the last `window` rows; ema: the exponential average
// (s = alpha x row + (1 - alpha) s, from the first row); ar: per column, x_t = c + sum_i a_i x_{t-i} fitted by
// least squares (Eigen) on the last `history` rows and iterated `horizon` steps (too few rows: last). All
// but ar are flat in horizon. Not for kOracle (std::invalid_argument).
void predict_load(const PredictorSpec& spec, const LoadHistory& history, int horizon, std::span<double> out);

// The mean of predict_load over horizons 1 .. span (the load of the next `span` steps).
void predict_mean_load(const PredictorSpec& spec, const LoadHistory& history, int span, std::span<double> out);

// Load-weighted absolute percentage error of a prediction: sum |predicted - actual| / sum actual (0 when
// nothing happened).
double load_error(std::span<const double> predicted, std::span<const double> actual);

// A predictor object ({"type": "last" | "window" | "ema" | "ar" | "oracle", ...}); bad input fails with its path.
PredictorSpec parse_predictor(const JsonReader& node);
std::vector<std::string> predictor_names();

}  // namespace tailsim
