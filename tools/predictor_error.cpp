// How well each load predictor (sim/policy/predictor.hpp) forecasts the generated router's expert load, by
// phase and horizon: the deepseek-v3 preset (or another) with a fluctuating phase then a stable one, at a
// large batch. Each predictor forecasts, from the history up to step t, the load shares of step t + h; the
// error is load_error (sum |predicted - actual| / sum actual over the experts: a load-weighted percentage),
// averaged over origins (every `stride` steps) and layers, by phase: forecasts made and ending within the
// fluctuating phase, and forecasts made in the stable phase (a forecast across the change counts in neither).
// Not a test: a table for docs/replication.md, against "Prediction Is All MoE Needs" (1.3 % at a 1,000-step
// horizon and 1.8 % at 2,000 in the stable phase).
//
// Usage: predictor_error [--preset deepseek-v3] [--fluctuating 300] [--volatility 0.02] [--stable 2300]
//                        [--tokens 1048576] [--layers 4] [--stride 10] [--horizons 1,100,1000,2000]
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sim/policy/predictor.hpp"
#include "sim/workload/routing_models.hpp"

namespace tailsim {
namespace {

struct Options {
  std::string preset = "deepseek-v3";
  std::int64_t fluctuating = 300, stable = 2300, tokens = 1 << 20;
  double volatility = 0.02;
  int layers = 4, stride = 10;
  std::vector<int> horizons = {1, 100, 1000, 2000};
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("missing a value after " + a);
    const std::string v = argv[++i];
    if (a == "--preset") o.preset = v;
    else if (a == "--fluctuating") o.fluctuating = std::stoll(v);
    else if (a == "--stable") o.stable = std::stoll(v);
    else if (a == "--tokens") o.tokens = std::stoll(v);
    else if (a == "--volatility") o.volatility = std::stod(v);
    else if (a == "--layers") o.layers = std::stoi(v);
    else if (a == "--stride") o.stride = std::stoi(v);
    else if (a == "--horizons") {
      o.horizons.clear();
      std::stringstream in(v);
      for (std::string h; std::getline(in, h, ',');) o.horizons.push_back(std::stoi(h));
    } else {
      throw std::invalid_argument("unknown option " + a);
    }
  }
  if (!routing_preset(o.preset)) throw std::invalid_argument("unknown preset " + o.preset);
  if (o.fluctuating < 1 || o.stable < 1 || o.tokens < 1 || o.layers < 1 || o.stride < 1)
    throw std::invalid_argument("--fluctuating, --stable, --tokens, --layers and --stride must be >= 1");
  return o;
}

int run(const Options& o) {
  GeneratedRoutingParams params = *routing_preset(o.preset);
  params.phases = {{o.fluctuating, o.volatility}, {1, 5e-4}};
  const int experts = 256, top_k = 8;
  GeneratedRouter router(params, RouterContext{o.layers, experts, top_k, 1, 0});
  const std::int64_t steps = o.fluctuating + o.stable;
  const auto width = static_cast<std::size_t>(experts);
  // shares[layer][step][expert]
  std::vector<std::vector<double>> shares(static_cast<std::size_t>(o.layers), std::vector<double>(steps * width));
  std::vector<std::int64_t> counts(width);
  for (std::int64_t s = 0; s < steps; ++s)
    for (int l = 0; l < o.layers; ++l) {
      router.route(s, l, o.tokens, counts);
      for (std::size_t e = 0; e < width; ++e)
        shares[l][s * width + e] = static_cast<double>(counts[e]) / static_cast<double>(o.tokens * top_k);
    }
  struct Named {
    std::string name;
    PredictorSpec spec;
  };
  std::vector<Named> predictors = {{"last", {PredictorKind::kLast}}, {"window 50", {PredictorKind::kWindow, 50}},
                                   {"ema 0.1", {PredictorKind::kEma, 10, 0.1}}, {"ar 2 (64)", {PredictorKind::kAr, 10, 0.2, 2, 64}}};
  std::cout << "preset " << o.preset << ", " << o.layers << " layers x 256 experts, " << o.tokens << " tokens a layer-step, "
            << o.fluctuating << " fluctuating steps (" << o.volatility << " nats/step) then " << o.stable
            << " stable (5e-4); load_error of the shares at step t + h, mean over origins t every " << o.stride
            << " steps and layers\n";
  std::cout << std::left << std::setw(12) << "predictor" << std::setw(10) << "horizon" << std::right << std::setw(14)
            << "fluctuating %" << std::setw(10) << "stable %" << "\n";
  std::vector<double> out(width);
  for (const Named& p : predictors) {
    const int rows = p.spec.rows();
    for (const int h : o.horizons) {
      double err[2] = {0, 0};
      std::int64_t n[2] = {0, 0};
      for (std::int64_t t = rows - 1; t + h < steps; t += o.stride)
        for (int l = 0; l < o.layers; ++l) {
          const LoadHistory hist{{&shares[l][(t + 1 - rows) * width], static_cast<std::size_t>(rows) * width}, rows, experts};
          predict_load(p.spec, hist, h, out);
          // Fluctuating: the whole forecast within the fluctuating phase; stable: from its start on; a forecast
          // across the change counts in neither.
          const int phase = t + h < o.fluctuating ? 0 : t >= o.fluctuating ? 1 : -1;
          if (phase < 0) continue;
          err[phase] += load_error(out, {&shares[l][(t + h) * width], width});
          ++n[phase];
        }
      const auto cell = [](double sum, std::int64_t count) {
        std::ostringstream os;
        if (count == 0) os << "-";
        else os << std::fixed << std::setprecision(2) << 100 * sum / static_cast<double>(count);
        return os.str();
      };
      std::cout << std::left << std::setw(12) << p.name << std::setw(10) << h << std::right << std::setw(14)
                << cell(err[0], n[0]) << std::setw(10) << cell(err[1], n[1]) << "\n";
    }
  }
  return 0;
}

}  // namespace
}  // namespace tailsim

int main(int argc, char** argv) {
  try {
    return tailsim::run(tailsim::parse(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "predictor_error: " << e.what() << "\n";
    return 2;
  }
}
