// Performance benchmark of the pipeline workload on one thread (not a test: the numbers belong to the
// machine). Cases: dp = 1,024 x pp = 8 with 32 microbatches (8,192 ranks) for 100 steps on the fast path
// (issue 16's target: under 10 s), the same shape with fewer steps through the event engine, and a replay
// of each ByteDance trace with what-if analysis and its decomposition (target: under 2 s each). Reports
// wall seconds, ns per task (one forward or backward of one microbatch on one rank) and events/s.
//
// Usage: bench_pipeline [--quick]   (--quick: 10 steps instead of 100 for the large cases)
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "sim/run/runner.hpp"
#include "sim/scenario/scenario.hpp"

namespace tailsim {
namespace {

struct Case {
  std::string name;
  std::string doc;
  double tasks_per_step = 0;
};

double run_case(const Case& c, std::int64_t* steps_out, std::uint64_t* events_out) {
  const auto start = std::chrono::steady_clock::now();
  const Scenario sc = load_scenario_json(Json::parse(c.doc), std::string(TAILSIM_SOURCE_DIR) + "/scenarios/training/bench.json");
  const std::vector<PointModel> models = build_all_points(sc);
  const RunResults r = run_scenario(sc, models, RunOptions{1});
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  *steps_out = r.records.at(0).step_time.count;
  *events_out = r.records.at(0).events;
  return wall;
}

std::string synthetic(const std::string& engine, std::int64_t steps) {
  return R"({"name": "bench", "seed": 1, "steps": )" + std::to_string(steps) +
         R"(, "cluster": {"gpus": 8192, "gpus_per_node": 8, "gpu": "h100-sxm", "noise": {"type": "normal", "mean": 1, "stddev": 0.004}},
  "workload": {"type": "pipeline", "pp": 8, "microbatches": 32, "engine": ")" + engine + R"(",
    "forward": {"type": "lognormal", "mu": -4.6, "sigma": 0.1}, "p2p_bytes": "32MiB", "grad_bytes": "2GiB",
    "overlap_grad_reduce": true, "optimizer": "20ms"},
  "policies": [{"type": "none"}]})";
}

std::string replay(const std::string& trace, int gpus, int steps) {
  return R"({"name": "bench", "seed": 1, "steps": )" + std::to_string(steps) + R"(, "cluster": {"gpus": )" +
         std::to_string(gpus) + R"(}, "workload": {"type": "pipeline", "trace": {"file": "../../data/bytedance-stragglers/trace-)" +
         trace + R"(.csv.gz"}, "whatif": {"decompose": true}}, "policies": [{"type": "none"}]})";
}

}  // namespace
}  // namespace tailsim

int main(int argc, char** argv) {
  using namespace tailsim;
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  const std::int64_t steps = quick ? 10 : 100;
  const double big = 1024.0 * 8 * 32 * 2;
  const std::vector<Case> cases = {
      {"fast dp=1024 pp=8 m=32", synthetic("fast", steps), big},
      {"events dp=1024 pp=8 m=32", synthetic("events", quick ? 2 : 10), big},
      {"replay AR + what-if", replay("AR", 16, 44), 4.0 * 4 * 32 * 2},
      {"replay SE + what-if", replay("SE", 64, 43), 32.0 * 2 * 8 * 2},
      {"replay ST + what-if", replay("ST", 8, 32), 2.0 * 4 * 4 * 2}};
  std::printf("%-28s %8s %10s %12s %14s\n", "case", "steps", "wall s", "ns/task", "events/s");
  for (const Case& c : cases) {
    std::int64_t n = 0;
    std::uint64_t events = 0;
    const double wall = run_case(c, &n, &events);
    std::printf("%-28s %8lld %10.3f %12.1f %14.3g\n", c.name.c_str(), static_cast<long long>(n), wall,
                wall * 1e9 / (c.tasks_per_step * static_cast<double>(n)), static_cast<double>(events) / wall);
  }
  return 0;
}
