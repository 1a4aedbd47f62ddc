// Resource limits and clean stops: memory estimates refuse runs the machine cannot hold, --time-limit and
// Ctrl-C keep the complete points (and --resume finishes the run), and a clock overflow is an error.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>

#include "sim/config/json_reader.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace fs = std::filesystem;

namespace {

const std::string kScenario = std::string(TAILSIM_SOURCE_DIR) + "/scenarios/textbook/tail_at_scale.json";

int lines_in(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

// Shell words (after the tailsim binary, for test::run_cli) that start `tailsim <args>` in the background
// and wait for a condition, not for a time: until out/records.jsonl holds a complete point (a line after
// the header), or the run has ended by itself (it writes out/results.json last), or 120 s have passed (a
// hung run: only a failure, never what the test's outcome rests on). Then `act` runs with the run's pid in
// $pid, and the shell prints "<state> <exit status of the run>", state being "point" (a complete point was
// on disk, so before `act`), "ended" (the run ended first) or "deadline". Polling every 50 ms cannot let a
// run of the scenario below end unseen: after its first point (K = 1) comes 1366/1367 of its work. The
// run's stdout (the table of the points complete, --quiet or not) is not wanted.
std::string after_first_point(const std::string& args, const fs::path& out, const std::string& act) {
  const std::string log = (out / "records.jsonl").string(), results = (out / "results.json").string();
  return args + " >/dev/null & pid=$!; state=deadline; i=0; while [ $i -lt 2400 ]; do "
         "if [ \"$(cat " + log + " 2>/dev/null | wc -l)\" -ge 2 ]; then state=point; break; fi; "
         "if [ -e " + results + " ] || ! kill -0 $pid 2>/dev/null; then state=ended; break; fi; "
         "sleep 0.05; i=$((i+1)); done; " + act + "; wait $pid; rc=$?; echo \"$state $rc\"";
}

// The number N of "with N of 7 points complete" in a stop message, or -1.
int points_in_message(const std::string& err) {
  const std::string with = " with ";
  const std::size_t at = err.find(with);
  if (at == std::string::npos) return -1;
  try {
    return std::stoi(err.substr(at + with.size()));
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

TEST_CASE("a run estimated to need more memory than allowed is refused before it starts") {
  const test::CommandResult huge =
      test::run_cli("run " + kScenario + " --set steps=1000000000000 --quantiles exact --quiet");
  CHECK(huge.exit_code == 2);
  CHECK(huge.err.find("this run needs about") != std::string::npos);
  CHECK(huge.err.find("of memory available") != std::string::npos);
  CHECK(huge.err.find("step times kept for exact quantiles") != std::string::npos);

  // 9 MiB: the step times alone take 9.2 MiB (the order_statistics engine's working memory is a few KiB).
  const test::CommandResult capped = test::run_cli("run " + kScenario + " --max-memory 9MiB --quantiles exact --quiet");
  CHECK(capped.exit_code == 2);
  CHECK(capped.err.find("allowed by --max-memory") != std::string::npos);
  CHECK(test::run_cli("run " + kScenario + " --set steps=2000 --max-memory 10MiB --quiet").exit_code == 0);
  const test::CommandResult bad = test::run_cli("run " + kScenario + " --max-memory lots --quiet");
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--max-memory") != std::string::npos);

  // K x per-GPU state counts too: the event engine at K = 10^8 needs tens of GiB per thread.
  const test::CommandResult wide = test::run_cli("run " + kScenario +
                                                 " --set steps=10 --set workload.engine=events"
                                                 " --sweep cluster.gpus=100000000 --max-memory 4GiB --quiet");
  CHECK(wide.exit_code == 2);
  CHECK(wide.err.find("working memory of the runs") != std::string::npos);
}

TEST_CASE("beyond memory, auto switches to the quantile sketch: exact means, quantiles within 2^-11") {
  const test::CommandResult exact = test::run_cli("run " + kScenario + " --format json");
  const test::CommandResult sketched = test::run_cli("run " + kScenario + " --max-memory 9MiB --format json");
  REQUIRE(exact.exit_code == 0);
  REQUIRE(sketched.exit_code == 0);
  CHECK(sketched.err.find("exact quantiles would need about") != std::string::npos);
  const Json e = Json::parse(exact.out), s = Json::parse(sketched.out);
  CHECK_FALSE(e.contains("quantiles"));
  CHECK(s["quantiles"] == "sketch: relative error <= 2^-11");
  REQUIRE(e["records"].size() == s["records"].size());
  for (std::size_t i = 0; i < e["records"].size(); ++i) {
    const Json& a = e["records"][i]["step_time"];
    const Json& b = s["records"][i]["step_time"];
    CHECK(a["mean"] == b["mean"]);
    CHECK(a["max"] == b["max"]);
    for (const char* q : {"p50", "p90", "p99", "p999"})
      CHECK(std::fabs(b[q].get<double>() - a[q].get<double>()) <= a[q].get<double>() / 2048);
  }
  CHECK(test::run_cli("run " + kScenario + " --quantiles median").exit_code == 2);
}

TEST_CASE("--time-limit stops cleanly with exit 124, keeps the complete points, and --resume finishes the run") {
  const fs::path dir = test::temp_dir("time-limit");
  const std::string run = "run " + kScenario + " --set steps=400000 --threads 1 --quiet --out ";
  const fs::path a = dir / "a";
  // Whatever the machine's speed, the limit falls while the run is frozen (SIGSTOP) after its first point,
  // so it cannot end before the limit: the limit's clock starts before the run's first point is written, we
  // freeze the run once we see that point, and we let it go on (SIGCONT) only `limit` seconds later. On a
  // machine too slow to finish a point in `limit` seconds, the limit stops it first, with no point complete.
  const std::string limit = "1";
  const test::CommandResult stopped = test::run_cli(after_first_point(
      run + a.string() + " --time-limit " + limit + " 2>" + (dir / "a.err").string(), a,
      "kill -STOP $pid 2>/dev/null; sleep " + limit + "; kill -CONT $pid 2>/dev/null"));
  const std::string err = test::read_file(dir / "a.err");
  INFO("shell: " << stopped.out << stopped.err << "run's stderr: " << err);
  const bool saw_point = stopped.out == "point 124\n";
  CHECK((saw_point || stopped.out == "ended 124\n"));  // exit 124: stopped by the limit; never the deadline
  CHECK(err.find("stopped by --time-limit with") != std::string::npos);
  const std::string log = test::read_file(a / "records.jsonl");
  REQUIRE_FALSE(log.empty());  // the header is written before the run starts
  CHECK(log.back() == '\n');    // whole lines only
  const int complete = lines_in(log) - 1;
  INFO("points complete: " << complete);
  CHECK(complete < 7);
  if (saw_point)
    CHECK(complete >= 1);
  else
    CHECK(complete >= 0);  // the limit came before the first point: a log of only the header
  CHECK(points_in_message(err) == complete);
  const Json partial = Json::parse(test::read_file(a / "results.json"));
  CHECK(partial["incomplete"] == true);
  if (complete == 0)
    CHECK(partial["records"].empty());
  else
    CHECK(partial["records"].size() == static_cast<std::size_t>(2 * complete));
  REQUIRE(test::run_cli(run + a.string() + " --resume").exit_code == 0);
  REQUIRE(test::run_cli(run + (dir / "b").string()).exit_code == 0);
  CHECK(test::read_file(a / "results.json") == test::read_file(dir / "b" / "results.json"));
  for (const char* bad : {"0", "-5", "soon"}) {
    const test::CommandResult r = test::run_cli("run " + kScenario + " --time-limit " + bad);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--time-limit") != std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("Ctrl-C (SIGINT) and SIGTERM finish the records of complete points, exit 130, and --resume gives the same bytes") {
  const fs::path dir = test::temp_dir("sigint");
  const std::string run = "run " + kScenario + " --set steps=400000 --threads 1 --quiet --out ";
  REQUIRE(test::run_cli(run + (dir / "b").string()).exit_code == 0);
  for (const std::string signal : {"INT", "TERM"}) {
    INFO("SIG" << signal);
    const fs::path out = dir / signal;
    // The signal goes once the first point is on disk (the handlers are in place by then), not after a
    // fixed sleep that a slow machine could outlast before even starting.
    const test::CommandResult killed = test::run_cli(after_first_point(run + out.string(), out, "kill -" + signal + " $pid"));
    CHECK(killed.out == "point 130\n");
    const std::string log = test::read_file(out / "records.jsonl");
    REQUIRE_FALSE(log.empty());  // the header, at least
    const int complete = lines_in(log) - 1;
    INFO("points complete: " << complete);
    CHECK(complete >= 1);  // the signal came after the first point
    CHECK(complete < 7);
    CHECK(log.back() == '\n');  // whole lines only: nothing half-written
    REQUIRE(test::run_cli(run + out.string() + " --resume").exit_code == 0);
    CHECK(test::read_file(out / "results.json") == test::read_file(dir / "b" / "results.json"));
  }
  fs::remove_all(dir);
}

TEST_CASE("absurd values are errors with their path: K beyond 10^12, steps = 0, infinite and NaN numbers, durations") {
  const std::pair<std::string, std::string> cases[] = {
      {"--sweep cluster.gpus=1000000000001", "/cluster/gpus: expected an integer >= 1 and <= 1e+12, got 1000000000001"},
      {"--set steps=0", "/steps: expected an integer >= 1 and <= 1e+12, got 0"},
      {"--set workload.compute.sigma=1e999", "/workload/compute/sigma: expected a number >= 0"},
      {"--set workload.compute.sigma=NaN", "/workload/compute/sigma: expected a number >= 0"},
      {R"(--set 'workload.compute={"type":"constant","value":1e300}')", "a simulated duration of 1e+300 s does not fit the clock"}};
  for (const auto& [args, message] : cases) {
    const test::CommandResult r = test::run_cli("run " + kScenario + " --set steps=100 " + args + " --quiet");
    std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
    info_text << args << " -> " << r.err;
    INFO(info_text.str());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(message) != std::string::npos);
  }
  // 64 axes of two values: 2^64 points, which a plain product wraps around to 0.
  std::string axes;
  for (int i = 0; i < 64; ++i) axes += " --sweep workload.x" + std::to_string(i) + "=1,2";
  const test::CommandResult huge = test::run_cli("run " + kScenario + axes + " --quiet");
  CHECK(huge.exit_code == 2);
  CHECK(huge.err.find("/sweep: the sweep expands to more than 1,000,000 points") != std::string::npos);
  // 700,000 points (with the scenario's 7 values of K), each a copy of the scenario, do not fit in 100 MiB:
  // refused before they are made (100,000 once took 560 MB under --max-memory 100MiB).
  std::string wide = " --sweep workload.a=1,2,3,4,5,6,7,8,9,10 --sweep workload.b=1,2,3,4,5,6,7,8,9,10";
  wide += " --sweep workload.c=1,2,3,4,5,6,7,8,9,10 --sweep workload.d=1,2,3,4,5,6,7,8,9,10 --sweep workload.e=1,2,3,4,5,6,7,8,9,10";
  const test::CommandResult many = test::run_cli("run " + kScenario + wide + " --max-memory 100MiB --quiet");
  CHECK(many.exit_code == 2);
  CHECK(many.err.find("/sweep: the sweep's 700000 points would need about") != std::string::npos);
  CHECK(many.err.find("allowed by --max-memory") != std::string::npos);
}

TEST_CASE("hostile command-line and scenario input exits 2 with the path (found in review)") {
  const std::pair<std::string, std::string> cases[] = {
      // Non-UTF-8 bytes would only fail when the results are written (exit 3, after the run).
      {"--set \"name=$(printf 'a\\377b')\" --format json", "'a\\xffb': expected UTF-8 text, found an invalid byte sequence"},
      {"--seed -1", "--seed: expected an integer from 0 to 18446744073709551615, got '-1'"},
      {"--replications 0", "--replications: expected an integer >= 1, got 0"},
      // Keys read once per run, empty values and contradictions on the command line.
      {"--sweep replications=1,2", "/sweep/replications: 'replications' is read once per run and cannot be swept"},
      {"--sweep seed=1,2", "/sweep/seed: 'seed' is read once per run and cannot be swept"},
      {"--sweep cluster.gpus=1,,2", "--sweep cluster.gpus=1,,2: empty value in the list"},
      {"--set cluster.gpus=4 --sweep cluster.gpus=1,2", "'cluster.gpus' is also given by --set cluster.gpus"},
      {"--set workload.compute.sigma=0.5 --sweep workload.compute=1", "'workload.compute' is also given by --set"},
      // A clock overflow names the scenario and the workload; weights that add up to infinity are refused.
      {R"(--set 'workload.compute={"type":"constant","value":9.2e9}')",
       "tail_at_scale.json: /workload: a simulated duration of 9.2e+09 s does not fit the clock"},
      {R"(--set 'workload.compute={"type":"mixture","components":[{"weight":1e308,"dist":{"type":"constant","value":1}},)"
       R"({"weight":1e308,"dist":{"type":"constant","value":2}}]}')",
       "/workload/compute/components: the weights add up to more than the largest number"}};
  for (const auto& [args, message] : cases) {
    const test::CommandResult r = test::run_cli("run " + kScenario + " --set steps=100 " + args);
    std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
    info_text << args << " -> " << r.err;
    INFO(info_text.str());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(message) != std::string::npos);
    CHECK(r.out.empty());
  }
  // A key given twice in one object: JSON parsers silently keep one value.
  const std::string dup = test::write_temp("dup.json", R"({"steps": 50, "cluster": {"gpus": 4, "gpus": 8},
      "workload": {"type": "bsp", "compute": {"type": "constant", "value": 1}}, "policy": {"type": "none"}})");
  const test::CommandResult d = test::run_cli("validate " + dup);
  CHECK(d.exit_code == 2);
  CHECK(d.err.find("dup.json: /cluster/gpus: key 'gpus' appears twice in the same object") != std::string::npos);
}

TEST_CASE("--set on a swept key replaces the sweep; --time-limit beyond a century means none") {
  const test::CommandResult one =
      test::run_cli("run " + kScenario + " --set steps=1000 --set cluster.gpus=64 --format json --log-level info");
  REQUIRE(one.exit_code == 0);
  CHECK(one.err.find("--set cluster.gpus replaces the scenario's sweep of 'cluster.gpus'") != std::string::npos);
  const Json records = Json::parse(one.out)["records"];
  REQUIRE(records.size() == 2);  // one point, two policies
  const double mean = records[0]["step_time"]["mean"].get<double>();
  CHECK(mean > 5.0);  // E[max] is 5.48 at K = 64 (3.77 at K = 16, 7.77 at K = 256); standard error about 0.07
  CHECK(mean < 6.0);
  const std::string swept = test::write_temp("swept_compute.json", R"({"steps": 100, "cluster": {"gpus": 4},
      "workload": {"type": "bsp", "compute": {"type": "lognormal", "mu": 0, "sigma": 1}}, "policy": {"type": "none"},
      "sweep": {"workload.compute": [{"type": "lognormal", "mu": 0, "sigma": 1}, {"type": "constant", "value": 1}]}})");
  const test::CommandResult inside = test::run_cli("run " + swept + " --set workload.compute.sigma=0.5");
  CHECK(inside.exit_code == 2);
  CHECK(inside.err.find("'workload.compute.sigma' lies inside 'workload.compute', which the scenario sweeps") != std::string::npos);
  for (const std::string limit : {"inf", "1e300", "1e10"}) {
    const test::CommandResult r = test::run_cli("run " + kScenario + " --set steps=1000 --time-limit " + limit + " --quiet");
    INFO(limit << " -> " << r.err);
    CHECK(r.exit_code == 0);
  }
}

TEST_CASE("the memory estimate counts one run per thread only while runs remain for them") {
  // One point, one replication, K = 10^7: one run (estimated at about 0.3 GiB) whatever --threads says.
  const std::string args = " --set steps=4 --replications 1 --set 'policies=[{\"type\":\"none\"}]' --max-memory 1GiB --quiet";
  const std::string one_point = "run " + kScenario + " --set cluster.gpus=10000000" + args;
  CHECK(test::run_cli(one_point + " --threads 1").exit_code == 0);
  CHECK(test::run_cli(one_point + " --threads 64").exit_code == 0);
  // Under the sketch, the refusal does not blame exact quantiles.
  const test::CommandResult sketch = test::run_cli("run " + kScenario + " --sweep cluster.gpus=99999999,100000000" + args +
                                                   " --quantiles sketch --threads 2 --set workload.engine=events");
  CHECK(sketch.exit_code == 2);
  CHECK(sketch.err.find("quantile sketches") != std::string::npos);
  CHECK(sketch.err.find("exact quantiles") == std::string::npos);
}

TEST_CASE("check plans memory like run: the sketch where exact quantiles do not fit, a refusal where nothing does") {
  const std::string suite = std::string(TAILSIM_SOURCE_DIR) + "/scenarios/regression/backup_k256.json";
  const test::CommandResult bad = test::run_cli("check " + suite + " --max-memory lots");
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--max-memory") != std::string::npos);
  // Exact quantiles of 2 x 10^6 steps x 4 policies need about 120 MiB, the sketches about 11 MiB: within
  // 20 MiB the suite runs on the sketch (at K = 16, so its K = 256 expectations fail: exit 1, not 2).
  const test::CommandResult sketched =
      test::run_cli("check " + suite + " --set steps=2000000 --set cluster.gpus=16 --max-memory 20MiB");
  CHECK(sketched.exit_code == 1);
  CHECK(sketched.err.find("keeping step times in the quantile sketch") != std::string::npos);
  CHECK(sketched.out.find("step_time.mean = 3.76") != std::string::npos);  // E[max] of 16 is 3.771
  // The event engine at K = 10^8 does not fit in 4 GiB either way: refused before any run (it once ended
  // in std::bad_alloc, exit 3, or the kernel's OOM killer).
  const test::CommandResult wide = test::run_cli("check " + suite + " --set cluster.gpus=100000000 --set workload.engine=events"
                                                 " --set steps=10 --set replications=1 --max-memory 4GiB");
  CHECK(wide.exit_code == 2);
  CHECK(wide.err.find("this run needs about") != std::string::npos);
  CHECK(wide.err.find("allowed by --max-memory") != std::string::npos);
  CHECK(wide.out.empty());
}

TEST_CASE("a step too long for the integer clock is an error, not a wrapped-around number") {
  // Pareto with shape 0.3 has no mean: among 256 x 2000 draws some exceed the clock's ~73 years.
  const std::string file = test::write_temp("overflow.json", R"({"steps": 2000, "cluster": {"gpus": 256, "gpu": "h100-sxm"},
      "workload": {"type": "bsp", "compute": {"type": "pareto", "scale": 1, "shape": 0.3}}, "policy": {"type": "none"}})");
  const test::CommandResult r = test::run_cli("run " + file + " --quiet");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("does not fit the clock") != std::string::npos);
}

}  // namespace tailsim
