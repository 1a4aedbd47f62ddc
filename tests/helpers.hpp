// Shared helpers for the tests: running scenarios given as JSON text, the CLI as a subprocess, and
// numerical integration for exact reference values.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "sim/config/error.hpp"
#include "sim/policy/moe_policy.hpp"
#include "sim/run/runner.hpp"
#include "sim/scenario/scenario.hpp"

namespace tailsim::test {

inline RunResults run_json(const std::string& text, int threads = 1) {
  const Scenario sc = load_scenario_json(Json::parse(text), "test.json");
  const std::vector<PointModel> models = build_all_points(sc);
  return run_scenario(sc, models, RunOptions{threads});
}

// One replication of a scenario's first point, straight from its workload: each policy's tally, in order.
inline std::vector<PolicyTally> run_first_point(const Scenario& sc, std::int64_t steps,
                                                std::vector<std::string>* labels = nullptr) {
  const PointModel m = build_point(sc, sc.points.at(0));
  const std::vector<const Policy*> views = m.policy_views();
  if (labels)
    for (const Policy* p : views) labels->push_back(p->label());
  RunRequest req;
  req.seed = sc.seed;
  req.steps = steps;
  req.policies = views;
  return m.workload->run(req);
}

// The input error a scenario given as JSON text raises when it is built and run, or "no error".
inline std::string run_error(const std::string& text) {
  try {
    run_json(text);
  } catch (const InputError& e) {
    return std::string(e.what());
  }
  return std::string("no error");
}

inline const Record& record(const RunResults& r, const std::string& policy, std::size_t point = 0) {
  std::size_t seen = 0;
  for (const Record& rec : r.records) {
    if (rec.policy != policy) continue;
    if (seen++ == point) return rec;
  }
  throw std::runtime_error("no record for policy " + policy);
}

// What a MoE controller knows of a run with one MoE layer (for policies driven by hand-built layers).
inline MoeRunInfo moe_run_info(std::int64_t gpus, int experts, int top_k, std::int64_t tokens_per_gpu) {
  MoeRunInfo i;
  i.gpus = gpus;
  i.experts = experts;
  i.top_k = top_k;
  i.moe_layers = 1;
  i.tokens_per_gpu = tokens_per_gpu;
  return i;
}

// Composite Simpson's rule on [a, b] with n (even) intervals.
inline double simpson(const std::function<double(double)>& f, double a, double b, int n = 20000) {
  const double h = (b - a) / n;
  double s = f(a) + f(b);
  for (int i = 1; i < n; ++i) s += f(a + i * h) * (i % 2 ? 4.0 : 2.0);
  return s * h / 3.0;
}

inline double phi_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::filesystem::path temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("tailsim-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Runs the tailsim binary with `args` (shell words), capturing stdout, stderr and the exit code.
inline CommandResult run_cli(const std::string& args) {
  const auto dir = temp_dir("cli");
  const std::string cmd = std::string(TAILSIM_BINARY) + " " + args + " >" + (dir / "out").string() + " 2>" +
                          (dir / "err").string();
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(dir / "out");
  r.err = read_file(dir / "err");
  std::filesystem::remove_all(dir);
  return r;
}

inline std::string write_temp(const std::string& name, const std::string& content) {
  const auto dir = std::filesystem::temp_directory_path() / ("tailsim-test-files-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::ofstream(path, std::ios::binary) << content;
  return path.string();
}

}  // namespace tailsim::test
