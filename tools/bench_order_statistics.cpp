// Performance benchmark of the bsp workload's order_statistics engine on one thread (not a test: the
// numbers belong to the machine). Three parts:
//  1. the textbook sweep K = 4^0 ... 4^15 (1 to 1.07 x 10^9) with `none` and `backup` (2 copies) side by
//     side on common random numbers, 10^6 steps per point: wall time, ns per step and per group-step;
//  2. the three engines (events, batched, order_statistics) on the same sweep at a few K, each run for a
//     fixed budget of worker-steps and reported as ns per step and the wall time 10^6 steps take;
//  3. the textbook's numpy Monte Carlo (tools/bench_order_statistics.py, draws every worker) for K <= 10^5
//     as the peer, run from here in the same benchmark run; skipped with a note when python3 or numpy is absent.
// Usage: bench_order_statistics [--quick] [--format table|csv]
#include <time.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "sim/config/json_reader.hpp"
#include "sim/run/runner.hpp"
#include "sim/scenario/scenario.hpp"

namespace tailsim {
namespace {

struct Row {
  std::string part, engine;
  std::int64_t gpus = 0, steps = 0;
  double wall_s = 0;
  std::string means;  // E[step] of none / backup, seconds
  double cpu_s = 0;   // CPU time of the run and its summary (sorting the step times)
  double ns_per_step() const { return wall_s * 1e9 / static_cast<double>(steps); }
};

Json scenario_doc(const std::string& engine, std::int64_t gpus, std::int64_t steps) {
  return {{"name", "bench-order-statistics"},
          {"seed", 7},
          {"steps", steps},
          {"replications", 1},
          {"cluster", {{"gpus", gpus}}},
          {"workload",
           {{"type", "bsp"},
            {"engine", engine},
            {"compute", {{"type", "shifted_lognormal"}, {"shift", 1.0}, {"mu", -0.7}, {"sigma", 0.9}}}}},
          {"policies", Json::array({{{"type", "none"}}, {{"type", "backup"}, {"copies", 2}}})}};
}

// CPU seconds of this process (one run thread): on a shared machine the wall time
// also counts other processes' turns.
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

Row measure(const std::string& part, const std::string& engine, std::int64_t gpus, std::int64_t steps) {
  const Scenario sc = load_scenario_json(scenario_doc(engine, gpus, steps), "<bench>");
  const std::vector<PointModel> models = build_all_points(sc);
  const double cpu0 = process_cpu_seconds();
  const RunResults r = run_scenario(sc, models, RunOptions{1});
  Row row{part, engine, gpus, steps, r.records.front().wall_seconds, "", 0};
  row.cpu_s = process_cpu_seconds() - cpu0;
  std::ostringstream means;
  means << std::fixed << std::setprecision(4) << r.records.at(0).step_time.mean << '/' << r.records.at(1).step_time.mean;
  row.means = means.str();
  return row;
}

std::int64_t power_of_4(int e) { return std::int64_t{1} << (2 * e); }

// numpy rows from the python peer ("numpy,K,steps,wall_s,mean/mean" lines), or a note why there are none.
std::vector<Row> numpy_rows(bool quick, std::string& note) {
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe");
  std::filesystem::path script = exe.parent_path().parent_path() / "tools" / "bench_order_statistics.py";
  if (!std::filesystem::exists(script)) script = std::filesystem::path(TAILSIM_SOURCE_DIR) / "tools/bench_order_statistics.py";
  // Debian's python for Debian's numpy: a python3 earlier on PATH (pyenv) may have no numpy.
  const std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const std::string command = python + " '" + script.string() + "'" + (quick ? " --quick" : "") + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::vector<Row> rows;
  if (pipe == nullptr) {
    note = "numpy: skipped (cannot start python3)";
    return rows;
  }
  char buffer[512];
  std::string text;
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) text += buffer;
  const int status = pclose(pipe);
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("skip:", 0) == 0) note = "numpy: skipped (" + line.substr(6) + ")";
    if (line.rfind("numpy,", 0) != 0) continue;
    std::istringstream f(line);
    Row r;
    std::string field;
    std::getline(f, r.engine, ',');
    std::getline(f, field, ',');
    r.gpus = std::stoll(field);
    std::getline(f, field, ',');
    r.steps = std::stoll(field);
    std::getline(f, field, ',');
    r.wall_s = std::stod(field);
    std::getline(f, r.means, ',');
    r.part = "engines";
    rows.push_back(r);
  }
  if (rows.empty() && note.empty()) note = "numpy: skipped (python3 exited " + std::to_string(status) + ": " + text + ")";
  return rows;
}

void print(const std::vector<Row>& rows, bool csv) {
  if (csv) {
    std::cout << "part,engine,gpus,steps,wall_s,ns_per_step,ns_per_group_step,wall_s_per_1e6_steps,mean_step_s\n";
    for (const Row& r : rows)
      std::cout << r.part << ',' << r.engine << ',' << r.gpus << ',' << r.steps << ',' << std::setprecision(6)
                << r.wall_s << ',' << r.ns_per_step() << ',' << r.ns_per_step() << ',' << r.ns_per_step() * 1e-3 << ','
                << r.means << '\n';
    return;
  }
  std::cout << std::left << std::setw(8) << "part" << std::setw(18) << "engine" << std::right << std::setw(12) << "K"
            << std::setw(10) << "steps" << std::setw(10) << "wall s" << std::setw(12) << "ns/step" << std::setw(14)
            << "s/10^6 steps" << std::setw(18) << "E[step] none/bkp" << '\n';
  for (const Row& r : rows)
    std::cout << std::left << std::setw(8) << r.part << std::setw(18) << r.engine << std::right << std::setw(12) << r.gpus
              << std::setw(10) << r.steps << std::setw(10) << std::fixed << std::setprecision(3) << r.wall_s
              << std::setw(12) << std::setprecision(1) << r.ns_per_step() << std::setw(14) << std::setprecision(2)
              << r.ns_per_step() * 1e-3 << std::setw(18) << r.means << '\n';
}

int bench_main(int argc, char** argv) {
  bool quick = false, csv = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--format" && i + 1 < argc && (std::string(argv[i + 1]) == "table" || std::string(argv[i + 1]) == "csv"))
      csv = std::string(argv[++i]) == "csv";
    else throw std::invalid_argument("unknown argument '" + a + "' (usage: bench_order_statistics [--quick] [--format table|csv])");
  }
  spdlog::set_level(spdlog::level::warn);
  const std::int64_t divisor = quick ? 20 : 1;
  std::vector<Row> rows;
  // 1. The sweep: one group of K workers, two policies, 10^6 steps per point.
  double sweep_s = 0, sweep_cpu_s = 0;
  for (int e = 0; e <= 15; ++e) {
    rows.push_back(measure("sweep", "order_statistics", power_of_4(e), 1'000'000 / divisor));
    sweep_s += rows.back().wall_s;
    sweep_cpu_s += rows.back().cpu_s;
  }
  // 2. The engines side by side, each for about a fixed budget of worker-steps (events: 100x fewer, and K <= 65,536 only).
  for (const int e : {0, 2, 5, 8, 10, 13}) {
    const std::int64_t k = power_of_4(e);
    const auto steps = [&](double budget) {
      return std::max<std::int64_t>(2, std::min<std::int64_t>(1'000'000, static_cast<std::int64_t>(budget / k))) / divisor;
    };
    rows.push_back(measure("engines", "order_statistics", k, 1'000'000 / divisor));
    if (k <= 100'000'000) rows.push_back(measure("engines", "batched", k, std::max<std::int64_t>(steps(2e8), 1)));
    if (k <= 65'536) rows.push_back(measure("engines", "events", k, std::max<std::int64_t>(steps(2e6), 1)));
  }
  std::string note;
  for (const Row& r : numpy_rows(quick, note)) rows.push_back(r);
  print(rows, csv);
  std::cout << (csv ? "# " : "") << "sweep K = 4^0 ... 4^15, none + backup, " << 1'000'000 / divisor
            << " steps per point, one thread: " << std::fixed << std::setprecision(2) << sweep_s
            << " s wall in the runs; " << sweep_cpu_s << " s of CPU time with summarizing (sorting the step times)"
            << "; one group, so ns per group-step = ns per step (both policies read the group's one draw)\n";
  if (!note.empty()) std::cout << (csv ? "# " : "") << note << '\n';
  return 0;
}

}  // namespace
}  // namespace tailsim

int main(int argc, char** argv) {
  try {
    return tailsim::bench_main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench_order_statistics: " << e.what() << '\n';
    return 2;
  }
}
