// Output files users can trust: links planted in --out are not followed, failures to write are exit 74
// (not bad input), a folder that cannot be written is bad input found before the run, and messages quote
// user input short.
#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "sim/config/json_reader.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace fs = std::filesystem;

namespace {

const std::string kScenario = std::string(TAILSIM_SOURCE_DIR) + "/scenarios/textbook/tail_at_scale.json";
const std::string kSmall = kScenario + " --set steps=4000 --quiet";

// Runs the shell lines `setup`, then tailsim with `args` in the same process: the shell execs tailsim, so
// `$$` in `setup` is tailsim's process id (the name of its temporary files).
test::CommandResult run_cli_after(const std::string& setup, const std::string& args) {
  const fs::path dir = test::temp_dir("cli-after");
  const fs::path script = dir / "script.sh";
  std::ofstream(script) << setup << "\nexec " << TAILSIM_BINARY << " " << args << " >" << (dir / "out").string()
                        << " 2>" << (dir / "err").string() << "\n";
  const int status = std::system(("sh " + script.string()).c_str());
  test::CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = test::read_file(dir / "out");
  r.err = test::read_file(dir / "err");
  fs::remove_all(dir);
  return r;
}

}  // namespace

TEST_CASE("links planted at the temporary names of --out's and --trace's files are not followed") {
  const fs::path dir = test::temp_dir("links"), out = dir / "out", elsewhere = dir / "elsewhere";
  fs::create_directories(out);
  fs::create_directories(elsewhere);
  const fs::path victim = elsewhere / "victim.txt", absent = elsewhere / "absent.txt";
  std::ofstream(victim) << "precious\n";
  std::string setup;
  for (const char* name : {"results.json", "records.jsonl"})
    setup += "ln -s " + victim.string() + " " + (out / ("." + std::string(name) + ".tmp")).string() + "$$\n";
  setup += "ln -s " + absent.string() + " " + (out / ".results.csv.tmp").string() + "$$\n";
  setup += "ln -s " + victim.string() + " " + (out / ".trace.json.tmp").string() + "$$\n";
  const test::CommandResult r =
      run_cli_after(setup, "run " + kSmall + " --out " + out.string() + " --trace " + (out / "trace.json").string());
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(test::read_file(victim) == "precious\n");
  CHECK_FALSE(fs::exists(absent));
  for (const char* f : {"results.json", "results.csv", "records.jsonl", "trace.json"}) {
    INFO(f);
    CHECK(fs::is_regular_file(fs::symlink_status(out / f)));
  }
  CHECK(Json::parse(test::read_file(out / "results.json")).contains("records"));
  fs::remove_all(dir);
}

TEST_CASE("--resume refuses a records.jsonl that is a link, and a new run replaces the link") {
  const fs::path dir = test::temp_dir("records-link");
  REQUIRE(test::run_cli("run " + kSmall + " --out " + (dir / "a").string()).exit_code == 0);
  // A copy of the log without its last point, outside the folder, and a link to it as b/records.jsonl.
  std::string log = test::read_file(dir / "a" / "records.jsonl");
  log.erase(log.rfind('\n', log.size() - 2) + 1);
  const fs::path victim = dir / "victim.jsonl";
  std::ofstream(victim) << log;
  fs::create_directories(dir / "b");
  fs::create_symlink(victim, dir / "b" / "records.jsonl");
  const test::CommandResult resumed = test::run_cli("run " + kSmall + " --resume --out " + (dir / "b").string());
  INFO(resumed.err);
  CHECK(resumed.exit_code == 2);
  CHECK(resumed.err.find((dir / "b" / "records.jsonl").string()) != std::string::npos);
  CHECK(test::read_file(victim) == log);
  // Without --resume the link is replaced by a new log; the file it pointed to stays as it was.
  const test::CommandResult fresh = test::run_cli("run " + kSmall + " --out " + (dir / "b").string());
  CHECK(fresh.exit_code == 0);
  CHECK(test::read_file(victim) == log);
  CHECK(fs::is_regular_file(fs::symlink_status(dir / "b" / "records.jsonl")));
  fs::remove_all(dir);
}

TEST_CASE("a write that fails mid-run exits 74 naming the file and the reason; a folder that cannot be made exits 2") {
  const fs::path dir = test::temp_dir("ioerror");
  // Files larger than 1 KiB cannot be written (SIGXFSZ ignored: the write fails with EFBIG instead).
  const test::CommandResult big =
      run_cli_after("trap '' XFSZ\nulimit -f 2", "run " + kSmall + " --out " + (dir / "out").string());
  INFO(big.err);
  CHECK(big.exit_code == 74);
  CHECK(big.err.find((dir / "out").string()) != std::string::npos);
  CHECK(big.err.find(std::strerror(EFBIG)) != std::string::npos);
  // An output folder root cannot create, given by the user: bad input, found before the run.
  const test::CommandResult proc = test::run_cli("run " + kSmall + " --out /proc/tailsim-x");
  CHECK(proc.exit_code == 2);
  CHECK(proc.err.find("/proc/tailsim-x") != std::string::npos);
  // The usage text lists the exit code.
  CHECK(test::run_cli("--help").out.find("74 ") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("merge names the missing points as ranges, short however many there are") {
  const fs::path dir = test::temp_dir("merge-missing");
  // A real log of 5,000 one-step points, then copies of it with points left out.
  std::string gpus;
  for (int k = 1; k <= 5000; ++k) gpus += (k > 1 ? "," : "") + std::to_string(k);
  const test::CommandResult full = test::run_cli("run " + std::string(TAILSIM_SOURCE_DIR) +
                                                 "/scenarios/textbook/tail_at_scale.json --set steps=1 --set replications=1 --quiet --sweep cluster.gpus=" +
                                                 gpus + " --out " + (dir / "full").string());
  REQUIRE(full.exit_code == 0);
  std::vector<std::string> lines;
  {
    std::ifstream in(dir / "full" / "records.jsonl");
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  REQUIRE(lines.size() == 5001);
  const auto merge_log = [&](const std::function<bool(int)>& present) {
    std::ofstream f(dir / "in" / "records.jsonl");
    f << lines[0] << '\n';
    for (std::size_t i = 1; i < lines.size(); ++i) {
      const int p = std::stoi(lines[i].substr(lines[i].find(':') + 1));  // {"point":P,...
      if (present(p)) f << lines[i] << '\n';
    }
    f.close();
    return test::run_cli("merge " + (dir / "in").string() + " --out " + (dir / "m").string());
  };
  fs::create_directories(dir / "in");
  const test::CommandResult ranges = merge_log([](int p) { return p < 3 || (p >= 100 && p < 200 && p != 120); });
  INFO(ranges.err);
  CHECK(ranges.exit_code == 2);
  CHECK(ranges.err.find("points 3-99, 120, 200-4999 missing (4,898 of 5,000)") != std::string::npos);
  const test::CommandResult every_other = merge_log([](int p) { return p % 2 == 0; });
  INFO(every_other.err);
  CHECK(every_other.exit_code == 2);
  CHECK(every_other.err.size() < 1000);
  CHECK(every_other.err.find("points 1, 3, 5, ") != std::string::npos);
  CHECK(every_other.err.find("missing (2,500 of 5,000)") != std::string::npos);
  fs::remove_all(dir);
}

}  // namespace tailsim
