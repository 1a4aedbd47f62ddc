#include <doctest/doctest.h>

#include <vector>

#include "sim/cluster/cluster.hpp"
#include "sim/cluster/components.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {
struct Sink final : EventHandler {
  std::vector<std::pair<SimTime, std::int64_t>> got;
  void handle(Simulator& sim, const Event& e) override { got.emplace_back(sim.now(), e.arg); }
};
struct Done final : GpuListener {
  std::vector<std::tuple<SimTime, std::int64_t, int>> got;
  void on_task_done(Simulator& sim, std::int64_t gpu, int attempt) override { got.emplace_back(sim.now(), gpu, attempt); }
};
}  // namespace

TEST_CASE("a link serializes transfers first-in-first-out and adds its latency") {
  Simulator sim;
  Sink sink;
  const auto id = sim.add_handler(&sink);
  Link link(sim, 1e9, 500);  // 1 GB/s: 1000 bytes take 1000 ns
  CHECK(link.transfer(1000, id, 0, 1) == 1500);
  CHECK(link.transfer(2000, id, 0, 2) == 3500);  // waits for the first to leave at 1000
  sim.run();
  const std::vector<std::pair<SimTime, std::int64_t>> expected = {{1500, 1}, {3500, 2}};
  CHECK(sink.got == expected);
  CHECK(link.bytes_moved() == 3000);
}

TEST_CASE("the first attempt to finish completes a task and cancels the others") {
  Simulator sim;
  Done done;
  GpuArray gpus(sim, 2, done);
  gpus.start_task(0);
  gpus.start_task(1);
  gpus.start_attempt(0, 0, 100);
  gpus.start_attempt(0, 1, 40);
  gpus.start_attempt(1, 0, 70);
  sim.run();
  REQUIRE(done.got.size() == 2);
  CHECK(done.got[0] == std::make_tuple(SimTime{40}, std::int64_t{0}, 1));
  CHECK(done.got[1] == std::make_tuple(SimTime{70}, std::int64_t{1}, 0));
  CHECK(sim.events_executed() == 2);  // the losing attempt was cancelled, not run
}

TEST_CASE("a barrier releases through the queue once its quorum has arrived") {
  Simulator sim;
  Sink sink;
  const auto id = sim.add_handler(&sink);
  Barrier barrier(sim, id, 7);
  barrier.arm(3);
  barrier.arrive();
  barrier.arrive();
  sim.run();
  CHECK(sink.got.empty());
  barrier.arrive();
  sim.run();
  CHECK(sink.got.size() == 1);
}

TEST_CASE("slow GPUs occupy the highest ranks in groups of equal factor") {
  const Json j = Json::parse(R"({"gpus": 10, "gpu": "h100-sxm", "slow_gpus": [{"count": 2, "factor": 1.5}, {"count": 1, "factor": 3}]})");
  const ClusterSpec c = parse_cluster(JsonReader(j, "c.json", "/cluster"));
  const std::vector<WorkerGroup> g = c.groups();
  REQUIRE(g.size() == 3);
  CHECK(g[0].first == 0);
  CHECK(g[0].count == 7);
  CHECK(g[1].first == 7);
  CHECK(g[1].factor == 1.5);
  CHECK(g[2].first == 9);
  CHECK(g[2].factor == 3);
  CHECK(c.gpu.sm_count == 132);
  CHECK(c.nodes() == 2);
}

}  // namespace tailsim
