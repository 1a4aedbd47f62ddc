// A sweep point's random draws do not depend on the other points of its sweep or its position in it: every
// point draws from the same streams (sim/core/rng.hpp). So a point run alone (--set), a point of a smaller
// or reordered sweep, and the same point inside the full sweep give identical records.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "tests/helpers.hpp"

namespace tailsim {
namespace {

// Each record's step_time and policy-level figures by "params | policy", from a run's results.json.
std::map<std::string, std::string> records_by_point(const std::string& args) {
  const auto dir = test::temp_dir("sweep-seeding");
  const test::CommandResult r = test::run_cli("run " + args + " --quiet --out " + dir.string());
  REQUIRE(r.exit_code == 0);
  const Json doc = Json::parse(test::read_file(dir / "results.json"));
  std::map<std::string, std::string> out;
  for (Json rec : doc.at("records")) {
    const std::string key = rec.value("params", Json::object()).dump() + " | " + rec.at("policy").get<std::string>();
    rec.erase("params");
    rec.erase("slowdown_vs_k1");  // needs the K = 1 point in the same run
    out[key] = rec.dump();
  }
  std::filesystem::remove_all(dir);
  return out;
}

void check_point_alone(const std::string& scenario, const std::string& sets, const std::string& path,
                       const std::string& value, const std::string& others) {
  const std::string file = std::string(TAILSIM_SOURCE_DIR) + "/scenarios/" + scenario + " " + sets;
  const auto full = records_by_point(file);
  const auto alone = records_by_point(file + " --set " + path + "=" + value);
  const auto reordered = records_by_point(file + " --sweep " + path + "=" + others + "," + value);
  REQUIRE(!alone.empty());
  for (const auto& [key, rec] : alone) {
    const std::string swept = "{\"" + path + "\":" + value + "}" + key.substr(key.find(" | "));
    CAPTURE(swept);
    REQUIRE(full.contains(swept));
    CHECK(full.at(swept) == rec);
    REQUIRE(reordered.contains(swept));
    CHECK(reordered.at(swept) == rec);
  }
}

}  // namespace

TEST_CASE("a bsp point run alone gives exactly its row of the sweep (issue 17: K = 64 gave 5.475 and 5.480)") {
  check_point_alone("textbook/tail_at_scale.json", "--set steps=3000", "cluster.gpus", "64", "1024,3");
}

TEST_CASE("an moe point run alone gives exactly its row of the sweep, for every policy") {
  check_point_alone("moe/olmoe_capacity_speedup.json", "--set steps=60", "cluster.gpus", "32", "16");
}

}  // namespace tailsim
