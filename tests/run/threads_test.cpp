// A run whose threads the system cannot all create goes on with fewer (a warning), and its results are the
// same as with any other thread count. The refusal is injected (TAILSIM_FAULT_THREADS: every thread past the
// N-th throws std::system_error, as std::thread does when the system refuses one), so the case is the same
// on every machine and under any load; an address-space limit (ulimit -v) refused threads at a point that
// depended on timing, and with it whether the heap still had room.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "tests/helpers.hpp"

namespace tailsim {

TEST_CASE("threads the system refuses are a warning, not an abort, and change no result") {
  const auto dir = test::temp_dir("threads");
  const std::string args = std::string(TAILSIM_SOURCE_DIR) +
                           "/scenarios/textbook/tail_at_scale.json --set steps=2000 --replications 40 --quiet";
  const auto run = [&](const std::string& name, const std::string& env, int threads) {
    const std::string cmd = env + " " + TAILSIM_BINARY + " run " + args + " --threads " + std::to_string(threads) +
                            " --out " + (dir / name).string() + " >/dev/null 2>" + (dir / (name + ".err")).string();
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  REQUIRE(run("one", "", 1) == 0);
  CHECK(run("refused", "TAILSIM_FAULT_THREADS=3", 8) == 0);
  const std::string err = test::read_file(dir / "refused.err");
  CHECK(err.find("could not start thread 4 of 8") != std::string::npos);
  CHECK(err.find("running on 3") != std::string::npos);
  const std::string one = test::read_file(dir / "one" / "results.json");
  CHECK(one.find("\"records\"") != std::string::npos);
  CHECK(test::read_file(dir / "refused" / "results.json") == one);
  CHECK(run("all", "TAILSIM_FAULT_THREADS=1", 4) == 0);  // none but the calling thread
  CHECK(test::read_file(dir / "all" / "results.json") == one);
}

}  // namespace tailsim
