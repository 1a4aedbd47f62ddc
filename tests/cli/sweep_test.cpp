// Sweeps users can trust: records.jsonl per point, --resume after an interruption, --shard and merge, and
// `tailsim check` with its verdicts, exit codes and JUnit XML.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "sim/config/json_reader.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace fs = std::filesystem;

namespace {

const std::string kScenario = std::string(TAILSIM_SOURCE_DIR) + "/scenarios/textbook/tail_at_scale.json";
const std::string kSmall = kScenario + " --set steps=4000 --quiet";

int lines_in(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

}  // namespace

TEST_CASE("--out writes one records.jsonl line per point and the same results for any thread count") {
  const fs::path dir = test::temp_dir("records");
  REQUIRE(test::run_cli("run " + kSmall + " --threads 1 --out " + (dir / "a").string()).exit_code == 0);
  REQUIRE(test::run_cli("run " + kSmall + " --threads 2 --out " + (dir / "b").string()).exit_code == 0);
  const std::string log = test::read_file(dir / "a" / "records.jsonl");
  CHECK(lines_in(log) == 1 + 7);  // the header and 7 points
  const Json header = Json::parse(log.substr(0, log.find('\n')));
  CHECK(header["scenario"] == "tail-at-scale");
  CHECK(header["points"] == 7);
  CHECK(test::read_file(dir / "a" / "results.json") == test::read_file(dir / "b" / "results.json"));
  CHECK(test::read_file(dir / "a" / "results.csv") == test::read_file(dir / "b" / "results.csv"));
  fs::remove_all(dir);
}

TEST_CASE("--resume completes an interrupted sweep, repeating nothing, with the bytes of an uninterrupted run") {
  const fs::path dir = test::temp_dir("resume");
  const std::string full = (dir / "full").string(), cut = (dir / "cut").string(), killed = (dir / "killed").string();
  REQUIRE(test::run_cli("run " + kSmall + " --out " + full).exit_code == 0);

  // An interruption while the fourth point's line was being written: three points and half a line.
  fs::create_directories(cut);
  const std::string log = test::read_file(fs::path(full) / "records.jsonl");
  std::size_t end = 0;
  for (int line = 0; line < 4; ++line) end = log.find('\n', end) + 1;
  const std::size_t half = end + (log.find('\n', end) - end) / 2;
  std::ofstream(fs::path(cut) / "records.jsonl", std::ios::binary) << log.substr(0, half);
  const test::CommandResult resumed = test::run_cli("run " + kSmall + " --out " + cut + " --resume --log-level info");
  REQUIRE(resumed.exit_code == 0);
  CHECK(resumed.err.find("resuming: 3 of 7 points already complete") != std::string::npos);
  CHECK(lines_in(test::read_file(fs::path(cut) / "records.jsonl")) == 1 + 7);
  CHECK(test::read_file(fs::path(cut) / "results.json") == test::read_file(fs::path(full) / "results.json"));
  CHECK(test::read_file(fs::path(cut) / "results.csv") == test::read_file(fs::path(full) / "results.csv"));

  // A real kill: SIGKILL once the first point is on disk (polled, so a slow build still kills midway), then
  // --resume, against an uninterrupted run.
  const std::string longer = kScenario + " --set steps=300000 --quiet --threads 1";
  const std::string log_file = (fs::path(killed) / "records.jsonl").string();
  test::run_cli("run " + longer + " --out " + killed + " & pid=$!; i=0; while [ $i -lt 1200 ] && "
                "[ \"$(cat " + log_file + " 2>/dev/null | wc -l)\" -lt 2 ]; do sleep 0.05; i=$((i+1)); done; "
                "kill -9 $pid; wait $pid");
  const int done_before = lines_in(test::read_file(log_file)) - 1;
  INFO("points complete when killed: " << done_before);
  CHECK(done_before > 0);
  CHECK(done_before < 7);
  REQUIRE(test::run_cli("run " + longer + " --out " + killed + " --resume").exit_code == 0);
  REQUIRE(test::run_cli("run " + longer + " --out " + full).exit_code == 0);
  CHECK(test::read_file(fs::path(killed) / "results.json") == test::read_file(fs::path(full) / "results.json"));

  // Resuming into a folder of another run is refused.
  const test::CommandResult other = test::run_cli("run " + kSmall + " --set seed=8 --out " + full + " --resume");
  CHECK(other.exit_code == 2);
  CHECK(other.err.find("cannot resume: the folder holds results of another run") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("shards merged give the bytes of a single run; bad shard specs and mismatched merges exit 2") {
  const fs::path dir = test::temp_dir("shards");
  const std::string one = (dir / "one").string(), merged = (dir / "merged").string();
  REQUIRE(test::run_cli("run " + kSmall + " --out " + one).exit_code == 0);
  for (const char* s : {"1/3", "2/3", "3/3"})
    REQUIRE(test::run_cli("run " + kSmall + " --shard " + s + " --out " + (dir / ("s" + std::string(1, s[0]))).string())
                .exit_code == 0);
  const std::string shards = (dir / "s1").string() + " " + (dir / "s2").string() + " " + (dir / "s3").string();
  REQUIRE(test::run_cli("merge " + shards + " --out " + merged).exit_code == 0);
  CHECK(test::read_file(fs::path(merged) / "results.json") == test::read_file(fs::path(one) / "results.json"));
  CHECK(test::read_file(fs::path(merged) / "results.csv") == test::read_file(fs::path(one) / "results.csv"));

  for (const char* bad : {"3/2", "0/2", "1/0", "a/b", "2"}) {
    const test::CommandResult r = test::run_cli("run " + kSmall + " --shard " + bad);
    INFO(bad);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--shard: expected I/N") != std::string::npos);
  }
  const test::CommandResult missing = test::run_cli("merge " + (dir / "s1").string() + " --out " + (dir / "m2").string());
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("points 1-2, 4-5 missing (4 of 7): they are in none of the folders") != std::string::npos);
  REQUIRE(test::run_cli("run " + kSmall + " --set steps=3000 --shard 2/3 --out " + (dir / "other").string()).exit_code == 0);
  const test::CommandResult mixed = test::run_cli("merge " + (dir / "s1").string() + " " + (dir / "other").string() + " " +
                                                  (dir / "s3").string() + " --out " + (dir / "m3").string());
  CHECK(mixed.exit_code == 2);
  CHECK(mixed.err.find("comes from another scenario or other settings") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "m3" / "results.json"));
  // A log whose fields have the wrong type is bad input naming the line, not an internal error.
  fs::create_directories(dir / "typo");
  const std::string header = R"({"tailsim_records":2,"scenario":"s","fingerprint":"x","seed":1,"steps":10,)"
                             R"("replications":1,"points":1,"param_names":[],"param_values":[],"policies":["none"],"inputs":[]})";
  for (const auto& [log, message] : std::vector<std::pair<std::string, std::string>>{
           {R"({"tailsim_records":2,"scenario":"s","fingerprint":"x","seed":1,"steps":10,"replications":1,"points":1,"param_names":5,)"
            R"("param_values":[],"policies":["none"],"inputs":[]})",
            "line 1: malformed records line: type must be array, but is number"},
           {header + "\n" + R"({"point":0,"records":[{"params":{},"policy":"none","steps":4e40}]})",
            "line 2: malformed record"},
           {R"({"tailsim_records":2,"scenario":"s","fingerprint":"x","seed":1,"steps":10,"replications":1,"points":1e300,"param_names":[],)"
            R"("param_values":[],"policies":["none"],"inputs":[]})",
            "line 1: malformed records line: 'points': expected an integer >= 0, got 1e+300"}}) {
    std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
    info_text << log;
    INFO(info_text.str());
    std::ofstream(dir / "typo" / "records.jsonl") << log << '\n';
    const test::CommandResult typo = test::run_cli("merge " + (dir / "typo").string() + " --out " + (dir / "m4").string());
    CHECK(typo.exit_code == 2);
    CHECK(typo.err.find("records.jsonl: " + message) != std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("mpirun -n 2 splits the units over ranks and rank 0 writes the bytes of a one-process run") {
  if (test::run_cli("--version").out.find("mpi: enabled") == std::string::npos) {
    MESSAGE("skipped: this tailsim was built without MPI (apt-get install libopenmpi-dev, then rebuild)");
    return;
  }
  // --allow-run-as-root: CI runs as root; harmless otherwise.
  const std::string mpirun = "timeout 120 mpirun --allow-run-as-root --oversubscribe -n 2 ";
  if (std::system((mpirun + "true >/dev/null 2>&1").c_str()) != 0) {
    MESSAGE("skipped: mpirun is missing or cannot start two processes here");
    return;
  }
  const fs::path dir = test::temp_dir("mpi");
  const std::string one = (dir / "one").string(), two = (dir / "two").string();
  REQUIRE(test::run_cli("run " + kSmall + " --out " + one).exit_code == 0);
  const std::string cmd = mpirun + TAILSIM_BINARY + " run " + kSmall + " --threads 1 --log-level info --out " + two +
                          " 2>" + (dir / "err").string();
  REQUIRE(std::system(cmd.c_str()) == 0);
  CHECK(test::read_file(dir / "err").find("1 threads per rank, 2 ranks") != std::string::npos);
  CHECK(test::read_file(fs::path(two) / "results.json") == test::read_file(fs::path(one) / "results.json"));
  CHECK(test::read_file(fs::path(two) / "results.csv") == test::read_file(fs::path(one) / "results.csv"));
  // Bad input fails on every rank alike: exit 2, one message.
  const std::string bad = mpirun + TAILSIM_BINARY + " run " + kSmall + " --set stepz=1 2>" + (dir / "bad").string();
  const int status = std::system(bad.c_str());
  CHECK(WEXITSTATUS(status) == 2);
  const std::string message = test::read_file(dir / "bad");
  CHECK(message.find("unknown key 'stepz'") != std::string::npos);
  CHECK(message.find("unknown key 'stepz'") == message.rfind("unknown key 'stepz'"));
  fs::remove_all(dir);
}

TEST_CASE("check prints a verdict per expectation, writes JUnit XML and exits 1 on a regression") {
  const fs::path dir = test::temp_dir("check");
  const std::string suite = std::string(TAILSIM_SOURCE_DIR) + "/scenarios/regression/backup_k256.json";
  const test::CommandResult ok = test::run_cli("check " + suite + " --junit " + (dir / "ok.xml").string());
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("PASS  speedup of 1 backup over 0 backups") != std::string::npos);
  CHECK(ok.out.find("ok: 6 passed, 0 failed") != std::string::npos);
  const std::string xml = test::read_file(dir / "ok.xml");
  CHECK(xml.find("<testsuites name=\"tailsim check\" tests=\"6\" failures=\"0\">") != std::string::npos);

  // A broken backup that ignores its copies (one attempt, as --set copies=1 makes it) is caught.
  const test::CommandResult broken =
      test::run_cli("check " + suite + " --set policies.1.copies=1 --junit " + (dir / "broken.xml").string());
  CHECK(broken.exit_code == 1);
  CHECK(broken.out.find("FAIL  speedup of 1 backup over 0 backups: speedup = 1;") != std::string::npos);
  CHECK(broken.out.find("FAILED: 4 passed, 2 failed") != std::string::npos);
  const std::string bxml = test::read_file(dir / "broken.xml");
  CHECK(bxml.find("failures=\"2\"") != std::string::npos);
  CHECK(bxml.find("<failure message=\"speedup = 1;") != std::string::npos);
  // Well-formed XML, where a parser is at hand (tools/setup installs python3).
  if (std::system("python3 -c 'import xml.dom.minidom' 2>/dev/null") == 0)
    CHECK(std::system(("python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' " + (dir / "broken.xml").string())
                          .c_str()) == 0);
  fs::remove_all(dir);
}

TEST_CASE("check of a folder skips the scenarios a --set does not apply to and judges the rest (README's command)") {
  // Exactly the README's way to see the suite fail, from the repository's root: the BSP scenarios fail, the
  // MoE ones (one policy, or no 'copies' in policies[1]) are skipped with the reason, JUnit is written, exit 1.
  const fs::path dir = test::temp_dir("check_set");
  const std::string cmd = "cd " + std::string(TAILSIM_SOURCE_DIR) + " && " + TAILSIM_BINARY +
                          " check scenarios/regression --set policies.1.copies=1 --junit " + (dir / "junit.xml").string() +
                          " >" + (dir / "out").string() + " 2>" + (dir / "err").string();
  const int status = std::system(cmd.c_str());
  CHECK(WEXITSTATUS(status) == 1);
  const std::string out = test::read_file(dir / "out");
  CHECK(out.find("FAIL  speedup of 1 backup over 0 backups: speedup = 1;") != std::string::npos);
  CHECK(out.find("regression-tail-at-scale (scenarios/regression/tail_at_scale.json):\n") != std::string::npos);
  CHECK(out.find("regression-moe-mixtral-8xh100 (scenarios/regression/moe_mixtral_8xh100.json):\n  SKIP  --set "
                 "policies.1.copies=1 does not apply to this scenario: ") != std::string::npos);
  CHECK(out.find("expected exactly one of 'policy' (an object) or 'policies' (a list)") != std::string::npos);
  CHECK(out.find("regression-moe-capacity-speedup (scenarios/regression/moe_capacity_speedup.json):\n  SKIP  ") !=
        std::string::npos);
  const std::size_t skips = [&] {
    std::size_t n = 0;
    for (std::size_t at = out.find("  SKIP  "); at != std::string::npos; at = out.find("  SKIP  ", at + 1)) ++n;
    return n;
  }();
  CHECK(skips == 6);
  CHECK(out.find("; 6 scenarios skipped (--set does not apply)\n") != std::string::npos);
  CHECK(out.find("\nFAILED: ") != std::string::npos);
  const std::string xml = test::read_file(dir / "junit.xml");
  CHECK(xml.find("skipped=\"6\"") != std::string::npos);
  CHECK(xml.find("<failure message=\"speedup = 1;") != std::string::npos);
  CHECK(xml.find("<skipped message=\"--set policies.1.copies=1 does not apply to this scenario: ") != std::string::npos);
  if (std::system("python3 -c 'import xml.dom.minidom' 2>/dev/null") == 0)
    CHECK(std::system(("python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' " + (dir / "junit.xml").string())
                          .c_str()) == 0);
  // A --set that applies to no scenario checks nothing: exit 2, each scenario's reason.
  const test::CommandResult none = test::run_cli("check " + std::string(TAILSIM_SOURCE_DIR) +
                                                 "/scenarios/regression/moe_mixtral_8xh100.json --set policies.1.copies=1");
  CHECK(none.exit_code == 2);
  CHECK(none.err.find("--set: applies to none of the scenarios, so nothing was checked") != std::string::npos);
  CHECK(none.err.find("moe_mixtral_8xh100.json: --set policies.1.copies=1 does not apply") != std::string::npos);
  // A scenario invalid without the --set too is an input error, as before.
  const std::string broken = test::write_temp("broken_check.json", R"({"steps": 10, "cluster": {"gpus": 2},
      "workload": {"type": "bsp", "compute": {"type": "lognormal", "mu": 0}}, "policy": {"type": "none"},
      "expect": [{"metric": "step_time.mean", "value": 1}]})");
  const test::CommandResult bad = test::run_cli("check " + broken + " --set steps=20");
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("/workload/compute") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("bad expectations are input errors (exit 2) found before any run, also by validate") {
  auto with_expect = [](const std::string& expect) {
    return test::write_temp("expect.json", R"({"steps": 100, "cluster": {"gpus": 4, "gpu": "h100-sxm"},
      "workload": {"type": "bsp", "compute": {"type": "exponential", "rate": 1}},
      "policies": [{"type": "none"}, {"type": "backup", "copies": 2}],
      "sweep": {"cluster.gpus": [1, 4]}, "expect": [)" + expect + "]}");
  };
  const std::pair<std::string, std::string> cases[] = {
      {R"({"metric": "step_time.mena", "value": 1})",
       "/expect/0/metric: unknown value 'step_time.mena' (did you mean 'step_time.mean'?); valid: step_time.mean"},
      {R"({"where": {"cluster.gpus": 3}, "metric": "step_time.mean", "value": 1})",
       "/expect/0/where: matches no point of the scenario (cluster.gpus=3; 2 points)"},
      {R"({"where": {"policy": "spec"}, "metric": "step_time.mean", "value": 1})",
       "/expect/0/where: matches no point of the scenario (policy=spec"},
      {R"({"metric": "speedup", "baseline": "none", "policy": "backup3", "min": 1})",
       "/expect/0: speedup: no policy labelled 'backup3' (policies: none, backup)"},
      {R"({"metric": "step_time.mean"})", "/expect/0: expected a bound"},
      {R"({"metric": "step_time.mean", "value": 1, "rel_tol": -1})", "/expect/0/rel_tol: expected a number >= 0"},
      {R"({"metric": "step_time.mean", "value": 1, "tolerance": 1})", "/expect/0: unknown key 'tolerance'"}};
  for (const auto& [expect, message] : cases) {
    const std::string file = with_expect(expect);
    for (const char* verb : {"check ", "validate ", "run "}) {
      const test::CommandResult r = test::run_cli(verb + file);
      std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
      info_text << verb << expect << " -> " << r.err;
      INFO(info_text.str());
      CHECK(r.exit_code == 2);
      CHECK(r.err.find(message) != std::string::npos);
    }
  }
}

TEST_CASE("--trace writes a Perfetto timeline of the first steps; bad trace options exit 2") {
  const fs::path dir = test::temp_dir("trace");
  const std::string file = (dir / "trace.json").string();
  REQUIRE(test::run_cli("run " + kSmall + " --trace " + file + " --trace-steps 3").exit_code == 0);
  const Json trace = Json::parse(test::read_file(file));
  std::set<std::string> names;
  for (const Json& e : trace["traceEvents"])
    if (e["ph"] == "X") names.insert(e["name"].get<std::string>());
  for (const char* kind : {"compute", "compute (straggler)", "barrier wait", "step 0", "step 2"})
    CHECK(names.count(kind) == 1);
  CHECK(names.count("step 3") == 0);
  const test::CommandResult zero = test::run_cli("run " + kSmall + " --trace " + file + " --trace-steps 0");
  CHECK(zero.exit_code == 2);
  CHECK(zero.err.find("--trace-steps") != std::string::npos);
  const test::CommandResult nowhere = test::run_cli("run " + kSmall + " --trace /nonexistent/dir/t.json");
  CHECK(nowhere.exit_code == 2);
  CHECK(nowhere.err.find("/nonexistent/dir/t.json") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("--progress always draws a bar with rate and ETA on stderr; never prints nothing") {
  const test::CommandResult bar = test::run_cli("run " + kSmall + " --progress always --threads 1");
  CHECK(bar.exit_code == 0);
  CHECK(bar.err.find("tail-at-scale [") != std::string::npos);
  CHECK(bar.err.find("28/28 units") != std::string::npos);  // 7 points x 4 replications
  CHECK(bar.err.find("ETA") != std::string::npos);
  const test::CommandResult quiet = test::run_cli("run " + kSmall + " --progress never");
  CHECK(quiet.err.empty());
  CHECK(test::run_cli("run " + kSmall + " --progress sometimes").exit_code == 2);
}

}  // namespace tailsim
