// `tailsim run`: parses the command line, loads and validates the scenario, runs it (stopped by Ctrl-C or
// --time-limit), writes --out and prints the results.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <iomanip>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <boost/program_options.hpp>
#include <spdlog/spdlog.h>

#include "sim/cli/progress.hpp"
#include "sim/cli/verbs.hpp"
#include "sim/config/error.hpp"
#include "sim/config/files.hpp"
#include "sim/report/records.hpp"
#include "sim/report/report.hpp"
#include "sim/run/expect.hpp"
#include "sim/run/limits.hpp"
#include "sim/run/runner.hpp"
#include "sim/run/trace_run.hpp"

namespace po = boost::program_options;

namespace tailsim {

namespace {

constexpr int kExitTimeLimit = 124;   // as timeout(1)
constexpr int kExitInterrupted = 130; // 128 + SIGINT

void set_log_level(const std::string& level) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off")
    throw InputError("", "--log-level", "unknown level '" + level + "'; valid: trace, debug, info, warn, error, off");
  spdlog::set_level(parsed);
}

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

// Stops a run: Ctrl-C / SIGTERM (the handler; a second signal ends the process at once) or --time-limit.
std::atomic<bool> g_stop{false};
std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int sig) {
  g_stop_signal = sig;
  g_stop = true;
  std::signal(sig, SIG_DFL);
}

constexpr double kNoTimeLimitAbove_s = 3.2e9;  // about a century

// Sets g_stop after `seconds` unless cancelled first.
class Deadline {
 public:
  explicit Deadline(double seconds) {
    if (seconds <= 0) return;
    thread_ = std::thread([this, seconds] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return cancelled_; })) {
        expired_ = true;
        g_stop = true;
      }
    });
  }
  ~Deadline() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cancelled_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool expired() const { return expired_; }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool cancelled_ = false;
  std::atomic<bool> expired_{false};
  std::thread thread_;
};

// run's options as typed, before they are checked into RunArgs.
struct RunFlags {
  std::vector<std::string> positional;
  std::string log_level = "warn", progress = "auto", time_limit, max_memory, seed;
  std::int64_t replications = 0;
};

void add_run_options(po::options_description& opts, RunArgs& a, RunFlags& f) {
  opts.add_options()
      ("scenario", po::value(&f.positional), "scenario file")
      ("set", po::value(&a.scenario_options.sets)->value_name("PATH=VALUE"),
       "override a scenario value, e.g. cluster.gpus=64 (repeatable; the value is read as JSON when it parses)")
      ("sweep", po::value(&a.scenario_options.sweeps)->value_name("PATH=V1,V2,..."),
       "sweep a value (repeatable; several form a cartesian product)")
      ("out", po::value(&a.out_dir)->value_name("DIR"),
       "write records.jsonl (per point, as it completes), results.json and results.csv to DIR (default: none)")
      ("resume", po::bool_switch(), "skip the points already complete in --out DIR")
      ("threads", po::value(&a.threads)->value_name("N"), "worker threads (default: all cores); results do not depend on it")
      ("seed", po::value(&f.seed)->value_name("N"), "override the scenario's seed (0 to 2^64-1)")
      ("replications", po::value(&f.replications)->value_name("N"), "override the scenario's replications (>= 1)")
      ("format", po::value(&a.format)->value_name("table|json|csv"), "stdout format (default: table)")
      ("shard", po::value(&a.shard)->value_name("I/N"),
       "run only shard I of N (1 <= I <= N) of the points; join the shards with tailsim merge (default: all)")
      ("trace", po::value(&a.trace_file)->value_name("FILE"),
       "write the first --trace-steps steps of every point as a Chrome/Perfetto trace (default: none)")
      ("trace-steps", po::value(&a.trace_steps)->value_name("N"), "steps in the trace (default: 10)")
      ("progress", po::value(&f.progress)->value_name("auto|always|never"),
       "auto: a bar on stderr when it is a terminal, a log line every 10 s otherwise; always: the bar; never "
       "(default: auto)")
      ("time-limit", po::value(&f.time_limit)->value_name("DURATION"),
       "stop after this long (\"90\" seconds, \"30min\", \"2h\"), keeping the points complete by then, exit 124 "
       "(default: none)")
      ("max-memory", po::value(&f.max_memory)->value_name("SIZE"),
       "refuse a run estimated to need more (\"8GiB\"; default: the memory available)")
      ("quantiles", po::value(&a.quantiles)->value_name("auto|exact|sketch"),
       "exact (keep every step time), sketch (bounded memory, relative error <= 2^-11) or auto: exact if it fits "
       "(default: auto)")
      ("quiet", po::bool_switch(), "print the results only: no progress (unless --progress is given) and no wall-time line; warnings "
       "and errors still go to stderr")
      ("timing", po::bool_switch(), "add wall_seconds to the results (they then differ from run to run)")
      ("log-level", po::value(&f.log_level)->value_name("LEVEL"),
       "trace, debug, info, warn, error or off, on stderr (default: warn)");
}

void check_quantiles_method(const std::string& method) {
  if (method != "auto" && method != "exact" && method != "sketch")
    throw InputError("", "--quantiles", "unknown method '" + method + "'; valid: auto, exact, sketch");
}

// A scenario loaded and every point built, with the files that took (InputFiles): all before any simulation.
struct LoadedRun {
  Scenario scenario;
  std::vector<PointModel> models;
  std::vector<InputFiles::File> inputs;  // besides the scenario file itself (its document is in the fingerprint)
};

LoadedRun load_run(const RunArgs& a) {
  const InputFiles reads;  // records what load_scenario and build_all_points read on this thread
  LoadedRun run{load_scenario(a.scenario, a.scenario_options), {}, {}};
  run.models = build_points_within(run.scenario, a.memory_limit);
  // The scenario file's own bytes are left out: its document, less "description" and "expect" (which do not
  // change the results), is what the fingerprint hashes.
  for (const InputFiles::File& f : reads.files())
    if (f.path != run.scenario.file) run.inputs.push_back(f);
  return run;
}

// Opens --out DIR's records.jsonl (resuming it with --resume) and leaves out of `options` the points it
// already holds; `options.on_point` appends each completed point.
std::unique_ptr<RecordWriter> open_records(const RunArgs& a, const LoadedRun& run, bool sketch, RunOptions& options) {
  const Scenario& sc = run.scenario;
  prepare_output_dir(a.out_dir, "--out");
  auto writer =
      std::make_unique<RecordWriter>(a.out_dir, records_header(sc, run.models, run.inputs, a.shard, sketch), a.resume, a.timing);
  for (const std::string& w : writer->warnings()) spdlog::warn("{}", w);
  if (options.run_point.empty()) options.run_point.assign(sc.points.size(), true);
  for (const auto& [point, records] : writer->completed()) {
    if (point >= options.run_point.size())  // the reader checked it against the header, the header against the run
      throw InputError("", "--resume", "point " + std::to_string(point) + " of the log is beyond the sweep");
    options.run_point[point] = false;
  }
  options.on_point = [w = writer.get()](const std::vector<Record>& records) { w->append(records); };
  if (a.resume) spdlog::info("resuming: {} of {} points already complete", writer->completed().size(), sc.points.size());
  return writer;
}

// Under MPI rank 0 tells the others which points to run.
void share_run_points(Distributor& dist, std::vector<bool>& run_point) {
  std::string mask(run_point.begin(), run_point.end());  // bools as bytes 0 and 1
  dist.broadcast(mask);
  run_point.assign(mask.begin(), mask.end());
}

// Runs with a progress bar until done, Ctrl-C / SIGTERM or `time_limit_s`; `timed_out` says which stopped it.
RunResults run_stoppable(const Scenario& sc, const std::vector<PointModel>& models, RunOptions& options,
                         double time_limit_s, std::ostream& err, Progress::Mode progress, bool& timed_out) {
  Progress bar(err, progress, sc.name);
  options.on_progress = [&](const RunProgress& p) { bar.update(p); };
  g_stop = false;
  options.stop = &g_stop;
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  RunResults results;
  {
    const Deadline deadline(time_limit_s);
    results = run_scenario(sc, models, options);
    timed_out = deadline.expired();
  }
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  bar.finish();
  return results;
}

void print_results(std::ostream& out, const RunResults& results, const RunArgs& a, const ReportOptions& ro) {
  if (a.format == "table") {
    print_table(out, results, ro);
    if (a.quiet) return;  // the table alone: the same bytes every run
    out << "(" << std::fixed << std::setprecision(2) << results.wall_seconds << " s wall, " << a.threads << " thread"
        << (a.threads == 1 ? "" : "s") << ")\n";
  } else if (a.format == "json") {
    out << results_json(results, ro).dump(2) << '\n';
  } else {
    out << results_csv(results, ro);
  }
}

// The message and exit code of a stopped run, which keeps its complete points.
int report_stopped(std::ostream& err, const RunResults& results, std::size_t total_points, bool timed_out,
                   const std::string& out_dir) {
  std::size_t points = 0;
  for (std::size_t i = 0; i < results.records.size(); ++i)
    points += i == 0 || results.records[i].point != results.records[i - 1].point;
  err << "tailsim: " << (timed_out ? "stopped by --time-limit" : "interrupted") << " with " << points << " of "
      << total_points << " points complete"
      << (out_dir.empty() ? "" : "; their records are in " + out_dir + ", and the same command with --resume finishes the rest")
      << '\n';
  return timed_out ? kExitTimeLimit : kExitInterrupted;
}

// Writes --out's results and stdout (rank 0 alone under MPI); returns the exit code.
int report_run(std::ostream& out, std::ostream& err, RunResults& results, const RecordWriter* writer,
               const RunArgs& a, std::size_t total_points, bool timed_out) {
  if (writer) {
    for (const auto& [point, records] : writer->completed())
      results.records.insert(results.records.end(), records.begin(), records.end());
    assemble_results(results);
  }
  ReportOptions ro;
  ro.timing = a.timing;
  if (!a.out_dir.empty()) write_results(a.out_dir, results, ro);
  print_results(out, results, a, ro);
  spdlog::info("done in {:.3f} s", results.wall_seconds);
  if (results.stopped) return report_stopped(err, results, total_points, timed_out, a.out_dir);
  return 0;
}

}  // namespace

double parse_time_limit(const std::string& text) {
  double time_limit = 0;
  try {
    time_limit = parse_duration_s(text);
  } catch (const std::invalid_argument& e) {
    throw InputError("", "--time-limit", e.what());
  }
  if (!(time_limit > 0)) throw InputError("", "--time-limit", "expected a duration > 0, got '" + text + "'");
  if (time_limit > kNoTimeLimitAbove_s) time_limit = 0;  // a century or more (or inf): no limit, not a clock overflow
  return time_limit;
}

std::uint64_t parse_seed(const std::string& text) {
  std::uint64_t seed = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seed);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    throw InputError("", "--seed", "expected an integer from 0 to 18446744073709551615, got '" + text + "'");
  return seed;
}

std::vector<bool> shard_points(const std::string& spec, std::size_t points) {
  const std::size_t slash = spec.find('/');
  std::size_t i = 0, n = 0;
  try {
    std::size_t used_i = 0, used_n = 0;
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    i = std::stoul(spec.substr(0, slash), &used_i);
    n = std::stoul(spec.substr(slash + 1), &used_n);
    if (used_i != slash || used_n != spec.size() - slash - 1) throw std::invalid_argument("trailing text");
  } catch (const std::exception&) {
    throw InputError("", "--shard", "expected I/N with integers 1 <= I <= N (e.g. 2/8), got '" + spec + "'");
  }
  if (n < 1 || i < 1 || i > n)
    throw InputError("", "--shard", "expected I/N with 1 <= I <= N (shards are numbered from 1), got '" + spec + "'");
  std::vector<bool> mine(points);
  for (std::size_t p = 0; p < points; ++p) mine[p] = p % n == i - 1;
  return mine;
}

RunArgs parse_run_args(const std::vector<std::string>& args, bool stderr_is_terminal) {
  po::options_description opts("run options");
  RunArgs a;
  RunFlags f;
  add_run_options(opts, a, f);
  const po::variables_map vm = parse_verb_args(args, opts, "scenario");
  a.quiet = vm["quiet"].as<bool>();
  set_log_level(f.log_level);
  if (f.positional.size() != 1) throw InputError("", "run", "expected one scenario file, got " + std::to_string(f.positional.size()));
  a.scenario = f.positional[0];
  if (a.format != "table" && a.format != "json" && a.format != "csv")
    throw InputError("", "--format", "unknown format '" + a.format + "'; valid: table, json, csv");
  if (vm.count("threads") && a.threads < 1) throw InputError("", "--threads", "expected an integer >= 1, got " + std::to_string(a.threads));
  if (vm.count("time-limit")) a.time_limit_s = parse_time_limit(f.time_limit);
  a.resume = vm["resume"].as<bool>();
  if (a.resume && a.out_dir.empty()) throw InputError("", "--resume", "needs --out DIR (the folder of the run to resume)");
  a.progress = Progress::mode_for(f.progress, stderr_is_terminal);
  if (a.quiet && !vm.count("progress")) a.progress = Progress::Mode::kOff;  // an explicit --progress wins
  if (vm.count("seed")) a.scenario_options.seed = parse_seed(f.seed);
  if (vm.count("replications")) {
    if (f.replications < 1) throw InputError("", "--replications", "expected an integer >= 1, got " + std::to_string(f.replications));
    a.scenario_options.replications = f.replications;
  }
  if (!vm.count("threads")) a.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  a.memory_limit = f.max_memory.empty() ? std::nullopt : std::optional<std::uint64_t>(parse_memory_flag(f.max_memory, "--max-memory"));
  a.scenario_options.max_memory = a.memory_limit;
  a.timing = vm["timing"].as<bool>();
  return a;
}

int verb_run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, Distributor* dist) {
  if (wants_help(args)) {
    po::options_description opts;
    RunArgs a;
    RunFlags f;
    add_run_options(opts, a, f);
    return print_verb_help(out, "run", opts, "scenario");
  }
  RunArgs a = parse_run_args(args, stderr_is_terminal());
  const LoadedRun run = load_run(a);  // all validation before any simulation
  const Scenario& sc = run.scenario;
  const std::vector<PointModel>& models = run.models;
  check_expectations_match(sc, models, parse_expectations(sc));
  check_quantiles_method(a.quantiles);
  // Under MPI, rank 0 alone writes (records, results, stdout) and tells the others which points to run.
  const bool distributed = dist && dist->size() > 1;
  const bool writes = !distributed || dist->rank() == 0;
  // a.threads becomes fewer when that many would not fit in memory.
  const bool sketch = plan_quantiles(sc, models, a.threads, distributed && dist->rank() == 0, a.quantiles, a.memory_limit);
  RunOptions options(a.threads);
  options.sketch_quantiles = sketch;
  if (!a.shard.empty()) options.run_point = shard_points(a.shard, sc.points.size());
  options.distributor = dist;
  // The trace re-simulates the first steps of replication 0 of every point on the run's own draws; written
  // first, so a bad path or an oversized trace fails before a long run and before --out is touched.
  if (!a.trace_file.empty() && writes) write_trace(sc, models, a.trace_file, a.trace_steps);
  std::unique_ptr<RecordWriter> writer;
  if (!a.out_dir.empty() && writes) writer = open_records(a, run, sketch, options);
  if (distributed) share_run_points(*dist, options.run_point);
  spdlog::info("{}: {} points x {} replications, {} threads{}", sc.name, sc.points.size(), sc.replications, a.threads,
               distributed ? " per rank, " + std::to_string(dist->size()) + " ranks" : "");
  bool timed_out = false;
  RunResults results = run_stoppable(sc, models, options, a.time_limit_s, err,
                                     writes ? a.progress : Progress::Mode::kOff, timed_out);
  if (!writes) return results.stopped ? (timed_out ? kExitTimeLimit : kExitInterrupted) : 0;
  return report_run(out, err, results, writer.get(), a, sc.points.size(), timed_out);
}

}  // namespace tailsim
