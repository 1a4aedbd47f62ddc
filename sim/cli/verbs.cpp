// The command line's dispatch and usage text, the helpers the verbs share, and `tailsim validate`.
#include "sim/cli/verbs.hpp"

#include <filesystem>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "sim/cli/cost_verb.hpp"
#include "sim/config/error.hpp"
#include "sim/config/files.hpp"
#include "sim/run/expect.hpp"
#include "sim/run/runner.hpp"

namespace po = boost::program_options;

namespace tailsim {

namespace {

constexpr const char* kUsage = R"(tailsim: a discrete-event simulator of GPU clusters (tail at scale, MoE, straggler policies)

usage:
  tailsim run SCENARIO.json [--set PATH=VALUE]... [--sweep PATH=V1,V2,...]... [--out DIR [--resume]]
                            [--threads N] [--seed N] [--replications N] [--format table|json|csv]
                            [--shard I/N] [--trace FILE [--trace-steps N]] [--progress auto|always|never]
                            [--time-limit SECONDS] [--max-memory SIZE] [--quantiles auto|exact|sketch]
                            [--quiet] [--timing] [--log-level LEVEL]
  tailsim merge DIR... --out DIR
  tailsim check SCENARIO.json|DIR... [--junit FILE] [--threads N] [--max-memory SIZE]
  tailsim validate SCENARIO.json...
  tailsim list [policies|distributions|workloads|routers|cost-models|gpus|models|clusters]
  tailsim cost --gpu NAME --model NAME [--tokens 1,8,64,512] [--format table|csv] [--table FILE] [--cost JSON]

Exit codes: 0 ok, 1 a check failed, 2 bad input, 3 internal error, 74 an output file could not be
written (disk full, I/O error), 124 stopped by --time-limit, 130 interrupted (Ctrl-C); a stopped run
keeps its complete points (--resume finishes it).
)";

}  // namespace

void write_results(const std::string& dir, const RunResults& results, const ReportOptions& ro) {
  // Replaced together: a failed write (disk full) leaves both old files, never a new one beside an old one.
  write_atomically_all({{(std::filesystem::path(dir) / "results.json").string(), results_json(results, ro).dump(2) + "\n"},
                        {(std::filesystem::path(dir) / "results.csv").string(), results_csv(results, ro)}});
}

int verb_validate(const std::vector<std::string>& files, std::ostream& out) {
  if (files.empty()) throw InputError("", "validate", "expected at least one scenario file");
  for (const std::string& f : files) {
    const Scenario sc = load_scenario(f);
    const std::vector<PointModel> models = build_all_points(sc);
    check_expectations_match(sc, models, parse_expectations(sc));
    out << f << ": ok (" << sc.points.size() << " point" << (sc.points.size() == 1 ? "" : "s");
    // A sweep may give 'gpu' at some points only: say so of the first point without it.
    for (const PointModel& m : models)
      if (!m.cluster.gpu_given) {
        out << "; gpu: not needed (" << m.workload->gpu_not_needed() << ")";
        break;
      }
    out << ")\n";
  }
  return 0;
}

po::variables_map parse_verb_args(const std::vector<std::string>& args, const po::options_description& opts,
                                  const char* positional) {
  po::positional_options_description pos;
  pos.add(positional, -1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  po::notify(vm);
  return vm;
}

int cli_main(int argc, char** argv, std::ostream& out, std::ostream& err, Distributor* dist) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    out << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string verb = args[0];
  args.erase(args.begin());
  if (verb == "run") return verb_run(args, out, err, dist);
  if (verb == "merge") return verb_merge(args, out);
  if (verb == "check") return verb_check(args, out, err);
  if (verb == "validate") return verb_validate(args, out);
  if (verb == "list") return verb_list(args, out);
  if (verb == "cost") return verb_cost(args, out);
  const std::vector<std::string> verbs = {"run", "merge", "check", "validate", "list", "cost"};
  const std::string hint = closest_match(verb, verbs);
  throw InputError("", "", "unknown command '" + verb + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                               "; valid: " + join(verbs) + " (see tailsim --help)");
}

}  // namespace tailsim
