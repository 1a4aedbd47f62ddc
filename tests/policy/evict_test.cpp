// NVIDIA-style straggler detection and eviction.
#include <doctest/doctest.h>

#include "sim/policy/evict.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

// Scores after `steps` steps of 8 ranks at 1.0 s but rank 3 at `slow` x.
std::vector<double> scores(double slow, int window = 5, int steps = 5) {
  StragglerDetector det(8, window, false);
  std::vector<double> t(8, 1.0);
  t[3] = slow;
  for (int s = 0; s < steps; ++s) det.add_step(t);
  return det.scores();
}

}  // namespace

TEST_CASE("a rank 1.5x slower scores 0.67 and is flagged at 0.75; one 1.2x slower scores 0.83 and is not") {
  const auto s15 = scores(1.5);
  CHECK(s15[3] == doctest::Approx(2.0 / 3.0));
  CHECK(s15[0] == doctest::Approx(1.0));
  const auto s12 = scores(1.2);
  CHECK(s12[3] == doctest::Approx(1.0 / 1.2));
  EvictParams p;  // threshold 0.75, window 10
  p.window = 5;
  for (const auto& [slow, flagged] : {std::pair{1.5, true}, std::pair{1.2, false}}) {
    EvictController c(p, 8);
    std::vector<double> t(8, 1.0);
    t[3] = slow;
    std::vector<std::int64_t> left;
    for (int s = 0; s < 5; ++s) left = c.end_step(t);
    CHECK(left.size() == (flagged ? 1u : 0u));
  }
}

TEST_CASE("the detector scores 1 until a window is full and uses medians (one bad step is ignored)") {
  StragglerDetector det(2, 5, false);
  for (int s = 0; s < 4; ++s) {
    det.add_step(std::vector<double>{1.0, s == 1 ? 9.0 : 1.0});
    CHECK(det.scores()[1] == 1.0);
  }
  det.add_step(std::vector<double>{1.0, 1.0});
  CHECK(det.scores()[1] == doctest::Approx(1.0));
}

TEST_CASE("with its own history as reference a rank that slows down is flagged") {
  StragglerDetector det(1, 3, true);
  for (int s = 0; s < 3; ++s) det.add_step(std::vector<double>{1.0});
  CHECK(det.scores()[0] == doctest::Approx(1.0));
  for (int s = 0; s < 3; ++s) det.add_step(std::vector<double>{1.5});
  CHECK(det.scores()[0] == doctest::Approx(2.0 / 3.0));
}

TEST_CASE("drain delays the departure by that many steps") {
  EvictParams p;
  p.window = 2;
  p.drain_steps = 3;
  EvictController c(p, 2);
  int left_at = -1;
  for (int s = 0; s < 10 && left_at < 0; ++s)
    if (!c.end_step(std::vector<double>{1.0, 2.0}).empty()) left_at = s;
  CHECK(left_at == 1 + 3);
}

TEST_CASE("evict with spares returns a pipeline job with a throttled node to its healthy step time") {
  const std::string doc = R"({"name": "e", "seed": 5, "steps": 60, "cluster": {"gpus": 32, "gpus_per_node": 8},
    "workload": {"type": "pipeline", "pp": 1, "microbatches": 1, "forward": {"type": "normal", "mean": 0.1, "stddev": 0.001},
                 "slow": [{"node": 1, "factor": 1.7}]},
    "policies": [{"type": "none"}, {"type": "evict", "window": 5, "spares": 8}]})";
  const auto r = test::run_json(doc);
  const double none = test::record(r, "none").step_time.mean, evict = test::record(r, "evict").step_time.mean;
  CHECK(none > 0.5);
  // Five steps to fill the window, then healthy: about (5 x 0.51 + 55 x 0.30) / 60.
  CHECK(evict < 0.35);
}

TEST_CASE("bad evict parameters fail with their JSON path") {
  const std::string head = R"({"name": "e", "steps": 2, "cluster": {"gpus": 4}, "workload": {"type": "pipeline", "pp": 2,
    "forward": {"type": "constant", "value": 0.01}}, "policies": [{"type": "evict", )";
  CHECK(test::run_error(head + R"("window": 0}]})").find("/policies/0/window: expected an integer >= 1") != std::string::npos);
  CHECK(test::run_error(head + R"("threshold": 0}]})").find("/policies/0/threshold") != std::string::npos);
  CHECK(test::run_error(head + R"("threshold": 1.5}]})").find("/policies/0/threshold") != std::string::npos);
  CHECK(test::run_error(head + R"("threshold": 1}]})") == "no error");
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("evict without spares drops the slow replicas and the others share their work") {
  // 32 replicas (pp = 1), node 1 (ranks 4-7) 2x slow. Window 2: flagged after step 1 and gone from step 2; then
  // 28 replicas carry the global batch: 0.3 s x 32 / 28.
  const std::string doc = R"({"name": "e", "seed": 5, "steps": 10, "cluster": {"gpus": 32, "gpus_per_node": 4},
    "workload": {"type": "pipeline", "pp": 1, "microbatches": 1, "forward": {"type": "constant", "value": 0.1},
                 "slow": [{"node": 1, "factor": 2}]},
    "policies": [{"type": "none"}, {"type": "evict", "window": 2}]})";
  const auto r = test::run_json(doc);
  CHECK(test::record(r, "none").step_time.mean == doctest::Approx(0.6).epsilon(1e-9));
  CHECK(test::record(r, "evict").step_time.mean == doctest::Approx((2 * 0.6 + 8 * 0.3 * 32 / 28) / 10).epsilon(1e-6));
  // The results name the four ranks and step 2, the first without them.
  CHECK(*test::record(r, "evict").evicted ==
        std::vector<Eviction>{{4, 2, false}, {5, 2, false}, {6, 2, false}, {7, 2, false}});
}

}  // namespace tailsim
