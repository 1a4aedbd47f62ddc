// `tailsim check`: runs scenarios with "expect" blocks, prints a verdict per expectation, writes JUnit XML
// with --junit, and exits 1 when any expectation fails.
#include <algorithm>
#include <exception>
#include <filesystem>
#include <sstream>
#include <thread>

#include <boost/program_options.hpp>
#include <unistd.h>

#include "sim/cli/progress.hpp"
#include "sim/cli/verbs.hpp"
#include "sim/report/report.hpp"
#include "sim/config/configs.hpp"
#include "sim/config/error.hpp"
#include "sim/run/expect.hpp"
#include "sim/run/limits.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace tailsim {

namespace {

// Scenario files named on the command line: files as given, folders searched (recursively, sorted) for
// scenarios that have an "expect" block.
std::vector<std::string> scenario_files(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    if (!fs::is_directory(p)) {
      if (!fs::exists(p)) throw InputError(p, "", "no such file or folder");
      files.push_back(p);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(p))
      if (e.is_regular_file() && e.path().extension() == ".json" && parse_json_file(e.path().string()).contains("expect"))
        found.push_back(e.path().string());
    if (found.empty()) throw InputError(p, "", "no scenario with an \"expect\" block in this folder");
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

struct SuiteResult {
  std::string name, file;
  std::vector<Verdict> verdicts;
  double seconds = 0;
  std::string skipped;  // why the scenario was not run (a --set that does not apply to it); "" when run
};

std::string junit_xml(const std::vector<SuiteResult>& suites) {
  std::size_t tests = 0, failures = 0, skipped = 0;
  for (const SuiteResult& s : suites) {
    tests += s.skipped.empty() ? s.verdicts.size() : 1;
    skipped += s.skipped.empty() ? 0 : 1;
    for (const Verdict& v : s.verdicts) failures += v.passed ? 0 : 1;
  }
  std::ostringstream x;
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"tailsim check\" tests=\"" << tests
    << "\" failures=\"" << failures << "\"" << (skipped ? " skipped=\"" + std::to_string(skipped) + "\"" : "") << ">\n";
  for (const SuiteResult& s : suites) {
    if (!s.skipped.empty()) {  // one skipped case: the scenario as a whole
      x << "  <testsuite name=\"" << xml_escape(s.name) << "\" file=\"" << xml_escape(s.file)
        << "\" tests=\"1\" failures=\"0\" skipped=\"1\" time=\"0\">\n    <testcase classname=\"" << xml_escape(s.name)
        << "\" name=\"scenario\">\n      <skipped message=\"" << xml_escape(s.skipped) << "\"/>\n    </testcase>\n  </testsuite>\n";
      continue;
    }
    std::size_t f = 0;
    for (const Verdict& v : s.verdicts) f += v.passed ? 0 : 1;
    x << "  <testsuite name=\"" << xml_escape(s.name) << "\" file=\"" << xml_escape(s.file) << "\" tests=\""
      << s.verdicts.size() << "\" failures=\"" << f << "\" time=\"" << s.seconds << "\">\n";
    for (const Verdict& v : s.verdicts) {
      x << "    <testcase classname=\"" << xml_escape(s.name) << "\" name=\"" << xml_escape(v.name) << "\"";
      if (v.passed) {
        x << ">\n      <system-out>" << xml_escape(v.detail) << "</system-out>\n    </testcase>\n";
      } else {
        x << ">\n      <failure message=\"" << xml_escape(v.detail) << "\"/>\n    </testcase>\n";
      }
    }
    x << "  </testsuite>\n";
  }
  x << "</testsuites>\n";
  return x.str();
}

// A scenario of `check`, validated (every point built, its expectations matched) before anything runs.
struct Loaded {
  Scenario scenario;
  std::vector<PointModel> models;
  std::vector<Expectation> expectations;
  bool sketch = false;  // quantiles from the sketch: exact ones would not fit in memory
  int threads = 1;      // --threads, or fewer when that many would not fit in memory
  std::string skipped;  // why it is not run: a --set that does not apply to it ("" when it runs)
};

Loaded load_one(const std::string& file, const ScenarioOptions& so, int threads,
                std::optional<std::uint64_t> memory_limit) {
  const InputFiles reads;  // every file read once, large ones parsed once for all the points
  Loaded l;
  l.scenario = load_scenario(file, so);
  l.threads = threads;
  l.models = build_points_within(l.scenario, memory_limit);
  l.expectations = parse_expectations(l.scenario);
  if (l.expectations.empty()) throw InputError(file, "/expect", "no expectations to check (add an \"expect\" block)");
  check_expectations_match(l.scenario, l.models, l.expectations);
  l.sketch = plan_quantiles(l.scenario, l.models, l.threads, false, "auto", memory_limit);
  return l;
}

// A folder's scenarios differ (a --set for the BSP ones, policies.1.copies, means nothing to an MoE one that has
// a single policy): a scenario whose content the --set values make invalid, but which is valid without them, is
// skipped, saying why, and the others are still judged. A scenario invalid either way is an input error.
Loaded load_for_check(const std::string& file, const ScenarioOptions& so, int threads,
                      std::optional<std::uint64_t> memory_limit) {
  try {
    return load_one(file, so, threads, memory_limit);
  } catch (const InputError& with_set) {
    // Only an error in the scenario's content (a JSON path) can be the --set's not applying; a refusal for
    // memory (no path) or a malformed --set (its own) is an error whatever the scenario.
    if (so.sets.empty() || !with_set.path().starts_with("/")) throw;
    const std::exception_ptr error = std::current_exception();
    ScenarioOptions without = so;
    without.sets.clear();
    Loaded l;
    try {
      const InputFiles reads;
      l.scenario = load_scenario(file, without);
      check_expectations_match(l.scenario, build_all_points(l.scenario), parse_expectations(l.scenario));
    } catch (const InputError&) {
      std::rethrow_exception(error);
    }
    std::string sets;
    for (const std::string& s : so.sets) sets += (sets.empty() ? "--set " : ", --set ") + s;
    l.skipped = sets + " does not apply to this scenario: " +
                (with_set.path().empty() ? "" : with_set.path() + ": ") + with_set.message();
    return l;
  }
}

}  // namespace

int verb_check(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description opts("check options");
  std::vector<std::string> paths;
  std::string junit, progress = "never", max_memory;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ScenarioOptions so;
  opts.add_options()("paths", po::value(&paths), "scenario files or folders")(
      "junit", po::value(&junit)->value_name("FILE"),
      "write a JUnit XML report: one test case per expectation (default: none)")(
      "set", po::value(&so.sets)->value_name("PATH=VALUE"), "override a value in every scenario (repeatable); a scenario of a folder that it does not apply to is "
      "skipped, saying why")(
      "threads", po::value(&threads)->value_name("N"), "worker threads (default: all cores)")(
      "max-memory", po::value(&max_memory)->value_name("SIZE"),
      "refuse a scenario estimated to need more (\"8GiB\"; default: the memory available)")(
      "progress", po::value(&progress)->value_name("auto|always|never"), "a progress bar on stderr (default: never)");
  if (wants_help(args)) return print_verb_help(out, "check", opts, "paths");
  parse_verb_args(args, opts, "paths");
  if (paths.empty()) throw InputError("", "check", "expected scenario files or folders");
  if (threads < 1) throw InputError("", "--threads", "expected an integer >= 1, got " + std::to_string(threads));
  const Progress::Mode mode = Progress::mode_for(progress, false);
  const std::optional<std::uint64_t> memory_limit =
      max_memory.empty() ? std::nullopt : std::optional<std::uint64_t>(parse_memory_flag(max_memory, "--max-memory"));
  so.max_memory = memory_limit;

  // Validate everything (scenarios, expectations, where clauses) before running anything.
  std::vector<Loaded> loaded;
  for (const std::string& f : scenario_files(paths)) loaded.push_back(load_for_check(f, so, threads, memory_limit));
  if (std::all_of(loaded.begin(), loaded.end(), [](const Loaded& l) { return !l.skipped.empty(); })) {
    std::string why;
    for (const Loaded& l : loaded) why += "\n  " + l.scenario.file + ": " + l.skipped;
    throw InputError("", "--set", "applies to none of the scenarios, so nothing was checked:" + why);
  }
  if (!junit.empty()) {  // fail on an unwritable path before the runs
    const fs::path dir = fs::path(junit).parent_path().empty() ? fs::path(".") : fs::path(junit).parent_path();
    if (!fs::is_directory(dir) || ::access(dir.c_str(), W_OK) != 0)
      throw InputError("", "--junit", "cannot write '" + junit + "': its folder does not exist or is not writable");
  }

  std::vector<SuiteResult> suites;
  std::size_t passed = 0, failed = 0, skipped = 0;
  for (const Loaded& l : loaded) {
    if (!l.skipped.empty()) {
      out << l.scenario.name << " (" << l.scenario.file << "):\n  SKIP  " << l.skipped << '\n';
      suites.push_back(SuiteResult{l.scenario.name, l.scenario.file, {}, 0, l.skipped});
      ++skipped;
      continue;
    }
    Progress bar(err, mode, l.scenario.name);
    RunOptions options(l.threads);
    options.sketch_quantiles = l.sketch;
    options.on_progress = [&](const RunProgress& p) { bar.update(p); };
    const RunResults results = run_scenario(l.scenario, l.models, options);
    bar.finish();
    SuiteResult s{l.scenario.name, l.scenario.file, evaluate_expectations(l.scenario, results, l.expectations),
                  results.wall_seconds, ""};
    out << l.scenario.name << " (" << l.scenario.file << "):\n";
    for (const Verdict& v : s.verdicts) {
      out << "  " << (v.passed ? "PASS" : "FAIL") << "  " << v.name << ": " << v.detail << '\n';
      (v.passed ? passed : failed)++;
    }
    suites.push_back(std::move(s));
  }
  out << (failed ? "FAILED: " : "ok: ") << passed << " passed, " << failed << " failed";
  if (skipped) out << "; " << skipped << " scenario" << (skipped == 1 ? "" : "s") << " skipped (--set does not apply)";
  out << '\n';
  if (!junit.empty()) write_atomically(junit, junit_xml(suites));
  return failed ? 1 : 0;
}

}  // namespace tailsim
