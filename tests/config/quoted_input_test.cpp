// Messages about bad input quote it short and printable: a table reader handed a 2 MB line, or a file such
// as /proc/self/environ, must not echo it whole (nor an environment variable, nor control bytes).
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <sstream>
#include <string>

#include "sim/config/error.hpp"
#include "sim/config/json_reader.hpp"
#include "sim/cost/profile_table.hpp"
#include "sim/stats/distribution.hpp"
#include "sim/workload/routing_models.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

// A line of `n` bytes with a NUL, an escape and a newline-free secret past the first 80 bytes.
std::string long_line(std::size_t n) {
  std::string s = "x\x1b[31m" + std::string(100, 'a') + "SECRET=hunter2";
  s.push_back('\0');
  s += std::string(n - s.size(), 'b');
  return s;
}

void check_short(const std::string& message) {
  INFO(message.substr(0, 300));
  CHECK(message.size() < 400);
  CHECK(message.find("hunter2") == std::string::npos);
  CHECK(message.find('\x1b') == std::string::npos);
  CHECK(message.find('\0') == std::string::npos);
  CHECK(message.find("\\x1b") != std::string::npos);
  CHECK(message.find("bytes)") != std::string::npos);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.file() + ": " + e.path() + ": " + e.message();  // whole: what() would stop at a NUL byte
  }
  FAIL("no error");
  return "";
}

}  // namespace

TEST_CASE("the profile-table reader quotes a bad line short") {
  const std::string line = long_line(2'000'000);
  check_short(error_of([&] { parse_profile_table(line + "\n1,10\n", "t.csv"); }));  // the header
  check_short(error_of([&] { parse_profile_table("tokens,time_us\n1," + line + "\n", "t.csv"); }));
  check_short(error_of([&] { parse_profile_table("tokens,time_us\n" + line + ",10\n", "t.csv"); }));
  check_short(error_of([&] { parse_profile_table("# hidden: " + line + "\ntokens,time_us\n1,10\n", "t.csv").meta_integer("hidden"); }));
  // A table read from /proc/self/environ (a regular file to stat) does not print the environment.
  const auto dir = test::temp_dir("environ");
  const std::string cmd = "env -i A=" + std::string(100, 'a') + " TAILSIM_SECRET=hunter2 " + TAILSIM_BINARY +
                          " cost --gpu h100-sxm --model mixtral-8x7b --table /proc/self/environ >/dev/null 2>" +
                          (dir / "err").string();
  const int status = std::system(cmd.c_str());
  test::CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = test::read_file(dir / "err");
  std::filesystem::remove_all(dir);
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("/proc/self/environ") != std::string::npos);
  CHECK(r.err.find("hunter2") == std::string::npos);
  CHECK(r.err.size() < 400);
}

TEST_CASE("the routing-trace reader quotes a bad field short") {
  const std::string line = long_line(100'000);
  std::istringstream header(line + "\n");
  check_short(error_of([&] { parse_routing_trace(header, "t.csv", 1, 2); }));
  std::istringstream column("step,layer," + line + ",e1\n");
  check_short(error_of([&] { parse_routing_trace(column, "t.csv", 1, 2); }));
  std::istringstream count("step,layer,e0,e1\n0,0," + line + ",1\n");
  check_short(error_of([&] { parse_routing_trace(count, "t.csv", 1, 2); }));
}

TEST_CASE("the samples-file reader quotes a bad number short") {
  const std::string path = test::write_temp("long_samples.csv", "1.0\n" + long_line(100'000) + "\n");
  const Json j = Json{{"type", "empirical"}, {"file", path}};
  check_short(error_of([&] { make_distribution(JsonReader(j, "x.json")); }));
}

}  // namespace tailsim
