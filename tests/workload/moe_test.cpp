// The moe workload: layer times against an independent computation from the same routing draws, the
// straggler effect of skewed routing, placement, training, and bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "sim/workload/moe.hpp"
#include "sim/workload/routing.hpp"
#include "tests/cost/cost_helpers.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

// A linear cost table: time_us = 10 + 0.5 x tokens at every count the tests reach (profiled kind, so the
// cost model returns these exact doubles).
std::string linear_table() {
  std::string csv = "# a linear cost for tests\ntokens,time_us\n";
  for (int t = 1; t <= 4096; ++t) csv += std::to_string(t) + "," + std::to_string(10.0 + 0.5 * t) + "\n";
  return test::write_temp("linear_cost.csv", csv);
}

double linear_cost_s(std::int64_t tokens) { return tokens == 0 ? 0.0 : (10.0 + 0.5 * static_cast<double>(tokens)) * 1e-6; }

// K = E GPUs (one expert each), links fast enough to vanish, no dense part: the layer is its slowest expert.
std::string isolated_experts(const std::string& routing, int gpus = 16, int steps = 50) {
  return R"({"seed": 5, "steps": )" + std::to_string(steps) + R"(,
    "cluster": {"gpus": )" + std::to_string(gpus) + R"(, "gpu": "h100-sxm",
                "nvlink": {"bandwidth": "1e30B/s", "latency": "0s"}, "nic": {"bandwidth": "1e30B/s", "latency": "0s"}},
    "workload": {"type": "moe", "tokens_per_gpu": 256, "routing": )" + routing + R"(,
      "cost": {"type": "profiled", "table": ")" + linear_table() + R"("},
      "model": {"name": "toy", "layers": 3, "experts": 16, "top_k": 2, "hidden": 1024, "expert_intermediate": 512}},
    "policy": {"type": "none"}})";
}

// Replays the router with the run's streams and returns the expected step times: each layer lasts as long as
// its busiest GPU, which runs one expert's tokens (K = E), its share of them (K = r E: r replicas, the first
// ones taking the remainder), or its block of E/K experts as one grouped kernel (K < E).
std::vector<double> expected_steps(const std::string& routing, int steps, int gpus = 16) {
  const auto cost = test::cost_model(Json{{"type", "profiled"}, {"table", linear_table()}}, "h100-sxm", {1024, 512, true, "bf16"});
  RouterContext rc;
  rc.layers = 3;
  rc.experts = 16;
  rc.top_k = 2;
  rc.seed = 5;
  const Json node = Json::parse(routing);
  auto router = make_router(JsonReader(node, "test.json", "/workload/routing"), rc);
  const std::int64_t replicas = gpus / 16;
  std::vector<std::int64_t> counts(16);
  std::vector<double> out;
  for (int s = 0; s < steps; ++s) {
    SimTime step = 0;
    for (int l = 0; l < 3; ++l) {
      router->route(s, l, static_cast<std::int64_t>(gpus) * 256, counts);
      if (gpus < 16) {
        double slowest = 0;
        for (int g = 0; g < gpus; ++g)
          slowest = std::max(slowest, cost->grouped_time_s(std::span(counts).subspan(g * (16 / gpus), 16 / gpus)));
        step += seconds_to_ns(slowest);
        continue;
      }
      const std::int64_t busiest = *std::max_element(counts.begin(), counts.end());
      step += seconds_to_ns(linear_cost_s((busiest + replicas - 1) / replicas));
    }
    out.push_back(ns_to_seconds(step));
  }
  return out;
}

double mean_of(const std::vector<double>& v) {
  double sum = 0;
  for (const double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

}  // namespace

TEST_CASE("with uniform routing and a linear cost the layer time is the cost of the most loaded GPU") {
  const std::string routing = R"({"type": "generated", "preset": "uniform"})";
  const RunResults r = test::run_json(isolated_experts(routing));
  const std::vector<double> expected = expected_steps(routing, 50);
  const Record& rec = r.records.at(0);
  CHECK(rec.step_time.mean == doctest::Approx(mean_of(expected)).epsilon(1e-9));
  CHECK(rec.step_time.max == doctest::Approx(*std::max_element(expected.begin(), expected.end())).epsilon(1e-9));
  REQUIRE(rec.moe.has_value());
  CHECK(rec.moe->load_imbalance > 1.0);
  CHECK(rec.moe->load_imbalance < 1.3);  // multinomial noise only
}

TEST_CASE("with fewer GPUs than experts the layer is the slowest GPU's grouped kernel over its block") {
  // 4 GPUs for 16 experts: GPU g runs experts 4g .. 4g + 3 as one grouped kernel.
  for (const std::string routing : {R"({"type": "generated", "preset": "uniform"})", R"({"type": "generated", "preset": "olmoe"})"}) {
    const RunResults r = test::run_json(isolated_experts(routing, 4, 30));
    const std::vector<double> expected = expected_steps(routing, 30, 4);
    CHECK(r.records.at(0).step_time.mean == doctest::Approx(mean_of(expected)).epsilon(1e-9));
    CHECK(r.records.at(0).step_time.max == doctest::Approx(*std::max_element(expected.begin(), expected.end())).epsilon(1e-9));
  }
}

TEST_CASE("with skewed routing the most burdened expert dictates the layer") {
  const std::string skewed = R"({"type": "generated", "preset": "olmoe"})";
  const std::string uniform = R"({"type": "generated", "preset": "uniform"})";
  const RunResults s = test::run_json(isolated_experts(skewed));
  const RunResults u = test::run_json(isolated_experts(uniform));
  CHECK(s.records.at(0).step_time.mean == doctest::Approx(mean_of(expected_steps(skewed, 50))).epsilon(1e-9));
  CHECK(s.records.at(0).moe->load_imbalance > 1.5 * u.records.at(0).moe->load_imbalance);
  CHECK(s.records.at(0).step_time.mean > 1.5 * u.records.at(0).step_time.mean);
  CHECK(s.records.at(0).moe->barrier_wait_fraction > u.records.at(0).moe->barrier_wait_fraction);
}

TEST_CASE("replicas share their expert's tokens when there are more GPUs than experts") {
  // 32 GPUs for 16 experts: each GPU runs half of one expert's tokens.
  const std::string routing = R"({"type": "generated", "preset": "uniform"})";
  const RunResults r32 = test::run_json(isolated_experts(routing, 32, 20));
  CHECK(r32.records.at(0).step_time.mean == doctest::Approx(mean_of(expected_steps(routing, 20, 32))).epsilon(1e-9));
  CHECK(r32.records.at(0).moe->load_imbalance >= 1.0);
}

TEST_CASE("training runs forward, backward and a gradient all-reduce") {
  auto run = [](const std::string& mode) {
    return test::run_json(R"({"seed": 1, "steps": 20, "cluster": {"config": "h100-nvlink-ib400", "gpus": 16},
        "workload": {"type": "moe", "model": "olmoe-1b-7b", "mode": ")" + mode + R"(", "tokens_per_gpu": 2048},
        "policy": {"type": "none"}})");
  };
  const double inference = run("inference").records.at(0).step_time.mean;
  const double training = run("training").records.at(0).step_time.mean;
  CHECK(training > 2.5 * inference);
  CHECK(training < 6.0 * inference);
}

TEST_CASE("moe time split adds up and communication appears across nodes") {
  const RunResults r = test::run_json(R"({"seed": 1, "steps": 20, "cluster": {"config": "h800-nvlink-ib400", "gpus": 32},
      "workload": {"type": "moe", "model": "deepseek-v3"}, "policy": {"type": "none"}})");
  const MoeRecord& m = *r.records.at(0).moe;
  CHECK(m.compute_fraction + m.communication_fraction + m.barrier_wait_fraction == doctest::Approx(1.0));
  CHECK(m.communication_fraction > 0.05);
  CHECK(m.bytes_moved > 0);
  CHECK(r.records.at(0).idle_fraction == doctest::Approx(m.barrier_wait_fraction).epsilon(0.01));
}

TEST_CASE("bad moe input names the JSON path and the reason") {
  auto error = [](const std::string& text) {
    try {
      test::run_json(text);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string base = R"({"steps": 2, "cluster": {"config": "h800-nvlink-ib400", "gpus": GPUS},
      "workload": {"type": "moe", "model": MODEL}, "policy": {"type": "none"}})";
  auto with = [&](const std::string& gpus, const std::string& model) {
    std::string s = base;
    s.replace(s.find("GPUS"), 4, gpus);
    s.replace(s.find("MODEL"), 5, model);
    return s;
  };
  CHECK(error(with("8", "\"deepseek-v4\"")).find("/workload/model: unknown model 'deepseek-v4' (did you mean 'deepseek-v3'?)") !=
        std::string::npos);
  CHECK(error(with("96", "\"deepseek-v3\"")).find("/workload/model: impossible placement: 256 experts cannot be spread evenly "
                                                 "over 96 GPUs") != std::string::npos);
  CHECK(error(with("8", "\"deepseek-v3\"")) == "no error");  // the base itself is valid
  CHECK(error(R"({"steps": 2, "cluster": {"gpus": 8, "gpu": "h100-sxm"}, "workload": {"type": "moe", "model": "mixtral-8x7b"},
                  "policy": {"type": "drop_slowest", "m": 1}})")
            .find("/policy/type: policy 'drop_slowest' does not apply to workload 'moe'") != std::string::npos);
}

}  // namespace tailsim
