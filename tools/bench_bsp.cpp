// Performance benchmark of the bsp workload on one thread (not a test: the numbers belong to the machine).
// It reports ns per worker-step (wall time / (K x steps)) of the fast path for the textbook workload, how
// that cost and the peak memory move as K grows to 10^6, and the event path's events/s. tools/bench runs it
// next to the textbook's own numpy Monte Carlo (tools/bench_numpy.py) and prints the speed-up.
//
// Each case runs in a fresh child process (this binary re-run with --run-case), so its peak RSS is its own
// and not the high-water mark left by an earlier, larger case.
//
// Usage: bench_bsp [--quick] [--format table|csv]
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
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

struct BenchCase {
  std::string name;  // engine:policies, no spaces or commas (it is a CSV field and an awk key in tools/bench)
  std::string engine;  // the bsp workload's "engine": "fast" or "events"
  Json policies;
  std::int64_t gpus = 0;
  // Chosen so a full measurement takes about 1-2 s on a 2020s x86 core; --quick divides by kQuickDivisor.
  std::int64_t steps = 0;
};

constexpr std::int64_t kQuickDivisor = 20;

Json none_policy() { return {{"type", "none"}}; }
Json backup_copies_policy() { return {{"type", "backup"}, {"copies", 2}}; }
Json backup_trigger_policy() { return {{"type", "backup"}, {"quantile", 0.9}, {"multiplier", 1.5}}; }

std::vector<BenchCase> bench_cases() {
  std::vector<BenchCase> cases;
  // The textbook table's largest point: none alone, then none and backup on common random numbers.
  cases.push_back({"fast:none", "fast", Json::array({none_policy()}), 1024, 1'000'000});
  cases.push_back({"fast:none+backup", "fast", Json::array({none_policy(), backup_copies_policy()}), 1024, 500'000});
  // Flat in K: the same 10^9 worker-steps at every K, so the wall time should not move either.
  for (const std::int64_t gpus : {1'000, 10'000, 100'000, 1'000'000})
    cases.push_back({"fast:none", "fast", Json::array({none_policy()}), gpus, 1'000'000'000 / gpus});
  // Spark-style trigger needs every worker's duration and a selection per step: the fast path's slow lane.
  cases.push_back({"fast:backup-trigger", "fast", Json::array({backup_trigger_policy()}), 1024, 25'000});
  // Every completion through the event queue.
  cases.push_back({"events:none", "events", Json::array({none_policy()}), 1024, 15'000});
  cases.push_back({"events:backup-trigger", "events", Json::array({backup_trigger_policy()}), 1024, 10'000});
  return cases;
}

// The textbook's tail-at-scale model: worker time 1 + lognormal(mu = -0.7, sigma = 0.9), seconds.
Json scenario_doc(const BenchCase& c, std::int64_t steps) {
  return {
      {"name", c.name},
      {"seed", 7},
      {"steps", steps},
      {"replications", 1},  // one run on one thread: the benchmark measures the engine, not the pool
      {"cluster", {{"gpus", c.gpus}, {"gpus_per_node", 8}, {"gpu", "h100-sxm"}}},
      {"workload",
       {{"type", "bsp"},
        {"engine", c.engine},
        {"compute", {{"type", "shifted_lognormal"}, {"shift", 1.0}, {"mu", -0.7}, {"sigma", 0.9}}}}},
      {"policies", c.policies},
  };
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

struct Measurement {
  std::int64_t steps = 0;
  double wall_s = 0;
  std::uint64_t events = 0;     // summed over the case's policies
  std::string mean_step_s;      // E[barrier time] of each policy, '/'-separated
  double peak_rss_mib = 0;      // whole child process
  double run_rss_mib = 0;       // growth of the peak during the run itself
};

// The child side: one case, one line on stdout.
int run_case(const BenchCase& c, std::int64_t steps) {
  const Scenario scenario = load_scenario_json(scenario_doc(c, steps), "<bench:" + c.name + ">");
  const std::vector<PointModel> models = build_all_points(scenario);
  const double rss_before_mib = peak_rss_mib();
  const RunResults results = run_scenario(scenario, models, RunOptions{1});
  Measurement m;
  m.steps = steps;
  // The records of one point share its wall time: the workload run, without building or summarising.
  m.wall_s = results.records.front().wall_seconds;
  std::ostringstream means;
  means << std::setprecision(4) << std::fixed;
  for (const Record& r : results.records) {
    m.events += r.events;
    means << (means.tellp() > 0 ? "/" : "") << r.step_time.mean;
  }
  m.peak_rss_mib = peak_rss_mib();
  std::cout << m.steps << ' ' << std::setprecision(9) << m.wall_s << ' ' << m.events << ' ' << means.str() << ' '
            << m.peak_rss_mib << ' ' << m.peak_rss_mib - rss_before_mib << '\n';
  return 0;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

// The parent side: re-runs this binary for case `index` and parses its line.
Measurement measure_in_child(std::size_t index, std::int64_t steps) {
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string command =
      shell_quote(exe) + " --run-case " + std::to_string(index) + " --steps " + std::to_string(steps);
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot start " + command);
  std::string line;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) line += buffer;
  if (pclose(pipe) != 0) throw std::runtime_error("case " + std::to_string(index) + " failed: " + command);
  std::istringstream in(line);
  Measurement m;
  if (!(in >> m.steps >> m.wall_s >> m.events >> m.mean_step_s >> m.peak_rss_mib >> m.run_rss_mib))
    throw std::runtime_error("cannot parse the output of " + command + ": '" + line + "'");
  return m;
}

void print(const std::vector<BenchCase>& cases, const std::vector<Measurement>& ms, bool csv) {
  std::cout << std::fixed;
  if (csv) {
    std::cout << "case,gpus,steps,wall_s,ns_per_worker_step,events,events_per_s,mean_step_s,peak_rss_mib,"
                 "run_rss_mib\n";
  } else {
    std::cout << std::left << std::setw(22) << "case" << std::right << std::setw(9) << "K" << std::setw(10)
              << "steps" << std::setw(9) << "wall s" << std::setw(11) << "ns/w-step" << std::setw(12) << "events/s"
              << std::setw(17) << "E[step] s" << std::setw(10) << "RSS MiB" << std::setw(10) << "run MiB" << '\n';
  }
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const BenchCase& c = cases[i];
    const Measurement& m = ms[i];
    const double worker_steps = static_cast<double>(c.gpus) * static_cast<double>(m.steps);
    const double ns_per_worker_step = m.wall_s * 1e9 / worker_steps;
    const double events_per_s = static_cast<double>(m.events) / m.wall_s;
    if (csv) {
      std::cout << c.name << ',' << c.gpus << ',' << m.steps << ',' << std::setprecision(4) << m.wall_s << ','
                << std::setprecision(3) << ns_per_worker_step << ',' << m.events << ',' << std::setprecision(0)
                << events_per_s << ',' << m.mean_step_s << ',' << std::setprecision(1) << m.peak_rss_mib << ','
                << m.run_rss_mib << '\n';
    } else {
      std::cout << std::left << std::setw(22) << c.name << std::right << std::setw(9) << c.gpus << std::setw(10)
                << m.steps << std::setw(9) << std::setprecision(3) << m.wall_s << std::setw(11)
                << std::setprecision(2) << ns_per_worker_step << std::setw(12) << std::setprecision(3)
                << std::scientific << events_per_s << std::fixed << std::setw(17) << m.mean_step_s << std::setw(10)
                << std::setprecision(1) << m.peak_rss_mib << std::setw(10) << m.run_rss_mib << '\n';
    }
  }
  if (!csv) {
    std::cout << "ns/w-step = wall / (K x steps), one thread; events/s = the record's events / wall; "
                 "RSS = the case's peak (ru_maxrss), run = its growth during the run.\n";
  }
}

[[noreturn]] void usage_error(const std::string& message) {
  throw std::invalid_argument(message + " (usage: bench_bsp [--quick] [--format table|csv])");
}

int bench_main(int argc, char** argv) {
  bool quick = false;
  bool csv = false;
  std::optional<std::size_t> run_case_index;
  std::optional<std::int64_t> steps_override;
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) usage_error(a + " needs a value");
      return args[++i];
    };
    if (a == "--quick") {
      quick = true;
    } else if (a == "--format") {
      const std::string& f = value();
      if (f != "table" && f != "csv") usage_error("--format: expected table or csv, got '" + f + "'");
      csv = f == "csv";
    } else if (a == "--run-case") {  // internal: the child side of measure_in_child
      run_case_index = std::stoul(value());
    } else if (a == "--steps") {  // internal
      steps_override = std::stoll(value());
    } else if (a == "--help" || a == "-h") {
      std::cout << "bench_bsp [--quick] [--format table|csv]: ns per worker-step of the bsp workload, one thread\n";
      return 0;
    } else {
      usage_error("unknown argument '" + a + "'");
    }
  }
  const std::vector<BenchCase> cases = bench_cases();
  if (run_case_index) {
    if (*run_case_index >= cases.size()) usage_error("--run-case: no such case");
    const BenchCase& c = cases[*run_case_index];
    return run_case(c, steps_override.value_or(c.steps));
  }
  std::vector<Measurement> measurements;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::int64_t steps = quick ? std::max<std::int64_t>(1, cases[i].steps / kQuickDivisor) : cases[i].steps;
    measurements.push_back(measure_in_child(i, steps));
  }
  print(cases, measurements, csv);
  return 0;
}

}  // namespace
}  // namespace tailsim

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  try {
    return tailsim::bench_main(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::cerr << "bench_bsp: error: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bench_bsp: error: " << e.what() << '\n';
    return 3;
  }
}
