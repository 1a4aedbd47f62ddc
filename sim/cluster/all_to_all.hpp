// The all-to-all of MoE dispatch and combine, aggregated per GPU port (O(K), never a K x K matrix).
// Tokens start uniformly spread over the K GPUs (n per node); GPU g hosts the experts that receive pairs[g]
// (token, expert) pairs. Two schemes move them:
// - per expert: one copy per pair, straight to its GPU (DeepEP's low-latency kernels; a plain all-to-all of
//   tokens permuted by expert). Of what g receives, 1/K is local, (n - 1)/K crosses NVLink from the other
//   GPUs of its node and (K - n)/K crosses its NIC; each source sends its pairs in proportion to the loads.
// - hierarchical: a token crosses the network once per destination node (to the same-rail GPU there) and is
//   then forwarded over NVLink once per destination GPU that needs it (DeepEP's normal kernels). A
//   destination's share of the tokens comes from reach_fraction().
// NVLink and NIC traffic proceed in parallel; each is limited by the busier direction of the GPU's port
// (flows sharing a port share its bandwidth) and adds its latency when it carries anything. The combine moves
// the same copies back (reversed()).
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>

#include "sim/cluster/cluster.hpp"

namespace tailsim {

enum class DispatchScheme { kHierarchical, kPerExpert };

struct PortTraffic {  // token copies through one GPU's ports in the dispatch direction
  double recv_intra = 0, send_intra = 0, recv_inter = 0, send_inter = 0;
  PortTraffic reversed() const { return {send_intra, recv_intra, send_inter, recv_inter}; }  // the combine
  double moved() const { return recv_intra + recv_inter; }  // copies received over links
};

// The share of a layer's tokens of which a destination holding `share` of the (token, expert) pairs needs a
// copy, when every token picks `top_k` distinct experts of `experts`: 1 - prod_{i < top_k} (1 - share E / (E - i)).
// Exact for uniform routing over destinations that hold whole experts. hierarchical_traffic() also keeps it
// between what the destination's busiest expert receives and its pair count (a token reaches an expert, or
// a replica's slice of one, once), so it is exact for one expert per GPU and bounded under skew.
double reach_fraction(double share, int experts, int top_k);

// Fills ports[g] from pairs[g] (per expert scheme); node_pairs is scratch of ceil(K / gpus_per_node) entries.
void all_to_all_traffic(std::span<const double> pairs, std::int64_t gpus_per_node, std::span<double> node_pairs,
                        std::span<PortTraffic> ports);

// Fills ports[g] from pairs[g] (hierarchical scheme); busiest[g] is the pair count of g's busiest expert;
// node_scratch has 3 ceil(K / gpus_per_node) + top_k entries. max_nodes > 0: the router's node limit (DeepSeek-V3's
// group-limited routing with groups placed by node: a token reaches at most that many nodes); when the nodes'
// reaches add up to more, they are scaled down to that sum (exact for uniform routing over one group a node).
// twins (empty, or one entry per node): twins[n] >= 0 names an earlier node whose GPUs have the same pairs and
// busiest, in order, and as many GPUs; node n's results are copied from it (the same values, computed once).
void hierarchical_traffic(std::span<const double> pairs, std::span<const double> busiest, std::int64_t gpus_per_node,
                          int experts, int top_k, std::span<double> node_scratch, std::span<PortTraffic> ports,
                          double max_nodes = 0, std::span<const std::int64_t> twins = {});

// Seconds for one GPU's share of an all-to-all phase moving `bytes_per_copy` per token copy (inline: the moe
// workload calls it twice per GPU and layer).
inline double all_to_all_seconds(const PortTraffic& p, double bytes_per_copy, const LinkSpec& nvlink, const LinkSpec& nic) {
  const double intra = std::max(p.recv_intra, p.send_intra) * bytes_per_copy;
  const double inter = std::max(p.recv_inter, p.send_inter) * bytes_per_copy;
  const double t_intra = intra > 0 ? intra / nvlink.bandwidth_bytes_per_s + nvlink.latency_s : 0.0;
  const double t_inter = inter > 0 ? inter / nic.bandwidth_bytes_per_s + nic.latency_s : 0.0;
  return std::max(t_intra, t_inter);
}

}  // namespace tailsim
