// The progress line's ETA weighs the units by their work, on a fake clock (no sleeping).
#include <doctest/doctest.h>

#include <sstream>
#include <string>

#include "sim/cli/progress.hpp"

namespace tailsim {

TEST_CASE("the ETA is the elapsed time scaled by the work left over the work done") {
  CHECK(eta_seconds(10.0, 1.0, 4.0) == doctest::Approx(30.0));
  CHECK(eta_seconds(8.3, 6.0, 7.0) == doctest::Approx(8.3 / 6.0));
  CHECK(eta_seconds(5.0, 0.0, 4.0) == 0.0);  // nothing done yet: no estimate
  CHECK(eta_seconds(5.0, 4.0, 4.0) == 0.0);  // all done
}

TEST_CASE("six of seven points done but most of the work left gives a long ETA, not a seventh of the time") {
  // The sweep of the issue: K = 1, 2, 4, 16, 64, 256 done in 1.8 s ... well, 10.8 s here, K = 1024 left.
  double now = 100.0;
  std::ostringstream err;
  Progress bar(err, Progress::Mode::kLines, "tail", 10.0, [&] { return now; });
  RunProgress p;
  p.units = 7;
  p.work = 1 + 2 + 4 + 16 + 64 + 256 + 1024;
  p.units_done = 6;
  p.work_done = 1 + 2 + 4 + 16 + 64 + 256;  // 343 of 1367: a quarter of the work
  now += 10.8;
  bar.update(p);
  const std::string line = err.str();
  CHECK(line.find("6/7 units, 25.1% of the work") != std::string::npos);
  // 10.8 s x 1024 / 343 = 32.2 s left; counting points would have said 1.8 s.
  CHECK(line.find("ETA 32.2 s") != std::string::npos);
}

TEST_CASE("progress lines wait for their interval and skip the last unit") {
  double now = 0.0;
  std::ostringstream err;
  Progress lines(err, Progress::Mode::kLines, "s", 10.0, [&] { return now; });
  RunProgress p{1, 4, 1.0, 4.0};
  now = 9.9;
  lines.update(p);
  CHECK(err.str().empty());
  now = 10.0;
  lines.update(p);
  CHECK(err.str() == "[progress] s: 1/4 units, 25.0% of the work, 0.1 units/s, ETA 30.0 s\n");
  p = {4, 4, 4.0, 4.0};
  now = 30.0;
  lines.update(p);  // the run is over: the results follow, not a line
  CHECK(err.str().find("4/4") == std::string::npos);
}

}  // namespace tailsim
