// The cluster a scenario runs on: K GPUs in nodes, a GPU type from configs/gpus/, per-task noise and
// persistent slow GPUs. Workers are split into contiguous groups that share a slowdown factor.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/config/json_reader.hpp"
#include "sim/cost/gpu_spec.hpp"
#include "sim/stats/distribution.hpp"

namespace tailsim {

struct SlowGpus {
  std::int64_t count = 0;
  double factor = 1.0;  // every task on these GPUs takes factor x longer
};

// A contiguous range of ranks [first, first + count) sharing a slowdown factor.
struct WorkerGroup {
  std::int64_t first = 0;
  std::int64_t count = 0;
  double factor = 1.0;
};

// A link resource: one direction of a GPU's NVLink or NIC port.
struct LinkSpec {
  double bandwidth_bytes_per_s = 0;
  double latency_s = 0;
};

struct ClusterSpec {
  std::int64_t gpus = 1;
  std::int64_t gpus_per_node = 8;
  GpuSpec gpu;      // all zeros when the cluster leaves "gpu" out (gpu_given false)
  bool gpu_given = true;  // false only for a cluster object without "gpu": a bsp workload needs no GPU figures
  std::string file, path;  // where the cluster object was read (for require_gpu's error)
  // Implausible figures ("file: /cluster/nic/bandwidth: ... is implausible"), for the caller to log once
  // however many sweep points share them (build_point).
  std::vector<std::string> warnings;
  LinkSpec nvlink;  // per GPU and direction, inside a node (default: half the GPU's bidirectional NVLink)
  LinkSpec nic;     // per GPU and direction, between nodes (default: 400 Gbit/s InfiniBand, 5 us)
  std::shared_ptr<const Distribution> noise;  // multiplicative per-task factor; null for none
  std::vector<SlowGpus> slow_gpus;            // placed on the highest ranks

  // Fails ("missing required key 'gpu'", at the cluster's path) unless the GPU is given; `user` says what
  // reads its figures.
  void require_gpu(const std::string& user) const;
  std::vector<WorkerGroup> groups() const;  // healthy ranks first, then each slow_gpus entry
  std::int64_t nodes() const { return (gpus + gpus_per_node - 1) / gpus_per_node; }
};

ClusterSpec parse_cluster(const JsonReader& node);
// Replaces a cluster named by a string ("h100-nvlink-ib400") or an object with "config" by the object in
// configs/clusters/, keys given next to "config" overriding it. Done before --set and sweeps apply.
Json resolve_cluster_config(const JsonReader& node);

// K as a cluster accepts it: 10^12, for engines whose memory does not grow with K (the bsp workload's
// order_statistics engine). Workloads that keep per-GPU arrays allow kMaxGpusWithArrays (Workload::gpu_limit).
inline constexpr std::int64_t kMaxGpus = 1'000'000'000'000;
inline constexpr std::int64_t kMaxGpusWithArrays = 100'000'000;
inline constexpr int kMaxAttempts = 8;  // attempts of one task at once (primary + speculative copies)

}  // namespace tailsim
