// The command line as users meet it: exit codes, error messages that name the file and JSON path, atomic
// outputs, and bit-identical results for any thread count.
#include <doctest/doctest.h>

#include <filesystem>
#include <set>

#include "tests/helpers.hpp"

namespace tailsim {

namespace {

const std::string kGood = R"({
  "name": "small",
  "seed": 7,
  "steps": 4000,
  "replications": 4,
  "cluster": {"gpus": 64, "gpu": "h100-sxm"},
  "workload": {"type": "bsp", "compute": {"type": "shifted_lognormal", "shift": 1.0, "mu": -0.7, "sigma": 0.9}},
  "policies": [{"type": "none"}, {"type": "backup", "copies": 2}, {"type": "backup", "quantile": 0.9, "name": "spec"}],
  "sweep": {"cluster.gpus": [1, 16, 64]}
})";

// kGood with one substring replaced.
std::string variant(const std::string& from, const std::string& to) {
  std::string s = kGood;
  const auto pos = s.find(from);
  REQUIRE(pos != std::string::npos);
  s.replace(pos, from.size(), to);
  return s;
}

test::CommandResult run_text(const std::string& text, const std::string& extra = "") {
  return test::run_cli("run " + test::write_temp("scenario.json", text) + " --quiet " + extra);
}

}  // namespace

TEST_CASE("a valid scenario runs, prints the table and exits 0") {
  const auto r = test::run_cli("run " + test::write_temp("good.json", kGood));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("cluster.gpus | policy") != std::string::npos);
  CHECK(r.out.find("spec") != std::string::npos);
  CHECK(r.err.empty());
}

TEST_CASE("--threads 1 and --threads 2 write identical bytes") {
  const std::string file = test::write_temp("det.json", kGood);
  const auto dir = test::temp_dir("det");
  REQUIRE(test::run_cli("run " + file + " --quiet --threads 1 --out " + (dir / "t1").string()).exit_code == 0);
  REQUIRE(test::run_cli("run " + file + " --quiet --threads 2 --out " + (dir / "t2").string()).exit_code == 0);
  for (const char* f : {"results.json", "results.csv"}) {
    const std::string a = test::read_file(dir / "t1" / f), b = test::read_file(dir / "t2" / f);
    CHECK(!a.empty());
    CHECK(a == b);
  }
  // No temporary files are left beside the results and the per-point log.
  std::set<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir / "t1")) files.insert(e.path().filename().string());
  CHECK(files == std::set<std::string>{"records.jsonl", "results.csv", "results.json"});
  const Json j = Json::parse(test::read_file(dir / "t1" / "results.json"));
  CHECK(j["scenario"] == "small");
  CHECK(j["records"].size() == 9);
  CHECK(j["records"][0]["params"]["cluster.gpus"] == 1);
  CHECK(j["records"][0]["slowdown_vs_k1"] == 1.0);
  CHECK(j["records"][5]["step_time"].contains("p999"));
  CHECK(j["records"][1].contains("extra_work_fraction"));
  CHECK_FALSE(j["records"][0].contains("extra_work_fraction"));
  CHECK_FALSE(j["records"][0].contains("wall_seconds"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("--set and --sweep override the scenario and --format csv prints the results") {
  const auto r = test::run_cli("run " + test::write_temp("s.json", kGood) +
                               " --set steps=500 --set policies.1.copies=3 --sweep cluster.gpus=2,8 --format csv");
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.rfind("cluster.gpus,policy,steps,step_time.mean", 0) == 0);
  CHECK(r.out.find("\n2,none,500,") != std::string::npos);
  CHECK(r.out.find("\n8,backup,500,") != std::string::npos);
  CHECK(r.out.find("\n8,backup,500,") != std::string::npos);
}

TEST_CASE("malformed JSON is reported with its line and column and exit code 2") {
  const auto r = run_text("{\n  \"steps\": 10,\n  \"seed\": ,\n}");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("scenario.json: invalid JSON at line 3, column 11") != std::string::npos);
}

TEST_CASE("an unknown key is an error with a suggestion and the known keys") {
  const auto r = run_text(variant(R"("gpus": 64)", R"("gpu_count": 64)"));
  CHECK(r.exit_code == 2);
  // The sweep sets cluster.gpus, so gpu_count is simply unknown here...
  CHECK(r.err.find("/cluster: unknown key 'gpu_count' (did you mean 'gpus'? known: gpu, gpus, gpus_per_node, nic, noise, nvlink, "
                   "slow_gpus)") != std::string::npos);
  // ...and without the sweep it stands where a required key is missing.
  const auto required = run_text(variant(R"("sweep": {"cluster.gpus": [1, 16, 64]})", R"("description": "")")
                                     .replace(kGood.find(R"("gpus": 64)"), 10, R"("gpu_count": 64)"));
  CHECK(required.exit_code == 2);
  CHECK(required.err.find("/cluster: unknown key 'gpu_count' (did you mean 'gpus'?); 'gpus' is required") !=
        std::string::npos);
  const auto optional = run_text(variant(R"("gpu": "h100-sxm")", R"("gpu": "h100-sxm", "gpus_per_nod": 4)"));
  CHECK(optional.exit_code == 2);
  CHECK(optional.err.find("/cluster: unknown key 'gpus_per_nod' (did you mean 'gpus_per_node'? known: gpu, gpus, "
                          "gpus_per_node, nic, noise, nvlink, slow_gpus)") != std::string::npos);
  // A misspelt 'gpu' is unknown, not a misspelt 'gpus' ('gpu' is optional where the workload reads no GPU
  // figures, tests/cluster/cluster_test.cpp).
  const auto misspelt = run_text(variant(R"("gpu": "h100-sxm")", R"("gpuu": "h100-sxm")"));
  CHECK(misspelt.exit_code == 2);
  CHECK(misspelt.err.find("/cluster: unknown key 'gpuu' (did you mean 'gpus'? known: gpu, gpus,") != std::string::npos);
  const auto top = run_text(variant(R"("seed": 7)", R"("sed": 7)"));
  CHECK(top.exit_code == 2);
  CHECK(top.err.find("/: unknown key 'sed' (did you mean 'seed'? known: baseline, cluster, description, expect, name, "
                     "policies, policy, replications, seed, steps, sweep, workload)") != std::string::npos);
  // A misspelt swept path used to add an axis that changed nothing (found from a fuzzer's input).
  for (const std::string& sweep : {std::string(R"(--sweep cduster.gpus=1,2)"), std::string()}) {
    const auto axis = sweep.empty() ? run_text(variant(R"("cluster.gpus": [)", R"("cduster.gpus": [)"))
                                    : run_text(kGood, sweep);
    INFO(axis.err);
    CHECK(axis.exit_code == 2);
    CHECK(axis.err.find("/sweep/cduster.gpus: unknown key 'cduster' (did you mean 'cluster'?)") != std::string::npos);
  }
}

TEST_CASE("a swept path that adds a key nobody reads is blamed on its sweep entry, not on the object it lands in") {
  struct Case {
    std::string swept, path, message;
  };
  for (const Case& c : {Case{"cluster.gpu_count", "/sweep/cluster.gpu_count", "/cluster: unknown key 'gpu_count' (did you mean 'gpus'?"},
                        Case{"cluster.nic.bandwith", "/sweep/cluster.nic.bandwith", "/cluster/nic: unknown key 'bandwith' (did you mean 'bandwidth'?"},
                        Case{"policies.1.copiez", "/sweep/policies.1.copiez", "/policies/1: unknown key 'copiez' (did you mean 'copies'?"},
                        Case{"workload.extra.depth", "/sweep/workload.extra.depth", "/workload: unknown key 'extra'"}}) {
    INFO(c.swept);
    const std::string value = c.swept.starts_with("cluster.nic") ? R"(["400Gbps"])" : "[2,4]";
    for (const bool cli : {false, true}) {
      const auto r = cli ? run_text(kGood, "--sweep " + c.swept + "=" + value.substr(1, value.size() - 2))
                         : run_text(variant(R"("cluster.gpus": [1, 16, 64])", "\"" + c.swept + "\": " + value));
      INFO(r.err);
      CHECK(r.exit_code == 2);
      CHECK(r.err.find("scenario.json: " + c.path + ": the swept path names a key nobody reads: " + c.message) !=
            std::string::npos);
    }
  }
  // A key the scenario itself misspells stays the object's fault, at any sweep point.
  const auto own = run_text(variant(R"("gpu": "h100-sxm")", R"("gpu": "h100-sxm", "gpu_count": 2)"));
  CHECK(own.err.find("scenario.json: /cluster: unknown key 'gpu_count'") != std::string::npos);
  CHECK(own.err.find("(at sweep point cluster.gpus=1)") != std::string::npos);
}

TEST_CASE("wrong types and out-of-range values name the JSON path, what was expected and what was found") {
  struct Case {
    std::string from, to, message;
  };
  const std::vector<Case> cases = {
      {R"("steps": 4000)", R"("steps": "many")", R"(/steps: expected an integer >= 1 and <= 1e+12, got a string "many")"},
      {R"("steps": 4000)", R"("steps": 2.5)", "/steps: expected an integer >= 1 and <= 1e+12, got 2.5"},
      {R"("sigma": 0.9)", R"("sigma": -0.9)", "/workload/compute/sigma: expected a number >= 0, got -0.9"},
      {"[1, 16, 64]", "[1, 0, 64]", "/cluster/gpus: expected an integer >= 1 and <= 1e+12, got 0 (at sweep point cluster.gpus=0)"},
      {R"("quantile": 0.9)", R"("quantile": 1.5)", "/policies/2/quantile: expected a number > 0 and < 1, got 1.5"},
      {R"("copies": 2)", R"("copies": 0)", "/policies/1/copies: expected an integer >= 1 and <= 8, got 0"},
      {R"({"type": "none"}, )", R"({"type": "drop_slowest", "m": 1}, )", "/policies/0/m: expected m < K = 1"},
      {R"("gpu": "h100-sxm")", R"("gpu": "h100")", "/cluster/gpu: unknown gpu 'h100' (did you mean 'h100-sxm'?); valid: "
                                                      "a100-sxm-80gb, b200, h100-sxm, h20, h200, h800, mi300x"},
      {R"("type": "bsp")", R"("type": "bspp")", "/workload/type: unknown value 'bspp' (did you mean 'bsp'?); valid: bsp"},
      {R"({"type": "none"})", R"({"type": "nonee"})", "/policies/0/type: unknown value 'nonee' (did you mean 'none'?); "
                                                      "valid: none, backup, drop_slowest"},
      {R"("shift": 1.0)", R"("shift": 1.0, "shfit": 2)", "/workload/compute: unknown key 'shfit' (did you mean 'shift'?"},
      {R"("replications": 4)", R"("replications": 5000)", "/replications: expected at most 'steps' (4000) replications"},
      {R"({"type": "none"}, )", R"({"type": "backup", "copies": 2}, )", "/policies/1: policy label 'backup' is used twice"},
  };
  for (const Case& c : cases) {
    INFO(c.to);
    const auto r = run_text(variant(c.from, c.to));
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("scenario.json: " + c.message) != std::string::npos);
  }
}

TEST_CASE("bad moe input exits 2 from the command line: unknown model, impossible placement, a mismatched trace") {
  const std::string trace = test::write_temp("narrow_trace.csv", "step,layer,e0,e1\n0,0,3,5\n");
  const auto moe = [](int gpus, const std::string& workload) {
    return R"({"steps": 5, "cluster": {"gpus": )" + std::to_string(gpus) +
           R"(, "gpu": "h100-sxm"}, "workload": {"type": "moe", )" + workload + R"(}, "policy": {"type": "none"}})";
  };
  const std::pair<std::string, std::string> cases[] = {
      {moe(8, R"("model": "mixtral-8x7")"), "/workload/model: unknown model 'mixtral-8x7' (did you mean 'mixtral-8x7b'?)"},
      {moe(6, R"("model": "mixtral-8x7b")"), "/workload/model: impossible placement: 8 experts cannot be spread evenly over 6 GPUs"},
      {moe(8, R"("model": "mixtral-8x7b", "routing": {"type": "trace", "file": ")" + trace + R"("})"),
       "/workload/routing/file: " + trace + " line 1: the header has 2 expert columns, the model has 8 experts"}};
  for (const auto& [text, message] : cases) {
    const std::string& shown = text;  // (clang 14 cannot capture a structured binding in INFO's lambda)
    INFO(shown);
    const auto r = run_text(text);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(message) != std::string::npos);
    CHECK(r.out.empty());
  }
}

TEST_CASE("a missing scenario file and a bad command line exit 2 with a clear message") {
  const auto missing = test::run_cli("run /nonexistent/scenario.json");
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("/nonexistent/scenario.json: cannot open file") != std::string::npos);
  const auto verb = test::run_cli("rnu x.json");
  CHECK(verb.exit_code == 2);
  CHECK(verb.err.find("unknown command 'rnu' (did you mean 'run'?)") != std::string::npos);
  const auto set = test::run_cli("run " + test::write_temp("g.json", kGood) + " --set steps");
  CHECK(set.exit_code == 2);
  CHECK(set.err.find("--set: expected PATH=VALUE") != std::string::npos);
  const auto sweep_bad = test::run_cli("run " + test::write_temp("g.json", kGood) + " --sweep cluster.gpus=1,0");
  CHECK(sweep_bad.exit_code == 2);
  CHECK(sweep_bad.err.find("/cluster/gpus: expected an integer >= 1 and <= 1e+12, got 0 (at sweep point cluster.gpus=0)") !=
        std::string::npos);
}

TEST_CASE("an unwritable --out is an error before any simulation, and bad input leaves nothing behind") {
  const std::string file = test::write_temp("g.json", kGood);
  const auto r = test::run_cli("run " + file + " --out /proc/version/results");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--out: cannot create output folder '/proc/version/results'") != std::string::npos);
  const auto dir = test::temp_dir("nothing");
  const auto bad = test::run_cli("run " + test::write_temp("bad.json", variant(R"("sigma": 0.9)", R"("sigma": -1)")) +
                                 " --out " + (dir / "out").string());
  CHECK(bad.exit_code == 2);
  CHECK_FALSE(std::filesystem::exists(dir / "out" / "results.json"));
  CHECK_FALSE(std::filesystem::exists(dir / "out" / "results.csv"));
  // A bad --trace path fails before --out is touched (it once left a records.jsonl with only its header).
  const auto trace = test::run_cli("run " + file + " --out " + (dir / "out2").string() + " --trace /nonexistent/t.json");
  CHECK(trace.exit_code == 2);
  CHECK_FALSE(std::filesystem::exists(dir / "out2"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("validate checks every point without simulating and list shows each registry") {
  const auto ok = test::run_cli("validate " + test::write_temp("v.json", kGood));
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("ok (3 points") != std::string::npos);
  const auto list = test::run_cli("list");
  CHECK(list.exit_code == 0);
  for (const char* s : {"policies:", "backup", "distributions:", "shifted_lognormal", "workloads:", "bsp", "h100-sxm",
                        "noise (configs/noise):", "healthy-jitter"})
    CHECK(list.out.find(s) != std::string::npos);
  const auto bad = test::run_cli("list polices");
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("did you mean 'policies'?") != std::string::npos);
}

TEST_CASE("--quiet prints the table alone: no progress, no wall-time line") {
  const std::string file = test::write_temp("quiet.json", kGood);
  const auto quiet = test::run_cli("run " + file + " --set steps=400 --quiet --progress always --log-level info");
  CHECK(quiet.exit_code == 0);
  CHECK(quiet.out.rfind("small: 400 steps per point, seed 7\ncluster.gpus | policy", 0) == 0);
  CHECK(quiet.out.find(" s wall") == std::string::npos);
  CHECK(quiet.err.find("units") != std::string::npos);  // given explicitly, progress still shows
  const auto silent = test::run_cli("run " + file + " --set steps=400 --quiet --progress auto");
  CHECK(silent.err.empty());
  CHECK(silent.out == quiet.out);  // the same bytes run after run
  const auto loud = test::run_cli("run " + file + " --set steps=400 --progress always --log-level info");
  CHECK(loud.out.find(" s wall") != std::string::npos);
}

TEST_CASE("wall_seconds is in records.jsonl and the results only with --timing") {
  const std::string file = test::write_temp("timing.json", kGood);
  const auto dir = test::temp_dir("timing");
  for (const std::string t : {"", " --timing"}) {
    const std::string out = (dir / (t.empty() ? "plain" : "timed")).string();
    REQUIRE(test::run_cli("run " + file + " --set steps=400 --quiet --out " + out + t).exit_code == 0);
    for (const char* f : {"records.jsonl", "results.json", "results.csv"}) {
      INFO(out << "/" << f);
      CHECK((test::read_file(std::filesystem::path(out) / f).find("wall_seconds") != std::string::npos) == !t.empty());
    }
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("every shipped scenario validates") {
  const std::filesystem::path root = std::string(TAILSIM_SOURCE_DIR) + "/scenarios";
  REQUIRE(std::filesystem::is_directory(root));
  int scenarios = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.path().extension() != ".json") continue;
    ++scenarios;
    INFO(e.path().string());
    CHECK(test::run_cli("validate " + e.path().string()).exit_code == 0);
  }
  INFO("no scenario (*.json) found under " << root.string());
  CHECK(scenarios > 0);  // an empty or moved scenarios/ must not pass by checking nothing
}

}  // namespace tailsim
