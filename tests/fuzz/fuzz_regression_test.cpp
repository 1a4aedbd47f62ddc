// Replays the fuzzing seed corpus and every input the fuzzer ever crashed on (tools/fuzz/crashes/) through
// the same entry points the libFuzzer targets use, in the ordinary (and the sanitizer) build: a reader that
// crashes, throws anything but InputError, or breaks an invariant fails here.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "sim/config/configs.hpp"
#include "sim/config/error.hpp"
#include "tools/fuzz/fuzz_entry.hpp"

namespace fs = std::filesystem;

namespace {

const fs::path kSource = TAILSIM_SOURCE_DIR;

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Files under `dirs` (recursively), sorted, optionally only those ending in `extension`.
std::vector<fs::path> inputs(const std::vector<fs::path>& dirs, const std::string& extension = "") {
  std::vector<fs::path> out;
  for (const fs::path& d : dirs)
    if (fs::is_directory(d))
      for (const auto& e : fs::recursive_directory_iterator(d))
        if (e.is_regular_file() && e.path().filename() != "README.md" &&
            (extension.empty() || e.path().extension() == extension))
          out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

template <class Entry>
std::size_t replay(const std::vector<fs::path>& files, Entry entry) {
  for (const fs::path& f : files) {
    INFO("input: " << f.string());
    const std::string bytes = slurp(f);
    CHECK_NOTHROW(entry(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  }
  return files.size();
}

}  // namespace

TEST_CASE("fuzz regression: every scenario, seed and past crash goes through the scenario reader") {
  const auto files = inputs({kSource / "scenarios", kSource / "tools/fuzz/corpus/scenario",
                             kSource / "tools/fuzz/crashes/scenario"});
  CHECK(replay(files, tailsim::fuzz::scenario_input) >= 15);
}

TEST_CASE("fuzz regression: trace, profile-table and records-log readers on their seeds and past crashes") {
  for (const std::string reader : {"trace", "profile", "records"}) {
    INFO("reader: " << reader);
    const auto files = inputs({kSource / "tools/fuzz/corpus" / reader, kSource / "tools/fuzz/crashes" / reader});
    const auto entry = reader == "trace"     ? tailsim::fuzz::trace_input
                       : reader == "profile" ? tailsim::fuzz::profile_input
                                             : tailsim::fuzz::records_input;
    CHECK(replay(files, entry) >= 2);
  }
}

TEST_CASE("fuzz regression: the profiled tables shipped in models/ read and give sane times") {
  std::size_t tables = 0;
  for (const fs::path& f : inputs({kSource / "models"}, ".csv")) {
    const std::string bytes = slurp(f);
    if (bytes.find("tokens,") == std::string::npos || bytes.find("time_us") == std::string::npos) continue;
    INFO("table: " << f.string());
    CHECK_NOTHROW(tailsim::fuzz::profile_input(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    ++tables;
  }
  CHECK(tables >= 4);
}

TEST_CASE("JSON nested deeper than the limit is an input error, not a stack overflow (it used to crash)") {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  try {
    (void)tailsim::parse_json_text(deep, "deep.json");
    FAIL("expected an InputError");
  } catch (const tailsim::InputError& e) {
    CHECK(e.file() == "deep.json");
    CHECK(std::string(e.what()).find("nested deeper than 64 levels") != std::string::npos);
  }
  const std::string ok = std::string(tailsim::kMaxJsonDepth, '[') + std::string(tailsim::kMaxJsonDepth, ']');
  CHECK_NOTHROW((void)tailsim::parse_json_text(ok, "ok.json"));
  CHECK_THROWS_AS((void)tailsim::parse_json_text("[" + ok + "]", "one-more.json"), tailsim::InputError);
}
