// Input that used to be misread or to overflow silently (issue 12): products of token counts, samples files,
// seeds over 2^53, long sweep axes, --quantiles auto under --threads, and memory held per sweep point.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <numeric>
#include <sstream>
#include <string>

#include "sim/config/error.hpp"
#include "sim/config/json_reader.hpp"
#include "sim/run/limits.hpp"
#include "sim/stats/distribution.hpp"
#include "sim/workload/routing.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace fs = std::filesystem;

namespace {

// The InputError message of loading and building `text`, or "" when it builds.
std::string build_error(const std::string& text) {
  try {
    const Scenario sc = load_scenario_json(Json::parse(text), "test.json");
    build_all_points(sc);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

std::string moe_scenario(const std::string& model_extra, std::int64_t gpus, const std::string& tokens,
                         const std::string& routing = "") {
  return R"({"seed": 1, "steps": 4, "cluster": {"gpus": )" + std::to_string(gpus) + R"(, "gpu": "h100-sxm"},
    "workload": {"type": "moe", "tokens_per_gpu": )" + tokens + (routing.empty() ? "" : ", \"routing\": " + routing) + R"(,
      "model": {"name": "toy", "layers": 2, "experts": 4, "top_k": 2, "hidden": 1024, "expert_intermediate": 512)" +
         model_extra + R"(}},
    "policy": {"type": "none"}})";
}

const std::string kTailAtScale = std::string(TAILSIM_SOURCE_DIR) + "/scenarios/textbook/tail_at_scale.json";

}  // namespace

// ---- 1. products that overflowed ----------------------------------------------------------------------------

TEST_CASE("attention_params_per_layer beyond a physical size is refused, not turned into a 92 us step") {
  for (const char* v : {"1e22", "2e22", "1e30", "1e14"}) {
    INFO(v);
    const std::string e = build_error(moe_scenario(std::string(", \"attention_params_per_layer\": ") + v, 4, "64"));
    CHECK(e.find("test.json: /workload/model/attention_params_per_layer: ") != std::string::npos);
    CHECK(e.find("<= 1") != std::string::npos);
  }
  CHECK(build_error(moe_scenario(", \"attention_params_per_layer\": 1e13", 4, "64")).empty());
}

TEST_CASE("tokens_per_gpu x GPUs x top_k beyond 2^53 is refused where the workload is built, for both routers") {
  const std::string trace = test::write_temp("big-trace.csv", "step,layer,e0,e1,e2,e3\n0,0,1,2,3,4\n0,1,4,3,2,1\n");
  for (const std::string& routing : {std::string(""), R"({"type": "trace", "file": ")" + trace + "\"}"}) {
    INFO(routing);
    // 1e8 tokens on each of 1e8 GPUs, top-2: 2e16 slots; both within their documented ranges.
    const std::string e = build_error(moe_scenario("", 100000000, "100000000", routing));
    CHECK(e.find("test.json: /workload/tokens_per_gpu: ") != std::string::npos);
    CHECK(e.find("2^53") != std::string::npos);
    CHECK(e.find("20000000000000000") != std::string::npos);  // what was found
  }
}

TEST_CASE("routers route exactly tokens x top_k slots at the largest allowed products") {
  const std::string path = test::write_temp("routing-trace-big.csv", "step,layer,e0,e1,e2\n0,0,5,3,2\n");
  const std::int64_t tokens = std::int64_t{1} << 51;  // x top_k 4 = 2^53
  const RouterContext ctx{1, 3, 2, 1, 0};
  std::vector<std::int64_t> c(3);
  auto trace = make_router(JsonReader(Json::parse(R"({"type":"trace","file":")" + path + "\"}"), "test.json"), ctx);
  trace->route(0, 0, tokens, c);
  CHECK(std::accumulate(c.begin(), c.end(), std::int64_t{0}) == 2 * tokens);
  for (const std::int64_t n : c) CHECK((n >= 0 && n <= tokens));
  auto generated = make_router(JsonReader(Json::parse(R"({"type":"generated","preset":"mixtral"})"), "test.json"), ctx);
  generated->route(0, 0, tokens, c);
  CHECK(std::accumulate(c.begin(), c.end(), std::int64_t{0}) == 2 * tokens);
  for (const std::int64_t n : c) CHECK((n >= 0 && n <= tokens));
}

// ---- 2. samples files -----------------------------------------------------------------------------------------

namespace {

// The mean of an empirical distribution read from a file holding `content`, or the InputError message.
std::string samples(const std::string& name, const std::string& content, double* mean = nullptr) {
  const std::string path = test::write_temp(name, content);
  try {
    const auto d = make_distribution(JsonReader(Json{{"type", "empirical"}, {"file", path}}, "test.json"));
    if (mean) *mean = d->mean();
    return "";
  } catch (const InputError& e) {
    return e.what();
  }
}

}  // namespace

TEST_CASE("a samples file with a UTF-8 byte order mark keeps its first value") {
  double mean = 0;
  CHECK(samples("bom.txt", "\xEF\xBB\xBF" "1\n3\n", &mean).empty());
  CHECK(mean == 2.0);
  CHECK(samples("bom-header.txt", "\xEF\xBB\xBF" "seconds\n1\n3\n", &mean).empty());
  CHECK(mean == 2.0);
}

TEST_CASE("a samples file's first line is a header only if it looks like a word; a typo is an error") {
  double mean = 0;
  CHECK(samples("header.txt", "seconds\n1\n3\n", &mean).empty());
  CHECK(mean == 2.0);
  for (const char* first : {"1.5x", "0..5", "2e"}) {
    INFO(first);
    const std::string e = samples("typo.txt", std::string(first) + "\n1\n3\n");
    CHECK(e.find("test.json: /file: ") != std::string::npos);
    CHECK(e.find("typo.txt line 1: expected a number") != std::string::npos);
    CHECK(e.find(first) != std::string::npos);
  }
}

TEST_CASE("a samples line with trailing text (a unit, a decimal comma) is refused, not misread") {
  for (const auto& [line, shown] : {std::pair{"2.5 ms", "2.5 ms"}, std::pair{"1,5", "1,5"}, std::pair{"3;4", "3;4"}}) {
    std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
    info_text << line;
    INFO(info_text.str());
    const std::string e = samples("junk.txt", std::string("1\n") + line + "\n");
    CHECK(e.find("junk.txt line 2: expected a number") != std::string::npos);
    CHECK(e.find(shown) != std::string::npos);
  }
  double mean = 0;
  CHECK(samples("blanks.txt", "  1 \r\n\t3\t\n# note\n", &mean).empty());  // surrounding blanks are fine
  CHECK(mean == 2.0);
}

// ---- 3. seeds -------------------------------------------------------------------------------------------------

TEST_CASE("seeds cover the unsigned 64-bit range, in JSON and with --seed; 2^64 is refused clearly") {
  const std::string base = R"({"steps": 10, "cluster": {"gpus": 4, "gpu": "h100-sxm"},
    "workload": {"type": "bsp", "compute": {"type": "constant", "value": 1}}, "policy": {"type": "none"}, "seed": )";
  const Scenario top = load_scenario_json(Json::parse(base + "18446744073709551615}"), "test.json");
  CHECK(top.seed == UINT64_MAX);
  CHECK(load_scenario_json(Json::parse(base + "9007199254740993}"), "test.json").seed == 9007199254740993ull);
  try {
    load_scenario_json(Json::parse(base + "18446744073709551616}"), "test.json");
    FAIL("2^64 was accepted");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("test.json: /seed: ") != std::string::npos);
    CHECK(std::string(e.what()).find("0 to 18446744073709551615") != std::string::npos);
  }
  const std::string file = test::write_temp("seed.json", base + "1}");
  const test::CommandResult ok = test::run_cli("run " + file + " --seed 18446744073709551615 --format json");
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("18446744073709551615") != std::string::npos);
  const test::CommandResult bad = test::run_cli("run " + file + " --seed 18446744073709551616");
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--seed") != std::string::npos);
  CHECK(bad.err.find("18446744073709551615") != std::string::npos);
  const std::string big_json = test::write_temp("seed-max.json", base + "18446744073709551615}");
  const test::CommandResult from_json = test::run_cli("run " + big_json + " --format json");
  CHECK(from_json.exit_code == 0);
  CHECK(from_json.out.find("18446744073709551615") != std::string::npos);
}

// ---- 4. a long sweep axis -------------------------------------------------------------------------------------

TEST_CASE("a sweep axis of 20,000 values loads (linear in the number of points)") {
  Json doc = Json::parse(R"({"steps": 10, "cluster": {"gpus": 4, "gpu": "h100-sxm"},
    "workload": {"type": "bsp", "compute": {"type": "constant", "value": 1}}, "policy": {"type": "none"}})");
  Json values = Json::array();
  for (int i = 1; i <= 20000; ++i) values.push_back(i);
  doc["sweep"] = Json{{"cluster.gpus", values}};
  const Scenario sc = load_scenario_json(doc, "test.json");
  REQUIRE(sc.points.size() == 20000);
  CHECK(sc.points[19999].doc["cluster"]["gpus"] == 20000);
  CHECK_FALSE(sc.points[0].doc.contains("sweep"));
}

// ---- 5. --quantiles auto does not depend on --threads ---------------------------------------------------------

TEST_CASE("under a memory limit that fits one thread's exact step times but not two, --threads 1 and 2 agree") {
  const std::string args = kTailAtScale + " --set steps=40000 --sweep cluster.gpus=16";
  ScenarioOptions so;
  so.sets = {"steps=40000"};
  so.sweeps = {"cluster.gpus=16"};
  const Scenario sc = load_scenario(kTailAtScale, so);
  const std::vector<PointModel> models = build_all_points(sc);
  const std::uint64_t one = estimate_memory(sc, models, 1).total(), two = estimate_memory(sc, models, 2).total();
  REQUIRE(one < two);
  const std::string limit = std::to_string((one + two) / 2);
  const fs::path dir = test::temp_dir("threads-quantiles");
  const test::CommandResult t1 =
      test::run_cli("run " + args + " --quiet --max-memory " + limit + " --threads 1 --out " + (dir / "1").string());
  const test::CommandResult t2 =
      test::run_cli("run " + args + " --quiet --max-memory " + limit + " --threads 2 --out " + (dir / "2").string());
  REQUIRE(t1.exit_code == 0);
  REQUIRE(t2.exit_code == 0);
  CHECK(t2.err.find("1 thread") != std::string::npos);  // says it runs fewer threads
  const std::string r1 = test::read_file(dir / "1" / "results.json");
  CHECK_FALSE(r1.empty());
  CHECK(r1 == test::read_file(dir / "2" / "results.json"));
  CHECK(r1.find("sketch") == std::string::npos);
  fs::remove_all(dir);
}

// ---- 6. memory held per point ---------------------------------------------------------------------------------

TEST_CASE("a two-row profile table swept over 300 points is cheap to hold, and its estimate counts what it holds") {
  const std::string table = test::write_temp("two-rows.csv", "tokens,time_us\n1,100\n1048576,5000\n");
  std::string sweep;
  for (int i = 1; i <= 300; ++i) sweep += (sweep.empty() ? "" : ",") + std::to_string(i);
  const std::string text = R"({"seed": 1, "steps": 4, "cluster": {"gpus": 4, "gpu": "h100-sxm"},
    "workload": {"type": "moe", "tokens_per_gpu": 64, "cost": {"type": "profiled", "table": ")" + table + R"("},
      "model": {"name": "toy", "layers": 2, "experts": 4, "top_k": 2, "hidden": 1024, "expert_intermediate": 512}},
    "policy": {"type": "none"}, "sweep": {"workload.tokens_per_gpu": [)" + sweep + "]}}";
  const Scenario sc = load_scenario_json(Json::parse(text), "test.json");
  const std::vector<PointModel> models = build_all_points(sc);
  HeldBytes counter;
  for (const PointModel& m : models) m.workload->count_held(counter);
  const std::uint64_t held = counter.total();
  CHECK(held > 0);
  CHECK(held < 300u * 64 * 1024);  // no dense 2^20-entry array per point (8 MiB each, 2.4 GiB in all)
  // The profiled model gives the same times as before: exact rows, linear in between, slope past the end.
  const test::CommandResult r = test::run_cli("run " + test::write_temp("two-rows.json", text) + " --max-memory 100MiB --quiet");
  CHECK(r.exit_code == 0);
}

TEST_CASE("a samples file of 10^6 lines is read once, shared by every point and counted once") {
  std::string content;
  content.reserve(8'000'000);
  for (int i = 0; i < 1'000'000; ++i) content += std::to_string(1.0 + (i % 1000) * 1e-3) + "\n";
  const std::string file = test::write_temp("million.txt", content);
  const std::string text = R"({"seed": 1, "steps": 10, "cluster": {"gpus": 4, "gpu": "h100-sxm"},
    "workload": {"type": "bsp", "compute": {"type": "empirical", "file": ")" + file + R"("}},
    "policy": {"type": "none"}, "sweep": {"cluster.gpus": [1, 2, 3, 4, 5, 6, 7, 8]}})";
  const std::string scenario = test::write_temp("million.json", text);
  {
    const InputFiles reads;  // as tailsim run and check build their points
    const std::vector<PointModel> models = build_all_points(load_scenario_json(Json::parse(text), "million.json"));
    HeldBytes held;
    for (const PointModel& m : models) m.workload->count_held(held);
    CHECK(held.total() == 1'000'000u * sizeof(double));  // one sorted copy for the 8 points, not 8 copies
  }
  // It counts in the estimate: 8 MB of samples do not fit 6 MiB, and the build stops at the first point.
  const test::CommandResult small = test::run_cli("run " + scenario + " --max-memory 6MiB --quiet");
  CHECK(small.exit_code == 2);
  CHECK(small.err.find("after 1 of 8 points") != std::string::npos);
  CHECK(small.err.find("allowed by --max-memory") != std::string::npos);
  // Shared, the 8 points fit in 30 MiB (as copies they needed 61 MiB).
  const test::CommandResult fits = test::run_cli("run " + scenario + " --max-memory 30MiB --quiet");
  CHECK(fits.exit_code == 0);
}

TEST_CASE("10^6 replications x 1,000 points is refused by its estimate, not ended by bad_alloc") {
  const std::string text = R"({"seed": 1, "steps": 1000000, "replications": 1000000,
    "cluster": {"gpus": 4, "gpu": "h100-sxm"},
    "workload": {"type": "bsp", "compute": {"type": "constant", "value": 1}}, "policy": {"type": "none"}})";
  std::string sweep;
  for (int i = 1; i <= 1000; ++i) sweep += (sweep.empty() ? "" : ",") + std::to_string(i);
  const test::CommandResult r = test::run_cli("run " + test::write_temp("units.json", text) +
                                              " --sweep cluster.gpus=" + sweep + " --max-memory 4GiB --quiet");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("this run needs at least") != std::string::npos);  // before any point is built
  CHECK(r.err.find("results of the") != std::string::npos);
}

}  // namespace tailsim
