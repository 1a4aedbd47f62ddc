#include "sim/cli/verbs.hpp"

#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <iomanip>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <boost/program_options.hpp>
#include <spdlog/spdlog.h>

#include "sim/cluster/cluster.hpp"
#include "sim/cost/cost_model.hpp"
#include "sim/policy/policy.hpp"
#include "sim/cli/cost_verb.hpp"
#include "sim/cli/progress.hpp"
#include "sim/report/records.hpp"
#include "sim/report/report.hpp"
#include "sim/run/trace_run.hpp"
#include "sim/config/configs.hpp"
#include "sim/config/error.hpp"
#include "sim/run/expect.hpp"
#include "sim/run/limits.hpp"
#include "sim/run/runner.hpp"
#include "sim/stats/distribution.hpp"
#include "sim/workload/routing.hpp"
#include "sim/workload/workload.hpp"

namespace po = boost::program_options;

namespace tailsim {

namespace {

constexpr int kExitTimeLimit = 124;   // as timeout(1)
constexpr int kExitInterrupted = 130; // 128 + SIGINT

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

Exit codes: 0 ok, 1 a check failed, 2 bad input, 3 internal error, 124 stopped by --time-limit,
130 interrupted (Ctrl-C); a stopped run keeps its complete points (--resume finishes it).
)";

template <class Reg>
void list_registry(std::ostream& out, const Reg& reg) {
  out << reg.kind() << ":\n";
  // A name wider than its column still gets two spaces before its text.
  const auto column = [&](const std::string& name, std::size_t width) {
    out << name << std::string(name.size() + 2 > width ? 2 : width - name.size(), ' ');
  };
  for (const auto& e : reg.entries()) {
    out << "  ";
    column(e.name, 18);
    out << e.description << '\n';
    for (const ParamDoc& p : e.params) {
      out << "      ";
      column(p.name, 14);
      out << p.help << '\n';
    }
  }
}

void set_log_level(const std::string& level) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off")
    throw InputError("", "--log-level", "unknown level '" + level + "'; valid: trace, debug, info, warn, error, off");
  spdlog::set_level(parsed);
}

int verb_list(const std::vector<std::string>& args, std::ostream& out) {
  const std::vector<std::string> kinds = {"policies", "distributions", "workloads", "routers", "cost-models", "gpus", "models", "clusters"};
  std::vector<std::string> wanted = args.empty() ? kinds : args;
  for (const std::string& w : wanted) {
    if (w == "policies") list_registry(out, policy_registry());
    else if (w == "distributions") list_registry(out, distribution_registry());
    else if (w == "workloads") list_registry(out, workload_registry());
    else if (w == "routers") list_registry(out, router_registry());
    else if (w == "cost-models") list_registry(out, cost_model_registry());
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
    check_expectations_match(sc, build_all_points(sc), parse_expectations(sc));
    out << f << ": ok (" << sc.points.size() << " point" << (sc.points.size() == 1 ? "" : "s") << ")\n";
  }
  return 0;
}

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

// Shard "I/N" (1 <= I <= N): the points p with p % N == I - 1.
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

void write_results(const std::string& dir, const RunResults& results, const ReportOptions& ro) {
  write_atomically((std::filesystem::path(dir) / "results.json").string(), results_json(results, ro).dump(2) + "\n");
  write_atomically((std::filesystem::path(dir) / "results.csv").string(), results_csv(results, ro));
}

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

int verb_run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, Distributor* dist) {
  po::options_description opts("run options");
  std::vector<std::string> positional;
  ScenarioOptions so;
  std::string out_dir, format = "table", log_level = "warn", shard, progress = "auto", trace_file;
  std::int64_t trace_steps = 10;
  std::string time_limit_text, max_memory, quantiles = "auto";
  int threads = 0;
  std::string seed_text;
  std::int64_t replications = 0;
  opts.add_options()
      ("scenario", po::value(&positional), "scenario file")
      ("set", po::value(&so.sets), "override a scenario value: PATH=VALUE (repeatable)")
      ("sweep", po::value(&so.sweeps), "sweep a value: PATH=V1,V2,... (repeatable; cartesian product)")
      ("out", po::value(&out_dir), "write records.jsonl (per point, as it completes), results.json and results.csv to DIR")
      ("resume", po::bool_switch(), "skip the points already complete in --out DIR")
      ("shard", po::value(&shard), "run only shard I/N of the points (join the shards with tailsim merge)")
      ("trace", po::value(&trace_file), "write the first --trace-steps steps of every point as a Chrome/Perfetto trace")
      ("trace-steps", po::value(&trace_steps), "steps in the trace (default 10)")
      ("time-limit", po::value(&time_limit_text), "stop after this long (\"90\", \"30min\", \"2h\"), keeping the points complete by then")
      ("quantiles", po::value(&quantiles), "exact (keep every step time), sketch (bounded memory, relative error <= 2^-11) or auto (exact if it fits)")
      ("max-memory", po::value(&max_memory), "refuse a run estimated to need more (\"8GiB\"; default: the memory available)")
      ("threads", po::value(&threads), "worker threads (default: all cores); results do not depend on it")
      ("seed", po::value(&seed_text), "override the scenario's seed")
      ("replications", po::value(&replications), "override the scenario's replications")
      ("format", po::value(&format), "stdout format: table, json or csv")
      ("quiet", po::bool_switch(), "print nothing on stdout")
      ("progress", po::value(&progress), "auto (a bar on a terminal, periodic lines otherwise), always or never")
      ("timing", po::bool_switch(), "add wall_seconds to the results (they then differ from run to run)")
      ("log-level", po::value(&log_level), "trace, debug, info, warn (default), error, off");
  const po::variables_map vm = parse_verb_args(args, opts, "scenario");
  set_log_level(log_level);
  if (positional.size() != 1) throw InputError("", "run", "expected one scenario file, got " + std::to_string(positional.size()));
  if (format != "table" && format != "json" && format != "csv")
    throw InputError("", "--format", "unknown format '" + format + "'; valid: table, json, csv");
  if (vm.count("threads") && threads < 1) throw InputError("", "--threads", "expected an integer >= 1, got " + std::to_string(threads));
  double time_limit = 0;
  if (vm.count("time-limit")) {
    try {
      time_limit = parse_duration_s(time_limit_text);
    } catch (const std::invalid_argument& e) {
      throw InputError("", "--time-limit", e.what());
    }
    if (!(time_limit > 0)) throw InputError("", "--time-limit", "expected a duration > 0, got '" + time_limit_text + "'");
    if (time_limit > kNoTimeLimitAbove_s) time_limit = 0;  // a century or more (or inf): no limit, not a clock overflow
  }
  const bool resume = vm["resume"].as<bool>();
  if (resume && out_dir.empty()) throw InputError("", "--resume", "needs --out DIR (the folder of the run to resume)");
  const Progress::Mode progress_mode = Progress::mode_for(progress, stderr_is_terminal());
  if (vm.count("seed")) {
    std::uint64_t seed = 0;
    const auto [end, ec] = std::from_chars(seed_text.data(), seed_text.data() + seed_text.size(), seed);
    if (seed_text.empty() || ec != std::errc() || end != seed_text.data() + seed_text.size())
      throw InputError("", "--seed", "expected an integer from 0 to 18446744073709551615, got '" + seed_text + "'");
    so.seed = seed;
  }
  if (vm.count("replications")) {
    if (replications < 1) throw InputError("", "--replications", "expected an integer >= 1, got " + std::to_string(replications));
    so.replications = replications;
  }
  if (!vm.count("threads")) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  const std::optional<std::uint64_t> memory_limit =
      max_memory.empty() ? std::nullopt : std::optional<std::uint64_t>(parse_memory_flag(max_memory, "--max-memory"));
  so.max_memory = memory_limit;
  const Scenario sc = load_scenario(positional[0], so);
  const std::vector<PointModel> models = build_all_points(sc);  // all validation before any simulation
  check_expectations_match(sc, models, parse_expectations(sc));
  if (quantiles != "auto" && quantiles != "exact" && quantiles != "sketch")
    throw InputError("", "--quantiles", "unknown method '" + quantiles + "'; valid: auto, exact, sketch");
  const bool gathered = dist && dist->size() > 1 && dist->rank() == 0;
  const bool sketch = plan_quantiles(sc, models, threads, gathered, quantiles, memory_limit);
  RunOptions options(threads);
  options.sketch_quantiles = sketch;
  if (!shard.empty()) options.run_point = shard_points(shard, sc.points.size());
  // Under MPI, rank 0 alone writes (records, results, stdout) and tells the others which points to run.
  const bool distributed = dist && dist->size() > 1;
  const bool writes = !distributed || dist->rank() == 0;
  options.distributor = dist;
  // The trace re-simulates the first steps of replication 0 of every point on the run's own draws; written
  // first, so a bad path or an oversized trace fails before a long run and before --out is touched.
  if (!trace_file.empty() && writes) write_trace(sc, models, trace_file, trace_steps);
  std::unique_ptr<RecordWriter> writer;
  if (!out_dir.empty() && writes) {
    prepare_output_dir(out_dir, "--out");
    writer = std::make_unique<RecordWriter>(out_dir, records_header(sc, shard, sketch), resume);
    if (options.run_point.empty()) options.run_point.assign(sc.points.size(), true);
    for (const auto& [point, records] : writer->completed()) options.run_point[point] = false;
    options.on_point = [&](const std::vector<Record>& records) { writer->append(records); };
    if (resume) spdlog::info("resuming: {} of {} points already complete", writer->completed().size(), sc.points.size());
  }
  if (distributed) {
    std::string mask(options.run_point.begin(), options.run_point.end());  // bools as bytes 0 and 1
    dist->broadcast(mask);
    options.run_point.assign(mask.begin(), mask.end());
  }
  spdlog::info("{}: {} points x {} replications, {} threads{}", sc.name, sc.points.size(), sc.replications, threads,
               distributed ? " per rank, " + std::to_string(dist->size()) + " ranks" : "");


  Progress bar(err, writes ? progress_mode : Progress::Mode::kOff, sc.name);
  options.on_progress = [&](std::size_t done, std::size_t total) { bar.update(done, total); };
  g_stop = false;
  options.stop = &g_stop;
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  RunResults results;
  bool timed_out = false;
  {
    const Deadline deadline(time_limit);
    results = run_scenario(sc, models, options);
    timed_out = deadline.expired();
  }
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  bar.finish();
  if (!writes) return results.stopped ? (timed_out ? kExitTimeLimit : kExitInterrupted) : 0;
  if (writer) {
    for (const auto& [point, records] : writer->completed())
      results.records.insert(results.records.end(), records.begin(), records.end());
    assemble_results(results);
  }
  ReportOptions ro;
  ro.timing = vm["timing"].as<bool>();
  if (!out_dir.empty()) write_results(out_dir, results, ro);
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
  if (results.stopped) {
    std::size_t points = 0;
    for (std::size_t i = 0; i < results.records.size(); ++i)
      points += i == 0 || results.records[i].point != results.records[i - 1].point;
    err << "tailsim: " << (timed_out ? "stopped by --time-limit" : "interrupted") << " with " << points << " of "
        << sc.points.size() << " points complete"
        << (out_dir.empty() ? "" : "; their records are in " + out_dir + ", and the same command with --resume finishes the rest")
        << '\n';
    return timed_out ? kExitTimeLimit : kExitInterrupted;
  }
  return 0;
}

// Joins the records.jsonl of shard (or partial) runs of one scenario into results as if run at once.
int verb_merge(const std::vector<std::string>& args, std::ostream& out) {
  po::options_description opts("merge options");
  std::vector<std::string> dirs;
  std::string out_dir;
  opts.add_options()("dirs", po::value(&dirs), "folders written by tailsim run --out")(
      "out", po::value(&out_dir), "folder for the merged records.jsonl, results.json and results.csv");
  parse_verb_args(args, opts, "dirs");
  if (dirs.empty()) throw InputError("", "merge", "expected at least one folder to merge");
  if (out_dir.empty()) throw InputError("", "--out", "merge needs --out DIR");
  std::vector<RecordLog> logs;
  for (const std::string& d : dirs) logs.push_back(read_record_log((std::filesystem::path(d) / "records.jsonl").string()));
  const Json& first = logs.front().header;
  std::map<std::size_t, std::vector<Record>> points;
  std::map<std::size_t, std::string> origin;
  for (const RecordLog& log : logs) {
    if (log.header.at("fingerprint") != first.at("fingerprint"))
      throw InputError(log.file, "",
                       "comes from another scenario or other settings than " + logs.front().file + " (scenario '" +
                           log.header.value("scenario", "?") + "' fingerprint " + log.header.value("fingerprint", "?") +
                           " vs '" + first.value("scenario", "?") + "' " + first.value("fingerprint", "?") + ")");
    for (const auto& [p, records] : log.points) {
      if (points.count(p) && records_line(points[p], false) != records_line(records, false))
        throw InputError(log.file, "", "point " + std::to_string(p) + " differs from the same point in " + origin[p]);
      points[p] = records;
      origin[p] = log.file;
    }
  }
  const std::size_t total = first.at("points").get<std::size_t>();
  std::vector<std::string> missing;
  for (std::size_t p = 0; p < total; ++p)
    if (!points.count(p)) missing.push_back(std::to_string(p));
  if (!missing.empty())
    throw InputError("", "merge", std::to_string(missing.size()) + " of " + std::to_string(total) +
                                      " points are in none of the folders (points " + join(missing) +
                                      "); is a shard missing or unfinished? (finish it with tailsim run --resume)");
  RunResults results;
  results.scenario = first.at("scenario").get<std::string>();
  results.seed = first.at("seed").get<std::uint64_t>();
  results.steps = first.at("steps").get<std::int64_t>();
  results.param_names = first.at("param_names").get<std::vector<std::string>>();
  Json header = first;
  header["shard"] = nullptr;
  prepare_output_dir(out_dir, "--out");
  std::string log_text = header.dump() + "\n";
  for (const auto& [p, records] : points) {
    results.records.insert(results.records.end(), records.begin(), records.end());
    log_text += records_line(records);
  }
  assemble_results(results);
  write_atomically((std::filesystem::path(out_dir) / "records.jsonl").string(), log_text);
  write_results(out_dir, results, ReportOptions{});
  out << "merged " << dirs.size() << " folder" << (dirs.size() == 1 ? "" : "s") << ", " << total << " points into " << out_dir << "\n";
  return 0;
}

}  // namespace

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
