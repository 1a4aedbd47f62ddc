#include "sim/policy/eplb.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <utility>

namespace tailsim {

void balanced_packing(std::span<const double> weight, int packs, std::vector<int>& pack, std::vector<int>& rank_in_pack) {
  const auto n = static_cast<int>(weight.size());
  if (packs < 1 || n % packs != 0)
    throw std::invalid_argument("balanced_packing: " + std::to_string(n) + " items into " + std::to_string(packs) + " packs");
  const int per_pack = n / packs;
  pack.assign(static_cast<std::size_t>(n), 0);
  rank_in_pack.assign(static_cast<std::size_t>(n), 0);
  if (per_pack == 1) {
    std::iota(pack.begin(), pack.end(), 0);
    return;
  }
  std::vector<int> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return weight[a] > weight[b]; });
  // The lightest pack with room (ties: the lowest index) from a min-heap of (weight, pack); a full pack leaves it.
  std::vector<std::pair<double, int>> heap;
  heap.reserve(static_cast<std::size_t>(packs));
  for (int p = 0; p < packs; ++p) heap.emplace_back(0.0, p);
  const auto lighter = [](const std::pair<double, int>& a, const std::pair<double, int>& b) { return a > b; };
  std::make_heap(heap.begin(), heap.end(), lighter);
  std::vector<int> pack_items(static_cast<std::size_t>(packs), 0);
  for (const int item : order) {
    std::pop_heap(heap.begin(), heap.end(), lighter);
    auto [w, best] = heap.back();
    pack[item] = best;
    rank_in_pack[item] = pack_items[best]++;
    if (pack_items[best] < per_pack) {
      heap.back().first = w + weight[item];
      std::push_heap(heap.begin(), heap.end(), lighter);
    } else {
      heap.pop_back();
    }
  }
}

void replicate_experts(std::span<const double> weight, int physical, EplbPlan& out) {
  const auto logical = static_cast<int>(weight.size());
  if (physical < logical)
    throw std::invalid_argument("replicate_experts: " + std::to_string(physical) + " slots for " +
                                std::to_string(logical) + " experts");
  out.phy2log.resize(static_cast<std::size_t>(physical));
  out.rank.assign(static_cast<std::size_t>(physical), 0);
  out.logcnt.assign(static_cast<std::size_t>(logical), 1);
  std::iota(out.phy2log.begin(), out.phy2log.begin() + logical, 0);
  // The expert of largest weight per replica (ties: the lowest index) from a max-heap of (weight / count, -e).
  std::vector<std::pair<double, int>> heap;
  heap.reserve(static_cast<std::size_t>(logical));
  for (int e = 0; e < logical; ++e) heap.emplace_back(weight[e], -e);
  std::make_heap(heap.begin(), heap.end());
  for (int p = logical; p < physical; ++p) {
    std::pop_heap(heap.begin(), heap.end());
    const int best = -heap.back().second;
    out.phy2log[p] = best;
    out.rank[p] = out.logcnt[best]++;
    heap.back().first = weight[best] / out.logcnt[best];
    std::push_heap(heap.begin(), heap.end());
  }
}

namespace {

std::vector<int> inverse(const std::vector<int>& perm) {
  std::vector<int> inv(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) inv[static_cast<std::size_t>(perm[i])] = static_cast<int>(i);
  return inv;
}

// eplb.py's rebalance_experts_hierarchical for one layer.
EplbPlan hierarchical(std::span<const double> weight, int physical, int groups, int nodes, int gpus) {
  const auto experts = static_cast<int>(weight.size());
  const int group_size = experts / groups, groups_per_node = groups / nodes, per_gpu = physical / gpus;
  const int node_experts = experts / nodes, node_physical = physical / nodes, node_gpus = gpus / nodes;
  // 1. Groups to nodes.
  std::vector<double> group_weight(static_cast<std::size_t>(groups), 0.0);
  for (int e = 0; e < experts; ++e) group_weight[e / group_size] += weight[e];
  std::vector<int> group_pack, group_rank;
  balanced_packing(group_weight, nodes, group_pack, group_rank);
  std::vector<int> log2mlog(static_cast<std::size_t>(experts));
  for (int e = 0; e < experts; ++e) {
    const int g = e / group_size;
    log2mlog[e] = (group_pack[g] * groups_per_node + group_rank[g]) * group_size + e % group_size;
  }
  const std::vector<int> mlog2log = inverse(log2mlog);
  // 2. Replicas within each node; 3. the node's replicas onto its GPUs.
  EplbPlan plan;
  plan.phy2log.assign(static_cast<std::size_t>(physical), 0);
  plan.rank.assign(static_cast<std::size_t>(physical), 0);
  plan.logcnt.assign(static_cast<std::size_t>(experts), 0);
  std::vector<double> node_weight(static_cast<std::size_t>(node_experts)), phy_weight(static_cast<std::size_t>(node_physical));
  std::vector<int> pack, rank_in_pack, phy2pphy(static_cast<std::size_t>(node_physical));
  EplbPlan node;
  for (int n = 0; n < nodes; ++n) {
    for (int j = 0; j < node_experts; ++j) node_weight[j] = weight[mlog2log[n * node_experts + j]];
    replicate_experts(node_weight, node_physical, node);
    for (int i = 0; i < node_physical; ++i) phy_weight[i] = node_weight[node.phy2log[i]] / node.logcnt[node.phy2log[i]];
    balanced_packing(phy_weight, node_gpus, pack, rank_in_pack);
    for (int i = 0; i < node_physical; ++i) phy2pphy[i] = pack[i] * per_gpu + rank_in_pack[i];
    const std::vector<int> pphy2phy = inverse(phy2pphy);
    for (int q = 0; q < node_physical; ++q) {
      const int phy = pphy2phy[q];
      plan.phy2log[n * node_physical + q] = mlog2log[node.phy2log[phy] + n * node_experts];
      plan.rank[n * node_physical + q] = node.rank[phy];
    }
    for (int j = 0; j < node_experts; ++j) plan.logcnt[mlog2log[n * node_experts + j]] = node.logcnt[j];
  }
  return plan;
}

}  // namespace

EplbPlan rebalance_experts(std::span<const double> weight, int physical, int groups, int nodes, int gpus,
                           EplbPlacement placement) {
  const auto experts = static_cast<int>(weight.size());
  if (experts < 1 || groups < 1 || nodes < 1 || gpus < 1 || experts % groups != 0 || physical % gpus != 0 ||
      physical < experts)
    throw std::invalid_argument("rebalance_experts: " + std::to_string(experts) + " experts in " + std::to_string(groups) +
                                " groups, " + std::to_string(physical) + " slots over " + std::to_string(gpus) + " GPUs");
  const bool fits = groups % nodes == 0 && gpus % nodes == 0 && physical % nodes == 0;
  if (placement == EplbPlacement::kAuto) placement = fits ? EplbPlacement::kHierarchical : EplbPlacement::kGlobal;
  if (placement == EplbPlacement::kHierarchical && !fits)
    throw std::invalid_argument("rebalance_experts: hierarchical placement needs the nodes (" + std::to_string(nodes) +
                                ") to divide the groups (" + std::to_string(groups) + ") and the GPUs (" +
                                std::to_string(gpus) + ")");
  return placement == EplbPlacement::kHierarchical ? hierarchical(weight, physical, groups, nodes, gpus)
                                                   : hierarchical(weight, physical, 1, 1, gpus);
}

ExpertPlacement plan_placement(const EplbPlan& plan, int experts, int gpus, std::span<const int> gpu_map) {
  const auto physical = static_cast<int>(plan.phy2log.size());
  const int per_gpu = physical / gpus;
  std::vector<std::vector<std::int64_t>> hosts(static_cast<std::size_t>(experts));
  for (int e = 0; e < experts; ++e) hosts[e].assign(static_cast<std::size_t>(plan.logcnt[e]), 0);
  for (int p = 0; p < physical; ++p) hosts[plan.phy2log[p]][plan.rank[p]] = gpu_map.empty() ? p / per_gpu : gpu_map[p / per_gpu];
  return ExpertPlacement(gpus, hosts);
}

namespace {

// Greedy matching of `units` planned units (GPUs or nodes) to the units [first, first + units) of the
// previous placement: planned unit j's slots are slots [j x per_unit, (j + 1) x per_unit) of the plan, an
// old unit's experts are those its GPUs host (unit of GPU g: g / gpus_per_unit). Returns old unit per planned.
std::vector<int> match_units(const EplbPlan& plan, const ExpertPlacement& previous, int planned_first, int units,
                             int per_unit, int old_first, std::int64_t gpus_per_unit) {
  std::vector<int> out(static_cast<std::size_t>(units), -1);
  std::vector<char> taken(static_cast<std::size_t>(units), 0);
  std::vector<int> candidates;  // the old units holding the planned unit's experts, with repeats: their scores
  for (int j = 0; j < units; ++j) {
    candidates.clear();
    for (int p = (planned_first + j) * per_unit; p < (planned_first + j + 1) * per_unit; ++p)
      for (const std::int64_t g : previous.hosts(plan.phy2log[p])) {
        const auto u = static_cast<int>(g / gpus_per_unit) - old_first;
        if (u >= 0 && u < units && !taken[u]) candidates.push_back(u);
      }
    std::sort(candidates.begin(), candidates.end());
    int best = -1, best_score = 0;
    for (std::size_t i = 0; i < candidates.size();) {  // runs of equal units, in increasing unit order
      std::size_t end = i;
      while (end < candidates.size() && candidates[end] == candidates[i]) ++end;
      if (static_cast<int>(end - i) > best_score) {
        best = candidates[i];
        best_score = static_cast<int>(end - i);
      }
      i = end;
    }
    if (best >= 0) {
      out[j] = best;
      taken[best] = 1;
    }
  }
  int next = 0;
  for (int j = 0; j < units; ++j) {
    if (out[j] >= 0) continue;
    while (taken[next]) ++next;
    out[j] = next;
    taken[next] = 1;
  }
  return out;
}

}  // namespace

std::vector<int> keep_in_place(const EplbPlan& plan, const ExpertPlacement& previous, std::int64_t gpus_per_node,
                               bool by_node) {
  const auto gpus = static_cast<int>(previous.gpus());
  const int per_gpu = static_cast<int>(plan.phy2log.size()) / gpus;
  if (!by_node || gpus_per_node >= gpus || gpus % gpus_per_node != 0)
    return match_units(plan, previous, 0, gpus, per_gpu, 0, 1);
  const int node_size = static_cast<int>(gpus_per_node), nodes = gpus / node_size;
  const std::vector<int> node_map = match_units(plan, previous, 0, nodes, per_gpu * node_size, 0, gpus_per_node);
  std::vector<int> map(static_cast<std::size_t>(gpus));
  for (int n = 0; n < nodes; ++n) {
    const std::vector<int> inner =
        match_units(plan, previous, n * node_size, node_size, per_gpu, node_map[n] * node_size, 1);
    for (int i = 0; i < node_size; ++i) map[n * node_size + i] = node_map[n] * node_size + inner[i];
  }
  return map;
}

double placement_imbalance(const ExpertPlacement& placement, std::span<const double> load) {
  double most = 0, total = 0;
  for (std::int64_t g = 0; g < placement.gpus(); ++g) {
    double sum = 0;
    for (const ExpertPlacement::Slot& s : placement.slots(g)) sum += load[s.expert] / s.replicas;
    most = std::max(most, sum);
    total += sum;
  }
  return total > 0 ? most / (total / static_cast<double>(placement.gpus())) : 1.0;
}

}  // namespace tailsim
