#include "sim/cluster/all_to_all.hpp"

#include <algorithm>
#include <vector>

namespace tailsim {

void all_to_all_traffic(std::span<const double> pairs, std::int64_t gpus_per_node, std::span<double> node_pairs,
                        std::span<PortTraffic> ports) {
  const auto gpus = static_cast<std::int64_t>(pairs.size());
  const std::int64_t node_size = std::min(gpus_per_node, gpus);
  std::fill(node_pairs.begin(), node_pairs.end(), 0.0);
  double total = 0;
  for (std::int64_t g = 0; g < gpus; ++g) {
    node_pairs[static_cast<std::size_t>(g / node_size)] += pairs[g];
    total += pairs[g];
  }
  const double k = static_cast<double>(gpus);
  const double per_source = total / k;
  for (std::int64_t g = 0; g < gpus; ++g) {
    const std::int64_t node = g / node_size;
    const double in_node = static_cast<double>(std::min(node_size, gpus - node * node_size));
    const double node_load = node_pairs[static_cast<std::size_t>(node)];
    PortTraffic& p = ports[g];
    p.recv_intra = pairs[g] * (in_node - 1.0) / k;
    p.recv_inter = pairs[g] * (k - in_node) / k;
    p.send_intra = total > 0 ? per_source * (node_load - pairs[g]) / total : 0.0;
    p.send_inter = total > 0 ? per_source * (total - node_load) / total : 0.0;
  }
}

namespace {

// 1 - prod_i (1 - held x inverse[i]): the reach of a destination holding `held` experts' worth of pairs, with
// inverse[i] = 1 / (E - i) for i < top_k.
double reach_of(double held, std::span<const double> inverse) {
  double miss = 1.0;  // P(none of a token's top_k experts is there)
  for (std::size_t i = 0; i < inverse.size() && miss > 0; ++i) miss *= std::max(0.0, 1.0 - held * inverse[i]);
  return 1.0 - miss;
}

}  // namespace

double reach_fraction(double share, int experts, int top_k) {
  std::vector<double> inverse(static_cast<std::size_t>(std::max(0, top_k)));
  for (std::size_t i = 0; i < inverse.size(); ++i) inverse[i] = 1.0 / (experts - static_cast<double>(i));
  return reach_of(share * experts, inverse);
}

void hierarchical_traffic(std::span<const double> pairs, std::span<const double> busiest, std::int64_t gpus_per_node,
                          int experts, int top_k, std::span<double> node_scratch, std::span<PortTraffic> ports,
                          double max_nodes, std::span<const std::int64_t> twins) {
  const auto gpus = static_cast<std::int64_t>(pairs.size());
  const std::int64_t node_size = std::min(gpus_per_node, gpus);
  const auto nodes = static_cast<std::size_t>((gpus + node_size - 1) / node_size);
  const std::span<double> node_pairs = node_scratch.subspan(0, nodes), node_busiest = node_scratch.subspan(nodes, nodes);
  const std::span<double> gpu_reach_sum = node_scratch.subspan(2 * nodes, nodes);
  std::fill(node_scratch.begin(), node_scratch.begin() + static_cast<std::ptrdiff_t>(3 * nodes), 0.0);
  // A twin node (an earlier node with the same inputs) takes that node's values below: the same bits.
  const auto twin = [&](std::size_t node) { return twins.empty() ? std::int64_t{-1} : twins[node]; };
  double total = 0;
  for (std::size_t node = 0, g = 0; node < nodes; ++node) {
    const std::size_t end = std::min(g + static_cast<std::size_t>(node_size), pairs.size());
    if (twin(node) >= 0) {
      for (; g < end; ++g) total += pairs[g];
      continue;
    }
    for (; g < end; ++g) {
      node_pairs[node] += pairs[g];
      node_busiest[node] = std::max(node_busiest[node], busiest[g]);
      total += pairs[g];
    }
  }
  if (total <= 0) {
    std::fill(ports.begin(), ports.end(), PortTraffic{});
    return;
  }
  const double k = static_cast<double>(gpus), tokens = total / top_k, per_source = tokens / k;
  const std::span<double> inverse = node_scratch.subspan(3 * nodes, static_cast<std::size_t>(top_k));
  for (std::size_t i = 0; i < inverse.size(); ++i) inverse[i] = 1.0 / (experts - static_cast<double>(i));
  const auto reach = [&](double dest_pairs, double dest_busiest) {
    if (dest_busiest >= dest_pairs) return dest_pairs / tokens;  // one expert (or a slice of one): exact
    return std::clamp(reach_of(dest_pairs / total * experts, inverse), dest_busiest / tokens, dest_pairs / tokens);
  };
  // Reach per GPU (kept in recv_intra until its turn) and per node; their sums. Loops run node by node (no
  // division per GPU); each value is the same expression as per GPU, so the results are too.
  for (std::size_t node = 0, g = 0; node < nodes; ++node) {
    const std::size_t end = std::min(g + static_cast<std::size_t>(node_size), pairs.size());
    if (const std::int64_t t = twin(node); t >= 0) {
      const std::size_t back = (node - static_cast<std::size_t>(t)) * static_cast<std::size_t>(node_size);
      for (; g < end; ++g) ports[g].recv_intra = ports[g - back].recv_intra;
      gpu_reach_sum[node] = gpu_reach_sum[static_cast<std::size_t>(t)];
      continue;
    }
    for (; g < end; ++g) {
      ports[g].recv_intra = reach(pairs[g], busiest[g]);
      gpu_reach_sum[node] += ports[g].recv_intra;
    }
  }
  double node_reach_sum = 0;
  for (std::size_t n = 0; n < nodes; ++n) {
    const std::int64_t t = twin(n);
    node_pairs[n] = t >= 0 ? node_pairs[static_cast<std::size_t>(t)] : reach(node_pairs[n], node_busiest[n]);  // now the node's reach
    node_reach_sum += node_pairs[n];
  }
  if (max_nodes > 0 && node_reach_sum > max_nodes) {
    for (std::size_t n = 0; n < nodes; ++n) node_pairs[n] *= max_nodes / node_reach_sum;
    node_reach_sum = max_nodes;
  }
  for (std::size_t node = 0, g = 0; node < nodes; ++node) {
    const std::size_t end = std::min(g + static_cast<std::size_t>(node_size), pairs.size());
    if (const std::int64_t t = twin(node); t >= 0) {  // (a node limit scales both nodes' reach alike)
      const std::size_t back = (node - static_cast<std::size_t>(t)) * static_cast<std::size_t>(node_size);
      for (; g < end; ++g) ports[g] = ports[g - back];
      continue;
    }
    const double n = static_cast<double>(end - g), node_reach = node_pairs[node];
    // The node's copies from other nodes arrive spread over its n NICs; each GPU forwards its arrivals to the
    // peers that need them, and its own tokens to those peers directly.
    const double recv_inter = tokens * node_reach * (k - n) / k / n;
    const double send_inter = per_source * (node_reach_sum - node_reach);
    const double own_factor = (n - 1.0) / k + (k - n) / k * (n - 1.0) / n;
    for (; g < end; ++g) {
      const double own = ports[g].recv_intra;
      const double peers_reach = gpu_reach_sum[node] - own;  // the other GPUs of the node
      PortTraffic& p = ports[g];
      p.recv_inter = recv_inter;
      p.send_inter = send_inter;
      p.recv_intra = tokens * own * own_factor;
      p.send_intra = per_source * peers_reach + (node_reach > 0 ? recv_inter * peers_reach / node_reach : 0.0);
    }
  }
}

}  // namespace tailsim
