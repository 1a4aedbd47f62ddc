// The verbs of the tailsim command line, callable from tests, and the helpers they share. Each verb lives in
// a file of its own: run_verb.cpp, merge_verb.cpp, check_verb.cpp, list_verb.cpp, cost_verb.cpp; verbs.cpp
// holds the dispatch, the usage text and `validate`.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "sim/cli/progress.hpp"
#include "sim/report/report.hpp"
#include "sim/run/runner.hpp"

namespace tailsim {

// Parses argv and runs the verb; returns the exit code. Throws InputError / po::error on bad input.
// `dist` spreads `run` over MPI ranks (null: one process).
int cli_main(int argc, char** argv, std::ostream& out, std::ostream& err, Distributor* dist = nullptr);

// Parses a verb's arguments: `opts`, with every bare argument going to the option named `positional`.
boost::program_options::variables_map parse_verb_args(const std::vector<std::string>& args,
                                                      const boost::program_options::options_description& opts,
                                                      const char* positional);

// True when a verb's arguments ask for its help (--help or -h).
bool wants_help(const std::vector<std::string>& args);
// A verb's --help: its synopsis, what it does, and every option of `opts` (less the option named
// `positional`, which takes the bare arguments) with its value format and default; returns 0.
int print_verb_help(std::ostream& out, const std::string& verb,
                    const boost::program_options::options_description& opts, const char* positional = "");

// Writes results.json and results.csv into `dir` (run --out, merge --out).
void write_results(const std::string& dir, const RunResults& results, const ReportOptions& ro);

// The verbs.
int verb_run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, Distributor* dist);
int verb_merge(const std::vector<std::string>& args, std::ostream& out);
int verb_check(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int verb_validate(const std::vector<std::string>& files, std::ostream& out);
int verb_list(const std::vector<std::string>& args, std::ostream& out);

// `tailsim run`'s command line, parsed and checked; the scenario itself is loaded after.
struct RunArgs {
  std::string scenario;                       // the scenario file
  ScenarioOptions scenario_options;           // --set, --sweep, --seed, --replications, --max-memory
  std::string out_dir;                        // --out ("": none)
  bool resume = false;                        // --resume
  std::string shard;                          // --shard I/N ("": every point)
  std::string trace_file;                     // --trace ("": none)
  std::int64_t trace_steps = 10;              // --trace-steps
  double time_limit_s = 0;                    // --time-limit (0: none)
  std::optional<std::uint64_t> memory_limit;  // --max-memory
  std::string quantiles = "auto";             // --quantiles, checked once the scenario is valid
  int threads = 0;                            // --threads, or every core
  std::string format = "table";               // --format: table, json or csv
  bool quiet = false;                         // --quiet
  bool timing = false;                        // --timing
  Progress::Mode progress = Progress::Mode::kOff;
};

// Parses and checks `run`'s arguments, in the order the errors are reported, and applies --log-level.
// `stderr_is_terminal` decides --progress auto. Throws InputError / po::error on bad input.
RunArgs parse_run_args(const std::vector<std::string>& args, bool stderr_is_terminal);
// --time-limit: seconds ("90", "30min", "2h") > 0; 0 (no limit) for a century or more.
double parse_time_limit(const std::string& text);
// --seed: an integer from 0 to 2^64 - 1.
std::uint64_t parse_seed(const std::string& text);
// --shard "I/N" (1 <= I <= N): the points p with p % N == I - 1.
std::vector<bool> shard_points(const std::string& spec, std::size_t points);

}  // namespace tailsim
