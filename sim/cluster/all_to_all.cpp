#include "sim/cluster/all_to_all.hpp"

#include <algorithm>

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

double all_to_all_seconds(const PortTraffic& p, double bytes_per_pair, const LinkSpec& nvlink, const LinkSpec& nic) {
  const double intra = std::max(p.recv_intra, p.send_intra) * bytes_per_pair;
  const double inter = std::max(p.recv_inter, p.send_inter) * bytes_per_pair;
  const double t_intra = intra > 0 ? intra / nvlink.bandwidth_bytes_per_s + nvlink.latency_s : 0.0;
  const double t_inter = inter > 0 ? inter / nic.bandwidth_bytes_per_s + nic.latency_s : 0.0;
  return std::max(t_intra, t_inter);
}

}  // namespace tailsim
