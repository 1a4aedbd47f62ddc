// records.jsonl as evidence: --resume and merge check every index and count of a log against the run, every
// point line against its checksum, and the content of every file the run read; a log they cannot use is an
// input error (exit 2) naming the file and line, never a crash, an internal error, or mixed results.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <vector>

#include "sim/config/json_reader.hpp"
#include "sim/report/records.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace fs = std::filesystem;

namespace {

const std::string kScenario = std::string(TAILSIM_SOURCE_DIR) + "/scenarios/textbook/tail_at_scale.json";
const std::string kSmall = kScenario + " --set steps=4000 --quiet";  // 7 points x 2 policies

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  for (std::size_t end; (end = text.find('\n', pos)) != std::string::npos; pos = end + 1)
    out.push_back(text.substr(pos, end - pos));
  return out;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// A copy of `from`'s records.jsonl in the new folder `to`, with `edit` applied to its lines.
void copy_log(const fs::path& from, const fs::path& to, const std::function<void(std::vector<std::string>&)>& edit) {
  fs::remove_all(to);
  fs::create_directories(to);
  std::vector<std::string> lines = lines_of(test::read_file(from / "records.jsonl"));
  edit(lines);
  std::ofstream(to / "records.jsonl", std::ios::binary) << joined(lines);
}

// `line` parsed, changed by `edit`, and written back (its "check", if any, now stale).
std::string edited(const std::string& line, const std::function<void(Json&)>& edit) {
  Json j = Json::parse(line);
  edit(j);
  return j.dump();
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// TAILSIM_CONFIG_DIR for the commands run while it lives.
struct ConfigDirFor {
  explicit ConfigDirFor(const fs::path& dir) { ::setenv("TAILSIM_CONFIG_DIR", dir.c_str(), 1); }
  ~ConfigDirFor() { ::unsetenv("TAILSIM_CONFIG_DIR"); }
};

}  // namespace

TEST_CASE("--resume range-checks a log's header and point indexes against the scenario: exit 2 naming the line") {
  const fs::path dir = test::temp_dir("records-range");
  REQUIRE(test::run_cli("run " + kSmall + " --out " + (dir / "full").string()).exit_code == 0);
  const std::vector<std::pair<std::string, std::function<void(std::vector<std::string>&)>>> cases = {
      // A header claiming a million points and a point far beyond the sweep (it wrote out of bounds).
      {"line 1", [](std::vector<std::string>& l) {
         l[0] = edited(l[0], [](Json& h) { h["points"] = 1000000; });
         l.push_back(edited(l[1], [](Json& p) { p["point"] = 500000; }));
       }},
      // One point more than the sweep (it gave 16 records where the run has 14).
      {"line 1", [](std::vector<std::string>& l) {
         l[0] = edited(l[0], [](Json& h) { h["points"] = 8; });
         l.push_back(edited(l[1], [](Json& p) { p["point"] = 7; }));
       }},
      {"line 1", [](std::vector<std::string>& l) { l[0] = edited(l[0], [](Json& h) { h["steps"] = 4001; }); }},
      {"line 1", [](std::vector<std::string>& l) { l[0] = edited(l[0], [](Json& h) { h["replications"] = 9; }); }},
      {"line 9", [](std::vector<std::string>& l) { l.push_back(edited(l[1], [](Json& p) { p["point"] = 9; })); }},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const fs::path bad = dir / ("bad" + std::to_string(i));
    copy_log(dir / "full", bad, cases[i].second);
    const test::CommandResult r = test::run_cli("run " + kSmall + " --out " + bad.string() + " --resume");
    INFO("case " << i << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, (bad / "records.jsonl").string() + ": " + cases[i].first + ": "));
  }
  fs::remove_all(dir);
}

TEST_CASE("tampered or corrupted point lines: merge exits 2 naming the line, --resume warns and runs the point again") {
  const fs::path dir = test::temp_dir("records-tamper");
  const fs::path full = dir / "full";
  REQUIRE(test::run_cli("run " + kSmall + " --out " + full.string()).exit_code == 0);
  // Again with --timing: its lines hold wall_seconds, so they differ from the first run's (which without
  // --timing are the same bytes every run).
  REQUIRE(test::run_cli("run " + kSmall + " --timing --out " + (dir / "again").string()).exit_code == 0);
  const std::string expected = test::read_file(full / "results.json");
  using Edit = std::function<void(std::vector<std::string>&)>;
  const auto on_line_2 = [](std::function<void(Json&)> edit) -> Edit {
    return [edit](std::vector<std::string>& l) { l[1] = edited(l[1], edit); };
  };
  const std::vector<std::pair<std::string, Edit>> cases = {
      {"line 2", on_line_2([](Json& p) { p["records"][0]["step_time"]["mean"] = 99.5; })},
      {"line 2", on_line_2([](Json& p) { p["records"][0]["params"]["cluster.gpus"] = 3; })},
      {"line 2", on_line_2([](Json& p) { p["records"][1]["policy"] = "backup2"; })},
      {"line 2", on_line_2([](Json& p) { p["records"][0]["steps"] = 3999; })},
      {"line 2", on_line_2([](Json& p) { p["records"].erase(1); })},
      {"line 2", on_line_2([](Json& p) { p["records"] = Json::array(); })},
      {"line 2", on_line_2([](Json& p) { p["records"].push_back(p["records"][0]); })},
      // The same point from another run, its own checksum valid: its wall_seconds make it another line, and
      // a log holding two versions of a point cannot say which is right.
      {"line 9", [&](std::vector<std::string>& l) {
         const Json point = Json::parse(l[1])["point"];
         for (const std::string& other : lines_of(test::read_file(dir / "again" / "records.jsonl")))
           if (Json::parse(other).value("point", Json()) == point) l.push_back(other);
       }},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    const fs::path bad = dir / ("bad" + std::to_string(i));
    copy_log(full, bad, cases[i].second);
    const test::CommandResult merged = test::run_cli("merge " + bad.string() + " --out " + (dir / "merged").string());
    INFO("merge: " << merged.err);
    CHECK(merged.exit_code == 2);
    CHECK(has(merged.err, (bad / "records.jsonl").string() + ": " + cases[i].first + ": "));

    const test::CommandResult resumed = test::run_cli("run " + kSmall + " --out " + bad.string() + " --resume");
    INFO("resume: " << resumed.err);
    CHECK(resumed.exit_code == 0);
    CHECK(has(resumed.err, (bad / "records.jsonl").string() + ": " + cases[i].first + ": "));
    CHECK(has(resumed.err, "runs again"));
    CHECK(test::read_file(bad / "results.json") == expected);
    // The log was rewritten without the bad lines: it now merges.
    CHECK(test::run_cli("merge " + bad.string() + " --out " + (dir / "remerged").string()).exit_code == 0);
  }
  // A point logged twice alike is kept once, by both.
  copy_log(full, dir / "twice", [](std::vector<std::string>& l) { l.push_back(l[3]); });
  CHECK(test::run_cli("merge " + (dir / "twice").string() + " --out " + (dir / "m").string()).exit_code == 0);
  CHECK(test::run_cli("run " + kSmall + " --out " + (dir / "twice").string() + " --resume").exit_code == 0);
  CHECK(test::read_file(dir / "twice" / "results.json") == expected);
  fs::remove_all(dir);
}

TEST_CASE("a log written by an older tailsim (no checksums) is refused by --resume and merge") {
  const fs::path dir = test::temp_dir("records-old");
  REQUIRE(test::run_cli("run " + kSmall + " --out " + (dir / "full").string()).exit_code == 0);
  copy_log(dir / "full", dir / "old", [](std::vector<std::string>& l) {
    l[0] = edited(l[0], [](Json& h) {
      h["tailsim_records"] = 1;
      for (const char* k : {"param_values", "policies", "inputs"}) h.erase(k);
    });
    for (std::size_t i = 1; i < l.size(); ++i) l[i] = edited(l[i], [](Json& p) { p.erase("check"); });
  });
  for (const std::string& cmd : {"run " + kSmall + " --out " + (dir / "old").string() + " --resume",
                                 "merge " + (dir / "old").string() + " --out " + (dir / "m").string()}) {
    const test::CommandResult r = test::run_cli(cmd);
    INFO(cmd << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, "records.jsonl: line 1: this log was written by an older tailsim"));
  }
  fs::remove_all(dir);
}

TEST_CASE("--resume refuses a run whose samples file or config file changed since it began") {
  const fs::path dir = test::temp_dir("records-inputs");
  // A samples file next to the scenario, and configs/ copied so one of its files can be edited.
  std::ofstream(dir / "samples.txt") << "1.0\n1.5\n2.0\n4.0\n";
  std::ofstream(dir / "s.json") << R"({"name": "inputs", "seed": 3, "steps": 200,
    "cluster": {"gpus": 4, "gpu": "h100-sxm"},
    "workload": {"type": "bsp", "compute": {"type": "empirical", "file": "samples.txt"}},
    "policies": [{"type": "none"}, {"type": "backup", "copies": 2}],
    "sweep": {"cluster.gpus": [1, 4]}})";
  fs::copy(std::string(TAILSIM_SOURCE_DIR) + "/configs", dir / "configs", fs::copy_options::recursive);
  const ConfigDirFor config_dir(dir / "configs");
  const std::string run = "run " + (dir / "s.json").string() + " --quiet --out " + (dir / "out").string();
  REQUIRE(test::run_cli(run).exit_code == 0);
  CHECK(test::run_cli(run + " --resume").exit_code == 0);  // nothing changed: nothing to run
  const std::string header = lines_of(test::read_file(dir / "out" / "records.jsonl")).at(0);
  CHECK(has(header, "samples.txt"));
  CHECK(has(header, "h100-sxm.json"));

  std::ofstream(dir / "samples.txt", std::ios::app) << "8.0\n";
  test::CommandResult r = test::run_cli(run + " --resume");
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(has(r.err, "cannot resume: the file " + (dir / "samples.txt").string() + " changed since this run began"));

  REQUIRE(test::run_cli(run).exit_code == 0);  // a fresh run with the new samples
  const fs::path gpu = dir / "configs" / "gpus" / "h100-sxm.json";
  std::string text = test::read_file(gpu);
  REQUIRE(has(text, "\"sm_count\": 132"));
  const std::string sm = "\"sm_count\": 132";
  text.replace(text.find(sm), sm.size(), "\"sm_count\": 133");
  std::ofstream(gpu, std::ios::binary) << text;
  r = test::run_cli(run + " --resume");
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(has(r.err, "h100-sxm.json changed since this run began"));
  fs::remove_all(dir);
}

TEST_CASE("--resume on a records.jsonl that cannot be read or written is exit 2 naming the path") {
  const fs::path dir = test::temp_dir("records-unreadable");
  const auto resume = [&](const fs::path& out) {
    return test::run_cli("run " + kSmall + " --out " + out.string() + " --resume");
  };
  fs::create_directories(dir / "loop");
  fs::create_symlink("records.jsonl", dir / "loop" / "records.jsonl");  // a link to itself
  fs::create_directories(dir / "folder" / "records.jsonl");
  fs::create_directories(dir / "fifo");
  REQUIRE(::mkfifo((dir / "fifo" / "records.jsonl").c_str(), 0644) == 0);
  for (const char* name : {"loop", "folder", "fifo"}) {
    const test::CommandResult r = resume(dir / name);
    INFO(name << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, "error: " + (dir / name / "records.jsonl").string() + ": "));
  }
  if (::geteuid() != 0) {  // root writes read-only files
    REQUIRE(test::run_cli("run " + kSmall + " --out " + (dir / "ro").string()).exit_code == 0);
    fs::permissions(dir / "ro" / "records.jsonl", fs::perms::owner_read);
    const test::CommandResult r = resume(dir / "ro");
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, (dir / "ro" / "records.jsonl").string()));
  }
  fs::remove_all(dir);
}

TEST_CASE("a point line ends with its checksum, which covers the line and the header but not the shard") {
  Record rec;
  rec.point = 1;
  rec.params = {{"cluster.gpus", Json(4)}};
  rec.policy = "none";
  rec.step_time.count = 10;
  rec.step_time.mean = 1.5;
  Json header = Json::parse(R"({"tailsim_records": 2, "scenario": "s", "fingerprint": "f", "seed": 1, "steps": 10,
    "replications": 1, "points": 2, "param_names": ["cluster.gpus"], "param_values": [[1, 4]], "policies": ["none"],
    "inputs": [], "shard": "1/2"})");
  const std::string line = records_line({rec}, records_check_key(header));
  CHECK(line.rfind("{\"point\":1,\"records\":[", 0) == 0);
  REQUIRE(line.size() > 29);  // ,"check":"<16 hex digits>"} and the newline
  CHECK(line.substr(line.size() - 29, 10) == ",\"check\":\"");
  CHECK(line.substr(line.size() - 3) == "\"}\n");
  const RecordLog log = parse_record_log(header.dump() + "\n" + line, "r.jsonl");
  REQUIRE(log.points.count(1) == 1);
  CHECK(log.points.at(1).at(0).step_time.mean == 1.5);
  header["shard"] = "2/2";  // shards of one run share their checksums
  CHECK(parse_record_log(header.dump() + "\n" + line, "r.jsonl").points.size() == 1);
  header["seed"] = 2;  // another run's header: every line fails
  CHECK_THROWS_WITH_AS(parse_record_log(header.dump() + "\n" + line, "r.jsonl"),
                       doctest::Contains("r.jsonl: line 2: checksum mismatch"), InputError);
  LogChecks lenient;
  lenient.lenient = true;
  const RecordLog kept = parse_record_log(header.dump() + "\n" + line, "r.jsonl", lenient);
  CHECK(kept.points.empty());
  REQUIRE(kept.rejected.size() == 1);
  CHECK(kept.rejected[0] == "line 2: checksum mismatch: the line was changed or corrupted after tailsim wrote it, or "
                            "comes from another run; point 1 runs again");
  // A line with a valid checksum is still checked against the header: one record per policy, their labels,
  // the point's params and the steps.
  header["seed"] = 1;
  Record other = rec;
  other.policy = "backup";
  const std::string key = records_check_key(header);
  for (const auto& [records, why] : std::vector<std::pair<std::vector<Record>, std::string>>{
           {{rec, other}, "line 2: 2 records, but the run has 1 policies"},
           {{other}, "line 2: record 0 is of policy 'backup', expected 'none'"}}) {
    CHECK_THROWS_WITH_AS(parse_record_log(header.dump() + "\n" + records_line(records, key), "r.jsonl"),
                         doctest::Contains(("r.jsonl: " + why).c_str()), InputError);
  }
  Record moved = rec;
  moved.params = {{"cluster.gpus", Json(1)}};
  CHECK_THROWS_WITH_AS(parse_record_log(header.dump() + "\n" + records_line({moved}, key), "r.jsonl"),
                       doctest::Contains("line 2: record 0 has other params than point 1"), InputError);
  Record shorter = rec;
  shorter.step_time.count = 9;
  CHECK_THROWS_WITH_AS(parse_record_log(header.dump() + "\n" + records_line({shorter}, key), "r.jsonl"),
                       doctest::Contains("line 2: record 0 has 9 steps, expected 10"), InputError);
}

}  // namespace tailsim
