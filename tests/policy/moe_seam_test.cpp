// The MoE policy seam: a controller's hooks run in layer order, and the moe workload charges each decision
// (dropped pairs, a new placement, weight loads, hedges) exactly as an independent computation from the same
// routing draws says. K = E = 16 GPUs in one node with NVLink fast enough to vanish and no dense part, so a
// layer lasts as long as its slowest GPU's experts.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <numeric>

#include "sim/workload/moe.hpp"
#include "sim/workload/routing.hpp"
#include "tests/cost/cost_helpers.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

constexpr int kGpus = 16, kLayers = 3, kSteps = 12, kTokens = 256;

std::string linear_table(double fixed_us = 10.0) {
  std::string csv = "# a linear cost for tests\ntokens,time_us\n";
  for (int t = 1; t <= 8192; ++t) csv += std::to_string(t) + "," + std::to_string(fixed_us + 0.5 * t) + "\n";
  return test::write_temp("seam_linear_cost_" + std::to_string(fixed_us) + ".csv", csv);
}

std::string scenario(const std::string& slow_gpus = "[]", double fixed_us = 10.0) {
  return R"({"seed": 5, "steps": )" + std::to_string(kSteps) + R"(,
    "cluster": {"gpus": 16, "gpus_per_node": 16, "gpu": "h100-sxm", "slow_gpus": )" + slow_gpus + R"(,
                "nvlink": {"bandwidth": "1e30B/s", "latency": "0s"}, "nic": {"bandwidth": "1GB/s", "latency": "0s"}},
    "workload": {"type": "moe", "tokens_per_gpu": 256, "routing": {"type": "generated", "preset": "olmoe"},
      "cost": {"type": "profiled", "table": ")" + linear_table(fixed_us) + R"("},
      "model": {"name": "toy", "layers": 3, "experts": 16, "top_k": 2, "hidden": 1024, "expert_intermediate": 512}},
    "policy": {"type": "none"}})";
}

struct Hooks {
  std::function<void(const MoeLayer&, ExpertPlacement&, MoeDecisions&)> before_routing;
  std::function<void(MoeLayer&, const ExpertPlacement&, MoeDecisions&)> after_routing;
  std::function<void(const MoeLayer&, std::span<const double>, MoeDecisions&)> on_stragglers;
  std::function<void(const MoeLayer&, const MoeLayerOutcome&)> after_layer;
  std::function<void(std::int64_t, ExpertPlacement&)> between_steps;
};

class HookController final : public MoeController {
 public:
  explicit HookController(const Hooks& hooks) : h_(hooks) {}
  void before_routing(const MoeLayer& l, ExpertPlacement& p, MoeDecisions& d) override {
    if (h_.before_routing) h_.before_routing(l, p, d);
  }
  void after_routing(MoeLayer& l, const ExpertPlacement& p, MoeDecisions& d) override {
    if (h_.after_routing) h_.after_routing(l, p, d);
  }
  void on_stragglers(const MoeLayer& l, std::span<const double> finish, MoeDecisions& d) override {
    if (h_.on_stragglers) h_.on_stragglers(l, finish, d);
  }
  void after_layer(const MoeLayer& l, const MoeLayerOutcome& o) override {
    if (h_.after_layer) h_.after_layer(l, o);
  }
  void between_steps(std::int64_t next, ExpertPlacement& p) override {
    if (h_.between_steps) h_.between_steps(next, p);
  }

 private:
  const Hooks& h_;
};

class HookPolicy final : public Policy, public MoePolicy {
 public:
  explicit HookPolicy(Hooks hooks) : Policy("hooks", "hooks"), hooks_(std::move(hooks)) {}
  const MoePolicy* moe() const override { return this; }
  bool copies_work() const override { return true; }
  std::unique_ptr<MoeController> make_controller(const MoeRunInfo& info) const override {
    CHECK(info.gpus == kGpus);
    CHECK(info.experts == 16);
    CHECK(info.moe_layers == kLayers);
    return std::make_unique<HookController>(hooks_);
  }

 private:
  Hooks hooks_;
};

// Runs `none` and the hook policy on the same draws; returns their tallies.
std::vector<PolicyTally> run_with(const Policy& policy, const std::string& text = scenario()) {
  const Scenario sc = load_scenario_json(Json::parse(text), "test.json");
  const std::vector<PointModel> models = build_all_points(sc);
  const auto none = make_none_policy(JsonReader(Json::object(), ""));
  const Policy* policies[] = {none.get(), &policy};
  RunRequest req;
  req.seed = sc.seed;
  req.steps = sc.steps;
  req.policies = policies;
  return models.at(0).workload->run(req);
}

// The router's counts for every (step, layer) of the run, replayed from the run's streams.
std::vector<std::vector<std::int64_t>> routed_counts() {
  RouterContext rc{kLayers, 16, 2, 5, 0};
  const Json node = Json::parse(R"({"type": "generated", "preset": "olmoe"})");
  auto router = make_router(JsonReader(node, "test.json", "/workload/routing"), rc);
  std::vector<std::vector<std::int64_t>> out;
  for (int s = 0; s < kSteps; ++s)
    for (int l = 0; l < kLayers; ++l) {
      std::vector<std::int64_t> counts(16);
      router->route(s, l, std::int64_t{kGpus} * kTokens, counts);
      out.push_back(counts);
    }
  return out;
}

double cost_s(std::int64_t tokens) { return tokens == 0 ? 0.0 : (10.0 + 0.5 * static_cast<double>(tokens)) * 1e-6; }

// Expected step times from per-layer times (seconds), as the run rounds them: each layer to the nanosecond.
std::vector<SimTime> steps_of(const std::vector<double>& layer_s) {
  std::vector<SimTime> out(kSteps, 0);
  for (std::size_t i = 0; i < layer_s.size(); ++i) out[i / kLayers] += seconds_to_ns(layer_s[i]);
  return out;
}

void check_steps(const PolicyTally& t, const std::vector<double>& layer_s) {
  const std::vector<SimTime> expected = steps_of(layer_s);
  REQUIRE(t.steps.values().size() == expected.size());
  for (std::size_t s = 0; s < expected.size(); ++s)
    CHECK(static_cast<double>(t.steps.values()[s]) == doctest::Approx(static_cast<double>(expected[s])).epsilon(1e-6));
}

}  // namespace

TEST_CASE("an MoE controller's hooks run in layer order, once per layer and step") {
  std::vector<std::string> calls;
  std::int64_t pairs_seen = 0;
  Hooks h;
  h.before_routing = [&](const MoeLayer& l, ExpertPlacement&, MoeDecisions&) {
    CHECK(l.counts.empty());
    calls.push_back("before " + std::to_string(l.step) + "/" + std::to_string(l.layer));
  };
  h.after_routing = [&](MoeLayer& l, const ExpertPlacement&, MoeDecisions&) {
    CHECK(std::accumulate(l.counts.begin(), l.counts.end(), std::int64_t{0}) == std::int64_t{kGpus} * kTokens * 2);
    calls.push_back("after");
  };
  h.on_stragglers = [&](const MoeLayer&, std::span<const double> finish, MoeDecisions&) {
    CHECK(finish.size() == static_cast<std::size_t>(kGpus));
    calls.push_back("stragglers");
  };
  h.after_layer = [&](const MoeLayer&, const MoeLayerOutcome& o) {
    pairs_seen += std::accumulate(o.gpu_pairs.begin(), o.gpu_pairs.end(), std::int64_t{0});
    CHECK(o.layer_s == doctest::Approx(*std::max_element(o.expert_finish_s.begin(), o.expert_finish_s.end())));
    calls.push_back("observe");
  };
  h.between_steps = [&](std::int64_t next, ExpertPlacement&) { calls.push_back("between " + std::to_string(next)); };
  const std::vector<PolicyTally> t = run_with(HookPolicy(h));
  REQUIRE(calls.size() == static_cast<std::size_t>(kSteps * (kLayers * 4 + 1)));
  CHECK(calls[0] == "before 0/0");
  CHECK(calls[1] == "after");
  CHECK(calls[2] == "stragglers");
  CHECK(calls[3] == "observe");
  CHECK(calls[4] == "before 0/1");
  CHECK(calls[kLayers * 4] == "between 1");
  CHECK(calls.back() == "between " + std::to_string(kSteps));
  CHECK(pairs_seen == std::int64_t{kSteps} * kLayers * kGpus * kTokens * 2);
  // A controller that decides nothing changes nothing.
  CHECK(t[1].steps == t[0].steps);
  CHECK(static_cast<double>(t[1].moe.bytes_moved) == static_cast<double>(t[0].moe.bytes_moved));
  CHECK(static_cast<double>(t[1].extra_s) == 0.0);
}

TEST_CASE("dropped pairs skip their expert: the layer is the slowest capped expert and traffic falls") {
  constexpr std::int64_t kCap = 560;
  Hooks h;
  h.after_routing = [&](MoeLayer& l, const ExpertPlacement&, MoeDecisions& d) {
    for (std::int64_t& n : l.counts) {
      d.dropped_pairs += std::max<std::int64_t>(0, n - kCap);
      n = std::min(n, kCap);
    }
  };
  const std::vector<PolicyTally> t = run_with(HookPolicy(h));
  std::vector<double> none_s, capped_s;
  double dropped = 0;
  for (const auto& counts : routed_counts()) {
    const std::int64_t busiest = *std::max_element(counts.begin(), counts.end());
    none_s.push_back(cost_s(busiest));
    capped_s.push_back(cost_s(std::min(busiest, kCap)));
    for (const std::int64_t n : counts) dropped += static_cast<double>(std::max<std::int64_t>(0, n - kCap));
  }
  REQUIRE(dropped > 0);  // the cap binds (olmoe's skew)
  check_steps(t[0], none_s);
  check_steps(t[1], capped_s);
  CHECK(static_cast<double>(t[1].moe.dropped_pairs) == dropped);
  CHECK(static_cast<double>(t[1].moe.bytes_moved) < static_cast<double>(t[0].moe.bytes_moved));
}

TEST_CASE("identity: with a linear cost, one expert per GPU and free links, capacity_drop's speed-up is "
          "E[max load] / E[min(max load, C)]") {
  // No fixed cost, no noise, links that take no time: a layer is its busiest expert's tokens x 0.5 us.
  const std::string text = scenario("[]", 0.0);
  const Json node = Json::parse(R"({"type": "capacity_drop", "capacity_factor": 1.25})");
  const auto drop = make_policy(JsonReader(node, "test.json", "/policy"));
  const std::vector<PolicyTally> t = run_with(*drop, text);
  // C = ceil(1.25 x 16 GPUs x 256 tokens x top-2 / 16 experts) = 640 pairs, against a mean of 512.
  constexpr std::int64_t kCap = 640;
  double max_load = 0, capped = 0;
  for (const auto& counts : routed_counts()) {
    const std::int64_t busiest = *std::max_element(counts.begin(), counts.end());
    max_load += static_cast<double>(busiest);
    capped += static_cast<double>(std::min(busiest, kCap));
  }
  REQUIRE(capped < max_load);  // the cap binds
  const auto total = [](const PolicyTally& p) {
    double sum = 0;
    for (const SimTime ns : p.steps.values()) sum += static_cast<double>(ns);
    return sum;
  };
  const double speedup = total(t[0]) / total(t[1]);
  CHECK(speedup == doctest::Approx(max_load / capped).epsilon(1e-6));
}

TEST_CASE("a controller's placement replaces the default: a second replica of expert 0 halves its load") {
  Hooks h;
  h.before_routing = [&](const MoeLayer& l, ExpertPlacement& p, MoeDecisions&) {
    if (l.step != 0 || l.layer != 0) return;
    std::vector<std::vector<std::int64_t>> hosts(16);
    for (int e = 0; e < 16; ++e) hosts[e] = {e};
    hosts[0] = {0, 1};  // GPU 1 runs its own expert and half of expert 0 as one grouped kernel
    p = ExpertPlacement(kGpus, hosts);
  };
  const std::vector<PolicyTally> t = run_with(HookPolicy(h));
  const auto cost = test::cost_model(Json{{"type", "profiled"}, {"table", linear_table()}}, "h100-sxm", {1024, 512, true, "bf16"});
  std::vector<double> layer_s;
  for (const auto& counts : routed_counts()) {
    const std::int64_t n0 = counts[0];
    double slowest = cost->grouped_time_s(std::vector<std::int64_t>{n0 / 2 + n0 % 2});
    const std::vector<std::int64_t> gpu1 = {n0 / 2, counts[1]};
    slowest = std::max(slowest, cost->grouped_time_s(gpu1));
    for (int g = 2; g < 16; ++g) slowest = std::max(slowest, cost_s(counts[g]));
    layer_s.push_back(slowest);
  }
  check_steps(t[1], layer_s);
}

TEST_CASE("weight loads stall a GPU's experts until they arrive over its NIC") {
  constexpr double kBytes = 2e6;  // 2 ms at the scenario's 1 GB/s NIC
  Hooks h;
  h.before_routing = [&](const MoeLayer&, ExpertPlacement&, MoeDecisions& d) {
    d.loads.push_back(WeightLoad{3, -1, kBytes / 2});
    d.loads.push_back(WeightLoad{3, -1, kBytes / 2});  // loads onto one GPU queue on its link
  };
  const std::vector<PolicyTally> t = run_with(HookPolicy(h));
  std::vector<double> layer_s;
  for (const auto& counts : routed_counts()) {
    double slowest = kBytes / 1e9 + cost_s(counts[3]);
    for (int g = 0; g < 16; ++g) slowest = std::max(slowest, cost_s(counts[g]));
    layer_s.push_back(slowest);
  }
  check_steps(t[1], layer_s);
  CHECK(static_cast<double>(t[1].moe.weight_bytes) == kBytes * kSteps * kLayers);
  CHECK(static_cast<double>(t[1].moe.bytes_moved) == doctest::Approx(static_cast<double>(t[0].moe.bytes_moved) + kBytes * kSteps * kLayers));
}

TEST_CASE("a prefetch occupies the link without stalling, and a load queued behind it waits for it") {
  Hooks h;
  h.before_routing = [&](const MoeLayer& l, ExpertPlacement&, MoeDecisions& d) {
    if (l.step != 0) return;
    if (l.layer == 0) d.loads.push_back(WeightLoad{3, -1, 50e6, false});  // 50 ms on the 1 GB/s NIC, for later
    if (l.layer == 1) d.loads.push_back(WeightLoad{3, -1, 1e6, true});    // needed now: waits behind it
  };
  const std::vector<PolicyTally> t = run_with(HookPolicy(h));
  const std::vector<std::vector<std::int64_t>> counts = routed_counts();
  std::vector<double> layer_s;
  for (const auto& c : counts) layer_s.push_back(cost_s(*std::max_element(c.begin(), c.end())));
  // Layer 1's load arrives 51 ms after layer 0 started: layer 1 waits for it, then runs GPU 3's experts.
  layer_s[1] = std::max(layer_s[1], 51e-3 - ns_to_seconds(seconds_to_ns(layer_s[0])) + cost_s(counts[1][3]));
  check_steps(t[1], layer_s);
  CHECK(static_cast<double>(t[1].moe.weight_bytes) == 51e6);
}

TEST_CASE("a hedge copies a slow GPU's experts to a healthy one; the first to finish wins") {
  const std::string slow = R"([{"count": 1, "factor": 4}])";  // GPU 15 runs 4x slower
  Hooks h;
  h.on_stragglers = [&](const MoeLayer&, std::span<const double> finish, MoeDecisions& d) {
    CHECK(finish.size() == static_cast<std::size_t>(kGpus));
    d.hedges.push_back(Hedge{15, 0});
  };
  const std::vector<PolicyTally> t = run_with(HookPolicy(h), scenario(slow));
  std::vector<double> none_s, hedged_s;
  double extra = 0;
  for (const auto& counts : routed_counts()) {
    double others = 0;
    for (int g = 1; g < 15; ++g) others = std::max(others, cost_s(counts[g]));
    const double e0 = cost_s(counts[0]), e15 = cost_s(counts[15]);
    none_s.push_back(std::max({others, e0, 4 * e15}));
    const double copy_done = e0 + e15;  // after GPU 0's own experts, at GPU 0's speed; links vanish
    const double f15 = std::min(4 * e15, copy_done);
    const double ran = std::min(copy_done, f15) - e0;
    extra += ran;
    hedged_s.push_back(std::max({others, e0 + ran, f15}));
  }
  check_steps(t[0], none_s);
  check_steps(t[1], hedged_s);
  const auto total = [](const PolicyTally& p) { return std::accumulate(p.steps.values().begin(), p.steps.values().end(), SimTime{0}); };
  CHECK(total(t[1]) < total(t[0]));
  CHECK(static_cast<double>(t[1].extra_s) == doctest::Approx(extra).epsilon(1e-9));
}

TEST_CASE("under two_batch a hedge still shortens a slow GPU's steps and a weight load still stalls them") {
  std::string text = scenario(R"([{"count": 1, "factor": 4}])");
  text.replace(text.find(R"("tokens_per_gpu")"), 0, R"("overlap": "two_batch", )");
  Hooks hedge;
  hedge.on_stragglers = [&](const MoeLayer&, std::span<const double>, MoeDecisions& d) { d.hedges.push_back(Hedge{15, 0}); };
  Hooks load;
  load.before_routing = [&](const MoeLayer&, ExpertPlacement&, MoeDecisions& d) { d.loads.push_back(WeightLoad{3, -1, 2e6}); };
  const std::vector<PolicyTally> hedged = run_with(HookPolicy(hedge), text);
  const std::vector<PolicyTally> loaded = run_with(HookPolicy(load), text);
  const auto total = [](const PolicyTally& p) { return std::accumulate(p.steps.values().begin(), p.steps.values().end(), SimTime{0}); };
  CHECK(total(hedged[1]) < total(hedged[0]));
  CHECK(static_cast<double>(hedged[1].extra_s) > 0);
  // Each layer's 2 ms load (1 GB/s NIC) stalls GPU 3's experts by at least 2 ms less its dense part and dispatch.
  CHECK(total(loaded[1]) > total(loaded[0]) + seconds_to_ns(kSteps * kLayers * 1e-3));
}

TEST_CASE("a stop raised in the middle of a step ends the moe run at the next layer, not the step's end") {
  std::atomic<bool> stop{false};
  int layers_run = 0;
  Hooks h;
  h.after_layer = [&](const MoeLayer& l, const MoeLayerOutcome&) {
    ++layers_run;
    if (l.step == 0 && l.layer == 1) stop = true;  // as a signal or --time-limit would, mid-step
  };
  const Scenario sc = load_scenario_json(Json::parse(scenario()), "test.json");
  const std::vector<PointModel> models = build_all_points(sc);
  const HookPolicy policy(h);
  const Policy* policies[] = {&policy};
  RunRequest req;
  req.seed = sc.seed;
  req.steps = sc.steps;
  req.policies = policies;
  req.stop = &stop;
  CHECK_THROWS_AS(models.at(0).workload->run(req), RunStopped);
  CHECK(layers_run == 2);
}

TEST_CASE("a controller that loses pairs without reporting them is a bug, not a result") {
  Hooks h;
  h.after_routing = [&](MoeLayer& l, const ExpertPlacement&, MoeDecisions&) { l.counts[0] = 0; };
  CHECK_THROWS_AS(run_with(HookPolicy(h)), std::logic_error);
}

TEST_CASE("the default placement is today's layout for every K that divides E or that E divides") {
  const ExpertPlacement blocks = ExpertPlacement::blocked(16, 4);
  CHECK(blocks.slots(1).size() == 4);
  CHECK(blocks.slots(1)[0].expert == 4);
  CHECK(blocks.hosts(7).size() == 1);
  CHECK(blocks.hosts(7)[0] == 1);
  const ExpertPlacement replicas = ExpertPlacement::blocked(8, 32);
  REQUIRE(replicas.hosts(3).size() == 4);
  CHECK(replicas.hosts(3)[2] == 19);
  CHECK(replicas.slots(19)[0].replica == 2);
  CHECK(ExpertPlacement::share(replicas.slots(19)[0], 10) == 2);  // 10 over 4 replicas: 3, 3, 2, 2
  CHECK(ExpertPlacement::share(replicas.slots(3)[0], 10) == 3);
  CHECK_THROWS_AS(ExpertPlacement::blocked(16, 6), std::invalid_argument);
  CHECK_THROWS_AS(ExpertPlacement(4, {{0}, {}}), std::invalid_argument);
  CHECK_THROWS_AS(ExpertPlacement(4, {{0}, {4}}), std::invalid_argument);
}

}  // namespace tailsim
