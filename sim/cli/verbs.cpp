#include "sim/cli/verbs.hpp"

#include <filesystem>
#include <iomanip>
#include <string>
#include <thread>
#include <vector>

#include <boost/program_options.hpp>
#include <spdlog/spdlog.h>

#include "sim/cluster/cluster.hpp"
#include "sim/cost/cost_model.hpp"
#include "sim/policy/policy.hpp"
#include "sim/report/report.hpp"
#include "sim/scenario/configs.hpp"
#include "sim/scenario/error.hpp"
#include "sim/scenario/runner.hpp"
#include "sim/stats/distribution.hpp"
#include "sim/workload/routing.hpp"
#include "sim/workload/workload.hpp"

namespace po = boost::program_options;

namespace tailsim {

namespace {

constexpr const char* kUsage = R"(tailsim: a discrete-event simulator of GPU clusters (tail at scale, MoE, straggler policies)

usage:
  tailsim run SCENARIO.json [--set PATH=VALUE]... [--sweep PATH=V1,V2,...]... [--out DIR]
                            [--threads N] [--seed N] [--replications N] [--format table|json|csv]
                            [--quiet] [--timing] [--log-level LEVEL]
  tailsim validate SCENARIO.json...
  tailsim list [policies|distributions|workloads|routers|cost_models|gpus|models|clusters]

Exit codes: 0 ok, 1 a check failed, 2 bad input, 3 internal error.
)";

template <class Reg>
void list_registry(std::ostream& out, const Reg& reg) {
  out << reg.kind() << ":\n";
  for (const auto& e : reg.entries()) {
    out << "  " << std::left << std::setw(18) << e.name << e.description << '\n';
    for (const ParamDoc& p : e.params) out << "      " << std::setw(14) << p.name << p.help << '\n';
  }
}

void set_log_level(const std::string& level) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off")
    throw InputError("", "--log-level", "unknown level '" + level + "'; valid: trace, debug, info, warn, error, off");
  spdlog::set_level(parsed);
}

int verb_list(const std::vector<std::string>& args, std::ostream& out) {
  const std::vector<std::string> kinds = {"policies", "distributions", "workloads", "routers", "cost_models", "gpus", "models", "clusters"};
  std::vector<std::string> wanted = args.empty() ? kinds : args;
  for (const std::string& w : wanted) {
    if (w == "policies") list_registry(out, policy_registry());
    else if (w == "distributions") list_registry(out, distribution_registry());
    else if (w == "workloads") list_registry(out, workload_registry());
    else if (w == "routers") list_registry(out, router_registry());
    else if (w == "cost_models") list_registry(out, cost_model_registry());
    else if (w == "gpus" || w == "models" || w == "clusters") {
      out << w << " (configs/" << w << "):\n";
      for (const std::string& name : config_names(w)) {
        const ConfigDoc doc = load_config(JsonReader(Json::object(), ""), w, name);
        out << "  " << std::left << std::setw(18) << name << doc.json.value("description", "") << '\n';
      }
    } else {
      const std::string hint = closest_match(w, kinds);
      throw InputError("", "list", "unknown registry '" + w + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                                       "; valid: " + join(kinds));
    }
  }
  return 0;
}

int verb_validate(const std::vector<std::string>& files, std::ostream& out) {
  if (files.empty()) throw InputError("", "validate", "expected at least one scenario file");
  for (const std::string& f : files) {
    const Scenario sc = load_scenario(f);
    build_all_points(sc);
    out << f << ": ok (" << sc.points.size() << " point" << (sc.points.size() == 1 ? "" : "s") << ")\n";
  }
  return 0;
}

int verb_run(const std::vector<std::string>& args, std::ostream& out) {
  po::options_description opts("run options");
  std::vector<std::string> positional;
  ScenarioOptions so;
  std::string out_dir, format = "table", log_level = "warn";
  int threads = 0;
  std::uint64_t seed = 0;
  std::int64_t replications = 0;
  opts.add_options()
      ("scenario", po::value(&positional), "scenario file")
      ("set", po::value(&so.sets), "override a scenario value: PATH=VALUE (repeatable)")
      ("sweep", po::value(&so.sweeps), "sweep a value: PATH=V1,V2,... (repeatable; cartesian product)")
      ("out", po::value(&out_dir), "write results.json and results.csv to DIR (atomically)")
      ("threads", po::value(&threads), "worker threads (default: all cores); results do not depend on it")
      ("seed", po::value(&seed), "override the scenario's seed")
      ("replications", po::value(&replications), "override the scenario's replications")
      ("format", po::value(&format), "stdout format: table, json or csv")
      ("quiet", po::bool_switch(), "print nothing on stdout")
      ("timing", po::bool_switch(), "add wall_seconds to the results (they then differ from run to run)")
      ("log-level", po::value(&log_level), "trace, debug, info, warn (default), error, off");
  po::positional_options_description pos;
  pos.add("scenario", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  po::notify(vm);
  set_log_level(log_level);
  if (positional.size() != 1) throw InputError("", "run", "expected one scenario file, got " + std::to_string(positional.size()));
  if (format != "table" && format != "json" && format != "csv")
    throw InputError("", "--format", "unknown format '" + format + "'; valid: table, json, csv");
  if (vm.count("threads") && threads < 1) throw InputError("", "--threads", "expected an integer >= 1, got " + std::to_string(threads));
  if (vm.count("seed")) so.seed = seed;
  if (vm.count("replications")) {
    if (replications < 1) throw InputError("", "--replications", "expected an integer >= 1");
    so.replications = replications;
  }
  if (!vm.count("threads")) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  const Scenario sc = load_scenario(positional[0], so);
  const std::vector<PointModel> models = build_all_points(sc);  // all validation before any simulation
  if (!out_dir.empty()) prepare_output_dir(out_dir, "--out");
  spdlog::info("{}: {} points x {} replications, {} threads", sc.name, sc.points.size(), sc.replications, threads);

  const RunResults results = run_scenario(sc, models, RunOptions{threads});
  ReportOptions ro;
  ro.timing = vm["timing"].as<bool>();
  if (!out_dir.empty()) {
    write_atomically((std::filesystem::path(out_dir) / "results.json").string(), results_json(results, ro).dump(2) + "\n");
    write_atomically((std::filesystem::path(out_dir) / "results.csv").string(), results_csv(results, ro));
  }
  if (!vm["quiet"].as<bool>()) {
    if (format == "table") {
      print_table(out, results, ro);
      out << "(" << std::fixed << std::setprecision(2) << results.wall_seconds << " s wall, " << threads << " thread"
          << (threads == 1 ? "" : "s") << ")\n";
    } else if (format == "json") {
      out << results_json(results, ro).dump(2) << '\n';
    } else {
      out << results_csv(results, ro);
    }
  }
  spdlog::info("done in {:.3f} s", results.wall_seconds);
  return 0;
}

}  // namespace

int cli_main(int argc, char** argv, std::ostream& out, std::ostream&) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    out << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string verb = args[0];
  args.erase(args.begin());
  if (verb == "run") return verb_run(args, out);
  if (verb == "validate") return verb_validate(args, out);
  if (verb == "list") return verb_list(args, out);
  const std::vector<std::string> verbs = {"run", "validate", "list"};
  const std::string hint = closest_match(verb, verbs);
  throw InputError("", "", "unknown command '" + verb + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                               "; valid: " + join(verbs) + " (see tailsim --help)");
}

}  // namespace tailsim
