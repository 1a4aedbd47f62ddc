#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

#include "sim/engine/simulator.hpp"

namespace tailsim {

namespace {
struct Recorder final : EventHandler {
  std::vector<std::pair<SimTime, std::int64_t>> seen;
  void handle(Simulator& sim, const Event& e) override { seen.emplace_back(sim.now(), e.arg); }
};
}  // namespace

TEST_CASE("events run in time order, and events at equal time run in scheduling order") {
  Simulator sim;
  Recorder r;
  const auto id = sim.add_handler(&r);
  sim.schedule_at(30, id, 0, 1);
  sim.schedule_at(10, id, 0, 2);
  sim.schedule_at(30, id, 0, 3);
  sim.schedule_at(10, id, 0, 4);
  sim.schedule_at(20, id, 0, 5);
  sim.run();
  const std::vector<std::pair<SimTime, std::int64_t>> expected = {{10, 2}, {10, 4}, {20, 5}, {30, 1}, {30, 3}};
  CHECK(r.seen == expected);
  CHECK(sim.events_executed() == 5);
  CHECK(sim.now() == 30);
}

TEST_CASE("a cancelled event never runs and cancelling twice or after it ran is harmless") {
  Simulator sim;
  Recorder r;
  const auto id = sim.add_handler(&r);
  const EventId a = sim.schedule_at(5, id, 0, 1);
  sim.schedule_at(6, id, 0, 2);
  sim.cancel(a);
  sim.cancel(a);
  sim.run();
  REQUIRE(r.seen.size() == 1);
  CHECK(r.seen[0].second == 2);
  sim.cancel(a);
  CHECK(sim.idle());
}

TEST_CASE("run stops before events later than its horizon and resumes them") {
  Simulator sim;
  Recorder r;
  const auto id = sim.add_handler(&r);
  sim.schedule_at(5, id, 0, 1);
  sim.schedule_at(50, id, 0, 2);
  sim.run(10);
  CHECK(r.seen.size() == 1);
  sim.run();
  CHECK(r.seen.size() == 2);
}

TEST_CASE("scheduling in the past is a logic error") {
  Simulator sim;
  Recorder r;
  const auto id = sim.add_handler(&r);
  sim.schedule_at(10, id, 0);
  sim.run();
  CHECK_THROWS_AS(sim.schedule_at(5, id, 0), std::logic_error);
  CHECK_THROWS_AS(sim.schedule_in(-1, id, 0), std::logic_error);
}

TEST_CASE("the 4-ary heap keeps a total order over many interleaved events") {
  Simulator sim;
  Recorder r;
  const auto id = sim.add_handler(&r);
  std::uint64_t x = 12345;
  for (int i = 0; i < 5000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    sim.schedule_at(static_cast<SimTime>((x >> 33) % 100), id, 0, i);
  }
  sim.run();
  REQUIRE(r.seen.size() == 5000);
  for (std::size_t i = 1; i < r.seen.size(); ++i) {
    const bool ordered = r.seen[i - 1].first < r.seen[i].first ||
                         (r.seen[i - 1].first == r.seen[i].first && r.seen[i - 1].second < r.seen[i].second);
    REQUIRE(ordered);
  }
}

}  // namespace tailsim
