// The columns of policy comparisons: vs_baseline (every report, and records.jsonl back to a record) and the
// routing costs of capacity_drop and reroute; left out where they do not apply; resumed and merged runs
// give the bytes of one run; `check` judges them.
#include <doctest/doctest.h>

#include <filesystem>
#include <sstream>
#include <string>

#include "sim/report/records.hpp"
#include "sim/report/report.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace fs = std::filesystem;

namespace {

const std::string kScenario = std::string(TAILSIM_SOURCE_DIR) + "/scenarios/moe/olmoe_capacity_speedup.json";
const std::string kSmall = kScenario + " --set steps=60 --set replications=2 --quiet";  // 4 points x 3 policies

Record record_of(const std::string& policy) {
  Record rec;
  rec.params = {{"cluster.gpus", Json(8)}};
  rec.policy = policy;
  rec.step_time.count = 10;
  rec.step_time.mean = 0.5;
  return rec;
}

RunResults results_of(std::vector<Record> records) {
  RunResults r;
  r.scenario = "s";
  r.param_names = {"cluster.gpus"};
  r.records = std::move(records);
  return r;
}

}  // namespace

TEST_CASE("vs_baseline and the routing costs go to results.json, results.csv and the table, and come back from a record") {
  Record base = record_of("none"), capped = record_of("capacity_drop"), one_step = record_of("reroute");
  base.moe = MoeRecord{};
  capped.moe = MoeRecord{};
  capped.moe->routing = RoutingCost{0.125, 0.0, 0.03125};
  capped.vs_baseline = VsBaseline{"none", 1.25, 1.2, 1.3};
  one_step.vs_baseline = VsBaseline{"none", 0.75, std::nullopt, std::nullopt};  // no interval from one batch
  const RunResults r = results_of({base, capped, one_step});

  const Json j = results_json(r, {});
  const Json& recs = j["records"];
  CHECK_FALSE(recs[0].contains("vs_baseline"));
  CHECK_FALSE(recs[0].contains("dropped_fraction"));  // no controller saw the routing
  CHECK(recs[1]["vs_baseline"] == Json::parse(R"({"policy": "none", "speedup": 1.25, "ci95_low": 1.2, "ci95_high": 1.3})"));
  CHECK(recs[1]["dropped_fraction"] == 0.125);
  CHECK(recs[1]["rerouted_fraction"] == 0.0);
  CHECK(recs[1]["dropped_gate_mass"] == 0.03125);
  CHECK(recs[2]["vs_baseline"] == Json::parse(R"({"policy": "none", "speedup": 0.75})"));
  for (std::size_t i = 0; i < 3; ++i) {
    const Record back = record_from_json(recs[i], 0, {"cluster.gpus"}, "r.jsonl", "line 2");
    CHECK(record_json(back, false) == recs[i]);
  }

  const std::string csv = results_csv(r, {});
  CHECK(csv.find(",slowdown_vs_k1,vs_baseline.policy,vs_baseline.speedup,vs_baseline.ci95_low,vs_baseline.ci95_high,"
                 "idle_fraction,") != std::string::npos);
  CHECK(csv.find(",bytes_moved,throughput.tokens_per_s,throughput.tokens_per_s_per_gpu,dropped_fraction,"
                 "rerouted_fraction,dropped_gate_mass,events\n") != std::string::npos);
  CHECK(csv.find("\n8,none,10,0.5,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,,,,,,0.0,,") != std::string::npos);
  CHECK(csv.find(",,none,1.25,1.2,1.3,0.0,,") != std::string::npos);
  CHECK(csv.find(",0.0,0.125,0.0,0.03125,0\n") != std::string::npos);
  CHECK(csv.find(",,none,0.75,,,0.0,,,,,,,,,,,,0\n") != std::string::npos);

  std::ostringstream table;
  print_table(table, r, {});
  CHECK(table.str().find("| slowdown | vs none | 95% CI | idle |") != std::string::npos);
  CHECK(table.str().find("| dropped | rerouted | gate mass\n") != std::string::npos);
  CHECK(table.str().find("| capacity_drop | ") != std::string::npos);
  CHECK(table.str().find("|  1.250x | ±0.050 |") != std::string::npos);
  CHECK(table.str().find("|  12.50% |    0.00% |     3.12%\n") != std::string::npos);
  // A bsp-like run of one policy: none of those columns.
  std::ostringstream plain;
  print_table(plain, results_of({record_of("none")}), {});
  CHECK(plain.str().find("vs none") == std::string::npos);
  CHECK(plain.str().find("dropped") == std::string::npos);
}

TEST_CASE("a capacity run resumed or merged from shards gives the bytes of one run, vs_baseline and costs included") {
  const fs::path dir = test::temp_dir("policy-columns");
  const std::string one = (dir / "one").string();
  REQUIRE(test::run_cli("run " + kSmall + " --out " + one).exit_code == 0);
  const std::string results = test::read_file(fs::path(one) / "results.json");
  const Json j = Json::parse(results);
  REQUIRE(j["records"].size() == 12);
  CHECK(j["records"][1]["vs_baseline"]["policy"] == "none");
  CHECK(j["records"][1]["dropped_fraction"].get<double>() > 0.1);
  CHECK(j["records"][2]["rerouted_fraction"].get<double>() > 0.1);
  for (const char* s : {"1/2", "2/2"})
    REQUIRE(test::run_cli("run " + kSmall + " --shard " + s + " --out " + (dir / ("s" + std::string(1, s[0]))).string())
                .exit_code == 0);
  const std::string merged = (dir / "merged").string();
  REQUIRE(test::run_cli("merge " + (dir / "s1").string() + " " + (dir / "s2").string() + " --out " + merged).exit_code == 0);
  CHECK(test::read_file(fs::path(merged) / "results.json") == results);
  CHECK(test::read_file(fs::path(merged) / "results.csv") == test::read_file(fs::path(one) / "results.csv"));
  // Resume a log cut after its second point: the same bytes again.
  const fs::path cut = dir / "cut";
  fs::create_directories(cut);
  const std::string log = test::read_file(fs::path(one) / "records.jsonl");
  std::size_t end = 0;
  for (int line = 0; line < 3; ++line) end = log.find('\n', end) + 1;
  std::ofstream(cut / "records.jsonl", std::ios::binary) << log.substr(0, end);
  REQUIRE(test::run_cli("run " + kSmall + " --resume --out " + cut.string()).exit_code == 0);
  CHECK(test::read_file(cut / "results.json") == results);
  fs::remove_all(dir);
}

TEST_CASE("check judges the routing costs and the paired speed-up against the scenario's baseline") {
  const auto with_expect = [](const std::string& expect) {
    Json doc = Json::parse(test::read_file(kScenario));
    doc["steps"] = 60;
    doc["sweep"]["cluster.gpus"] = Json::array({8});
    doc["expect"] = Json::parse("[" + expect + "]");
    return test::write_temp("capacity_expect.json", doc.dump());
  };
  const test::CommandResult ok = test::run_cli("check " + with_expect(R"(
    {"metric": "speedup", "policy": "capacity_drop", "min": 1.1},
    {"metric": "speedup", "baseline": "none", "policy": "reroute", "min": 1.05, "max": 1.3},
    {"where": {"policy": "capacity_drop"}, "metric": "dropped_fraction", "min": 0.1, "max": 0.2},
    {"where": {"policy": "reroute"}, "metric": "rerouted_fraction", "min": 0.1},
    {"where": {"policy": "reroute"}, "metric": "dropped_gate_mass", "max": 0.02})"));
  INFO(ok.out << ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("PASS  speedup of capacity_drop over none at cluster.gpus=8: speedup = 1.2") != std::string::npos);
  CHECK(ok.out.find("(95% CI)") != std::string::npos);
  const test::CommandResult none = test::run_cli("check " + with_expect(R"(
    {"where": {"policy": "none"}, "metric": "dropped_fraction", "max": 0.2})"));
  CHECK(none.exit_code == 1);
  CHECK(none.out.find("dropped_fraction does not apply to this record") != std::string::npos);
  const test::CommandResult other = test::run_cli("validate " + with_expect(R"(
    {"metric": "speedup", "baseline": "capacity_drop", "policy": "reroute", "min": 1})"));
  CHECK(other.exit_code == 2);
  CHECK(other.err.find("/expect/0/baseline: speedup is paired against the scenario's baseline policy, 'none', not "
                       "'capacity_drop'; set the scenario's \"baseline\": \"capacity_drop\"") != std::string::npos);
  const test::CommandResult self = test::run_cli("validate " + with_expect(R"(
    {"metric": "speedup", "policy": "none", "min": 1})"));
  CHECK(self.exit_code == 2);
  CHECK(self.err.find("/expect/0/policy: speedup of the baseline 'none' over itself") != std::string::npos);
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("what-if figures go to results.csv where a record has them, and evictions to results.json and back") {
  Record none = record_of("none"), evict = record_of("evict");
  none.whatif = WhatIfRecord{1.5, {1.25, 1.0}, {1.5}};
  evict.evicted = std::vector<Eviction>{{7, 12, true}, {3, 15, false}};
  const RunResults r = results_of({none, evict});
  const std::string csv = results_csv(r, {});
  CHECK(csv.find(",events,whatif_slowdown,whatif_by_dp_rank,whatif_by_stage\n") != std::string::npos);
  CHECK(csv.find(",0,1.5,1.25;1.0,1.5\n") != std::string::npos);
  CHECK(csv.find(",0,,,\n") != std::string::npos);  // the evict record has no what-if: empty cells
  // Without what-if figures the columns stay as they were.
  CHECK(results_csv(results_of({record_of("none")}), {}).find("whatif") == std::string::npos);

  const Json j = results_json(r, {});
  CHECK_FALSE(j["records"][0].contains("evicted"));
  CHECK(j["records"][1]["evicted"] ==
        Json::parse(R"([{"rank": 7, "step": 12, "spare": true}, {"rank": 3, "step": 15, "spare": false}])"));
  for (std::size_t i = 0; i < 2; ++i) {
    const Record back = record_from_json(j["records"][i], 0, {"cluster.gpus"}, "r.jsonl", "line 2");
    CHECK(record_json(back, false) == j["records"][i]);
  }
}

}  // namespace tailsim
