// Performance benchmark of MoE token routing on one thread (not a test: the numbers belong to the machine).
// It reports the cost of one route() call, that is one layer of one step (ns per layer-step), for a
// DeepSeek-V3-like shape: 61 layers, 256 experts, top-8, 8192 tokens per layer, with the generated router's
// olmoe preset and a fluctuating phase (drift). The fastest of several rounds is reported: the round least
// disturbed by other processes on the machine. (It used to be a test case of tests/workload/routing_test.cpp
// that printed the number; timing has no place in the tests.)
//
// Usage: bench_routing [--quick] [--rounds N] [--steps N]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "sim/config/json_reader.hpp"
#include "sim/workload/routing.hpp"

namespace tailsim {
namespace {

constexpr int kLayers = 61, kExperts = 256, kTopK = 8;
constexpr std::int64_t kTokens = 8192;
constexpr const char* kRouting =
    R"({"type":"generated","preset":"olmoe","phases":[{"steps":100,"volatility":0.05},{"steps":1,"volatility":0.001}]})";

[[noreturn]] void usage_error(const std::string& message) {
  throw std::invalid_argument(message + " (usage: bench_routing [--quick] [--rounds N] [--steps N])");
}

int positive(const std::string& option, const std::string& text) {
  std::size_t used = 0;
  int v = 0;
  try {
    v = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || v < 1) usage_error(option + ": expected an integer >= 1, got '" + text + "'");
  return v;
}

int bench_main(int argc, char** argv) {
  int rounds = 6, steps = 200;  // steps per round
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) usage_error(a + " needs a value");
      return args[++i];
    };
    if (a == "--quick") {
      rounds = 3;
      steps = 40;
    } else if (a == "--rounds") {
      rounds = positive(a, value());
    } else if (a == "--steps") {
      steps = positive(a, value());
    } else if (a == "--help" || a == "-h") {
      std::cout << "bench_routing [--quick] [--rounds N] [--steps N]: ns per layer-step (one route() call) of MoE "
                   "routing, one thread\n";
      return 0;
    } else {
      usage_error("unknown argument '" + a + "'");
    }
  }

  const Json doc = Json::parse(kRouting);
  const auto router = make_router(JsonReader(doc, "bench_routing", "/routing"), RouterContext{kLayers, kExperts, kTopK, 3, 0});
  std::vector<std::int64_t> counts(kExperts);
  std::int64_t checksum = 0;
  auto route = [&](std::int64_t step, int layer) {
    router->route(step, layer, kTokens, counts);
    checksum += counts[static_cast<std::size_t>(layer) % counts.size()];
  };
  for (int l = 0; l < kLayers; ++l) route(0, l);  // warm-up: the first step sets up the layers' state

  double best_ns = 1e300;
  std::int64_t step = 1;
  for (int round = 0; round < rounds; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i, ++step)
      for (int l = 0; l < kLayers; ++l) route(step, l);
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    best_ns = std::min(best_ns, ns / (static_cast<double>(steps) * kLayers));
  }
  // The routing contract, so a broken router does not pass for a fast one.
  if (std::accumulate(counts.begin(), counts.end(), std::int64_t{0}) != kTokens * kTopK || checksum <= 0)
    throw std::runtime_error("the router's counts do not add up to tokens x top-k");

  std::cout << "routing: " << kExperts << " experts, top-" << kTopK << ", " << kTokens << " tokens, " << kLayers
            << " layers, olmoe preset with drift; best of " << rounds << " rounds of " << steps << " steps\n"
            << std::fixed << std::setprecision(0) << "ns per layer-step (one route() call): " << best_ns << '\n'
            << std::setprecision(3) << "61 layers x 1000 steps: " << best_ns * kLayers * 1000 * 1e-9 << " s\n";
  return 0;
}

}  // namespace
}  // namespace tailsim

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  try {
    return tailsim::bench_main(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::cerr << "bench_routing: error: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bench_routing: error: " << e.what() << '\n';
    return 3;
  }
}
