// Twin nodes (issue 18): with the blocked layout and K > E, a node whose experts and token shares repeat an
// earlier node's takes that node's expert times, traffic and all-to-all times instead of computing them. The
// same values, so the same results: checked here against computing every node, with per-GPU noise, slow GPUs
// and link fail-slow episodes (which scale a GPU's own all-to-all times, twin or not), under both dispatch
// schemes. tests/golden/moe_deepseek_replicas.json checks the same against the binary from before twins.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "sim/scenario/scenario.hpp"
#include "sim/workload/moe.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

std::vector<PolicyTally> run_moe(const std::string& dispatch, bool twins) {
  // 16 experts over 128 GPUs (8 replicas each, 16 nodes of 8): the layout twin nodes apply to.
  const Json doc = Json::parse(R"({"seed": 7, "steps": 12, "cluster": {"gpus": 128, "gpu": "h100-sxm",
      "noise": {"type": "lognormal", "mu": 0, "sigma": 0.05}, "slow_gpus": [{"count": 5, "factor": 1.6}]},
    "workload": {"type": "moe", "tokens_per_gpu": 64, "dispatch": ")" + dispatch + R"(",
      "routing": {"type": "generated", "preset": "uniform"},
      "model": {"name": "toy", "layers": 3, "experts": 16, "top_k": 2, "hidden": 1024, "expert_intermediate": 512},
      "fail_slow": [{"kind": "link", "rate_per_rank_step": 0.2, "duration_steps": {"type": "constant", "value": 2},
                     "factor": {"type": "constant", "value": 3}}]},
    "policies": [{"type": "none"}]})");
  const Scenario sc = load_scenario_json(doc, "twins.json");
  PointModel m = build_point(sc, sc.points.at(0));
  MoeWorkload::Config config = dynamic_cast<const MoeWorkload&>(*m.workload).config();
  config.twin_nodes = twins;
  const MoeWorkload workload(std::move(config));
  const std::vector<const Policy*> views = m.policy_views();
  RunRequest req;
  req.seed = sc.seed;
  req.steps = 12;
  req.policies = views;
  return workload.run(req);
}

}  // namespace

TEST_CASE("twin nodes give the same steps and sums as computing every node") {
  for (const std::string dispatch : {"hierarchical", "per_expert"}) {
    CAPTURE(dispatch);
    const std::vector<PolicyTally> twins = run_moe(dispatch, true), every = run_moe(dispatch, false);
    REQUIRE(twins.size() == 1);
    CHECK(twins[0].steps.values() == every[0].steps.values());
    std::vector<double> a, b;
    PolicyTally::for_each_sum(twins[0], [&](const CompensatedSum& s) { a.push_back(s); });
    PolicyTally::for_each_sum(every[0], [&](const CompensatedSum& s) { b.push_back(s); });
    CHECK(a == b);
    CHECK(twins[0].moe.bytes_moved > 0);
  }
}

}  // namespace tailsim
