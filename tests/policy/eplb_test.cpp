// EPLB's plan (sim/policy/eplb.hpp) against deepseek-ai/EPLB's README example, and its invariants.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "sim/policy/eplb.hpp"

namespace tailsim {

TEST_CASE("eplb reproduces the README example of deepseek-ai/EPLB exactly") {
  // README "Interface and Example": 2 layers x 12 experts, 16 replicas, 4 groups, 2 nodes, 8 GPUs.
  const std::vector<std::vector<double>> weight = {{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
                                                   {20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27}};
  const std::vector<std::vector<int>> phy2log = {{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1},
                                                 {7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1}};
  for (std::size_t layer = 0; layer < 2; ++layer) {
    CAPTURE(layer);
    const EplbPlan plan = rebalance_experts(weight[layer], 16, 4, 2, 8);
    CHECK(plan.phy2log == phy2log[layer]);
    // Each expert's replicas are numbered 0 .. logcnt - 1 and the counts add up to the 16 slots.
    CHECK(std::accumulate(plan.logcnt.begin(), plan.logcnt.end(), 0) == 16);
    for (int e = 0; e < 12; ++e) {
      std::vector<int> ranks;
      for (int p = 0; p < 16; ++p)
        if (plan.phy2log[p] == e) ranks.push_back(plan.rank[p]);
      std::sort(ranks.begin(), ranks.end());
      std::vector<int> want(static_cast<std::size_t>(plan.logcnt[e]));
      std::iota(want.begin(), want.end(), 0);
      CHECK(ranks == want);
    }
  }
}

TEST_CASE("eplb's hierarchical plan keeps each group within one node, and auto falls back to global") {
  std::vector<double> w(32);
  for (int e = 0; e < 32; ++e) w[e] = 1.0 + (e * 37 % 11);
  const EplbPlan plan = rebalance_experts(w, 48, 8, 4, 16, EplbPlacement::kHierarchical);
  // 48 slots over 16 GPUs in 4 nodes: 12 slots a node; a group's (4 experts) replicas all sit in one node.
  for (int g = 0; g < 8; ++g) {
    int node = -1;
    for (int p = 0; p < 48; ++p)
      if (plan.phy2log[p] / 4 == g) {
        if (node < 0) node = p / 12;
        CHECK(p / 12 == node);
      }
  }
  // 3 nodes do not divide 8 groups: auto is global, hierarchical is refused.
  CHECK_NOTHROW(rebalance_experts(w, 48, 8, 3, 12));
  CHECK_THROWS_AS(rebalance_experts(w, 48, 8, 3, 12, EplbPlacement::kHierarchical), std::invalid_argument);
  CHECK(rebalance_experts(w, 48, 8, 3, 12).phy2log == rebalance_experts(w, 48, 1, 1, 12).phy2log);
}

TEST_CASE("eplb: more replicas for hotter experts lower the busiest GPU's load") {
  // One expert with half the load: with 4 redundant slots over 4 GPUs it gets replicas, and the imbalance
  // falls from the blocked layout's.
  std::vector<double> w(8, 1.0);
  w[3] = 7.0;
  const ExpertPlacement blocked = ExpertPlacement::blocked(8, 4);
  const ExpertPlacement planned = plan_placement(rebalance_experts(w, 12, 1, 1, 4), 8, 4);
  CHECK(placement_imbalance(blocked, w) == doctest::Approx(8.0 / 3.5));
  CHECK(placement_imbalance(planned, w) < 1.2);
  CHECK(planned.hosts(3).size() >= 3);
}

}  // namespace tailsim
