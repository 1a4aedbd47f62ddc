// The command line's dispatch and usage text, the helpers the verbs share, and `tailsim validate`.
#include "sim/cli/verbs.hpp"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <stdexcept>
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

// One line per verb: `tailsim --help` lists them, `tailsim VERB --help` starts with its own.
struct VerbInfo {
  const char* name;
  const char* synopsis;  // the verb's arguments, its options summarised as [OPTIONS]
  const char* summary;
};

constexpr VerbInfo kVerbs[] = {
    {"run", "SCENARIO.json [OPTIONS]", "simulate a scenario: a table per sweep point and policy"},
    {"merge", "DIR... --out DIR", "join shard outputs into one result, as if run at once"},
    {"check", "SCENARIO.json|DIR... [OPTIONS]", "judge scenarios' \"expect\" blocks (exit 1 on a failure)"},
    {"validate", "SCENARIO.json...", "parse and validate every sweep point, no simulation"},
    {"list", "[KIND]...", "the registered types and the configs/ files"},
    {"cost", "--gpu NAME --model NAME [OPTIONS]", "expert service times of a GPU and MoE model"},
};

constexpr const char* kExitCodes = R"(Exit codes: 0 ok, 1 a check failed, 2 bad input, 3 internal error, 74 an output file could not be
written (disk full, I/O error), 124 stopped by --time-limit, 130 interrupted (Ctrl-C); a stopped run
keeps its complete points (--resume finishes it).
)";

void print_usage(std::ostream& out) {
  out << "tailsim: a discrete-event simulator of GPU clusters (tail at scale, MoE, straggler policies)\n\nusage:\n";
  const auto line = [&](const std::string& command, const std::string& summary) {
    constexpr std::size_t kColumn = 48;
    out << "  " << command << std::string(command.size() + 2 > kColumn ? 2 : kColumn - command.size(), ' ') << summary
        << '\n';
  };
  for (const VerbInfo& v : kVerbs) line(std::string("tailsim ") + v.name + " " + v.synopsis, v.summary);
  line("tailsim --version", "the version, and whether MPI is built in (mpirun)");
  line("tailsim --help", "this list");
  out << "\ntailsim VERB --help (or tailsim help VERB) lists every option of VERB, its value format and default.\n\n"
      << kExitCodes;
}

std::vector<std::string> verb_names() {
  std::vector<std::string> names;
  for (const VerbInfo& v : kVerbs) names.emplace_back(v.name);
  return names;
}

}  // namespace

void write_results(const std::string& dir, const RunResults& results, const ReportOptions& ro) {
  // Replaced together: a failed write (disk full) leaves both old files, never a new one beside an old one.
  write_atomically_all({{(std::filesystem::path(dir) / "results.json").string(), results_json(results, ro).dump(2) + "\n"},
                        {(std::filesystem::path(dir) / "results.csv").string(), results_csv(results, ro)}});
}

bool wants_help(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; });
}

int print_verb_help(std::ostream& out, const std::string& verb, const po::options_description& opts,
                    const char* positional) {
  const auto info = std::find_if(std::begin(kVerbs), std::end(kVerbs), [&](const VerbInfo& v) { return v.name == verb; });
  if (info == std::end(kVerbs)) throw std::logic_error("no help for verb '" + verb + "'");
  out << "usage: tailsim " << info->name << ' ' << info->synopsis << "\n\n" << info->summary << "\n\n";
  po::options_description shown("options", 110, 55);
  for (const auto& o : opts.options())
    if (o->long_name() != positional) shown.add(o);
  shown.add_options()("help,h", "this text");
  out << shown;
  return 0;
}

int verb_validate(const std::vector<std::string>& files, std::ostream& out) {
  if (wants_help(files)) return print_verb_help(out, "validate", po::options_description());
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
    // The engines the points run on, in order of first use (the bsp workload's choice: fast picks one).
    std::vector<std::string> engines;
    for (const PointModel& m : models)
      if (const std::string e = m.workload->engine_used(m.policy_views());
          !e.empty() && std::find(engines.begin(), engines.end(), e) == engines.end())
        engines.push_back(e);
    if (!engines.empty()) out << "; engine: " << join(engines, ", ");
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
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || (args[0] == "help" && args.size() == 1)) {
    print_usage(out);
    return args.empty() ? 2 : 0;
  }
  const bool help = args[0] == "help";  // tailsim help VERB: VERB --help
  if (help) args.erase(args.begin());
  const std::string verb = args[0];
  args.erase(args.begin());
  if (help) args = {"--help"};
  if (verb == "run") return verb_run(args, out, err, dist);
  if (verb == "merge") return verb_merge(args, out);
  if (verb == "check") return verb_check(args, out, err);
  if (verb == "validate") return verb_validate(args, out);
  if (verb == "list") return verb_list(args, out);
  if (verb == "cost") return verb_cost(args, out);
  const std::vector<std::string> verbs = verb_names();
  const std::string hint = closest_match(verb, verbs);
  throw InputError("", "", "unknown command '" + verb + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                               "; valid: " + join(verbs) + " (see tailsim --help)");
}

}  // namespace tailsim
