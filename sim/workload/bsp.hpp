// The bulk-synchronous workload: each step every worker computes (a draw from `compute` x its GPU's noise
// and slowdown factor), then all meet at a barrier. Two engines give identical results on the same draws:
//  - fast (default): independent workers are drawn in chunks and reduced per step; only the barrier
//    release of each step is an event. Cost per worker-step is a raw uniform and a compare.
//  - events: every attempt completion, speculative launch and barrier release goes through the event
//    queue, with GpuArray and Barrier components.
#pragma once
#include <memory>

#include "sim/stats/distribution.hpp"
#include "sim/workload/workload.hpp"

namespace tailsim {

enum class BspEngine { kFast, kEvents };

class BspWorkload final : public Workload {
 public:
  BspWorkload(ClusterSpec cluster, std::shared_ptr<const Distribution> compute, BspEngine engine)
      : cluster_(std::move(cluster)), compute_(std::move(compute)), engine_(engine) {}
  void check_policy(const Policy& policy) const override;
  std::string gpu_not_needed() const override { return "compute is a distribution"; }
  std::vector<PolicyTally> run(const RunRequest& request) const override;
  std::uint64_t working_bytes(std::size_t policies) const override;
  double step_work() const override { return static_cast<double>(cluster_.gpus); }
  void count_held(HeldBytes& held) const override;
  TraceSize trace_size(std::span<const Policy* const> policies) const override;

  std::vector<PolicyTally> run_fast(const RunRequest& request) const;
  std::vector<PolicyTally> run_events(const RunRequest& request) const;
  const ClusterSpec& cluster() const { return cluster_; }

 private:
  BspSetup setup(std::span<const Policy* const> policies) const;
  int attempts_drawn(std::span<const Policy* const> policies) const;

  ClusterSpec cluster_;
  std::shared_ptr<const Distribution> compute_;
  BspEngine engine_;
};

std::unique_ptr<Workload> make_bsp_workload(const JsonReader& node, const ClusterSpec& cluster);

}  // namespace tailsim
