// EPLB-style expert replication and placement (the algorithm of deepseek-ai/EPLB's eplb.py, MIT licence,
// rewritten here for one layer at a time): given an estimate of each logical expert's load, fill
// `physical` slots (physical / gpus per GPU) so that the busiest GPU's load is as small as the greedy
// heuristics make it.
// - hierarchical (groups divide across nodes): pack the expert groups onto nodes, balancing the nodes'
//   loads; replicate the hottest experts within each node (each new replica to the expert whose per-replica
//   load is largest); pack the node's replicas onto its GPUs, balancing their loads.
// - global: the same with one group and one node.
// Ties break to the lowest index (eplb.py leaves them to torch's sort and max).
#pragma once
#include <span>
#include <string>
#include <vector>

#include "sim/policy/moe_policy.hpp"

namespace tailsim {

enum class EplbPlacement { kAuto, kHierarchical, kGlobal };

struct EplbPlan {
  std::vector<int> phy2log;  // physical slot p (on GPU p / slots_per_gpu) -> its logical expert
  std::vector<int> rank;     // the replica's index among its expert's replicas
  std::vector<int> logcnt;   // replicas per logical expert
};

// n items with `weight` into `packs` packs of n / packs items each, heaviest first into the lightest pack
// with room. pack[i], rank_in_pack[i]. Requires packs | n.
void balanced_packing(std::span<const double> weight, int packs, std::vector<int>& pack, std::vector<int>& rank_in_pack);

// `physical` replicas of weight.size() logical experts: each extra replica goes to the expert of largest
// weight / replicas. phy2log[p] (the first weight.size() are the experts themselves), rank, logcnt.
void replicate_experts(std::span<const double> weight, int physical, EplbPlan& out);

// One layer's plan. Requires: groups | experts, gpus | physical, physical >= experts; hierarchical also
// nodes | groups and nodes | gpus. kAuto is hierarchical when nodes | groups (and nodes | gpus), else global.
// Throws std::invalid_argument otherwise.
EplbPlan rebalance_experts(std::span<const double> weight, int physical, int groups, int nodes, int gpus,
                           EplbPlacement placement = EplbPlacement::kAuto);

// The placement of a plan: expert e on the GPUs of its replicas, in replica order; planned GPU j is GPU
// gpu_map[j] when a map is given (a permutation of the GPUs).
ExpertPlacement plan_placement(const EplbPlan& plan, int experts, int gpus, std::span<const int> gpu_map = {});

// A relabelling of a plan's GPUs that keeps experts where `previous` has them, so a re-plan moves fewer
// weights (the plan's balance does not depend on which physical GPU holds which pack of slots). Greedy: each
// planned GPU, in order, takes the free GPU that already holds most of its experts; the rest fill the free
// GPUs in order. by_node (hierarchical plans): nodes are matched first (the same greedy on the nodes' expert
// sets), then GPUs only within their matched node, so a group's experts stay within one node.
std::vector<int> keep_in_place(const EplbPlan& plan, const ExpertPlacement& previous, std::int64_t gpus_per_node,
                               bool by_node);

// The busiest GPU's load over the mean GPU load when expert e receives load[e], split evenly over its replicas.
double placement_imbalance(const ExpertPlacement& placement, std::span<const double> load);

}  // namespace tailsim
