// A run whose threads the system cannot all create goes on with fewer (a warning), and its results are the
// same as with any other thread count. The address-space limit makes thread stacks fail to map at a thread
// count that depends on the machine, which is exactly what must not matter.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "tests/helpers.hpp"

namespace tailsim {

#if !defined(__SANITIZE_ADDRESS__)  // AddressSanitizer reserves far more address space than the limit allows
TEST_CASE("threads the system refuses are a warning, not an abort, and change no result") {
  const auto dir = test::temp_dir("threads");
  const std::string args = std::string(TAILSIM_SOURCE_DIR) +
                           "/scenarios/textbook/tail_at_scale.json --set steps=2000 --replications 100 --quiet";
  const auto run = [&](const std::string& name, const std::string& limit, int threads) {
    const std::string cmd = "bash -c 'ulimit -v " + limit + "; " + TAILSIM_BINARY + " run " + args + " --threads " +
                            std::to_string(threads) + " --out " + (dir / name).string() + "' >/dev/null 2>" +
                            (dir / (name + ".err")).string();
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  REQUIRE(run("one", "unlimited", 1) == 0);
  // 100 threads of 8 MiB stacks cannot fit in 400 MB of address space: some of them are refused.
  CHECK(run("many", "400000", 100) == 0);
  CHECK(test::read_file(dir / "many.err").find("could not start thread") != std::string::npos);
  const std::string one = test::read_file(dir / "one" / "results.json");
  CHECK(one.find("\"records\"") != std::string::npos);
  CHECK(test::read_file(dir / "many" / "results.json") == one);
}
#endif

}  // namespace tailsim
