// The all-to-all of MoE dispatch and combine, aggregated per GPU port (O(K), never a K x K matrix).
// Tokens start uniformly spread over the K GPUs; GPU g hosts the experts that receive pairs[g] (token,
// expert) pairs. Of what g receives, 1/K is local, (n - 1)/K crosses NVLink from the other GPUs of its node
// (n GPUs) and (K - n)/K crosses its NIC. Each source sends its own pairs in proportion to the destinations'
// loads. NVLink and NIC traffic proceed in parallel; each is limited by the busier direction of the GPU's
// port (flows sharing a port share its bandwidth) and adds its latency when it carries anything.
#pragma once
#include <cstdint>
#include <span>

#include "sim/cluster/cluster.hpp"

namespace tailsim {

struct PortTraffic {  // (token, expert) pairs through one GPU's ports in the dispatch direction
  double recv_intra = 0, send_intra = 0, recv_inter = 0, send_inter = 0;
  PortTraffic reversed() const { return {send_intra, recv_intra, send_inter, recv_inter}; }  // the combine
  double moved() const { return recv_intra + recv_inter; }  // pairs received over links
};

// Fills ports[g] from pairs[g]; node_pairs is scratch of ceil(K / gpus_per_node) entries.
void all_to_all_traffic(std::span<const double> pairs, std::int64_t gpus_per_node, std::span<double> node_pairs,
                        std::span<PortTraffic> ports);

// Seconds for one GPU's share of an all-to-all phase moving `bytes_per_pair` per pair.
double all_to_all_seconds(const PortTraffic& port, double bytes_per_pair, const LinkSpec& nvlink, const LinkSpec& nic);

}  // namespace tailsim
