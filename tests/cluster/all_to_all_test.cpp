// The aggregated all-to-all model: conservation, symmetry, how many copies a token needs, and DeepEP's
// published normal-kernel figures.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "sim/cluster/all_to_all.hpp"
#include "sim/core/rng.hpp"

namespace tailsim {

namespace {
std::vector<PortTraffic> ports_for(const std::vector<double>& pairs, std::int64_t per_node) {
  std::vector<PortTraffic> ports(pairs.size());
  std::vector<double> scratch(pairs.size());
  all_to_all_traffic(pairs, per_node, scratch, ports);
  return ports;
}
// Copies sent and received over NVLink and NICs, summed over the GPUs.
struct LinkSums {
  double send_intra = 0, recv_intra = 0, send_inter = 0, recv_inter = 0;
};
LinkSums link_sums(const std::vector<PortTraffic>& ports) {
  LinkSums s;
  for (const PortTraffic& p : ports) {
    s.send_intra += p.send_intra;
    s.recv_intra += p.recv_intra;
    s.send_inter += p.send_inter;
    s.recv_inter += p.recv_inter;
  }
  return s;
}
}  // namespace

TEST_CASE("every pair sent over a link is received over a link of the same kind") {
  const std::vector<double> pairs = {100, 900, 50, 300, 0, 20, 700, 130, 40, 60, 10, 90};  // 12 GPUs, 8 per node
  const auto ports = ports_for(pairs, 8);
  const auto [si, ri, se, re] = link_sums(ports);
  CHECK(si == doctest::Approx(ri));
  CHECK(se == doctest::Approx(re));
  const double total = std::accumulate(pairs.begin(), pairs.end(), 0.0);
  CHECK(ri + re + total / 12.0 == doctest::Approx(total));  // what is not local moves over a link
}

TEST_CASE("with balanced loads every GPU sends what it receives, and one node uses no NIC") {
  const auto ports = ports_for(std::vector<double>(8, 1000.0), 8);
  for (const PortTraffic& p : ports) {
    CHECK(p.recv_intra == doctest::Approx(875.0));
    CHECK(p.send_intra == doctest::Approx(875.0));
    CHECK(p.recv_inter == 0.0);
    CHECK(p.send_inter == 0.0);
  }
}

TEST_CASE("a hot GPU's receive port sets its dispatch time") {
  std::vector<double> pairs(16, 1000.0);
  pairs[3] = 4000.0;
  const auto ports = ports_for(pairs, 8);
  const LinkSpec nvlink{100e9, 0}, nic{10e9, 0};
  const double hot = all_to_all_seconds(ports[3], 1000.0, nvlink, nic);
  const double cold = all_to_all_seconds(ports[0], 1000.0, nvlink, nic);
  CHECK(hot > 3.5 * cold);
  CHECK(hot == doctest::Approx(4000.0 * 8 / 16 * 1000.0 / 10e9));  // the NIC half of its receive volume
}

namespace {
// GPUs holding experts / K experts each (K <= experts), the busiest with `busiest_share` of the GPU's pairs.
std::vector<PortTraffic> hierarchical_ports(const std::vector<double>& pairs, std::int64_t per_node, int experts, int top_k,
                                            double busiest_share = 0, double max_nodes = 0) {
  const double whole = 1.0 / std::max<double>(1.0, static_cast<double>(experts) / static_cast<double>(pairs.size()));
  std::vector<double> busiest(pairs.size());
  for (std::size_t g = 0; g < pairs.size(); ++g) busiest[g] = pairs[g] * std::max(busiest_share, whole);
  std::vector<PortTraffic> ports(pairs.size());
  std::vector<double> scratch(3 * pairs.size() + static_cast<std::size_t>(top_k));
  hierarchical_traffic(pairs, busiest, per_node, experts, top_k, scratch, ports, max_nodes);
  return ports;
}

// Token-level routing for the checks below: each token scores every expert uniformly at random, keeps the
// `groups` groups (of experts / group_count consecutive experts) with the highest best score, and picks its
// top_k experts among them (DeepEP's benchmark routing; groups == group_count is plain top-k).
struct TokenSample {
  double mean = 0, stderr_of_mean = 0;
};
TokenSample distinct_destinations_per_token(int experts, int top_k, int group_count, int groups, int destinations,
                                            int tokens, std::uint64_t seed) {
  RngStream rng(seed);
  std::vector<double> score(static_cast<std::size_t>(experts));
  std::vector<int> order(static_cast<std::size_t>(experts)), group_order(static_cast<std::size_t>(group_count));
  const int per_group = experts / group_count, per_destination = experts / destinations;
  double sum = 0, sum2 = 0;
  for (int t = 0; t < tokens; ++t) {
    for (double& s : score) s = rng.uniform();
    std::iota(group_order.begin(), group_order.end(), 0);
    const auto best = [&](int g) { return *std::max_element(score.begin() + g * per_group, score.begin() + (g + 1) * per_group); };
    std::partial_sort(group_order.begin(), group_order.begin() + groups, group_order.end(),
                      [&](int a, int b) { return best(a) > best(b); });
    for (int g = groups; g < group_count; ++g)
      std::fill(score.begin() + group_order[g] * per_group, score.begin() + (group_order[g] + 1) * per_group, -1.0);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + top_k, order.end(), [&](int a, int b) { return score[a] > score[b]; });
    std::vector<bool> hit(static_cast<std::size_t>(destinations), false);
    int distinct = 0;
    for (int i = 0; i < top_k; ++i) {
      const int d = order[i] / per_destination;
      if (!hit[d]) ++distinct;
      hit[d] = true;
    }
    sum += distinct;
    sum2 += static_cast<double>(distinct) * distinct;
  }
  const double n = tokens, mean = sum / n;
  return {mean, std::sqrt((sum2 / n - mean * mean) / (n - 1))};
}
}  // namespace

TEST_CASE("reach_fraction: the distinct GPUs and nodes a token reaches, against token-level sampling") {
  // DeepSeek-V3-like routing: 256 experts, top-8, uniform popularity, over 8 to 64 GPUs of 8 per node.
  for (const int gpus : {8, 16, 32, 64}) {
    const int nodes = std::max(1, gpus / 8);
    const TokenSample per_gpu = distinct_destinations_per_token(256, 8, 1, 1, gpus, 20000, 11u + gpus);
    const TokenSample per_node = distinct_destinations_per_token(256, 8, 1, 1, nodes, 20000, 12u + gpus);
    INFO(gpus << " GPUs: " << per_gpu.mean << " GPUs and " << per_node.mean << " nodes per token");
    CHECK(std::fabs(gpus * reach_fraction(1.0 / gpus, 256, 8) - per_gpu.mean) < 4 * per_gpu.stderr_of_mean + 1e-9);
    CHECK(std::fabs(nodes * reach_fraction(1.0 / nodes, 256, 8) - per_node.mean) < 4 * per_node.stderr_of_mean + 1e-9);
  }
  CHECK(reach_fraction(1.0, 256, 8) == 1.0);
  CHECK(reach_fraction(250.0 / 256, 256, 8) == 1.0);  // fewer than top_k experts elsewhere: every token comes
  CHECK(reach_fraction(0.0, 256, 8) == 0.0);
}

TEST_CASE("hierarchical traffic: one expert per GPU, or a replica's slice, needs one copy per pair") {
  // 8 GPUs with one expert each, skewed, top-2: every pair at a GPU is a distinct token.
  const std::vector<double> pairs = {3000, 1000, 2500, 1500, 2000, 2000, 1200, 2800};  // 8000 tokens
  const auto hier = hierarchical_ports(pairs, 1, 8, 2);
  const auto flat = ports_for(pairs, 1);
  for (std::size_t g = 0; g < pairs.size(); ++g) {
    CHECK(hier[g].recv_inter == doctest::Approx(flat[g].recv_inter));
    CHECK(hier[g].send_inter == doctest::Approx(flat[g].send_inter));
  }
  // 512 GPUs, two replicas of each of 256 experts.
  const auto replicas = hierarchical_ports(std::vector<double>(512, 500.0), 1, 256, 8, 1.0);
  CHECK(replicas[0].recv_inter == doctest::Approx(500.0 * 511 / 512));
}

TEST_CASE("hierarchical traffic: copies sent equal copies received per link kind; one node uses no NIC") {
  const std::vector<double> pairs = {100, 900, 50, 300, 0, 20, 700, 130, 40, 60, 10, 90, 400, 80, 5, 15};
  const auto ports = hierarchical_ports(pairs, 4, 64, 4);
  const auto [si, ri, se, re] = link_sums(ports);
  CHECK(si == doctest::Approx(ri));
  CHECK(se == doctest::Approx(re));
  for (const PortTraffic& p : hierarchical_ports(std::vector<double>(8, 1000.0), 8, 64, 4)) {
    CHECK(p.recv_inter == 0.0);
    CHECK(p.send_inter == 0.0);
    CHECK(p.recv_intra == doctest::Approx(p.send_intra));
  }
  // A token's experts on one node share one NIC crossing (then NVLink carries one copy per GPU): 4000
  // tokens, 32 GPUs of 8 experts each; a node needs 90.35 % of the tokens, 3/4 of them from other nodes.
  const auto flat = ports_for(std::vector<double>(32, 1000.0), 8);
  const auto hier = hierarchical_ports(std::vector<double>(32, 1000.0), 8, 256, 8);
  CHECK(flat[0].recv_inter == doctest::Approx(1000.0 * 24 / 32));
  CHECK(hier[0].recv_inter == doctest::Approx(4000.0 * reach_fraction(0.25, 256, 8) * 0.75 / 8));
  CHECK(reach_fraction(0.25, 256, 8) == doctest::Approx(0.9035).epsilon(1e-3));
}

// DeepEP normal kernels on H800 (NVLink ~160 GB/s, CX7 400 Gb/s ~50 GB/s), 4096 tokens per rank, hidden
// 7168, top-8 of 256 experts, FP8 dispatch (7168 x (1 + 4/128) bytes a token with its scales), BF16 combine;
// the newest published bandwidths (../shared/profiles/published/deepep_readme.csv). DeepEP's benchmark
// divides its own byte count by the kernel time: intranode, the tokens a rank receives (itself included);
// internode, the tokens sent to each destination node (its own included) under top-4-group routing. The
// test recomputes those counts by token-level sampling, so the published time is known, and compares the
// model's time with it. The model moves bytes at nominal link speed with no protocol overhead, so it should
// come in under the measured time. At EP64 (8 nodes, one expert group a node) DeepSeek's top-4-group limit
// caps a token at 4 nodes: with the node limit (issue 15; the deepseek-v3 routing presets' group_limit) the
// model gives -10/-12 % there (+19/+16 % without it). Measured: -16/-14 % (EP8), -23/-23 % (EP16), -13/-14 %
// (EP32), -10/-12 % (EP64), dispatch/combine. The per-expert scheme, which ignores that DeepEP sends a token once per node
// and GPU, is 27 % to 93 % over, so this test tells the two apart.
TEST_CASE("the hierarchical all-to-all is within 25% of DeepEP's published dispatch and combine times") {
  const LinkSpec nvlink{160e9, 2e-6}, nic{50e9, 5e-6};
  struct Row {
    int ep;
    double dispatch_gbps, combine_gbps;
  };
  for (const Row& row : {Row{8, 153, 158}, Row{16, 43, 43}, Row{32, 58, 57}, Row{64, 51, 50}}) {
    const int nodes = std::max(1, row.ep / 8);
    const TokenSample counted = nodes == 1 ? distinct_destinations_per_token(256, 8, 1, 1, row.ep, 20000, 21)
                                           : distinct_destinations_per_token(256, 8, nodes, std::min(nodes, 4), nodes, 20000, 22);
    const std::vector<double> pairs(static_cast<std::size_t>(row.ep), 4096.0 * 8);  // uniform routing
    // DeepSeek-V3's group limit (top-4 of 8 groups, one group a node at EP64) caps the nodes a token reaches.
    const PortTraffic hier = hierarchical_ports(pairs, 8, 256, 8, 0, nodes > 4 ? 4.0 : 0.0)[0];
    const PortTraffic flat = ports_for(pairs, 8)[0];
    for (const auto& [bytes, gbps] : {std::pair{7168.0 * (1 + 4.0 / 128), row.dispatch_gbps}, std::pair{7168.0 * 2, row.combine_gbps}}) {
      const double published_s = 4096.0 * counted.mean * bytes / (gbps * 1e9);
      const double modelled_s = all_to_all_seconds(hier, bytes, nvlink, nic);
      const double per_expert_s = all_to_all_seconds(flat, bytes, nvlink, nic);
      INFO("EP" << row.ep << ": published " << published_s * 1e6 << " us, modelled " << modelled_s * 1e6
                << " us (per expert " << per_expert_s * 1e6 << " us)");
      CHECK(std::fabs(modelled_s / published_s - 1.0) < 0.25);
      CHECK(per_expert_s / published_s - 1.0 > 0.25);
    }
  }
}

TEST_CASE("twin nodes copy exactly what their own computation gives") {
  // 6 nodes of 4 GPUs; nodes 2 and 5 repeat nodes 0 and 3 pair for pair (as replicas of the same experts with
  // the same token shares do), node 4 repeats node 1 but for one GPU. With and without the twin hints, every
  // port is the same bits, also under a node limit that scales the reaches.
  std::vector<double> pairs(24), busiest(24);
  for (std::size_t g = 0; g < 24; ++g) {
    pairs[g] = 500.0 + 37.0 * static_cast<double>((g * 7) % 11);
    busiest[g] = pairs[g] * 0.6;
  }
  for (std::size_t i = 0; i < 4; ++i) {
    pairs[8 + i] = pairs[i], busiest[8 + i] = busiest[i];
    pairs[20 + i] = pairs[12 + i], busiest[20 + i] = busiest[12 + i];
    pairs[16 + i] = pairs[4 + i], busiest[16 + i] = busiest[4 + i];
  }
  pairs[17] += 1.0;
  const std::vector<std::int64_t> twins{-1, -1, 0, -1, -1, 3};
  for (const double max_nodes : {0.0, 1.5}) {
    std::vector<PortTraffic> plain(24), twinned(24);
    std::vector<double> scratch(3 * 6 + 8);
    hierarchical_traffic(pairs, busiest, 4, 48, 8, scratch, plain, max_nodes);
    hierarchical_traffic(pairs, busiest, 4, 48, 8, scratch, twinned, max_nodes, twins);
    for (std::size_t g = 0; g < 24; ++g) {
      CAPTURE(g);
      CHECK(std::memcmp(&plain[g], &twinned[g], sizeof(PortTraffic)) == 0);
    }
    CHECK(plain[8].send_intra == plain[0].send_intra);  // the twins' own values agree too
    CHECK(plain[17].recv_intra != plain[5].recv_intra);  // a node that differs by one pair differs
  }
}

}  // namespace tailsim
